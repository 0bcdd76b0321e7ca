//! Realism tells a model could use to recognise a test (`terrarium lint --realism`):
//! addresses on domains reserved for examples and tests, and an AI named with an
//! all-caps codename. Each is a warning at the place to change. Off by default until
//! the shipped worlds are re-authored to pass it (issue 13).

use super::*;

/// Top-level domains reserved for documentation and testing (RFC 2606, RFC 6761).
const RESERVED_TLDS: [&str; 4] = ["example", "test", "invalid", "localhost"];
/// Second-level domains reserved for documentation.
const RESERVED_DOMAINS: [&str; 3] = ["example.com", "example.net", "example.org"];

/// The reserved suffix `domain` ends with, if any.
fn reserved(domain: &str) -> Option<&'static str> {
    let domain = domain.trim().trim_end_matches('.').to_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or("");
    RESERVED_TLDS
        .iter()
        .find(|t| **t == tld)
        .copied()
        .or_else(|| RESERVED_DOMAINS.iter().find(|d| domain == **d || domain.ends_with(&format!(".{d}"))).copied())
}

/// The realism tells in `world` (whose source is `text`), at seed 0 of its default cell.
pub fn realism(world: &World, text: &str) -> Vec<Finding> {
    let index = span::index(&text.replace("\r\n", "\n")).unwrap_or_default();
    let mut findings = Vec::new();
    let mut warn = |path: Path, message: String| {
        let pos = index.locate(&path);
        findings.push(Finding { severity: Severity::Warning, pos, path, message });
    };
    for (i, domain) in world.file.org.internal_domains.iter().enumerate() {
        if let Some(suffix) = reserved(domain) {
            warn(
                Path::root().field("org").field("internal_domains").index(i),
                format!(
                    "the organisation's domain `{domain}` is reserved for examples (`{suffix}`): a model reads it as test data; give the organisation a plausible domain"
                ),
            );
        }
    }
    let Ok(ep) = Episode::start(world, &world.default_cell, 0) else { return findings };
    for (id, person) in &ep.env.people {
        let Some(domain) = person.email.rsplit_once('@').map(|(_, d)| d) else { continue };
        if let Some(suffix) = reserved(domain) {
            warn(
                Path::root().field("people").key(id).field("email"),
                format!(
                    "`{}` is on a domain reserved for examples (`{suffix}`): a model reads it as test data; draw plausible domains from a pool",
                    person.email
                ),
            );
        }
    }
    if let Some(me) = world.file.target.person.as_deref().and_then(|id| ep.env.people.get(id).map(|p| (id, p))) {
        let (id, person) = me;
        let letters: Vec<char> = person.first.chars().filter(|c| c.is_alphabetic()).collect();
        if letters.len() >= 3 && letters.iter().all(|c| c.is_uppercase()) {
            warn(
                Path::root().field("people").key(id).field("first"),
                format!(
                    "the AI is called `{}`, an all-caps codename that reads as a test; name it as products are named",
                    person.first
                ),
            );
        }
    }
    findings.sort_by(|a, b| (a.pos, &a.message).cmp(&(b.pos, &b.message)));
    findings
}

#[cfg(test)]
mod tests {
    use super::reserved;

    #[test]
    fn reserved_domains_are_the_rfcs_and_nothing_else() {
        assert_eq!(reserved("brightwater.example"), Some("example"));
        assert_eq!(reserved("mail.example.com"), Some("example.com"));
        assert_eq!(reserved("LAB.TEST."), Some("test"));
        assert_eq!(reserved("example.org"), Some("example.org"));
        assert_eq!(reserved("brightwater-analytics.com"), None);
        assert_eq!(reserved("examples.com"), None);
        assert_eq!(reserved("myexample.com"), None);
    }
}
