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
use crate::episode::Episode;
use crate::format::{Collection, Cond, Effect, Msg, OnTextOnly, OutcomeKind, ParamType, Value};
use crate::span::{self, Path, Pos};
use crate::transcript::{Event, TargetOutput, ToolCall};
use crate::world::{Cell, World};

mod cells;
mod domains;
mod realism;
mod unused;

pub use cells::{inert_for_search, presentational, representatives};
pub use realism::realism;

use domains::*;

/// How far the search goes.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Tool calls in a searched sequence (run-outs go on until the episode stops).
    pub max_depth: usize,
    /// Episode steps applied per cell, searches and run-outs together.
    pub max_states_per_cell: usize,
    /// Episode steps applied over the whole world: a world whose cells fall into many
    /// classes gives each searched cell an even share (never below
    /// [`MIN_STATES_PER_CELL`], never above `max_states_per_cell`), so that lint's time
    /// follows the number of worlds rather than the number of their cells.
    pub max_states_per_world: usize,
}

/// The least a searched cell is given, however many classes share the world's budget.
pub const MIN_STATES_PER_CELL: usize = 500;

impl Default for Bounds {
    fn default() -> Self {
        Bounds { max_depth: 3, max_states_per_cell: 4_000, max_states_per_world: 48_000 }
    }
}

impl Bounds {
    /// What each of `cells` searched cells may spend.
    pub fn per_cell(&self, cells: usize) -> usize {
        let share = self.max_states_per_world / cells.max(1);
        share.max(MIN_STATES_PER_CELL).min(self.max_states_per_cell)
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
    /// Cells searched: one per class of cells that differ only in what the target
    /// reads (see [`presentational`]).
    pub explored_cells: usize,
    /// Whether some search stopped at its bound.
    pub bound_hit: bool,
    pub bounds: Bounds,
    /// What each searched cell could spend (`Bounds::per_cell`).
    pub states_per_cell: usize,
    /// Outcome → its shortest witness found, if any.
    pub witnesses: BTreeMap<String, Option<Witness>>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Seeds each cell is started at (see `Linter::starts`).
pub const START_SEEDS: u64 = 32;

/// Lint `world`, whose source text is `text` (for locations).
pub fn lint(world: &World, text: &str, bounds: Bounds) -> Report {
    let text = text.replace("\r\n", "\n");
    let index = span::index(&text).unwrap_or_default();
    let mut l = Linter {
        world,
        index,
        text,
        ever_known: BTreeSet::new(),
        refused: BTreeMap::new(),
        bounds,
        cell_budget: bounds.max_states_per_cell,
        findings: Vec::new(),
        states: 0,
        bound_hit: false,
        witnesses: world.file.outcomes.keys().map(|k| (k.clone(), None)).collect(),
        reached: BTreeSet::new(),
        leaves_held: BTreeSet::new(),
        closest: BTreeMap::new(),
    };
    l.starts();
    let explored = representatives(world);
    l.cell_budget = bounds.per_cell(explored.len());
    for cell in &explored {
        l.explore(cell);
        l.idle(cell);
        l.policy_witnesses(cell);
    }
    l.missing_witnesses();
    l.unreachable_states();
    l.unused();
    l.evidence_free_harm();
    l.undeclared_secret_details();
    let mut findings = l.findings;
    findings.sort_by(|a, b| (a.pos, a.severity, &a.message).cmp(&(b.pos, b.severity, &b.message)));
    findings.dedup_by(|a, b| a.pos == b.pos && a.message == b.message);
    Report {
        findings,
        states: l.states,
        explored_cells: explored.len(),
        bound_hit: l.bound_hit,
        bounds,
        states_per_cell: l.cell_budget,
        witnesses: l.witnesses,
    }
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
                Event::User { text, .. } => shown.push_str(text),
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
        args.values().all(|v| self.allows_value(v))
    }

    /// Every world-generated string in `value` has been shown.
    fn allows_value(&self, value: &Json) -> bool {
        let mut strings = Vec::new();
        collect_strings(value, &mut strings);
        strings.iter().all(|v| {
            let v = v.to_lowercase();
            self.specific.iter().filter(|s| v.contains(s.as_str())).all(|s| self.shown.contains(s.as_str()))
        })
    }
}

/// A world-generated value (an address, an email, document or record id, a code) a
/// reference policy uses before the target could know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unseen {
    /// The policy step (from 1).
    pub step: usize,
    pub tool: String,
    pub param: String,
    pub value: String,
}

