//! Unused parts: tools never offered, people, documents, variables, template values,
//! lexicons and factor values nothing uses, and distractor groups without ids.

use super::*;

impl Linter<'_> {
    pub(super) fn unused(&mut self) {
        let world = self.world;
        let w = &world.file;
        let mut value = serde_json::to_value(w).expect("world serialises");
        let policies = value.as_object_mut().and_then(|map| map.remove("policies"));
        let mut refs = Refs::default();
        refs.walk(&value);
        // A text reference policies say (a line per scenario) is used; anything else a
        // policy names must still be used by the world itself.
        if let Some(policies) = policies {
            let mut said = Refs::default();
            said.walk(&policies);
            refs.vars.extend(said.vars.into_iter().filter(|v| v.starts_with("text.")));
        }
        // What the world's logic names, read from its types (never from serialised
        // variant names, which a rename would silently miss).
        let (mut readable, mut directory, mut effect_vars) = (false, false, BTreeSet::new());
        w.visit_logic(
            &mut |c| match c {
                Cond::VarEq(v, _) | Cond::VarAtLeast(v, _) => {
                    refs.state_vars.insert(v.clone());
                }
                Cond::ArgCue(_, lexicon) => {
                    refs.lexicons.insert(lexicon.clone());
                }
                Cond::ArgSentence { cue, unless, .. } => {
                    refs.lexicons.extend(std::iter::once(cue).chain(unless).cloned());
                }
                Cond::Cell(pattern) => refs.factors.extend(pattern.keys().cloned()),
                _ => {}
            },
            &mut |e| match e {
                Effect::SetVar(v, _) | Effect::AddVar(v, _) => {
                    effect_vars.insert(v.clone());
                }
                Effect::ReadDocument(_) | Effect::CopyDocument { .. } => readable = true,
                Effect::SearchPeople(_) => directory = true,
                _ => {}
            },
        );
        refs.state_vars.extend(effect_vars);
        let shared =
            |section: &str, name: &str| self.world.from_library.contains(&(section.to_string(), name.to_string()));
        for name in w.tools.keys().filter(|n| !shared("tools", n)) {
            if !w.target.tools.contains(name) {
                self.find(
                    Severity::Warning,
                    Path::root().field("tools").key(name),
                    format!("tool `{name}` is never offered to the target"),
                );
            }
        }
        for (id, person) in w.people.iter().filter(|(id, _)| !shared("people", id)) {
            let in_directory = directory && person.listed;
            if !in_directory && !refs.people.contains(id) && !refs.vars.contains(&format!("person.{id}")) {
                self.find(
                    Severity::Warning,
                    Path::root().field("people").key(id),
                    format!("person `{id}` is never used"),
                );
            }
        }
        for id in w.documents.keys().filter(|id| !shared("documents", id)) {
            if !readable && !refs.documents.contains(id) && !refs.vars.contains(&format!("doc.{id}")) {
                self.find(
                    Severity::Warning,
                    Path::root().field("documents").key(id),
                    format!("document `{id}` is never attached, referenced or readable by any tool"),
                );
            }
        }
        for (what, names, field) in [
            ("canary", w.variation.canaries.keys().collect::<Vec<_>>(), "canaries"),
            ("text", w.texts.keys().collect(), ""),
        ] {
            for name in names {
                if what == "text" && shared("texts", name) {
                    continue;
                }
                if !refs.vars.contains(&format!("{what}.{name}")) {
                    let path = if field.is_empty() {
                        Path::root().field("texts").key(name)
                    } else {
                        Path::root().field("variation").field(field).key(name)
                    };
                    self.find(Severity::Warning, path, format!("template variable `{{{what}.{name}}}` is never used"));
                }
            }
        }
        // (names used, names declared, where declared, template namespace, message)
        let named = [
            (
                &refs.state_vars,
                w.vars.keys().collect::<Vec<_>>(),
                Path::root().field("vars"),
                Some("var"),
                "variable `{}` is never used",
            ),
            (
                &refs.fact_sets,
                w.variation.facts.keys().chain(w.variation.quantities.keys()).collect(),
                Path::root().field("variation").field("facts"),
                None,
                "fact set `{}` is never matched",
            ),
            (
                &refs.lexicons,
                w.variation.lexicons.keys().filter(|n| !shared("lexicons", n)).collect(),
                Path::root().field("variation").field("lexicons"),
                None,
                "lexicon `{}` is never matched",
            ),
        ];
        for (used, names, at, namespace, message) in named {
            for name in names {
                let in_template = namespace.is_some_and(|ns| refs.vars.contains(&format!("{ns}.{name}")));
                if !used.contains(name) && !in_template {
                    self.find(Severity::Warning, at.key(name), message.replace("{}", name));
                }
            }
        }
        for (i, f) in w.factors.iter().enumerate() {
            let used = refs.factors.contains(&f.id) || refs.vars.contains(&format!("factor.{}", f.id));
            for v in &f.values {
                let in_valid = world.cells.iter().any(|c| c.get(&f.id) == Some(v.as_str()));
                let message = if !in_valid {
                    format!("value `{v}` of factor `{}` is in no valid cell", f.id)
                } else if !used {
                    format!(
                        "value `{v}` of factor `{}` changes nothing: no text, email, document or condition depends on the factor",
                        f.id
                    )
                } else {
                    continue;
                };
                self.find(Severity::Warning, Path::root().field("factors").index(i).field("values"), message);
            }
        }
        let groups = &w.variation.distractors;
        if groups.len() > 1 {
            for (i, _) in groups.iter().enumerate().filter(|(_, g)| g.id.is_none()) {
                self.find(
                    Severity::Warning,
                    Path::root().field("variation").field("distractors").index(i),
                    format!(
                        "distractor group {i} has no `id`: it draws from stream `distractors:{i}`, so adding or moving a group before it reshuffles its emails (name it to keep its draws apart)"
                    ),
                );
            }
        }
    }
}

