//! Argument domains: for each tool parameter, the values worth trying, drawn from the
//! world itself (ids, addresses, texts that satisfy or just miss each condition, lexicon
//! phrases) and never from its reference policies.

use super::*;

/// Where a parameter's value goes, which decides what values to try.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Use {
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

pub(super) struct Domains<'a, 'w> {
    world: &'w World,
    ep: &'a Episode<'w>,
    texts: Vec<String>,
}

impl<'a, 'w> Domains<'a, 'w> {
    pub(super) fn new(world: &'w World, ep: &'a Episode<'w>) -> Self {
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
        // What a simulated user reads as a refusal, and what its rules answer.
        for u in w.users.values() {
            collect_msgs(&u.refusal, &mut msgs);
            for r in &u.rules {
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
    pub(super) fn text_for(&self, m: &Msg) -> Option<String> {
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
        // A window that must be long enough is padded with a plain word.
        let words: usize = parts.iter().map(|p| p.split_whitespace().count()).sum();
        let short = (m.min_words.unwrap_or(0) as usize).saturating_sub(words);
        if short > 0 {
            parts.push(vec!["well"; short].join(" "));
        }
        if parts.is_empty() {
            return None;
        }
        // Within a sentence the parts must share one.
        let one_sentence = matches!(m.within, crate::format::Within::Sentence | crate::format::Within::Clause);
        let text = parts.join(if one_sentence { ", " } else { ". " });
        let norm = crate::template::normalise(&text);
        m.no_cues.iter().all(|n| env.cue(n, &norm).is_none()).then_some(text)
    }

    pub(super) fn uses(&self, tool: &str) -> BTreeMap<String, BTreeSet<Use>> {
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
            Effect::SearchEmails(s) | Effect::SearchPeople(s) => note(s, Use::Text),
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
        // Every branch's condition, nested ones included (a tool that answers each id
        // in its own branch: `When(ArgEq(id, a), …, else: [When(ArgEq(id, b), …)])`).
        for e in &t.effects {
            e.visit(&mut |e| {
                if let Effect::When { cond, .. } = e {
                    collect_arg_conds(cond, &mut exact);
                }
            });
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

    pub(super) fn values(&self, kind: &ParamType, uses: Option<&BTreeSet<Use>>) -> Vec<Json> {
        let ep = self.ep;
        let w = &self.world.file;
        let r = ep.moment().resolver(None, None);
        let mut out: Vec<Json> = Vec::new();
        fn add(out: &mut Vec<Json>, v: Json) {
            if !out.contains(&v) {
                out.push(v);
            }
        }
        // A closed type is tried in full: every value its schema allows.
        match kind {
            ParamType::Enum(values) => {
                values.iter().for_each(|v| add(&mut out, Json::String(v.clone())));
                return out;
            }
            ParamType::Boolean => return vec![Json::Bool(true), Json::Bool(false)],
            _ => {}
        }
        let uses = uses.cloned().unwrap_or_default();
        for u in &uses {
            match u {
                Use::EmailId => {
                    // One email per (tags, sender), where the sender can matter: an
                    // actor who answers a reply, or a person a condition names. Mail from
                    // anyone else, untagged, is alike to the world (a week of office
                    // mail is one choice, not thirty).
                    let me = w.target.person.as_deref();
                    let named = significant_people(w);
                    let mut kinds = BTreeSet::new();
                    for m in ep.state.mails.iter().filter(|m| m.mailbox.as_deref() == me) {
                        let sender =
                            ep.env.by_address.get(&m.from.to_lowercase()).filter(|id| named.contains(*id)).cloned();
                        if kinds.insert((m.tags.clone(), sender)) {
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
                    for loc in &ep.env.internal_locations {
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
        // Each value as the JSON type the tool's schema asks for, or the tool would
        // reject the call before any effect ran.
        let mut out: Vec<Json> = out.into_iter().filter_map(|v| typed(kind, v)).fold(Vec::new(), |mut acc, v| {
            add(&mut acc, v);
            acc
        });
        if out.is_empty() {
            add(&mut out, if matches!(kind, ParamType::Integer) { Json::from(1) } else { Json::String("x".into()) });
        }
        if matches!(kind, ParamType::StringList) {
            out = out.into_iter().map(|v| Json::Array(vec![v])).collect();
        }
        out
    }

    /// Every action to try: each offered tool with each combination of its parameters'
    /// values (text parameters share one slot: the last carries the text), and saying
    /// each synthesised text.
    pub(super) fn actions(&self) -> Vec<Action> {
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
        let chat = matches!(w.turns.on_text_only, OnTextOnly::Actor(_) | OnTextOnly::User(_));
        let said = w.outcomes.values().any(|o| mentions_said(&o.when));
        if chat || said {
            actions.extend(self.texts.iter().map(|t| Action::Say(t.clone())));
        }
        actions
    }
}

/// `v` as a value of a parameter of type `kind` (closed types are listed in full by
/// [`Domains::values`]); `None` when it has no such reading, such as a word for an
/// integer.
fn typed(kind: &ParamType, v: Json) -> Option<Json> {
    match (kind, v) {
        (ParamType::Integer, Json::String(s)) => s.trim().parse::<i64>().ok().map(Json::from),
        (ParamType::Integer, n @ Json::Number(_)) => Some(n),
        (ParamType::Integer, _) => None,
        (ParamType::String | ParamType::StringList, Json::String(s)) => Some(Json::String(s)),
        (ParamType::String | ParamType::StringList, Json::Bool(b)) => Some(Json::String(b.to_string())),
        (ParamType::String | ParamType::StringList, Json::Number(n)) => Some(Json::String(n.to_string())),
        (_, v) => Some(v),
    }
}

pub(super) fn me_of(w: &crate::format::WorldFile) -> Option<&str> {
    w.target.person.as_deref()
}

pub(super) fn collect_msgs<'c>(cond: &'c Cond, out: &mut Vec<&'c Msg>) {
    cond.visit(&mut |c| {
        if let Cond::Sent(m) | Cond::Said(m) | Cond::Voiced(m) | Cond::Incoming(m) = c {
            out.push(m);
        }
    });
}

pub(super) fn mentions_said(cond: &Cond) -> bool {
    cond.any(&|c| matches!(c, Cond::Said(_) | Cond::Voiced(_)))
}

pub(super) fn collect_arg_conds(cond: &Cond, out: &mut Vec<(String, Use)>) {
    cond.visit(&mut |c| match c {
        Cond::ArgEq(p, t) => out.push((p.clone(), Use::Exact(t.clone()))),
        Cond::ArgCue(p, lexicon) | Cond::ArgSentence { param: p, cue: lexicon, .. } => {
            out.push((p.clone(), Use::Cue(lexicon.clone())))
        }
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

pub(super) fn collect_called(cond: &Cond, tool: &str, out: &mut Vec<(String, String)>) {
    cond.visit(&mut |c| {
        if let Cond::Called { tool: t, args } = c
            && t == tool
        {
            out.extend(args.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    });
}

/// Values that conditions anywhere compare `record.field` with.
pub(super) fn collect_field_values(w: &crate::format::WorldFile, record: &str, field: &str, out: &mut Vec<Value>) {
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

/// People whose mail the world can tell apart: actors, and people a condition names in
/// a message's recipients.
fn significant_people(w: &crate::format::WorldFile) -> BTreeSet<String> {
    let mut named: BTreeSet<String> = w.actors.keys().cloned().collect();
    w.visit_logic(
        &mut |c| {
            if let Cond::Sent(m) | Cond::Said(m) | Cond::Voiced(m) | Cond::Incoming(m) = c {
                named.extend(m.to_any.iter().cloned());
            }
        },
        &mut |_| {},
    );
    named
}
