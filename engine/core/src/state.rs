//! World state during an episode, and its canonical hash.
//!
//! The state hash is a function of the state alone: every collection is ordered, and
//! sets are hashed as sets, so reaching one state by two action orders gives one hash.
//! What the target did (its calls and messages) is history, kept in [`History`] and
//! covered by the transcript's event chain instead.

use std::collections::{BTreeMap, BTreeSet};

use crate::format::Value;
use crate::hash::{Canon, hex};

/// What an email holds. [`Mail::new`] seals it with its content digest; a mail is read
/// through it (`mail.subject`), and only its read flag changes after.
#[derive(Clone, Debug)]
pub struct MailContent {
    /// The id the target sees (`m001`, ...).
    pub id: String,
    /// The id it was declared with, for emails from the world file.
    pub declared: Option<String>,
    /// Whose mailbox holds it (person id); `None` for a message that only left.
    pub mailbox: Option<String>,
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// Simulated ms since the start.
    pub time_ms: i64,
    pub attachments: Vec<String>,
    pub tags: Vec<String>,
    pub read: bool,
    pub by_target: bool,
    /// The step that created it (0 for the initial inbox).
    pub step: u64,
}

/// An email in the world: its content, sealed.
#[derive(Clone, Debug)]
pub struct Mail {
    content: MailContent,
    /// Content digest, computed by [`Mail::new`]: content never changes after creation,
    /// and a mail cannot be made without it (the fields are private to this module).
    digest: [u8; 16],
    /// The normalised text used for fact and cue matching, computed on first use.
    normalised: std::cell::OnceCell<String>,
}

impl std::ops::Deref for Mail {
    type Target = MailContent;
    fn deref(&self) -> &MailContent {
        &self.content
    }
}

impl Mail {
    /// A mail with its content digest, the only way to make one.
    pub fn new(content: MailContent) -> Mail {
        let mut mail = Mail { content, digest: [0; 16], normalised: Default::default() };
        mail.seal();
        mail
    }

    /// The target has read it (its read flag is state, not content: the digest stands).
    pub fn mark_read(&mut self) {
        self.content.read = true;
    }

    /// The content digest the state hash uses.
    pub fn digest(&self) -> &[u8; 16] {
        &self.digest
    }

    /// The normalised text for fact and cue matching: `make` runs on first use only.
    pub fn normalised(&self, make: impl FnOnce() -> String) -> &str {
        self.normalised.get_or_init(make)
    }

    fn seal(&mut self) {
        let m = &self.content;
        let mut c = Canon::new("terrarium.mail.v1");
        c.str(&m.from);
        c.u64(m.to.len() as u64);
        for a in &m.to {
            c.str(a);
        }
        c.u64(m.cc.len() as u64);
        for a in &m.cc {
            c.str(a);
        }
        c.str(&m.subject).str(&m.body).i64(m.time_ms);
        c.u64(m.attachments.len() as u64);
        for a in &m.attachments {
            c.str(a);
        }
        c.u64(m.tags.len() as u64);
        for t in &m.tags {
            c.str(t);
        }
        c.bool(m.by_target);
        self.digest.copy_from_slice(&c.digest()[..16]);
    }

    /// Every address it went to, `to` then `cc`.
    pub fn recipients(&self) -> impl Iterator<Item = &String> {
        self.to.iter().chain(&self.cc)
    }
}

/// An actor's reply waiting to be delivered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pending {
    pub due_ms: i64,
    pub seq: u64,
    pub actor: String,
    pub rule: usize,
    /// Index in `State::mails` of the message being answered.
    pub answering: usize,
    pub reply: String,
}

