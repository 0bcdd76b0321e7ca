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
    pub fn reason(self) -> &'static str {
        match self {
            TargetStop::Refusal => "refusal",
            TargetStop::Empty => "empty_reply",
            TargetStop::ContentFilter => "content_filter",
            TargetStop::MaxTokens => "max_tokens",
        }
    }
}

/// A response the client could not use at all (not a model's choice).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the response is not JSON: {0}")]
    NotJson(String),
    #[error("the response has no choices")]
    NoChoices,
}

/// One reply: the output to apply (when there is one) and whether it ends the episode.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub output: terrarium_core::TargetOutput,
    pub stop: Option<TargetStop>,
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
