use terrarium_core::conversation::{Message, from_events};
use terrarium_core::{Episode, policy, view};
use terrarium_runtime::providers::{Settings, openai_chat};

use crate::support::{all_worlds, load, snapshot_cell};

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
