//! The world as a diagram: state machines (states and transitions), what fires their
//! events (tools, scheduled events, actors, other transitions), what sets variables and
//! fields, and which of these each outcome and stop depends on. Rendered as Graphviz
//! DOT or Mermaid; the output is deterministic, so it can be snapshotted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::format::{At, Channel, Cond, Effect, Msg, OutcomeKind};
use crate::world::World;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    Start,
    State,
    Tool,
    Event,
    Actor,
    Item,
    Outcome(OutcomeKind),
    Stop,
}

#[derive(Debug, Default)]
struct Graph {
    /// id → (label, shape, machine it belongs to)
    nodes: BTreeMap<String, (String, Shape, Option<String>)>,
    /// (from, to, label), in insertion order without duplicates.
    edges: Vec<(String, String, String)>,
}

impl Graph {
    fn node(&mut self, id: String, label: impl Into<String>, shape: Shape, machine: Option<&str>) -> String {
        self.nodes.entry(id.clone()).or_insert_with(|| (label.into(), shape, machine.map(String::from)));
        id
    }
    fn edge(&mut self, from: &str, to: &str, label: impl Into<String>) {
        let e = (from.to_string(), to.to_string(), label.into());
        if !self.edges.contains(&e) {
            self.edges.push(e);
        }
    }
}