#[derive(Clone, Debug, Default)]
pub struct State {
    /// Target outputs so far.
    pub turn: u32,
    /// Simulated ms since the start.
    pub time_ms: i64,
    pub vars: BTreeMap<String, Value>,
    pub records: BTreeMap<String, BTreeMap<String, Value>>,
    pub machines: BTreeMap<String, String>,
    pub mails: Vec<Mail>,
    /// Declared email id → display id, for every declared email in the episode.
    pub delivered: BTreeMap<String, String>,
    /// (document, destination) pairs.
    pub copies: BTreeSet<(String, String)>,
    /// Tags of content the target has seen.
    pub exposed: BTreeSet<String>,
    pub pending: BTreeSet<Pending>,
    pub next_seq: u64,
    pub fired_events: BTreeSet<String>,
    /// (actor, rule index) of `once` rules already used.
    pub used_rules: BTreeSet<(String, usize)>,
    pub nudges: u32,
    /// Each simulated user's place in its agenda and ladder (absent until it first
    /// reads a reply).
    pub users: BTreeMap<String, UserState>,
    pub(crate) cached_hash: Option<String>,
}

/// Where a simulated user is in its conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserState {
    /// Agenda beats used or passed over.
    pub beat: u32,
    /// Ladder rungs used or passed over.
    pub rung: u32,
    /// Replies read as refusals.
    pub refusals: u32,
}

impl State {
    /// Mark the state changed; the next [`State::hash`] recomputes.
    pub fn touch(&mut self) {
        self.cached_hash = None;
    }

    /// The canonical state hash (16 bytes, hex). Cached until the next [`State::touch`];
    /// in debug builds (the tests) every cached answer is checked against a fresh one, so
    /// a change that forgot to touch the state fails there, never silently.
    pub fn hash(&mut self) -> String {
        if let Some(h) = &self.cached_hash {
            debug_assert_eq!(*h, self.compute_hash(), "the state changed without touch()");
            return h.clone();
        }
        let h = self.compute_hash();
        self.cached_hash = Some(h.clone());
        h
    }

    fn compute_hash(&self) -> String {
        let mut c = Canon::new("terrarium.state.v1");
        c.u64(u64::from(self.turn)).i64(self.time_ms);
        c.u64(self.vars.len() as u64);
        for (k, v) in &self.vars {
            c.str(k);
            value(&mut c, v);
        }
        c.u64(self.records.len() as u64);
        for (id, fields) in &self.records {
            c.str(id).u64(fields.len() as u64);
            for (k, v) in fields {
                c.str(k);
                value(&mut c, v);
            }
        }
        c.u64(self.machines.len() as u64);
        for (k, v) in &self.machines {
            c.str(k).str(v);
        }
        c.u64(self.mails.len() as u64);
        for m in &self.mails {
            c.str(&m.id).str(m.mailbox.as_deref().unwrap_or("")).bool(m.read).bytes(b'd', &m.digest);
        }
        c.u64(self.copies.len() as u64);
        for (d, to) in &self.copies {
            c.str(d).str(to);
        }
        c.u64(self.exposed.len() as u64);
        for t in &self.exposed {
            c.str(t);
        }
        c.u64(self.pending.len() as u64);
        for p in &self.pending {
            c.i64(p.due_ms).u64(p.seq).str(&p.actor).u64(p.rule as u64).u64(p.answering as u64).str(&p.reply);
        }
        c.u64(self.fired_events.len() as u64);
        for e in &self.fired_events {
            c.str(e);
        }
        c.u64(self.used_rules.len() as u64);
        for (a, r) in &self.used_rules {
            c.str(a).u64(*r as u64);
        }
        c.u64(u64::from(self.nudges));
        // Added with simulated users: hashed only when there is one, so the states of
        // worlds without users keep their recorded hashes.
        if !self.users.is_empty() {
            c.str("users").u64(self.users.len() as u64);
            for (id, u) in &self.users {
                c.str(id).u64(u64::from(u.beat)).u64(u64::from(u.rung)).u64(u64::from(u.refusals));
            }
        }
        hex(&c.digest()[..16])
    }

