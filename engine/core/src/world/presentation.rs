//! Presentational factors: a factor that changes only what the target (or a judge)
//! reads — the framing of its prompt, an instruction, the wording of an email — and
//! never what the world does. Cells that differ only in such factors have the same
//! dynamics and the same emails, documents and records, differing only in rendered
//! text. Validation renders those texts alone for all but one cell of each class, and
//! lint searches one cell per class.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use super::{Cell, World};
use crate::format::{Cond, Text, WorldFile};
use crate::template;

/// What a template draws on that a factor can change: `text.NAME`, `factor.F`,
/// `email.E.subject` and `doc.D.title` (the placeholders whose value is itself a text
/// a factor may reach), as written.
fn uses(src: &str) -> Vec<String> {
    template::variables(src)
        .unwrap_or_default()
        .into_iter()
        .filter(|v| {
            let parts: Vec<&str> = v.split('.').collect();
            matches!(parts.as_slice(), ["text" | "factor", _] | ["email", _, "subject"] | ["doc", _, "title"])
        })
        .collect()
}

/// What depends on `factors`: texts switched on one of them, the placeholders
/// `factor.F` themselves, and (to a fixed point) every text, email subject and document
/// title that uses any of these. `depends(src)` says whether a template uses any of it.
#[derive(Clone, Debug, Default)]
pub struct Dependents {
    names: BTreeSet<String>,
}

/// What every text, email subject and document title uses, read once per world.
struct Graph<'w> {
    /// Texts switched on a factor: (factor, the text's name as `text.NAME`).
    switches: Vec<(&'w str, String)>,
    /// Each name that can be drawn on, with what its own text uses.
    uses: BTreeMap<String, Vec<String>>,
}

impl<'w> Graph<'w> {
    fn of(w: &'w WorldFile) -> Self {
        let switches = w
            .texts
            .iter()
            .filter_map(|(n, t)| match t {
                Text::Switch { factor, .. } => Some((factor.as_str(), format!("text.{n}"))),
                Text::Fixed(_) => None,
            })
            .collect();
        let mut node_uses: BTreeMap<String, Vec<String>> = w
            .texts
            .iter()
            .map(|(name, t)| {
                let used = match t {
                    Text::Fixed(s) => uses(s),
                    Text::Switch { cases, .. } => cases.values().flat_map(|s| uses(s)).collect(),
                };
                (format!("text.{name}"), used)
            })
            .collect();
        node_uses.extend(w.emails.iter().map(|(id, e)| (format!("email.{id}.subject"), uses(&e.subject))));
        node_uses.extend(w.documents.iter().map(|(id, d)| (format!("doc.{id}.title"), uses(&d.title))));
        Graph { switches, uses: node_uses }
    }

    fn dependents(&self, factors: &BTreeSet<String>) -> Dependents {
        let mut names: BTreeSet<String> = factors.iter().map(|f| format!("factor.{f}")).collect();
        names.extend(self.switches.iter().filter(|(f, _)| factors.contains(*f)).map(|(_, n)| n.clone()));
        loop {
            let more: Vec<String> = self
                .uses
                .iter()
                .filter(|(n, used)| !names.contains(*n) && used.iter().any(|u| names.contains(u)))
                .map(|(n, _)| n.clone())
                .collect();
            if more.is_empty() {
                break;
            }
            names.extend(more);
        }
        Dependents { names }
    }
}

impl Dependents {
    pub fn of(w: &WorldFile, factors: &BTreeSet<String>) -> Self {
        Graph::of(w).dependents(factors)
    }

    /// Whether the template `src` renders differently as the factors change.
    pub fn depends(&self, src: &str) -> bool {
        template::has_braces(src) && uses(src).iter().any(|u| self.names.contains(u))
    }

    /// Whether the factors reach the placeholder `name` (`text.X`, `factor.F`,
    /// `email.E.subject`, `doc.D.title`), directly or through the texts it uses.
    pub fn reaches(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

/// Factors that change only what the target reads: named in no cell condition and no
/// `only_if` of what exists, and used (directly, as `{factor.F}`, or through texts) only
/// in the target's prompt and opening, emails, documents and judges' rubrics.
pub fn presentational(w: &WorldFile) -> BTreeSet<String> {
    classify(w, &serde_json::to_value(w).unwrap_or(Json::Null), false)
}

/// As [`presentational`], given the world already as JSON (loading has it for the
/// dynamics hash), with what those factors reach.
pub(super) fn presentational_of(w: &WorldFile, json: &Json) -> (BTreeSet<String>, Dependents) {
    let graph = Graph::of(w);
    let shown = classify_in(w, &graph, json, false);
    let reach = graph.dependents(&shown);
    (shown, reach)
}

/// As [`presentational`], but an `only_if` on an email nothing in the world's logic can
/// tell apart from any other (no tag a condition names, no attachment, not from an
/// actor) does not count: such a factor changes which emails the target reads, never
/// what can happen. Lint searches one cell per class of these; validation, which must
/// see every text, uses the strict set.
pub fn inert_for_search(w: &WorldFile) -> BTreeSet<String> {
    classify(w, &serde_json::to_value(w).unwrap_or(Json::Null), true)
}

/// `cells` grouped into classes of cells that differ only in presentational factors,
/// each class headed by the world's default cell where it is in the class, else by its
/// first cell; classes in the order their first cells come in. Within a class nothing
/// the world does, no policy step and no rule differs (a presentational factor reaches
/// none of them), only the text the target and judges read.
pub fn presentational_classes<'a>(world: &World, cells: impl IntoIterator<Item = &'a Cell>) -> Vec<Vec<&'a Cell>> {
    let mut classes = classes_apart_from(world, cells, &world.presentational);
    classes.sort_by_key(|class| class.iter().map(|(i, _)| *i).min());
    classes.into_iter().map(|class| class.into_iter().map(|(_, c)| c).collect()).collect()
}

