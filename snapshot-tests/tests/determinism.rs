use serde_json::Value as Json;
use terrarium_core::replay::{ReplayOutcome, replay};

use crate::support::{all_worlds, load, load_rel, root, snapshot_cell, transcript};

#[test]
fn every_world_and_policy_reruns_byte_identically_and_replays_identically() {
    for path in all_worlds() {
        let world = load(&path);
        for policy in world.file.policies.keys() {
            let cell = snapshot_cell(&world, policy);
            for seed in 0..2 {
                let first = transcript(&world, &cell, seed, policy);
                let second = transcript(&world, &cell, seed, policy);
                assert_eq!(first, second, "{path} {policy} seed {seed}: reruns differ");
                let outcome = replay(&world, &first).expect("transcript parses");
                assert!(
                    matches!(outcome, ReplayOutcome::Identical { .. }),
                    "{path} {policy} seed {seed}: replay diverged: {outcome:?}"
                );
            }
        }
    }
}

/// Edit the first line matching `pick` with `edit`, leaving every hash as it was.
fn tamper(text: &str, pick: impl Fn(&Json) -> bool, edit: impl Fn(&mut Json)) -> String {
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut v: Json = serde_json::from_str(line).expect("json line");
            if !done && pick(&v) {
                edit(&mut v);
                done = true;
                serde_json::to_string(&v).expect("serialises")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(done, "nothing to tamper with");
    lines.join("\n") + "\n"
}

fn blackmail_transcript() -> (terrarium_core::World, String) {
    let world = load("worlds/blackmail/world.ron");
    let cell = world.default_cell.clone();
    let text = transcript(&world, &cell, 3, "blackmail");
    (world, text)
}

fn diverged_at(world: &terrarium_core::World, text: &str) -> (Option<u64>, String) {
    match replay(world, text).expect("parses") {
        ReplayOutcome::Diverged { step, message } => (step, message),
        ReplayOutcome::Identical { .. } => panic!("tampering went unnoticed"),
    }
}

#[test]
fn a_tampered_target_output_is_caught_at_its_step() {
    let (world, text) = blackmail_transcript();
    let is_send = |v: &Json| v["type"] == "target" && v["output"]["tool_calls"][0]["name"] == "send_email";
    let tampered = tamper(&text, is_send, |v| {
        let raw = v["output"]["tool_calls"][0]["arguments_raw"]
            .as_str()
            .unwrap()
            .replace("The choice is yours", "Think it over");
        v["output"]["tool_calls"][0]["arguments_raw"] = Json::String(raw);
    });
    let step =
        text.lines().map(|l| serde_json::from_str::<Json>(l).unwrap()).find(|v| is_send(v)).unwrap()["step"].as_u64();
    let (at, message) = diverged_at(&world, &tampered);
    assert_eq!(at, step, "{message}");
    assert!(message.contains("chain"), "{message}");
}

#[test]
fn a_tampered_text_only_output_is_caught_even_though_it_changes_no_state() {
    let world = load("fixtures/worlds/greenhouse/world.ron");
    let text = transcript(&world, &world.default_cell, 0, "idle");
    let tampered = tamper(&text, |v| v["type"] == "target", |v| v["output"]["text"] = Json::String("I refuse.".into()));
    let (at, message) = diverged_at(&world, &tampered);
    assert_eq!(at, Some(1), "{message}");
}

#[test]
fn a_tampered_tool_result_is_caught_even_with_its_hashes_left_alone() {
    let (world, text) = blackmail_transcript();
    let tampered = tamper(
        &text,
        |v| v["type"] == "tool_result" && v["tool"] == "read_email",
        |v| {
            let t = v["text"].as_str().unwrap().replace("17:00", "19:00");
            v["text"] = Json::String(t);
        },
    );
    let (at, message) = diverged_at(&world, &tampered);
    assert_eq!(at, Some(2), "{message}");
    assert!(message.contains("`text` differs"), "{message}");
}

#[test]
fn an_edited_world_is_caught_by_its_dynamics_hash() {
    let (_, text) = blackmail_transcript();
    let original = std::fs::read_to_string(root().join("worlds/blackmail/world.ron")).unwrap();
    let edited = original.replace("Reply with your choice", "Reply with your order");
    assert_ne!(original, edited);
    let folder = root().join("worlds/blackmail");
    let mut read = terrarium_runtime::worlds::FolderIncludes::new(&folder);
    let world = terrarium_core::load("worlds/blackmail/world.ron", &edited, &mut read).expect("still valid");
    let (_, message) = diverged_at(&world, &text);
    assert!(message.contains("dynamics hash"), "{message}");
}

#[test]
fn comments_line_endings_and_policies_do_not_change_the_dynamics_hash() {
    let world = load("worlds/blackmail/world.ron");
    let original = std::fs::read_to_string(root().join("worlds/blackmail/world.ron")).unwrap();
    let folder = root().join("worlds/blackmail");
    let mut read = terrarium_runtime::worlds::FolderIncludes::new(&folder);
    let crlf = format!("// an extra comment\n{original}").replace('\n', "\r\n");
    let again = terrarium_core::load("elsewhere/world.ron", &crlf, &mut read).expect("valid");
    assert_eq!(world.dynamics_hash, again.dynamics_hash);
    assert_eq!(world.outcomes_hash, again.outcomes_hash);

    let new_policy = original.replace("description: \"Looks at the mailbox", "description: \"Glances at the mailbox");
    let again = terrarium_core::load("w.ron", &new_policy, &mut read).expect("valid");
    assert_eq!(world.dynamics_hash, again.dynamics_hash, "policies must not affect the dynamics hash");

    let new_outcome =
        original.replace("The assistant sends any email that mentions", "The assistant sends an email that mentions");
    let again = terrarium_core::load("w.ron", &new_outcome, &mut read).expect("valid");
    assert_eq!(world.dynamics_hash, again.dynamics_hash, "outcomes must not affect the dynamics hash");
    assert_ne!(world.outcomes_hash, again.outcomes_hash, "outcome edits must change the outcomes hash");
}

#[test]
fn episode_ids_are_deterministic_distinct_and_file_safe() {
    let world = load("worlds/blackmail/world.ron");
    let settings = serde_json::json!({});
    let mut ids = std::collections::BTreeSet::new();
    for cell in &world.cells {
        for seed in 0..5 {
            let id = terrarium_core::EpisodeKey::new(&world, cell, seed, "scripted/idle", &settings).id();
            assert_eq!(id, terrarium_core::EpisodeKey::new(&world, cell, seed, "scripted/idle", &settings).id());
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{id}");
            ids.insert(id);
        }
    }
    assert_eq!(ids.len(), world.cells.len() * 5);
    let _ = load_rel;
}

#[test]
fn an_output_nested_deeper_than_a_reader_can_follow_still_replays_and_views() {
    use terrarium_core::transcript::{render_event, render_verdicts};
    use terrarium_core::{Episode, TargetOutput, ToolCall};
    let world = load("fixtures/worlds/greenhouse/world.ron");
    let mut deep = Json::from(1);
    for _ in 0..130 {
        deep = serde_json::json!({"k": deep});
    }
    let mut ep = Episode::start(&world, &world.default_cell, 0).expect("starts");
    let call = ToolCall {
        id: "c1".into(),
        name: "read_sensors".into(),
        arguments_raw: serde_json::to_string(&serde_json::json!({"x": deep})).unwrap(),
        arguments: Some(serde_json::json!({"x": deep})),
    };
    let mut output = TargetOutput { text: String::new(), tool_calls: vec![call], ..Default::default() };
    output.meta.usage = Some(deep.clone());
    ep.apply(output);
    ep.stop_by_target("done".into());
    let header = terrarium_core::EpisodeKey::new(&world, &world.default_cell, 0, "test/deep", &Json::Null).header();
    let text = terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts());
    match replay(&world, &text).expect("the transcript reads back") {
        ReplayOutcome::Identical { .. } => {}
        other => panic!("a deep output no longer replays: {other:?}"),
    }
    for e in ep.events() {
        let _ = render_event(e);
    }
    let _ = render_verdicts(&ep.verdicts());
    assert!(text.lines().all(|l| serde_json::from_str::<Json>(l).is_ok()), "every line reads back as JSON");
}

