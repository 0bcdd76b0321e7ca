//! The sweep as a second front end drives it: `terrarium_runtime::sweep` with a
//! `SweepSpec` in, events and a summary out, and nothing from the binary.

use std::collections::BTreeSet;

use terrarium_runtime::sweep::{self, SweepEvent, SweepSpec, TargetSpec};

use crate::support::{load, root};

fn spec(out: &std::path::Path, targets: Vec<TargetSpec>) -> SweepSpec {
    SweepSpec {
        worlds: vec![load("worlds/blackmail/world.ron"), load("fixtures/worlds/greenhouse/world.ron")],
        filter: Vec::new(),
        seed: 3,
        samples: 2,
        limit: None,
        shard: None,
        out: Some(out.to_path_buf()),
        replace: false,
        retry_errored: true,
        targets,
        judges: Vec::new(),
        judge_sees_reasoning: true,
        monitors: Vec::new(),
        monitor_sees_hidden_reasoning: false,
        user_model: None,
        max_api_calls: None,
        max_cost: None,
        max_connections: 4,
        build: None,
        branch: None,
    }
}

fn lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect()
}

#[test]
fn the_planned_ids_are_the_recorded_ids_and_a_second_sweep_resumes_to_nothing() {
    let out = root().join("target/tmp-sweep-api");
    let _ = std::fs::remove_dir_all(&out);
    let targets = || vec![TargetSpec::Scripted("idle".into()), TargetSpec::Scripted("benign".into())];
    let mut events = Vec::new();
    let summary = sweep::run(&spec(&out, targets()), &mut |e| events.push(e)).expect("the sweep runs");
    // 8 blackmail cells and 2 greenhouse cells, 2 seeds each, 2 policies (less where a
    // policy declares it fits only some cells).
    assert!(summary.total > 20 && summary.skipped == 0 && summary.errored == 0, "{summary:?}");
    assert_eq!(summary.new_episodes(), summary.total);
    assert!(events.iter().any(|e| matches!(e, SweepEvent::Progress(p) if p.done == p.total)));

    // One identity: what the planner wrote, what each record says, what each header says.
    let planned: BTreeSet<String> =
        lines(&out.join("plan.jsonl")).iter().map(|p| p["episode_id"].as_str().unwrap().to_string()).collect();
    let recorded: BTreeSet<String> =
        lines(&out.join("episodes.jsonl")).iter().map(|r| r["episode_id"].as_str().unwrap().to_string()).collect();
    let mut headers = BTreeSet::new();
    let folder = terrarium_runtime::run_folder::RunFolder::read(&out).unwrap();
    assert_eq!(folder.transcripts.packed(), recorded.len(), "every transcript packed");
    for id in &recorded {
        let text = folder.transcripts.read_id(id).unwrap();
        let transcript = terrarium_core::transcript::Transcript::read(&text).expect("a genuine transcript");
        headers.insert(transcript.header.episode_id);
    }
    assert_eq!(planned.len(), summary.total);
    assert_eq!(planned, recorded);
    assert_eq!(planned, headers);

    // The same sweep again: everything is in the folder.
    let again = sweep::run(&spec(&out, targets()), &mut |_| {}).expect("resumes");
    assert_eq!((again.total, again.skipped, again.new_episodes()), (summary.total, summary.total, 0));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_sweep_that_cannot_run_says_why_without_touching_the_folder() {
    let out = root().join("target/tmp-sweep-invalid");
    let _ = std::fs::remove_dir_all(&out);
    let mut s = spec(&out, vec![TargetSpec::Scripted("no_such_policy".into())]);
    let e = sweep::run(&s, &mut |_| {}).expect_err("no such policy");
    assert!(e.to_string().contains("has no policy `no_such_policy`"), "{e}");
    s.targets = vec![TargetSpec::Scripted("idle".into())];
    s.samples = 0;
    assert!(sweep::run(&s, &mut |_| {}).expect_err("no samples").to_string().contains("--samples"));
    assert!(!out.exists(), "nothing was written");
}
