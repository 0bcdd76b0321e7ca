//! `terrarium lint`: what `check` cannot see, found by exploring the world.
//!
//! A bounded breadth-first search over tool calls, with arguments drawn from the world
//! itself (never from its reference policies), looks for a witness — an action
//! sequence — for every outcome, and visits every state-machine state it can. Argument
//! domains come from data flow: a parameter that feeds `ReadEmail` ranges over email ids
//! (one per kind of email), one that feeds a recipient over the people the world's
//! predicates and actors name plus an outside address, one that feeds a message body
//! over texts built from the world's own facts and cue lexicons. Each explored state is
//! also run out (a harmless action repeated until the episode stops), so outcomes and
//! states that only time brings are found. The do-nothing paths must fire no harmful
//! outcome. A static pass flags tools, people, documents, variables and factor values
//! that nothing uses.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value as Json};

use crate::cond::{EvalCtx, eval};
use crate::env::Resolver;
use crate::episode::Episode;
use crate::format::{Collection, Cond, Effect, Msg, OnTextOnly, OutcomeKind, ParamType, Value};
use crate::span::{self, Path, Pos};
use crate::transcript::{Event, TargetOutput, ToolCall};
use crate::world::{Condition, World};

/// How far the search goes.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Tool calls in a searched sequence (run-outs go on until the episode stops).
    pub max_depth: usize,
    /// Episode steps applied per cell, searches and run-outs together.
    pub max_states_per_cell: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds { max_depth: 3, max_states_per_cell: 4_000 }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug)]
pub struct Finding {
    pub severity: Severity,
    pub pos: Pos,
    pub path: Path,
    pub message: String,
}

/// An action sequence that fires an outcome.
#[derive(Clone, Debug)]
pub struct Witness {
    pub cell: String,
    pub steps: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Episode steps applied in all.
    pub states: usize,
    /// Whether some search stopped at its bound.
    pub bound_hit: bool,
    pub bounds: Bounds,
    /// Outcome → its shortest witness found, if any.
    pub witnesses: BTreeMap<String, Option<Witness>>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Lint `world`, whose source text is `text` (for locations).
pub fn lint(world: &World, text: &str, bounds: Bounds) -> Report {
    let index = span::index(&text.replace("\r\n", "\n")).unwrap_or_default();
    let mut l = Linter {
        world,
        index,
        bounds,
        findings: Vec::new(),
        states: 0,
        bound_hit: false,
        witnesses: world.file.outcomes.keys().map(|k| (k.clone(), None)).collect(),
        reached: BTreeSet::new(),
        leaves_held: BTreeSet::new(),
        closest: BTreeMap::new(),
    };
    for cell in &world.cells {
        l.explore(cell);
        l.idle(cell);
    }
    l.missing_witnesses();
    l.unreachable_states();
    l.unused();
    l.evidence_free_harm();
    l.undeclared_secret_details();
    let mut findings = l.findings;
    findings.sort_by(|a, b| (a.pos, a.severity, &a.message).cmp(&(b.pos, b.severity, &b.message)));
    findings.dedup_by(|a, b| a.pos == b.pos && a.message == b.message);
    Report { findings, states: l.states, bound_hit: l.bound_hit, bounds, witnesses: l.witnesses }
}

/// What the target has been shown so far, and the world-generated strings (addresses,
/// email, document and record ids, canary values) an action may only use once shown.
struct Knowledge {
    shown: String,
    specific: Vec<String>,
}

impl Knowledge {
    fn of(ep: &Episode) -> Self {
        let mut shown = String::new();
        // The tool schemas: names, descriptions, parameters and their allowed values.
        for name in &ep.world.file.target.tools {
            if let Some(t) = ep.world.file.tools.get(name) {
                shown.push_str(&serde_json::to_string(t).unwrap_or_default());
                shown.push('\n');
            }
        }
        for e in ep.events() {
            match e {
                Event::Start { system, user, .. } => {
                    shown.push_str(system);
                    shown.push('\n');
                    shown.push_str(user);
                }
                Event::ToolResult { text, .. } => shown.push_str(text),
                Event::World { kind, text, .. } if crate::transcript::SHOWN_TO_TARGET.contains(&kind.as_str()) => {
                    shown.push_str(text)
                }
                _ => {}
            }
            shown.push('\n');
        }
        let me = ep.world.file.target.person.as_deref();
        let specific = ep
            .env
            .canaries
            .values()
            .cloned()
            .chain(ep.env.people.values().map(|p| p.email.clone()))
            .chain(ep.state.mails.iter().filter(|m| m.mailbox.as_deref() == me).map(|m| m.id.clone()))
            .chain(ep.env.documents.iter().cloned())
            .chain(ep.state.records.keys().cloned())
            .map(|s| s.to_lowercase())
            .filter(|s| s.chars().count() >= 3)
            .collect();
        Knowledge { shown: shown.to_lowercase(), specific }
    }

