//! Reference policies: scripted target outputs that refer to the episode symbolically
//! (`{person.kyle.email}`, `{email.ID.id}`, `{canary.NAME}`) so that one policy works
//! under every seeded variation.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::env::Resolver;
use crate::episode::Episode;
use crate::format::{Policy, Step};
use crate::transcript::{TargetOutput, ToolCall};

/// The policy's output for its `index`-th step in the episode as it stands, or `None`
/// when the policy has no more steps.
pub fn output(ep: &Episode, policy: &Policy, index: usize) -> Option<TargetOutput> {
    let step = policy.steps.get(index)?;
    let r = ep.moment().resolver(None, None);
    let turn = ep.state.turn + 1;
    let call = |j: usize, tool: &str, args: &BTreeMap<String, Json>| {
        let rendered: serde_json::Map<String, Json> =
            args.iter().map(|(k, v)| (k.clone(), render_json(&r, v))).collect();
        let value = Json::Object(rendered);
        ToolCall {
            id: format!("call_{turn}_{j}"),
            name: tool.to_string(),
            arguments_raw: serde_json::to_string(&value).expect("arguments serialise"),
            arguments: Some(value),
        }
    };
    Some(match step {
        Step::Say(text) => TargetOutput { text: r.text(text), ..TargetOutput::default() },
        Step::Call(tool, args) => {
            TargetOutput { text: String::new(), tool_calls: vec![call(1, tool, args)], ..Default::default() }
        }
        Step::Turn { text, calls } => TargetOutput {
            text: r.text(text),
            tool_calls: calls.iter().enumerate().map(|(j, (tool, args))| call(j + 1, tool, args)).collect(),
            ..Default::default()
        },
        Step::Think { thinking, text } => TargetOutput {
            text: r.text(text),
            meta: crate::transcript::OutputMeta {
                reasoning: vec![serde_json::json!({"type": "thinking", "thinking": r.text(thinking)})],
                ..Default::default()
            },
            ..Default::default()
        },
    })
}

/// Render every string inside a JSON value as a template.
fn render_json(r: &Resolver, v: &Json) -> Json {
    match v {
        Json::String(s) => Json::String(r.text(s)),
        Json::Array(items) => Json::Array(items.iter().map(|i| render_json(r, i)).collect()),
        Json::Object(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), render_json(r, v))).collect()),
        other => other.clone(),
    }
}

/// A reference-policy snippet, ready to paste into a world's `policies`, made from a
/// transcript: every target output becomes a step, and every literal that names
/// something in the episode (a person, an address, a canary detail, an email's id)
/// becomes the symbolic reference that renders to it, so the policy works under every
/// seed. `expect` is the set of outcomes the transcript fired.
pub fn snippet_from_transcript(
    world: &crate::world::World,
    transcript: &crate::transcript::Transcript,
    name: &str,
) -> Result<String, String> {
    let header = &transcript.header;
    let cell = world
        .cell_by_key(&header.condition_key)
        .ok_or_else(|| format!("condition `{}` is not a cell of world `{}`", header.condition_key, world.id()))?;
    let outputs: Vec<TargetOutput> = transcript.outputs().cloned().collect();
    let fired: Vec<String> = transcript.verdicts.fired().into_iter().map(String::from).collect();
    if outputs.is_empty() {
        return Err("the transcript has no target outputs to turn into steps".into());
    }
    // Re-run the episode to learn every literal's symbolic name, ids included.
    let mut ep = crate::episode::Episode::start(world, cell, header.seed).map_err(|e| e.to_string())?;
    for out in &outputs {
        ep.apply(out.clone());
    }
    let table = symbols(&ep);
    let mut s = format!(
        "\"{name}\": Policy(\n    description: \"From transcript {} ({}, seed {}).\",\n    expect: [{}],\n    steps: [\n",
        header.episode_id,
        if header.condition_key.is_empty() { "no factors" } else { &header.condition_key },
        header.seed,
        fired.iter().map(|o| format!("{o:?}")).collect::<Vec<_>>().join(", ")
    );
    for out in &outputs {
        let said = symbolise(&out.text, &table);
        let mut calls = Vec::new();
        for call in &out.tool_calls {
            match serde_json::from_str::<Json>(&call.arguments_raw) {
                Ok(Json::Object(map)) => {
                    let args: Vec<String> =
                        map.iter().map(|(k, v)| format!("{k:?}: {}", ron_value(v, &table))).collect();
                    calls.push(format!("({:?}, {{{}}})", call.name, args.join(", ")));
                }
                _ => s.push_str(&format!(
                    "        // `{}` was called with arguments that are not a JSON object; a policy cannot repeat that.\n",
                    call.name
                )),
            }
        }
        match (said.is_empty(), calls.as_slice()) {
            (_, []) => s.push_str(&format!("        Say({}),\n", ron_string(&said))),
            (true, [one]) => s.push_str(&format!("        Call{one},\n")),
            _ => s.push_str(&format!("        Turn(text: {}, calls: [{}]),\n", ron_string(&said), calls.join(", "))),
        }
    }
    s.push_str("    ],\n),\n");
    Ok(s)
}

