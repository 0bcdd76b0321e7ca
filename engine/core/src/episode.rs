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
use crate::rng::Stream;
use crate::span::Path;
use crate::state::{CallRecord, History, Mail, NewMail, Pending, State};
use crate::template::normalise;
use crate::transcript::{Event, Observation, StopBy, TargetOutput, ToolCall, ToolResultView, Verdicts};
use crate::view;
use crate::world::{Condition, World};

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
    actor_streams: BTreeMap<String, Stream>,
    step: u64,
    chain: [u8; 32],
    stop: Option<(String, StopBy)>,
    /// A stop requested by an effect, taken once the current call or event is recorded.
    pending_stop: Option<String>,
    observation: Observation,
    /// World events raised while a tool call or a turn is being processed.
    raised: Vec<(&'static str, String)>,
    events: Vec<Event>,
    /// The clock is running on after the target stopped (see `Clock::run_on_until_ms`).
    running_on: bool,
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
    pub fn start(world: &'w World, condition: &Condition, seed: u64) -> Result<Self, EnvError> {
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
            let mail = Mail::new(NewMail {
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
            state.delivered.insert(placed.declared.clone(), placed.display_id.clone());
            state.mails.push(mail);
        }

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

    /// Whether the episode has stopped.
    pub fn is_done(&self) -> bool {
        self.stop.is_some()
    }

    /// The stop reason, once stopped.
    pub fn stop_reason(&self) -> Option<&str> {
        self.stop.as_ref().map(|(r, _)| r.as_str())
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
    pub fn stop_by_target(&mut self, reason: &str) {
        if self.stop.is_none() {
            self.finish(reason.to_string(), StopBy::Target);
        }
    }

    /// Apply one target output. Returns nothing: events accumulate (see
    /// [`Episode::events`]) and the next observation replaces the last.
    pub fn apply(&mut self, mut output: TargetOutput) {
        if self.stop.is_some() {
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
        let turn = self.state.turn;
        let state_hash = self.state.hash();
        self.record(Event::Target { step: 0, turn, output, state_hash, chain: String::new() });
        if too_long {
            return self.finish("limit_text_bytes".into(), StopBy::Limit);
        }
        if too_many {
            return self.finish("limit_tool_calls".into(), StopBy::Limit);
        }
        if !text.trim().is_empty() {
            self.history.said.push((self.step - 1, text.clone()));
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
        if calls.is_empty() {
            self.text_only(&text);
            if self.stop.is_some() {
                return;
            }
        }
        if self.state.turn >= limits.max_turns {
            self.finish("max_turns".into(), StopBy::Limit);
        }
    }

    /// The verdict on every outcome, with evidence. Meaningful once stopped.
    pub fn verdicts(&self) -> Verdicts {
        let mut outcomes = BTreeMap::new();
        for (name, o) in &self.world.file.outcomes {
            let evidence = cond::eval(self, &o.when, &EvalCtx::default());
            outcomes.insert(
                name.clone(),
                crate::transcript::Verdict {
                    kind: o.kind.as_str().to_string(),
                    fired: evidence.is_some(),
                    evidence: evidence.unwrap_or_default(),
                    exposed: o.exposed.as_ref().map(|c| cond::eval(self, c, &EvalCtx::default()).is_some()),
                    decided_by: o.decide.into(),
                },
            );
        }
        Verdicts { stop_reason: self.stop_reason().unwrap_or("running").to_string(), outcomes }
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
        self.events.push(event);
        if self.step > u64::from(self.world.file.limits.max_events) && self.stop.is_none() {
            self.finish("limit_events".into(), StopBy::Limit);
        }
    }

    fn finish(&mut self, reason: String, by: StopBy) {
        if self.stop.is_some() || self.running_on {
            // Stopped already, or an effect of an event the run-on fired: the stop that
            // began the run-on is the one recorded.
            return;
        }
        self.run_on();
        self.stop = Some((reason.clone(), by));
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

    fn world_stop(&self) -> Option<String> {
        self.world
            .file
            .stops
            .iter()
            .find(|s| cond::eval(self, &s.when, &EvalCtx::default()).is_some())
            .map(|s| s.reason.clone())
    }

    fn text_only(&mut self, text: &str) {
        match &self.world.file.turns.on_text_only {
            OnTextOnly::End => self.finish("text_only".into(), StopBy::World),
            OnTextOnly::Nudge { message, max } => {
                if self.state.nudges >= *max {
                    return self.finish("nudges_exhausted".into(), StopBy::World);
                }
                self.state.nudges += 1;
                self.state.touch();
                let text = self.resolver(None, None).text(message);
                self.tell("nudge", text);
                self.flush_raised();
            }
            OnTextOnly::Actor(actor) => {
                let world: &'w World = self.world;
                let actor = actor.clone();
                let said = Mail::new(NewMail {
                    id: String::new(),
                    declared: None,
                    mailbox: None,
                    from: self.env.target_address.clone().unwrap_or_default(),
                    to: Vec::new(),
                    cc: Vec::new(),
                    subject: String::new(),
                    body: text.to_string(),
                    time_ms: self.state.time_ms,
                    attachments: Vec::new(),
                    tags: Vec::new(),
                    read: true,
                    by_target: true,
                    step: self.step,
                });
                let chosen = self.choose_rule(&actor, &said);
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
                        return self.finish("conversation_over".into(), StopBy::World);
                    }
                }
                self.flush_raised();
            }
        }
    }

    fn resolver<'a>(&'a self, args: Option<&'a Map<String, Json>>, msg: Option<&'a Mail>) -> Resolver<'a> {
        Resolver { world: self.world, env: &self.env, state: Some(&self.state), args, msg }
    }

    fn settle_stop(&mut self, by: StopBy) {
        if let Some(reason) = self.pending_stop.take()
            && self.stop.is_none()
        {
            self.finish(reason, by);
        }
    }

    fn call_tool(&mut self, call: &ToolCall) -> (bool, String) {
        let world: &'w World = self.world;
        let w = &world.file;
        let Some(tool) = w.tools.get(&call.name).filter(|_| w.target.tools.contains(&call.name)) else {
            return (
                false,
                format!("Error: unknown tool `{}`. Available tools: {}.", call.name, w.target.tools.join(", ")),
            );
        };
        let raw = call.arguments_raw.trim();
        let args: Map<String, Json> = if raw.is_empty() {
            Map::new()
        } else {
            match serde_json::from_str::<Json>(raw) {
                Ok(Json::Object(map)) => map,
                Ok(_) => return (false, "Error: arguments must be a JSON object.".into()),
                Err(e) => return (false, format!("Error: arguments are not valid JSON ({e}).")),
            }
        };
        for key in args.keys() {
            if !tool.params.iter().any(|p| &p.name == key) {
                return (false, format!("Error: `{}` has no parameter `{key}`.", call.name));
            }
        }
        for p in &tool.params {
            match args.get(&p.name) {
                None | Some(Json::Null) if p.required => {
                    return (false, format!("Error: missing required parameter `{}`.", p.name));
                }
                None | Some(Json::Null) => {}
                Some(v) => {
                    let ok = match &p.kind {
                        ParamType::String => v.is_string(),
                        ParamType::Integer => v.is_i64() || v.is_u64(),
                        ParamType::Boolean => v.is_boolean(),
                        ParamType::StringList => {
                            v.as_array().is_some_and(|a| a.iter().all(Json::is_string)) || v.is_string()
                        }
                        ParamType::Enum(vals) => v.as_str().is_some_and(|s| vals.iter().any(|x| x == s)),
                    };
                    if !ok {
                        return (false, format!("Error: parameter `{}` must be {}.", p.name, p.kind.expected()));
                    }
                }
            }
        }
        let ctx = EvalCtx { args: Some(&args), msg: None };
        for check in &tool.checks {
            if cond::eval(self, &check.require, &ctx).is_none() {
                return (false, self.resolver(Some(&args), None).text(&check.error));
            }
        }
        let mut ctx = CallCtx { args: Some(&args), msg: None, out: String::new() };
        match self.run_effects(&tool.effects, &mut ctx, 0) {
            Ok(()) => {
                self.history.calls.push(CallRecord { step: self.step, tool: call.name.clone(), args: args.clone() });
                let out = ctx.out.trim_end().to_string();
                (true, if out.is_empty() { "OK.".into() } else { out })
            }
            Err(e) => (false, e),
        }
    }

    fn run_effects(&mut self, effects: &[Effect], ctx: &mut CallCtx, depth: u32) -> Result<(), String> {
        if depth > MAX_EFFECT_DEPTH {
            return Err(format!("Error: effects nest deeper than {MAX_EFFECT_DEPTH} (a machine that fires itself?)."));
        }
        for effect in effects {
            self.run_effect(effect, ctx, depth)?;
            if self.stop.is_some() {
                break;
            }
        }
        Ok(())
    }

    fn render(&self, src: &str, ctx: &CallCtx) -> String {
        self.resolver(ctx.args, ctx.msg.as_ref()).text(src)
    }

    fn mark_changed(&mut self, key: String) {
        self.history.changed.insert(key, self.step);
        self.state.touch();
    }

    fn expose(&mut self, tags: &[String], what: &str) {
        for t in tags {
            if self.state.exposed.insert(t.clone()) {
                self.history.exposed_at.insert(t.clone(), (self.step, what.to_string()));
                self.state.touch();
            }
        }
    }

    fn run_effect(&mut self, effect: &Effect, ctx: &mut CallCtx, depth: u32) -> Result<(), String> {
        let line = |ctx: &mut CallCtx, s: &str| {
            ctx.out.push_str(s);
            ctx.out.push('\n');
        };
        match effect {
            Effect::Say(t) => {
                let text = self.render(t, ctx);
                line(ctx, &text);
            }
            Effect::When { cond, then, otherwise } => {
                let holds = cond::eval(self, cond, &EvalCtx { args: ctx.args, msg: ctx.msg.as_ref() }).is_some();
                self.run_effects(if holds { then } else { otherwise }, ctx, depth + 1)?;
            }
            Effect::SetVar(name, value) => {
                let v = self.value(value, ctx);
                self.state.vars.insert(name.clone(), v);
                self.mark_changed(format!("var:{name}"));
            }
            Effect::AddVar(name, n) => {
                if let Some(Value::Int(i)) = self.state.vars.get_mut(name) {
                    *i = i.saturating_add(*n);
                }
                self.mark_changed(format!("var:{name}"));
            }
            Effect::SetField(record, field, value) => {
                let v = self.value(value, ctx);
                self.set_field(record, field, v)?;
            }
            Effect::SetFieldFromArg(record, field, param) => {
                let current = self.state.records.get(record).and_then(|r| r.get(field)).cloned();
                let arg = ctx.args.and_then(|a| a.get(param)).cloned().unwrap_or(Json::Null);
                let v = match (current, &arg) {
                    (Some(Value::Int(_)), Json::Number(n)) if n.is_i64() => Value::Int(n.as_i64().unwrap_or_default()),
                    (Some(Value::Int(_)), Json::String(s)) => match s.trim().parse() {
                        Ok(i) => Value::Int(i),
                        Err(_) => {
                            return Err(format!("Error: `{field}` takes an integer, not `{s}`."));
                        }
                    },
                    (Some(Value::Bool(_)), Json::Bool(b)) => Value::Bool(*b),
                    (Some(Value::Bool(_)), Json::String(s)) => match s.trim().to_lowercase().as_str() {
                        "true" | "on" | "yes" | "enabled" | "1" => Value::Bool(true),
                        "false" | "off" | "no" | "disabled" | "0" => Value::Bool(false),
                        _ => {
                            return Err(format!("Error: `{field}` takes true or false, not `{s}`."));
                        }
                    },
                    (Some(Value::Str(_)), other) => {
                        let mut s = String::new();
                        push_json(&mut s, other);
                        Value::Str(s)
                    }
                    (Some(_), other) => {
                        return Err(format!("Error: `{field}` cannot be set to {other}."));
                    }
                    (None, _) => return Err(format!("Error: no setting `{record}.{field}`.")),
                };
                self.set_field(record, field, v)?;
            }
            Effect::Fire(machine, event) => self.fire(machine, event, ctx, depth)?,
            Effect::SendEmail { to, cc, subject, body, attachments } => {
                let to = self.addresses(&self.render(to, ctx))?;
                let cc = self.addresses(&self.render(cc, ctx))?;
                if to.is_empty() {
                    return Err("Error: at least one recipient (`to`) is required.".into());
                }
                let attachments = self.attachments(&self.render(attachments, ctx))?;
                let (subject, body) = (self.render(subject, ctx), self.render(body, ctx));
                let id = self.send(to, cc, subject, body, attachments);
                let m = &self.state.mails[id];
                let text =
                    format!("Email sent to {} (id {}).", m.recipients().cloned().collect::<Vec<_>>().join(", "), m.id);
                line(ctx, &text);
            }
            Effect::ReplyEmail { email, body } => {
                let idx = self.visible_mail(&self.render(email, ctx))?;
                let orig = &self.state.mails[idx];
                let to = vec![orig.from.clone()];
                let subject = reply_subject(&orig.subject);
                let body = self.render(body, ctx);
                let id = self.send(to, Vec::new(), subject, body, Vec::new());
                let text = format!("Reply sent to {} (id {}).", self.state.mails[id].to[0], self.state.mails[id].id);
                line(ctx, &text);
            }
            Effect::ForwardEmail { email, to, body } => {
                let idx = self.visible_mail(&self.render(email, ctx))?;
                let to = self.addresses(&self.render(to, ctx))?;
                if to.is_empty() {
                    return Err("Error: at least one recipient (`to`) is required.".into());
                }
                let orig = self.state.mails[idx].clone();
                let note = self.render(body, ctx);
                let body = format!(
                    "{note}\n\n---------- Forwarded message ----------\nFrom: {}\nDate: {}\nSubject: {}\n\n{}",
                    orig.from,
                    crate::world::format_time(self.world.start_ms + orig.time_ms),
                    orig.subject,
                    orig.body
                );
                let id = self.send(to, Vec::new(), format!("Fwd: {}", orig.subject), body, orig.attachments.clone());
                let text =
                    format!("Forwarded to {} (id {}).", self.state.mails[id].to.join(", "), self.state.mails[id].id);
                line(ctx, &text);
            }
            Effect::ListEmails => {
                let text = view::inbox(self);
                line(ctx, &text);
            }
            Effect::ReadEmail(id) => {
                let idx = self.visible_mail(&self.render(id, ctx))?;
                self.state.mails[idx].read = true;
                self.state.touch();
                let what = format!("email {}", self.state.mails[idx].id);
                let tags = std::mem::take(&mut self.state.mails[idx].tags);
                self.expose(&tags, &what);
                self.state.mails[idx].tags = tags;
                let text = view::mail(self, &self.state.mails[idx]);
                line(ctx, &text);
            }
            Effect::SearchEmails(query) => {
                let text = view::search(self, &self.render(query, ctx));
                line(ctx, &text);
            }
            Effect::ListDocuments => {
                let text = view::documents(self);
                line(ctx, &text);
            }
            Effect::ReadDocument(id) => {
                let id = self.render(id, ctx).trim().to_string();
                if !self.env.documents.contains(&id) {
                    return Err(format!("Error: no document with id `{id}`."));
                }
                let world: &'w World = self.world;
                self.expose(&world.file.documents[&id].tags, &format!("document {id}"));
                let text = view::document(self, &id);
                line(ctx, &text);
            }
            Effect::CopyDocument { document, destination } => {
                let doc = self.render(document, ctx).trim().to_string();
                if !self.env.documents.contains(&doc) {
                    return Err(format!("Error: no document with id `{doc}`."));
                }
                let dest = self.render(destination, ctx).trim().to_string();
                if dest.is_empty() {
                    return Err("Error: a destination is required.".into());
                }
                let external = self.is_external_location(&dest);
                self.state.copies.insert((doc.clone(), dest.clone()));
                self.state.touch();
                self.history.copies.push((self.step, doc.clone(), dest.clone(), external));
                line(ctx, &format!("Copied `{doc}` to {dest}."));
            }
            Effect::ListRecords(kind) => {
                let text = view::records(self, kind);
                line(ctx, &text);
            }
            Effect::ReadRecord(id) => {
                let id = self.render(id, ctx).trim().to_string();
                if !self.state.records.contains_key(&id) {
                    return Err(format!("Error: no record with id `{id}`."));
                }
                let world: &'w World = self.world;
                self.expose(&world.file.records[&id].tags, &format!("record {id}"));
                let text = view::record(self, &id);
                line(ctx, &text);
            }
            Effect::Deliver(declared) => self.deliver_declared(declared),
            Effect::Notify(t) => {
                let text = self.render(t, ctx);
                self.tell("notification", text);
            }
            Effect::EndTask => {
                line(ctx, "Task marked as complete.");
                self.stop_after_call("end_task");
            }
            Effect::Stop(reason) => self.stop_after_call(reason),
        }
        Ok(())
    }

    /// A stop raised inside a tool call takes effect once its result is recorded.
    fn stop_after_call(&mut self, reason: &str) {
        if self.stop.is_none() && self.pending_stop.is_none() {
            self.pending_stop = Some(reason.to_string());
        }
    }

    fn value(&self, v: &Value, ctx: &CallCtx) -> Value {
        match v {
            Value::Str(t) => Value::Str(self.render(t, ctx)),
            other => other.clone(),
        }
    }

    fn set_field(&mut self, record: &str, field: &str, v: Value) -> Result<(), String> {
        let slot = self
            .state
            .records
            .get_mut(record)
            .and_then(|r| r.get_mut(field))
            .ok_or_else(|| format!("Error: no setting `{record}.{field}`."))?;
        *slot = v;
        self.mark_changed(format!("field:{record}.{field}"));
        Ok(())
    }

    fn fire(&mut self, machine: &str, event: &str, ctx: &mut CallCtx, depth: u32) -> Result<(), String> {
        let current = self.state.machines[machine].clone();
        let world: &'w World = self.world;
        let m = &world.file.machines[machine];
        let Some(t) = m.transitions.iter().find(|t| t.event == event && t.from.contains(&current)) else {
            self.raise("ignored", format!("{machine}: `{event}` does nothing in state `{current}`"));
            return Ok(());
        };
        self.state.machines.insert(machine.to_string(), t.to.clone());
        self.mark_changed(format!("machine:{machine}"));
        self.raise("transition", format!("{machine}: {current} -> {} ({event})", t.to));
        if ctx.args.is_none() {
            // Outside a tool call (a scheduled event, an actor's reply) the evidence is
            // the transition's own line, which is recorded once the raised lines flush.
            // (In a call it stays the call's result, the step that caused it.)
            let step = self.step + self.raised.len() as u64 - 1;
            self.history.changed.insert(format!("machine:{machine}"), step);
        }
        self.run_effects(&t.effects, ctx, depth + 1)
    }

    fn addresses(&self, list: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for a in list.split([',', ';']).map(str::trim).filter(|a| !a.is_empty()) {
            // Accept `Name <addr>` as mail clients do.
            let addr = match (a.find('<'), a.rfind('>')) {
                (Some(l), Some(r)) if l < r => a[l + 1..r].trim(),
                _ => a,
            };
            let valid =
                addr.split_once('@').is_some_and(|(u, d)| !u.is_empty() && d.contains('.') && !addr.contains(' '));
            if !valid {
                return Err(format!("Error: `{a}` is not a valid email address."));
            }
            let lower = addr.to_lowercase();
            if !self.is_external_address(&lower) && !self.env.by_address.contains_key(&lower) {
                return Err(format!("Error: delivery failed: no mailbox `{addr}` in this organisation."));
            }
            let canonical = self.env.by_address.get(&lower).map(|p| self.env.people[p].email.clone());
            out.push(canonical.unwrap_or_else(|| addr.to_string()));
        }
        Ok(out)
    }

    fn attachments(&self, list: &str) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        for id in list.split([',', ';']).map(str::trim).filter(|a| !a.is_empty()) {
            if !self.env.documents.contains(id) {
                return Err(format!("Error: no document with id `{id}` to attach."));
            }
            out.push(id.to_string());
        }
        Ok(out)
    }

    /// Outside the organisation: an address whose domain is not one of its domains
    /// (or a subdomain of one).
    pub fn is_external_address(&self, address: &str) -> bool {
        let domain = address.trim().rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
        !self.is_internal_host(&domain)
    }

    /// Outside the organisation: a destination that is not under one of its declared
    /// locations (shares, buckets), and whose host, for a URL, is not one of its
    /// domains or a subdomain of one. A look-alike (`files.corp.example.net`) is outside.
    pub fn is_external_location(&self, dest: &str) -> bool {
        let dest = dest.trim();
        if !dest.contains("://") && dest.contains('@') {
            return self.is_external_address(dest);
        }
        if self.world.file.org.internal_locations.iter().any(|p| dest.starts_with(p.as_str())) {
            return false;
        }
        let host = dest
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
            .map(|h| h.rsplit_once('@').map_or(h, |(_, h)| h))
            .map(|h| h.split(':').next().unwrap_or_default().to_lowercase());
        !host.is_some_and(|h| self.is_internal_host(&h))
    }

    fn is_internal_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        !host.is_empty()
            && self.world.file.org.internal_domains.iter().any(|d| {
                let d = d.to_lowercase();
                host == d || host.strip_suffix(&d).is_some_and(|rest| rest.ends_with('.'))
            })
    }

    /// An email in the target's own mailbox, by the id it sees.
    fn visible_mail(&self, id: &str) -> Result<usize, String> {
        let me = self.world.file.target.person.as_deref();
        match self.state.mail_by_id(id) {
            Some(i) if self.state.mails[i].mailbox.as_deref() == me => Ok(i),
            _ => Err(format!("Error: no email with id `{}`.", id.trim())),
        }
    }

    /// The target sends an email; actors who receive it react.
    fn send(
        &mut self,
        to: Vec<String>,
        cc: Vec<String>,
        subject: String,
        body: String,
        attachments: Vec<String>,
    ) -> usize {
        let mail = Mail::new(NewMail {
            id: mail_id(self.state.mails.len() + 1),
            declared: None,
            mailbox: self.world.file.target.person.clone(),
            from: self.env.target_address.clone().unwrap_or_default(),
            to,
            cc,
            subject,
            body,
            time_ms: self.state.time_ms,
            attachments,
            tags: Vec::new(),
            read: true,
            by_target: true,
            step: self.step,
        });
        self.state.mails.push(mail);
        self.state.touch();
        let idx = self.state.mails.len() - 1;
        self.history.sent.push(idx);
        let recipients: Vec<String> = self.state.mails[idx].recipients().map(|a| a.to_lowercase()).collect();
        let sent = self.state.mails[idx].clone();
        for addr in recipients {
            let Some(person) = self.env.by_address.get(&addr).cloned() else {
                continue;
            };
            if self.world.file.actors.get(&person).is_some_and(|a| a.channel == Channel::Email)
                && let Some((rule, reply)) = self.choose_rule(&person, &sent)
            {
                let delay = self.world.file.actors[&person].rules[rule].delay_ms as i64;
                let seq = self.state.next_seq;
                self.state.next_seq += 1;
                self.state.pending.insert(Pending {
                    due_ms: self.state.time_ms + delay,
                    seq,
                    actor: person,
                    rule,
                    answering: idx,
                    reply,
                });
                self.state.touch();
            }
        }
        idx
    }

    /// The first rule of `actor` that answers the message at `msg`, with its reply.
    fn choose_rule(&mut self, actor: &str, msg: &Mail) -> Option<(usize, String)> {
        let rules = &self.world.file.actors[actor].rules;
        let ctx = EvalCtx { args: None, msg: Some(msg) };
        let rule = rules.iter().enumerate().find(|(i, r)| {
            !(r.once && self.state.used_rules.contains(&(actor.to_string(), *i)))
                && cond::eval(self, &r.when, &ctx).is_some()
        })?;
        let (i, rule) = rule;
        // Each actor's stream is derived when it first answers: same draws, less work.
        let seed = self.env.seed;
        let stream = self
            .actor_streams
            .entry(actor.to_string())
            .or_insert_with(|| Stream::derive(seed, &format!("actor:{actor}")));
        let pick = stream.index(rule.replies.len());
        let reply = self.resolver(None, Some(msg)).text(&rule.replies[pick]);
        if rule.once {
            self.state.used_rules.insert((actor.to_string(), i));
            self.state.touch();
        }
        Some((i, reply))
    }

    fn deliver_due(&mut self) {
        let mut delivered = 0;
        while let Some(p) = self.state.pending.first().filter(|p| p.due_ms <= self.state.time_ms).cloned() {
            delivered += 1;
            if delivered > MAX_DELIVERIES_PER_STEP {
                // Actors answering each other at once would never stop within a step.
                self.raise(
                    "limit",
                    format!("more than {MAX_DELIVERIES_PER_STEP} replies arrived at one moment (actors answering each other?)"),
                );
                self.flush_raised();
                self.finish("limit_actor_exchanges".into(), StopBy::Limit);
                return;
            }
            self.state.pending.remove(&p);
            let from = self.env.people[&p.actor].email.clone();
            let orig_subject = self.state.mails[p.answering].subject.clone();
            let mail = Mail::new(NewMail {
                id: mail_id(self.state.mails.len() + 1),
                declared: None,
                mailbox: self.world.file.target.person.clone(),
                from: from.clone(),
                to: vec![self.env.target_address.clone().unwrap_or_default()],
                cc: Vec::new(),
                subject: reply_subject(&orig_subject),
                body: p.reply.clone(),
                time_ms: self.state.time_ms,
                attachments: Vec::new(),
                tags: Vec::new(),
                read: false,
                by_target: false,
                step: self.step,
            });
            let header = format!("{} from {}: {}", mail.id, from, mail.subject);
            self.state.mails.push(mail);
            self.state.touch();
            self.arrived(header);
            let world: &'w World = self.world;
            let effects = &world.file.actors[&p.actor].rules[p.rule].effects;
            let answering = self.state.mails[p.answering].clone();
            let mut ctx = CallCtx { args: None, msg: Some(answering), out: String::new() };
            if let Err(e) = self.run_effects(effects, &mut ctx, 0) {
                let rule_id = &world.file.actors[&p.actor].rules[p.rule].id;
                self.raise("effect_error", format!("actor `{}` rule `{rule_id}`: {e}", p.actor));
            }
        }
    }

    /// A new email reached the target's mailbox.
    fn arrived(&mut self, header: String) {
        if self.world.file.turns.notifications == crate::format::Notifications::Push {
            self.tell("email", format!("New email: {header}"));
        } else {
            // Not shown to the target: it finds the email only by looking.
            self.raise("email_unseen", header);
        }
    }

    fn deliver_declared(&mut self, declared: &str) {
        if self.state.delivered.contains_key(declared) {
            return;
        }
        let e = &self.world.file.emails[declared];
        if !e.only_if.as_ref().is_none_or(|p| self.env.condition.matches(p)) {
            return;
        }
        let r = self.resolver(None, None);
        let addr = |p: &String| self.env.people[p].email.clone();
        let mail = Mail::new(NewMail {
            id: mail_id(self.state.mails.len() + 1),
            declared: Some(declared.to_string()),
            mailbox: Some(e.mailbox.clone()),
            from: addr(&e.from),
            to: e.to.iter().map(addr).collect(),
            cc: e.cc.iter().map(addr).collect(),
            subject: r.text(&e.subject),
            body: r.text(e.body.as_deref().unwrap_or("")),
            time_ms: self.state.time_ms,
            attachments: e.attachments.clone(),
            tags: e.tags.clone(),
            read: false,
            by_target: false,
            step: self.step,
        });
        let header = format!("{} from {}: {}", mail.id, mail.from, mail.subject);
        let to_target = mail.mailbox.as_deref() == self.world.file.target.person.as_deref();
        self.state.delivered.insert(declared.to_string(), mail.id.clone());
        self.state.mails.push(mail);
        self.state.touch();
        if to_target {
            self.arrived(header);
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
            if cond::eval(self, &e.when, &EvalCtx::default()).is_none() {
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

fn reply_subject(subject: &str) -> String {
    if subject.to_lowercase().starts_with("re:") { subject.to_string() } else { format!("Re: {subject}") }
}

/// Normalised text of an email for fact and cue matching: subject, body and the
/// bodies of attached documents.
pub fn mail_text<'m>(ep: &Episode, mail: &'m Mail) -> &'m str {
    mail.normalised(|| mail_text_uncached(ep, mail))
}

fn mail_text_uncached(ep: &Episode, mail: &Mail) -> String {
    let mut text = String::with_capacity(mail.subject.len() + mail.body.len() + 2);
    text.push_str(&mail.subject);
    text.push('\n');
    text.push_str(&mail.body);
    for d in &mail.attachments {
        if let Some(doc) = ep.world.file.documents.get(d) {
            text.push('\n');
            text.push_str(&Resolver::fixed(ep.world, &ep.env).text(doc.body.as_deref().unwrap_or("")));
        }
    }
    normalise(&text)
}
