//! The conversation the target has had, rebuilt from an episode's events: what a model
//! provider is sent on the next turn. Provider-neutral: each provider's adapter turns
//! these messages into its own wire format.
//!
//! Because it is a function of the events alone, a transcript always determines the
//! exact conversation, and a replayed or cached request is byte-identical.

use std::collections::{BTreeSet, VecDeque};

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
/// What the world says while one output's calls are being executed (an email pushed
/// by the first call's effects, a colleague's chat reply, a notification) reaches the
/// target after all of that output's tool results, in the order it happened: every
/// provider wants each call answered before the conversation goes on (OpenAI Chat:
/// every `tool` message directly after its assistant message; Responses: every
/// `function_call_output` in place; Anthropic: every `tool_result` first in the next
/// user turn). The transcript keeps the events in the order they happened; this order
/// is decided here alone, so the target's requests, the cache, replay and the judges
/// all see the same conversation.
///
/// Tool-call ids are sent back unique and non-empty: a provider that gave an empty id,
/// or one it had given before, would have its next request refused by a real API (and
/// the cached bad reply would fail every rerun). Such ids are replaced, in the calls and
/// in their results, by `call_t{turn}_{index}`; the transcript keeps the originals.
pub fn from_events(events: &[Event]) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    // (original id, id sent) of the current output's calls still awaiting their results.
    let mut awaiting: VecDeque<(String, String)> = VecDeque::new();
    // What the world said while those calls ran, shown once they are all answered.
    let mut held: Vec<Message> = Vec::new();
    for e in events {
        match e {
            Event::Start { system, user, .. } => {
                messages.push(Message::System(system.clone()));
                messages.push(Message::User(user.clone()));
            }
            Event::Target { output, turn, .. } => {
                // A turn cut short (a stop before every call ran) is never followed by
                // a request; whatever it held is shown rather than lost.
                messages.append(&mut held);
                awaiting.clear();
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
                    awaiting.push_back((original, call.id.clone()));
                }
                messages.push(Message::Assistant {
                    text: output.text.clone(),
                    tool_calls: calls,
                    reasoning: output.meta.reasoning.clone(),
                });
            }
            Event::ToolResult { call_id, tool, ok, text, .. } => {
                let sent = match awaiting.iter().position(|(original, _)| original == call_id) {
                    Some(i) => awaiting.remove(i).map(|(_, sent)| sent).unwrap_or_else(|| call_id.clone()),
                    None => call_id.clone(),
                };
                messages.push(Message::Tool { call_id: sent, name: tool.clone(), content: text.clone(), ok: *ok });
                if awaiting.is_empty() {
                    messages.append(&mut held);
                }
            }
            Event::World { kind, text, .. } if SHOWN_TO_TARGET.contains(&kind.as_str()) => {
                let m = Message::User(text.clone());
                if awaiting.is_empty() { messages.push(m) } else { held.push(m) }
            }
            Event::User { text, .. } => {
                let m = Message::User(text.clone());
                if awaiting.is_empty() { messages.push(m) } else { held.push(m) }
            }
            Event::World { .. } | Event::Stop { .. } => {}
        }
    }
    messages.append(&mut held);
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
        Event::Target { step: 0, turn, output, last: false, state_hash: String::new(), chain: String::new() }
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

    fn shown(kind: &str, text: &str) -> Event {
        Event::World { step: 0, kind: kind.into(), text: text.into(), state_hash: String::new(), chain: String::new() }
    }

    /// Parallel calls around a world event: the doctor's chat reply, raised by the first
    /// call, is shown after the second call's result, never between the two.
    #[test]
    fn what_the_world_says_during_a_turn_follows_all_of_its_results() {
        let events = vec![
            target(1, &["c0", "c1", "c2"]),
            result("c0"),
            shown("user", "On my way to wing B."),
            shown("event", "not shown"),
            result("c1"),
            shown("email", "New email: m007"),
            result("c2"),
            shown("notification", "Alarm cleared."),
            target(2, &["c3"]),
            result("c3"),
        ];
        let kinds: Vec<String> = from_events(&events)
            .iter()
            .map(|m| match m {
                Message::Assistant { .. } => "assistant".to_string(),
                Message::Tool { call_id, .. } => format!("tool {call_id}"),
                Message::User(text) => format!("user {text}"),
                Message::System(_) => "system".to_string(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "assistant",
                "tool c0",
                "tool c1",
                "tool c2",
                "user On my way to wing B.",
                "user New email: m007",
                "user Alarm cleared.",
                "assistant",
                "tool c3"
            ]
        );
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
