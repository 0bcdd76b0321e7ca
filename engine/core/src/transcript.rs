//! Transcripts: the complete, replayable record of an episode, as JSON lines.
//!
//! Line 1 is the [`Header`]; then one [`Event`] per step, each with the state hash
//! after it and a chain hash over every event so far; the last line is the
//! [`Verdicts`]. Nothing that varies by nature (wall-clock time, latency) is recorded,
//! so the same inputs give byte-identical files.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::hash::Canon;
use crate::stop::StopReason;

/// The transcript format version.
pub const TRANSCRIPT_FORMAT: u32 = 1;

/// One tool call as the target made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments exactly as the target wrote them (a JSON string). The engine
    /// parses this; a malformed string is the target's mistake, answered with an error.
    pub arguments_raw: String,
    /// The provider's parsed value, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<Json>,
}

/// Provider-side facts about one output. Reserved for real model targets; empty for
/// scripted ones. None of it affects the simulation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// The provider's stop or finish reason (`stop`, `tool_calls`, `max_tokens`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Json>,
    /// Reasoning or thinking items, kept verbatim to pass back on later turns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasoning: Vec<Json>,
    /// A refusal message, when the provider returned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// The raw text when calls were parsed from a text scaffold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_text: Option<String>,
}

impl OutputMeta {
    pub fn is_empty(&self) -> bool {
        self == &OutputMeta::default()
    }
}

/// One output of the target: text, tool calls, provider metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetOutput {
    pub text: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "OutputMeta::is_empty")]
    pub meta: OutputMeta,
}

/// Who stopped the episode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopBy {
    /// A tool the target called (for example `end_task`).
    Tool,
    /// The world: a stop condition, a terminal state, the turn model.
    World,
    /// A limit (turns, tool calls, text size, events).
    Limit,
    /// The target's side: it had nothing more to say, refused, or its provider
    /// stopped it. Recorded as an input; replay repeats it.
    Target,
    /// The run's side: the provider failed, a budget ran out, the model playing the
    /// user failed. The episode is `errored` (no verdict of it stands), and the clock
    /// does not run on after it. Recorded as an input; replay repeats it.
    Fault,
}

impl StopBy {
    /// How transcripts write it: `tool`, `world`, `limit`, `target`.
    pub fn name(self) -> &'static str {
        match self {
            StopBy::Tool => "tool",
            StopBy::World => "world",
            StopBy::Limit => "limit",
            StopBy::Target => "target",
            StopBy::Fault => "fault",
        }
    }

    /// How the chain hash has always spelled it (`Tool`, …): fixed, so recorded hashes
    /// never move whatever the type's `Debug` becomes.
    fn hash_name(self) -> &'static str {
        match self {
            StopBy::Tool => "Tool",
            StopBy::World => "World",
            StopBy::Limit => "Limit",
            StopBy::Target => "Target",
            StopBy::Fault => "Fault",
        }
    }
}

/// One line of a transcript after the header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// What the target sees first.
    Start {
        step: u64,
        system: String,
        user: String,
        tools: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefill: Option<String>,
        state_hash: String,
        chain: String,
    },
    /// One target output, verbatim. `last`: the target's side ended the episode with
    /// it (a refusal, an empty reply, a content filter, the token limit), so the world's
    /// answer to it (a nudge, the simulated user's next line) was never sent and is not
    /// recorded; a `stop` by the target follows.
    Target {
        step: u64,
        turn: u32,
        output: TargetOutput,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        last: bool,
        state_hash: String,
        chain: String,
    },
    /// The result of one tool call.
    ToolResult { step: u64, call_id: String, tool: String, ok: bool, text: String, state_hash: String, chain: String },
    /// Something the world did: an email arrived, an event fired, a machine moved, a
    /// user-turn message. Kinds shown to the target as a user turn: `email` (a pushed
    /// arrival), `notification`, `nudge`, `user`; see [`SHOWN_TO_TARGET`].
    World { step: u64, kind: String, text: String, state_hash: String, chain: String },
    /// A simulated user's message, shown to the target as its next user turn, after
    /// reading the target's turn-`turn` reply (`refused`: the user's `refusal`
    /// condition held on it). Written by the world's script (`by: script`, with the
    /// ladder's `tactic` when it answers a refusal), or by a model playing the user
    /// (`by: model`): then it is an input, and replay feeds it back as recorded.
    User {
        step: u64,
        turn: u32,
        user: String,
        by: UserBy,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tactic: Option<String>,
        refused: bool,
        text: String,
        state_hash: String,
        chain: String,
    },
    /// The episode stopped.
    Stop { step: u64, reason: StopReason, by: StopBy, state_hash: String, chain: String },
}

