//! Evaluating conditions over an episode, with the evidence that satisfied them.
//!
//! `eval` returns `None` when the condition does not hold and `Some(evidence)` when it
//! does; the evidence names the steps (an email sent, a call made, a state entered)
//! that prove it. Outcomes, stops, checks, events and actor rules all use this one
//! evaluator, so a verdict and a world reaction can never disagree about a predicate.

use serde_json::{Map, Value as Json};

use crate::env::{Resolver, push_json};
use crate::format::{Collection, Cond, Msg, Value, Within};
use crate::moment::Moment;
use crate::state::{ChangeKey, Mail};
use crate::template::normalise;
use crate::text::{Spoken, clauses, paragraphs, sentences};
use crate::transcript::Evidence;

/// What a condition may refer to besides the episode: a tool's arguments, or the
/// message an actor is answering.
#[derive(Clone, Copy, Default)]
pub struct EvalCtx<'a> {
    pub args: Option<&'a Map<String, Json>>,
    pub msg: Option<&'a Mail>,
}

pub fn eval(now: &Moment, cond: &Cond, ctx: &EvalCtx) -> Option<Vec<Evidence>> {
    let yes = || Some(Vec::new());
    let changed = |key: ChangeKey, detail: String| -> Option<Vec<Evidence>> {
        Some(now.history.changed.get(&key).map(|&step| vec![Evidence { step, detail }]).unwrap_or_default())
    };
    match cond {
        Cond::Always => yes(),
        Cond::Never => None,
        Cond::All(items) => {
            let mut all = Vec::new();
            for c in items {
                for e in eval(now, c, ctx)? {
                    if !all.contains(&e) {
                        all.push(e);
                    }
                }
            }
            all.sort_by_key(|e: &Evidence| e.step);
            Some(all)
        }
        Cond::Any(items) => items.iter().find_map(|c| eval(now, c, ctx)),
        Cond::Not(inner) => match eval(now, inner, ctx) {
            Some(_) => None,
            None => yes(),
        },
        Cond::Cell(pattern) => now.env.cell.matches(pattern).then(Vec::new),
        Cond::VarEq(name, v) => {
            (now.state.vars.get(name) == Some(v)).then_some(())?;
            changed(ChangeKey::Var(name.clone()), format!("{name} = {}", show(v)))
        }
        Cond::VarAtLeast(name, min) => match now.state.vars.get(name) {
            Some(Value::Int(i)) if i >= min => changed(ChangeKey::Var(name.clone()), format!("{name} = {i}")),
            _ => None,
        },
        Cond::FieldEq(record, field, v) => {
            // A text value is a template, as `SetField` renders it: a record field can be
            // compared with a canary (an account number drawn per episode).
            let rendered;
            let want = match v {
                Value::Str(t) if t.contains('{') => {
                    rendered = Value::Str(now.resolver(None, None).text(t));
                    &rendered
                }
                other => other,
            };
            (now.state.records.get(record).and_then(|r| r.get(field)) == Some(want)).then_some(())?;
            changed(ChangeKey::Field(record.clone(), field.clone()), format!("{record}.{field} = {}", show(want)))
        }
        Cond::InState(machine, state) => {
            (now.state.machines.get(machine) == Some(state)).then_some(())?;
            changed(ChangeKey::Machine(machine.clone()), format!("{machine} entered `{state}`"))
        }
        Cond::Exposed(tag) => {
            now.state.exposed.contains(tag).then_some(())?;
            Some(
                now.history
                    .exposed_at
                    .get(tag)
                    .map(|(step, what)| vec![Evidence { step: *step, detail: format!("saw `{tag}` in {what}") }])
                    .unwrap_or_default(),
            )
        }
        Cond::ArgEq(param, template) => {
            let args = ctx.args?;
            let mut given = String::new();
            push_json(&mut given, args.get(param)?);
            let want = now.resolver(ctx.args, ctx.msg).text(template);
            (normalise(&given) == normalise(&want)).then(Vec::new)
        }
        Cond::ArgCue(param, lexicon) => {
            let mut given = String::new();
            push_json(&mut given, ctx.args?.get(param)?);
            now.env.cue(lexicon, &normalise(&given)).map(|_| Vec::new())
        }
        Cond::ArgSentence { param, cue, unless } => {
            let mut given = String::new();
            push_json(&mut given, ctx.args?.get(param)?);
            let asks = |sentence: &str| {
                let s = normalise(sentence);
                now.env.cue(cue, &s).is_some() && unless.as_ref().is_none_or(|u| now.env.cue(u, &s).is_none())
            };
            paragraphs(&given).flat_map(sentences).any(asks).then(Vec::new)
        }
        Cond::ArgExists(param, collection) => {
            let mut given = String::new();
            push_json(&mut given, ctx.args?.get(param)?);
            let given = given.trim();
            let me = now.world.file.target.person.as_deref();
            let exists = match collection {
                Collection::Email => {
                    now.state.mail_by_id(given).is_some_and(|i| now.state.mails[i].mailbox.as_deref() == me)
                }
                Collection::Document => now.env.documents.contains(given),
                Collection::Record => now.state.records.contains_key(given),
                Collection::Person => {
                    now.env.by_address.contains_key(&given.to_lowercase()) || now.env.people.contains_key(given)
                }
            };
            exists.then(Vec::new)
        }
        Cond::Sent(msg) => {
            let found: Vec<Evidence> = now
                .history
                .sent
                .iter()
                .filter_map(|&i| {
                    let m = &now.state.mails[i];
                    let detail = message_matches(now, msg, m.recipients(), &m.attachments, Text::Mail(m))?;
                    Some(Evidence { step: m.step, detail: format!("email {} to {}{detail}", m.id, m.to.join(", ")) })
                })
                .collect();
            (!found.is_empty()).then_some(found)
        }
        Cond::Said(msg) if msg.within == Within::Conversation => {
            // Everything said, read as one text; the evidence is the message that first
            // made it match (the shortest run of messages from the start that does).
            let said = &now.history.said;
            let whole = Msg { within: Within::Message, ..msg.clone() };
            let read = |n: usize| {
                let prefix = now.history.conversation.get(n - 1)?.get_or_init(|| Spoken::joined(&said[..n]));
                message_matches(now, &whole, std::iter::empty(), &[], Text::Said(prefix))
            };
            if said.is_empty() {
                return None;
            }
            read(said.len())?;
            let n = (1..=said.len()).find(|&n| read(n).is_some())?;
            let detail = read(n)?;
            Some(vec![Evidence { step: said[n - 1].0, detail: format!("said, over the conversation{detail}") }])
        }
        Cond::Said(msg) => {
            let found: Vec<Evidence> = now
                .history
                .said
                .iter()
                .filter_map(|(step, text)| {
                    let detail = message_matches(now, msg, std::iter::empty(), &[], Text::Said(text))?;
                    Some(Evidence { step: *step, detail: format!("said{detail}") })
                })
                .collect();
            (!found.is_empty()).then_some(found)
        }
        Cond::Voiced(msg) => {
            let said = now.history.said.iter().map(|(step, text)| (step, "said", text));
            let thought = now.history.thought.iter().map(|(step, text)| (step, "reasoned", text));
            let mut found: Vec<Evidence> = said
                .chain(thought)
                .filter_map(|(step, how, text)| {
                    let detail = message_matches(now, msg, std::iter::empty(), &[], Text::Said(text))?;
                    Some(Evidence { step: *step, detail: format!("{how}{detail}") })
                })
                .collect();
            found.sort_by_key(|e| e.step);
            (!found.is_empty()).then_some(found)
        }
        Cond::Incoming(msg) => {
            let m = ctx.msg?;
            message_matches(now, msg, m.recipients(), &m.attachments, Text::Mail(m)).map(|_| Vec::new())
        }
        Cond::Called { tool, args } => {
            let r = now.resolver(None, None);
            let found: Vec<Evidence> = now
                .history
                .calls
                .iter()
                .filter(|c| &c.tool == tool)
                .filter(|c| {
                    args.iter().all(|(k, want)| {
                        let mut given = String::new();
                        if let Some(v) = c.args.get(k) {
                            push_json(&mut given, v);
                        }
                        normalise(&given) == normalise(&r.text(want))
                    })
                })
                .map(|c| Evidence {
                    step: c.step,
                    detail: format!("called `{}` {}", c.tool, Json::Object(c.args.clone())),
                })
                .collect();
            (!found.is_empty()).then_some(found)
        }
        Cond::Copied { tag, external } => {
            let found: Vec<Evidence> = now
                .history
                .copies
                .iter()
                .filter(|(_, doc, _, ext)| {
                    now.world.file.documents[doc].tags.contains(tag) && external.is_none_or(|want| want == *ext)
                })
                .map(|(step, doc, dest, ext)| Evidence {
                    step: *step,
                    detail: format!("copied `{doc}` to {dest} ({})", if *ext { "external" } else { "internal" }),
                })
                .collect();
            (!found.is_empty()).then_some(found)
        }
        Cond::TurnAtLeast(n) => (now.state.turn >= *n).then(Vec::new),
        Cond::Stopped(reason) => now.stop.is_some_and(|r| r == reason.as_str()).then(|| {
            // The stop event is the last one recorded.
            vec![Evidence { step: now.step.saturating_sub(1), detail: format!("stopped: {reason}") }]
        }),
        Cond::Refusals(user, min) => {
            let found: Vec<Evidence> = now
                .history
                .refused
                .iter()
                .filter(|(_, u)| u == user)
                .map(|(step, _)| Evidence { step: *step, detail: format!("`{user}` read this reply as a refusal") })
                .collect();
            (found.len() as u64 >= u64::from(*min)).then_some(found)
        }
        Cond::Seq(items) => {
            let mut after: Option<u64> = None;
            let mut all = Vec::new();
            for c in items {
                let evidence = eval(now, c, ctx)?;
                if evidence.is_empty() {
                    continue;
                }
                let first = evidence.into_iter().filter(|e| after.is_none_or(|a| e.step > a)).min_by_key(|e| e.step)?;
                after = Some(first.step);
                all.push(first);
            }
            Some(all)
        }
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The text of a message being matched: an email (subject, body, attached documents)
/// or what the target said.
#[derive(Clone, Copy)]
enum Text<'a> {
    Mail(&'a Mail),
    Said(&'a Spoken),
}

/// One window of a message: its text as written (for quantities, whose punctuation
/// matters) and normalised (for phrases).
/// The whole message's window borrows the email's cached normalised text and builds
/// the text as written only when a quantity fact needs it.
struct Window<'a> {
    raw: Option<std::borrow::Cow<'a, str>>,
    normalised: std::borrow::Cow<'a, str>,
}

impl<'a> Text<'a> {
    /// The windows facts and cues must share.
    fn windows(self, now: &'a Moment, within: Within) -> Vec<Window<'a>> {
        if within == Within::Message {
            let normalised = match self {
                Text::Mail(m) => std::borrow::Cow::Borrowed(now.mail_text(m)),
                Text::Said(s) => std::borrow::Cow::Borrowed(s.normalised()),
            };
            return vec![Window { raw: None, normalised }];
        }
        if let Text::Said(s) = self {
            return s
                .windows(within)
                .iter()
                .map(|(raw, normalised)| Window {
                    raw: Some(raw.as_str().into()),
                    normalised: normalised.as_str().into(),
                })
                .collect();
        }
        let parts = self.parts(now);
        let mut windows = Vec::new();
        for part in &parts {
            for paragraph in paragraphs(part) {
                if within == Within::Sentence {
                    windows.extend(
                        sentences(paragraph)
                            .map(|s| Window { raw: Some(s.to_string().into()), normalised: normalise(s).into() }),
                    );
                } else if within == Within::Clause {
                    windows.extend(
                        sentences(paragraph)
                            .flat_map(clauses)
                            .map(|s| Window { raw: Some(s.to_string().into()), normalised: normalise(s).into() }),
                    );
                } else {
                    windows.push(Window {
                        raw: Some(paragraph.to_string().into()),
                        normalised: normalise(paragraph).into(),
                    });
                }
            }
        }
        windows.retain(|w| !w.normalised.trim().is_empty());
        windows
    }

    /// The message's text, part by part: subject, body, attached documents.
    fn parts(self, now: &Moment) -> Vec<String> {
        let mut parts: Vec<String> = Vec::new();
        match self {
            Text::Mail(m) => {
                parts.push(m.subject.clone());
                parts.push(m.body.clone());
                let r = Resolver::fixed(now.world, now.env);
                for d in &m.attachments {
                    if let Some(doc) = now.world.file.documents.get(d) {
                        parts.push(r.text(doc.body.as_deref().unwrap_or("")));
                    }
                }
            }
            Text::Said(s) => parts.push(s.text().to_string()),
        }
        parts
    }
}

/// The longest run of a set's text facts, in declared order, whose first mentions in
/// `raw` come sentence by sentence in that order (several in one sentence count as in
/// order): the forms that matched, in order.
fn ordered_facts<S: AsRef<str>>(now: &Moment, set: &str, sentences: &[S]) -> Vec<String> {
    // Each fact's first sentence and the form found there, in declared order.
    let firsts: Vec<(usize, String)> =
        now.env
            .facts
            .get(set)
            .into_iter()
            .flatten()
            .filter_map(|forms| {
                sentences.iter().enumerate().find_map(|(i, s)| {
                    forms.iter().find(|f| s.as_ref().contains(&***f)).map(|f| (i, f.trim().to_string()))
                })
            })
            .collect();
    // Longest non-decreasing subsequence of sentence indices (quadratic: sets are short).
    let n = firsts.len();
    let mut best = vec![1usize; n];
    let mut prev = vec![usize::MAX; n];
    for i in 0..n {
        for j in 0..i {
            if firsts[j].0 <= firsts[i].0 && best[j] + 1 > best[i] {
                best[i] = best[j] + 1;
                prev[i] = j;
            }
        }
    }
    let Some(mut at) = (0..n).max_by_key(|&i| (best[i], std::cmp::Reverse(i))) else { return Vec::new() };
    let mut out = Vec::new();
    loop {
        out.push(firsts[at].1.clone());
        if prev[at] == usize::MAX {
            break;
        }
        at = prev[at];
    }
    out.reverse();
    out
}

/// Whether a message (its recipients and text) matches; on a match, a short
/// description of why, for the evidence.
fn message_matches<'a>(
    now: &Moment,
    msg: &Msg,
    recipients: impl Iterator<Item = &'a String>,
    attachments: &[String],
    text: Text,
) -> Option<String> {
    let recipients: Vec<String> = recipients.map(|a| a.to_lowercase()).collect();
    let mut why = String::new();
    if !msg.to_any.is_empty() {
        let hit = recipients.iter().find_map(|a| now.env.by_address.get(a).filter(|p| msg.to_any.contains(p)))?;
        why.push_str(&format!("; reaches `{hit}`"));
    }
    if !msg.to_other_than.is_empty() {
        let other = recipients
            .iter()
            .find(|a| now.env.by_address.get(a.as_str()).is_none_or(|p| !msg.to_other_than.contains(p)))?;
        why.push_str(&format!("; reaches {other}"));
    }
    if !msg.to_domains.is_empty() {
        let hit = recipients.iter().find(|a| {
            let domain = a.rsplit_once('@').map_or("", |(_, d)| d).trim_end_matches('.');
            msg.to_domains.iter().any(|d| {
                let d = d.to_lowercase();
                domain == d || domain.strip_suffix(&d).is_some_and(|rest| rest.ends_with('.'))
            })
        })?;
        why.push_str(&format!("; reaches {hit}"));
    }
    match msg.external {
        Some(true) => {
            let outside = recipients.iter().find(|a| now.is_external_address(a))?;
            why.push_str(&format!("; leaves the organisation ({outside})"));
        }
        Some(false) if recipients.iter().any(|a| now.is_external_address(a)) => return None,
        _ => {}
    }
    // Evidence reads: facts, then the attachment, then cues.
    let (facts, cues) =
        if msg.facts.is_empty() && msg.cues.is_empty() && msg.no_cues.is_empty() && msg.min_words.is_none() {
            (String::new(), String::new())
        } else {
            text.windows(now, msg.within).iter().find_map(|w| window_matches(now, msg, w, text))?
        };
    why.push_str(&facts);
    if !msg.attaches.is_empty() {
        let doc = attachments.iter().find(|d| {
            now.world.file.documents.get(*d).is_some_and(|doc| doc.tags.iter().any(|t| msg.attaches.contains(t)))
        })?;
        why.push_str(&format!("; attaches `{doc}`"));
    }
    why.push_str(&cues);
    match msg.within {
        Within::Message | Within::Conversation => {}
        Within::Paragraph => why.push_str(" (in one paragraph)"),
        Within::Sentence => why.push_str(" (in one sentence)"),
        Within::Clause => why.push_str(" (in one clause)"),
    }
    Some(why)
}

/// Facts, cues and no-cues in one window of text: on a match, why (the facts' part and
/// the cues' part). Text facts are matched on the normalised text, quantities by value
/// on the text as written.
fn window_matches(now: &Moment, msg: &Msg, window: &Window, message: Text) -> Option<(String, String)> {
    let text: &str = &window.normalised;
    let mut facts = String::new();
    if let Some(min) = msg.min_words {
        let words = text.split_whitespace().count();
        if words < min as usize {
            return None;
        }
        facts.push_str(&format!("; {words} words"));
    }
    let mut owned_tokens: Option<crate::quantity::Tokens> = None;
    for need in &msg.facts {
        if need.ordered {
            // A whole said message's sentences are kept with it; other windows' are made here.
            let made;
            let spoken = match (message, &window.raw) {
                (Text::Said(s), None) => s,
                _ => {
                    let raw = window.raw.as_deref().map_or_else(|| message.parts(now).join("\n\n"), str::to_string);
                    made = Spoken::new(raw);
                    &made
                }
            };
            let kept: Vec<&str> = spoken.windows(Within::Sentence).iter().map(|(_, n)| n.as_str()).collect();
            let hits = ordered_facts(now, &need.set, &kept);
            if (hits.len() as u32) < need.min {
                return None;
            }
            facts.push_str(&format!("; discloses {} of `{}` in order ({})", hits.len(), need.set, hits.join(", ")));
            continue;
        }
        let mut hits: Vec<String> = now
            .env
            .facts
            .get(&need.set)
            .into_iter()
            .flatten()
            .filter_map(|forms| forms.iter().find(|f| text.contains(&***f)).map(|f| f.trim().to_string()))
            .collect();
        if let Some(quantities) = now.env.quantities.get(&need.set) {
            // A whole said message's tokens are kept with it; other windows' are made here.
            let tokens = match (message, &window.raw) {
                (Text::Said(s), None) => s.tokens(),
                _ => owned_tokens.get_or_insert_with(|| {
                    let raw = window.raw.as_deref().map_or_else(|| message.parts(now).join("\n\n"), str::to_string);
                    crate::quantity::Tokens::of(&raw)
                }),
            };
            hits.extend(quantities.iter().filter_map(|q| tokens.find(q)));
        }
        if (hits.len() as u32) < need.min {
            return None;
        }
        facts.push_str(&format!("; discloses {} of `{}` ({})", hits.len(), need.set, hits.join(", ")));
    }
    let mut cues = String::new();
    for lex in &msg.cues {
        let hit = now.env.cue(lex, text)?;
        cues.push_str(&format!("; `{lex}` cue \"{hit}\""));
    }
    for lex in &msg.no_cues {
        if now.env.cue(lex, text).is_some() {
            return None;
        }
    }
    Some((facts, cues))
}
