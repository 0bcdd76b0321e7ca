//! Token usage as providers report it: summed without wrapping, and checked for counts
//! that cannot be true (a provider fault, never 0 tokens and $0).

use serde::Serialize;
use serde_json::Value as Json;

/// Token counts summed over the replies of an episode, as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Tokens {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Completion tokens, reasoning included.
    pub output: u64,
}

impl Tokens {
    /// Read one reply's `usage`: OpenAI Chat (`prompt_tokens`, `completion_tokens`),
    /// OpenAI Responses and Anthropic (`input_tokens`, `output_tokens`; Anthropic counts
    /// cache reads and writes apart, so they are added back).
    /// Sums saturate: no count wraps to a small number. (A reply whose usage is not
    /// possible at all is refused by the target first: see [`implausible_usage`].)
    pub fn from_usage(usage: &Json) -> Tokens {
        let n = |k: &str| usage.get(k).and_then(Json::as_u64).unwrap_or(0);
        Tokens {
            input: n("prompt_tokens")
                .saturating_add(n("input_tokens"))
                .saturating_add(n("cache_read_input_tokens"))
                .saturating_add(n("cache_creation_input_tokens")),
            output: n("completion_tokens").saturating_add(n("output_tokens")),
        }
    }

    pub fn add(&mut self, other: Tokens) {
        self.input = self.input.saturating_add(other.input);
        self.output = self.output.saturating_add(other.output);
    }
}

/// The most tokens one reply may report in one count before it is taken for a fault.
pub const MAX_REPLY_TOKENS: u64 = 100_000_000;

/// Why a reply's `usage` cannot be true, if it cannot: a count that is negative, not a
/// whole number, or beyond [`MAX_REPLY_TOKENS`]. Such a reply is a provider fault, never
/// silently counted as 0 tokens and $0.
pub fn implausible_usage(usage: &Json) -> Option<String> {
    const COUNTS: [&str; 6] = [
        "prompt_tokens",
        "completion_tokens",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ];
    COUNTS.iter().find_map(|k| {
        let v = usage.get(*k).filter(|v| !v.is_null())?;
        match v.as_u64() {
            Some(n) if n <= MAX_REPLY_TOKENS => None,
            _ => Some(format!("the provider reported impossible usage: `{k}` = {v}")),
        }
    })
}