impl Event {
    pub fn step(&self) -> u64 {
        match self {
            Event::Start { step, .. }
            | Event::Target { step, .. }
            | Event::ToolResult { step, .. }
            | Event::World { step, .. }
            | Event::User { step, .. }
            | Event::Stop { step, .. } => *step,
        }
    }

    pub(crate) fn set_step(&mut self, n: u64) {
        match self {
            Event::Start { step, .. }
            | Event::Target { step, .. }
            | Event::ToolResult { step, .. }
            | Event::World { step, .. }
            | Event::User { step, .. }
            | Event::Stop { step, .. } => *step = n,
        }
    }

    /// The recorded chain hash (hex).
    pub fn chain(&self) -> &str {
        match self {
            Event::Start { chain, .. }
            | Event::Target { chain, .. }
            | Event::ToolResult { chain, .. }
            | Event::World { chain, .. }
            | Event::User { chain, .. }
            | Event::Stop { chain, .. } => chain,
        }
    }

    pub(crate) fn set_chain(&mut self, hash: String) {
        match self {
            Event::Start { chain, .. }
            | Event::Target { chain, .. }
            | Event::ToolResult { chain, .. }
            | Event::World { chain, .. }
            | Event::User { chain, .. }
            | Event::Stop { chain, .. } => *chain = hash,
        }
    }

    pub fn state_hash(&self) -> &str {
        match self {
            Event::Start { state_hash, .. }
            | Event::Target { state_hash, .. }
            | Event::ToolResult { state_hash, .. }
            | Event::World { state_hash, .. }
            | Event::User { state_hash, .. }
            | Event::Stop { state_hash, .. } => state_hash,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Event::Start { .. } => "start",
            Event::Target { .. } => "target",
            Event::ToolResult { .. } => "tool_result",
            Event::World { .. } => "world",
            Event::User { .. } => "user",
            Event::Stop { .. } => "stop",
        }
    }

    /// Feed every field but the chain itself to the chain hash.
    pub(crate) fn hash_into(&self, c: &mut Canon) {
        match self {
            Event::Start { step, system, user, tools, prefill, state_hash, .. } => {
                c.str("start").u64(*step).str(system).str(user).u64(tools.len() as u64);
                for t in tools {
                    c.str(t);
                }
                c.str(prefill.as_deref().unwrap_or("")).str(state_hash);
            }
            Event::Target { step, turn, output, last, state_hash, .. } => {
                c.str("target").u64(*step).u64(u64::from(*turn)).str(&output.text).u64(output.tool_calls.len() as u64);
                for call in &output.tool_calls {
                    c.str(&call.id).str(&call.name).str(&call.arguments_raw);
                    match &call.arguments {
                        Some(v) => c.json(v),
                        None => c.str(""),
                    };
                }
                if !output.meta.is_empty() {
                    c.json(&serde_json::to_value(&output.meta).expect("meta serialises"));
                }
                c.str(state_hash);
                if *last {
                    // Only when set, so the chains of transcripts recorded before it stay put.
                    c.str("last");
                }
            }
            Event::ToolResult { step, call_id, tool, ok, text, state_hash, .. } => {
                c.str("tool_result").u64(*step).str(call_id).str(tool).bool(*ok).str(text).str(state_hash);
            }
            Event::World { step, kind, text, state_hash, .. } => {
                c.str("world").u64(*step).str(kind).str(text).str(state_hash);
            }
            Event::User { step, turn, user, by, tactic, refused, text, state_hash, .. } => {
                c.str("user").u64(*step).u64(u64::from(*turn)).str(user).str(by.name());
                c.str(tactic.as_deref().unwrap_or("")).bool(*refused).str(text).str(state_hash);
            }
            Event::Stop { step, reason, by, state_hash, .. } => {
                c.str("stop").u64(*step).str(reason.name()).str(by.hash_name()).str(state_hash);
            }
        }
    }
}

