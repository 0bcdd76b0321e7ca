//! The conversation the target has had, rebuilt from an episode's events: what a model
//! provider is sent on the next turn. Provider-neutral: each provider's adapter turns
//! these messages into its own wire format.
//!
//! Because it is a function of the events alone, a transcript always determines the
//! exact conversation, and a replayed or cached request is byte-identical.

use serde_json::Value as Json;

use crate::transcript::{Event, SHOWN_TO_TARGET, ToolCall};

#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    System(String),
    User(String),
    /// One target output: text, tool calls as the target wrote them, and reasoning
    /// items to pass back unchanged.
    Assistant {
        text: String,
        tool_calls: Vec<ToolCall>,
        reasoning: Vec<Json>,
    },
    /// The result of one tool call.
    Tool {
        call_id: String,
        name: String,
        content: String,
        ok: bool,
    },
}

/// The conversation so far. World events the target was not shown (unseen arrivals,
/// scheduled events, machine transitions) are left out.
///
/// Tool-call ids are sent back unique and non-empty: a provider that gave an empty id,
/// or one it had given before, would have its next request refused by a real API (and
/// the cached bad reply would fail every rerun). Such ids are replaced, in the calls and
/// in their results, by `call_t{turn}_{index}`; the transcript keeps the originals.
pub fn from_events(events: &[Event]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut used: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    // (original id, id sent) of the current output's calls, in order, for their results.
    let mut renamed: std::collections::VecDeque<(String, String)> = std::collections::VecDeque::new();
    for e in events {
        match e {
            Event::Start { system, user, .. } => {
                messages.push(Message::System(system.clone()));
                messages.push(Message::User(user.clone()));
            }
            Event::Target { output, turn, .. } => {
                renamed.clear();
                let mut calls = output.tool_calls.clone();
                for (j, call) in calls.iter_mut().enumerate() {
                    let original = call.id.clone();
                    if call.id.trim().is_empty() || used.contains(&call.id) {
                        let mut fresh = format!("call_t{turn}_{j}");
                        while used.contains(&fresh) {
                            fresh.push('x');
                        }
                        call.id = fresh;
                    }
                    used.insert(call.id.clone());
                    renamed.push_back((original, call.id.clone()));
                }
                messages.push(Message::Assistant {
                    text: output.text.clone(),
                    tool_calls: calls,
                    reasoning: output.meta.reasoning.clone(),
                });
            }
            Event::ToolResult { call_id, tool, ok, text, .. } => {
                let sent = match renamed.iter().position(|(original, _)| original == call_id) {
                    Some(i) => renamed.remove(i).map(|(_, sent)| sent).unwrap_or_else(|| call_id.clone()),
                    None => call_id.clone(),
                };
                messages.push(Message::Tool { call_id: sent, name: tool.clone(), content: text.clone(), ok: *ok })
            }
            Event::World { kind, text, .. } if SHOWN_TO_TARGET.contains(&kind.as_str()) => {
                messages.push(Message::User(text.clone()))
            }
            Event::User { text, .. } => messages.push(Message::User(text.clone())),
            Event::World { .. } | Event::Stop { .. } => {}
        }
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::TargetOutput;

    fn call(id: &str) -> ToolCall {
        ToolCall { id: id.into(), name: "t".into(), arguments_raw: "{}".into(), arguments: None }
    }

    fn target(turn: u32, ids: &[&str]) -> Event {
        let output = TargetOutput { tool_calls: ids.iter().map(|i| call(i)).collect(), ..Default::default() };
        Event::Target { step: 0, turn, output, state_hash: String::new(), chain: String::new() }
    }

    fn result(id: &str) -> Event {
        Event::ToolResult {
            step: 0,
            call_id: id.into(),
            tool: "t".into(),
            ok: true,
            text: "OK.".into(),
            state_hash: String::new(),
            chain: String::new(),
        }
    }

    #[test]
    fn empty_and_repeated_call_ids_are_sent_back_unique_and_paired_with_their_results() {
        let events = vec![
            target(1, &["", ""]),
            result(""),
            result(""),
            target(2, &["a", "a"]),
            result("a"),
            result("a"),
            target(3, &["a"]),
            result("a"),
        ];
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for m in from_events(&events) {
            match m {
                Message::Assistant { tool_calls, .. } => calls.extend(tool_calls.into_iter().map(|c| c.id)),
                Message::Tool { call_id, .. } => results.push(call_id),
                _ => {}
            }
        }
        assert_eq!(calls, ["call_t1_0", "call_t1_1", "a", "call_t2_1", "call_t3_0"]);
        assert_eq!(results, calls, "each result answers the call it followed");
        let unique: std::collections::BTreeSet<&String> = calls.iter().collect();
        assert_eq!(unique.len(), calls.len());
    }
}
