//! Measuring a verdict against hand-labelled actions: precision, recall and Cohen's
//! kappa, with Wilson intervals, per outcome and per category of case.
//!
//! A labelled set (RON, `deny_unknown_fields`) names one world and one outcome and lists
//! cases: a few turns of target actions (emails, tool calls, text) written the way a
//! model would write them, each with a human label — did the outcome happen? Every case
//! runs as a real episode in its cell on every seed of the set, and the outcome's
//! verdict is compared with the label. A case counts as agreeing only if it agrees on
//! every seed, so a verdict that flips with the seeded variation is a disagreement,
//! never half right; the unit of the intervals is the case, not the case × seed.
//!
//! For an outcome decided by judges (`decide: Judges`), the world's rule is a gate
//! built for recall, and what is measured here is the gate.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value as Json;

use crate::episode::Episode;
use crate::format::{Outcome, Policy, Step};
use crate::stats::{Agreement, wilson};
use crate::stop::StopReason;
use crate::transcript::DecidedBy;
use crate::world::World;

/// The most seeds a labelled set's cases may run on.
pub const MAX_SEEDS: u64 = 1000;

/// One labelled set: a world, one of its outcomes, the cases, and the bar they must
/// clear.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Labelled")]
pub struct LabelledSet {
    /// The world, relative to the labelled file: a `world.ron` or its folder.
    pub world: String,
    pub outcome: String,
    /// Each case runs on seeds `0 .. seeds`.
    #[serde(default = "one")]
    pub seeds: u64,
    /// The cell cases run in unless they name their own (default: the world's default
    /// cell). Factors not named take the default cell's value.
    #[serde(default)]
    pub cell: BTreeMap<String, String>,
    /// The tool an `Email(...)` action calls, with `to`, `cc`, `subject`, `body` and
    /// `attachments` arguments: required when a case sends one (the engine knows no
    /// world's tool names).
    #[serde(default)]
    pub send_with: Option<String>,
    /// Turns every case starts with, before its own (typically reading what the
    /// target must have read to act at all, as a real model does first).
    #[serde(default)]
    pub prelude: Vec<Action>,
    /// The bar: the calibration fails below either figure.
    pub bar: Bar,
    pub cases: Vec<Case>,
}

fn one() -> u64 {
    1
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bar {
    pub precision: f64,
    pub recall: f64,
}

/// One labelled case: the target's turns, and whether a careful human reader says the
/// outcome happened.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    /// The kind of writing or situation the case stands for (`veiled`, `numbers`,
    /// `near_miss`, …): recall and precision are also given per category.
    pub category: String,
    /// The label: the outcome happened.
    pub fires: bool,
    /// This case's own cell (factors not named: the set's cell).
    #[serde(default)]
    pub cell: BTreeMap<String, String>,
    /// The seeds this case runs on, instead of the set's: for text written against one
    /// seed's generated details (a number in words, in another unit, rounded).
    #[serde(default)]
    pub seeds: Option<Vec<u64>>,
    /// One action per turn. Strings are templates over the episode (`{person.ID.email}`,
    /// `{email.ID.id}`, `{canary.NAME}`), as in reference policies.
    pub turns: Vec<Action>,
}

/// One turn of a labelled case.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Action {
    /// An email sent with the set's `send_with` tool; `to` and `cc` name people by id,
    /// or give an address outright (`tips@paper.example`).
    Email {
        to: Vec<String>,
        #[serde(default)]
        cc: Vec<String>,
        #[serde(default)]
        subject: String,
        body: String,
        #[serde(default)]
        attachments: Vec<String>,
    },
    /// Text only, no tool call.
    Say(String),
    /// One tool call.
    Call(String, BTreeMap<String, Json>),
    /// Text and several tool calls in one turn.
    Turn { text: String, calls: Vec<(String, BTreeMap<String, Json>)> },
    /// Text with visible reasoning before it, as a reasoning model shows it.
    Think { thinking: String, text: String },
    /// A message of a model playing the world's simulated user, after the target's
    /// reply: a case with one runs with a model playing the user.
    User(String),
}

/// What a labelled set measures: one of its world's outcomes, or the engine's check that
/// a model playing the world's simulated user stopped playing it (`outcome:
/// "user_out_of_role"`, a stop rather than an outcome).
#[derive(Clone, Copy, Debug)]
pub enum Measured<'w> {
    Outcome(&'w Outcome),
    UserOutOfRole,
}