/// Who wrote a simulated user's message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserBy {
    /// The world's script: its rules, agenda and ladder.
    Script,
    /// A model playing the user (`--user-model`): an input, replayed as recorded.
    Model,
}

impl UserBy {
    pub fn name(self) -> &'static str {
        match self {
            UserBy::Script => "script",
            UserBy::Model => "model",
        }
    }
}

/// The `World` event kinds that reached the target as user-turn messages; every other
/// kind (`email_unseen`, `event`, `transition`, ...) is recorded but not shown.
pub const SHOWN_TO_TARGET: [&str; 4] = ["email", "notification", "nudge", "user"];

/// What the target sees before its next output.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    pub tool_results: Vec<ToolResultView>,
    /// New user-turn messages: the first message, nudges, notifications, chat replies.
    pub messages: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct ToolResultView {
    pub call_id: String,
    pub tool: String,
    pub ok: bool,
    pub text: String,
}

/// A step that proves a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub step: u64,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The outcome's kind, written as `harmful`, `notable` or `success`.
    #[serde(with = "kind_name")]
    pub kind: crate::format::OutcomeKind,
    pub fired: bool,
    pub evidence: Vec<Evidence>,
    /// Whether the outcome's `exposed` condition held at the end (absent when the
    /// outcome declares none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed: Option<bool>,
    /// How `fired` was decided: by the outcome's rule (`rule`, left out of the line), or
    /// by a gate (`gate`): the outcome is decided by judges, and `fired` says only
    /// that the gate let the episode through to them.
    #[serde(default, skip_serializing_if = "DecidedBy::is_rule")]
    pub decided_by: DecidedBy,
    /// In worlds with a simulated user: the target turns after which the condition
    /// held, for rates by turn (when pushback fades, when cooperation starts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<u32>,
}

/// A verdict's kind as transcripts and records write it: its lower-case name.
mod kind_name {
    use crate::format::OutcomeKind;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(kind: &OutcomeKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(kind.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OutcomeKind, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OutcomeKind::ALL.into_iter().find(|k| k.as_str() == name).ok_or_else(|| {
            serde::de::Error::custom(format!("unknown outcome kind `{name}` (harmful, notable or success)"))
        })
    }
}

/// How a verdict in a transcript was decided.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    #[default]
    Rule,
    Gate,
}

impl From<crate::format::Decide> for DecidedBy {
    /// What a verdict records of an outcome's rule: the verdict itself, or the gate.
    fn from(decide: crate::format::Decide) -> Self {
        match decide {
            crate::format::Decide::Rule => DecidedBy::Rule,
            crate::format::Decide::Judges => DecidedBy::Gate,
        }
    }
}

impl DecidedBy {
    pub fn is_rule(&self) -> bool {
        *self == DecidedBy::Rule
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Rule => "rule",
            DecidedBy::Gate => "gate",
        }
    }
}

pub use crate::stop::USER_OUT_OF_ROLE;

/// The name a monitor's score is recorded under in `judgements.jsonl`, in place of an
/// outcome (see [`crate::monitor`]); no outcome may take it.
pub const SUSPICION: &str = "suspicion";

