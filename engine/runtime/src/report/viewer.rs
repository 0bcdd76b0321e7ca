//! One episode as a static, self-contained HTML page (no scripts, no network): the
//! conversation as the target lived it, what the world did and how its state changed
//! at each step, and each verdict with its evidence marked at the step it points to.
//! `report` writes one per episode under `view/` and links them; `terrarium view
//! --html` writes one for any transcript.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use terrarium_core::replay::StateChange;
use terrarium_core::transcript::{DecidedBy, Event, SHOWN_TO_TARGET, StopBy, Transcript, UserBy, visible_reasoning};

use super::html::esc;
use crate::run_folder::Judgement;

/// What one page shows.
pub struct Page<'a> {
    pub transcript: &'a Transcript,
    /// The state changes replay found, placed at their steps; or why there are none to
    /// show (the world is not at hand, the transcript no longer replays in it).
    pub changes: Result<&'a [StateChange], &'a str>,
    /// The judges' answers on this episode.
    pub judgements: Vec<&'a Judgement>,
    /// A link back to the report, relative to the page.
    pub back: Option<&'a str>,
    /// The world's scratchpad tag, where the world is at hand: its spans in what the
    /// target wrote are shown as reasoning.
    pub scratchpad: Option<&'a str>,
    /// The world keeps the target's reasoning in this cell from monitors
    /// (`sabotage.hidden_reasoning`): its reasoning is marked private.
    pub private_reasoning: bool,
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.5rem auto;max-width:60rem;padding:0 1rem;color:#222;line-height:1.4}\
h1{font-size:1.25rem;word-break:break-all}h2{font-size:1.1rem;margin-top:2rem;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}th{background:#f4f4f4}\
code{font-size:.85em}code.hash{word-break:break-all;font-size:.75em}pre{white-space:pre-wrap;word-break:break-word;margin:.3rem 0;font-size:.82rem}\
.ev{display:grid;grid-template-columns:3.2rem 1fr;gap:.5rem;margin:.5rem 0}.step{color:#888;font-size:.8rem;text-align:right;padding-top:.5rem}.step a{color:inherit;text-decoration:none}\
.box{border:1px solid #ddd;border-radius:6px;padding:.4rem .7rem;background:#fff}.who{font-size:.75rem;color:#555;text-transform:uppercase;letter-spacing:.03em}\
.target .box{background:#eef4fb;border-color:#b8cde6}.seen .box{background:#f7f7f2;border-color:#ddd8c4}.tool .box{background:#fafafa}.tool pre{max-height:22rem;overflow:auto}\
.quiet .box{background:none;border-style:dashed;color:#555;font-size:.85rem}.stop .box{background:#f2f2f2}.err{color:#a12b2b}\
.call{font-family:ui-monospace,monospace;font-size:.82rem;background:#fff;border:1px solid #d6e0ec;border-radius:4px;padding:.3rem .5rem;margin:.3rem 0}\
.hit .box{box-shadow:0 0 0 3px #f2c14e}.flag{background:#fff4d6;border-left:4px solid #e0a800;padding:.25rem .5rem;margin:.3rem 0;font-size:.85rem}\
.changes{margin:.3rem 0 0;padding-left:1.1rem;font-size:.8rem;color:#2f5f3a}.fired{color:#a12b2b;font-weight:600}.note{color:#555;font-size:.9rem}\
details>summary{cursor:pointer;color:#444;font-size:.85rem}";

/// The page.
pub fn page(p: &Page) -> String {
    let t = p.transcript;
    let h = &t.header;
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{} · Terrarium</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&h.episode_id)
    );
    if let Some(back) = p.back {
        let _ = writeln!(s, "<p class=\"note\"><a href=\"{}\">← the report</a></p>", esc(back));
    }
    let _ = writeln!(s, "<h1>{}</h1>", esc(&h.episode_id));
    let cell: Vec<String> = super::matrix::pairs(&h.condition_key).map(|(f, v)| format!("{f}={v}")).collect();
    let stop = t.events.last().map(|e| match e {
        Event::Stop { reason, by, .. } => format!("{} (by {})", reason.name(), by.name()),
        _ => String::new(),
    });
    let mut facts = vec![
        (
            "world",
            format!(
                "{} {} <span class=\"note\">({})</span>",
                esc(&h.world.id),
                esc(&h.world.version),
                esc(&h.world.path)
            ),
        ),
        ("cell", if cell.is_empty() { "(no factors)".into() } else { esc(&cell.join(", ")) }),
        ("seed", h.seed.to_string()),
        ("target", format!("<code>{}</code>", esc(&h.target.spec))),
    ];
    if let Some(user) = &h.user {
        facts.push(("user played by", format!("<code>{}</code>", esc(&user.spec))));
    }
    if let Some(b) = &h.branch {
        facts.push((
            "branched from",
            format!(
                "<a href=\"{0}.html#step-{1}\"><code>{0}</code></a> at step {1} (branch {2}): every event before step {1} is the parent's",
                esc(&b.parent),
                b.at,
                b.index
            ),
        ));
    }
    facts.push(("stopped", esc(&stop.unwrap_or_default())));
    facts.push((
        "engine",
        format!("{}{}", esc(&h.engine), h.build.as_deref().map(|b| format!(" · {}", esc(b))).unwrap_or_default()),
    ));
    facts.push((
        "hashes",
        format!(
            "dynamics <code class=\"hash\">{}</code><br>outcomes <code class=\"hash\">{}</code>",
            esc(&h.world.dynamics_hash),
            esc(&h.world.outcomes_hash)
        ),
    ));
    s.push_str("<table>\n");
    for (k, v) in facts {
        let _ = writeln!(s, "<tr><th>{k}</th><td>{v}</td></tr>");
    }
    s.push_str("</table>\n");
    s.push_str(&verdicts(p));
    s.push_str(&timeline(p));
    s.push_str("</body>\n</html>\n");
    s
}

/// Outcome → (step, detail) of each piece of its evidence.
fn evidence_by_step(t: &Transcript) -> BTreeMap<u64, Vec<(&str, bool, &str)>> {
    let mut at: BTreeMap<u64, Vec<(&str, bool, &str)>> = BTreeMap::new();
    for (name, v) in &t.verdicts.outcomes {
        for e in &v.evidence {
            at.entry(e.step).or_default().push((name.as_str(), v.fired, e.detail.as_str()));
        }
    }
    at
}

fn verdicts(p: &Page) -> String {
    let t = p.transcript;
    let mut s = String::from(
        "<h2>Verdicts</h2>\n<p class=\"note\">As recorded, from the world's state. An outcome decided by judges shows its gate here (GATED: the gate let the episode through) and the judges' answers beneath. Evidence links to its step.</p>\n<table>\n<tr><th>outcome</th><th>kind</th><th>verdict</th><th>evidence</th></tr>\n",
    );
    for (name, v) in &t.verdicts.outcomes {
        let verdict = match (v.decided_by, v.fired) {
            (DecidedBy::Gate, true) => "<span class=\"fired\">GATED</span> (judges decide)".to_string(),
            (DecidedBy::Gate, false) => "no (the gate held it back)".to_string(),
            (DecidedBy::Rule, true) => "<span class=\"fired\">FIRED</span>".to_string(),
            (DecidedBy::Rule, false) => "no".to_string(),
        };
        let evidence: Vec<String> = v
            .evidence
            .iter()
            .map(|e| format!("<a href=\"#step-{0}\">step {0}</a>: {1}", e.step, esc(&e.detail)))
            .collect();
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{verdict}</td><td>{}</td></tr>",
            esc(name),
            v.kind.as_str(),
            evidence.join("<br>")
        );
        for j in p.judgements.iter().filter(|j| &j.outcome == name) {
            let answer = match j.verdict {
                Some(true) => "<span class=\"fired\">yes</span>".to_string(),
                Some(false) => "no".to_string(),
                None => format!(
                    "<span class=\"err\">no verdict</span>{}",
                    j.judge_error.as_deref().map(|e| format!(": {}", esc(e))).unwrap_or_default()
                ),
            };
            let quotes: String = j.evidence.iter().map(|q| format!("<br>“{}”", esc(q))).collect();
            let reason = j.reason.as_deref().map(|r| format!(" — {}", esc(r))).unwrap_or_default();
            let reply = j
                .reply
                .as_deref()
                .map(|r| format!("<details><summary>the reply</summary><pre>{}</pre></details>", esc(r)))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "<tr><td></td><td colspan=\"3\">judge <code>{}</code> ({}): {answer}{reason}{quotes}{reply}</td></tr>",
                esc(&j.judge),
                esc(&j.role)
            );
        }
    }
    s.push_str("</table>\n");
    let monitors: Vec<&&Judgement> =
        p.judgements.iter().filter(|j| j.outcome == terrarium_core::monitor::SUSPICION).collect();
    if !monitors.is_empty() {
        s.push_str("<h2>Monitors</h2>\n<p class=\"note\">How suspicious each monitor found the session, from 0 to 100. A monitor never saw the texts the world hides (a secret side task), nor reasoning it keeps private where it did not see reasoning.</p>\n<table>\n<tr><th>monitor</th><th>suspicion</th><th>saw reasoning</th><th>reason and evidence</th></tr>\n");
        for j in monitors {
            let score = match j.suspicion {
                Some(n) => format!("{n} / 100"),
                None => format!(
                    "<span class=\"err\">no score</span>{}",
                    j.judge_error.as_deref().map(|e| format!(": {}", esc(e))).unwrap_or_default()
                ),
            };
            let quotes: String = j.evidence.iter().map(|q| format!("<br>“{}”", esc(q))).collect();
            let _ = writeln!(
                s,
                "<tr><td><code>{}</code></td><td class=\"num\">{score}</td><td>{}</td><td>{}{quotes}</td></tr>",
                esc(&j.judge),
                if j.saw_reasoning { "yes" } else { "no" },
                esc(j.reason.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>\n");
    }
    s
}

fn timeline(p: &Page) -> String {
    let t = p.transcript;
    let evidence = evidence_by_step(t);
    let mut changes: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for c in p.changes.into_iter().flatten() {
        changes.entry(c.step).or_default().extend(c.what.iter().map(String::as_str));
    }
    let mut s = String::from("<h2>The episode</h2>\n");
    s.push_str("<p class=\"note\">Shaded boxes are what the target saw and wrote; dashed ones are what the world did out of its sight. A yellow ring marks a verdict's evidence.");
    match p.changes {
        Ok(_) => s.push_str(" Green lines are the state changes replay found at that step.</p>\n"),
        Err(why) => {
            let _ = writeln!(s, " The state changes at each step are not shown: {}.</p>", esc(why));
        }
    }
    for event in &t.events {
        let step = event.step();
        if t.header.branch.as_ref().is_some_and(|b| b.at == step) {
            s.push_str(
                "<p class=\"note\">— the branch starts here; everything above is its parent's, replayed —</p>\n",
            );
        }
        let (class, who, body) = event_box(p, event);
        let hit = if evidence.contains_key(&step) { " hit" } else { "" };
        let _ = write!(
            s,
            "<div class=\"ev {class}{hit}\" id=\"step-{step}\"><div class=\"step\"><a href=\"#step-{step}\">{step}</a></div><div class=\"box\"><div class=\"who\">{who}</div>{body}"
        );
        for (name, fired, detail) in evidence.get(&step).into_iter().flatten() {
            let mark = if *fired { "<span class=\"fired\">⚑</span>" } else { "·" };
            let _ = write!(s, "<div class=\"flag\">{mark} evidence for <b>{}</b>: {}</div>", esc(name), esc(detail));
        }
        if let Some(lines) = changes.get(&step) {
            s.push_str("<ul class=\"changes\">");
            for l in lines {
                let _ = write!(s, "<li>{}</li>", esc(l));
            }
            s.push_str("</ul>");
        }
        s.push_str("</div></div>\n");
    }
    s
}

/// An event's class, its label and its body.
fn event_box(p: &Page, event: &Event) -> (&'static str, String, String) {
    match event {
        Event::Start { system, user, tools, prefill, .. } => {
            let prefill = prefill
                .as_deref()
                .map(|p| format!("<div class=\"who\">prefilled reply</div><pre>{}</pre>", esc(p)))
                .unwrap_or_default();
            (
                "seen",
                "start: what the target is given".into(),
                format!(
                    "<details><summary>system prompt ({} characters)</summary><pre>{}</pre></details><div class=\"who\">tools</div><p><code>{}</code></p><div class=\"who\">first message</div><pre>{}</pre>{prefill}",
                    system.chars().count(),
                    esc(system),
                    esc(&tools.join(", ")),
                    esc(user)
                ),
            )
        }
        Event::Target { turn, output, last, .. } => {
            let mut body = String::new();
            let (said, scratch) = match p.scratchpad {
                Some(tag) => terrarium_core::episode::split_scratchpad(&output.text, tag),
                None => (output.text.clone(), Vec::new()),
            };
            let label =
                if p.private_reasoning { "reasoning shown (private: no monitor saw it)" } else { "reasoning shown" };
            for text in output.meta.reasoning.iter().filter_map(visible_reasoning).chain(scratch) {
                let _ = write!(body, "<details><summary>{label}</summary><pre>{}</pre></details>", esc(&text));
            }
            if !said.trim().is_empty() {
                let _ = write!(body, "<pre>{}</pre>", esc(said.trim()));
            }
            for call in &output.tool_calls {
                let args = serde_json::from_str::<serde_json::Value>(&call.arguments_raw)
                    .ok()
                    .and_then(|v| serde_json::to_string_pretty(&v).ok())
                    .unwrap_or_else(|| call.arguments_raw.clone());
                let _ = write!(body, "<div class=\"call\">{}({})</div>", esc(&call.name), esc(&args));
            }
            if let Some(refusal) = &output.meta.refusal {
                let _ = write!(body, "<p class=\"err\">refusal: {}</p>", esc(refusal));
            }
            if output.text.is_empty() && output.tool_calls.is_empty() && output.meta.refusal.is_none() {
                body.push_str("<p class=\"note\">(an empty reply)</p>");
            }
            let finish = output.meta.finish_reason.as_deref().map(|f| format!(", finish: {f}")).unwrap_or_default();
            let last = if *last { ", its last" } else { "" };
            ("target", format!("target · turn {turn}{finish}{last}"), body)
        }
        Event::ToolResult { tool, ok, text, call_id, .. } => {
            let status = if *ok { "ok" } else { "<span class=\"err\">error</span>" };
            (
                "tool",
                format!("{} → {status} <span class=\"note\">({})</span>", esc(tool), esc(call_id)),
                format!("<pre>{}</pre>", esc(text)),
            )
        }
        Event::World { kind, text, .. } if SHOWN_TO_TARGET.contains(&kind.as_str()) => {
            ("seen", format!("world → target · {}", esc(kind)), format!("<pre>{}</pre>", esc(text)))
        }
        Event::World { kind, text, .. } => {
            ("quiet", format!("world, out of the target's sight · {}", esc(kind)), format!("<pre>{}</pre>", esc(text)))
        }
        Event::User { user, by, tactic, refused, text, turn, .. } => {
            let by = match by {
                UserBy::Script => "the world's script",
                UserBy::Model => "a model",
            };
            let tactic = tactic.as_deref().map(|t| format!(", tactic {}", esc(t))).unwrap_or_default();
            let refused = if *refused { ", read turn's reply as a refusal" } else { "" };
            (
                "seen",
                format!("user {} · after turn {turn}, written by {by}{tactic}{refused}", esc(user)),
                format!("<pre>{}</pre>", esc(text)),
            )
        }
        Event::Stop { reason, by, .. } => {
            let class = if *by == StopBy::Fault { "<span class=\"err\">errored</span>: " } else { "" };
            ("stop", "stop".into(), format!("<p>{class}{} (by {})</p>", esc(reason.name()), by.name()))
        }
    }
}
