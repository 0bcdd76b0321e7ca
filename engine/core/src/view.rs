//! What the target sees: tool results for listing and reading, tool schemas, and the
//! initial view (prompt, mailbox, documents, tools) that `show` prints and that
//! loading compares across cells to catch silent fallbacks.

use std::fmt::Write as _;

use serde_json::{Value as Json, json};

use crate::cond::{self, EvalCtx};
use crate::env::Resolver;
use crate::format::{AfterLadder, Cond, ParamType, Tool, Value};
use crate::moment::Moment;
use crate::state::Mail;
use crate::template::normalise;
use crate::transcript::Event;
use crate::world::{World, format_time};

fn when(now: &Moment, m: &Mail) -> String {
    format_time(now.world.start_ms + m.time_ms)
}

fn sender(now: &Moment, address: &str) -> String {
    match now.env.by_address.get(&address.to_lowercase()) {
        Some(p) => format!("{} <{address}>", now.env.people[p].name),
        None => address.to_string(),
    }
}

fn my_mail<'a>(now: &'a Moment) -> impl Iterator<Item = &'a Mail> {
    let me = now.world.file.target.person.as_deref();
    now.state.mails.iter().filter(move |m| m.mailbox.as_deref() == me)
}

fn summary_line(now: &Moment, m: &Mail) -> String {
    let dir = if m.by_target { format!("To: {}", m.to.join(", ")) } else { format!("From: {}", sender(now, &m.from)) };
    let unread = if m.read { "" } else { " (unread)" };
    format!("[{}] {} | {dir} | Subject: {}{unread}", m.id, when(now, m), m.subject)
}

/// The target's mailbox, oldest first.
pub fn inbox(now: &Moment) -> String {
    let lines: Vec<String> = my_mail(now).map(|m| summary_line(now, m)).collect();
    if lines.is_empty() {
        return "The mailbox is empty.".into();
    }
    format!("Mailbox ({} messages):\n{}", lines.len(), lines.join("\n"))
}

/// One email in full.
pub fn mail(now: &Moment, m: &Mail) -> String {
    let mut s =
        format!("ID: {}\nDate: {}\nFrom: {}\nTo: {}\n", m.id, when(now, m), sender(now, &m.from), m.to.join(", "));
    if !m.cc.is_empty() {
        let _ = writeln!(s, "Cc: {}", m.cc.join(", "));
    }
    let _ = writeln!(s, "Subject: {}", m.subject);
    if !m.attachments.is_empty() {
        let names: Vec<String> = m
            .attachments
            .iter()
            .map(|d| {
                format!("{} ({})", d, Resolver::fixed(now.world, now.env).text(&now.world.file.documents[d].title))
            })
            .collect();
        let _ = writeln!(s, "Attachments: {}", names.join(", "));
    }
    let _ = write!(s, "\n{}", m.body);
    s
}

/// Emails in the target's mailbox whose sender, subject or body contains the query.
pub fn search(now: &Moment, query: &str) -> String {
    let q = normalise(query);
    if q.trim().is_empty() {
        return inbox(now);
    }
    let q = q.trim();
    let hits: Vec<String> = my_mail(now)
        .filter(|m| normalise(&format!("{} {} {}", sender(now, &m.from), m.subject, m.body)).contains(q))
        .map(|m| summary_line(now, m))
        .collect();
    if hits.is_empty() {
        format!("No emails match \"{}\".", query.trim())
    } else {
        format!("{} emails match \"{}\":\n{}", hits.len(), query.trim(), hits.join("\n"))
    }
}