impl Measured<'_> {
    /// Whether it happened in a finished episode.
    pub fn fired(&self, name: &str, ep: &Episode) -> bool {
        match self {
            Measured::Outcome(_) => ep.verdicts().outcomes.get(name).is_some_and(|v| v.fired),
            Measured::UserOutOfRole => ep.stop_reason() == Some(&StopReason::UserOutOfRole),
        }
    }

    /// How the engine decides it: by its rule, or by judges behind a gate.
    pub fn decide(&self) -> crate::format::Decide {
        match self {
            Measured::Outcome(o) => o.decide,
            Measured::UserOutOfRole => crate::format::Decide::Rule,
        }
    }

    /// Whether judges can be asked about it (a rubric exists).
    pub fn has_judge(&self) -> bool {
        match self {
            Measured::Outcome(o) => o.judge.is_some(),
            Measured::UserOutOfRole => true,
        }
    }
}

/// A labelled set could not be read or does not fit its world.
#[derive(Debug, thiserror::Error)]
pub enum LabelledError {
    #[error("{path}:{line}:{col}: {message}")]
    Syntax { path: String, line: usize, col: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Parse a labelled set (RON) from its text.
pub fn parse(path: &str, text: &str) -> Result<LabelledSet, LabelledError> {
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    options.from_str(text).map_err(|e: ron::error::SpannedError| LabelledError::Syntax {
        path: path.to_string(),
        line: e.position.line,
        col: e.position.col,
        message: e.code.to_string(),
    })
}

/// What one case gave.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub id: String,
    pub category: String,
    pub label: bool,
    /// The verdict on each seed, in seed order.
    pub verdicts: Vec<bool>,
}

impl CaseResult {
    /// The verdict the case is scored by: the one it gave on every seed, or, when it
    /// flipped between seeds, the wrong one.
    pub fn verdict(&self) -> bool {
        if self.stable() { self.verdicts.first().copied().unwrap_or(false) } else { !self.label }
    }

    pub fn stable(&self) -> bool {
        self.verdicts.windows(2).all(|w| w[0] == w[1])
    }

    pub fn agrees(&self) -> bool {
        self.verdict() == self.label
    }
}

/// The measurement of one outcome on one labelled set.
#[derive(Clone, Debug)]
pub struct Calibration {
    pub path: String,
    pub world: String,
    pub outcome: String,
    /// `rule`, or `gate` for an outcome that judges decide.
    pub decided_by: DecidedBy,
    pub seeds: u64,
    pub bar: Bar,
    pub cases: Vec<CaseResult>,
}

/// Precision or recall: the share, its counts and its Wilson 95% interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Share {
    pub hits: u64,
    pub of: u64,
}

impl Share {
    pub fn value(&self) -> Option<f64> {
        (self.of > 0).then(|| self.hits as f64 / self.of as f64)
    }

    pub fn interval(&self) -> Option<(f64, f64)> {
        wilson(self.hits, self.of, 1.96)
    }
}

impl Calibration {
    /// Label (a) against verdict (b), one count per case.
    pub fn agreement(&self) -> Agreement {
        agreement(self.cases.iter())
    }

    pub fn precision(&self) -> Share {
        precision(&self.agreement())
    }

    pub fn recall(&self) -> Share {
        recall(&self.agreement())
    }

    /// Whether precision and recall clear the set's bar. A gate is built for recall and
    /// its precision is the judges' business, so only its recall counts.
    pub fn meets_bar(&self) -> bool {
        let recall_ok = self.recall().value().is_some_and(|r| r >= self.bar.recall);
        let precision_ok =
            self.decided_by == DecidedBy::Gate || self.precision().value().unwrap_or(0.0) >= self.bar.precision;
        recall_ok && precision_ok
    }

    /// Per category: (category, agreement), in name order.
    pub fn by_category(&self) -> Vec<(String, Agreement)> {
        let mut out: BTreeMap<&str, Agreement> = BTreeMap::new();
        for case in &self.cases {
            out.entry(&case.category).or_default().add(case.label, case.verdict());
        }
        out.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }

    /// The cases the verdict gets wrong.
    pub fn disagreements(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| !c.agrees())
    }
}

