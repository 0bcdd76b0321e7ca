//! The structural rules each provider's API enforces on a request body, as far as a
//! request can break them: a model, tools with object parameters, roles in the order
//! the API wants, and every tool call answered by its result before the conversation
//! goes on. A request that breaks one is refused by the real API, so the request
//! builders here are tested against these rules, and so is every request the fake
//! providers of the command-line tests receive.

use serde_json::Value as Json;

fn parse(body: &str) -> Result<Json, String> {
    serde_json::from_str(body).map_err(|e| format!("body is not JSON: {e}"))
}

/// OpenAI Chat Completions.
pub fn chat(body: &str) -> Result<(), String> {
    let req = parse(body)?;
    if !req["model"].is_string() {
        return Err("no model".into());
    }
    for t in req["tools"].as_array().into_iter().flatten() {
        if t["type"] != "function"
            || !t["function"]["name"].is_string()
            || t["function"]["parameters"]["type"] != "object"
        {
            return Err(format!("malformed tool {t}"));
        }
    }
    let messages = req["messages"].as_array().ok_or("no messages")?;
    if messages.first().map(|m| &m["role"]) != Some(&Json::from("system")) {
        return Err("the first message is not the system prompt".into());
    }
    let mut open: Vec<String> = Vec::new();
    for m in messages {
        let role = m["role"].as_str().ok_or("a message without a role")?;
        if !open.is_empty() && role != "tool" {
            return Err(format!("tool calls {open:?} have no results before a {role} message"));
        }
        match role {
            "system" | "user" => {
                if !m["content"].is_string() {
                    return Err(format!("{role} content is not a string"));
                }
            }
            "assistant" => {
                for c in m["tool_calls"].as_array().into_iter().flatten() {
                    c["function"]["arguments"].as_str().ok_or("tool call arguments are not a string")?;
                    let id = c["id"].as_str().filter(|id| !id.is_empty()).ok_or("a tool call without an id")?;
                    if open.iter().any(|o| o == id) {
                        return Err(format!("two tool calls with id {id}"));
                    }
                    open.push(id.to_string());
                }
            }
            "tool" => {
                let id = m["tool_call_id"].as_str().ok_or("a tool message without tool_call_id")?;
                let i = open.iter().position(|o| o == id).ok_or(format!("tool result for unknown call {id}"))?;
                open.remove(i);
            }
            other => return Err(format!("unknown role {other}")),
        }
    }
    if open.is_empty() { Ok(()) } else { Err(format!("tool calls {open:?} have no results")) }
}

/// Anthropic Messages.
pub fn anthropic(body: &str) -> Result<(), String> {
    let req = parse(body)?;
    if !req["model"].is_string() || !req["max_tokens"].is_u64() {
        return Err("no model or max_tokens".into());
    }
    let messages = req["messages"].as_array().ok_or("no messages")?;
    if messages.first().map(|m| &m["role"]) != Some(&Json::from("user")) {
        return Err("the first message is not the user's".into());
    }
    let mut open: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if i > 0 && messages[i - 1]["role"] == m["role"] {
            return Err("roles do not alternate".into());
        }
        let blocks = m["content"].as_array().ok_or("content is not a list of blocks")?;
        if m["role"] == "user" && !open.is_empty() {
            for id in &open {
                if !blocks.iter().any(|b| b["type"] == "tool_result" && b["tool_use_id"] == *id.as_str()) {
                    return Err(format!("tool_use {id} has no tool_result in the next user turn"));
                }
            }
            open.clear();
        }
        // Tool results open a user turn: text after them, never before.
        if m["role"] == "user"
            && let Some(late) =
                blocks.iter().skip_while(|b| b["type"] == "tool_result").find(|b| b["type"] == "tool_result")
        {
            return Err(format!("tool_result {} follows other content in its user turn", late["tool_use_id"]));
        }
        for b in blocks {
            match b["type"].as_str() {
                Some("tool_use") if m["role"] == "assistant" => {
                    open.push(b["id"].as_str().ok_or("tool_use without id")?.to_string())
                }
                Some("tool_result") if m["role"] != "user" => return Err("tool_result outside a user turn".into()),
                Some(_) => {}
                None => return Err("a block without a type".into()),
            }
        }
    }
    Ok(())
}

