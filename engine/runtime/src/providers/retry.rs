//! When to try a provider request again, and after how long: a pure decision, so every
//! case is tested without waiting. The HTTP client only sleeps for what it is told.

/// Bounded attempts with exponential backoff and jitter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 6, base_delay_ms: 1_000, max_delay_ms: 60_000 }
    }
}

/// What one attempt came to, as far as retrying is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The server answered with a non-success status.
    Status { code: u16, retry_after_ms: Option<u64>, body: String },
    /// The request timed out, or the connection failed or was reset.
    Transport(String),
    /// Something that must not be retried or followed (a redirect to another origin).
    Refused(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    RetryAfter(u64),
    GiveUp(String),
}

/// `attempt` is 1 for the first try. `jitter` is any number that differs between
/// requests (the client uses a hash of the request): it spreads retries of concurrent
/// episodes without a random source.
pub fn decide(policy: &RetryPolicy, attempt: u32, outcome: &Attempt, jitter: u64) -> Decision {
    let (retryable, what, hinted) = match outcome {
        Attempt::Status { code, retry_after_ms, body } => {
            let quota = *code == 429 && body.contains("insufficient_quota");
            let retryable = !quota && matches!(code, 408 | 409 | 429 | 500..=599);
            let what =
                if quota { format!("HTTP {code} (insufficient_quota: not retried)") } else { format!("HTTP {code}") };
            (retryable, what, *retry_after_ms)
        }
        Attempt::Transport(e) => (true, e.clone(), None),
        Attempt::Refused(e) => (false, e.clone(), None),
    };
    if !retryable {
        return Decision::GiveUp(what);
    }
    if attempt >= policy.max_attempts {
        return Decision::GiveUp(format!("{what}, after {attempt} attempts"));
    }
    let delay = hinted.unwrap_or_else(|| {
        let backoff = policy.base_delay_ms.saturating_mul(1u64 << (attempt - 1).min(30));
        // Up to a quarter more, so retries of concurrent episodes spread out.
        backoff + (jitter % (backoff / 4 + 1))
    });
    Decision::RetryAfter(delay.min(policy.max_delay_ms))
}

/// The server's hint: `retry-after-ms` (milliseconds), else `retry-after` (seconds).
/// An HTTP date or anything unparsable is ignored (backoff applies).
pub fn retry_after_ms(header: impl Fn(&str) -> Option<String>) -> Option<u64> {
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return Some(ms.max(0.0) as u64);
    }
    header("retry-after").and_then(|v| v.trim().parse::<f64>().ok()).map(|s| (s.max(0.0) * 1_000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> Attempt {
        Attempt::Status { code, retry_after_ms: None, body: String::new() }
    }

    #[test]
    fn retries_what_is_worth_retrying_and_nothing_else() {
        let p = RetryPolicy::default();
        for code in [408, 409, 429, 500, 502, 503, 529] {
            assert!(matches!(decide(&p, 1, &status(code), 0), Decision::RetryAfter(_)), "{code}");
        }
        for code in [400, 401, 403, 404, 422] {
            assert!(matches!(decide(&p, 1, &status(code), 0), Decision::GiveUp(_)), "{code}");
        }
        assert!(matches!(decide(&p, 1, &Attempt::Transport("timed out".into()), 0), Decision::RetryAfter(_)));
        let quota = Attempt::Status {
            code: 429,
            retry_after_ms: None,
            body: r#"{"error":{"code":"insufficient_quota"}}"#.into(),
        };
        assert_eq!(decide(&p, 1, &quota, 0), Decision::GiveUp("HTTP 429 (insufficient_quota: not retried)".into()));
    }

    #[test]
    fn honours_the_server_hint_then_backs_off_exponentially_with_a_cap() {
        let p = RetryPolicy { max_attempts: 10, base_delay_ms: 1_000, max_delay_ms: 20_000 };
        let hinted = Attempt::Status { code: 429, retry_after_ms: Some(2_500), body: String::new() };
        assert_eq!(decide(&p, 1, &hinted, 999), Decision::RetryAfter(2_500));
        let delays: Vec<u64> = (1..=6)
            .map(|a| match decide(&p, a, &status(503), 0) {
                Decision::RetryAfter(d) => d,
                Decision::GiveUp(e) => panic!("{e}"),
            })
            .collect();
        assert_eq!(delays, vec![1_000, 2_000, 4_000, 8_000, 16_000, 20_000]);
        // Jitter adds at most a quarter.
        assert!(matches!(decide(&p, 2, &status(503), 12_345), Decision::RetryAfter(d) if (2_000..=2_500).contains(&d)));
    }

    #[test]
    fn gives_up_after_the_last_attempt_saying_how_many() {
        let p = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        assert_eq!(decide(&p, 3, &status(500), 0), Decision::GiveUp("HTTP 500, after 3 attempts".into()));
    }

    #[test]
    fn reads_retry_after_headers() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        assert_eq!(retry_after_ms(headers(&[("retry-after-ms", "150")])), Some(150));
        assert_eq!(retry_after_ms(headers(&[("retry-after", "2")])), Some(2_000));
        assert_eq!(retry_after_ms(headers(&[("retry-after-ms", "5"), ("retry-after", "9")])), Some(5));
        assert_eq!(retry_after_ms(headers(&[("retry-after", "Wed, 21 Oct 2026 07:28:00 GMT")])), None);
        assert_eq!(retry_after_ms(headers(&[])), None);
    }
}