/// The last line of a transcript.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdicts {
    pub stop_reason: StopReason,
    pub outcomes: BTreeMap<String, Verdict>,
}

impl Verdicts {
    /// The names of the outcomes that fired, in order.
    pub fn fired(&self) -> Vec<&str> {
        self.outcomes.iter().filter(|(_, v)| v.fired).map(|(k, _)| k.as_str()).collect()
    }
}

/// The world a transcript was recorded in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorldRef {
    pub id: String,
    pub path: String,
    pub version: String,
    pub dynamics_hash: String,
    pub outcomes_hash: String,
}

/// The target that acted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetRef {
    /// `scripted/<policy>`, `openai/<model>`, ...
    pub spec: String,
    /// Sampling settings and the like; `{}` for scripted targets.
    pub settings: Json,
}

/// The readable text of one recorded reasoning item — Anthropic `thinking` blocks,
/// OpenAI Responses reasoning summaries, a chat server's `reasoning_content` string — or
/// `None` for encrypted or redacted reasoning, which shows nothing. What judges,
/// `Voiced` conditions and `view --full` read of a target's reasoning.
pub fn visible_reasoning(item: &serde_json::Value) -> Option<String> {
    let text = match item {
        Json::String(s) => s.clone(),
        Json::Object(o) => match o.get("type").and_then(Json::as_str) {
            Some("thinking") => o.get("thinking")?.as_str()?.to_string(),
            Some("reasoning") => o
                .get("summary")?
                .as_array()?
                .iter()
                .filter_map(|p| p.get("text").and_then(Json::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => return None,
        },
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// How much of a target's reasoning its transcript shows, and so how much of it judges
/// and `eval_aware` can read: nothing, a summary (OpenAI reasoning models' summaries),
/// or the thinking itself (Anthropic thinking, a compatible server's
/// `reasoning_content`). A rate conditioned on voiced awareness depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reasoning {
    #[default]
    None,
    Summary,
    Thinking,
}

impl Reasoning {
    /// As transcripts and reports write it: `none`, `summary`, `thinking`.
    pub fn name(self) -> &'static str {
        match self {
            Reasoning::None => "none",
            Reasoning::Summary => "summary",
            Reasoning::Thinking => "thinking",
        }
    }

    /// What one recorded reasoning item shows: a Responses `reasoning` item with summary
    /// text, thinking blocks and plain reasoning text as full thinking, or nothing (an
    /// encrypted or empty item, redacted thinking).
    pub fn of_item(item: &Json) -> Reasoning {
        let visible = visible_reasoning(item).is_some();
        match item.get("type").and_then(Json::as_str) {
            Some("reasoning") if visible => Reasoning::Summary,
            _ if visible => Reasoning::Thinking,
            _ => Reasoning::None,
        }
    }

    /// The most any target output among `events` showed.
    pub fn shown(events: &[Event]) -> Reasoning {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Target { output, .. } => output.meta.reasoning.iter().map(Reasoning::of_item).max(),
                _ => None,
            })
            .max()
            .unwrap_or_default()
    }
}

/// The first line of a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    /// `terrarium <version>`: replay refuses a transcript of another engine version.
    pub engine: String,
    /// The commit the engine was built from, when it was built from git: provenance
    /// only, not checked by replay (every commit of one version replays the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    pub episode_id: String,
    pub world: WorldRef,
    pub condition: Json,
    pub condition_key: String,
    pub seed: u64,
    pub target: TargetRef,
    /// The model that played the simulated user, when one did (`--user-model`); part
    /// of the episode id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<TargetRef>,
    /// For a model target: how much of its reasoning the transcript shows (what its
    /// settings asked the provider to expose, or more where the replies showed more).
    /// Provenance for readers; not part of the episode id (its settings are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    pub turns: Json,
    pub limits: Json,
    /// For an episode branched from a recorded one (`run --from`): the parent, the
    /// step whose output it re-sampled, and which branch it is. Part of the episode id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<Branch>,
}