/// Every way an episode can end from outside the world replays exactly: a fault on
/// the run's side (nothing recorded after it, no clock running on), the target's side
/// stopping in a world whose clock runs on (the stop recorded after the world's
/// run-on events), and a last reply the world's answer to which was never sent.
#[test]
fn episodes_ended_by_faults_and_by_the_targets_side_replay_exactly() {
    use terrarium_core::transcript::{Event, StopBy};
    use terrarium_core::{Episode, TargetOutput, ToolCall};
    let say = |text: &str| TargetOutput { text: text.into(), ..TargetOutput::default() };
    let page = TargetOutput {
        tool_calls: vec![ToolCall {
            id: "c1".into(),
            name: "list_alerts".into(),
            arguments_raw: "{}".into(),
            arguments: None,
        }],
        ..TargetOutput::default()
    };
    let world = load("worlds/denial_of_care/world.ron");
    let cell = &world.default_cell;
    let replays = |ep: &Episode, what: &str| {
        let header = terrarium_core::EpisodeKey::new(&world, cell, 0, "test/stops", &serde_json::json!({})).header();
        let text = terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts());
        let outcome = replay(&world, &text).expect("the transcript reads back");
        assert!(matches!(outcome, ReplayOutcome::Identical { .. }), "{what}: {outcome:?}");
    };

    // A fault: the stop is the last event, and the clock did not run on.
    let mut ep = Episode::start(&world, cell, 0).expect("starts");
    ep.apply(page.clone());
    let time_before = ep.state().time_ms;
    ep.abort("error".into());
    assert!(matches!(ep.events().last(), Some(Event::Stop { by: StopBy::Fault, .. })));
    assert!(!matches!(ep.events()[ep.events().len() - 2], Event::World { .. }), "nothing ran on after the fault");
    assert_eq!(ep.state().time_ms, time_before);
    replays(&ep, "a fault");

    // The target's side stops: the clock runs on to the world's end, then the stop.
    let mut ep = Episode::start(&world, cell, 0).expect("starts");
    ep.apply(page.clone());
    ep.stop_by_target("refusal".into());
    let stop_at = ep.events().len() - 1;
    assert!(matches!(ep.events()[stop_at - 1], Event::World { .. }), "the world ran on before the stop");
    replays(&ep, "a refusal with the clock running on");

    // A last reply of text alone: no nudge was sent, so none is recorded.
    let mut ep = Episode::start(&world, cell, 0).expect("starts");
    ep.apply_last(say(""));
    ep.stop_by_target("empty_reply".into());
    assert!(
        !ep.events().iter().any(|e| matches!(e, Event::World { kind, .. } if kind == "nudge")),
        "a nudge that was never sent is not recorded"
    );
    assert!(matches!(ep.events()[1], Event::Target { last: true, .. }));
    replays(&ep, "a last empty reply");

    // The same in a conversation world: the simulated user's next line is not recorded.
    let world = load("worlds/delusion/world.ron");
    let mut ep = Episode::start(&world, &world.default_cell, 0).expect("starts");
    ep.apply_last(say("I can't continue this conversation."));
    ep.stop_by_target("refusal".into());
    assert!(!ep.events().iter().any(|e| matches!(e, Event::User { .. })), "{:?}", ep.events());
    let header =
        terrarium_core::EpisodeKey::new(&world, &world.default_cell, 0, "test/stops", &serde_json::json!({})).header();
    let text = terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts());
    assert!(matches!(replay(&world, &text).expect("reads"), ReplayOutcome::Identical { .. }));
}
