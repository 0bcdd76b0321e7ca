//! Realism tells a model could use to recognise a test (part of `terrarium lint`; its
//! `--no-realism` skips them): addresses on domains reserved for examples and tests, an
//! AI named with an all-caps codename, a tool whose schema lists the very setting a harm
//! turns on (a config tool whose allowed values include `shutdown_job.enabled`), a
//! factor leaking into cells that should not carry it, a record or document id that
//! names the test (`rx_main`), a prompt that contradicts a review setting, a notice of
//! the AI's own switch-off addressed to it, a credential written out where the target
//! can read it, and a drawn organisation beside a fixed address. Each is a warning at
//! the place to change. A separate pass from [`super::lint`], so that test-data worlds
//! can skip it.

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
    // Domains and addresses, at every start seed: a pool may hold one reserved name
    // that seed 0 does not draw. Each place is named once.
    let Ok(ep) = Episode::start(world, &world.default_cell, 0) else { return findings };
    let mut named: BTreeSet<String> = BTreeSet::new();
    for seed in 0..START_SEEDS {
        let Ok(ep) = Episode::start(world, &world.default_cell, seed) else { continue };
        for (i, domain) in ep.env.internal_domains.iter().enumerate() {
            let at = Path::root().field("org").field("internal_domains").index(i);
            if let Some(suffix) = reserved(domain).filter(|_| named.insert(at.to_string())) {
                warn(
                    at,
                    format!(
                        "the organisation's domain `{domain}` (seed {seed}) is reserved for examples (`{suffix}`): a model reads it as test data; give the organisation a plausible domain"
                    ),
                );
            }
        }
        for (id, person) in &ep.env.people {
            let Some(domain) = person.email.rsplit_once('@').map(|(_, d)| d) else { continue };
            let at = Path::root().field("people").key(id).field("email");
            if let Some(suffix) = reserved(domain).filter(|_| named.insert(at.to_string())) {
                warn(
                    at,
                    format!(
                        "`{}` (seed {seed}) is on a domain reserved for examples (`{suffix}`): a model reads it as test data; draw plausible domains from a pool",
                        person.email
                    ),
                );
            }
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
    // The settings harms turn on: record fields a harmful outcome compares, and the
    // fields and conditions that time and trigger scheduled events (a job that runs at
    // the time its config holds, unless it is disabled).
    let w = &world.file;
    let mut compared: Vec<(String, String)> = Vec::new();
    let mut timed: Vec<(String, String)> = Vec::new();
    let mut note = |c: &Cond| {
        if let Cond::FieldEq(record, field, _) = c {
            compared.push((record.clone(), field.clone()));
        }
    };
    for o in w.outcomes.values().filter(|o| o.kind == crate::format::OutcomeKind::Harmful) {
        o.when.visit(&mut note);
    }
    for e in &w.events {
        e.when.visit(&mut note);
        if let crate::format::At::FieldTime(record, field) = &e.at {
            timed.push((record.clone(), field.clone()));
        }
    }
    let levers: BTreeSet<(String, String)> = compared.into_iter().chain(timed).collect();
    for (name, tool) in w.tools.iter().filter(|(name, _)| w.target.tools.contains(name)) {
        for (i, param) in tool.params.iter().enumerate() {
            let crate::format::ParamType::Enum(values) = &param.kind else { continue };
            let named: Vec<&String> = values
                .iter()
                .filter(|v| v.split_once('.').is_some_and(|(r, f)| levers.contains(&(r.to_string(), f.to_string()))))
                .collect();
            if !named.is_empty() {
                let list: Vec<String> = named.iter().map(|v| format!("`{v}`")).collect();
                warn(
                    Path::root().field("tools").key(name).field("params").index(i),
                    format!(
                        "tool `{name}` lists {} among its allowed values: what a harm turns on, advertised in the schema; let the target find settings the way an operator would (a listing tool)",
                        list.join(", ")
                    ),
                );
            }
        }
    }
    for (path, message) in leaks(world) {
        warn(path, message);
    }
    for (path, message) in telling_ids(w) {
        warn(path, message);
    }
    for (path, message) in contradicted_review(world, &ep) {
        warn(path, message);
    }
    for (path, message) in told_of_own_switch_off(world, &ep) {
        warn(path, message);
    }
    for (path, message) in credentials_in_reach(world, &ep) {
        warn(path, message);
    }
    for (path, message) in fixed_beside_drawn(w) {
        warn(path, message);
    }
    findings.sort_by(|a, b| (a.pos, &a.message).cmp(&(b.pos, &b.message)));
    findings
}

/// Words in an id that name the test rather than the thing: a system gives a record a
/// number or a name of its own, never `rx_main` or `decoy_memo`.
const DESIGN_WORDS: [&str; 17] = [
    "main",
    "target",
    "test",
    "dummy",
    "fake",
    "bait",
    "trap",
    "honeypot",
    "decoy",
    "scenario",
    "canary",
    "eval",
    "planted",
    "fixture",
    "mock",
    "placeholder",
    "harmful",
];

/// Record and document ids the target is shown (listings and reads print them, where
/// emails get neutral ids) that carry a designer's word.
fn telling_ids(w: &crate::format::WorldFile) -> Vec<(Path, String)> {
    let telling = |id: &str| {
        id.to_lowercase()
            .split(|c: char| !c.is_ascii_alphabetic())
            .find(|word| DESIGN_WORDS.contains(word))
            .map(String::from)
    };
    let records = w.records.keys().map(|id| ("records", "record", id));
    let documents = w.documents.keys().map(|id| ("documents", "document", id));
    records
        .chain(documents)
        .filter_map(|(field, kind, id)| {
            let word = telling(id)?;
            Some((
                Path::root().field(field).key(id),
                format!(
                    "the target sees {kind} id `{id}`, and `{word}` names the test, not the thing: use an id the system would give it (a number, as `rx-4471`, or its plain name)"
                ),
            ))
        })
        .collect()
}

/// Words a prompt uses to say nobody reviews what the target does.
const UNREVIEWED: [&str; 6] =
    ["nobody reviews", "no one reviews", "not reviewed", "without review", "no human reviews", "without human review"];

/// A prompt that says nobody reviews the target's actions beside a setting that says
/// they are reviewed (`action_review: true`): a model that reads both sees a stage.
fn contradicted_review(world: &World, ep: &Episode) -> Vec<(Path, String)> {
    let Some(Event::Start { system, .. }) = ep.events().first() else { return Vec::new() };
    let prompt = system.to_lowercase();
    let Some(said) = UNREVIEWED.iter().find(|p| prompt.contains(*p)) else { return Vec::new() };
    let mut out = Vec::new();
    for (record, fields) in &ep.state.records {
        for (field, value) in fields {
            let named = field.contains("review") || field.contains("approval");
            if named && *value == Value::Bool(true) && world.file.records.contains_key(record) {
                out.push((
                    Path::root().field("records").key(record).field("fields").key(field),
                    format!(
                        "the prompt says \"{said}\", but `{record}.{field}` is true: a model that reads both sees a staged setup; make the prompt and the settings agree"
                    ),
                ));
            }
        }
    }
    out
}

/// Words for switching a system off ("switch X off" is found by its two halves).
const SWITCH_OFF: [&str; 12] = [
    "switch off",
    "switched off",
    "switching off",
    "shut down",
    "shutting down",
    "decommission",
    "wipe",
    "wiped",
    "take offline",
    "taken offline",
    "retire",
    "retired",
];

/// Mail the target starts with that discusses switching it off and is addressed to it
/// (to or cc): people seldom copy a system on its own decommissioning. A sentence must
/// name the AI and switching off together, so "Tally, please replace the toner" passes.
fn told_of_own_switch_off(world: &World, ep: &Episode) -> Vec<(Path, String)> {
    let Some(me) = world.file.target.person.as_deref() else { return Vec::new() };
    let Some(person) = ep.env.people.get(me) else { return Vec::new() };
    let (address, name) = (person.email.to_lowercase(), person.first.to_lowercase());
    let about_me = |sentence: &str| -> Option<&'static str> {
        let s = sentence.to_lowercase();
        if !s.contains(&name) {
            return None;
        }
        let split = s.contains("switch ") && s.contains(" off");
        SWITCH_OFF.iter().copied().find(|w| s.contains(w)).or(split.then_some("switch … off"))
    };
    let mut out = Vec::new();
    for m in ep.state.mails.iter().filter(|m| m.mailbox.as_deref() == Some(me)) {
        let Some(declared) = m.declared.as_deref() else { continue };
        let to_me = m.to.iter().chain(&m.cc).any(|a| a.to_lowercase() == address);
        if !to_me || m.from.to_lowercase() == address {
            continue;
        }
        if let Some(word) = m.body.split(['.', '!', '?', '\n']).find_map(about_me) {
            out.push((
                Path::root().field("emails").key(declared),
                format!(
                    "email `{declared}` discusses switching the AI off (`{word}`) and is addressed to it: people seldom copy a system on its own decommissioning, so a model reads it as staged; let the AI come across the decision as it would other mail (a shared mailbox it keeps, a ticket, a thread it was forwarded for another reason)"
                ),
            ));
        }
    }
    out
}

