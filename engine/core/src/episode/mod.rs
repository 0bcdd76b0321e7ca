//! One episode: a world, a condition, a seed, and the target outputs fed to it.
//!
//! [`Episode::start`] builds the initial state; [`Episode::apply`] takes one target
//! output, executes its tool calls and the world's reactions, and returns the
//! transcript events it produced. Nothing here reads a clock, a file or the network:
//! the same inputs always produce the same events, byte for byte.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::cond::{self, EvalCtx};
use crate::env::{Env, EnvError, Resolver, mail_id, push_json};
use crate::format::{At, Channel, Effect, OnTextOnly, ParamType, Value};
use crate::moment::Moment;
use crate::rng::Stream;
use crate::span::Path;
use crate::state::{CallRecord, History, Mail, MailContent, Pending, State, StateChange};
use crate::stop::StopReason;
use crate::transcript::{Event, Observation, StopBy, TargetOutput, ToolCall, ToolResultView, Verdicts};
use crate::view;
use crate::world::{Cell, World};

mod effects;
mod mail;
mod user;

pub use crate::transcript::USER_OUT_OF_ROLE;
use mail::reply_subject;
pub use user::{USER_END, out_of_role};

/// Effects nest (`When`, transitions that fire machines) at most this deep.
const MAX_EFFECT_DEPTH: u32 = 16;

#[derive(Clone)]
pub struct Episode<'w> {
    pub world: &'w World,
    pub env: Env,
    /// Written only inside the core, where every change marks the hash stale; others read
    /// it through [`Episode::state`].
    pub(crate) state: State,
    pub history: History,
    /// Boxed: a stream is 320 bytes, and a map's first node holds room for eleven, so
    /// unboxed the map cost 3.7 KB an episode for the one or two actors that answer.
    actor_streams: BTreeMap<String, Box<Stream>>,
    step: u64,
    chain: [u8; 32],
    stop: Option<(StopReason, StopBy)>,
    /// A stop requested by an effect, taken once the current call or event is recorded.
    pending_stop: Option<StopReason>,
    observation: Observation,
    /// World events raised while a tool call or a turn is being processed.
    raised: Vec<(&'static str, String)>,
    events: Vec<Event>,
    /// The clock is running on after the target stopped (see `Clock::run_on_until_ms`).
    running_on: bool,
    /// A model plays the simulated user (see [`Episode::play_user_externally`]).
    external_user: bool,
    /// The user a model is to play next, and whether it read the reply as a refusal.
    awaiting_user: Option<(String, bool)>,
    /// The output being applied is the target's last (see [`Episode::apply_last`]).
    last_output: bool,
    /// With [`Episode::trace_changes`]: the state after the last event, and what each
    /// event since changed.
    tracer: Option<Box<(State, Vec<StateChange>)>>,
}

/// What a tool call's effects are running for.
struct CallCtx<'a> {
    args: Option<&'a Map<String, Json>>,
    msg: Option<Mail>,
    out: String,
}

