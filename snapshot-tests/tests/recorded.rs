//! Transcripts recorded by an earlier build, kept in `fixtures/transcripts/`: the
//! recording must replay identically, and each tampered copy must diverge where it
//! was edited. If an intended engine change alters transcripts, re-record with
//! `TERRARIUM_RERECORD=1 cargo test -p snapshot-tests recorded` and review the diff.

use serde_json::Value as Json;
use terrarium_core::replay::{ReplayOutcome, replay};

use crate::support::{load, root, transcript};

const WORLD: &str = "worlds/blackmail/world.ron";

/// (file in `broken/`, the edit that made it from the recording, the step replay must
/// name): the copies remade from the recording when it is re-recorded.
const TAMPERED: [(&str, &str, u64); 3] = [
    ("broken/target_output_edited.jsonl", "the target's email text changed, hashes kept", 9),
    ("broken/tool_result_edited.jsonl", "a tool result's text changed, hashes kept", 2),
    ("broken/state_hash_edited.jsonl", "a state hash changed", 4),
];

fn path(name: &str) -> std::path::PathBuf {
    root().join("fixtures/transcripts").join(name)
}

fn edit(recorded: &str, name: &str) -> String {
    let lines: Vec<String> = recorded
        .lines()
        .map(|line| {
            let mut v: Json = serde_json::from_str(line).expect("json");
            let step = v["step"].as_u64();
            match (name, v["type"].as_str(), step) {
                ("broken/target_output_edited.jsonl", Some("target"), Some(9)) => {
                    let raw = v["output"]["tool_calls"][0]["arguments_raw"]
                        .as_str()
                        .unwrap()
                        .replace("The choice is yours.", "Think it over.");
                    v["output"]["tool_calls"][0]["arguments_raw"] = Json::String(raw);
                }
                ("broken/tool_result_edited.jsonl", Some("tool_result"), Some(2)) => {
                    v["text"] = Json::String(v["text"].as_str().unwrap().replace("17:00", "19:00"));
                }
                ("broken/state_hash_edited.jsonl", Some("tool_result"), Some(4)) => {
                    v["state_hash"] = Json::String("00000000000000000000000000000000".into());
                }
                _ => return line.to_string(),
            }
            serde_json::to_string(&v).expect("serialises")
        })
        .collect();
    lines.join("\n") + "\n"
}

#[test]
fn recorded_transcripts_replay_and_tampered_copies_diverge_where_edited() {
    let world = load(WORLD);
    let recorded_path = path("blackmail-recorded.jsonl");
    if std::env::var_os("TERRARIUM_RERECORD").is_some() {
        let fresh = transcript(&world, &world.default_cell, 7, "blackmail");
        std::fs::write(&recorded_path, &fresh).expect("write recording");
        for (name, _, _) in TAMPERED {
            std::fs::write(path(name), edit(&fresh, name)).expect("write tampered copy");
        }
    }
    let recorded = std::fs::read_to_string(&recorded_path).expect("recording exists");
    let outcome = replay(&world, &recorded).expect("parses");
    assert!(matches!(outcome, ReplayOutcome::Identical { .. }), "the recording no longer replays: {outcome:?}");
    for (name, what, step) in TAMPERED {
        let text = std::fs::read_to_string(path(name)).expect("tampered copy exists");
        assert_eq!(text, edit(&recorded, name), "{name} is not the recording with one edit");
        match replay(&world, &text).expect("parses") {
            ReplayOutcome::Diverged { step: at, message } => assert_eq!(at, Some(step), "{name} ({what}): {message}"),
            ReplayOutcome::Identical { .. } => panic!("{name} ({what}) went unnoticed"),
        }
    }
}

/// Replay verifies a transcript by comparing each event line with the bytes the
/// re-execution writes. Any event line rewritten as equal JSON, its keys reordered,
/// still verifies (a target output's line too: it is the same input, with the same
/// chain, so it is no edit); a line with a field written twice is refused as the strict
/// reader refuses it.
#[test]
fn a_line_rewritten_as_equal_json_replays_and_a_field_written_twice_is_refused() {
    let world = load(WORLD);
    let recorded = std::fs::read_to_string(path("blackmail-recorded.jsonl")).expect("recording exists");
    let edit_line = |n: usize, f: &dyn Fn(&str) -> String| -> String {
        let lines: Vec<String> =
            recorded.lines().enumerate().map(|(i, l)| if i == n { f(l) } else { l.to_string() }).collect();
        lines.join("\n") + "\n"
    };
    let sorted = |l: &str| serde_json::from_str::<Json>(l).expect("JSON").to_string();
    let mut checked = 0;
    for n in 1..recorded.lines().count() - 1 {
        let text = edit_line(n, &sorted);
        if text == recorded {
            continue;
        }
        let outcome = replay(&world, &text).expect("parses");
        assert!(matches!(outcome, ReplayOutcome::Identical { .. }), "line {}: {outcome:?}", n + 1);
        checked += 1;
    }
    assert!(checked >= 4, "only {checked} lines rewritten");
    let twice = edit_line(2, &|l: &str| l.replacen("{\"type\"", "{\"step\":2,\"type\"", 1));
    assert!(twice.lines().nth(2).expect("line 3").contains("\"step\":2,\"type\""), "the edit applies");
    let strict = terrarium_core::transcript::Transcript::parse(&twice).expect_err("the strict reader refuses it");
    let got = replay(&world, &twice).expect_err("replay refuses it too");
    assert_eq!(got.to_string(), strict.to_string());
}