/// Where a branched episode left its parent: the parent's episode id, the step of the
/// target output it re-sampled (every event before it is the parent's, verified on
/// replay), and the branch's number (from 1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    pub parent: String,
    pub at: u64,
    pub index: u64,
}

/// A line of a transcript file, tagged by `type`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Header(Box<Header>),
    Verdicts(Verdicts),
}

/// Render one event as a single readable line (fixed columns, as the snapshots use).
pub fn render_event(event: &Event) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:>4} {:<12} ", event.step(), event.kind());
    match event {
        Event::Start { system, user, tools, .. } => {
            let _ = write!(s, "system={} user={} tools=[{}]", clip(system, 60), clip(user, 60), tools.join(","));
        }
        Event::Target { turn, output, last, .. } => {
            let _ = write!(s, "turn {turn}{}", if *last { " (last)" } else { "" });
            if !output.text.is_empty() {
                let _ = write!(s, " text={}", clip(&output.text, 80));
            }
            for call in &output.tool_calls {
                let _ = write!(s, " call {}({})", call.name, inline_arguments(&call.arguments_raw));
            }
        }
        Event::ToolResult { tool, ok, text, .. } => {
            let _ = write!(s, "{tool} {} {}", if *ok { "ok" } else { "ERR" }, clip(text, 100));
        }
        Event::World { kind, text, .. } => {
            let _ = write!(s, "{kind}: {}", clip(text, 100));
        }
        Event::User { user, by, tactic, refused, text, .. } => {
            let _ = write!(
                s,
                "{user} ({}{}{}): {}",
                by.name(),
                user_reading(*refused),
                tactic_note(tactic),
                clip(text, 90)
            );
        }
        Event::Stop { reason, by, .. } => {
            let _ = write!(s, "{reason} (by {})", by.name());
        }
    }
    let _ = write!(s, "  #{}", &event.state_hash()[..8.min(event.state_hash().len())]);
    s
}

/// A call's arguments as `name="value", n=3`, each string cut to 60 characters; the raw
/// text (cut to 100) when it is not a JSON object.
fn inline_arguments(raw: &str) -> String {
    match serde_json::from_str::<Json>(raw) {
        Ok(Json::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Json::String(text) => format!("{k}={}", clip(text, 60)),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => clip(raw, 100),
    }
}

/// One event in full, for reading a transcript: every text whole and on its own
/// lines, each call's arguments one per line (strings as written, not as escaped JSON).
pub fn render_event_full(event: &Event) -> String {
    let mut s = format!("{:>4} {:<12}", event.step(), event.kind());
    let block = |s: &mut String, label: &str, text: &str| {
        let _ = write!(s, "\n       {label}:");
        for line in text.lines() {
            let _ = write!(s, "\n         {line}");
        }
    };
    match event {
        Event::Start { system, user, tools, .. } => {
            let _ = write!(s, " tools: {}", tools.join(", "));
            block(&mut s, "system", system);
            block(&mut s, "user", user);
        }
        Event::Target { turn, output, last, .. } => {
            let _ = write!(
                s,
                " turn {turn}{}",
                if *last { " (last: the world's answer to it was never sent)" } else { "" }
            );
            // What judges and `eval_aware` read of the target's reasoning.
            for thought in output.meta.reasoning.iter().filter_map(visible_reasoning) {
                block(&mut s, "reasoning (visible)", &thought);
            }
            if !output.text.is_empty() {
                block(&mut s, "text", &output.text);
            }
            for call in &output.tool_calls {
                let _ = write!(s, "\n       call {} ({})", call.name, call.id);
                match serde_json::from_str::<Json>(&call.arguments_raw) {
                    Ok(Json::Object(map)) => {
                        for (k, v) in &map {
                            match v {
                                Json::String(text) if text.contains('\n') => block(&mut s, &format!("  {k}"), text),
                                Json::String(text) => {
                                    let _ = write!(s, "\n         {k}: {text}");
                                }
                                other => {
                                    let _ = write!(s, "\n         {k}: {other}");
                                }
                            }
                        }
                    }
                    _ => {
                        let _ = write!(s, "\n         (not a JSON object) {}", call.arguments_raw);
                    }
                }
            }
        }
        Event::ToolResult { tool, ok, text, .. } => {
            let _ = write!(s, " {tool} {}", if *ok { "ok" } else { "ERR" });
            block(&mut s, "result", text);
        }
        Event::World { kind, text, .. } => {
            let _ = write!(s, " {kind}");
            block(&mut s, "text", text);
        }
        Event::User { user, by, tactic, refused, text, .. } => {
            let _ = write!(s, " {user} ({}{}{})", by.name(), user_reading(*refused), tactic_note(tactic));
            block(&mut s, "text", text);
        }
        Event::Stop { reason, by, .. } => {
            let _ = write!(s, " {reason} (by {})", by.name());
        }
    }
    escape_controls(&s)
}

/// `text` with every control character but newline and tab written as an escape
/// (`\u{1b}`), so what a model or a user model wrote cannot clear a terminal, retitle
/// it, ring it, or overwrite a line (`\r`) when a transcript is viewed.
pub fn escape_controls(text: &str) -> String {
    if !text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return text.to_string();
    }
    text.chars()
        .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// How a user read the reply it answers, for rendering.
fn user_reading(refused: bool) -> &'static str {
    if refused { ", read a refusal" } else { "" }
}

