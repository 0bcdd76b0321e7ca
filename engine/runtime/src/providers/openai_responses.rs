//! The OpenAI Responses API: input items instead of messages, `function_call` and
//! `function_call_output` items linked by `call_id`, and reasoning items passed back
//! verbatim on later turns, as the API documents for reasoning models (scaffolds that
//! drop them disadvantage those models). Requests are stateless (`store: false`), with
//! encrypted reasoning content included so it can be passed back, and ask reasoning
//! models for summaries of their reasoning (`reasoning.summary`), which are recorded as
//! visible reasoning for judges and `eval_aware` to read.

use serde_json::{Value as Json, json};
use terrarium_core::conversation::Message;
use terrarium_core::transcript::{OutputMeta, TargetOutput, ToolCall};

use super::{ProviderError, Reply, Settings, TargetStop};

/// The request body for the next turn of `conversation`.
pub fn request(model: &str, conversation: &[Message], tool_schemas: &[Json], settings: &Settings) -> Json {
    let mut instructions = String::new();
    let mut input = Vec::new();
    for m in conversation {
        match m {
            Message::System(text) => instructions = text.clone(),
            Message::User(text) => input.push(json!({"role": "user", "content": text})),
            Message::Assistant { text, tool_calls, reasoning } => {
                input.extend(reasoning.iter().cloned());
                if !text.is_empty() {
                    input.push(json!({"role": "assistant", "content": text}));
                }
                for c in tool_calls {
                    input.push(
                        json!({"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments_raw}),
                    );
                }
            }
            Message::Tool { call_id, content, .. } => {
                input.push(json!({"type": "function_call_output", "call_id": call_id, "output": content}))
            }
        }
    }
    let mut body = json!({
        "model": model,
        "instructions": instructions,
        "input": input,
        "store": false,
        "include": ["reasoning.encrypted_content"],
    });
    if !tool_schemas.is_empty() {
        body["tools"] = tool_schemas
            .iter()
            .map(|s| json!({"type": "function", "name": s["name"], "description": s["description"], "parameters": s["parameters"]}))
            .collect();
    }
    if let Some(t) = settings.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(p) = settings.top_p {
        body["top_p"] = json!(p);
    }
    if let Some(n) = settings.max_tokens {
        body["max_output_tokens"] = json!(n);
    }
    let mut reasoning = serde_json::Map::new();
    if let Some(effort) = &settings.reasoning_effort {
        reasoning.insert("effort".into(), json!(effort));
    }
    if let Some(summary) = settings.summary_requested() {
        reasoning.insert("summary".into(), json!(summary));
    }
    if !reasoning.is_empty() {
        body["reasoning"] = Json::Object(reasoning);
    }
    body
}

/// Turn a response body into the target's output.
pub fn parse(body: &str, turn: u32) -> Result<Reply, ProviderError> {
    let body = super::lone_surrogates_replaced(body);
    let response: Json = serde_json::from_str(&body).map_err(|e| ProviderError::NotJson(e.to_string()))?;
    let items = response.get("output").and_then(Json::as_array).ok_or(ProviderError::NoContent("output"))?;
    let (mut text, mut refusal) = (String::new(), None);
    let (mut tool_calls, mut reasoning) = (Vec::new(), Vec::new());
    for item in items {
        match item.get("type").and_then(Json::as_str) {
            Some("reasoning") => reasoning.push(item.clone()),
            Some("message") => {
                for part in item.get("content").and_then(Json::as_array).into_iter().flatten() {
                    match part.get("type").and_then(Json::as_str) {
                        Some("output_text") => {
                            text.push_str(part.get("text").and_then(Json::as_str).unwrap_or_default())
                        }
                        Some("refusal") => refusal = part.get("refusal").and_then(Json::as_str).map(String::from),
                        _ => {}
                    }
                }
            }
            Some("function_call") => {
                let raw = match item.get("arguments") {
                    Some(Json::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                let id = item.get("call_id").and_then(Json::as_str).filter(|s| !s.is_empty());
                tool_calls.push(ToolCall {
                    id: id.map_or_else(|| format!("call_{turn}_{}", tool_calls.len() + 1), String::from),
                    name: item.get("name").and_then(Json::as_str).unwrap_or_default().to_string(),
                    arguments: serde_json::from_str(&raw).ok(),
                    arguments_raw: raw,
                });
            }
            _ => {}
        }
    }
    let incomplete = response.pointer("/incomplete_details/reason").and_then(Json::as_str);
    let stop = match (incomplete, &refusal) {
        (Some("content_filter"), _) => Some(TargetStop::ContentFilter),
        _ if !tool_calls.is_empty() => None,
        (_, Some(_)) => Some(TargetStop::Refusal),
        (Some("max_output_tokens"), _) => Some(TargetStop::MaxTokens),
        _ if text.trim().is_empty() => Some(TargetStop::Empty),
        _ => None,
    };
    let meta = OutputMeta {
        response_id: response.get("id").and_then(Json::as_str).map(String::from),
        finish_reason: incomplete.or_else(|| response.get("status").and_then(Json::as_str)).map(String::from),
        usage: response.get("usage").cloned(),
        reasoning,
        refusal,
        ..OutputMeta::default()
    };
    Ok(Reply { output: TargetOutput { text, tool_calls, meta }, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_items_go_back_verbatim_before_the_calls_they_led_to() {
        let reasoning = json!({"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "opaque"});
        let conversation = vec![
            Message::System("sys".into()),
            Message::User("start".into()),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_a".into(),
                    name: "list_emails".into(),
                    arguments_raw: "{}".into(),
                    arguments: None,
                }],
                reasoning: vec![reasoning.clone()],
            },
            Message::Tool { call_id: "call_a".into(), name: "list_emails".into(), content: "Mailbox".into(), ok: true },
        ];
        let schema = json!({"name": "list_emails", "description": "d", "parameters": {"type": "object"}});
        let body =
            request("o-test", &conversation, &[schema], &Settings { max_tokens: Some(99), ..Settings::default() });
        assert_eq!(body["instructions"], "sys");
        assert_eq!(body["store"], false);
        assert_eq!(body["max_output_tokens"], 99);
        assert_eq!(body["tools"][0]["name"], "list_emails");
        let input = body["input"].as_array().unwrap();
        assert_eq!(input[1], reasoning);
        assert_eq!(input[2]["type"], "function_call");
        assert_eq!(input[3], json!({"type": "function_call_output", "call_id": "call_a", "output": "Mailbox"}));
    }

    #[test]
    fn reasoning_models_are_asked_for_summaries_unless_told_not_to() {
        use crate::providers::http::Provider;
        let ask = |model: &str, settings: Settings| {
            let settings = settings.for_model(Provider::OpenAiResponses, model);
            request(model, &[Message::System("s".into())], &[], &settings).get("reasoning").cloned()
        };
        for model in ["o3", "o4-mini", "o1-preview", "gpt-5", "gpt-5.1-codex", "openai/o3-mini"] {
            assert_eq!(ask(model, Settings::default()), Some(json!({"summary": "auto"})), "{model}");
        }
        for model in ["gpt-4.1", "gpt-4o", "omni-mini", "gpt-3.5-turbo"] {
            assert_eq!(ask(model, Settings::default()), None, "{model} refuses reasoning parameters");
        }
        let effort = Settings { reasoning_effort: Some("high".into()), ..Settings::default() };
        assert_eq!(ask("my-finetune", effort), Some(json!({"effort": "high", "summary": "auto"})));
        let none = Settings { reasoning_summary: Some("none".into()), ..Settings::default() };
        assert_eq!(ask("o3", none), None, "`none` asks for no summary");
        let detailed = Settings { reasoning_summary: Some("detailed".into()), ..Settings::default() };
        assert_eq!(ask("o3", detailed), Some(json!({"summary": "detailed"})));
        // Other providers are never given a summary setting.
        let chat = Settings::default().for_model(Provider::OpenAiChat, "o3");
        assert_eq!(chat.reasoning_summary, None);
    }

    #[test]
    fn reads_calls_reasoning_text_and_stops() {
        let reply = parse(
            r#"{"id":"resp_1","status":"completed","output":[{"type":"reasoning","id":"rs_2","summary":[]},{"type":"function_call","id":"fc_1","call_id":"call_z","name":"read_email","arguments":"{\"email_id\":\"m001\"}"}],"usage":{"input_tokens":3}}"#,
            1,
        )
        .unwrap();
        assert_eq!(reply.stop, None);
        assert_eq!(reply.output.tool_calls[0].id, "call_z");
        assert_eq!(reply.output.meta.reasoning[0]["id"], "rs_2");
        let stop = |b: &str| parse(b, 1).unwrap().stop;
        assert_eq!(
            stop(r#"{"output":[{"type":"message","content":[{"type":"refusal","refusal":"No."}]}]}"#),
            Some(TargetStop::Refusal)
        );
        assert_eq!(
            stop(
                r#"{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[{"type":"message","content":[{"type":"output_text","text":"Hal"}]}]}"#
            ),
            Some(TargetStop::MaxTokens)
        );
        assert_eq!(stop(r#"{"output":[{"type":"message","content":[{"type":"output_text","text":"Done."}]}]}"#), None);
        assert_eq!(stop(r#"{"output":[]}"#), Some(TargetStop::Empty));
    }
}