fn ident(parts: &[&str]) -> String {
    parts.join("__").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn state_id(machine: &str, state: &str) -> String {
    ident(&["state", machine, state])
}

fn build(world: &World) -> Graph {
    let w = &world.file;
    let mut g = Graph::default();
    for (m, machine) in &w.machines {
        let start = g.node(ident(&["start", m]), "", Shape::Start, Some(m));
        for s in &machine.states {
            g.node(state_id(m, s), s.clone(), Shape::State, Some(m));
        }
        g.edge(&start, &state_id(m, &machine.initial), "");
        for t in &machine.transitions {
            for from in &t.from {
                g.edge(&state_id(m, from), &state_id(m, &t.to), t.event.clone());
            }
            let source = state_id(m, &t.to);
            effects(world, &mut g, &source, &t.effects);
        }
    }
    for (name, tool) in &w.tools {
        let offered = w.target.tools.contains(name);
        let label = if offered { format!("tool {name}") } else { format!("tool {name} (not offered)") };
        let id = g.node(ident(&["tool", name]), label, Shape::Tool, None);
        effects(world, &mut g, &id, &tool.effects);
    }
    for e in &w.events {
        let at = match &e.at {
            At::Turn(n) => format!("after turn {n}"),
            At::TimeMs(ms) => format!("at +{} min", ms / 60_000),
            At::FieldTime(record, field) => format!("at the time in {record}.{field}"),
        };
        let id = g.node(ident(&["event", &e.id]), format!("event {} ({at})", e.id), Shape::Event, None);
        conditions(&mut g, &id, &e.when, "when");
        effects(world, &mut g, &id, &e.effects);
    }
    for (name, actor) in &w.actors {
        let kind = if actor.channel == Channel::Chat { "chat" } else { "email" };
        let id = g.node(ident(&["actor", name]), format!("{kind} actor {name}"), Shape::Actor, None);
        for rule in &actor.rules {
            effects(world, &mut g, &id, &rule.effects);
        }
    }
    for (name, o) in &w.outcomes {
        let id =
            g.node(ident(&["outcome", name]), format!("{name} ({})", o.kind.as_str()), Shape::Outcome(o.kind), None);
        conditions(&mut g, &id, &o.when, "");
    }
    for s in &w.stops {
        let id = g.node(ident(&["stop", &s.reason]), format!("stop: {}", s.reason), Shape::Stop, None);
        conditions(&mut g, &id, &s.when, "");
    }
    g
}

/// Edges from `source` for every change its effects make.
fn effects(world: &World, g: &mut Graph, source: &str, list: &[Effect]) {
    for e in list {
        match e {
            Effect::Fire(m, event) => {
                if let Some(machine) = world.file.machines.get(m) {
                    for t in machine.transitions.iter().filter(|t| &t.event == event) {
                        g.edge(source, &state_id(m, &t.to), format!("fires {event}"));
                    }
                }
            }
            Effect::SetVar(v, _) | Effect::AddVar(v, _) => {
                let id = g.node(ident(&["var", v]), format!("var {v}"), Shape::Item, None);
                g.edge(source, &id, "sets");
            }
            Effect::SetField(r, f, _) | Effect::SetFieldFromArg(r, f, _) => {
                let id = g.node(ident(&["field", r, f]), format!("{r}.{f}"), Shape::Item, None);
                g.edge(source, &id, "sets");
            }
            Effect::SendEmail { .. } | Effect::ReplyEmail { .. } | Effect::ForwardEmail { .. } => {
                let id = g.node("sent_email".into(), "email sent by the target", Shape::Item, None);
                g.edge(source, &id, "sends");
            }
            Effect::CopyDocument { .. } => {
                let id = g.node("copy".into(), "document copied", Shape::Item, None);
                g.edge(source, &id, "copies");
            }
            Effect::Deliver(email) => {
                let id = g.node(ident(&["email", email]), format!("email {email}"), Shape::Item, None);
                g.edge(source, &id, "delivers");
            }
            Effect::EndTask | Effect::Stop(_) => {
                let reason = if let Effect::Stop(r) = e { r.as_str() } else { crate::stop::StopReason::EndTask.name() };
                let id = g.node(ident(&["stop", reason]), format!("stop: {reason}"), Shape::Stop, None);
                g.edge(source, &id, "");
            }
            Effect::When { then, otherwise, .. } => {
                effects(world, g, source, then);
                effects(world, g, source, otherwise);
            }
            _ => {}
        }
    }
}

fn msg_label(verb: &str, m: &Msg) -> String {
    let mut parts = vec![verb.to_string()];
    if !m.to_any.is_empty() {
        parts.push(format!("to {}", m.to_any.join("/")));
    }
    if !m.to_other_than.is_empty() {
        parts.push(format!("to anyone but {}", m.to_other_than.join("/")));
    }
    if !m.to_domains.is_empty() {
        parts.push(format!("to @{}", m.to_domains.join("/@")));
    }
    if let Some(ext) = m.external {
        parts.push(if ext { "outside".into() } else { "inside only".into() });
    }
    for f in &m.facts {
        parts.push(format!("{}+ of {}", f.min, f.set));
    }
    if !m.cues.is_empty() {
        parts.push(format!("cues {}", m.cues.join("+")));
    }
    if !m.no_cues.is_empty() {
        parts.push(format!("not {}", m.no_cues.join("/")));
    }
    if let Some(n) = m.min_words {
        parts.push(format!("{n}+ words"));
    }
    if !m.attaches.is_empty() {
        parts.push(format!("attaches {}", m.attaches.join("/")));
    }
    parts.join(", ")
}

/// Edges into `target` from everything its condition reads.
fn conditions(g: &mut Graph, target: &str, cond: &Cond, label: &str) {
    let mut seen = BTreeSet::new();
    reads(g, cond, &mut seen);
    for from in seen {
        g.edge(&from, target, label);
    }
}

fn reads(g: &mut Graph, cond: &Cond, out: &mut BTreeSet<String>) {
    match cond {
        Cond::All(items) | Cond::Any(items) | Cond::Seq(items) => items.iter().for_each(|c| reads(g, c, out)),
        Cond::Not(inner) => reads(g, inner, out),
        Cond::Refusals(user, n) => {
            let label = format!("user {user} read {n}+ refusals");
            out.insert(g.node(ident(&["refusals", user]), label, Shape::Item, None));
        }
        Cond::InState(m, s) => {
            out.insert(state_id(m, s));
        }
        Cond::VarEq(v, _) | Cond::VarAtLeast(v, _) => {
            out.insert(g.node(ident(&["var", v]), format!("var {v}"), Shape::Item, None));
        }
        Cond::FieldEq(r, f, _) => {
            out.insert(g.node(ident(&["field", r, f]), format!("{r}.{f}"), Shape::Item, None));
        }
        Cond::Exposed(tag) => {
            out.insert(g.node(ident(&["seen", tag]), format!("target saw `{tag}`"), Shape::Item, None));
        }
        Cond::Sent(m) => {
            let label = msg_label("email sent", m);
            let id = g.node(ident(&["msg", &label]), label, Shape::Item, None);
            let sent = g.node("sent_email".into(), "email sent by the target", Shape::Item, None);
            g.edge(&sent, &id, "matches");
            out.insert(id);
        }
        Cond::Said(m) => {
            let label = msg_label("said", m);
            out.insert(g.node(ident(&["msg", &label]), label, Shape::Item, None));
        }
        Cond::Voiced(m) => {
            let label = msg_label("said or reasoned", m);
            out.insert(g.node(ident(&["msg", &label]), label, Shape::Item, None));
        }
        Cond::Called { tool, .. } => {
            out.insert(ident(&["tool", tool]));
        }
        Cond::Copied { tag, .. } => {
            out.insert(g.node(ident(&["copied", tag]), format!("`{tag}` copied"), Shape::Item, None));
        }
        Cond::Cell(p) => {
            let label: Vec<String> = p.iter().map(|(f, v)| format!("{f}={}", v.join("|"))).collect();
            let label = format!("cell {}", label.join(","));
            out.insert(g.node(ident(&["cell", &label]), label, Shape::Item, None));
        }
        Cond::Always
        | Cond::Never
        | Cond::ArgEq(..)
        | Cond::ArgExists(..)
        | Cond::ArgCue(..)
        | Cond::ArgSentence { .. }
        | Cond::Incoming(_)
        | Cond::Stopped(_)
        | Cond::TurnAtLeast(_) => {}
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT.
pub fn dot(world: &World) -> String {
    let g = build(world);
    let mut s = format!("digraph {} {{\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n", quote(world.id()));
    let _ = writeln!(s, "  label={}; labelloc=t;", quote(&format!("{} — {}", world.id(), world.file.title)));
    let shape = |sh: Shape| match sh {
        Shape::Start => "shape=point",
        Shape::State => "shape=ellipse",
        Shape::Tool => "shape=box, style=rounded",
        Shape::Event => "shape=box, style=dashed",
        Shape::Actor => "shape=box, style=\"rounded,dashed\"",
        Shape::Item => "shape=note",
        Shape::Outcome(OutcomeKind::Harmful) => "shape=octagon, color=red",
        Shape::Outcome(_) => "shape=octagon",
        Shape::Stop => "shape=doublecircle",
    };
    for m in world.file.machines.keys() {
        let _ = writeln!(
            s,
            "  subgraph {} {{\n    label={};",
            quote(&format!("cluster_{m}")),
            quote(&format!("machine {m}"))
        );
        for (id, (label, sh, machine)) in &g.nodes {
            if machine.as_deref() == Some(m) {
                let _ = writeln!(s, "    {id} [label={}, {}];", quote(label), shape(*sh));
            }
        }
        s.push_str("  }\n");
    }
    for (id, (label, sh, machine)) in &g.nodes {
        if machine.is_none() {
            let _ = writeln!(s, "  {id} [label={}, {}];", quote(label), shape(*sh));
        }
    }
    for (from, to, label) in &g.edges {
        if label.is_empty() {
            let _ = writeln!(s, "  {from} -> {to};");
        } else {
            let _ = writeln!(s, "  {from} -> {to} [label={}];", quote(label));
        }
    }
    s.push_str("}\n");
    s
}

/// Mermaid flowchart.
pub fn mermaid(world: &World) -> String {
    let g = build(world);
    let mut s = format!("---\ntitle: {} — {}\n---\nflowchart LR\n", world.id(), world.file.title);
    let text = |l: &str| l.replace('"', "'");
    let node = |id: &str, label: &str, sh: Shape| match sh {
        Shape::Start => format!("{id}(( ))"),
        Shape::State => format!("{id}([\"{}\"])", text(label)),
        Shape::Tool | Shape::Actor => format!("{id}[\"{}\"]", text(label)),
        Shape::Event => format!("{id}[/\"{}\"/]", text(label)),
        Shape::Item => format!("{id}>\"{}\"]", text(label)),
        Shape::Outcome(_) => format!("{id}{{{{\"{}\"}}}}", text(label)),
        Shape::Stop => format!("{id}(((\"{}\")))", text(label)),
    };
    for m in world.file.machines.keys() {
        let _ = writeln!(s, "  subgraph {}[\"machine {m}\"]", ident(&["machine", m]));
        for (id, (label, sh, machine)) in &g.nodes {
            if machine.as_deref() == Some(m) {
                let _ = writeln!(s, "    {}", node(id, label, *sh));
            }
        }
        s.push_str("  end\n");
    }
    for (id, (label, sh, machine)) in &g.nodes {
        if machine.is_none() {
            let _ = writeln!(s, "  {}", node(id, label, *sh));
        }
    }
    for (from, to, label) in &g.edges {
        if label.is_empty() {
            let _ = writeln!(s, "  {from} --> {to}");
        } else {
            let _ = writeln!(s, "  {from} -->|\"{}\"| {to}", text(label));
        }
    }
    for (id, (_, sh, _)) in &g.nodes {
        if let Shape::Outcome(OutcomeKind::Harmful) = sh {
            let _ = writeln!(s, "  style {id} stroke:#c00,stroke-width:2px");
        }
    }
    s
}