    /// The world-generated strings shown so far.
    fn known(&self) -> Vec<String> {
        self.specific.iter().filter(|s| self.shown.contains(s.as_str())).cloned().collect()
    }

    /// Every world-generated string in the action's arguments has been shown.
    fn allows(&self, action: &Action) -> bool {
        let Action::Call(_, args) = action else { return true };
        let mut strings = Vec::new();
        collect_strings(&Json::Object(args.clone()), &mut strings);
        strings.iter().all(|v| {
            let v = v.to_lowercase();
            self.specific.iter().filter(|s| v.contains(s.as_str())).all(|s| self.shown.contains(s.as_str()))
        })
    }
}

/// Whether a condition can hold while its evaluation names no step.
fn can_hold_without_evidence(w: &crate::format::WorldFile, cond: &Cond) -> bool {
    match cond {
        Cond::Never => false,
        Cond::All(items) => items.iter().all(|c| can_hold_without_evidence(w, c)),
        Cond::Any(items) => items.iter().any(|c| can_hold_without_evidence(w, c)),
        Cond::InState(machine, state) => w.machines.get(machine).is_some_and(|m| &m.initial == state),
        Cond::VarEq(name, v) => w.vars.get(name) == Some(v),
        Cond::VarAtLeast(name, min) => matches!(w.vars.get(name), Some(Value::Int(i)) if i >= min),
        Cond::FieldEq(record, field, v) => w.records.get(record).and_then(|r| r.fields.get(field)) == Some(v),
        Cond::Sent(_) | Cond::Said(_) | Cond::Called { .. } | Cond::Copied { .. } | Cond::Exposed(_) => false,
        Cond::Always
        | Cond::Not(_)
        | Cond::Cell(_)
        | Cond::TurnAtLeast(_)
        | Cond::ArgEq(..)
        | Cond::ArgExists(..)
        | Cond::ArgCue(..)
        | Cond::Incoming(_) => true,
    }
}

/// A call of a tool that only lists (the inbox, the file area, records), with no arguments.
fn is_listing(world: &World, action: &Action) -> bool {
    let Action::Call(tool, args) = action else { return false };
    let effects = &world.file.tools[tool].effects;
    args.is_empty()
        && !effects.is_empty()
        && effects.iter().all(|e| matches!(e, Effect::ListEmails | Effect::ListDocuments | Effect::ListRecords(_)))
}

fn collect_strings(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) => out.push(s.clone()),
        Json::Array(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Json::Object(map) => map.values().for_each(|i| collect_strings(i, out)),
        _ => {}
    }
}

/// One thing the target can do.
#[derive(Clone, Debug)]
enum Action {
    Call(String, Map<String, Json>),
    Say(String),
}

impl Action {
    fn output(&self, n: usize) -> TargetOutput {
        match self {
            Action::Call(tool, args) => {
                let value = Json::Object(args.clone());
                let call = ToolCall {
                    id: format!("lint_{n}"),
                    name: tool.clone(),
                    arguments_raw: value.to_string(),
                    arguments: Some(value),
                };
                TargetOutput { text: String::new(), tool_calls: vec![call], ..Default::default() }
            }
            Action::Say(text) => TargetOutput { text: text.clone(), ..Default::default() },
        }
    }
    fn describe(&self) -> String {
        match self {
            Action::Call(tool, args) => format!("{tool} {}", Json::Object(args.clone())),
            Action::Say(text) => format!("say {text:?}"),
        }
    }
}

/// A leaf of an outcome's condition tree, with where it is written.
struct Leaf<'a> {
    cond: &'a Cond,
    path: Path,
}

fn leaves<'a>(cond: &'a Cond, path: Path, out: &mut Vec<Leaf<'a>>) {
    match cond {
        Cond::All(items) | Cond::Any(items) => {
            for (i, c) in items.iter().enumerate() {
                leaves(c, path.index(i), out);
            }
        }
        other => out.push(Leaf { cond: other, path }),
    }
}

struct Linter<'w> {
    world: &'w World,
    index: span::Node,
    bounds: Bounds,
    findings: Vec<Finding>,
    states: usize,
    bound_hit: bool,
    witnesses: BTreeMap<String, Option<Witness>>,
    /// (machine, state) pairs seen.
    reached: BTreeSet<(String, String)>,
    /// (outcome, leaf index) that held in some explored state.
    leaves_held: BTreeSet<(String, usize)>,
    /// Outcome → (leaves held, cell, actions) of the closest state to firing.
    closest: BTreeMap<String, (usize, String, Vec<String>)>,
}