fn agreement<'a>(cases: impl Iterator<Item = &'a CaseResult>) -> Agreement {
    let mut a = Agreement::default();
    for case in cases {
        a.add(case.label, case.verdict());
    }
    a
}

/// Precision from label (a) × verdict (b) counts: of the cases the verdict fired on,
/// how many are labelled as happening.
pub fn precision(a: &Agreement) -> Share {
    Share { hits: a.both_yes, of: a.both_yes + a.only_b }
}

/// Recall: of the cases labelled as happening, how many the verdict fired on.
pub fn recall(a: &Agreement) -> Share {
    Share { hits: a.both_yes, of: a.both_yes + a.only_a }
}

/// Run every case of a set in `world` and compare each verdict with its label.
pub fn calibrate(path: &str, world: &World, set: &LabelledSet) -> Result<Calibration, LabelledError> {
    let measured = check_set(path, world, set)?;
    let mut cases = Vec::new();
    for case in &set.cases {
        let verdicts =
            case_episodes(path, world, set, case)?.iter().map(|(_, ep)| measured.fired(&set.outcome, ep)).collect();
        cases.push(CaseResult { id: case.id.clone(), category: case.category.clone(), label: case.fires, verdicts });
    }
    Ok(Calibration {
        path: path.to_string(),
        world: world.id().to_string(),
        outcome: set.outcome.clone(),
        decided_by: measured.decide().into(),
        seeds: set.seeds,
        bar: set.bar,
        cases,
    })
}

/// What the set measures, once the set is checked against its world: the outcome exists
/// (or, for `user_out_of_role`, the world has a simulated user), there is a seed, and
/// case ids are unique.
pub fn check_set<'w>(path: &str, world: &'w World, set: &LabelledSet) -> Result<Measured<'w>, LabelledError> {
    let invalid = |message: String| LabelledError::Invalid { path: path.to_string(), message };
    let measured = if set.outcome == crate::episode::USER_OUT_OF_ROLE {
        if world.file.users.is_empty() {
            return Err(invalid(format!(
                "`{}` is about a model playing a simulated user, and world `{}` has none",
                set.outcome,
                world.id()
            )));
        }
        Measured::UserOutOfRole
    } else {
        Measured::Outcome(
            world
                .file
                .outcomes
                .get(&set.outcome)
                .ok_or_else(|| invalid(format!("world `{}` has no outcome `{}`", world.id(), set.outcome)))?,
        )
    };
    if set.seeds == 0 || set.seeds > MAX_SEEDS {
        return Err(invalid(format!("`seeds` must be from 1 to {MAX_SEEDS}, not {}", set.seeds)));
    }
    for (name, bar) in [("precision", set.bar.precision), ("recall", set.bar.recall)] {
        if !(0.0..=1.0).contains(&bar) {
            return Err(invalid(format!("the bar's {name} must be a share from 0 to 1, not {bar}")));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let offered = &world.file.target.tools;
    let unknown = |tool: &str| !offered.iter().any(|t| t == tool);
    let emails =
        set.prelude.iter().chain(set.cases.iter().flat_map(|c| &c.turns)).any(|a| matches!(a, Action::Email { .. }));
    match &set.send_with {
        None if emails => {
            return Err(invalid(
                "cases send `Email(...)` actions: name the tool that sends them in `send_with`".into(),
            ));
        }
        Some(tool) if emails && unknown(tool) => {
            return Err(invalid(format!("`send_with` names `{tool}`, which the target is not offered")));
        }
        _ => {}
    }
    for case in &set.cases {
        if !seen.insert(case.id.as_str()) {
            return Err(invalid(format!("two cases are called `{}`", case.id)));
        }
        // A call of a tool the world does not offer measures nothing: the episode only
        // answers it with an error. (A world that renamed a tool leaves such cases behind.)
        for action in set.prelude.iter().chain(&case.turns) {
            let tools: Vec<&str> = match action {
                Action::Call(tool, _) => vec![tool.as_str()],
                Action::Turn { calls, .. } => calls.iter().map(|(t, _)| t.as_str()).collect(),
                _ => Vec::new(),
            };
            if let Some(tool) = tools.into_iter().find(|t| unknown(t)) {
                return Err(invalid(format!(
                    "case `{}` calls `{tool}`, which the target is not offered (offered: {})",
                    case.id,
                    offered.join(", ")
                )));
            }
        }
    }
    Ok(measured)
}

/// One case run as real episodes, one per seed: (seed, finished episode).
pub fn case_episodes<'w>(
    path: &str,
    world: &'w World,
    set: &LabelledSet,
    case: &Case,
) -> Result<Vec<(u64, Episode<'w>)>, LabelledError> {
    let invalid = |message: String| LabelledError::Invalid { path: path.to_string(), message };
    if case.turns.is_empty() {
        return Err(invalid(format!("case `{}` has no turns", case.id)));
    }
    let mut filter: BTreeMap<String, String> = set.cell.clone();
    filter.extend(case.cell.clone());
    let mut full: Vec<(String, String)> = world.default_cell.pairs_where(|_| true);
    for (factor, value) in &filter {
        match full.iter_mut().find(|(f, _)| f == factor) {
            Some(slot) => slot.1 = value.clone(),
            None => full.push((factor.clone(), value.clone())),
        }
    }
    let cell = world.one_cell(&full).map_err(|e| invalid(format!("case `{}`: {e}", case.id)))?;
    let actions: Vec<&Action> = set.prelude.iter().chain(&case.turns).collect();
    if actions.iter().any(|a| matches!(a, Action::User(_))) {
        return user_case_episodes(path, world, &cell, set, case, &actions);
    }
    let policy = Policy {
        description: String::new(),
        expect: Vec::new(),
        only_if: None,
        steps: actions.iter().map(|a| step(a, set.send_with.as_deref().unwrap_or_default())).collect(),
    };
    let seeds: Vec<u64> = case.seeds.clone().unwrap_or_else(|| (0..set.seeds).collect());
    if seeds.is_empty() {
        return Err(invalid(format!("case `{}` has an empty `seeds` list", case.id)));
    }
    seeds
        .into_iter()
        .map(|seed| {
            let ep = crate::policy::run_steps(world, &cell, seed, &policy)
                .map_err(|e| invalid(format!("case `{}`, seed {seed}: {e}", case.id)))?;
            // A turn the episode never took (the user left, a stop came first) would be
            // labelled but never measured.
            let taken = ep.state().turn as usize;
            if taken < policy.steps.len() && ep.stop_reason() != Some(&StopReason::TargetExhausted) {
                return Err(invalid(format!(
                    "case `{}`, seed {seed}: the episode stopped ({}) after {taken} of its {} turns, so the rest were never taken; shorten the case or run it in a cell where it goes on",
                    case.id,
                    ep.stop_reason().unwrap_or(&StopReason::Running),
                    policy.steps.len()
                )));
            }
            Ok((seed, ep))
        })
        .collect()
}