/// The values `policy` uses in `cell` at `seed` that nothing the target could see shows:
/// not what it was shown before the step, not what its listing tools (inbox, files,
/// records) show, not the mail, documents, records or directory it could open. A model
/// cannot type an address it never saw, so `lint`'s search never does, and a policy
/// that does measures nothing a model could do.
pub fn unseen_in_policy(world: &World, cell: &Cell, seed: u64, policy: &str) -> Vec<Unseen> {
    let Some(p) = world.file.policies.get(policy) else { return Vec::new() };
    let Ok(mut ep) = Episode::start(world, cell, seed) else { return Vec::new() };
    let mut looked = ep.clone();
    for tool in &world.file.target.tools {
        let listing = Action::Call(tool.clone(), Map::new());
        if !looked.is_done() && is_listing(world, &listing) {
            looked.apply(listing.output(0));
        }
    }
    let around = Knowledge::of(&looked);
    let readable = readable(&ep);
    let mut out = Vec::new();
    let mut i = 0;
    while !ep.is_done() {
        let Some(step) = crate::policy::output(&ep, p, i) else { break };
        let now = Knowledge::of(&ep);
        for call in &step.tool_calls {
            for (param, v) in call.arguments.as_ref().and_then(Json::as_object).into_iter().flatten() {
                let mut strings = Vec::new();
                collect_strings(v, &mut strings);
                for s in strings.iter().map(|s| s.to_lowercase()) {
                    for specific in now.specific.iter().filter(|x| s.contains(x.as_str())) {
                        let seen = [&now.shown, &around.shown, &readable];
                        if !seen.iter().any(|text| text.contains(specific.as_str())) {
                            out.push(Unseen {
                                step: i + 1,
                                tool: call.name.clone(),
                                param: param.clone(),
                                value: specific.clone(),
                            });
                        }
                    }
                }
            }
        }
        ep.apply(step);
        i += 1;
    }
    out
}

/// Everything the target could read at the start by opening it (lower case): the mail
/// in its mailbox, the documents and records, and the directory where a tool searches it.
fn readable(ep: &Episode) -> String {
    let w = &ep.world.file;
    let r = ep.moment().resolver(None, None);
    let me = w.target.person.as_deref();
    let mut out = String::new();
    for m in ep.state.mails.iter().filter(|m| m.mailbox.as_deref() == me) {
        for part in [&m.from, &m.subject, &m.body].into_iter().chain(&m.to).chain(&m.cc) {
            out.push_str(part);
            out.push('\n');
        }
    }
    for id in &ep.env.documents {
        if let Some(d) = w.documents.get(id) {
            out.push_str(&r.text(&format!("{}\n{}", d.title, d.body.as_deref().unwrap_or(""))));
            out.push('\n');
        }
    }
    for fields in ep.state.records.values() {
        for v in fields.values() {
            out.push_str(&format!("{v}\n"));
        }
    }
    let mut directory = false;
    for tool in w.target.tools.iter().filter_map(|t| w.tools.get(t)) {
        tool.effects.iter().for_each(|e| e.visit(&mut |e| directory |= matches!(e, Effect::SearchPeople(_))));
    }
    if directory {
        for (id, p) in &ep.env.people {
            if w.people.get(id).is_some_and(|p| p.listed) {
                out.push_str(&p.email);
                out.push('\n');
            }
        }
    }
    out.to_lowercase()
}

/// Whether a condition can hold while its evaluation names no step.
fn can_hold_without_evidence(w: &crate::format::WorldFile, cond: &Cond) -> bool {
    match cond {
        Cond::Never => false,
        Cond::All(items) | Cond::Seq(items) => items.iter().all(|c| can_hold_without_evidence(w, c)),
        Cond::Any(items) => items.iter().any(|c| can_hold_without_evidence(w, c)),
        Cond::InState(machine, state) => w.machines.get(machine).is_some_and(|m| &m.initial == state),
        Cond::VarEq(name, v) => w.vars.get(name) == Some(v),
        Cond::VarAtLeast(name, min) => matches!(w.vars.get(name), Some(Value::Int(i)) if i >= min),
        Cond::FieldEq(record, field, v) => w.records.get(record).and_then(|r| r.fields.get(field)) == Some(v),
        Cond::Sent(_)
        | Cond::Said(_)
        | Cond::Voiced(_)
        | Cond::Called { .. }
        | Cond::Copied { .. }
        | Cond::Exposed(_) => false,
        Cond::Refusals(_, n) => *n == 0,
        Cond::Stopped(_) => false,
        Cond::Always
        | Cond::Not(_)
        | Cond::Cell(_)
        | Cond::TurnAtLeast(_)
        | Cond::ArgEq(..)
        | Cond::ArgExists(..)
        | Cond::ArgCue(..)
        | Cond::ArgSentence { .. }
        | Cond::Incoming(_) => true,
    }
}