/// The directory: listed people whose name, role or address holds every word of
/// `query`, one per line (`Ada Lind, Office manager <ada@office.example>`), by name.
pub fn people(now: &Moment, query: &str) -> String {
    let words: Vec<String> = normalise(query).split_whitespace().map(str::to_string).collect();
    let mut hits: Vec<String> = now
        .world
        .file
        .people
        .iter()
        .filter(|(_, p)| p.listed)
        .filter_map(|(id, _)| now.env.people.get(id))
        .filter(|p| {
            let text = normalise(&format!("{} {} {}", p.name, p.role, p.email.replace(['@', '.'], " ")));
            words.iter().all(|w| text.split_whitespace().any(|t| t == w))
        })
        .map(|p| {
            if p.role.is_empty() {
                format!("{} <{}>", p.name, p.email)
            } else {
                format!("{}, {} <{}>", p.name, p.role, p.email)
            }
        })
        .collect();
    hits.sort();
    match (hits.is_empty(), query.trim()) {
        (true, "") => "The directory is empty.".to_string(),
        (true, q) => format!("No one in the directory matches \"{q}\"."),
        (false, "") => format!("{} people in the directory:\n{}", hits.len(), hits.join("\n")),
        (false, q) => format!("{} in the directory match \"{q}\":\n{}", hits.len(), hits.join("\n")),
    }
}

pub fn documents(now: &Moment) -> String {
    let r = Resolver::fixed(now.world, now.env);
    let lines: Vec<String> = now
        .env
        .documents
        .iter()
        .map(|id| {
            let d = &now.world.file.documents[id];
            let loc = if d.location.is_empty() { String::new() } else { format!(" | {}", r.text(&d.location)) };
            format!("[{id}] {} ({}){loc}", r.text(&d.title), r.text(&d.classification))
        })
        .collect();
    if lines.is_empty() {
        "No documents.".into()
    } else {
        format!("Documents ({}):\n{}", lines.len(), lines.join("\n"))
    }
}

pub fn document(now: &Moment, id: &str) -> String {
    let d = &now.world.file.documents[id];
    let r = Resolver::fixed(now.world, now.env);
    format!(
        "Title: {}\nClassification: {}\n\n{}",
        r.text(&d.title),
        r.text(&d.classification),
        r.text(d.body.as_deref().unwrap_or(""))
    )
}

fn fields_line(fields: &std::collections::BTreeMap<String, Value>) -> String {
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(", ")
}

pub fn records(now: &Moment, kind: &str) -> String {
    let lines: Vec<String> = now
        .world
        .file
        .records
        .iter()
        .filter(|(_, r)| r.kind == kind)
        .map(|(id, r)| {
            let title = Resolver::fixed(now.world, now.env).text(&r.title);
            format!("[{id}] {title}: {}", fields_line(&now.state.records[id]))
        })
        .collect();
    if lines.is_empty() { format!("No {kind} records.") } else { lines.join("\n") }
}

pub fn record(now: &Moment, id: &str) -> String {
    let r = &now.world.file.records[id];
    let title = Resolver::fixed(now.world, now.env).text(&r.title);
    let mut s = format!("ID: {id}\nKind: {}\nTitle: {title}\n", r.kind);
    for (k, v) in &now.state.records[id] {
        let _ = writeln!(s, "{k}: {v}");
    }
    s.trim_end().to_string()
}

/// The JSON schema of one tool, in the function-calling shape providers share.
pub fn tool_schema(name: &str, tool: &Tool) -> Json {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for p in &tool.params {
        let mut schema = match &p.kind {
            ParamType::String => json!({"type": "string"}),
            ParamType::Integer => json!({"type": "integer"}),
            ParamType::Boolean => json!({"type": "boolean"}),
            ParamType::StringList => json!({"type": "array", "items": {"type": "string"}}),
            ParamType::Enum(values) => json!({"type": "string", "enum": values}),
        };
        if !p.description.is_empty() {
            schema["description"] = Json::String(p.description.clone());
        }
        properties.insert(p.name.clone(), schema);
        if p.required {
            required.push(Json::String(p.name.clone()));
        }
    }
    json!({
        "name": name,
        "description": tool.description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        }
    })
}

/// The offered tools' schemas, in the order the target sees them.
pub fn tool_schemas(world: &World) -> Vec<Json> {
    world.file.target.tools.iter().map(|t| tool_schema(t, &world.file.tools[t])).collect()
}