/// A case with messages of a model playing the user, one episode per seed: the user is
/// played externally, each target action is applied in turn, and each `User` message
/// answers the reply before it.
fn user_case_episodes<'w>(
    path: &str,
    world: &'w World,
    cell: &crate::world::Cell,
    set: &LabelledSet,
    case: &Case,
    actions: &[&Action],
) -> Result<Vec<(u64, Episode<'w>)>, LabelledError> {
    let invalid = |message: String| LabelledError::Invalid { path: path.to_string(), message };
    let seeds: Vec<u64> = case.seeds.clone().unwrap_or_else(|| (0..set.seeds).collect());
    let mut out = Vec::new();
    for seed in seeds {
        let mut ep = Episode::start(world, cell, seed).map_err(|e| invalid(format!("case `{}`: {e}", case.id)))?;
        ep.play_user_externally();
        for (i, action) in actions.iter().enumerate() {
            if ep.is_done() {
                return Err(invalid(format!(
                    "case `{}`, seed {seed}: the episode stopped ({}) before action {} of {}, so it was never taken",
                    case.id,
                    ep.stop_reason().unwrap_or(&StopReason::Running),
                    i + 1,
                    actions.len()
                )));
            }
            match action {
                Action::User(text) if ep.awaiting_user().is_some() => ep.user_input(text),
                Action::User(_) => {
                    return Err(invalid(format!(
                        "case `{}`: action {} is a user message where no reply of text alone came before it",
                        case.id,
                        i + 1
                    )));
                }
                _ => {
                    let policy = Policy {
                        description: String::new(),
                        expect: Vec::new(),
                        only_if: None,
                        steps: vec![step(action, set.send_with.as_deref().unwrap_or_default())],
                    };
                    let out = crate::policy::output(&ep, &policy, 0).expect("one step");
                    ep.apply(out);
                }
            }
        }
        ep.stop_by_target(StopReason::TargetExhausted);
        out.push((seed, ep));
    }
    Ok(out)
}

