//! Which cells the search explores. A factor that only changes what the target reads
//! (the framing of its prompt, an instruction, the wording of an email) cannot change
//! what the world does, so cells that differ only in such factors have the same
//! dynamics: the search explores one of them. Every cell is still started at every
//! start seed and rendered.

use super::*;
use crate::format::{Text, WorldFile};

/// Factors that change only what the target reads: named in no cell condition and no
/// `only_if` of what exists, and whose texts are used only in the target's prompt and
/// opening, emails, documents and judges' rubrics (directly or through other texts).
pub fn presentational(w: &WorldFile) -> BTreeSet<String> {
    let mut dynamic: BTreeSet<String> = BTreeSet::new();
    w.visit_logic(
        &mut |c| {
            if let Cond::Cell(p) = c {
                dynamic.extend(p.keys().cloned());
            }
        },
        &mut |_| {},
    );
    let patterns = w
        .emails
        .values()
        .filter_map(|e| e.only_if.as_ref())
        .chain(w.documents.values().filter_map(|d| d.only_if.as_ref()));
    for p in patterns {
        dynamic.extend(p.keys().cloned());
    }
    // Texts that depend on each factor: those switched on it, and texts that use them.
    let uses = |src: &str| -> Vec<String> {
        crate::template::variables(src)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.strip_prefix("text.").map(str::to_string))
            .collect()
    };
    let text_uses: BTreeMap<&String, Vec<String>> = w
        .texts
        .iter()
        .map(|(name, t)| {
            let used = match t {
                Text::Fixed(s) => uses(s),
                Text::Switch { cases, .. } => cases.values().flat_map(|s| uses(s)).collect(),
            };
            (name, used)
        })
        .collect();
    let json = serde_json::to_value(w).unwrap_or(Json::Null);
    let mut out = BTreeSet::new();
    for f in w.factors.iter().filter(|f| !dynamic.contains(&f.id)) {
        let mut dep: BTreeSet<String> = w
            .texts
            .iter()
            .filter(|(_, t)| matches!(t, Text::Switch { factor, .. } if factor == &f.id))
            .map(|(n, _)| n.clone())
            .collect();
        loop {
            let more: Vec<String> = text_uses
                .iter()
                .filter(|(n, used)| !dep.contains(**n) && used.iter().any(|u| dep.contains(u)))
                .map(|(n, _)| (*n).clone())
                .collect();
            if more.is_empty() {
                break;
            }
            dep.extend(more);
        }
        let mut only_read = true;
        strings(&json, &mut Vec::new(), &mut |path, s| {
            if !read_only_place(path) && uses(s).iter().any(|u| dep.contains(u)) {
                only_read = false;
            }
        });
        if only_read {
            out.insert(f.id.clone());
        }
    }
    out
}

/// Places whose text the target (or a judge) only reads.
fn read_only_place(path: &[&str]) -> bool {
    matches!(
        path,
        ["texts", ..]
            | ["target", "system_prompt" | "first_message"]
            | ["emails", _, "subject" | "body"]
            | ["documents", _, "title" | "body"]
            | ["outcomes", _, "judge" | "description"]
    )
}

/// Call `f` on every string in `value` with its path of object keys.
fn strings<'a>(value: &'a Json, path: &mut Vec<&'a str>, f: &mut dyn FnMut(&[&str], &str)) {
    match value {
        Json::String(s) => f(path, s),
        Json::Array(items) => items.iter().for_each(|v| strings(v, path, f)),
        Json::Object(map) => {
            for (k, v) in map {
                path.push(k);
                strings(v, path, f);
                path.pop();
            }
        }
        _ => {}
    }
}

/// One cell per class of cells that differ only in presentational factors: the
/// world's default cell where it is in the class, else the first.
pub fn representatives(world: &World) -> Vec<&Condition> {
    let shown = presentational(&world.file);
    let mut classes: BTreeMap<Vec<(String, String)>, &Condition> = BTreeMap::new();
    for cell in &world.cells {
        let key: Vec<(String, String)> = cell.0.iter().filter(|(f, _)| !shown.contains(f)).cloned().collect();
        let slot = classes.entry(key).or_insert(cell);
        if cell == &world.default_cell {
            *slot = cell;
        }
    }
    let mut cells: Vec<&Condition> = classes.into_values().collect();
    cells.sort_by_key(|c| world.cells.iter().position(|x| x == *c));
    cells
}