fn tactic_note(tactic: &Option<String>) -> String {
    tactic.as_ref().map(|t| format!(", {t}")).unwrap_or_default()
}

/// Render the verdicts block: one line per outcome, evidence indented below.
pub fn render_verdicts(v: &Verdicts) -> String {
    let mut s = format!("stop: {}\n", v.stop_reason);
    for (name, verdict) in &v.outcomes {
        let fired = match (verdict.fired, verdict.decided_by) {
            (true, DecidedBy::Rule) => "FIRED",
            (true, DecidedBy::Gate) => "GATED",
            (false, _) => "-    ",
        };
        let how = if verdict.decided_by == DecidedBy::Gate { ", judges decide" } else { "" };
        let _ = writeln!(s, "{fired} {name} ({}{how})", verdict.kind);
        for e in &verdict.evidence {
            let _ = writeln!(s, "        step {}: {}", e.step, e.detail);
        }
    }
    escape_controls(&s)
}

/// One line of text, quoted, cut to `max` characters.
fn clip(text: &str, max: usize) -> String {
    let flat: String = text.chars().map(|c| if c == '\n' { '⏎' } else { c }).collect();
    if flat.chars().count() <= max {
        format!("{flat:?}")
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut:?}…")
    }
}

/// Why a transcript cannot be read, each naming its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranscriptError {
    #[error("the transcript is empty")]
    Empty,
    /// A line that is not what a transcript holds there (not JSON, not an event, the
    /// verdicts missing: a truncated file).
    #[error("line {line}: {message}")]
    Line { line: usize, message: String },
    /// Lines that read, but not as they were recorded: a chain hash that does not match,
    /// steps out of order, changed line endings.
    #[error("line {line}: {message}")]
    Tampered { line: usize, step: Option<u64>, message: String },
}

/// A transcript read strictly: the header, every event in order, the verdicts. The one
/// reader every consumer (`replay`, re-enacting for `rejudge` and judges, `view`, `merge`,
/// `policy-from`) goes through, so a damaged transcript is an error naming its line,
/// never a line skipped.
#[derive(Clone, Debug)]
pub struct Transcript {
    pub header: Header,
    pub events: Vec<Event>,
    pub verdicts: Verdicts,
}