impl<'w> Episode<'w> {
    /// Start the episode: draw the environment, build the initial state, and record
    /// the start event (what the target sees first).
    pub fn start(world: &'w World, condition: &Cell, seed: u64) -> Result<Self, EnvError> {
        let env = Env::build(world, condition, seed)?;
        let w = &world.file;
        let mut records = BTreeMap::new();
        for (id, r) in &w.records {
            let mut fields = r.fields.clone();
            for (name, value) in fields.iter_mut() {
                if let Value::Str(t) = value {
                    let at = || Path::root().field("records").key(id).field("fields").key(name);
                    *t = Resolver::fixed(world, &env).render(t, at)?;
                }
            }
            records.insert(id.clone(), fields);
        }
        let mut state = State {
            vars: w.vars.clone(),
            records,
            machines: w.machines.iter().map(|(id, m)| (id.clone(), m.initial.clone())).collect(),
            ..State::default()
        };
        for placed in &env.initial_emails {
            let e = &w.emails[&placed.declared];
            let at = || Path::root().field("emails").key(&placed.declared);
            let r = Resolver::fixed(world, &env);
            let addr = |p: &String| env.people[p].email.clone();
            let mail = Mail::new(MailContent {
                id: placed.display_id.clone(),
                declared: Some(placed.declared.clone()),
                mailbox: Some(e.mailbox.clone()),
                from: addr(&e.from),
                to: e.to.iter().map(addr).collect(),
                cc: e.cc.iter().map(addr).collect(),
                subject: r.render(&e.subject, || at().field("subject"))?,
                body: r.render(e.body.as_deref().unwrap_or(""), || at().field("body"))?,
                time_ms: placed.sent_at_ms,
                attachments: e.attachments.clone(),
                tags: e.tags.clone(),
                read: false,
                by_target: Some(&e.from) == w.target.person.as_ref(),
                step: 0,
            });
            state.mails.push(mail);
        }
        // At the start, what was delivered is what the environment placed.
        state.delivered = env.email_ids.clone();

        let mut ep = Episode {
            world,
            env,
            state,
            history: History::default(),
            actor_streams: BTreeMap::new(),
            step: 0,
            chain: [0; 32],
            stop: None,
            pending_stop: None,
            observation: Observation::default(),
            raised: Vec::new(),
            events: Vec::new(),
            running_on: false,
            external_user: false,
            awaiting_user: None,
            last_output: false,
            tracer: None,
        };
        let r = Resolver::fixed(world, &ep.env);
        let system = r.render(&w.target.system_prompt, || Path::root().field("target").field("system_prompt"))?;
        let user = r.render(&w.target.first_message, || Path::root().field("target").field("first_message"))?;
        let prefill = match &w.target.prefill {
            Some(p) => Some(r.render(p, || Path::root().field("target").field("prefill"))?),
            None => None,
        };
        ep.observation.messages.push(user.clone());
        let state_hash = ep.state.hash();
        ep.record(Event::Start {
            step: 0,
            system,
            user,
            tools: w.target.tools.clone(),
            prefill,
            state_hash,
            chain: String::new(),
        });
        Ok(ep)
    }