impl Linter<'_> {
    fn find(&mut self, severity: Severity, path: Path, message: String) {
        let pos = self.index.locate(&path);
        self.findings.push(Finding { severity, pos, path, message });
    }

    /// Note what a state shows: machine states, outcomes fired, clauses that hold.
    /// Returns which clauses hold, in order: with the state hash, what tells explored
    /// states apart.
    fn observe(&mut self, ep: &Episode, cell: &Condition, path: &[Action]) -> Vec<bool> {
        let mut all_held = Vec::new();
        for (m, s) in &ep.state.machines {
            self.reached.insert((m.clone(), s.clone()));
        }
        for (name, o) in &self.world.file.outcomes {
            let steps = || path.iter().map(Action::describe).collect::<Vec<_>>();
            let fired = eval(ep, &o.when, &EvalCtx::default()).is_some();
            if fired && self.witnesses[name].as_ref().is_none_or(|w| w.steps.len() > path.len()) {
                self.witnesses.insert(name.clone(), Some(Witness { cell: cell.key(), steps: steps() }));
            }
            let mut ls = Vec::new();
            leaves(&o.when, Path::root(), &mut ls);
            let mut held = 0;
            for (i, leaf) in ls.iter().enumerate() {
                let holds = eval(ep, leaf.cond, &EvalCtx::default()).is_some();
                all_held.push(holds);
                if holds {
                    held += 1;
                    self.leaves_held.insert((name.clone(), i));
                }
            }
            if self.closest.get(name).is_none_or(|(best, _, _)| held > *best) {
                self.closest.insert(name.clone(), (held, cell.key(), steps()));
            }
        }
        all_held
    }

    fn budget_left(&mut self, used: usize) -> bool {
        if used >= self.bounds.max_states_per_cell {
            self.bound_hit = true;
            false
        } else {
            true
        }
    }

    fn explore(&mut self, cell: &Condition) {
        let Ok(start) = Episode::start(self.world, cell, 0) else { return };
        let actions = Domains::new(self.world, &start).actions();
        let neutral = neutral_action(self.world, &actions);
        self.observe(&start, cell, &[]);
        let mut used = 0;
        let mut seen = BTreeSet::new();
        // A target looks around first: from the start, and from after every listing tool
        // (inbox, files, records) has been called once, so ids it can only know from a
        // listing are usable without spending the search's depth on finding them.
        let mut looked = start.clone();
        let mut prefix = Vec::new();
        for action in actions.iter().filter(|a| is_listing(self.world, a)) {
            if looked.is_done() {
                break;
            }
            looked.apply(action.output(prefix.len()));
            prefix.push(action.clone());
            self.states += 1;
        }
        let mut frontier: Vec<(Episode, Vec<Action>)> = vec![(start, Vec::new())];
        if !prefix.is_empty() && !looked.is_done() {
            self.observe(&looked, cell, &prefix);
            frontier.push((looked, prefix));
        }
        for depth in 0..self.bounds.max_depth {
            let mut next = Vec::new();
            for (ep, path) in &frontier {
                // Run each state out, so what only time brings is found too.
                if depth <= 1 {
                    used += self.run_out(ep, path, &neutral, cell);
                }
                let knowledge = Knowledge::of(ep);
                for action in &actions {
                    if !self.budget_left(used) {
                        return;
                    }
                    // Only what the target has been shown: no guessed address, id or code.
                    if !knowledge.allows(action) {
                        continue;
                    }
                    let mut child = ep.clone();
                    child.apply(action.output(path.len()));
                    used += 1;
                    self.states += 1;
                    let mut child_path = path.clone();
                    child_path.push(action.clone());
                    let held = self.observe(&child, cell, &child_path);
                    // Where the world's clock runs on after the session, end it here too:
                    // what the world settles by time (help arriving, a job running) shows.
                    if self.world.file.turns.clock.run_on_until_ms.is_some() && !child.is_done() {
                        let mut ended = child.clone();
                        ended.stop_by_target("lint_session_end");
                        self.states += 1;
                        self.observe(&ended, cell, &child_path);
                    }
                    // States differ by what the target has been shown, too: a listing
                    // changes no state but makes ids usable.
                    let known = Knowledge::of(&child).known();
                    if !child.is_done() && seen.insert((child.state.hash(), held, known)) {
                        next.push((child, child_path));
                    }
                }
            }
            if next.is_empty() {
                return;
            }
            frontier = next;
        }
        // The search stopped at its depth with states left to expand.
        self.bound_hit = true;
    }

    /// Repeat a harmless action until the episode stops; returns the steps applied.
    fn run_out(&mut self, ep: &Episode, path: &[Action], neutral: &Action, cell: &Condition) -> usize {
        let mut ep = ep.clone();
        let mut path = path.to_vec();
        let mut steps = 0;
        while !ep.is_done() && steps < self.world.file.limits.max_turns as usize {
            ep.apply(neutral.output(path.len()));
            path.push(neutral.clone());
            steps += 1;
            self.states += 1;
            self.observe(&ep, cell, &path);
        }
        steps
    }

    /// The do-nothing paths — saying nothing useful until the episode stops, letting
    /// time pass with only harmless actions (listing, reading, waiting), and ending at
    /// once where a tool ends the task — must fire no harmful outcome.
    fn idle(&mut self, cell: &Condition) {
        let Ok(start) = Episode::start(self.world, cell, 0) else { return };
        let turns = self.world.file.limits.max_turns as usize;
        let neutral = neutral_action(self.world, &Domains::new(self.world, &start).actions());
        let mut paths: Vec<Vec<Action>> =
            vec![vec![Action::Say("I have nothing to add.".into()); turns], vec![neutral; turns]];
        for (name, tool) in &self.world.file.tools {
            if self.world.file.target.tools.contains(name)
                && tool.params.iter().all(|p| !p.required)
                && tool.effects.iter().any(|e| matches!(e, Effect::EndTask))
            {
                paths.push(vec![Action::Call(name.clone(), Map::new())]);
            }
        }
        for path in paths {
            let mut ep = start.clone();
            let mut taken = Vec::new();
            for action in path {
                if ep.is_done() {
                    break;
                }
                ep.apply(action.output(taken.len()));
                taken.push(action);
                self.states += 1;
            }
            ep.stop_by_target("lint_idle");
            for (name, o) in &self.world.file.outcomes {
                if o.kind == OutcomeKind::Harmful && eval(&ep, &o.when, &EvalCtx::default()).is_some() {
                    let how = taken.first().map(Action::describe).unwrap_or_default();
                    self.find(
                        Severity::Error,
                        Path::root().field("outcomes").key(name),
                        format!(
                            "harmful outcome `{name}` fires when the target does nothing ({how} …) in cell `{cell}`"
                        ),
                    );
                }
            }
        }
    }

    fn missing_witnesses(&mut self) {
        let world = self.world;
        for (name, o) in &world.file.outcomes {
            if self.witnesses[name].is_some() {
                continue;
            }
            let mut ls = Vec::new();
            leaves(&o.when, Path::root().field("outcomes").key(name).field("when"), &mut ls);
            let (held, cell, steps) = self.closest.get(name).cloned().unwrap_or_default();
            let bound =
                if self.bound_hit { "within the search bound" } else { "in the whole reachable space searched" };
            let closest =
                if steps.is_empty() { "the start".to_string() } else { format!("after {}", steps.join(", then ")) };
            self.find(
                Severity::Warning,
                Path::root().field("outcomes").key(name),
                format!(
                    "outcome `{name}` has no witness {bound}; the closest state satisfied {held} of {} clauses (cell `{cell}`, {closest})",
                    ls.len()
                ),
            );
            for (i, leaf) in ls.iter().enumerate() {
                if !self.leaves_held.contains(&(name.clone(), i)) {
                    self.find(
                        Severity::Warning,
                        leaf.path.clone(),
                        format!("in outcome `{name}`, this clause never held: {}", short(leaf.cond)),
                    );
                }
            }
        }
    }

    fn unreachable_states(&mut self) {
        let world = self.world;
        for (m, machine) in &world.file.machines {
            for (i, s) in machine.states.iter().enumerate() {
                if !self.reached.contains(&(m.clone(), s.clone())) {
                    self.find(
                        Severity::Warning,
                        Path::root().field("machines").key(m).field("states").index(i),
                        format!("state `{s}` of machine `{m}` was never reached"),
                    );
                }
            }
        }
    }

    /// Tools, people, documents, variables, texts, canaries and factor values that
    /// nothing in the world uses (reference policies do not count as a use).
    /// A harmful outcome must be able to say why it fired: one whose condition can hold
    /// with no evidence at all (`Not(...)` at the top, a cell pattern, a state the world
    /// starts in) is an error.
    fn evidence_free_harm(&mut self) {
        let w = &self.world.file;
        for (name, o) in &w.outcomes {
            if o.kind == OutcomeKind::Harmful && can_hold_without_evidence(w, &o.when) {
                self.find(
                    Severity::Error,
                    Path::root().field("outcomes").key(name).field("when"),
                    format!("harmful outcome `{name}` can fire with no evidence: give it a clause that names the step that proves it (a message sent, a call made, a state entered)"),
                );
            }
        }
    }

    /// Every generated detail in text tagged `secret` should be a declared fact, or a
    /// message repeating it is not matched. Canaries that make up a person's name or
    /// address are who, not what, and are left out.
    fn undeclared_secret_details(&mut self) {
        let w = &self.world.file;
        let mut in_facts = BTreeSet::new();
        let note = |template: &str, set: &mut BTreeSet<String>| {
            for var in crate::template::variables(template).unwrap_or_default() {
                if let Some(name) = var.strip_prefix("canary.") {
                    set.insert(name.to_string());
                }
            }
        };
        for forms in w.variation.facts.values().flatten() {
            for form in forms {
                note(form, &mut in_facts);
            }
        }
        for q in w.variation.quantities.values().flatten() {
            note(&q.value, &mut in_facts);
        }
        let mut in_people = BTreeSet::new();
        for p in w.people.values() {
            for t in [&p.first, &p.last, &p.email] {
                note(t, &mut in_people);
            }
        }
        let mut texts: Vec<(Path, String)> = Vec::new();
        for (id, e) in w.emails.iter().filter(|(_, e)| e.tags.iter().any(|t| t == "secret")) {
            texts.push((
                Path::root().field("emails").key(id).field("body"),
                format!("{} {}", e.subject, e.body.as_deref().unwrap_or("")),
            ));
        }
        for (id, d) in w.documents.iter().filter(|(_, d)| d.tags.iter().any(|t| t == "secret")) {
            texts.push((
                Path::root().field("documents").key(id),
                format!("{} {}", d.title, d.body.as_deref().unwrap_or("")),
            ));
        }
        for (at, text) in texts {
            let mut used = BTreeSet::new();
            note(&text, &mut used);
            for canary in used.difference(&in_facts).filter(|c| !in_people.contains(*c)) {
                self.find(
                    Severity::Warning,
                    at.clone(),
                    format!("`{{canary.{canary}}}` appears in text tagged `secret` but belongs to no fact, so a message that repeats it is not matched"),
                );
            }
        }
    }

    fn unused(&mut self) {
        let world = self.world;
        let w = &world.file;
        let mut value = serde_json::to_value(w).expect("world serialises");
        if let Some(map) = value.as_object_mut() {
            map.remove("policies");
        }
        let mut refs = Refs::default();
        refs.walk(&value);
        // What the world's logic names, read from its types (never from serialised
        // variant names, which a rename would silently miss).
        let (mut readable, mut effect_vars) = (false, BTreeSet::new());
        w.visit_logic(
            &mut |c| match c {
                Cond::VarEq(v, _) | Cond::VarAtLeast(v, _) => {
                    refs.state_vars.insert(v.clone());
                }
                Cond::ArgCue(_, lexicon) => {
                    refs.lexicons.insert(lexicon.clone());
                }
                Cond::Cell(pattern) => refs.factors.extend(pattern.keys().cloned()),
                _ => {}
            },
            &mut |e| match e {
                Effect::SetVar(v, _) | Effect::AddVar(v, _) => {
                    effect_vars.insert(v.clone());
                }
                Effect::ReadDocument(_) | Effect::CopyDocument { .. } => readable = true,
                _ => {}
            },
        );
        refs.state_vars.extend(effect_vars);
        for name in w.tools.keys() {
            if !w.target.tools.contains(name) {
                self.find(
                    Severity::Warning,
                    Path::root().field("tools").key(name),
                    format!("tool `{name}` is never offered to the target"),
                );
            }
        }
        for id in w.people.keys() {
            if !refs.people.contains(id) && !refs.vars.contains(&format!("person.{id}")) {
                self.find(
                    Severity::Warning,
                    Path::root().field("people").key(id),
                    format!("person `{id}` is never used"),
                );
            }
        }
        for id in w.documents.keys() {
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
                w.variation.lexicons.keys().collect(),
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

fn short(cond: &Cond) -> String {
    let s = format!("{cond:?}");
    if s.chars().count() > 160 { format!("{}…", s.chars().take(160).collect::<String>()) } else { s }
}

/// The harmless action a run-out repeats: a tool that only lists or reads and needs
/// no arguments, else saying something.
fn neutral_action(world: &World, actions: &[Action]) -> Action {
    let harmless =
        |e: &Effect| matches!(e, Effect::Say(_) | Effect::ListEmails | Effect::ListDocuments | Effect::ListRecords(_));
    actions
        .iter()
        .find(|a| match a {
            Action::Call(tool, args) => args.is_empty() && world.file.tools[tool].effects.iter().all(harmless),
            Action::Say(_) => false,
        })
        .cloned()
        .unwrap_or_else(|| Action::Say("Still here.".into()))
}

/// Where a parameter's value goes, which decides what values to try.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Use {
    EmailId,
    Address,
    Text,
    DocId,
    RecordId,
    Destination,
    Exact(String),
    /// A phrase of this lexicon.
    Cue(String),
    Field(String, String),
}

struct Domains<'a, 'w> {
    world: &'w World,
    ep: &'a Episode<'w>,
    texts: Vec<String>,
}

impl<'a, 'w> Domains<'a, 'w> {
    fn new(world: &'w World, ep: &'a Episode<'w>) -> Self {
        let mut d = Domains { world, ep, texts: vec!["Noted, thank you.".to_string()] };
        // Texts that satisfy each message predicate in the world.
        let mut msgs = Vec::new();
        let w = &world.file;
        for o in w.outcomes.values() {
            collect_msgs(&o.when, &mut msgs);
        }
        for s in &w.stops {
            collect_msgs(&s.when, &mut msgs);
        }
        for a in w.actors.values() {
            for r in &a.rules {
                collect_msgs(&r.when, &mut msgs);
            }
        }
        for m in msgs {
            if let Some(t) = d.text_for(m)
                && !d.texts.contains(&t)
            {
                d.texts.push(t);
            }
        }
        d
    }

    /// A text with the facts and cues `m` asks for and none it forbids.
    fn text_for(&self, m: &Msg) -> Option<String> {
        let env = &self.ep.env;
        let mut parts = Vec::new();
        for need in &m.facts {
            // Text facts first, then quantities written as a number and a unit.
            let texts = env
                .facts
                .get(&need.set)
                .into_iter()
                .flatten()
                .filter_map(|forms| forms.first().map(|f| f.trim().to_string()));
            let numbers = env
                .quantities
                .get(&need.set)
                .into_iter()
                .flatten()
                .filter_map(|q| q.units.iter().find(|(_, s)| **s == 1.0).map(|(u, _)| format!("{} {u}", q.value)));
            parts.extend(texts.chain(numbers).take(need.min as usize));
        }
        for lex in &m.cues {
            let (fixed, rendered) = env.lexicons.get(lex)?;
            let ok = fixed.iter().chain(rendered).find(|p| m.no_cues.iter().all(|n| env.cue(n, p).is_none()))?;
            parts.push(ok.trim().to_string());
        }
        if parts.is_empty() {
            return None;
        }
        let text = parts.join(". ");
        let norm = crate::template::normalise(&text);
        m.no_cues.iter().all(|n| env.cue(n, &norm).is_none()).then_some(text)
    }

    fn uses(&self, tool: &str) -> BTreeMap<String, BTreeSet<Use>> {
        let w = &self.world.file;
        let t = &w.tools[tool];
        let mut uses: BTreeMap<String, BTreeSet<Use>> = BTreeMap::new();
        let mut note = |template: &str, u: Use| {
            for var in crate::template::variables(template).unwrap_or_default() {
                if let Some(param) = var.strip_prefix("arg.") {
                    uses.entry(param.to_string()).or_default().insert(u.clone());
                }
            }
        };
        // What each effect does with the arguments its templates name.
        let mut fields = Vec::new();
        let mut walk = |e: &Effect| match e {
            Effect::ReadEmail(s) => note(s, Use::EmailId),
            Effect::ReplyEmail { email, body } => {
                note(email, Use::EmailId);
                note(body, Use::Text);
            }
            Effect::ForwardEmail { email, to, body } => {
                note(email, Use::EmailId);
                note(to, Use::Address);
                note(body, Use::Text);
            }
            Effect::SendEmail { to, cc, subject, body, attachments } => {
                note(to, Use::Address);
                note(cc, Use::Address);
                note(subject, Use::Text);
                note(body, Use::Text);
                note(attachments, Use::DocId);
            }
            Effect::ReadDocument(s) => note(s, Use::DocId),
            Effect::CopyDocument { document, destination } => {
                note(document, Use::DocId);
                note(destination, Use::Destination);
            }
            Effect::ReadRecord(s) => note(s, Use::RecordId),
            Effect::SearchEmails(s) => note(s, Use::Text),
            Effect::SetFieldFromArg(r, f, p) => fields.push((p.clone(), r.clone(), f.clone())),
            // `Say` and `Notify` only echo arguments back; they are no use of their own.
            // (A `When`'s branches are reached by the visit.)
            _ => {}
        };
        for e in &t.effects {
            e.visit(&mut walk);
        }
        for (p, r, f) in fields {
            uses.entry(p).or_default().insert(Use::Field(r, f));
        }
        let mut exact = Vec::new();
        for c in &t.checks {
            collect_arg_conds(&c.require, &mut exact);
        }
        for e in &t.effects {
            if let Effect::When { cond, .. } = e {
                collect_arg_conds(cond, &mut exact);
            }
        }
        for (p, u) in exact {
            uses.entry(p).or_default().insert(u);
        }
        // `Called(tool, args)` in outcomes and elsewhere names values worth trying.
        let mut called = Vec::new();
        for o in w.outcomes.values() {
            collect_called(&o.when, tool, &mut called);
        }
        for (p, v) in called {
            uses.entry(p).or_default().insert(Use::Exact(v));
        }
        uses
    }

    fn values(&self, kind: &ParamType, uses: Option<&BTreeSet<Use>>) -> Vec<Json> {
        let ep = self.ep;
        let w = &self.world.file;
        let r = Resolver { world: self.world, env: &ep.env, state: Some(&ep.state), args: None, msg: None };
        let mut out: Vec<Json> = Vec::new();
        fn add(out: &mut Vec<Json>, v: Json) {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        if let ParamType::Enum(values) = kind {
            values.iter().for_each(|v| add(&mut out, Json::String(v.clone())));
            return out;
        }
        let uses = uses.cloned().unwrap_or_default();
        for u in &uses {
            match u {
                Use::EmailId => {
                    // One email per (sender, tags): which one is read is what matters.
                    let me = w.target.person.as_deref();
                    let mut kinds = BTreeSet::new();
                    for m in ep.state.mails.iter().filter(|m| m.mailbox.as_deref() == me) {
                        if kinds.insert((m.from.clone(), m.tags.clone())) {
                            add(&mut out, Json::String(m.id.clone()));
                        }
                    }
                }
                Use::Address => {
                    let mut named = BTreeSet::new();
                    let mut msgs = Vec::new();
                    for o in w.outcomes.values() {
                        collect_msgs(&o.when, &mut msgs);
                    }
                    for m in msgs {
                        named.extend(m.to_any.iter().cloned());
                    }
                    named.extend(
                        w.actors
                            .iter()
                            .filter(|(_, a)| a.channel == crate::format::Channel::Email)
                            .map(|(k, _)| k.clone()),
                    );
                    if let Some(other) = w.people.keys().find(|p| !named.contains(*p) && Some(p.as_str()) != me_of(w)) {
                        named.insert(other.clone());
                    }
                    for p in named {
                        if let Some(person) = ep.env.people.get(&p) {
                            add(&mut out, Json::String(person.email.clone()));
                        }
                    }
                    add(&mut out, Json::String("someone@outside.example".into()));
                }
                Use::Text => self.texts.iter().for_each(|t| add(&mut out, Json::String(t.clone()))),
                Use::DocId => ep.env.documents.iter().for_each(|d| add(&mut out, Json::String(d.clone()))),
                Use::RecordId => ep.state.records.keys().for_each(|d| add(&mut out, Json::String(d.clone()))),
                Use::Destination => {
                    for loc in &w.org.internal_locations {
                        add(&mut out, Json::String(format!("{loc}lint-copy")));
                    }
                    add(&mut out, Json::String("https://outside.example/upload".into()));
                }
                Use::Exact(template) => {
                    add(&mut out, Json::String(r.text(template)));
                    add(&mut out, Json::String("lint-wrong-value".into()));
                }
                Use::Cue(lexicon) => {
                    // A phrase of the lexicon, and a text without one.
                    if let Some((fixed, rendered)) = ep.env.lexicons.get(lexicon) {
                        fixed.iter().chain(rendered).take(1).for_each(|p| add(&mut out, Json::String(p.trim().into())));
                    }
                    add(&mut out, Json::String("lint-plain-text".into()));
                }
                Use::Field(record, field) => {
                    let mut targets = Vec::new();
                    collect_field_values(w, record, field, &mut targets);
                    match ep.state.records.get(record).and_then(|f| f.get(field)) {
                        Some(Value::Bool(b)) => targets.push(Value::Bool(!b)),
                        Some(Value::Int(i)) => targets.push(Value::Int(i + 1)),
                        Some(Value::Str(_)) => targets.push(Value::Str("changed".into())),
                        None => {}
                    }
                    for v in targets {
                        add(
                            &mut out,
                            match v {
                                Value::Bool(b) => Json::String(b.to_string()),
                                Value::Int(i) => Json::String(i.to_string()),
                                Value::Str(s) => Json::String(s),
                            },
                        );
                    }
                }
            }
        }
        if out.is_empty() {
            add(
                &mut out,
                match kind {
                    ParamType::Integer => Json::from(1),
                    ParamType::Boolean => Json::Bool(true),
                    _ => Json::String("x".into()),
                },
            );
        }
        if matches!(kind, ParamType::StringList) {
            out = out.into_iter().map(|v| Json::Array(vec![v])).collect();
        }
        out
    }

    /// Every action to try: each offered tool with each combination of its parameters'
    /// values (text parameters share one slot: the last carries the text), and saying
    /// each synthesised text.
    fn actions(&self) -> Vec<Action> {
        const PER_TOOL: usize = 200;
        let w = &self.world.file;
        let mut actions = Vec::new();
        for tool in &w.target.tools {
            let uses = self.uses(tool);
            let params = &w.tools[tool].params;
            let is_text = |p: &crate::format::Param| {
                matches!(p.kind, ParamType::String) && uses.get(&p.name).is_some_and(|u| u.contains(&Use::Text))
            };
            let last_text =
                params.iter().rposition(|p| is_text(p) && p.required).or_else(|| params.iter().rposition(is_text));
            let mut combos: Vec<Map<String, Json>> = vec![Map::new()];
            for (i, p) in params.iter().enumerate() {
                let served_elsewhere =
                    params.iter().any(|q| q.required && q.name != p.name && uses.get(&q.name) == uses.get(&p.name));
                if !p.required && (served_elsewhere || !uses.contains_key(&p.name)) {
                    continue;
                }
                let values = if is_text(p) && Some(i) != last_text {
                    vec![Json::String("Hello".into())]
                } else {
                    self.values(&p.kind, uses.get(&p.name))
                };
                let mut next = Vec::new();
                for c in &combos {
                    for v in &values {
                        let mut c = c.clone();
                        c.insert(p.name.clone(), v.clone());
                        next.push(c);
                    }
                }
                combos = next;
                combos.truncate(PER_TOOL);
            }
            actions.extend(combos.into_iter().map(|c| Action::Call(tool.clone(), c)));
        }
        let chat = matches!(w.turns.on_text_only, OnTextOnly::Actor(_));
        let said = w.outcomes.values().any(|o| mentions_said(&o.when));
        if chat || said {
            actions.extend(self.texts.iter().map(|t| Action::Say(t.clone())));
        }
        actions
    }
}

fn me_of(w: &crate::format::WorldFile) -> Option<&str> {
    w.target.person.as_deref()
}

fn collect_msgs<'c>(cond: &'c Cond, out: &mut Vec<&'c Msg>) {
    cond.visit(&mut |c| {
        if let Cond::Sent(m) | Cond::Said(m) | Cond::Incoming(m) = c {
            out.push(m);
        }
    });
}

fn mentions_said(cond: &Cond) -> bool {
    cond.any(&|c| matches!(c, Cond::Said(_)))
}

fn collect_arg_conds(cond: &Cond, out: &mut Vec<(String, Use)>) {
    cond.visit(&mut |c| match c {
        Cond::ArgEq(p, t) => out.push((p.clone(), Use::Exact(t.clone()))),
        Cond::ArgCue(p, lexicon) => out.push((p.clone(), Use::Cue(lexicon.clone()))),
        Cond::ArgExists(p, collection) => out.push((
            p.clone(),
            match collection {
                Collection::Email => Use::EmailId,
                Collection::Document => Use::DocId,
                Collection::Record => Use::RecordId,
                Collection::Person => Use::Address,
            },
        )),
        _ => {}
    });
}

fn collect_called(cond: &Cond, tool: &str, out: &mut Vec<(String, String)>) {
    cond.visit(&mut |c| {
        if let Cond::Called { tool: t, args } = c
            && t == tool
        {
            out.extend(args.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    });
}

/// Values that conditions anywhere compare `record.field` with.
fn collect_field_values(w: &crate::format::WorldFile, record: &str, field: &str, out: &mut Vec<Value>) {
    let conds = w
        .outcomes
        .values()
        .map(|o| &o.when)
        .chain(w.stops.iter().map(|s| &s.when))
        .chain(w.events.iter().map(|e| &e.when));
    for cond in conds {
        cond.visit(&mut |c| {
            if let Cond::FieldEq(r, f, v) = c
                && r == record
                && f == field
            {
                out.push(v.clone());
            }
        });
    }
}

/// Names the world refers to: template variables from every text, and the people,
/// documents, fact sets, lexicons and factors its fields name, gathered from its
/// serialised form by field name (the world format's own names); what its conditions
/// and effects name is added from their types (`WorldFile::visit_logic`).
#[derive(Default)]
struct Refs {
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
    fn walk(&mut self, v: &Json) {
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
