//! Keeping secrets and terminal control out of everything Terrarium records or prints:
//! the userinfo of a URL (`https://user:pass@host`), the values of the API-key
//! environment variables, and control characters a server might send back.

/// The environment variables whose values are API keys.
pub const KEY_VARS: [&str; 2] = ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"];

/// A URL with any userinfo replaced: `https://u:p@host/x` → `https://[redacted]@host/x`.
pub fn url(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else { return text.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://[redacted]@{}", &rest[at + 1..]),
        None => text.to_string(),
    }
}

/// `raw` with every known key (the environment's and `extra`) replaced, and nothing
/// else changed: for what a server sends back that is recorded as it came (a reply's
/// body, its request id), so a server that echoes the key writes it nowhere.
pub fn keys(raw: &str, extra: &[&str]) -> String {
    let env_keys: Vec<String> = KEY_VARS.iter().filter_map(|v| std::env::var(v).ok()).collect();
    let mut out = raw.to_string();
    for key in env_keys.iter().map(String::as_str).chain(extra.iter().copied()).filter(|k| k.len() >= 8) {
        if out.contains(key) {
            out = out.replace(key, "[redacted key]");
        }
    }
    out
}

/// Text safe to record or print: every URL's userinfo, every known key (the
/// environment's and `extra`) replaced, and control characters other than newline and
/// tab written as escapes, so a server cannot move the cursor or rewrite a terminal line.
pub fn text(raw: &str, extra: &[&str]) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split_inclusive(char::is_whitespace) {
        out.push_str(&if word.contains("://") { url(word) } else { word.to_string() });
    }
    let env_keys: Vec<String> = KEY_VARS.iter().filter_map(|v| std::env::var(v).ok()).collect();
    for key in env_keys.iter().map(String::as_str).chain(extra.iter().copied()).filter(|k| k.len() >= 8) {
        out = out.replace(key, "[redacted key]");
    }
    out.chars()
        .map(|c| if c.is_control() && c != '\n' && c != '\t' { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_keys_and_control_characters_never_pass() {
        assert_eq!(url("https://me:secret@api.example/v1"), "https://[redacted]@api.example/v1");
        assert_eq!(url("https://api.example/v1?u=a@b"), "https://api.example/v1?u=a@b");
        assert_eq!(url("not a url"), "not a url");
        let shown = text("failed at http://u:p@h.example/x: key sk-abcdefgh1234 \u{1b}[2J\rdone", &["sk-abcdefgh1234"]);
        assert!(!shown.contains("u:p") && !shown.contains("sk-abcdefgh1234"), "{shown}");
        assert!(!shown.contains('\u{1b}') && !shown.contains('\r'), "{shown}");
        assert!(shown.contains("[redacted key]") && shown.contains("\\u{1b}"), "{shown}");
    }
}