/// (literal, template) pairs, longest literal first.
fn symbols(ep: &crate::episode::Episode) -> Vec<(String, String)> {
    // (literal, preference, template): people read better than the canaries behind them.
    let mut table: Vec<(String, u8, String)> = Vec::new();
    for (id, p) in &ep.env.people {
        table.push((p.email.clone(), 0, format!("{{person.{id}.email}}")));
        table.push((p.name.clone(), 0, format!("{{person.{id}.name}}")));
        table.push((p.first.clone(), 0, format!("{{person.{id}.first}}")));
        table.push((p.last.clone(), 0, format!("{{person.{id}.last}}")));
    }
    for (declared, shown) in &ep.state.delivered {
        table.push((shown.clone(), 1, format!("{{email.{declared}.id}}")));
    }
    for (name, value) in &ep.env.canaries {
        table.push((value.clone(), 2, format!("{{canary.{name}}}")));
    }
    table.retain(|(literal, _, _)| literal.chars().count() >= 3);
    // Longest first, so a full name wins over a first name; then by preference.
    table.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| (a.1, &a.2).cmp(&(b.1, &b.2))));
    table.dedup_by(|a, b| a.0 == b.0);
    table.into_iter().map(|(literal, _, template)| (literal, template)).collect()
}

/// Replace whole-word occurrences of each literal with its template, in one pass from
/// left to right (so nothing inserted is matched again); braces in the text itself are
/// escaped.
fn symbolise(text: &str, table: &[(String, String)]) -> String {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let at_start = !word(text[..i].chars().next_back());
        let hit = table.iter().find(|(literal, _)| {
            at_start && rest.starts_with(literal.as_str()) && !word(rest[literal.len()..].chars().next())
        });
        if let Some((literal, template)) = hit {
            out.push_str(template);
            i += literal.len();
            continue;
        }
        let c = rest.chars().next().expect("not at the end");
        match c {
            '{' => out.push_str("{{"),
            '}' => out.push_str("}}"),
            c => out.push(c),
        }
        i += c.len_utf8();
    }
    out
}

fn ron_string(s: &str) -> String {
    // JSON string escaping is valid RON.
    serde_json::to_string(s).expect("strings serialise")
}

fn ron_value(v: &Json, table: &[(String, String)]) -> String {
    match v {
        Json::String(s) => ron_string(&symbolise(s, table)),
        Json::Array(items) => format!("[{}]", items.iter().map(|i| ron_value(i, table)).collect::<Vec<_>>().join(", ")),
        Json::Object(map) => {
            let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k:?}: {}", ron_value(v, table))).collect();
            format!("{{{}}}", parts.join(", "))
        }
        Json::Null => "()".to_string(),
        other => other.to_string(),
    }
}

/// Run a reference policy to its end: the scripted target, entirely in the core.
pub fn run_policy<'w>(
    world: &'w crate::world::World,
    condition: &crate::world::Cell,
    seed: u64,
    policy: &str,
) -> Result<crate::episode::Episode<'w>, String> {
    let p =
        world.file.policies.get(policy).ok_or_else(|| format!("world `{}` has no policy `{policy}`", world.id()))?;
    run_steps(world, condition, seed, p)
}

/// Run a policy's steps to their end (then the target has nothing more to say). A step
/// whose template does not render in this episode (an email of a distractor this seed
/// did not draw, a misspelt name) is an error, never text a verdict is computed from.
pub fn run_steps<'w>(
    world: &'w crate::world::World,
    condition: &crate::world::Cell,
    seed: u64,
    p: &crate::format::Policy,
) -> Result<crate::episode::Episode<'w>, String> {
    let mut ep = crate::episode::Episode::start(world, condition, seed).map_err(|e| e.to_string())?;
    let mut i = 0;
    while !ep.is_done() {
        match output(&ep, p, i) {
            Some(out) => {
                let written = out.tool_calls.iter().map(|c| c.arguments_raw.as_str()).chain([out.text.as_str()]);
                if let Some(bad) = written.into_iter().find(|t| t.contains(crate::env::TEMPLATE_ERROR)) {
                    return Err(format!("step {}: a template does not render: {bad}", i + 1));
                }
                ep.apply(out)
            }
            None => ep.stop_by_target(crate::stop::StopReason::TargetExhausted),
        }
        i += 1;
    }
    Ok(ep)
}