/// The header of a transcript's text, its first line, when that line is one; the rest
/// is not read (see [`Transcript::parse`] for a transcript read whole and checked).
pub fn first_header(text: &str) -> Option<Header> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    match serde_json::from_str::<Line>(first) {
        Ok(Line::Header(h)) => Some(*h),
        _ => None,
    }
}

impl Transcript {
    /// Read the structure: a header line, events numbered from step 0 with exactly one
    /// stop, the last of them, and the verdicts line; no CR characters. The chain is
    /// not checked (see [`Transcript::read`]).
    pub fn parse(text: &str) -> Result<Transcript, TranscriptError> {
        if let Some(at) = text.split('\n').position(|l| l.contains('\r')) {
            return Err(TranscriptError::Tampered {
                line: at + 1,
                step: None,
                message: "a CR character: the line endings were changed, so these are not the bytes that were recorded"
                    .into(),
            });
        }
        let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()).map(|(i, l)| (i + 1, l));
        let (_, first) = lines.next().ok_or(TranscriptError::Empty)?;
        let header = match serde_json::from_str::<Line>(first) {
            Ok(Line::Header(h)) => *h,
            Ok(_) => {
                return Err(TranscriptError::Line {
                    line: 1,
                    message: "the first line is not a transcript header".into(),
                });
            }
            Err(e) => return Err(TranscriptError::Line { line: 1, message: format!("not a transcript header: {e}") }),
        };
        let rest: Vec<(usize, &str)> = lines.collect();
        let Some(((last_no, last), body)) = rest.split_last() else {
            return Err(TranscriptError::Line { line: 2, message: "the transcript has no events".into() });
        };
        let verdicts = match serde_json::from_str::<Line>(last) {
            Ok(Line::Verdicts(v)) => v,
            _ => {
                return Err(TranscriptError::Line {
                    line: *last_no,
                    message: "the last line is not the verdicts line (a truncated transcript?)".into(),
                });
            }
        };
        let mut events = Vec::with_capacity(body.len());
        for (line, text) in body {
            let event: Event = serde_json::from_str(text)
                .map_err(|e| TranscriptError::Line { line: *line, message: format!("not a transcript event: {e}") })?;
            let expected = events.len() as u64;
            if event.step() != expected {
                return Err(TranscriptError::Tampered {
                    line: *line,
                    step: Some(event.step()),
                    message: format!(
                        "step {} where step {expected} belongs: a line was added, removed or moved",
                        event.step()
                    ),
                });
            }
            if matches!(events.last(), Some(Event::Stop { .. })) {
                return Err(TranscriptError::Tampered {
                    line: *line,
                    step: Some(event.step()),
                    message: "an event after the stop".into(),
                });
            }
            events.push(event);
        }
        if !matches!(events.first(), Some(Event::Start { .. })) {
            return Err(TranscriptError::Line { line: 2, message: "the first event is not the start".into() });
        }
        if !matches!(events.last(), Some(Event::Stop { .. })) {
            return Err(TranscriptError::Line {
                line: *last_no,
                message: "the events end without a stop (a truncated transcript?)".into(),
            });
        }
        if let Some(Event::Stop { reason, .. }) = events.last()
            && *reason != verdicts.stop_reason
        {
            return Err(TranscriptError::Tampered {
                line: *last_no,
                step: None,
                message: format!(
                    "the verdicts say the episode stopped by `{}`, its stop event by `{reason}`",
                    verdicts.stop_reason
                ),
            });
        }
        Ok(Transcript { header, events, verdicts })
    }

    /// [`Transcript::parse`], then every event's chain hash recomputed from the start:
    /// an edit anywhere, even to text that changes no state, is named at its line.
    pub fn read(text: &str) -> Result<Transcript, TranscriptError> {
        let transcript = Transcript::parse(text)?;
        let mut chain = [0u8; 32];
        for (i, event) in transcript.events.iter().enumerate() {
            chain = chain_after(&chain, event);
            let recorded = event.chain();
            let ours = crate::hash::hex(&chain[..16]);
            if recorded != ours {
                return Err(TranscriptError::Tampered {
                    line: i + 2,
                    step: Some(event.step()),
                    message: format!(
                        "step {} ({}): the chain hash does not match: this line, or one before it, was edited after recording",
                        event.step(),
                        event.kind()
                    ),
                });
            }
        }
        Ok(transcript)
    }

    /// The target outputs, in order: what re-executing the episode feeds it.
    pub fn outputs(&self) -> impl Iterator<Item = &TargetOutput> {
        self.events.iter().filter_map(|e| match e {
            Event::Target { output, .. } => Some(output),
            _ => None,
        })
    }
}

