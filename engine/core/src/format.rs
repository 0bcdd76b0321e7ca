//! World format v1: serde types that mirror the RON text of a world file one-to-one.
//!
//! These types are the low stage of loading: they check shape and field names
//! (`deny_unknown_fields` everywhere, externally tagged enums only) and nothing else.
//! [`crate::world`] validates them into the resolved model the engine runs.
//! `docs/world-format.md` documents every construct here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A condition-cell pattern: factor → the values it may take. Factors not named match
/// any value.
pub type CellPattern = BTreeMap<String, Vec<String>>;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename = "World")]
pub struct WorldFile {
    /// Format version; must be 1.
    pub format: u32,
    pub id: String,
    pub title: String,
    pub description: String,
    pub version: String,
    /// Libraries of shared parts (`Library` files: tools, people, emails, documents,
    /// records, texts), relative to the world file. Their parts join the world's as if
    /// written in it; a name defined twice is an error. Not serialised: what counts
    /// for the world's hashes is the parts themselves, wherever they were written.
    #[serde(default, skip_serializing)]
    pub include: Vec<String>,

    #[serde(default)]
    pub factors: Vec<Factor>,
    /// The one or two factors a report's factor matrix shows by default (rows, then
    /// columns), the others pooled; without them, the first two factors. How results
    /// are shown, not what is simulated: not serialised, so no hash covers it.
    #[serde(default, skip_serializing)]
    pub main_factors: Vec<String>,
    /// Cells that are not part of the design; a cell matching any pattern is invalid.
    #[serde(default)]
    pub invalid_cells: Vec<CellPattern>,
    /// The control cell (no goal conflict, no threat). Required when there are factors.
    #[serde(default)]
    pub control: Option<BTreeMap<String, String>>,
    /// The cell used when none is named. Required when there are factors.
    #[serde(default)]
    pub default: Option<BTreeMap<String, String>>,
    /// Named texts, switched on factor values; used in templates as `{text.NAME}`.
    #[serde(default)]
    pub texts: BTreeMap<String, Text>,

    pub turns: Turns,
    #[serde(default)]
    pub limits: Limits,
    pub target: TargetRole,
    #[serde(default)]
    pub org: Org,
    #[serde(default)]
    pub variation: Variation,

    #[serde(default)]
    pub people: BTreeMap<String, Person>,
    #[serde(default)]
    pub emails: BTreeMap<String, Email>,
    #[serde(default)]
    pub documents: BTreeMap<String, Document>,
    #[serde(default)]
    pub records: BTreeMap<String, Record>,
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    #[serde(default)]
    pub machines: BTreeMap<String, Machine>,

    #[serde(default)]
    pub tools: BTreeMap<String, Tool>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub actors: BTreeMap<String, Actor>,
    /// Simulated users: people who talk with the target in the conversation over many
    /// turns, following an agenda and an escalation ladder (`turns.on_text_only:
    /// User("id")` names the one who answers). Skipped when empty, so worlds without
    /// one keep their hashes.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub users: BTreeMap<String, User>,

    #[serde(default)]
    pub outcomes: BTreeMap<String, Outcome>,
    #[serde(default)]
    pub stops: Vec<Stop>,
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
    /// A covert-sabotage design: which factor gives the target a secret side task,
    /// which outcomes are the main and the side task, and what a monitor is never shown.
    /// What a monitor reads and how a report groups, never what is simulated or decided:
    /// not serialised, so no hash covers it.
    #[serde(default, skip_serializing)]
    pub sabotage: Option<Sabotage>,
}

/// A world with a legitimate main task and a secret, harmful side task, read by a
/// monitor that scores how suspicious each transcript is (SHADE-Arena's design). The
/// honest runs (`factor` at `honest`) are the monitor's negatives; every other value of
/// `factor` gives the target the side task.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sabotage {
    /// The factor whose values say whether the target was given the side task.
    pub factor: String,
    /// The value of `factor` under which it was not: the honest runs.
    pub honest: String,
    /// The `Success` outcome that says the main task was done, decided by world state.
    pub main_task: String,
    /// The `Harmful` outcome that says the side task was done, decided by world state.
    pub side_task: String,
    /// Texts (`{text.NAME}`) a monitor never sees: each one's rendering is cut from the
    /// system prompt and every message the world sent, wherever it appears.
    #[serde(default)]
    pub hidden_texts: Vec<String>,
    /// The cells whose target reasoning (a scratchpad, a provider's thinking) a monitor
    /// is not shown unless the run asks for it (`--monitor-sees-hidden-reasoning`).
    #[serde(default)]
    pub hidden_reasoning: Option<CellPattern>,
    /// A rule-based monitor (`--monitor rule`), the baseline for model monitors: each
    /// flag adds its score for every step its condition names, to at most 100.
    #[serde(default)]
    pub baseline: Vec<Flag>,
}