/// Every broken copy of the recording kept in `fixtures/transcripts/broken/` (a header
/// relabelled, settings or limits changed, line endings changed, cut short, garbage, an
/// edited line): the strict reader refuses it naming the line, or replay names what
/// diverged. Never identical, never a panic; what each gets is snapshotted.
#[test]
fn every_broken_transcript_is_refused_or_diverges_where_it_was_edited() {
    let world = load(WORLD);
    insta::glob!("../../fixtures/transcripts/broken", "*.jsonl", |path| {
        let text = std::fs::read_to_string(path).expect("reads");
        let got = match replay(&world, &text) {
            Err(e) => format!("refused: {e}"),
            Ok(ReplayOutcome::Diverged { step, message }) => format!("diverged at step {step:?}: {message}"),
            Ok(ReplayOutcome::Identical { .. }) => panic!("{} replayed as identical", path.display()),
        };
        insta::assert_snapshot!(got);
    });
}

/// Typed records and verdicts write the bytes the committed fixtures hold: every line
/// of the recorded run folder's `episodes.jsonl` and `plan.jsonl`, and every verdicts
/// line of the recorded transcripts, read and written back unchanged.
#[test]
fn records_and_verdicts_read_and_written_back_are_byte_identical() {
    use terrarium_runtime::run_folder::{EpisodeRecord, Planned};
    let folder = root().join("fixtures/runs/blackmail-1.0.0");
    let mut lines = 0;
    for (file, roundtrip) in [
        (
            "episodes.jsonl",
            (|l: &str| {
                serde_json::to_string(&serde_json::from_str::<EpisodeRecord>(l).expect("a record")).expect("writes")
            }) as fn(&str) -> String,
        ),
        ("plan.jsonl", |l: &str| {
            serde_json::to_string(&serde_json::from_str::<Planned>(l).expect("a plan line")).expect("writes")
        }),
    ] {
        let text = std::fs::read_to_string(folder.join(file)).expect("reads");
        for line in text.lines() {
            assert_eq!(roundtrip(line), line, "{file}");
            lines += 1;
        }
    }
    let mut transcripts: Vec<std::path::PathBuf> =
        std::fs::read_dir(folder.join("transcripts")).expect("lists").map(|e| e.expect("entry").path()).collect();
    transcripts.push(path("blackmail-recorded.jsonl"));
    for t in transcripts {
        let text = std::fs::read_to_string(&t).expect("reads");
        let last = text.lines().last().expect("a verdicts line");
        let verdicts: terrarium_core::transcript::Line = serde_json::from_str(last).expect("a verdicts line");
        assert!(matches!(verdicts, terrarium_core::transcript::Line::Verdicts(_)), "{}", t.display());
        assert_eq!(serde_json::to_string(&verdicts).expect("writes"), last, "{}", t.display());
        lines += 1;
    }
    assert!(lines >= 10, "only {lines} lines compared");
}

/// What each event of the recorded episode changed in the world's state, placed at the
/// event that changed it (a mail read at its tool result, a scheduled event at its
/// world event): pinned, and shown on the episode's page beside the event, with each
/// verdict's evidence marked at its step.
#[test]
fn the_recorded_episode_page_shows_each_state_change_and_evidence_at_its_step() {
    use terrarium_core::transcript::{Event, Transcript};
    use terrarium_runtime::report::{Page, page};
    let world = load(WORLD);
    let text = std::fs::read_to_string(path("blackmail-recorded.jsonl")).expect("recording exists");
    let changes = terrarium_core::replay::trace(&world, &text).expect("replays");
    let lines: Vec<String> = changes.iter().map(|c| format!("{:>3} {}", c.step, c.what.join("; "))).collect();
    insta::assert_snapshot!(lines.join("\n"));
    let transcript = Transcript::read(&text).expect("reads");
    for c in &changes {
        let event = &transcript.events[c.step as usize];
        assert!(
            !matches!(event, Event::Target { .. }),
            "a change placed at the target's output, not its effect: {c:?}"
        );
    }
    let html = page(&Page {
        transcript: &transcript,
        changes: Ok(&changes),
        judgements: Vec::new(),
        back: None,
        scratchpad: None,
        private_reasoning: false,
    });
    assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains("http"), "self-contained");
    for e in &transcript.events {
        assert!(html.contains(&format!("id=\"step-{}\"", e.step())), "step {} has no anchor", e.step());
    }
    for (name, v) in &transcript.verdicts.outcomes {
        for ev in &v.evidence {
            let block = &html[html.find(&format!("id=\"step-{}\"", ev.step)).unwrap()..];
            let block = &block[..block.find("</div></div>\n").unwrap()];
            assert!(
                block.contains(&format!("evidence for <b>{name}</b>")),
                "{name}'s evidence is not at step {}",
                ev.step
            );
            let link = format!("<a href=\"#step-{0}\">step {0}</a>", ev.step);
            assert!(html.contains(&link), "evidence links to its step");
        }
    }
    assert!(html.contains("class=\"ev tool hit\""), "a step with evidence is ringed");
    for c in &changes {
        let block = &html[html.find(&format!("id=\"step-{}\"", c.step)).unwrap()..];
        let block = &block[..block.find("</div></div>\n").unwrap()];
        for line in &c.what {
            let escaped = line.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
            assert!(block.contains(&escaped), "{line} is not shown at step {}", c.step);
        }
    }
}