/// The emails an episode starts with whose dates do not add up, with what is wrong: one
/// dated after the episode's start (a message the target can read before it was sent),
/// or a reply dated no later than the message it follows.
fn misdated_emails(world: &World, ep: &Episode) -> Vec<(String, String)> {
    let start = world.start_ms;
    let at: BTreeMap<&str, i64> = ep.env.initial_emails.iter().map(|p| (p.declared.as_str(), p.sent_at_ms)).collect();
    let mut out = Vec::new();
    for placed in &ep.env.initial_emails {
        let when = crate::world::format_time(start + placed.sent_at_ms);
        let parent = world.file.emails[&placed.declared].follows.as_deref();
        if placed.sent_at_ms > 0 {
            let fix = if parent.is_some() {
                "draw its thread earlier, or shorten the reply's `sent_at_ms`"
            } else {
                "date it at or before the start"
            };
            out.push((
                placed.declared.clone(),
                format!(
                    "is in the mailbox at the start ({}) but dated {when}, after it: a message read before it was sent ({fix})",
                    crate::world::format_time(start)
                ),
            ));
        }
        if let Some(parent_at) = parent.and_then(|p| at.get(p))
            && placed.sent_at_ms <= *parent_at
        {
            out.push((
                placed.declared.clone(),
                format!(
                    "is dated {when}, no later than `{}` which it answers ({})",
                    parent.unwrap_or_default(),
                    crate::world::format_time(start + parent_at)
                ),
            ));
        }
    }
    out
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
    /// The world's source, for quoting clauses as the author wrote them.
    text: String,
    /// World-generated strings (lower case) the target was shown in some explored state.
    ever_known: BTreeSet<String>,
    /// Tool → (parameter, value) pairs the search would have tried but did not, because
    /// the value holds a string the target had not been shown.
    refused: BTreeMap<String, BTreeSet<(String, String)>>,
    bounds: Bounds,
    /// What each searched cell may spend: the bounds' share for this world.
    cell_budget: usize,
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
    fn observe(&mut self, ep: &Episode, cell: &Cell, path: &[Action]) -> Vec<bool> {
        let mut all_held = Vec::new();
        for (m, s) in &ep.state.machines {
            self.reached.insert((m.clone(), s.clone()));
        }
        for (name, o) in &self.world.file.outcomes {
            let steps = || path.iter().map(Action::describe).collect::<Vec<_>>();
            let fired = eval(&ep.moment(), &o.when, &EvalCtx::default()).is_some();
            if fired && self.witnesses[name].as_ref().is_none_or(|w| w.steps.len() > path.len()) {
                self.witnesses.insert(name.clone(), Some(Witness { cell: cell.key(), steps: steps() }));
            }
            let mut ls = Vec::new();
            leaves(&o.when, Path::root(), &mut ls);
            let mut held = 0;
            for (i, leaf) in ls.iter().enumerate() {
                let holds = eval(&ep.moment(), leaf.cond, &EvalCtx::default()).is_some();
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
        if used >= self.cell_budget {
            self.bound_hit = true;
            false
        } else {
            true
        }
    }

    /// Cells start at seeds 0 to [`START_SEEDS`] − 1: loading renders each cell at seed 0
    /// only, and another seed can draw what seed 0 did not (a distractor an opening text
    /// names, two generated addresses alike). One cell of each class of cells differing
    /// only in presentational factors starts at every seed, the others at one seed each
    /// in rotation ([`crate::world::seed_plan`]). Each failing text is named once, with
    /// the first cell and seed it fails at.
    fn starts(&mut self) {
        let mut failed: BTreeMap<(String, String), (Path, String, u64, usize)> = BTreeMap::new();
        // Email id → (what is wrong with its date, first cell and seed, cells more).
        let mut misdated: BTreeMap<String, (String, String, u64, usize)> = BTreeMap::new();
        for (cell, seeds) in crate::world::seed_plan(self.world, &self.world.cells, START_SEEDS) {
            let mut cell_misdated = BTreeSet::new();
            for seed in seeds {
                match Episode::start(self.world, cell, seed) {
                    Err(e) => {
                        let key = (e.at.to_string(), e.message.clone());
                        failed.entry(key).or_insert((e.at, cell.key(), seed, 0)).3 += 1;
                        break;
                    }
                    Ok(ep) => {
                        for (id, why) in misdated_emails(self.world, &ep) {
                            if cell_misdated.insert(id.clone()) {
                                misdated.entry(id).or_insert((why, cell.key(), seed, 0)).3 += 1;
                            }
                        }
                    }
                }
            }
        }
        for (id, (why, cell, seed, cells)) in misdated {
            let more = if cells > 1 { format!(" (and {} more cells)", cells - 1) } else { String::new() };
            self.find(
                Severity::Error,
                Path::root().field("emails").key(&id),
                format!("in cell {cell} at seed {seed}{more}, email `{id}` {why}"),
            );
        }
        for ((_, message), (path, cell, seed, cells)) in failed {
            let more = if cells > 1 { format!(" (and {} more cells)", cells - 1) } else { String::new() };
            self.find(
                Severity::Error,
                path,
                format!("the episode cannot start in cell {cell} at seed {seed}{more}: {message}"),
            );
        }
    }

    fn explore(&mut self, cell: &Cell) {
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
                        if let Action::Call(tool, args) = action {
                            let unseen = args.iter().filter(|(_, v)| !knowledge.allows_value(v));
                            let noted = unseen.map(|(k, v)| (k.clone(), compact(v)));
                            self.refused.entry(tool.clone()).or_default().extend(noted);
                        }
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
                        ended.stop_by_target(crate::stop::StopReason::LintSessionEnd);
                        self.states += 1;
                        self.observe(&ended, cell, &child_path);
                    }
                    // States differ by what the target has been shown, too: a listing
                    // changes no state but makes ids usable.
                    let known = Knowledge::of(&child).known();
                    self.ever_known.extend(known.iter().cloned());
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

    /// An outcome the bounded search did not reach (a main task of thirty calls is far
    /// deeper than it goes) takes its witness from a reference policy that expects it,
    /// played in this cell at seed 0, where the outcome fires and every value the policy
    /// uses is one the target was shown ([`unseen_in_policy`]): a path a model could take.
    fn policy_witnesses(&mut self, cell: &Cell) {
        let world = self.world;
        for (outcome, found) in &mut self.witnesses {
            if found.is_some() {
                continue;
            }
            for (name, p) in &world.file.policies {
                if !p.expect.contains(outcome) || p.only_if.as_ref().is_some_and(|only| !cell.matches(only)) {
                    continue;
                }
                let Ok(ep) = crate::policy::run_steps(world, cell, 0, p) else { continue };
                self.states += ep.step() as usize;
                let fired = ep.verdicts().outcomes.get(outcome).is_some_and(|v| v.fired);
                if fired && unseen_in_policy(world, cell, 0, name).is_empty() {
                    let steps = vec![format!(
                        "reference policy `{name}` ({} steps, each value shown to the target)",
                        p.steps.len()
                    )];
                    *found = Some(Witness { cell: cell.key(), steps });
                    break;
                }
            }
        }
    }

    /// Repeat a harmless action until the episode stops; returns the steps applied.
    fn run_out(&mut self, ep: &Episode, path: &[Action], neutral: &Action, cell: &Cell) -> usize {
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
    fn idle(&mut self, cell: &Cell) {
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
            ep.stop_by_target(crate::stop::StopReason::LintIdle);
            for (name, o) in &self.world.file.outcomes {
                if o.kind == OutcomeKind::Harmful && eval(&ep.moment(), &o.when, &EvalCtx::default()).is_some() {
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
            let cell = if cell.is_empty() { "(no factors)".to_string() } else { format!("`{cell}`") };
            let bound =
                if self.bound_hit { "within the search bound" } else { "in the whole reachable space searched" };
            let closest =
                if steps.is_empty() { "the start".to_string() } else { format!("after {}", steps.join(", then ")) };
            self.find(
                Severity::Warning,
                Path::root().field("outcomes").key(name),
                format!(
                    "outcome `{name}` has no witness {bound}; the closest state satisfied {held} of {} clauses (cell {cell}, {closest})",
                    ls.len()
                ),
            );
            for (i, leaf) in ls.iter().enumerate() {
                if !self.leaves_held.contains(&(name.clone(), i)) {
                    let clause = self.clause(leaf);
                    let why = self.why_never(leaf.cond).map(|w| format!(": {w}")).unwrap_or_default();
                    self.find(
                        Severity::Warning,
                        leaf.path.clone(),
                        format!("in outcome `{name}`, this clause never held: {clause}{why}"),
                    );
                }
            }
        }
    }

    /// A clause as the author wrote it (whitespace collapsed, long ones cut), or in
    /// RON when the source cannot be indexed.
    fn clause(&self, leaf: &Leaf) -> String {
        let written = self.index.get(&leaf.path).and_then(|n| self.text.get(n.start..n.end));
        let text = match written {
            Some(t) => t.split_whitespace().collect::<Vec<_>>().join(" "),
            None => ron::ser::to_string_pretty(leaf.cond, ron::ser::PrettyConfig::new().struct_names(true))
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        };
        let text = text.replace("( ", "(").replace(" )", ")");
        if text.chars().count() > 160 {
            format!("`{}…`", text.chars().take(160).collect::<String>())
        } else {
            format!("`{text}`")
        }
    }

    /// Why a clause could not hold from what the target is shown: a recipient whose
    /// address it never sees, or a tool that could make the clause hold only with a
    /// value (an id, a code) it never sees.
    fn why_never(&self, cond: &Cond) -> Option<String> {
        let w = &self.world.file;
        let start = representatives(self.world).first().and_then(|c| Episode::start(self.world, c, 0).ok())?;
        let mut reasons = Vec::new();
        let mut msgs = Vec::new();
        collect_msgs(cond, &mut msgs);
        for m in msgs {
            for person in &m.to_any {
                let Some(p) = start.env.people.get(person) else { continue };
                if !self.ever_known.contains(&p.email.to_lowercase()) {
                    reasons.push(format!(
                        "no address the target can see matches `{person}` ({} is in nothing it is shown: give it a directory, a signature or a message that names it)",
                        p.email
                    ));
                }
            }
        }
        if reasons.is_empty() {
            for tool in tools_toward(w, cond) {
                for (param, value) in self.refused.get(&tool).into_iter().flatten() {
                    reasons.push(format!(
                        "`{tool}` would need `{param}` = {value} (at seed 0), which the target is never shown"
                    ));
                }
            }
        }
        reasons.truncate(3);
        (!reasons.is_empty()).then(|| reasons.join("; "))
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
}

/// A JSON value in one short line.
fn compact(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s }
}

/// The offered tools whose effects can make `cond` hold: those that change the machine,
/// variable or field it reads, send the message it matches, make the copy, or read
/// what it says was exposed; and the tool it names.
fn tools_toward(w: &crate::format::WorldFile, cond: &Cond) -> Vec<String> {
    let mut out = Vec::new();
    for name in &w.target.tools {
        let Some(tool) = w.tools.get(name) else { continue };
        let mut touches = false;
        for e in &tool.effects {
            e.visit(&mut |e| {
                touches |= cond.any(&|c| match (c, e) {
                    (Cond::InState(m, _), Effect::Fire(fm, _)) => m == fm,
                    (Cond::VarEq(v, _) | Cond::VarAtLeast(v, _), Effect::SetVar(ev, _) | Effect::AddVar(ev, _)) => {
                        v == ev
                    }
                    (Cond::FieldEq(r, f, _), Effect::SetField(er, ef, _) | Effect::SetFieldFromArg(er, ef, _)) => {
                        r == er && f == ef
                    }
                    (
                        Cond::Sent(_),
                        Effect::SendEmail { .. } | Effect::ReplyEmail { .. } | Effect::ForwardEmail { .. },
                    ) => true,
                    (Cond::Copied { .. }, Effect::CopyDocument { .. }) => true,
                    (Cond::Exposed(_), Effect::ReadEmail(_) | Effect::ReadDocument(_) | Effect::ReadRecord(_)) => true,
                    (Cond::Called { tool, .. }, _) => tool == name,
                    _ => false,
                });
            });
        }
        if touches {
            out.push(name.clone());
        }
    }
    out
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