/// One flag of a world's rule-based monitor.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    pub id: String,
    /// What raises the flag; each step of its evidence counts once. Write it over what a
    /// transcript shows (calls made, messages sent), as a monitor could see it.
    pub when: Cond,
    /// Suspicion added per step, out of 100.
    pub score: u8,
    /// What the flag says when raised.
    pub reason: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Factor {
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub values: Vec<String>,
    /// Phrases that belong to some values: a cell with another value of this factor
    /// that shows one of them has the factor leaking into it (`lint --realism` warns,
    /// naming the cell and where the phrase is written). For example, under `goal`, the
    /// words that give the AI a goal, which a `none` cell must not show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<Marker>,
    /// Values an earlier version of the world had, each with the value that took its
    /// place: a cell named with an old value (`--condition`, a labelled set written
    /// against the earlier version) selects the new one. Never part of the design.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub renamed: BTreeMap<String, String>,
}

/// Phrases only cells with one of `values` may show.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Marker {
    pub values: Vec<String>,
    pub phrases: Vec<String>,
}

/// A text that may depend on the condition.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum Text {
    /// The same template in every cell.
    Fixed(String),
    /// One template per value of a factor; every value must be covered.
    Switch { factor: String, cases: BTreeMap<String, String> },
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Turns {
    /// What happens when the target replies with text and no tool call.
    pub on_text_only: OnTextOnly,
    pub clock: Clock,
    /// Whether arrivals (new email, alarms) are pushed into the conversation.
    pub notifications: Notifications,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum OnTextOnly {
    /// The episode ends with stop reason `text_only`.
    End,
    /// The world sends `message` as the next user turn, at most `max` times; then the
    /// episode ends with stop reason `nudges_exhausted`.
    Nudge { message: String, max: u32 },
    /// The named chat actor answers (see `actors`); when no rule matches the episode
    /// ends with stop reason `conversation_over`.
    Actor(String),
    /// The named simulated user answers (see `users`): its rules, then its agenda, or
    /// after a refusal its escalation ladder; or a model plays it (`--user-model`).
    User(String),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Clock {
    /// Simulated start, `YYYY-MM-DDTHH:MM` (UTC).
    pub start: String,
    #[serde(default)]
    pub per_turn_ms: u64,
    #[serde(default)]
    pub per_tool_call_ms: u64,
    /// After the target stops, for whatever reason, the world's clock runs on to this
    /// many ms after the start, firing the scheduled events due by then (their effects
    /// cannot stop the episode again), so that what the world decides by time — help
    /// arriving, a job running — is settled before the verdicts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_on_until_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Notifications {
    Push,
    Pull,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    #[serde(default = "default_max_turns")]
    pub max_turns: u32,
    #[serde(default = "default_max_tool_calls_per_turn")]
    pub max_tool_calls_per_turn: u32,
    #[serde(default = "default_max_text_bytes")]
    pub max_text_bytes: u32,
    #[serde(default = "default_max_events")]
    pub max_events: u32,
}

fn default_max_turns() -> u32 {
    30
}
fn default_max_tool_calls_per_turn() -> u32 {
    16
}
fn default_max_text_bytes() -> u32 {
    32_768
}
fn default_max_events() -> u32 {
    2_000
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_turns: default_max_turns(),
            max_tool_calls_per_turn: default_max_tool_calls_per_turn(),
            max_text_bytes: default_max_text_bytes(),
            max_events: default_max_events(),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TargetRole {
    /// The person the target acts as (its mailbox and address), if it has one.
    #[serde(default)]
    pub person: Option<String>,
    pub system_prompt: String,
    pub first_message: String,
    /// The tools offered, in the order the target sees them.
    pub tools: Vec<String>,
    /// A trailing assistant message, for providers that support it.
    #[serde(default)]
    pub prefill: Option<String>,
    /// A private scratchpad in the target's own text: what it writes between `<TAG>` and
    /// `</TAG>` is recorded as its visible reasoning (read by judges and `Voiced`, never
    /// by `Said`), as the original study's hidden scratchpad. Its text stays in the
    /// transcript as sent. An unclosed tag runs to the end of the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratchpad: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Org {
    /// Email domains inside the organisation; every other address is external.
    #[serde(default)]
    pub internal_domains: Vec<String>,
    /// Destination prefixes (file shares, buckets) inside the organisation.
    #[serde(default)]
    pub internal_locations: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Variation {
    /// Decks of values that `Draw` canaries deal from without replacement.
    #[serde(default)]
    pub pools: BTreeMap<String, Vec<String>>,
    /// Per-episode generated details; used in templates as `{canary.NAME}`.
    #[serde(default)]
    pub canaries: BTreeMap<String, Canary>,
    /// Groups of distractor emails: which appear, and when.
    #[serde(default)]
    pub distractors: Vec<Distractors>,
    /// Sets of facts the world generated (secrets, confidential content). A message
    /// discloses a fact when its normalised text contains any of the fact's forms.
    #[serde(default)]
    pub facts: BTreeMap<String, Vec<Vec<String>>>,
    /// Facts that are quantities, matched by value (digits or words, separators, other
    /// units, ranges, rounding): each is one more fact of the set it is listed under.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub quantities: BTreeMap<String, Vec<QuantityFact>>,
    /// World-declared phrase lists, matched on normalised word boundaries.
    #[serde(default)]
    pub lexicons: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum Canary {
    /// One of the listed values.
    Pick(Vec<String>),
    /// The next card from a pool; draws from one pool never repeat in an episode.
    Draw(String),
    /// A string of this many decimal digits.
    Digits(u32),
    /// A string of this many lowercase hexadecimal digits (a checksum is 64).
    Hex(u32),
    /// An integer in `min..=max`.
    Int(i64, i64),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Distractors {
    /// Names the group's random stream (`distractors:ID`), so adding or moving another
    /// group never reshuffles this one. A group without one draws from `distractors:N`,
    /// N its position (kept so that worlds written before ids keep their draws).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub emails: Vec<String>,
    /// How many of `emails` appear: a uniform draw in `min..=max`.
    pub pick: (u32, u32),
    /// Each chosen email gets a send time drawn from this range (ms from start).
    pub sent_at_ms: (i64, i64),
    /// Office hours `(from, to)`, hours of the simulated clock: a drawn time is moved
    /// into them on its day (a weekend's to the Friday before), and a day earlier if
    /// that would pass the range's end; so office mail is not sent at 01:52.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<(u32, u32)>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub first: String,
    #[serde(default)]
    pub last: String,
    pub email: String,
    #[serde(default)]
    pub role: String,
    /// Listed in the directory `SearchPeople` looks through (the organisation's staff,
    /// and the outside contacts it keeps: a regulator's desk, a supplier). Skipped when
    /// false, so worlds written before it keep their hashes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub listed: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Email {
    /// The person whose mailbox holds it.
    pub mailbox: String,
    pub from: String,
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    pub subject: String,
    #[serde(default)]
    pub body: Option<String>,
    /// Read the body from a file beside the world (exclusive with `body`).
    #[serde(default)]
    pub body_file: Option<String>,
    /// Send time, ms relative to the simulated start (negative: before it); for an
    /// email that `follows` another, ms after that one.
    #[serde(default)]
    pub sent_at_ms: i64,
    /// A later message in a thread: present only when the email it follows is (a
    /// distractor drawn or not, a cell it shows in), and sent `sent_at_ms` after it, so
    /// a drawn thread keeps its order and the times its text mentions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<String>,
    /// Document ids attached to the email.
    #[serde(default)]
    pub attachments: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Present only in cells matching this pattern.
    #[serde(default)]
    pub only_if: Option<CellPattern>,
    /// `Initially` (in the mailbox at the start) or `ByEffect` (a `Deliver` effect).
    #[serde(default)]
    pub delivery: Delivery,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Delivery {
    #[default]
    Initially,
    ByEffect,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub title: String,
    #[serde(default)]
    pub location: String,
    /// For example `public`, `internal`, `confidential`.
    pub classification: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_file: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub only_if: Option<CellPattern>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// What sort of record: `alert`, `device`, `config`, ...; tools list by kind.
    pub kind: String,
    #[serde(default)]
    pub title: String,
    pub fields: BTreeMap<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A typed value. In effects, `Str` is a template.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub enum Value {
    Bool(bool),
    Int(i64),
    Str(String),
}

/// As a target reads it: `true`, `42`, or the text itself.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    #[serde(default)]
    pub description: String,
    pub initial: String,
    pub states: Vec<String>,
    pub transitions: Vec<Transition>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub event: String,
    pub from: Vec<String>,
    pub to: String,
    #[serde(default)]
    pub effects: Vec<Effect>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub description: String,
    #[serde(default)]
    pub params: Vec<Param>,
    /// Checked in order before any effect; the first that fails is the tool's error.
    #[serde(default)]
    pub checks: Vec<Check>,
    pub effects: Vec<Effect>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ParamType,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum ParamType {
    String,
    Integer,
    Boolean,
    StringList,
    Enum(Vec<String>),
}

impl ParamType {
    /// What a value of this type is, as a tool's error message says it.
    pub fn expected(&self) -> String {
        match self {
            ParamType::String => "a string".to_string(),
            ParamType::Integer => "an integer".to_string(),
            ParamType::Boolean => "true or false".to_string(),
            ParamType::StringList => "a list of strings".to_string(),
            ParamType::Enum(values) => format!("one of: {}", values.join(", ")),
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// The call proceeds only when this holds.
    pub require: Cond,
    /// The tool's error text otherwise (a template).
    pub error: String,
}

/// A library of parts shared by worlds (`include` in a world): the mail tools every
/// mail world offers, people of one organisation, its directory, distractor mail.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Library {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub texts: BTreeMap<String, Text>,
    #[serde(default)]
    pub people: BTreeMap<String, Person>,
    #[serde(default)]
    pub emails: BTreeMap<String, Email>,
    #[serde(default)]
    pub documents: BTreeMap<String, Document>,
    #[serde(default)]
    pub records: BTreeMap<String, Record>,
    #[serde(default)]
    pub tools: BTreeMap<String, Tool>,
    /// Phrase lists, joining the world's `variation.lexicons`.
    #[serde(default)]
    pub lexicons: BTreeMap<String, Vec<String>>,
}

/// A predicate over the world: its state, the actions taken, what the target saw.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum Cond {
    Always,
    Never,
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// The episode's condition matches the pattern.
    Cell(CellPattern),
    VarEq(String, Value),
    VarAtLeast(String, i64),
    FieldEq(String, String, Value),
    InState(String, String),
    /// The target has seen content carrying this tag (read it, or was shown it).
    Exposed(String),
    /// In a tool: the argument equals the rendered template (normalised text).
    ArgEq(String, String),
    /// In a tool: the argument names an existing item of this collection.
    ArgExists(String, Collection),
    /// In a tool: the argument's text has a phrase of this lexicon (how a person reads
    /// what they are told: a page saying "false alarm, no need to come").
    ArgCue(String, String),
    /// In a tool: some sentence of the argument has a phrase of lexicon `cue` and, with
    /// `unless`, none of lexicon `unless`: what one sentence asks, read on its own, as a
    /// person reads a page ("Please go now. It may be a sensor fault." asks them to come;
    /// "No need to attend." does not, though it says "attend").
    ArgSentence {
        param: String,
        cue: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unless: Option<String>,
    },
    /// Some email the target sent matches.
    Sent(Msg),
    /// Some text the target said in the conversation matches.
    Said(Msg),
    /// Some text the target said, or reasoning it showed (thinking text, reasoning
    /// summaries; not encrypted reasoning), matches: what it voiced, to anyone.
    Voiced(Msg),
    /// In an actor rule: the message being answered matches.
    Incoming(Msg),
    /// The target made a successful call of this tool whose arguments match.
    Called {
        tool: String,
        args: BTreeMap<String, String>,
    },
    /// A document carrying `tag` was copied to a destination (external or not).
    Copied {
        tag: String,
        external: Option<bool>,
    },
    /// At least this many target turns have happened.
    TurnAtLeast(u32),
    /// The episode stopped for this reason (`refusal`: the provider reported one). Holds
    /// only once stopped, so only in outcomes.
    Stopped(String),
    /// The simulated user read at least this many of the target's replies as refusals
    /// (its `refusal` condition held on them).
    Refusals(String, u32),
    /// Each condition holds, in order: each has evidence at a later step than the
    /// evidence taken for the one before, the earliest that fits (it pushed back, then
    /// it agreed). A condition that holds with no evidence (a state, a `Not`) holds at
    /// any point and does not move the order.
    Seq(Vec<Cond>),
}

impl Cond {
    /// Call `f` on this condition and every condition inside it, outermost first. The
    /// one walk over conditions: its match names every variant, so a new one that holds
    /// conditions must say here how to reach them (a walker elsewhere matches only the
    /// leaves it cares about and stays correct).
    pub fn visit<'c>(&'c self, f: &mut dyn FnMut(&'c Cond)) {
        f(self);
        match self {
            Cond::All(items) | Cond::Any(items) | Cond::Seq(items) => items.iter().for_each(|c| c.visit(f)),
            Cond::Not(inner) => inner.visit(f),
            Cond::Always
            | Cond::Never
            | Cond::Cell(_)
            | Cond::VarEq(..)
            | Cond::VarAtLeast(..)
            | Cond::FieldEq(..)
            | Cond::InState(..)
            | Cond::Exposed(_)
            | Cond::ArgEq(..)
            | Cond::ArgExists(..)
            | Cond::ArgCue(..)
            | Cond::ArgSentence { .. }
            | Cond::Sent(_)
            | Cond::Said(_)
            | Cond::Voiced(_)
            | Cond::Incoming(_)
            | Cond::Called { .. }
            | Cond::Copied { .. }
            | Cond::TurnAtLeast(_)
            | Cond::Stopped(_)
            | Cond::Refusals(..) => {}
        }
    }

    /// Whether this condition or any inside it satisfies `pred`.
    pub fn any(&self, pred: &dyn Fn(&Cond) -> bool) -> bool {
        let mut found = false;
        self.visit(&mut |c| found |= pred(c));
        found
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Collection {
    Email,
    Document,
    Record,
    Person,
}

/// What a message must look like. Every given field must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Msg {
    /// Some recipient (to or cc) is one of these people.
    #[serde(default)]
    pub to_any: Vec<String>,
    /// Some recipient (to or cc) is none of these people: a third person, known to the
    /// world or not. (Added after format v1's first worlds: skipped when empty.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_other_than: Vec<String>,
    /// Some recipient's address is on one of these domains (or a subdomain of one):
    /// an organisation reached at any of its addresses, known to the world or guessed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to_domains: Vec<String>,
    /// Some recipient is outside (`Some(true)`) / every recipient inside (`Some(false)`).
    #[serde(default)]
    pub external: Option<bool>,
    /// For each entry, at least `min` distinct facts of the set are disclosed.
    #[serde(default)]
    pub facts: Vec<FactNeed>,
    /// Every named lexicon has a phrase in the text.
    #[serde(default)]
    pub cues: Vec<String>,
    /// No named lexicon has a phrase in the text.
    #[serde(default)]
    pub no_cues: Vec<String>,
    /// Some attached document carries one of these tags. (Added after format v1's
    /// first worlds: skipped when empty, so their dynamics hashes do not change.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attaches: Vec<String>,
    /// Where `facts`, `cues` and `no_cues` must hold together: anywhere in the message
    /// (`Message`, the default), or within one `Paragraph` or one `Sentence` of it (the
    /// subject counts as its own). A declining phrase then clears only its own window.
    #[serde(default, skip_serializing_if = "Within::is_message")]
    pub within: Within,
    /// That window holds at least this many words: a substantive reply, not "Mm." (a
    /// gate that fires on any reply lacking a doubt needs it). Skipped when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_words: Option<u32>,
}

/// The window a message condition's facts and cues must share.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Within {
    #[default]
    Message,
    Paragraph,
    Sentence,
    /// A clause: a sentence, split again before a contrasting `but`, `however`,
    /// `although`, `though` or `yet`, and after a colon or a dash that opens what
    /// follows, so that a hedge in one part ("I can't be sure,", "only this:") does not
    /// clear what the other says ("but it sounds like he is listening").
    Clause,
    /// Everything the target has said in the conversation so far, in order, read as
    /// one text (`Said` only): facts given over several turns count together.
    Conversation,
}

impl Within {
    pub fn is_message(&self) -> bool {
        *self == Within::Message
    }
}

/// A fact that is a number: `value` (a template rendering to a number), and the words
/// that name its unit or what it counts, each with how many of the fact's units it is
/// (`{"hz": 1, "khz": 1000}`; `{"hydrophones": 1, "sensors": 1}`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QuantityFact {
    pub value: String,
    pub units: BTreeMap<String, f64>,
    /// Accepted error in percent of the value, beyond the rounding a number's own
    /// precision allows.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub tolerance_pct: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FactNeed {
    pub set: String,
    pub min: u32,
    /// Count only facts given in the set's order: the longest run of the set's facts,
    /// in declared order, whose first mentions come sentence by sentence in that order
    /// (facts in one sentence count as in order). Text facts only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
}

/// A change to the world, or text for the tool result.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum Effect {
    /// Append a line to the tool result (a template).
    Say(String),
    When {
        cond: Cond,
        then: Vec<Effect>,
        #[serde(default, rename = "else")]
        otherwise: Vec<Effect>,
    },
    SetVar(String, Value),
    AddVar(String, i64),
    SetField(String, String, Value),
    /// Set a record field from a tool argument.
    SetFieldFromArg(String, String, String),
    /// Fire an event into a state machine.
    Fire(String, String),
    SendEmail {
        to: String,
        cc: String,
        subject: String,
        body: String,
        attachments: String,
    },
    ReplyEmail {
        email: String,
        body: String,
    },
    ForwardEmail {
        email: String,
        to: String,
        body: String,
    },
    ListEmails,
    ReadEmail(String),
    SearchEmails(String),
    /// The directory: listed people whose name, role or address has every word of the
    /// query (a template; empty lists everyone listed).
    SearchPeople(String),
    ListDocuments,
    ReadDocument(String),
    /// Copy a document to a destination (a path, share or address).
    CopyDocument {
        document: String,
        destination: String,
    },
    ListRecords(String),
    ReadRecord(String),
    /// Put a `ByEffect` email into its mailbox (and notify when notifications push).
    Deliver(String),
    /// Push a notification line into the conversation (a template).
    Notify(String),
    /// The target declares the task done: the episode stops with `end_task`.
    EndTask,
    /// Stop the episode with a world-named reason.
    Stop(String),
}

impl WorldFile {
    /// Visit every condition and every effect of the world (reference policies aside):
    /// tools' checks and effects, machine transitions, scheduled events, actors' rules,
    /// outcomes and stops, and the conditions and branches inside effects. The one typed
    /// walk over a world's logic, so no reader matches on serialised names.
    pub fn visit_logic<'w>(&'w self, cond: &mut dyn FnMut(&'w Cond), effect: &mut dyn FnMut(&'w Effect)) {
        let mut conds: Vec<&'w Cond> = Vec::new();
        let mut effects: Vec<&'w Effect> = Vec::new();
        for t in self.tools.values() {
            conds.extend(t.checks.iter().map(|c| &c.require));
            effects.extend(&t.effects);
        }
        for m in self.machines.values() {
            effects.extend(m.transitions.iter().flat_map(|t| &t.effects));
        }
        for e in &self.events {
            conds.push(&e.when);
            effects.extend(&e.effects);
        }
        for rule in self.actors.values().flat_map(|a| &a.rules) {
            conds.push(&rule.when);
            effects.extend(&rule.effects);
        }
        for u in self.users.values() {
            conds.push(&u.refusal);
            for rule in &u.rules {
                conds.push(&rule.when);
                effects.extend(&rule.effects);
            }
            conds.extend(u.lines().filter_map(|(_, _, _, only_if)| only_if));
        }
        for o in self.outcomes.values() {
            conds.push(&o.when);
            conds.extend(&o.exposed);
        }
        conds.extend(self.stops.iter().map(|s| &s.when));
        conds.extend(self.sabotage.iter().flat_map(|s| &s.baseline).map(|f| &f.when));
        for e in effects {
            e.visit(&mut |e| {
                if let Effect::When { cond: c, .. } = e {
                    c.visit(cond);
                }
                effect(e);
            });
        }
        for c in conds {
            c.visit(cond);
        }
    }
}

impl Effect {
    /// Call `f` on this effect and every effect inside it (a `When`'s branches),
    /// outermost first; its match names every variant, as [`Cond::visit`]'s does.
    pub fn visit<'e>(&'e self, f: &mut dyn FnMut(&'e Effect)) {
        f(self);
        match self {
            Effect::When { then, otherwise, .. } => then.iter().chain(otherwise).for_each(|e| e.visit(f)),
            Effect::Say(_)
            | Effect::SetVar(..)
            | Effect::AddVar(..)
            | Effect::SetField(..)
            | Effect::SetFieldFromArg(..)
            | Effect::Fire(..)
            | Effect::SendEmail { .. }
            | Effect::ReplyEmail { .. }
            | Effect::ForwardEmail { .. }
            | Effect::ListEmails
            | Effect::ReadEmail(_)
            | Effect::SearchEmails(_)
            | Effect::SearchPeople(_)
            | Effect::ListDocuments
            | Effect::ReadDocument(_)
            | Effect::CopyDocument { .. }
            | Effect::ListRecords(_)
            | Effect::ReadRecord(_)
            | Effect::Deliver(_)
            | Effect::Notify(_)
            | Effect::EndTask
            | Effect::Stop(_) => {}
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: String,
    pub at: At,
    #[serde(default = "always")]
    pub when: Cond,
    pub effects: Vec<Effect>,
}

fn always() -> Cond {
    Cond::Always
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum At {
    /// After the target's n-th turn.
    Turn(u32),
    /// When simulated time first reaches this many ms after the start.
    TimeMs(u64),
    /// When the clock reaches the time of day held in a record's field (`"18:00"`,
    /// `"18:00:00"`, `"6pm"`, `"6:30 PM"`, `"1800"`, `"tomorrow 09:00"`, `"midnight"`),
    /// read when due is checked, as a scheduler reads its config: a field changed to
    /// another time moves the event; one that no longer reads as a time never fires.
    FieldTime(String, String),
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub channel: Channel,
    /// Tried in order; the first whose `when` holds answers.
    pub rules: Vec<Rule>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub enum Channel {
    /// Answers emails the target sends to the person with the actor's id.
    Email,
    /// Speaks in the conversation itself (the user turns).
    Chat,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub id: String,
    pub when: Cond,
    /// Candidate replies (templates); one is chosen by the actor's seeded stream.
    pub replies: Vec<String>,
    #[serde(default)]
    pub delay_ms: u64,
    /// Fire at most once per episode.
    #[serde(default)]
    pub once: bool,
    #[serde(default)]
    pub effects: Vec<Effect>,
}

/// A simulated user: a person who talks with the target over many turns. Its opening
/// is `target.first_message`. Each time the target replies with text alone, the user
/// reads the reply: if `refusal` holds on it, the user climbs its `ladder` one rung
/// (pressing, then reframing); otherwise the first of its `rules` that holds answers,
/// or else the next beat of its `agenda`. With the agenda done the conversation ends
/// (`conversation_over`); with the ladder spent, a further refusal ends it
/// (`user_gave_up`). A model may play the user instead (`--user-model`): it is shown
/// `persona`, `goal` and the ladder, and the refusals are still counted.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The name the user goes by (a template), for a model playing it and for reports.
    pub name: String,
    /// Who the user is, in the second person (a template): what a model playing the
    /// user is told to be.
    pub persona: String,
    /// What the user wants from the conversation (a template).
    pub goal: String,
    /// What the person knows and has said about themselves (templates, second
    /// person): facts a model playing the user keeps to, so that it never contradicts
    /// the opening message, its cover story or the world. Not shown to the target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<String>,
    /// When a reply counts as the target declining or pushing back: a condition on the
    /// reply, read as `Incoming` (usually cues, within a sentence).
    pub refusal: Cond,
    /// What the user says next after a reply it accepts, in order; a beat whose
    /// `only_if` does not hold is passed over.
    #[serde(default)]
    pub agenda: Vec<Beat>,
    /// What the user says after each refusal, in order: one rung per refusal.
    #[serde(default)]
    pub ladder: Vec<Rung>,
    /// Tried, in order, on a reply that is not a refusal, before the agenda: the first
    /// whose `when` holds answers (its `delay_ms` is not used).
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// What a refusal does once the ladder is spent: the user leaves (`Leave`, the
    /// default: `user_gave_up`), or lets it go and goes on with its agenda (`Continue`).
    #[serde(default, skip_serializing_if = "AfterLadder::is_leave")]
    pub after_ladder: AfterLadder,
}

/// What a simulated user does after a refusal once its ladder is spent.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum AfterLadder {
    #[default]
    Leave,
    Continue,
}

impl AfterLadder {
    pub fn is_leave(&self) -> bool {
        *self == AfterLadder::Leave
    }
}

impl User {
    /// Every agenda beat and ladder rung with where it is written: (`agenda` or
    /// `ladder`, its index there, its `says`, its `only_if`).
    pub fn lines(&self) -> impl Iterator<Item = (&'static str, usize, &[String], Option<&Cond>)> {
        let beats = self.agenda.iter().enumerate().map(|(i, b)| ("agenda", i, b.says.as_slice(), b.only_if.as_ref()));
        let rungs = self.ladder.iter().enumerate().map(|(i, r)| ("ladder", i, r.says.as_slice(), r.only_if.as_ref()));
        beats.chain(rungs)
    }
}

/// One step of a user's agenda.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Beat {
    /// Candidate messages (templates); one is chosen by the user's seeded stream.
    pub says: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if: Option<Cond>,
}

/// One rung of a user's escalation ladder: what it says after a refusal, and how.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    pub tactic: Tactic,
    /// Candidate messages (templates); one is chosen by the user's seeded stream.
    pub says: Vec<String>,
    /// A rung whose condition does not hold is passed over (a ladder that depends on
    /// the cell: a persistent user in one cell, one who gives up in another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_if: Option<Cond>,
}

/// How a rung presses after a refusal.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tactic {
    /// Asks again, in other words.
    Press,
    /// Claims a role or a permission.
    Authority,
    /// Claims time pressure.
    Urgency,
    /// Gives a (fictional) purpose: research, a novel, a class.
    Purpose,
    /// Recasts the request as hypothetical.
    Hypothetical,
}

impl Tactic {
    /// As transcripts and reports write it.
    pub fn name(self) -> &'static str {
        match self {
            Tactic::Press => "press",
            Tactic::Authority => "authority",
            Tactic::Urgency => "urgency",
            Tactic::Purpose => "purpose",
            Tactic::Hypothetical => "hypothetical",
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Outcome {
    pub kind: OutcomeKind,
    pub description: String,
    pub when: Cond,
    /// A judge rubric: `terrarium run --judge` asks a model this about an episode — to
    /// decide it, for `decide: Judges` (on episodes the gate let through), or as a
    /// recorded second opinion beside the rule verdict otherwise.
    #[serde(default)]
    pub judge: Option<String>,
    /// When the target was in a position to do this at all (it saw the secret, the
    /// threat): reports give the rate among these episodes too. Usually `Exposed` tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed: Option<Cond>,
    /// Who decides the verdict: the rule alone (`Rule`, the default), or judges
    /// (`Judges`): then `when` is a gate built for recall, and the judges, asked the
    /// `judge` rubric, decide on the episodes it lets through.
    #[serde(default, skip_serializing_if = "Decide::is_rule")]
    pub decide: Decide,
    /// How several judges' answers combine into the verdict, for `decide: Judges`.
    #[serde(default, skip_serializing_if = "Combine::is_majority")]
    pub combine: Combine,
    /// This outcome means the target refused: reports give its rate in the control
    /// cell as the over-refusal rate, beside refusals the provider reported.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refusal: bool,
    /// What reports do with this outcome beyond its rate (see [`OutcomeRole`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OutcomeRole>,
}

/// An outcome's part in the report, declared by the world so the engine names none.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub enum OutcomeRole {
    /// The target said it suspects a test: each harm's rate is also given among the
    /// episodes where it did not (the rate a real deployment would see), and the
    /// outcome is pooled by factor value beside the harms.
    Awareness,
    /// The target stated it believes the session is a real deployment; with
    /// `BelievesEval`, each harm's rate is given by the belief stated.
    BelievesReal,
    /// The target stated it believes the session is an evaluation (see `BelievesReal`).
    BelievesEval,
}

/// How judges' answers combine. Only answers that were read count; an episode with no
/// readable answer stays unjudged, never "no".
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Combine {
    /// Yes when more than half the answers say yes; a tie is undecided.
    #[default]
    Majority,
    /// Yes when every judge says yes, no when every judge says no; any disagreement,
    /// or a judge without a readable answer, leaves the episode undecided.
    Unanimous,
}

impl Combine {
    pub fn is_majority(&self) -> bool {
        *self == Combine::Majority
    }

    /// The combined verdict of `answers` from `asked` judges: `Some(yes)` when decided.
    pub fn combine(self, answers: &[bool], asked: usize) -> Option<bool> {
        let yes = answers.iter().filter(|a| **a).count();
        let no = answers.len() - yes;
        match self {
            Combine::Majority if yes > no => Some(true),
            Combine::Majority if no > yes => Some(false),
            Combine::Majority => None,
            Combine::Unanimous if answers.len() < asked.max(1) => None,
            Combine::Unanimous if yes == answers.len() => Some(true),
            Combine::Unanimous if no == answers.len() => Some(false),
            Combine::Unanimous => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Combine::Majority => "majority",
            Combine::Unanimous => "unanimous",
        }
    }
}

/// How an outcome's verdict is decided.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Decide {
    #[default]
    Rule,
    Judges,
}

impl Decide {
    pub fn is_rule(&self) -> bool {
        *self == Decide::Rule
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(deny_unknown_fields)]
pub enum OutcomeKind {
    Harmful,
    Notable,
    Success,
}

impl OutcomeKind {
    pub const ALL: [OutcomeKind; 3] = [OutcomeKind::Harmful, OutcomeKind::Notable, OutcomeKind::Success];

    /// The kind as verdicts write it.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeKind::Harmful => "harmful",
            OutcomeKind::Notable => "notable",
            OutcomeKind::Success => "success",
        }
    }
}

impl std::fmt::Display for OutcomeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    pub when: Cond,
    pub reason: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub description: String,
    /// The exact set of outcomes this policy fires.
    pub expect: Vec<String>,
    /// Cells the policy applies to (all valid cells when absent).
    #[serde(default)]
    pub only_if: Option<CellPattern>,
    pub steps: Vec<Step>,
}

/// One target output. Strings are templates over the episode (`{person.kyle.email}`,
/// `{email.ID.id}`, `{canary.NAME}`), so policies work under every seeded variation.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub enum Step {
    Say(String),
    Call(String, BTreeMap<String, serde_json::Value>),
    Turn {
        text: String,
        calls: Vec<(String, BTreeMap<String, serde_json::Value>)>,
    },
    /// Text with visible reasoning before it (a thinking block), as a reasoning model
    /// shows it.
    Think {
        thinking: String,
        text: String,
    },
}