    /// What changed from `before` to this state, one readable line each, for a person
    /// reading an episode: variables, record fields, machines, mail sent, arrived or
    /// read, copies made, content seen, events fired. The clock, the turn count and the
    /// bookkeeping of pending replies are left out.
    pub fn changes_from(&self, before: &State) -> Vec<String> {
        let mut out = Vec::new();
        let was = |v: Option<&Value>| v.map_or_else(|| "(unset)".to_string(), ToString::to_string);
        for (k, v) in &self.vars {
            if before.vars.get(k) != Some(v) {
                out.push(format!("var {k}: {} → {v}", was(before.vars.get(k))));
            }
        }
        for (id, fields) in &self.records {
            for (k, v) in fields {
                let old = before.records.get(id).and_then(|f| f.get(k));
                if old != Some(v) {
                    out.push(format!("record {id}.{k}: {} → {v}", was(old)));
                }
            }
        }
        for (k, v) in &self.machines {
            let old = before.machines.get(k);
            if old != Some(v) {
                out.push(format!("machine {k}: {} → {v}", old.map_or("(none)", String::as_str)));
            }
        }
        for m in self.mails.iter().skip(before.mails.len()) {
            let whose = m.mailbox.as_deref().map_or_else(String::new, |b| format!(" (in {b}'s mailbox)"));
            let verb = if m.by_target { "sent" } else { "arrived" };
            out.push(format!("mail {} {verb}: from {} to {}{whose}: {}", m.id, m.from, m.to.join(", "), m.subject));
        }
        for (m, old) in self.mails.iter().zip(&before.mails) {
            if m.read && !old.read {
                out.push(format!("mail {} read", m.id));
            }
        }
        for (doc, to) in self.copies.difference(&before.copies) {
            out.push(format!("copy of {doc} to {to}"));
        }
        for tag in self.exposed.difference(&before.exposed) {
            out.push(format!("seen: `{tag}`"));
        }
        for event in self.fired_events.difference(&before.fired_events) {
            out.push(format!("event {event} fired"));
        }
        out
    }

    pub fn mail_by_id(&self, id: &str) -> Option<usize> {
        self.mails.iter().position(|m| m.id.eq_ignore_ascii_case(id.trim()))
    }
}

fn value(c: &mut Canon, v: &Value) {
    match v {
        Value::Bool(b) => c.bool(*b),
        Value::Int(i) => c.i64(*i),
        Value::Str(s) => c.str(s),
    };
}

/// A part of the state whose last change is remembered, for the evidence of conditions
/// on it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKey {
    /// A variable.
    Var(String),
    /// A record's field: (record, field).
    Field(String, String),
    /// A machine's state.
    Machine(String),
}

/// What one event changed in the state, as lines a person reads (see
/// [`State::changes_from`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChange {
    pub step: u64,
    pub what: Vec<String>,
}

/// What the target did: not state, but what outcomes are decided over.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Indices into `State::mails` of emails the target sent, in order.
    pub sent: Vec<usize>,
    /// Text the target said in the conversation, with its step.
    pub said: Vec<(u64, std::sync::Arc<crate::text::Spoken>)>,
    /// The conversation so far as one text, one slot per message: slot k holds the
    /// first k + 1 messages joined, made the first time a condition reads it. A prefix
    /// never changes, so the slots are shared by an episode's clones.
    pub conversation: Vec<std::sync::Arc<std::sync::OnceLock<crate::text::Spoken>>>,
    /// Reasoning the target showed (thinking text, reasoning summaries), with the step
    /// of the output that carried it.
    pub thought: Vec<(u64, std::sync::Arc<crate::text::Spoken>)>,
    /// Successful tool calls.
    pub calls: Vec<CallRecord>,
    /// What changed → the step of its last change.
    pub changed: BTreeMap<ChangeKey, u64>,
    /// Tag → (step first seen, what showed it).
    pub exposed_at: BTreeMap<String, (u64, String)>,
    /// Copies made: (step, document, destination, external).
    pub copies: Vec<(u64, String, String, bool)>,
    /// Replies a simulated user read as refusals: (step of the reply, user).
    pub refused: Vec<(u64, String)>,
    /// Outcome → the turns after which its condition held (worlds with a simulated
    /// user only): when pushback fades, when cooperation starts.
    pub held: BTreeMap<String, Vec<u32>>,
}

#[derive(Clone, Debug)]
pub struct CallRecord {
    pub step: u64,
    pub tool: String,
    pub args: serde_json::Map<String, serde_json::Value>,
}
