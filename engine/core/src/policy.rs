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
    let r = Resolver { world: ep.world, env: &ep.env, state: Some(&ep.state), args: None, msg: None };
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
