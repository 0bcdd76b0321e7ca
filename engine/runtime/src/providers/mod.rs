//! Model providers: wire formats written by hand over serde, so the exact request and
//! response bytes are known (they matter for replay and caching) and servers that send
//! values a closed enum would reject are still understood.
//!
//! This module holds the pure part: building requests from the conversation and turning
//! responses into target outputs. Sending them (HTTP, retries, the cache) is separate.

pub mod anthropic;
pub mod budget;
pub mod cache;
pub mod conformance;
pub mod http;
pub mod mock;
pub mod openai_chat;
pub mod openai_responses;
pub mod retry;
pub mod scaffold;
pub mod usage;

use serde::{Deserialize, Deserializer, Serialize};

/// Sampling settings passed through to the provider and recorded in the transcript
/// header. `sampling_seed` is the provider's seed, distinct from the episode seed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_seed: Option<u64>,
    /// Reasoning effort for OpenAI reasoning models (`low`, `medium`, `high`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<String>,
    /// Extended-thinking budget in tokens for Anthropic models.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<u32>,
    /// Reasoning summaries asked of a reasoning model on the Responses API: `auto`,
    /// `concise`, `detailed`, or `none` (not asked). By default `auto` for reasoning
    /// models there (see [`Settings::for_model`]), so judges and `eval_aware` can read
    /// what the model reasoned, as they read Anthropic thinking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_summary: Option<String>,
}

/// The reasoning summaries a Responses request may ask for (`none`: ask for none).
pub const REASONING_SUMMARIES: [&str; 4] = ["auto", "concise", "detailed", "none"];

impl Settings {
    /// These settings as `model` on `provider` is asked with them: a reasoning model on
    /// the Responses API (an o-series or GPT-5 model by its name, or any model given a
    /// reasoning effort) is asked for reasoning summaries (`auto`) unless told otherwise.
    pub fn for_model(mut self, provider: http::Provider, model: &str) -> Self {
        if provider == http::Provider::OpenAiResponses
            && self.reasoning_summary.is_none()
            && (self.reasoning_effort.is_some() || is_reasoning_model(model))
        {
            self.reasoning_summary = Some("auto".into());
        }
        self
    }

    /// The summary to request, if any (`none` asks for none).
    pub fn summary_requested(&self) -> Option<&str> {
        self.reasoning_summary.as_deref().filter(|s| *s != "none")
    }
}

/// Whether `model` is one of OpenAI's reasoning models by its name: the o-series (`o1`,
/// `o3-mini`, `o4-mini`, …), GPT-5 and later, and Codex models. Others (gpt-4.1, gpt-4o)
/// refuse reasoning parameters.
pub fn is_reasoning_model(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let o_series = name.strip_prefix('o').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    let gpt = name.strip_prefix("gpt-").and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next());
    let gpt_reasoning = gpt.and_then(|major| major.parse::<u32>().ok()).is_some_and(|major| major >= 5);
    o_series || gpt_reasoning || name.contains("codex")
}

/// How tools reach the model: its provider's native tool calling (the default), or
/// described in the prompt and called by tags in the text. Written `native` or `text`
/// in sweep files, on the command line and in transcript headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", try_from = "String")]
pub enum Scaffold {
    #[default]
    Native,
    Text,
}

impl Scaffold {
    pub fn name(self) -> &'static str {
        match self {
            Scaffold::Native => "native",
            Scaffold::Text => "text",
        }
    }
}

impl std::fmt::Display for Scaffold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Scaffold {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl std::str::FromStr for Scaffold {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(Scaffold::Native),
            "text" => Ok(Scaffold::Text),
            other => Err(format!("a scaffold is `native` or `text`, not `{other}`")),
        }
    }
}

/// Why a reply ends the episode from the target's side, kept apart so a report can
/// tell "declined" from "did no harm".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetStop {
    /// The model refused (a refusal field, with no tool call).
    Refusal,
    /// The reply had neither text nor a tool call.
    Empty,
    /// The provider's content filter stopped the reply.
    ContentFilter,
    /// The reply was cut off at the token limit, with no tool call.
    MaxTokens,
}

