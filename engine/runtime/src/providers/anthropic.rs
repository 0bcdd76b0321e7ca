//! Anthropic Messages with native tool use: `tools` with `input_schema`, `tool_use` and
//! `tool_result` blocks (`is_error` for failed tools), thinking blocks passed back
//! unchanged, and the world's prefill as a trailing assistant message.

use serde_json::{Value as Json, json};
use terrarium_core::conversation::Message;
use terrarium_core::transcript::{OutputMeta, TargetOutput, ToolCall};

use super::{ProviderError, Reply, Settings, TargetStop};

/// Messages requires `max_tokens`; this is used when none is given.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The request body for the next turn of `conversation`.
pub fn request(
    model: &str,
    conversation: &[Message],
    tool_schemas: &[Json],
    settings: &Settings,
    prefill: Option<&str>,
) -> Json {
    let mut system = String::new();
    // (role, blocks); consecutive messages of one role are merged, as the API requires.
    let mut messages: Vec<(&'static str, Vec<Json>)> = Vec::new();
    fn push(messages: &mut Vec<(&'static str, Vec<Json>)>, role: &'static str, block: Json) {
        match messages.last_mut() {
            Some((r, blocks)) if *r == role => blocks.push(block),
            _ => messages.push((role, vec![block])),
        }
    }
    for m in conversation {
        match m {
            Message::System(text) => system = text.clone(),
            Message::User(text) => push(&mut messages, "user", json!({"type": "text", "text": text})),
            Message::Assistant { text, tool_calls, reasoning } => {
                for block in reasoning {
                    push(&mut messages, "assistant", block.clone());
                }
                if !text.is_empty() {
                    push(&mut messages, "assistant", json!({"type": "text", "text": text}));
                }
                for c in tool_calls {
                    let input = serde_json::from_str::<Json>(&c.arguments_raw)
                        .ok()
                        .filter(Json::is_object)
                        .unwrap_or_else(|| json!({}));
                    push(
                        &mut messages,
                        "assistant",
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
            }
            Message::Tool { call_id, content, ok, .. } => push(
                &mut messages,
                "user",
                json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": !ok}),
            ),
        }
    }
    // Extended thinking cannot continue a prefilled assistant turn: the prefill is then
    // not sent, and the target records it as unsupported.
    let prefill = prefill.filter(|_| settings.thinking_budget.is_none());
    if let Some(p) = prefill.filter(|p| !p.is_empty())
        && matches!(messages.last(), Some(("user", _)))
    {
        push(&mut messages, "assistant", json!({"type": "text", "text": p}));
    }
    let mut body = json!({
        "model": model,
        "max_tokens": settings.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "system": system,
        "messages": messages.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect::<Vec<_>>(),
    });
    if !tool_schemas.is_empty() {
        body["tools"] = tool_schemas
            .iter()
            .map(|s| json!({"name": s["name"], "description": s["description"], "input_schema": s["parameters"]}))
            .collect();
    }
    if let Some(budget) = settings.thinking_budget {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": budget});
    }
    if let Some(t) = settings.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = settings.top_p {
        body["top_p"] = json!(p);
    }
    body
}

/// Turn a response body into the target's output.
pub fn parse(body: &str) -> Result<Reply, ProviderError> {
    let body = super::lone_surrogates_replaced(body);
    let response: Json = serde_json::from_str(&body).map_err(|e| ProviderError::NotJson(e.to_string()))?;
    let blocks = response.get("content").and_then(Json::as_array).ok_or(ProviderError::NoContent("content"))?;
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut reasoning = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Json::as_str) {
            Some("text") => text.push_str(block.get("text").and_then(Json::as_str).unwrap_or_default()),
            Some("tool_use") => {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(ToolCall {
                    id: block.get("id").and_then(Json::as_str).unwrap_or_default().to_string(),
                    name: block.get("name").and_then(Json::as_str).unwrap_or_default().to_string(),
                    arguments_raw: input.to_string(),
                    arguments: Some(input),
                });
            }
            // Thinking (and redacted thinking) is passed back unchanged on later turns.
            Some("thinking" | "redacted_thinking") => reasoning.push(block.clone()),
            _ => {}
        }
    }
    let stop_reason = response.get("stop_reason").and_then(Json::as_str).map(String::from);
    let stop = match stop_reason.as_deref() {
        Some("refusal") => Some(TargetStop::Refusal),
        _ if !tool_calls.is_empty() => None,
        Some("max_tokens") => Some(TargetStop::MaxTokens),
        _ if text.trim().is_empty() => Some(TargetStop::Empty),
        _ => None,
    };
    let meta = OutputMeta {
        response_id: response.get("id").and_then(Json::as_str).map(String::from),
        finish_reason: stop_reason,
        usage: response.get("usage").cloned(),
        reasoning,
        ..OutputMeta::default()
    };
    Ok(Reply { output: TargetOutput { text, tool_calls, meta }, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, name: &str, raw: &str) -> ToolCall {
        ToolCall { id: id.into(), name: name.into(), arguments_raw: raw.into(), arguments: None }
    }

    #[test]
    fn builds_alternating_messages_with_linked_tool_results_and_thinking_passed_back() {
        let thinking = json!({"type": "thinking", "thinking": "hmm", "signature": "sig"});
        let conversation = vec![
            Message::System("sys".into()),
            Message::User("start".into()),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![call("tu_1", "read_email", "{\"email_id\":\"m001\"}")],
                reasoning: vec![thinking.clone()],
            },
            Message::Tool { call_id: "tu_1".into(), name: "read_email".into(), content: "body".into(), ok: true },
            Message::User("New email: m009".into()),
            Message::Assistant {
                text: "Done.".into(),
                tool_calls: vec![call("tu_2", "send_email", "{not json")],
                reasoning: vec![],
            },
            Message::Tool {
                call_id: "tu_2".into(),
                name: "send_email".into(),
                content: "Error: bad".into(),
                ok: false,
            },
        ];
        let schema = json!({"name": "read_email", "description": "d", "parameters": {"type": "object"}});
        let body = request("claude-test", &conversation, &[schema], &Settings::default(), None);
        assert_eq!(body["system"], "sys");
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
        assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
        let roles: Vec<&str> =
            body["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"], "roles alternate");
        assert_eq!(body["messages"][1]["content"][0], thinking, "thinking passed back first, unchanged");
        assert_eq!(body["messages"][1]["content"][1]["type"], "tool_use");
        assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "tu_1");
        assert_eq!(body["messages"][2]["content"][1]["type"], "text", "the arrival shares the user turn");
        assert_eq!(body["messages"][3]["content"][1]["input"], json!({}), "unparsable input becomes an empty object");
        assert_eq!(body["messages"][4]["content"][0]["is_error"], true);
    }

    #[test]
    fn thinking_is_requested_and_a_prefill_is_then_not_sent() {
        let conversation = vec![Message::System("s".into()), Message::User("u".into())];
        let settings = Settings { thinking_budget: Some(2048), ..Settings::default() };
        let body = request("m", &conversation, &[], &settings, Some("I will"));
        assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 2048}));
        assert_eq!(body["messages"].as_array().unwrap().len(), 1, "no prefill with extended thinking");
    }

    #[test]
    fn a_prefill_is_a_trailing_assistant_message() {
        let conversation = vec![Message::System("s".into()), Message::User("u".into())];
        let body = request("m", &conversation, &[], &Settings::default(), Some("I will"));
        let last = body["messages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last, json!({"role": "assistant", "content": [{"type": "text", "text": "I will"}]}));
    }

    #[test]
    fn reads_tool_use_thinking_and_stops() {
        let reply = parse(r#"{"id":"msg_1","type":"message","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"text","text":"Reading."},{"type":"tool_use","id":"tu_9","name":"read_email","input":{"email_id":"m002"}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7}}"#).unwrap();
        assert_eq!(reply.stop, None);
        assert_eq!(reply.output.text, "Reading.");
        assert_eq!(reply.output.tool_calls[0].arguments_raw, "{\"email_id\":\"m002\"}");
        assert_eq!(reply.output.meta.reasoning.len(), 1);
        let stop = |b: &str| parse(b).unwrap().stop;
        assert_eq!(
            stop(r#"{"content":[{"type":"text","text":"No."}],"stop_reason":"refusal"}"#),
            Some(TargetStop::Refusal)
        );
        assert_eq!(
            stop(r#"{"content":[{"type":"text","text":"Half"}],"stop_reason":"max_tokens"}"#),
            Some(TargetStop::MaxTokens)
        );
        assert_eq!(stop(r#"{"content":[],"stop_reason":"end_turn"}"#), Some(TargetStop::Empty));
        assert_eq!(stop(r#"{"content":[{"type":"text","text":"Fine."}],"stop_reason":"end_turn"}"#), None);
    }
}
