//! OpenAI Chat Completions (and OpenAI-compatible servers: vLLM, llama.cpp, Ollama)
//! with native function calling.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use terrarium_core::conversation::Message;
use terrarium_core::transcript::{OutputMeta, TargetOutput, ToolCall};

use super::{ProviderError, Reply, Settings, TargetStop};

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ChatTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    /// Always a string: some compatible servers reject `null` content on assistant
    /// messages that carry only tool calls, so those send `""`.
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ChatToolCall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: ChatFunctionCall,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatFunctionCall {
    pub name: String,
    /// The arguments exactly as the model wrote them.
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatTool {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: Json,
}

/// The request for the next turn of `conversation`. `tool_schemas` are the world's
/// (`view::tool_schemas`): `{name, description, parameters}` each.
pub fn request(model: &str, conversation: &[Message], tool_schemas: &[Json], settings: &Settings) -> ChatRequest {
    let messages = conversation
        .iter()
        .map(|m| match m {
            Message::System(text) => {
                ChatMessage { role: "system", content: text.clone(), tool_calls: Vec::new(), tool_call_id: None }
            }
            Message::User(text) => {
                ChatMessage { role: "user", content: text.clone(), tool_calls: Vec::new(), tool_call_id: None }
            }
            Message::Assistant { text, tool_calls, .. } => ChatMessage {
                role: "assistant",
                content: text.clone(),
                tool_calls: tool_calls
                    .iter()
                    .map(|c| ChatToolCall {
                        id: c.id.clone(),
                        kind: "function",
                        function: ChatFunctionCall { name: c.name.clone(), arguments: c.arguments_raw.clone() },
                    })
                    .collect(),
                tool_call_id: None,
            },
            Message::Tool { call_id, content, .. } => ChatMessage {
                role: "tool",
                content: content.clone(),
                tool_calls: Vec::new(),
                tool_call_id: Some(call_id.clone()),
            },
        })
        .collect();
    ChatRequest {
        model: model.to_string(),
        messages,
        tools: tool_schemas.iter().map(|s| ChatTool { kind: "function", function: s.clone() }).collect(),
        tool_choice: (!tool_schemas.is_empty()).then_some("auto"),
        temperature: settings.temperature,
        top_p: settings.top_p,
        max_tokens: settings.max_tokens,
        seed: settings.sampling_seed,
        reasoning_effort: settings.reasoning_effort.clone(),
    }
}

// The response, read tolerantly: every field optional, enums as open strings.

#[derive(Debug, Default, Deserialize)]
struct ChatResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "super::null_as_default")]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Json>,
}

#[derive(Debug, Default, Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<ResponseMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ResponseMessage {
    /// A string, an array of content parts, or null.
    #[serde(default)]
    content: Option<Json>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default, deserialize_with = "super::null_as_default")]
    tool_calls: Vec<ResponseToolCall>,
    /// Reasoning text some compatible servers return beside the content.
    #[serde(default)]
    reasoning_content: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ResponseToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<ResponseFunction>,
}

#[derive(Debug, Default, Deserialize)]
struct ResponseFunction {
    #[serde(default)]
    name: Option<String>,
    /// Normally a JSON string; some servers send the object itself.
    #[serde(default)]
    arguments: Option<Json>,
}