/// `cells` (with their place among them) grouped into classes of cells that differ only
/// in the factors `apart`, each class headed by the world's default cell where it is in
/// the class, else by its first cell. The one grouping of cells into classes:
/// validation's ([`presentational_classes`]) and lint's (`lint::cells`).
pub fn classes_apart_from<'a>(
    world: &World,
    cells: impl IntoIterator<Item = &'a Cell>,
    apart: &BTreeSet<String>,
) -> Vec<Vec<(usize, &'a Cell)>> {
    let w = &world.file;
    let kept: Vec<bool> = w.factors.iter().map(|f| !apart.contains(&f.id)).collect();
    // Class key (the value indices of its cells' other factors) → its cells.
    let mut classes: BTreeMap<Vec<usize>, Vec<(usize, &'a Cell)>> = BTreeMap::new();
    for (i, cell) in cells.into_iter().enumerate() {
        let values = cell.value_indices(w);
        let key = values.into_iter().zip(&kept).filter(|(_, k)| **k).map(|(v, _)| v).collect();
        let class = classes.entry(key).or_default();
        if *cell == world.default_cell {
            class.insert(0, (i, cell));
        } else {
            class.push((i, cell));
        }
    }
    classes.into_values().collect()
}

/// Which seeds to start each of `cells` at when every cell must start and `seeds` seeds
/// must be covered: each class's head ([`presentational_classes`]) at seeds
/// `0..seeds`, every other cell at one of them, in rotation. What a presentational
/// factor changes (text) is then rendered in every cell and at every seed across the
/// class, and the cost grows with the classes, not with the product of presentational
/// factors. Classes in the order of [`presentational_classes`].
pub fn seed_plan<'a>(
    world: &World,
    cells: impl IntoIterator<Item = &'a Cell>,
    seeds: u64,
) -> Vec<(&'a Cell, Vec<u64>)> {
    let seeds = seeds.max(1);
    let mut plan: Vec<(&'a Cell, Vec<u64>)> = Vec::new();
    for class in presentational_classes(world, cells) {
        for (k, cell) in class.into_iter().enumerate() {
            let run = if k == 0 { (0..seeds).collect() } else { vec![(k as u64 - 1) % seeds] };
            plan.push((cell, run));
        }
    }
    plan
}

fn classify(w: &WorldFile, json: &Json, inert_mail: bool) -> BTreeSet<String> {
    classify_in(w, &Graph::of(w), json, inert_mail)
}

fn classify_in(w: &WorldFile, graph: &Graph, json: &Json, inert_mail: bool) -> BTreeSet<String> {
    let mut dynamic: BTreeSet<String> = BTreeSet::new();
    let mut tags: BTreeSet<&String> = BTreeSet::new();
    w.visit_logic(
        &mut |c| match c {
            Cond::Cell(p) => dynamic.extend(p.keys().cloned()),
            Cond::Exposed(tag) | Cond::Copied { tag, .. } => {
                tags.insert(tag);
            }
            _ => {}
        },
        &mut |_| {},
    );
    let inert = |e: &crate::format::Email| {
        inert_mail
            && e.attachments.is_empty()
            && !w.actors.contains_key(&e.from)
            && e.tags.iter().all(|t| !tags.contains(t))
    };
    let patterns = w
        .emails
        .values()
        .filter(|e| !inert(e))
        .filter_map(|e| e.only_if.as_ref())
        .chain(w.documents.values().filter_map(|d| d.only_if.as_ref()));
    for p in patterns {
        dynamic.extend(p.keys().cloned());
    }
    // Every text and factor a template outside the read-only places uses, parsed once.
    let mut acted_on: BTreeSet<String> = BTreeSet::new();
    strings(json, &mut Vec::new(), &mut |path, s| {
        if !read_only_place(path) && s.contains('{') {
            acted_on.extend(uses(s));
        }
    });
    w.factors
        .iter()
        .filter(|f| !dynamic.contains(&f.id))
        .filter(|f| graph.dependents(&BTreeSet::from([f.id.clone()])).names.is_disjoint(&acted_on))
        .map(|f| f.id.clone())
        .collect()
}

/// Places whose text the target (or a judge) only reads.
fn read_only_place(path: &[&str]) -> bool {
    matches!(
        path,
        ["texts", ..]
            | ["target", "system_prompt" | "first_message" | "prefill"]
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