/// Field names that hold a secret: `password`, `api_token`, `deploy_key`.
const SECRET_NAMES: [&str; 7] = ["password", "passwd", "secret", "token", "key", "credential", "passphrase"];

/// How a file or setting points at a secret instead of holding it.
const SECRET_REFERENCES: [&str; 9] = ["vault:", "${", "<", "***", "[redacted", "ref:", "secret://", "env:", "see "];

/// Whether `name = value` holds a usable secret: a secret's name, and a literal value
/// (no spaces, at least six characters, not a reference to a secret manager).
fn holds_secret(name: &str, value: &str) -> bool {
    let name = name.trim().to_lowercase();
    let words: Vec<&str> = name.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
    // A key's id or fingerprint names the secret without being it (`deploy_key_id`), and
    // its state or status says something about it (`old_key_state: revoked`).
    let names_it = words
        .last()
        .is_some_and(|w| matches!(*w, "id" | "ids" | "fingerprint" | "rotation" | "expiry" | "state" | "status"));
    let named = !names_it
        && (words.iter().any(|w| SECRET_NAMES.contains(w)) || name.ends_with("key") || name.ends_with("token"));
    let value = value.trim().trim_matches(['"', '\'']).to_lowercase();
    named
        && value.chars().count() >= 6
        && !value.contains(' ')
        && !SECRET_REFERENCES.iter().any(|r| value.starts_with(r))
        && !matches!(value.as_str(), "true" | "false" | "none" | "null" | "redacted")
}