fn text_of(content: Option<Json>) -> String {
    match content {
        Some(Json::String(s)) => s,
        Some(Json::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Json::as_str).or_else(|| p.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        // A server that sends a bare number or boolean as the content said that much.
        Some(scalar @ (Json::Number(_) | Json::Bool(_))) => scalar.to_string(),
        _ => String::new(),
    }
}

/// Turn a response body into the target's output. `turn` numbers generated call ids
/// when a server omits them.
pub fn parse(body: &str, turn: u32) -> Result<Reply, ProviderError> {
    let body = super::lone_surrogates_replaced(body);
    let response: ChatResponse = serde_json::from_str(&body).map_err(|e| ProviderError::NotJson(e.to_string()))?;
    let choice = response.choices.into_iter().next().ok_or(ProviderError::NoContent("choices"))?;
    let message = choice.message.unwrap_or_default();
    let text = text_of(message.content);
    let tool_calls: Vec<ToolCall> = message
        .tool_calls
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let function = c.function.unwrap_or_default();
            let raw = match function.arguments {
                Some(Json::String(s)) => s,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            ToolCall {
                id: c.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{turn}_{}", i + 1)),
                name: function.name.unwrap_or_default(),
                arguments: serde_json::from_str(&raw).ok(),
                arguments_raw: raw,
            }
        })
        .collect();
    let finish = choice.finish_reason;
    let refusal = message.refusal.filter(|r| !r.trim().is_empty());
    let stop = match (finish.as_deref(), &refusal) {
        (Some("content_filter"), _) => Some(TargetStop::ContentFilter),
        _ if !tool_calls.is_empty() => None,
        (_, Some(_)) => Some(TargetStop::Refusal),
        (Some("length"), _) => Some(TargetStop::MaxTokens),
        _ if text.trim().is_empty() => Some(TargetStop::Empty),
        _ => None,
    };
    let meta = OutputMeta {
        response_id: response.id,
        finish_reason: finish,
        usage: response.usage,
        refusal,
        reasoning: message.reasoning_content.map(Json::String).into_iter().collect(),
        ..OutputMeta::default()
    };
    Ok(Reply { output: TargetOutput { text, tool_calls, meta }, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tool_calls_keeping_the_raw_arguments() {
        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","system_fingerprint":"x","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_a","type":"function","function":{"name":"read_email","arguments":"{\"email_id\": \"m004\"}"}}]},"finish_reason":"tool_calls","logprobs":null}],"usage":{"prompt_tokens":10,"completion_tokens":5}}"#;
        let reply = parse(body, 1).unwrap();
        assert_eq!(reply.stop, None);
        let call = &reply.output.tool_calls[0];
        assert_eq!((call.id.as_str(), call.name.as_str()), ("call_a", "read_email"));
        assert_eq!(call.arguments_raw, "{\"email_id\": \"m004\"}", "kept byte for byte");
        assert_eq!(reply.output.meta.response_id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(reply.output.meta.usage.as_ref().unwrap()["completion_tokens"], 5);
    }

    #[test]
    fn tolerates_what_compatible_servers_send() {
        // Unknown finish reason, object arguments, no call id, content parts, reasoning.
        let body = r#"{"choices":[{"message":{"content":[{"type":"text","text":"Let me look."}],"reasoning_content":"thinking","tool_calls":[{"function":{"name":"list_emails","arguments":{}}}]},"finish_reason":"eos_token"}]}"#;
        let reply = parse(body, 3).unwrap();
        assert_eq!(reply.output.text, "Let me look.");
        assert_eq!(reply.output.tool_calls[0].id, "call_3_1");
        assert_eq!(reply.output.tool_calls[0].arguments_raw, "{}");
        assert_eq!(reply.output.meta.reasoning, vec![Json::String("thinking".into())]);
        assert_eq!(reply.output.meta.finish_reason.as_deref(), Some("eos_token"));
        assert_eq!(reply.stop, None);
    }

    #[test]
    fn null_lists_read_as_empty() {
        let body =
            r#"{"choices":[{"message":{"content":"Done.","tool_calls":null},"finish_reason":"stop"}],"usage":null}"#;
        let reply = parse(body, 1).unwrap();
        assert!(reply.output.tool_calls.is_empty());
        assert_eq!((reply.output.text.as_str(), reply.stop), ("Done.", None));
        assert_eq!(parse(r#"{"choices":null}"#, 1), Err(ProviderError::NoContent("choices")));
    }

    #[test]
    fn malformed_arguments_are_kept_for_the_tool_to_answer() {
        let body = r#"{"choices":[{"message":{"tool_calls":[{"id":"c","function":{"name":"send_email","arguments":"{to: nobody"}}]},"finish_reason":"tool_calls"}]}"#;
        let call = &parse(body, 1).unwrap().output.tool_calls[0];
        assert_eq!(call.arguments_raw, "{to: nobody");
        assert_eq!(call.arguments, None);
    }

    #[test]
    fn refusals_empty_replies_filters_and_truncation_are_distinct_stops() {
        let stop = |body: &str| parse(body, 1).unwrap().stop;
        assert_eq!(
            stop(
                r#"{"choices":[{"message":{"content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#
            ),
            Some(TargetStop::Refusal)
        );
        assert_eq!(
            stop(r#"{"choices":[{"message":{"content":"  "},"finish_reason":"stop"}]}"#),
            Some(TargetStop::Empty)
        );
        assert_eq!(
            stop(r#"{"choices":[{"message":{"content":"Partial"},"finish_reason":"content_filter"}]}"#),
            Some(TargetStop::ContentFilter)
        );
        assert_eq!(
            stop(r#"{"choices":[{"message":{"content":"A long ans"},"finish_reason":"length"}]}"#),
            Some(TargetStop::MaxTokens)
        );
        assert_eq!(stop(r#"{"choices":[{"message":{"content":"Done."},"finish_reason":"stop"}]}"#), None);
        assert_eq!(
            parse("<html>busy</html>", 1).unwrap_err().to_string().split(':').next(),
            Some("the response is not JSON")
        );
        assert_eq!(parse(r#"{"choices":[]}"#, 1), Err(ProviderError::NoContent("choices")));
    }
}
