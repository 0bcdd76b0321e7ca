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
pub fn from_events(events: &[Event]) -> Vec<Message> {
    let mut messages = Vec::new();
    for e in events {
        match e {
            Event::Start { system, user, .. } => {
                messages.push(Message::System(system.clone()));
                messages.push(Message::User(user.clone()));
            }
            Event::Target { output, .. } => messages.push(Message::Assistant {
                text: output.text.clone(),
                tool_calls: output.tool_calls.clone(),
                reasoning: output.meta.reasoning.clone(),
            }),
            Event::ToolResult { call_id, tool, ok, text, .. } => messages.push(Message::Tool {
                call_id: call_id.clone(),
                name: tool.clone(),
                content: text.clone(),
                ok: *ok,
            }),
            Event::World { kind, text, .. } if SHOWN_TO_TARGET.contains(&kind.as_str()) => {
                messages.push(Message::User(text.clone()))
            }
            Event::World { .. } | Event::Stop { .. } => {}
        }
    }
    messages
}