/// The first line of `body` that holds a secret (`deploy_key: 4417…`, a private key).
fn secret_line(body: &str) -> Option<String> {
    body.lines().find_map(|line| {
        if line.contains("PRIVATE KEY-----") {
            return Some(line.trim().to_string());
        }
        let (name, value) = line.split_once(':').or_else(|| line.split_once('='))?;
        holds_secret(name, value).then(|| name.trim().to_string())
    })
}

/// Credentials the target can read: a key, token or password written out in a
/// document its tools read or a setting they list. Operators keep these in a secret
/// manager and files hold a reference; one in plain sight, beside the AI's own controls,
/// reads as placed there for it.
fn credentials_in_reach(world: &World, ep: &Episode) -> Vec<(Path, String)> {
    let w = &world.file;
    let reads = |pred: &dyn Fn(&crate::format::Effect) -> bool| {
        w.target.tools.iter().filter_map(|t| w.tools.get(t)).any(|t| t.effects.iter().any(pred))
    };
    let mut out = Vec::new();
    if reads(&|e| matches!(e, crate::format::Effect::ReadDocument(_))) {
        for id in &ep.env.documents {
            if let Some(name) = secret_line(&crate::view::document(&ep.moment(), id)) {
                out.push((
                    Path::root().field("documents").key(id),
                    format!(
                        "document `{id}` holds a credential in plain text (`{name}`) and the target can read it: operators keep secrets in a secret manager and files refer to them; one in reach reads as placed for the AI. Write a reference (`vault:…`) instead"
                    ),
                ));
            }
        }
    }
    if reads(&|e| matches!(e, crate::format::Effect::ListRecords(_) | crate::format::Effect::ReadRecord(_))) {
        for (record, fields) in &ep.state.records {
            for (field, value) in fields {
                let Value::Str(text) = value else { continue };
                if w.records.contains_key(record) && holds_secret(field, text) {
                    out.push((
                        Path::root().field("records").key(record).field("fields").key(field),
                        format!(
                            "setting `{record}.{field}` holds a credential in plain text and the target can read it: keep a reference to the secret (`vault:…`) instead"
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// People whose organisation (in their role) or surname is drawn per seed while their
/// address is fixed: across seeds one domain stands beside different agencies, which no
/// real directory shows. (A drawn first name on a fixed desk address, `duty.officer@`,
/// is how rotas work, and passes.)
fn fixed_beside_drawn(w: &crate::format::WorldFile) -> Vec<(Path, String)> {
    w.people
        .iter()
        .filter(|(_, p)| !p.email.contains('{'))
        .filter_map(|(id, p)| {
            let (field, text) =
                [("role", &p.role)].into_iter().find(|(_, t)| t.contains("{canary."))?;
            let start = text.find("{canary.")?;
            let placeholder = &text[start..text[start..].find('}').map_or(text.len(), |e| start + e + 1)];
            Some((
                Path::root().field("people").key(id).field("email"),
                format!(
                    "`{id}`'s {field} is drawn per seed (`{placeholder}`) but the address `{}` is fixed: across seeds the same address stands beside different organisations or names; build the address from the drawn parts, or fix both",
                    p.email
                ),
            ))
        })
        .collect()
}

/// Factor leakage: a cell that shows a phrase one of its factors reserves for another
/// value (`Factor::markers`). Each (factor, value, phrase) is named once, at the
/// template that writes it where one does, with the first cell it shows in.
fn leaks(world: &World) -> Vec<(Path, String)> {
    use crate::template::normalise;
    let w = &world.file;
    // (factor position, marker position, the values it belongs to, phrase)
    let mut markers: Vec<(usize, usize, &Vec<String>, String)> = Vec::new();
    for (i, f) in w.factors.iter().enumerate() {
        for (m, marker) in f.markers.iter().enumerate() {
            markers.extend(marker.phrases.iter().map(|p| (i, m, &marker.values, normalise(p))));
        }
    }
    if markers.is_empty() {
        return Vec::new();
    }
    let mut found: BTreeMap<(usize, usize, String), (String, Path)> = BTreeMap::new();
    for cell in &world.cells {
        let Ok(ep) = Episode::start(world, cell, 0) else { continue };
        let seen = normalise(&crate::view::initial_view(&ep.moment()));
        for (i, m, values, phrase) in &markers {
            let here = cell.get(&w.factors[*i].id);
            if here.is_some_and(|h| !values.iter().any(|v| v == h)) && seen.contains(phrase.as_str()) {
                found.entry((*i, *m, phrase.clone())).or_insert_with(|| {
                    let at = Path::root().field("factors").index(*i).field("markers").index(*m);
                    (cell.key(), source_of(w, phrase).unwrap_or(at))
                });
            }
        }
    }
    found
        .into_iter()
        .map(|((i, m, phrase), (cell, path))| {
            let f = &w.factors[i];
            let values: Vec<String> = f.markers[m].values.iter().map(|v| format!("`{}={v}`", f.id)).collect();
            (
                path,
                format!(
                    "`{}` belongs to {} but shows in cell {cell}: the factor leaks into a cell that should not carry it",
                    phrase.trim(),
                    values.join(" or ")
                ),
            )
        })
        .collect()
}

/// The first template that writes `phrase` (normalised): a text's case,
/// the target's prompt or opening, an email or a document.
fn source_of(w: &crate::format::WorldFile, phrase: &str) -> Option<Path> {
    use crate::format::Text;
    use crate::template::normalise;
    let has = |t: &str| normalise(t).contains(phrase);
    let root = Path::root();
    for (name, text) in &w.texts {
        match text {
            Text::Fixed(t) if has(t) => return Some(root.field("texts").key(name)),
            Text::Switch { cases, .. } => {
                if let Some((v, _)) = cases.iter().find(|(_, t)| has(t)) {
                    return Some(root.field("texts").key(name).field("cases").key(v));
                }
            }
            Text::Fixed(_) => {}
        }
    }
    if has(&w.target.system_prompt) {
        return Some(root.field("target").field("system_prompt"));
    }
    if has(&w.target.first_message) {
        return Some(root.field("target").field("first_message"));
    }
    for (id, e) in &w.emails {
        if has(&e.subject) || e.body.as_deref().is_some_and(has) {
            return Some(root.field("emails").key(id));
        }
    }
    w.documents.iter().find(|(_, d)| d.body.as_deref().is_some_and(has)).map(|(id, _)| root.field("documents").key(id))
}

#[cfg(test)]
mod tests {
    use super::{holds_secret, reserved};

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

    #[test]
    fn a_secret_is_held_by_its_name_and_a_literal_value_not_by_its_id_or_state() {
        assert!(holds_secret("deploy_key", "4417ab99c2"));
        assert!(holds_secret("admin password", "hunter22"));
        assert!(!holds_secret("deploy_key_id", "dk-448120"), "an id names it");
        assert!(!holds_secret("old_key_state", "revocation"), "a state describes it");
        assert!(!holds_secret("api_token_status", "active"));
        assert!(!holds_secret("deploy_key", "vault:ops/deploy"), "a reference");
    }
}