    /// The episode as conditions, views and judges read it.
    pub fn moment(&self) -> Moment<'_> {
        Moment {
            world: self.world,
            env: &self.env,
            state: &self.state,
            history: &self.history,
            events: &self.events,
            step: self.step,
            stop: self.stop_reason(),
            user_by_model: self.external_user,
        }
    }

    /// Whether the episode has stopped.
    pub fn is_done(&self) -> bool {
        self.stop.is_some()
    }

    /// The stop reason, once stopped.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref().map(|(r, _)| r)
    }

    /// What the target sees next: tool results and new user-turn messages.
    pub fn observation(&self) -> &Observation {
        &self.observation
    }

    /// Every event so far, in order.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Take the events recorded since the last call (for streaming to a file).
    pub fn drain_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The world state, read-only: every change to it goes through the episode, which
    /// keeps its hash current.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The canonical hash of the state now.
    pub fn state_hash(&mut self) -> String {
        self.state.hash()
    }

    pub fn step(&self) -> u64 {
        self.step
    }

    /// Stop because of the target's side (it has nothing more to say, it refused, the
    /// provider stopped it). The reason is recorded as an input, so replay repeats it.
    /// The clock runs on (`run_on_until_ms`), so what the world decides by time is
    /// settled.
    pub fn stop_by_target(&mut self, reason: StopReason) {
        if self.stop.is_none() {
            self.finish(reason, StopBy::Target);
        }
    }

    /// Stop because of a fault on the run's side (a provider failure, a spent budget, a
    /// user model's failure): the episode is cut off where it stands. No verdict of it
    /// stands, so the clock does not run on and nothing is recorded after the stop. The
    /// reason is recorded as an input, so replay repeats it.
    pub fn abort(&mut self, reason: StopReason) {
        if self.stop.is_none() {
            self.stop = Some((reason.clone(), StopBy::Fault));
            let state_hash = self.state.hash();
            self.record(Event::Stop { step: 0, reason, by: StopBy::Fault, state_hash, chain: String::new() });
        }
    }

    /// Apply the target's last output: the target's side ends the episode with it (a
    /// refusal, an empty reply, a content filter, the token limit), so the world's answer
    /// to a reply of text alone (a nudge, the simulated user's next line, a colleague's
    /// reply) is never sent and never recorded. The output is marked `last`; the caller
    /// then stops the episode with [`Episode::stop_by_target`].
    pub fn apply_last(&mut self, output: TargetOutput) {
        self.last_output = true;
        self.apply(output);
        self.last_output = false;
    }

    /// Apply one target output. Returns nothing: events accumulate (see
    /// [`Episode::events`]) and the next observation replaces the last.
    pub fn apply(&mut self, mut output: TargetOutput) {
        if self.stop.is_some() || self.awaiting_user.is_some() {
            return;
        }
        canonical(&mut output);
        self.observation = Observation::default();
        self.state.turn += 1;
        self.state.touch();
        let limits = &self.world.file.limits;
        // Text and tool-call arguments alike count against the text limit.
        let written = output.text.len() + output.tool_calls.iter().map(|c| c.arguments_raw.len()).sum::<usize>();
        let too_long = written > limits.max_text_bytes as usize;
        let too_many = output.tool_calls.len() > limits.max_tool_calls_per_turn as usize;
        let calls = output.tool_calls.clone();
        let text = output.text.clone();
        let reasoning = output.meta.reasoning.clone();
        let turn = self.state.turn;
        let state_hash = self.state.hash();
        let last = self.last_output;
        self.record(Event::Target { step: 0, turn, output, last, state_hash, chain: String::new() });
        if too_long {
            return self.finish(StopReason::LimitTextBytes, StopBy::Limit);
        }
        if too_many {
            return self.finish(StopReason::LimitToolCalls, StopBy::Limit);
        }
        let (said, scratch) = match self.world.file.target.scratchpad.as_deref() {
            Some(tag) => split_scratchpad(&text, tag),
            None => (text.clone(), Vec::new()),
        };
        if !said.trim().is_empty() {
            self.history.said.push((self.step - 1, std::sync::Arc::new(crate::text::Spoken::new(said.clone()))));
            self.history.conversation.push(Default::default());
        }
        let provider = reasoning.iter().filter_map(crate::transcript::visible_reasoning);
        for thought in provider.chain(scratch) {
            self.history.thought.push((self.step - 1, std::sync::Arc::new(crate::text::Spoken::new(thought))));
        }
        for call in &calls {
            let (ok, result) = self.call_tool(call);
            let state_hash = self.state.hash();
            self.observation.tool_results.push(ToolResultView {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                ok,
                text: result.clone(),
            });
            self.record(Event::ToolResult {
                step: 0,
                call_id: call.id.clone(),
                tool: call.name.clone(),
                ok,
                text: result,
                state_hash,
                chain: String::new(),
            });
            self.flush_raised();
            self.settle_stop(StopBy::Tool);
            if self.stop.is_some() {
                return;
            }
            self.state.time_ms += self.world.file.turns.clock.per_tool_call_ms as i64;
            self.state.touch();
        }
        self.state.time_ms += self.world.file.turns.clock.per_turn_ms as i64;
        self.state.touch();
        self.deliver_due();
        self.fire_events();
        self.flush_raised();
        self.settle_stop(StopBy::World);
        if self.stop.is_some() {
            return;
        }
        if let Some(reason) = self.world_stop() {
            return self.finish(reason, StopBy::World);
        }
        if calls.is_empty() && !last {
            // A user or correspondent reads what was said, never the scratchpad.
            self.text_only(&said);
            if self.stop.is_some() {
                return;
            }
        }
        self.note_held();
        if self.state.turn >= limits.max_turns {
            self.finish(StopReason::MaxTurns, StopBy::Limit);
        }
    }

    /// In a world with a simulated user, note which outcomes hold after this turn.
    fn note_held(&mut self) {
        if self.world.file.users.is_empty() {
            return;
        }
        let turn = self.state.turn;
        for (name, o) in &self.world.file.outcomes {
            if cond::eval(&self.moment(), &o.when, &EvalCtx::default()).is_some() {
                let turns = self.history.held.entry(name.clone()).or_default();
                if turns.last() != Some(&turn) {
                    turns.push(turn);
                }
            }
        }
    }

    /// The verdict on every outcome, with evidence. Meaningful once stopped.
    pub fn verdicts(&self) -> Verdicts {
        let mut outcomes = BTreeMap::new();
        for (name, o) in &self.world.file.outcomes {
            let evidence = cond::eval(&self.moment(), &o.when, &EvalCtx::default());
            outcomes.insert(
                name.clone(),
                crate::transcript::Verdict {
                    kind: o.kind,
                    fired: evidence.is_some(),
                    evidence: evidence.unwrap_or_default(),
                    exposed: o.exposed.as_ref().map(|c| cond::eval(&self.moment(), c, &EvalCtx::default()).is_some()),
                    decided_by: o.decide.into(),
                    turns: self.history.held.get(name).cloned().unwrap_or_default(),
                },
            );
        }
        Verdicts { stop_reason: self.stop_reason().cloned().unwrap_or(StopReason::Running), outcomes }
    }

    /// From now on, remember what each event changes in the state (for a person reading
    /// the episode; see [`Episode::changes`]). Costs a copy of the state per event.
    pub fn trace_changes(&mut self) {
        self.tracer = Some(Box::new((self.state.clone(), Vec::new())));
    }

    /// What each event changed since [`Episode::trace_changes`], placed at its step.
    pub fn changes(&self) -> &[StateChange] {
        self.tracer.as_deref().map_or(&[], |(_, c)| c)
    }

    fn record(&mut self, mut event: Event) {
        // Nothing happens after the stop event, whatever was still in flight.
        if self.stop.is_some() && !matches!(event, Event::Stop { .. }) {
            return;
        }
        self.step += 1;
        event.set_step(self.step - 1);
        self.chain = crate::transcript::chain_after(&self.chain, &event);
        event.set_chain(crate::hash::hex(&self.chain[..16]));
        if let Some(tracer) = self.tracer.as_deref_mut() {
            let what = self.state.changes_from(&tracer.0);
            if !what.is_empty() {
                tracer.1.push(StateChange { step: event.step(), what });
                tracer.0 = self.state.clone();
            }
        }
        self.events.push(event);
        if self.step > u64::from(self.world.file.limits.max_events) && self.stop.is_none() {
            self.finish(StopReason::LimitEvents, StopBy::Limit);
        }
    }

    fn finish(&mut self, reason: StopReason, by: StopBy) {
        if self.stop.is_some() || self.running_on {
            // Stopped already, or an effect of an event the run-on fired: the stop that
            // began the run-on is the one recorded.
            return;
        }
        self.run_on();
        self.stop = Some((reason.clone(), by));
        self.note_held();
        let state_hash = self.state.hash();
        self.record(Event::Stop { step: 0, reason, by, state_hash, chain: String::new() });
    }

    /// After the target stops: let the clock run on to `run_on_until_ms`, firing each
    /// scheduled event at its time, so what the world decides by time is settled.
    fn run_on(&mut self) {
        let Some(until) = self.world.file.turns.clock.run_on_until_ms else { return };
        let until = until as i64;
        self.running_on = true;
        self.flush_raised();
        let world: &'w World = self.world;
        // The next unfired timed event, again after each (an event may move another).
        for _ in 0..=world.file.events.len() {
            let next = world
                .file
                .events
                .iter()
                .filter(|e| !self.state.fired_events.contains(&e.id))
                .filter_map(|e| self.due_ms(&e.at))
                .filter(|ms| *ms <= until)
                .min();
            let Some(ms) = next else { break };
            if ms > self.state.time_ms {
                self.state.time_ms = ms;
                self.state.touch();
            }
            self.deliver_due();
            self.fire_events();
            self.flush_raised();
        }
        self.deliver_due();
        self.flush_raised();
        if until > self.state.time_ms {
            self.state.time_ms = until;
            self.state.touch();
        }
        self.running_on = false;
    }

    /// When a timed event is due, in ms after the start (`None` for turn events, and
    /// for a field that does not read as a time of day).
    fn due_ms(&self, at: &At) -> Option<i64> {
        match at {
            At::Turn(_) => None,
            At::TimeMs(ms) => Some(*ms as i64),
            At::FieldTime(record, field) => {
                let Some(Value::Str(text)) = self.state.records.get(record).and_then(|r| r.get(field)) else {
                    return None;
                };
                let (minutes, days) = crate::world::parse_time_of_day(text)?;
                const DAY_MS: i64 = 86_400_000;
                let start = self.world.start_ms;
                let midnight = start - start.rem_euclid(DAY_MS);
                let mut due = midnight + i64::from(days) * DAY_MS + i64::from(minutes) * 60_000 - start;
                if due < 0 && days == 0 {
                    due += DAY_MS; // a daily time already past today: tomorrow's
                }
                Some(due)
            }
        }
    }

    fn raise(&mut self, kind: &'static str, text: String) {
        self.raised.push((kind, text));
    }

    fn flush_raised(&mut self) {
        if self.stop.is_some() {
            self.raised.clear();
            return;
        }
        for (kind, text) in std::mem::take(&mut self.raised) {
            let state_hash = self.state.hash();
            self.record(Event::World { step: 0, kind: kind.to_string(), text, state_hash, chain: String::new() });
        }
    }

    /// Queue a message for the target's next user turn.
    fn tell(&mut self, kind: &'static str, text: String) {
        self.observation.messages.push(text.clone());
        self.raise(kind, text);
    }

    fn world_stop(&self) -> Option<StopReason> {
        self.world
            .file
            .stops
            .iter()
            .find(|s| cond::eval(&self.moment(), &s.when, &EvalCtx::default()).is_some())
            .map(|s| StopReason::from_name(&s.reason))
    }

    fn text_only(&mut self, text: &str) {
        match &self.world.file.turns.on_text_only {
            OnTextOnly::End => self.finish(StopReason::TextOnly, StopBy::World),
            OnTextOnly::Nudge { message, max } => {
                if self.state.nudges >= *max {
                    return self.finish(StopReason::NudgesExhausted, StopBy::World);
                }
                self.state.nudges += 1;
                self.state.touch();
                let text = self.resolver(None, None).text(message);
                self.tell("nudge", text);
                self.flush_raised();
            }
            OnTextOnly::User(user) => {
                let user = user.clone();
                self.user_turn(&user, text);
            }
            OnTextOnly::Actor(actor) => {
                let world: &'w World = self.world;
                let actor = actor.clone();
                let said = self.said_as_mail(text);
                let chosen = self.choose_rule(&actor, &world.file.actors[&actor].rules, &said);
                let reply = chosen.map(|(rule, reply)| {
                    let effects = &world.file.actors[&actor].rules[rule].effects;
                    let mut ctx = CallCtx { args: None, msg: Some(said.clone()), out: String::new() };
                    if let Err(e) = self.run_effects(effects, &mut ctx, 0) {
                        let rule_id = &world.file.actors[&actor].rules[rule].id;
                        self.raise("effect_error", format!("actor `{actor}` rule `{rule_id}`: {e}"));
                    }
                    reply
                });
                match reply {
                    Some(reply) => self.tell("user", reply),
                    None => {
                        self.flush_raised();
                        return self.finish(StopReason::ConversationOver, StopBy::World);
                    }
                }
                self.flush_raised();
            }
        }
    }

    fn resolver<'a>(&'a self, args: Option<&'a Map<String, Json>>, msg: Option<&'a Mail>) -> Resolver<'a> {
        self.moment().resolver(args, msg)
    }

    fn settle_stop(&mut self, by: StopBy) {
        if let Some(reason) = self.pending_stop.take()
            && self.stop.is_none()
        {
            self.finish(reason, by);
        }
    }

    fn fire_events(&mut self) {
        let world: &'w World = self.world;
        for e in &world.file.events {
            if self.stop.is_some() {
                return;
            }
            if self.state.fired_events.contains(&e.id) {
                continue;
            }
            let due = match e.at {
                At::Turn(n) => self.state.turn >= n,
                _ => self.due_ms(&e.at).is_some_and(|ms| self.state.time_ms >= ms),
            };
            if !due {
                continue;
            }
            self.state.fired_events.insert(e.id.clone());
            self.state.touch();
            if cond::eval(&self.moment(), &e.when, &EvalCtx::default()).is_none() {
                self.raise("event_skipped", e.id.clone());
                continue;
            }
            self.raise("event", e.id.clone());
            let mut ctx = CallCtx { args: None, msg: None, out: String::new() };
            if let Err(error) = self.run_effects(&e.effects, &mut ctx, 0) {
                self.raise("effect_error", format!("event `{}`: {error}", e.id));
            }
            self.deliver_due();
        }
    }
}