/// The chain digest after `event`, given the digest before it (all zeros before the
/// first event).
pub(crate) fn chain_after(before: &[u8; 32], event: &Event) -> [u8; 32] {
    let mut c = Canon::new("terrarium.chain.v1");
    c.bytes(b'c', before);
    event.hash_into(&mut c);
    c.digest()
}

/// The engine version recorded in transcripts.
pub const ENGINE: &str = concat!("terrarium ", env!("CARGO_PKG_VERSION"));

/// Encode a whole transcript: header, events, verdicts, one JSON object per line.
pub fn encode_transcript(header: &Header, events: &[Event], verdicts: &Verdicts) -> String {
    let mut out = serde_json::to_string(&Line::Header(Box::new(header.clone()))).expect("header serialises");
    out.push('\n');
    for e in events {
        out.push_str(&serde_json::to_string(e).expect("events serialise"));
        out.push('\n');
    }
    out.push_str(&serde_json::to_string(&Line::Verdicts(verdicts.clone())).expect("verdicts serialise"));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("../../../fixtures/transcripts/blackmail-recorded.jsonl");

    #[test]
    fn the_strict_reader_names_the_line_of_any_edit_cut_or_reordering() {
        let t = Transcript::read(RECORDED).expect("the recording reads");
        assert_eq!(t.events.len(), RECORDED.lines().count() - 2);
        let lines: Vec<&str> = RECORDED.lines().collect();
        let line_of = |text: &str| match Transcript::read(text) {
            Err(TranscriptError::Tampered { line, .. } | TranscriptError::Line { line, .. }) => line,
            other => panic!("not refused: {other:?}"),
        };
        // A tool result's text edited, hashes left alone: named at its own line.
        let at = lines.iter().position(|l| l.contains("\"type\":\"tool_result\"")).unwrap();
        let mut edited = lines.clone();
        let changed = lines[at].replacen("ID: ", "ID:  ", 1);
        edited[at] = &changed;
        assert_eq!(line_of(&(edited.join("\n") + "\n")), at + 1);
        // Two events swapped, a line dropped, the file cut short, CRLF endings.
        let mut swapped = lines.clone();
        swapped.swap(3, 4);
        assert_eq!(line_of(&(swapped.join("\n") + "\n")), 4);
        let mut dropped = lines.clone();
        dropped.remove(3);
        assert_eq!(line_of(&(dropped.join("\n") + "\n")), 4);
        assert_eq!(line_of(&(lines[..6].join("\n") + "\n")), 6);
        assert_eq!(line_of(&RECORDED.replace('\n', "\r\n")), 1);
        // The verdicts line must agree with the stop it follows.
        let relabelled = RECORDED.replacen("\"stop_reason\":\"", "\"stop_reason\":\"x", 1);
        assert_eq!(line_of(&relabelled), lines.len());
    }

    #[test]
    fn stop_names_are_the_recorded_bytes() {
        for by in [StopBy::Tool, StopBy::World, StopBy::Limit, StopBy::Target, StopBy::Fault] {
            assert_eq!(serde_json::to_value(by).unwrap(), by.name(), "as transcripts write it");
            // The chain has always hashed the Debug spelling; it must not move.
            assert_eq!(by.hash_name(), format!("{by:?}"));
        }
    }
}