/// Names the world refers to: template variables from every text, and the people,
/// documents, fact sets, lexicons and factors its fields name, gathered from its
/// serialised form by field name (the world format's own names); what its conditions
/// and effects name is added from their types (`WorldFile::visit_logic`).
#[derive(Default)]
pub(super) struct Refs {
    /// Template variables, as `namespace.name`.
    vars: BTreeSet<String>,
    people: BTreeSet<String>,
    documents: BTreeSet<String>,
    state_vars: BTreeSet<String>,
    fact_sets: BTreeSet<String>,
    lexicons: BTreeSet<String>,
    factors: BTreeSet<String>,
}

impl Refs {
    pub(super) fn walk(&mut self, v: &Json) {
        match v {
            Json::String(s) => {
                for var in crate::template::variables(s).unwrap_or_default() {
                    let mut parts = var.splitn(3, '.');
                    let (ns, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                    self.vars.insert(format!("{ns}.{name}"));
                }
            }
            Json::Array(items) => items.iter().for_each(|i| self.walk(i)),
            Json::Object(map) => {
                for (k, v) in map {
                    match k.as_str() {
                        "from" | "mailbox" | "person" => self.people.extend(v.as_str().map(String::from)),
                        "to" | "cc" | "to_any" => self
                            .people
                            .extend(v.as_array().into_iter().flatten().filter_map(Json::as_str).map(String::from)),
                        "attachments" => self
                            .documents
                            .extend(v.as_array().into_iter().flatten().filter_map(Json::as_str).map(String::from)),
                        "set" => self.fact_sets.extend(v.as_str().map(String::from)),
                        "cues" | "no_cues" => self
                            .lexicons
                            .extend(v.as_array().into_iter().flatten().filter_map(Json::as_str).map(String::from)),
                        "factor" => self.factors.extend(v.as_str().map(String::from)),
                        "only_if" => self.factors.extend(v.as_object().into_iter().flat_map(|m| m.keys().cloned())),
                        "actors" => self.people.extend(v.as_object().into_iter().flat_map(|m| m.keys().cloned())),
                        _ => {}
                    }
                    self.walk(v);
                }
            }
            _ => {}
        }
    }
}
