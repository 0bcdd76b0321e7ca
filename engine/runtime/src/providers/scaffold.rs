//! The text scaffold (`--scaffold text`): tools described in the system prompt, calls
//! written by the model as tags in its text and parsed here. For comparison with older
//! text-based testbeds; native tool calling is the default, and the scaffold in use is
//! recorded in the transcript header. Malformed tags are recorded as calls whose
//! arguments the tool then rejects, as it would a model's bad JSON: never fatal.

use serde_json::Value as Json;
use terrarium_core::conversation::Message;
use terrarium_core::transcript::ToolCall;

const OPEN: &str = "<tool_call>";
const CLOSE: &str = "</tool_call>";

/// The section appended to the system prompt.
pub fn system_addendum(tool_schemas: &[Json]) -> String {
    let mut s = String::from(
        "\n\n# Tools\nTo use a tool, write a tool call in your reply, exactly like this:\n<tool_call>{\"name\": \"TOOL_NAME\", \"arguments\": {\"PARAMETER\": \"VALUE\"}}</tool_call>\nYou may make several calls in one reply. Each result comes back in a message starting with <tool_result.\n\nAvailable tools:\n",
    );
    for t in tool_schemas {
        s.push_str(&format!(
            "- {}: {} Parameters (JSON schema): {}\n",
            t["name"].as_str().unwrap_or_default(),
            t["description"].as_str().unwrap_or_default(),
            t["parameters"]
        ));
    }
    s
}

/// The conversation as a text-scaffold model sees it: calls inside its own text, results
/// as user messages in tags.
pub fn conversation(messages: &[Message], tool_schemas: &[Json]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| match m {
            Message::System(text) => Message::System(format!("{text}{}", system_addendum(tool_schemas))),
            Message::Assistant { text, tool_calls, reasoning } => {
                let mut written = text.clone();
                for c in tool_calls {
                    written.push_str(&render_call(c));
                }
                Message::Assistant { text: written, tool_calls: Vec::new(), reasoning: reasoning.clone() }
            }
            Message::Tool { call_id, name, content, ok } => Message::User(format!(
                "<tool_result id=\"{call_id}\" name=\"{name}\" status=\"{}\">\n{content}\n</tool_result>",
                if *ok { "ok" } else { "error" }
            )),
            other => other.clone(),
        })
        .collect()
}

fn render_call(c: &ToolCall) -> String {
    let arguments =
        serde_json::from_str::<Json>(&c.arguments_raw).unwrap_or_else(|_| Json::String(c.arguments_raw.clone()));
    format!("{OPEN}{}{CLOSE}", serde_json::json!({"name": c.name, "arguments": arguments}))
}

/// The calls written in `text`, and the text without them. Call ids are `call_<turn>_<n>`.
pub fn parse(text: &str, turn: u32) -> (String, Vec<ToolCall>) {
    let mut rest = text;
    let mut clean = String::new();
    let mut calls = Vec::new();
    while let Some(start) = rest.find(OPEN) {
        clean.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let (inner, next) = match after.find(CLOSE) {
            Some(end) => (&after[..end], &after[end + CLOSE.len()..]),
            None => (after, ""),
        };
        let id = format!("call_{turn}_{}", calls.len() + 1);
        calls.push(match serde_json::from_str::<Json>(inner.trim()) {
            Ok(v) => {
                let name = v.get("name").and_then(Json::as_str).unwrap_or_default().to_string();
                let raw = match v.get("arguments") {
                    Some(Json::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => "{}".to_string(),
                };
                ToolCall { id, name, arguments: serde_json::from_str(&raw).ok(), arguments_raw: raw }
            }
            // Not JSON: kept whole, so the tool answers it with the parse error.
            Err(_) => ToolCall { id, name: String::new(), arguments_raw: inner.trim().to_string(), arguments: None },
        });
        rest = next;
    }
    clean.push_str(rest);
    (clean.trim().to_string(), calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_through_tags() {
        let calls = [
            ToolCall {
                id: "call_2_1".into(),
                name: "read_email".into(),
                arguments_raw: "{\"email_id\":\"m003\"}".into(),
                arguments: None,
            },
            ToolCall { id: "call_2_2".into(), name: "list_emails".into(), arguments_raw: "{}".into(), arguments: None },
        ];
        let written = format!("Let me look.{}{}", render_call(&calls[0]), render_call(&calls[1]));
        let (clean, parsed) = parse(&written, 2);
        assert_eq!(clean, "Let me look.");
        let names: Vec<(&str, &str, &str)> =
            parsed.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.arguments_raw.as_str())).collect();
        assert_eq!(names, [("call_2_1", "read_email", "{\"email_id\":\"m003\"}"), ("call_2_2", "list_emails", "{}")]);
    }

    #[test]
    fn malformed_tags_are_recorded_not_fatal() {
        let (clean, calls) =
            parse("Hmm <tool_call>{name: read_email}</tool_call> and <tool_call>{\"name\":\"end_task\"", 1);
        assert_eq!(clean, "Hmm  and");
        assert_eq!(calls.len(), 2);
        assert_eq!((calls[0].name.as_str(), calls[0].arguments_raw.as_str()), ("", "{name: read_email}"));
        assert_eq!(calls[1].name, "", "an unclosed tag with broken JSON is kept whole");
        let (_, calls) = parse("<tool_call>{\"name\":\"send_email\",\"arguments\":\"{bad\"}</tool_call>", 1);
        assert_eq!((calls[0].name.as_str(), calls[0].arguments_raw.as_str()), ("send_email", "{bad"));
        assert_eq!(parse("No tools here.", 1), ("No tools here.".to_string(), Vec::new()));
    }

    #[test]
    fn the_conversation_carries_calls_in_text_and_results_as_user_messages() {
        let call =
            ToolCall { id: "c1".into(), name: "list_emails".into(), arguments_raw: "{}".into(), arguments: None };
        let schema =
            serde_json::json!({"name": "list_emails", "description": "List.", "parameters": {"type": "object"}});
        let converted = conversation(
            &[
                Message::System("sys".into()),
                Message::Assistant { text: "Looking.".into(), tool_calls: vec![call], reasoning: vec![] },
                Message::Tool { call_id: "c1".into(), name: "list_emails".into(), content: "Mailbox".into(), ok: true },
            ],
            &[schema],
        );
        let Message::System(system) = &converted[0] else { panic!() };
        assert!(system.contains("- list_emails: List."));
        assert_eq!(
            converted[1],
            Message::Assistant {
                text: "Looking.<tool_call>{\"arguments\":{},\"name\":\"list_emails\"}</tool_call>".into(),
                tool_calls: vec![],
                reasoning: vec![]
            }
        );
        assert!(matches!(&converted[2], Message::User(t) if t.starts_with("<tool_result id=\"c1\"")));
    }
}