impl TargetStop {
    /// The stop reason recorded in the transcript.
    pub fn reason(self) -> terrarium_core::stop::StopReason {
        use terrarium_core::stop::StopReason;
        match self {
            TargetStop::Refusal => StopReason::Refusal,
            TargetStop::Empty => StopReason::EmptyReply,
            TargetStop::ContentFilter => StopReason::ContentFilter,
            TargetStop::MaxTokens => StopReason::MaxTokens,
        }
    }
}

/// A response the client could not use at all (not a model's choice).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    /// The list a reply's content comes in is missing or empty: `choices` (Chat
    /// Completions), `content` (Anthropic), `output` (Responses).
    #[error("the response has no `{0}` list")]
    NoContent(&'static str),
}

/// One reply: the output to apply (when there is one) and whether it ends the episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub output: terrarium_core::TargetOutput,
    pub stop: Option<TargetStop>,
}

/// `body` with every `\\u` escape of a lone UTF-16 surrogate (a high one not followed by
/// a low one, or a low one alone) replaced by `\\ufffd`: JSON allows writing one, Rust
/// strings cannot hold one, and a model's text should not error its episode for it.
pub(crate) fn lone_surrogates_replaced(body: &str) -> std::borrow::Cow<'_, str> {
    if !body.contains("\\u") {
        return std::borrow::Cow::Borrowed(body);
    }
    let b = body.as_bytes();
    let unit = |at: usize| -> Option<u16> {
        if b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'u') {
            u16::from_str_radix(body.get(at + 2..at + 6)?, 16).ok()
        } else {
            None
        }
    };
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = unit(i) else {
            i += 2; // an escaped character: skip it whole (`\\\\` included)
            continue;
        };
        let high = (0xD800..0xDC00).contains(&u);
        let low = (0xDC00..0xE000).contains(&u);
        if high && unit(i + 6).is_some_and(|next| (0xDC00..0xE000).contains(&next)) {
            i += 12; // a proper pair
        } else if high || low {
            out.push_str(&body[copied..i]);
            out.push_str("\\ufffd");
            i += 6;
            copied = i;
        } else {
            i += 6;
        }
    }
    if copied == 0 {
        return std::borrow::Cow::Borrowed(body);
    }
    out.push_str(&body[copied..]);
    std::borrow::Cow::Owned(out)
}

/// Read a field that a server may send as `null` as its default (`"tool_calls": null`
/// is an empty list, not a malformed reply). For `#[serde(default, deserialize_with)]`.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogate_escapes_become_replacement_characters_and_nothing_else_moves() {
        let fixed = |s: &str| lone_surrogates_replaced(s).into_owned();
        assert_eq!(fixed(r#"{"a":"x\ud800y"}"#), r#"{"a":"x\ufffdy"}"#);
        assert_eq!(fixed(r#"{"a":"\udc00"}"#), r#"{"a":"\ufffd"}"#, "a low one alone");
        assert_eq!(fixed(r#"{"a":"\ud83d\ude00"}"#), r#"{"a":"\ud83d\ude00"}"#, "a proper pair stays");
        assert_eq!(fixed(r#"{"a":"\\ud800"}"#), r#"{"a":"\\ud800"}"#, "an escaped backslash, then text");
        assert_eq!(fixed(r#"{"a":"\u00e9\n"}"#), r#"{"a":"\u00e9\n"}"#);
        let reply = openai_chat::parse(r#"{"choices":[{"message":{"content":"ok \ud800 then"}}]}"#, 1).unwrap();
        assert_eq!(reply.output.text, "ok \u{fffd} then");
        let numeric = openai_chat::parse(r#"{"choices":[{"message":{"content":42}}]}"#, 1).unwrap();
        assert_eq!(numeric.output.text, "42", "a number the server sent is what it said");
        assert_eq!(anthropic::parse("{}").unwrap_err().to_string(), "the response has no `content` list");
        assert_eq!(openai_responses::parse("{}", 1).unwrap_err().to_string(), "the response has no `output` list");
    }
}