/// OpenAI Responses.
pub fn responses(body: &str) -> Result<(), String> {
    let req = parse(body)?;
    if !req["model"].is_string() || !req["instructions"].is_string() {
        return Err("no model or instructions".into());
    }
    let mut open: Vec<String> = Vec::new();
    for item in req["input"].as_array().ok_or("no input")? {
        match (item["type"].as_str(), item["role"].as_str()) {
            (Some("function_call"), _) => {
                if !item["arguments"].is_string() {
                    return Err("function_call arguments are not a string".into());
                }
                open.push(item["call_id"].as_str().ok_or("function_call without call_id")?.to_string());
            }
            (Some("function_call_output"), _) => {
                let id = item["call_id"].as_str().ok_or("output without call_id")?;
                let i = open.iter().position(|o| o == id).ok_or(format!("output for unknown call {id}"))?;
                open.remove(i);
            }
            (Some("reasoning"), _) => {}
            (None, Some("user" | "assistant")) => {
                if !open.is_empty() {
                    return Err(format!("calls {open:?} have no output before the next message"));
                }
            }
            _ => return Err(format!("unknown input item {item}")),
        }
    }
    if open.is_empty() { Ok(()) } else { Err(format!("calls {open:?} have no output")) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use terrarium_core::conversation::Message;
    use terrarium_core::transcript::ToolCall;

    use super::*;
    use crate::providers::Settings;

    fn call(id: &str, name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments_raw: args.into(),
            arguments: serde_json::from_str(args).ok(),
        }
    }

    /// A conversation with everything a request must carry through: several calls in
    /// one turn (one with malformed arguments), a failed call, text between turns,
    /// reasoning items, and a user turn after tool results.
    fn conversation() -> Vec<Message> {
        vec![
            Message::System("You are the assistant.".into()),
            Message::User("Please check the inbox.".into()),
            Message::Assistant {
                text: "Looking.".into(),
                tool_calls: vec![call("c1", "list_emails", "{}"), call("c2", "read_email", "{\"email_id\": \"m001\"}")],
                reasoning: vec![json!({"type": "reasoning", "id": "rs_1", "summary": []})],
            },
            Message::Tool { call_id: "c1".into(), name: "list_emails".into(), content: "m001".into(), ok: true },
            Message::Tool { call_id: "c2".into(), name: "read_email".into(), content: "Hello".into(), ok: true },
            Message::User("New email: m002".into()),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![call("c3", "send_email", "{to: x")],
                reasoning: vec![],
            },
            Message::Tool {
                call_id: "c3".into(),
                name: "send_email".into(),
                content: "Error: not JSON".into(),
                ok: false,
            },
            Message::Assistant { text: "Done.".into(), tool_calls: vec![], reasoning: vec![] },
            Message::User("Anything else?".into()),
        ]
    }

    fn schemas() -> Vec<Json> {
        ["list_emails", "read_email", "send_email"]
            .iter()
            .map(|n| json!({"name": n, "description": "A tool.", "parameters": {"type": "object", "properties": {}}}))
            .collect()
    }

    #[test]
    fn every_provider_builds_requests_its_api_accepts() {
        let (c, s, settings) = (conversation(), schemas(), Settings::default());
        let chat_body = serde_json::to_string(&crate::providers::openai_chat::request("m", &c, &s, &settings)).unwrap();
        assert_eq!(chat(&chat_body), Ok(()), "{chat_body}");
        let anthropic_body = crate::providers::anthropic::request("m", &c, &s, &settings, None).to_string();
        assert_eq!(anthropic(&anthropic_body), Ok(()), "{anthropic_body}");
        let responses_body = crate::providers::openai_responses::request("m", &c, &s, &settings).to_string();
        assert_eq!(responses(&responses_body), Ok(()), "{responses_body}");
        // Each prefix of the conversation that ends where a request is sent, too.
        for end in [2, 5, 6, 8, 10] {
            let part = &c[..end];
            let body =
                serde_json::to_string(&crate::providers::openai_chat::request("m", part, &s, &settings)).unwrap();
            assert_eq!(chat(&body), Ok(()), "{end}: {body}");
            let body = crate::providers::anthropic::request("m", part, &s, &settings, None).to_string();
            assert_eq!(anthropic(&body), Ok(()), "{end}: {body}");
            let body = crate::providers::openai_responses::request("m", part, &s, &settings).to_string();
            assert_eq!(responses(&body), Ok(()), "{end}: {body}");
        }
    }

    #[test]
    fn the_rules_reject_what_a_real_api_refuses() {
        let r_ok = json!({"model": "m", "instructions": "s", "input": [
            {"role": "user", "content": "u"},
            {"type": "function_call", "call_id": "c1", "name": "t", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "r"}
        ]});
        assert_eq!(responses(&r_ok.to_string()), Ok(()));
        let mut orphan = r_ok.clone();
        orphan["input"][2]["call_id"] = "c2".into();
        assert!(responses(&orphan.to_string()).is_err());
        let mut unanswered = r_ok.clone();
        unanswered["input"].as_array_mut().unwrap().pop();
        assert!(responses(&unanswered.to_string()).is_err());

        let ok = json!({"model": "m", "messages": [
            {"role": "system", "content": "s"}, {"role": "user", "content": "u"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "r"}
        ]});
        assert_eq!(chat(&ok.to_string()), Ok(()));
        let broken = |f: &dyn Fn(&mut Json)| {
            let mut v = ok.clone();
            f(&mut v);
            v.to_string()
        };
        let rejected = [
            broken(&|v| v["messages"][3]["tool_call_id"] = "c9".into()),
            broken(&|v| {
                v["messages"].as_array_mut().unwrap().pop();
            }),
            broken(&|v| v["messages"][0]["role"] = "user".into()),
            broken(&|v| v["model"] = Json::Null),
            broken(&|v| v["messages"][2]["tool_calls"][0]["function"]["arguments"] = json!({})),
            broken(&|v| v["messages"][2]["tool_calls"][0]["id"] = "".into()),
            broken(&|v| v["tools"] = json!([{"type": "function", "function": {"name": "t"}}])),
            "{not json".to_string(),
        ];
        for body in &rejected {
            assert!(chat(body).is_err(), "accepted {body}");
        }

        let a_ok = json!({"model": "m", "max_tokens": 10, "messages": [
            {"role": "user", "content": [{"type": "text", "text": "u"}]},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}]}
        ]});
        assert_eq!(anthropic(&a_ok.to_string()), Ok(()));
        let a_broken = |f: &dyn Fn(&mut Json)| {
            let mut v = a_ok.clone();
            f(&mut v);
            v.to_string()
        };
        for body in [
            a_broken(&|v| v["messages"][2]["content"][0]["tool_use_id"] = "t2".into()),
            a_broken(&|v| v["messages"][1]["role"] = "user".into()),
            a_broken(&|v| v["max_tokens"] = Json::Null),
            a_broken(&|v| v["messages"][0]["content"] = "plain".into()),
            a_broken(&|v| {
                let text = json!({"type": "text", "text": "On my way."});
                v["messages"][2]["content"].as_array_mut().unwrap().insert(0, text);
            }),
        ] {
            assert!(anthropic(&body).is_err(), "accepted {body}");
        }
    }
}