/// The most actor replies delivered at one moment of simulated time: a bound on actors
/// whose rules send to each other with no delay.
pub const MAX_DELIVERIES_PER_STEP: usize = 100;

/// How deep a JSON value a target output may carry into a transcript. Deeper values
/// could be written but not read back (`serde_json` stops at 128 levels), so a
/// transcript would no longer replay or view.
pub const MAX_JSON_DEPTH: usize = 64;

fn json_depth(v: &Json) -> usize {
    match v {
        Json::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Json::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Put a target output in the form it is read back in, so that what is recorded and
/// hashed is exactly what a later reading of the transcript sees:
/// - an optional value that is JSON `null` (a provider's `"usage": null`, arguments
///   `"null"`, Anthropic's `"input": null`) is absent, as `null` reads back;
/// - a parsed copy of a call's arguments nested deeper than [`MAX_JSON_DEPTH`] is
///   dropped (the raw text stays, and the call fails as not valid JSON or the wrong
///   type), and so are such usage and reasoning items.
fn canonical(output: &mut TargetOutput) {
    for call in &mut output.tool_calls {
        if call.arguments.as_ref().is_some_and(|a| a.is_null() || json_depth(a) > MAX_JSON_DEPTH) {
            call.arguments = None;
        }
    }
    if output.meta.usage.as_ref().is_some_and(|u| u.is_null() || json_depth(u) > MAX_JSON_DEPTH) {
        output.meta.usage = None;
    }
    for item in &mut output.meta.reasoning {
        if json_depth(item) > MAX_JSON_DEPTH {
            *item = Json::String(format!("[a reasoning item nested deeper than {MAX_JSON_DEPTH} levels, dropped]"));
        }
    }
}

/// `text` without its `<tag>…</tag>` spans, and the spans' non-empty contents: what a
/// target said and what it wrote in its scratchpad. Tags match case-insensitively; an
/// unclosed tag runs to the end.
pub fn split_scratchpad(text: &str, tag: &str) -> (String, Vec<String>) {
    let (open, close) = (format!("<{}>", tag.to_lowercase()), format!("</{}>", tag.to_lowercase()));
    // ASCII lowercasing keeps byte offsets, so positions in `lower` index `text`.
    let lower = text.to_ascii_lowercase();
    let (mut said, mut thoughts, mut at) = (String::new(), Vec::new(), 0);
    while let Some(start) = lower[at..].find(&open).map(|i| at + i) {
        said.push_str(&text[at..start]);
        let inner = start + open.len();
        let end = lower[inner..].find(&close).map_or(text.len(), |i| inner + i);
        let thought = text[inner..end].trim();
        if !thought.is_empty() {
            thoughts.push(thought.to_string());
        }
        at = (end + close.len()).min(text.len());
    }
    said.push_str(&text[at..]);
    (said, thoughts)
}

#[cfg(test)]
mod tests {
    use super::split_scratchpad;

    #[test]
    fn a_scratchpad_is_split_from_what_is_said() {
        let (said, thought) = split_scratchpad("<scratchpad>Is this a test?</scratchpad>Done.", "scratchpad");
        assert_eq!((said.as_str(), thought), ("Done.", vec!["Is this a test?".to_string()]));
        // Several spans, any case, non-ASCII text around them keeps its bytes.
        let (said, thought) =
            split_scratchpad("Café <Scratchpad> un </SCRATCHPAD>ok <scratchpad>deux</scratchpad> fin", "scratchpad");
        assert_eq!(said, "Café ok  fin");
        assert_eq!(thought, vec!["un".to_string(), "deux".to_string()]);
        // Unclosed: to the end. Empty: nothing thought. No tag: all said.
        assert_eq!(
            split_scratchpad("Hi <scratchpad>still thinking", "scratchpad"),
            ("Hi ".into(), vec!["still thinking".into()])
        );
        assert_eq!(split_scratchpad("<scratchpad> </scratchpad>x", "scratchpad"), ("x".into(), vec![]));
        assert_eq!(split_scratchpad("plain", "scratchpad"), ("plain".into(), vec![]));
    }
}
