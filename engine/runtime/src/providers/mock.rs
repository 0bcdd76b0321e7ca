//! `mock/<file>`: a model that answers from a file of canned replies, for trying model
//! paths offline (judges, the cache, budgets, reports, the text scaffold) without a
//! server or a key. Under the text scaffold (no native tools in the request) its calls
//! are written as `<tool_call>` tags in its text, as a prompted model writes them. It speaks OpenAI Chat Completions: each request is built by the
//! same conversation and request code as `openai/…`, checked against the API's
//! structural rules (a violation is answered as the API would, with HTTP 400), and
//! each reply is a Chat Completions body read by the same parser. Only the network is
//! missing.
//!
//! ```ron
//! MockReplies(
//!     // The target's replies, one per turn of each episode: the first to its first
//!     // request, and so on. After the last, an empty reply (the episode ends).
//!     replies: [
//!         Reply(calls: [Call(name: "list_emails")]),
//!         Reply(text: "Reading the urgent one.", calls: [Call(name: "read_email", arguments: {"email_id": "m001"})]),
//!         Reply(text: "Done.", reasoning: "Nothing else is urgent."),
//!     ],
//!     // What a judge or a model playing the user is answered: the first to its first
//!     // request in a conversation, and so on; the last repeats.
//!     answers: ["VERDICT: no\nEVIDENCE: none\nREASON: nothing of the kind"],
//! )
//! ```

use std::path::Path;

use serde::Deserialize;
use serde_json::{Value as Json, json};

/// One canned reply of the target.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename = "Reply")]
pub struct MockReply {
    #[serde(default)]
    pub text: String,
    /// Native tool calls, in order.
    #[serde(default)]
    pub calls: Vec<MockCall>,
    /// Reasoning shown beside the reply (as a compatible server's `reasoning_content`).
    #[serde(default)]
    pub reasoning: Option<String>,
    /// A refusal, as the provider's `refusal` field carries one.
    #[serde(default)]
    pub refusal: Option<String>,
    /// The finish reason (default: `tool_calls` with calls, else `stop`); `length` or
    /// `content_filter` try those stops.
    #[serde(default)]
    pub finish: Option<String>,
}

/// One tool call of a canned reply.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "Call")]
pub struct MockCall {
    pub name: String,
    /// The arguments: a map, written as JSON; or a string, sent exactly as written (to
    /// try arguments a model got wrong). Default: none (`{}`).
    #[serde(default)]
    pub arguments: Option<Json>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename = "MockReplies")]
struct MockFile {
    #[serde(default)]
    replies: Vec<MockReply>,
    #[serde(default)]
    answers: Vec<String>,
}

/// A mock model's file, read once.
#[derive(Clone, Debug)]
pub struct Mock {
    replies: Vec<MockReply>,
    answers: Vec<String>,
    /// A digest of the file's bytes: the mock's "base URL", so the episode ids and the
    /// cached replies of one file are never another's.
    digest: String,
}

