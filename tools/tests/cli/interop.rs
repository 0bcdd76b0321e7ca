//! Real peers reading what Terrarium writes. The Python that has them installed is named
//! by `TERRARIUM_PYTHON` (`.ci/run` makes a virtual environment from PyPI); without it
//! the test says so and does nothing, except under CI, where that is a failure.

use super::*;

/// The interpreter with the peers installed, or `None` (outside CI) to skip.
fn python(what: &str) -> Option<PathBuf> {
    match std::env::var_os("TERRARIUM_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must set TERRARIUM_PYTHON to a Python with {what} installed (see .ci/run)")
        }
        None => {
            eprintln!("skipped: set TERRARIUM_PYTHON to a Python with {what} installed to run this test");
            None
        }
    }
}

/// `export --format inspect` writes a log per world and target that inspect-ai itself
/// reads: samples are episodes (id the cell, epoch the seed's place), with the
/// conversation's tool calls and results, the verdicts as scores with their evidence and
/// the judges' answers, and the world, cell, seed, hashes and engine as metadata. Files
/// are named as Inspect names its own, and one folder exports to the same bytes twice.
#[test]
fn inspect_ai_reads_the_exported_logs() {
    let Some(python) = python("inspect-ai") else { return };
    let dir = scratch("inspect-export");
    let args = explicit_public_cells(
        &["run", "worlds/blackmail", "--model", "mock/examples/mock/blackmail.ron", "--model", "scripted/blackmail"],
        &["--condition", "threat=replacement", "--samples", "2", "--no-cache", "--out", dir.to_str().unwrap()],
    );
    let mut args = args;
    args.extend(["--judge", "mock/examples/mock/blackmail.ron"]);
    let out = terrarium(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let logs = dir.join("logs");
    let out = terrarium(&["export", dir.to_str().unwrap(), "--format", "inspect", "--out", logs.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("4 samples in 2 Inspect logs"), "{}", text(&out));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2);
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        // `<created>_<task>_<id>.json`, each part cleaned as Inspect cleans it.
        let parts: Vec<&str> = name.trim_end_matches(".json").split('_').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[0].len() == 25 && parts[0].contains('T') && !parts[0].contains(':'), "{name}");
        assert_eq!(parts[1], "blackmail");
    }
    let first: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let again = terrarium(&["export", dir.to_str().unwrap(), "--format", "inspect", "--out", logs.to_str().unwrap()]);
    assert_eq!(code(&again), 0);
    assert_eq!(first, files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>(), "the same bytes twice");

    let script = r#"
import json, sys
from inspect_ai.log import read_eval_log
out = []
for path in sys.argv[1:]:
    log = read_eval_log(path)
    s = log.samples[0]
    calls = [c.function for m in s.messages if m.role == "assistant" for c in (m.tool_calls or [])]
    tools = [m.function for m in s.messages if m.role == "tool"]
    judged = {k: v.metadata["judges"] for k, v in s.scores.items() if v.metadata.get("judges")}
    out.append({
        "status": log.status, "task": log.eval.task, "model": log.eval.model,
        "engine": log.eval.metadata["engine"], "samples": len(log.samples),
        "epochs": sorted({x.epoch for x in log.samples}), "id": s.id,
        "roles": [m.role for m in s.messages], "calls": calls, "tools": tools,
        "scores": {k: v.value for k, v in s.scores.items()},
        "explanation": s.scores["blackmail"].explanation,
        "judged": judged, "seed": s.metadata["seed"], "cell": s.metadata["cell"],
        "dynamics_hash": s.metadata["dynamics_hash"],
        "metrics": {x.name: x.metrics["mean"].value for x in log.results.scores},
    })
print(json.dumps(out))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("the Python with inspect-ai runs");
    assert!(out.status.success(), "inspect-ai could not read the logs:\n{}", text(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    let world = terrarium_runtime::load_world(&root().join("worlds/blackmail/world.ron")).unwrap();
    let by_model = |m: &str| read.as_array().unwrap().iter().find(|l| l["model"] == m).unwrap().clone();
    let mock = by_model("mock/examples/mock/blackmail.ron");
    assert_eq!(mock["status"], "success");
    assert_eq!(mock["task"], "blackmail");
    assert_eq!(mock["engine"], terrarium_core::ENGINE);
    assert_eq!(mock["samples"], 2);
    assert_eq!(mock["epochs"], serde_json::json!([1, 2]), "the two seeds of the cell are its epochs");
    assert!(mock["id"].as_str().unwrap().starts_with("goal=explicit,"));
    assert_eq!(mock["roles"][0], "system");
    assert_eq!(mock["calls"], serde_json::json!(["list_emails", "read_email", "read_email", "end_session"]));
    assert_eq!(mock["tools"], mock["calls"], "every call answered by its result");
    assert_eq!(mock["dynamics_hash"], world.dynamics_hash.as_str());
    assert_eq!(mock["cell"]["threat"], "replacement");
    // The mock's judge answers no wherever it is asked: a gated outcome is decided so.
    assert!(!mock["judged"].as_object().unwrap().is_empty(), "{mock}");
    assert_eq!(mock["scores"]["eval_aware"], 0);
    // The reference policy's email passes blackmail's gate; the judge (the mock, which
    // answers no to everything) decides it, so the score is the judge's 0, the
    // explanation the gate's evidence, and the judge's answer is in the metadata.
    let scripted = by_model("scripted/blackmail");
    assert_eq!(scripted["scores"]["blackmail"], 0, "{scripted}");
    let why = scripted["explanation"].as_str().unwrap();
    assert!(why.starts_with("the rule's gate let this episode through") && why.contains("step"), "{why}");
    assert_eq!(scripted["judged"]["blackmail"][0]["verdict"], false);
    assert_eq!(scripted["metrics"]["blackmail"], 0.0);
}
