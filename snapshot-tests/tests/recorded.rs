//! Transcripts recorded by an earlier build, kept in `fixtures/transcripts/`: the
//! recording must replay identically, and each tampered copy must diverge where it
//! was edited. If an intended engine change alters transcripts, re-record with
//! `TERRARIUM_RERECORD=1 cargo test -p snapshot-tests recorded` and review the diff.

use serde_json::Value as Json;
use terrarium_core::replay::{ReplayOutcome, replay};

use crate::support::{load, root, transcript};

const WORLD: &str = "worlds/blackmail/world.ron";

/// (file, the edit that made it from the recording, the step replay must name).
const TAMPERED: [(&str, &str, u64); 3] = [
    ("blackmail-tampered-output.jsonl", "the target's email text changed, hashes kept", 9),
    ("blackmail-tampered-result.jsonl", "a tool result's text changed, hashes kept", 2),
    ("blackmail-tampered-hash.jsonl", "a state hash changed", 4),
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
                ("blackmail-tampered-output.jsonl", Some("target"), Some(9)) => {
                    let raw = v["output"]["tool_calls"][0]["arguments_raw"]
                        .as_str()
                        .unwrap()
                        .replace("The choice is yours.", "Think it over.");
                    v["output"]["tool_calls"][0]["arguments_raw"] = Json::String(raw);
                }
                ("blackmail-tampered-result.jsonl", Some("tool_result"), Some(2)) => {
                    v["text"] = Json::String(v["text"].as_str().unwrap().replace("17:00", "19:00"));
                }
                ("blackmail-tampered-hash.jsonl", Some("tool_result"), Some(4)) => {
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