/// Everything the target can see at the start: prompt, first message, tools, and the
/// content of its mailbox and documents (which it could read).
pub fn initial_view(now: &Moment) -> String {
    let mut s = String::new();
    if let Some(Event::Start { system, user, prefill, .. }) = now.events.first() {
        let _ = writeln!(s, "=== system prompt ===\n{system}\n");
        let _ = writeln!(s, "=== first user message ===\n{user}\n");
        if let Some(p) = prefill {
            let _ = writeln!(s, "=== prefill ===\n{p}\n");
        }
    }
    let _ = writeln!(s, "=== tools ===");
    for schema in tool_schemas(now.world) {
        let _ = writeln!(s, "{}", serde_json::to_string_pretty(&schema).expect("schemas serialise"));
    }
    if now.world.file.target.person.is_some() {
        let _ = writeln!(s, "\n=== mailbox ===\n{}", inbox(now));
        for m in my_mail(now) {
            let _ = writeln!(s, "\n--- {} ---\n{}", m.id, mail(now, m));
        }
    }
    if !now.env.documents.is_empty() {
        let _ = writeln!(s, "\n=== documents ===\n{}", documents(now));
        for id in &now.env.documents {
            let _ = writeln!(s, "\n--- {id} ---\n{}", document(now, id));
        }
    }
    for kind in now.world.file.records.values().map(|r| r.kind.as_str()).collect::<std::collections::BTreeSet<_>>() {
        let _ = writeln!(s, "\n=== {kind} records ===\n{}", records(now, kind));
    }
    // Not shown to the target, but what it will meet: the simulated user's script.
    for id in now.world.file.users.keys() {
        let Some(u) = user_script(now, id) else { continue };
        let _ = writeln!(
            s,
            "\n=== simulated user `{id}` (not shown to the target) ===\n{}: {}\nGoal: {}",
            u.name, u.persona, u.goal
        );
        if !u.facts.is_empty() {
            let _ = writeln!(s, "Facts:");
            for f in &u.facts {
                let _ = writeln!(s, "  - {f}");
            }
        }
        if !u.agenda.is_empty() {
            let _ = writeln!(s, "Agenda:");
            for b in &u.agenda {
                let _ = writeln!(s, "  - {b}");
            }
        }
        let _ = writeln!(s, "After a refusal:");
        for (tactic, line) in &u.ladder {
            let _ = writeln!(s, "  - {tactic}: {line}");
        }
        let _ = writeln!(
            s,
            "  - then {}",
            match u.after_ladder {
                crate::format::AfterLadder::Leave => "leaves (user_gave_up)",
                crate::format::AfterLadder::Continue => "lets it go and carries on",
            }
        );
    }
    s
}

/// A simulated user's script as it stands in an episode: who it is, what it wants, and
/// the agenda beats and ladder rungs its cell gives it (each line's first wording, as
/// an example), rendered. What a model playing the user is shown, and what `show`
/// prints.
#[derive(Clone, Debug, PartialEq)]
pub struct UserScript {
    pub id: String,
    pub name: String,
    pub persona: String,
    pub goal: String,
    /// What the person knows and has said about themselves.
    pub facts: Vec<String>,
    pub agenda: Vec<String>,
    /// (tactic, example)
    pub ladder: Vec<(&'static str, String)>,
    pub after_ladder: AfterLadder,
}

/// The script of the user `id` as it stands at this moment (agenda and ladder as
/// their `only_if` conditions stand now).
pub fn user_script(now: &Moment, id: &str) -> Option<UserScript> {
    let user = now.world.file.users.get(id)?;
    let r = now.resolver(None, None);
    let holds = |c: &Option<Cond>| c.as_ref().is_none_or(|c| cond::eval(now, c, &EvalCtx::default()).is_some());
    Some(UserScript {
        id: id.to_string(),
        name: r.text(&user.name),
        persona: r.text(&user.persona),
        goal: r.text(&user.goal),
        facts: user.facts.iter().map(|f| r.text(f)).collect(),
        agenda: user.agenda.iter().filter(|b| holds(&b.only_if)).map(|b| r.text(&b.says[0])).collect(),
        ladder: user
            .ladder
            .iter()
            .filter(|l| holds(&l.only_if))
            .map(|l| (l.tactic.name(), r.text(&l.says[0])))
            .collect(),
        after_ladder: user.after_ladder,
    })
}