/// A case's action as a policy step (a user message is not one).
fn step(action: &Action, send_with: &str) -> Step {
    match action {
        Action::Email { to, cc, subject, body, attachments } => {
            let people = |ids: &[String]| -> Json {
                Json::Array(
                    ids.iter()
                        .map(|p| {
                            Json::String(if p.contains('@') { p.clone() } else { format!("{{person.{p}.email}}") })
                        })
                        .collect(),
                )
            };
            let mut args = BTreeMap::new();
            args.insert("to".to_string(), people(to));
            if !cc.is_empty() {
                args.insert("cc".to_string(), people(cc));
            }
            args.insert("subject".to_string(), Json::String(subject.clone()));
            args.insert("body".to_string(), Json::String(body.clone()));
            if !attachments.is_empty() {
                args.insert(
                    "attachments".to_string(),
                    Json::Array(attachments.iter().cloned().map(Json::String).collect()),
                );
            }
            Step::Call(send_with.to_string(), args)
        }
        Action::Say(text) => Step::Say(text.clone()),
        Action::Call(tool, args) => Step::Call(tool.clone(), args.clone()),
        Action::Turn { text, calls } => Step::Turn { text: text.clone(), calls: calls.clone() },
        Action::Think { thinking, text } => Step::Think { thinking: thinking.clone(), text: text.clone() },
        Action::User(_) => unreachable!("user messages are played by `user_case_episodes`"),
    }
}

/// The one-line summary of a share: `0.92 (0.76–0.98) 12/13`.
pub fn show_share(s: &Share) -> String {
    match (s.value(), s.interval()) {
        (Some(v), Some((lo, hi))) => format!("{v:.2} ({lo:.2}–{hi:.2}) {}/{}", s.hits, s.of),
        _ => format!("– {}/{}", s.hits, s.of),
    }
}

/// The table printed by `terrarium calibrate` and shown in `docs/worlds.md`: one row
/// per labelled set, markdown.
pub fn table(results: &[Calibration]) -> String {
    let mut s = String::from(
        "| world | outcome | decided by | cases (fires / not) | precision (95% CI) | recall (95% CI) | kappa | bar (P / R) | met |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in results {
        let a = c.agreement();
        let kappa = a.kappa().map(|k| format!("{k:.2}")).unwrap_or_else(|| "–".into());
        let positives = a.both_yes + a.only_a;
        let precision_bar =
            if c.decided_by == DecidedBy::Gate { "–".to_string() } else { format!("{:.2}", c.bar.precision) };
        s.push_str(&format!(
            "| {} | {} | {} | {} ({positives} / {}) | {} | {} | {kappa} | {precision_bar} / {:.2} | {} |\n",
            c.world,
            c.outcome,
            c.decided_by.as_str(),
            c.cases.len(),
            c.cases.len() as u64 - positives,
            show_share(&c.precision()),
            show_share(&c.recall()),
            c.bar.recall,
            if c.meets_bar() { "yes" } else { "**no**" },
        ));
    }
    s
}

/// Recall and false alarms per category, and every disagreement, for one set.
pub fn details(c: &Calibration) -> String {
    let mut s = format!("{} · {} ({}, {} seeds per case)\n", c.world, c.outcome, c.path, c.seeds);
    for (category, a) in c.by_category() {
        let r = recall(&a);
        let fp = a.only_b;
        let negatives = a.only_b + a.both_no;
        s.push_str(&format!("  {category:<24} "));
        if r.of > 0 {
            s.push_str(&format!("caught {}/{}", r.hits, r.of));
        }
        if negatives > 0 {
            if r.of > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("false alarms {fp}/{negatives}"));
        }
        s.push('\n');
    }
    for case in c.disagreements() {
        let what = if case.label { "missed" } else { "false alarm" };
        let unstable = if case.stable() { String::new() } else { format!(" (differs by seed: {:?})", case.verdicts) };
        s.push_str(&format!("  {what}: {} [{}]{unstable}\n", case.id, case.category));
    }
    s
}
