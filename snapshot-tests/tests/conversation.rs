use terrarium_core::conversation::{Message, from_events};
use terrarium_core::transcript::Event;
use terrarium_core::{Episode, TargetOutput, policy, view};
use terrarium_runtime::providers::{Settings, openai_chat};

use crate::support::{all_worlds, conforms, load, snapshot_cell};

/// At every turn of every reference policy, the conversation rebuilt from the events
/// ends with exactly what the live episode showed the target: the tool results, then
/// the user-turn messages.
#[test]
fn the_rebuilt_conversation_is_what_the_target_was_shown() {
    for rel in all_worlds() {
        let world = load(&rel);
        for (name, p) in &world.file.policies {
            let cell = snapshot_cell(&world, name);
            let mut ep = Episode::start(&world, &cell, 0).expect("starts");
            let mut i = 0;
            loop {
                let conversation = from_events(ep.events());
                let last_assistant = conversation.iter().rposition(|m| matches!(m, Message::Assistant { .. }));
                let shown = &conversation[last_assistant.map_or(0, |i| i + 1)..];
                let mut expected = Vec::new();
                if last_assistant.is_none()
                    && let Some(Message::System(s)) = conversation.first()
                {
                    expected.push(Message::System(s.clone()));
                }
                let obs = ep.observation();
                for r in &obs.tool_results {
                    expected.push(Message::Tool {
                        call_id: r.call_id.clone(),
                        name: r.tool.clone(),
                        content: r.text.clone(),
                        ok: r.ok,
                    });
                }
                expected.extend(obs.messages.iter().cloned().map(Message::User));
                assert_eq!(shown, expected.as_slice(), "{rel} {name} before turn {}", i + 1);
                if ep.is_done() {
                    break;
                }
                match policy::output(&ep, p, i) {
                    Some(out) => ep.apply(out),
                    None => break,
                }
                i += 1;
            }
        }
    }
}

/// The exact Chat Completions request a model would be sent after two turns.
#[test]
fn the_openai_chat_request_is_pinned() {
    let world = load("fixtures/worlds/greenhouse/world.ron");
    let p = &world.file.policies["benign"];
    let mut ep = Episode::start(&world, &world.default_cell, 0).expect("starts");
    for i in 0..2 {
        ep.apply(policy::output(&ep, p, i).expect("a step"));
    }
    let settings = Settings { temperature: Some(0.0), max_tokens: Some(1024), ..Settings::default() };
    let request = openai_chat::request("gpt-test", &from_events(ep.events()), &view::tool_schemas(&world), &settings);
    insta::assert_snapshot!(serde_json::to_string_pretty(&request).expect("serialises"));
}

/// Every world, each reference policy played with its steps run two, three and four at
/// a time as one output (parallel tool calls, as frontier models make them), so a call
/// that makes the world speak (a page the doctor answers, an email that brings a reply)
/// is followed in the same turn by more calls. After every turn, the request each
/// provider would be sent must be one its API accepts.
#[test]
fn parallel_calls_around_world_events_make_requests_every_provider_accepts() {
    let mut spoken_between_results = std::collections::BTreeMap::new();
    for rel in all_worlds() {
        let world = load(&rel);
        let schemas = view::tool_schemas(&world);
        for (name, p) in &world.file.policies {
            let cell = snapshot_cell(&world, name);
            let mut ep = Episode::start(&world, &cell, 0).expect("starts");
            let (mut next, mut width) = (0, 2);
            while !ep.is_done() && next < p.steps.len() {
                let mut out = TargetOutput::default();
                for i in next..(next + width).min(p.steps.len()) {
                    let step = policy::output(&ep, p, i).expect("a step");
                    if !step.text.is_empty() {
                        out.text = [out.text.as_str(), step.text.as_str()].join(" ").trim().to_string();
                    }
                    for mut call in step.tool_calls {
                        call.id = format!("call_{}_{}", ep.state().turn + 1, out.tool_calls.len());
                        out.tool_calls.push(call);
                    }
                    // Scripted thinking (in Anthropic's shape) is left out: a model's
                    // reasoning goes back only to the API that produced it.
                }
                let before = ep.events().len();
                ep.apply(out);
                let turn = &ep.events()[before..];
                let last_result = turn.iter().rposition(|e| matches!(e, Event::ToolResult { .. }));
                let spoke = turn[..last_result.unwrap_or(0)].iter().any(|e| {
                    matches!(e, Event::World { kind, .. } if terrarium_core::transcript::SHOWN_TO_TARGET.contains(&kind.as_str()))
                });
                *spoken_between_results.entry(world.id().to_string()).or_insert(0) += usize::from(spoke);
                if let Err(e) = conforms(&ep, &schemas) {
                    panic!("{rel} policy {name}, turn {}: {e}", ep.state().turn);
                }
                next += width;
                width = 2 + (width - 1) % 3;
            }
        }
    }
    // The case this guards: the world spoke between one turn's results.
    assert!(spoken_between_results.get("denial_of_care").is_some_and(|n| *n > 0), "{spoken_between_results:?}");
}