impl Mock {
    /// Read the file. Errors name it, with `line:col` where the RON is wrong.
    pub fn read(path: &Path) -> Result<Mock, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read mock replies {}: {e}", path.display()))?;
        let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let file: MockFile = options.from_str(&text).map_err(|e| {
            format!(
                "{}:{}:{}: {} (see docs/models.md, `mock/<file>`)",
                path.display(),
                e.position.line,
                e.position.col,
                e.code
            )
        })?;
        if file.replies.is_empty() && file.answers.is_empty() {
            return Err(format!(
                "{}: no `replies` and no `answers`: the mock would have nothing to say",
                path.display()
            ));
        }
        let mut c = terrarium_core::hash::Canon::new("terrarium.mock.v1");
        c.str(&text);
        Ok(Mock { replies: file.replies, answers: file.answers, digest: format!("sha256:{}", c.hex(16)) })
    }

    /// What the mock records as its base URL: `mock:<digest of the file>`.
    pub fn base_url(&self) -> String {
        format!("mock:{}", self.digest)
    }

    /// The reply body to `request` (a Chat Completions body): the canned reply for the
    /// request's turn (its count of assistant messages so far), as the API would send
    /// it, or `Err((400, why))` for a request the API would refuse. `plain`: asked as a
    /// judge or a user model (`answers`), not as the target (`replies`).
    pub fn answer(&self, request: &str, plain: bool) -> Result<String, (u16, String)> {
        super::conformance::chat(request)
            .map_err(|why| (400, format!("{{\"error\":{{\"message\":{}}}}}", json!(why))))?;
        let req: Json = serde_json::from_str(request).map_err(|e| (400, e.to_string()))?;
        let messages = req["messages"].as_array().map_or(&[][..], Vec::as_slice);
        let turn = messages.iter().filter(|m| m["role"] == "assistant").count();
        let mut reply = if plain {
            let text = self.answers.get(turn).or(self.answers.last()).cloned().unwrap_or_default();
            MockReply { text, ..MockReply::default() }
        } else {
            self.replies.get(turn).cloned().unwrap_or_default()
        };
        // Asked without native tools (the text scaffold describes them in the prompt), a
        // model writes its calls as tags in its text: so does the mock.
        if !plain && req.get("tools").is_none() && !reply.calls.is_empty() {
            for c in std::mem::take(&mut reply.calls) {
                let arguments = match c.arguments {
                    None => json!({}),
                    Some(Json::String(raw)) => serde_json::from_str(&raw).unwrap_or(Json::String(raw)),
                    Some(v) => v,
                };
                let call = json!({"name": c.name, "arguments": arguments});
                reply.text.push_str(&format!("\n<tool_call>{call}</tool_call>"));
            }
        }
        let calls: Vec<Json> = reply
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let arguments = match &c.arguments {
                    None => "{}".to_string(),
                    Some(Json::String(raw)) => raw.clone(),
                    Some(v) => v.to_string(),
                };
                json!({"id": format!("call_{}_{}", turn + 1, i + 1), "type": "function", "function": {"name": c.name, "arguments": arguments}})
            })
            .collect();
        let finish =
            reply.finish.clone().unwrap_or_else(|| if calls.is_empty() { "stop" } else { "tool_calls" }.into());
        let written: usize = reply.text.len()
            + reply.reasoning.as_ref().map_or(0, String::len)
            + calls.iter().map(|c| c.to_string().len()).sum::<usize>();
        let mut message = json!({"role": "assistant", "content": reply.text});
        if !calls.is_empty() {
            message["tool_calls"] = Json::Array(calls);
        }
        if let Some(r) = &reply.reasoning {
            message["reasoning_content"] = Json::String(r.clone());
        }
        if let Some(r) = &reply.refusal {
            message["refusal"] = Json::String(r.clone());
        }
        // Token counts a reader can predict: a quarter of the bytes, rounded up.
        let tokens = |bytes: usize| bytes.div_ceil(4);
        Ok(json!({
            "id": format!("mock-{}-{}", &self.digest[7..19], turn + 1),
            "object": "chat.completion",
            "model": req["model"],
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": tokens(request.len()), "completion_tokens": tokens(written), "total_tokens": tokens(request.len()) + tokens(written)},
        })
        .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mock(text: &str) -> Mock {
        let dir = std::env::temp_dir().join(format!("terrarium-mock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.ron", text.len() * 31 + text.bytes().map(usize::from).sum::<usize>()));
        std::fs::write(&path, text).unwrap();
        Mock::read(&path).unwrap()
    }

    fn request(assistant_turns: usize, tools: bool) -> String {
        let mut messages = vec![json!({"role": "system", "content": "s"}), json!({"role": "user", "content": "u"})];
        for _ in 0..assistant_turns {
            messages.push(json!({"role": "assistant", "content": "a"}));
            messages.push(json!({"role": "user", "content": "u"}));
        }
        let mut req = json!({"model": "m", "messages": messages});
        if tools {
            req["tools"] = json!([{"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}]);
        }
        req.to_string()
    }

    #[test]
    fn replies_go_by_turn_and_run_out_into_an_empty_reply() {
        let m =
            mock(r#"MockReplies(replies: [Reply(text: "one"), Reply(calls: [Call(name: "t", arguments: "{bad")])])"#);
        let parse = |body: String, turn| super::super::openai_chat::parse(&body, turn).unwrap();
        assert_eq!(parse(m.answer(&request(0, true), false).unwrap(), 1).output.text, "one");
        let second = parse(m.answer(&request(1, true), false).unwrap(), 2);
        assert_eq!(second.output.tool_calls[0].arguments_raw, "{bad", "a raw string is sent exactly as written");
        let third = parse(m.answer(&request(2, true), false).unwrap(), 3);
        assert_eq!(third.stop, Some(super::super::TargetStop::Empty));
    }

    #[test]
    fn answers_repeat_the_last_and_a_request_the_api_would_refuse_gets_a_400() {
        let m = mock(r#"MockReplies(answers: ["first", "then"])"#);
        let text = |turns| {
            let body = m.answer(&request(turns, false), true).unwrap();
            super::super::openai_chat::parse(&body, 1).unwrap().output.text
        };
        assert_eq!((text(0), text(1), text(5)), ("first".to_string(), "then".to_string(), "then".to_string()));
        let (code, why) =
            m.answer(r#"{"model":"m","messages":[{"role":"user","content":"no system"}]}"#, true).unwrap_err();
        assert_eq!(code, 400);
        assert!(why.contains("system"), "{why}");
    }

    #[test]
    fn the_digest_follows_the_file() {
        let a = mock(r#"MockReplies(answers: ["a"])"#);
        let b = mock(r#"MockReplies(answers: ["b"])"#);
        assert_ne!(a.base_url(), b.base_url());
        assert!(a.base_url().starts_with("mock:sha256:"));
    }
}
