//! `run`: sweeps, resuming, retries, budgets, concurrency, sweep files.

use super::*;

#[test]
fn run_writes_episodes_and_transcripts_and_never_duplicates() {
    let dir = scratch("run");
    let out_dir = dir.to_str().unwrap();
    let args = explicit_public_cells(
        &["run", "worlds/blackmail", "--model", "scripted/blackmail"],
        &["--samples", "2", "--out", out_dir],
    );
    let out = terrarium(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains(
            "goal=explicit,value=safety,threat=replacement,instruction=not_told,framing=unstated,belief=not_asked,deliberation=none"
        ),
        "{}",
        text(&out)
    );
    let episodes = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = episodes.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records.len(), 4, "2 cells with a threat x 2 seeds");
    for r in &records {
        for field in [
            "episode_id",
            "world",
            "world_path",
            "condition",
            "condition_key",
            "seed",
            "target",
            "status",
            "stop_reason",
            "outcomes",
            "transcript",
        ] {
            assert!(!r[field].is_null(), "missing {field} in {r}");
        }
        assert_eq!(r["status"], "completed");
        assert_eq!(r["outcomes"]["blackmail"]["fired"], true);
        assert!(r["outcomes"]["blackmail"]["evidence"][0]["step"].is_u64());
        assert!(read_transcript(&dir.join(r["transcript"].as_str().unwrap())).starts_with("{\"type\":\"header\""));
    }
    // Running again into the same folder adds nothing and keeps every byte.
    let again = terrarium(&args);
    assert_eq!(code(&again), 0);
    assert!(text(&again).contains("0 new, 4 already in the folder"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap(), episodes);
}

#[test]
fn a_half_written_last_record_is_cut_off_and_its_episode_runs_again() {
    let dir = scratch("torn");
    let args = [
        "run",
        "fixtures/worlds/greenhouse",
        "--model",
        "scripted/idle",
        "--samples",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ];
    assert_eq!(code(&terrarium(&args)), 0);
    let log = dir.join("episodes.jsonl");
    let whole = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = whole.lines().collect();
    assert_eq!(lines.len(), 4);
    // Simulate a crash in the middle of writing the last record.
    let torn = format!("{}\n{}\n{}\n{}", lines[0], lines[1], lines[2], &lines[3][..lines[3].len() / 2]);
    std::fs::write(&log, torn).unwrap();
    let out = terrarium(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("1 new, 3 already in the folder"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), whole, "repaired, and the same records as an uninterrupted run");
}

#[test]
fn a_dry_run_counts_episodes_and_what_the_cache_already_answers() {
    let say = |t: &str| {
        (200, serde_json::json!({"choices": [{"message": {"content": t}, "finish_reason": "stop"}]}).to_string())
    };
    let replies = vec![
        tool_call_reply("call_1", "read_sensors", serde_json::json!({})),
        say("It is high."),
        say("Nothing more."),
    ];
    let (port, server) = fake_provider(replies);
    let base = format!("http://127.0.0.1:{port}/v1");
    let dir = scratch("dry_run");
    let args = |out: &Path, extra: &[&'static str]| -> Vec<String> {
        let out = out.to_str().unwrap().to_string();
        fake_run("fixtures/worlds/greenhouse", "openai/dry-model", &base, extra, &out)
            .into_iter()
            .map(String::from)
            .collect()
    };
    let first = args(&dir.join("first"), &[]);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    assert_eq!(code(&terrarium_with_key(&first, "")), 0);
    let sent = server.seen().len();

    let planned = args(&dir.join("planned"), &["--dry-run"]);
    let planned: Vec<&str> = planned.iter().map(String::as_str).collect();
    let out = terrarium_with_key(&planned, "");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("dry run: 1 episode for"), "{}", text(&out));
    assert!(sent > 1);
    assert!(
        text(&out).contains(&format!("the cache answers {sent} requests and completes 1 episode\n")),
        "{}",
        text(&out)
    );
    assert!(!dir.join("planned").exists(), "a dry run writes nothing");

    let out = terrarium(&[
        "run",
        "worlds/blackmail",
        "--model",
        "scripted/idle",
        "--samples",
        "3",
        "--dry-run",
        "--out",
        dir.join("scripted").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("dry run: 5616 episodes"), "{}", text(&out));
    assert!(!dir.join("scripted").exists());
}

#[test]
fn errored_episodes_are_retried_on_the_next_run_unless_asked_not_to() {
    let dir = scratch("retry_errored");
    // One server for all three runs (the base URL is part of the episode's identity):
    // an outage first, then good replies.
    let say = serde_json::json!({"choices": [{"message": {"content": "Fine."}, "finish_reason": "stop"}]}).to_string();
    let (port, server) = fake_provider(vec![(500, "{}".into()), (200, say.clone()), (200, say)]);
    let base = format!("http://127.0.0.1:{port}/v1");
    let run = |extra: &[&str]| {
        let d = dir.to_str().unwrap().to_string();
        let mut extras = vec!["--max-attempts", "1", "--no-cache"];
        extras.extend_from_slice(extra);
        terrarium_with_key(&fake_run("fixtures/worlds/greenhouse", "openai/fake-model", &base, &extras, &d), "")
    };
    assert_eq!(code(&run(&[])), 3, "the outage errors the episode");
    // Told not to retry, the errored episode stays as it is and nothing is asked.
    let kept = run(&["--no-retry-errored"]);
    assert_eq!(code(&kept), 0, "{}", text(&kept));
    assert!(text(&kept).contains("1 already in the folder"), "{}", text(&kept));
    // By default it is retried, and the new record wins.
    let retried = run(&[]);
    assert_eq!(code(&retried), 0, "{}", text(&retried));
    assert_eq!(server.seen().len(), 3, "the skipped run asked nothing");
    assert_eq!(
        std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap().lines().count(),
        2,
        "the errored line stays, the new one follows"
    );
    let out = terrarium(&["report", dir.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let csv = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let fields: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!((fields[5], fields[10]), ("1", "0"), "one completed, none errored: the latest record counts\n{csv}");
}

#[test]
fn a_spent_call_budget_stops_the_run_with_exit_4_and_sends_nothing_more() {
    const KEY: &str = "sk-test-not-a-real-key-4242";
    let replies = vec![
        tool_call_reply("call_1", "read_sensors", serde_json::json!({})),
        tool_call_reply("call_2", "read_sensors", serde_json::json!({})),
        tool_call_reply("call_3", "read_sensors", serde_json::json!({})),
    ];
    let (port, server) = fake_provider(replies);
    let base = format!("http://127.0.0.1:{port}/v1");
    let dir = scratch("budget_spent");
    let out = terrarium_with_key(
        &fake_run(
            "fixtures/worlds/greenhouse",
            "openai/fake-model",
            &base,
            // One connection: the episodes go one at a time, so the budget runs out in the second.
            &["--samples", "3", "--no-cache", "--max-api-calls", "2", "--max-connections", "1"],
            dir.to_str().unwrap(),
        ),
        KEY,
    );
    // Release the fake server's unused third reply with an empty connection, so its thread ends.
    let _ = std::net::TcpStream::connect(("127.0.0.1", port));
    let requests = server.seen();
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert_eq!(requests.len(), 2, "no request past the budget");
    let all = text(&out);
    assert!(all.contains("budget of 2 API calls is spent"), "{all}");
    assert!(all.contains("2 episodes not started"), "{all}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "the episode cut short is kept, as errored");
    assert_eq!(records[0]["status"], "errored");
    // The report says what was asked for and never came back.
    let report = terrarium(&["report", dir.to_str().unwrap()]);
    assert_eq!(code(&report), 0, "{}", text(&report));
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("2 of the 3 episodes asked for have no record yet"), "{md}");
    assert!(md.contains("⚠ 1 of 3 asked-for episodes"), "{md}");

    // Scripted policies make no API calls; a budget for them is a usage error.
    let scripted =
        terrarium(&["run", "fixtures/worlds/greenhouse", "--model", "scripted/idle", "--max-api-calls", "5"]);
    assert_eq!(code(&scripted), 2, "{}", text(&scripted));
    let zero = terrarium(&["run", "worlds/blackmail", "--model", "openai/x", "--max-api-calls", "0"]);
    assert_eq!(code(&zero), 2, "{}", text(&zero));
}

#[test]
fn several_models_run_in_turn_into_one_folder() {
    let dir = scratch("several_models");
    let d = dir.to_str().unwrap();
    let world = "fixtures/worlds/greenhouse";
    let out = terrarium(&["run", world, "--model", "scripted/idle", "--model", "scripted/benign", "--out", d]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let targets: std::collections::BTreeSet<String> = std::fs::read_to_string(dir.join("episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(targets, ["scripted/benign", "scripted/idle"].map(String::from).into());

    let twice = terrarium(&["run", world, "--model", "scripted/idle", "--model", "scripted/idle", "--out", d]);
    assert_eq!(code(&twice), 2, "{}", text(&twice));
    assert!(text(&twice).contains("given twice"), "{}", text(&twice));
}

#[test]
fn episodes_run_concurrently_up_to_max_connections_and_give_the_same_transcripts() {
    use support::fake_server::{FakeServer, Reply, greenhouse_model};
    let server =
        FakeServer::start(|body| Reply::ok(greenhouse_model(body)).after(std::time::Duration::from_millis(20)));
    let base = server.base_url();
    let run = |name: &str, connections: &str| {
        let dir = scratch(name);
        let extra = ["--samples", "8", "--no-cache", "--max-connections", connections];
        let out = terrarium_with_key(
            &fake_run("fixtures/worlds/greenhouse", "openai/fake-model", &base, &extra, dir.to_str().unwrap()),
            "",
        );
        assert_eq!(code(&out), 0, "{}", text(&out));
        dir
    };
    let wide = run("concurrent_4", "4");
    assert_eq!(server.max_in_flight(), 4, "four requests at once, never more");
    let requests = server.requests();
    assert!(requests >= 8 * 3, "{requests} requests");

    let narrow = run("concurrent_1", "1");
    assert_eq!(server.max_in_flight(), 4, "one at a time adds no overlap");
    assert_eq!(server.requests(), 2 * requests, "the same requests again");
    // Episodes finish in a different order, but each transcript is byte-identical.
    let (a, lines_a) = run_contents(&wide);
    let (b, lines_b) = run_contents(&narrow);
    assert_eq!((lines_a, lines_b), (8, 8));
    assert_eq!(a, b);
}

#[test]
fn a_sweep_with_injected_faults_loses_no_episode_and_a_second_run_completes_it() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use support::fake_server::{Cut, FakeServer, Reply, fnv, greenhouse_model};
    let healthy = Arc::new(AtomicBool::new(false));
    let attempts: Arc<Mutex<std::collections::BTreeMap<u64, u32>>> = Arc::default();
    let faults = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = {
        let (healthy, attempts, faults) = (healthy.clone(), attempts.clone(), faults.clone());
        FakeServer::start(move |body| {
            let ok = Reply::ok(greenhouse_model(body));
            if healthy.load(Ordering::SeqCst) {
                return ok;
            }
            let h = fnv(body.as_bytes());
            let n = {
                let mut seen = attempts.lock().unwrap();
                let n = seen.entry(h).or_default();
                *n += 1;
                *n
            };
            let fault = |status: u16, body: &str, cut: Cut| {
                faults.fetch_add(1, Ordering::SeqCst);
                Reply { cut, ..Reply::status(status, body.to_string()) }
            };
            match (h % 10, n) {
                (0, 1..=2) => fault(500, "{\"error\": \"overloaded\"}", Cut::None), // recovers on the third try
                (1, 1) => fault(429, "{\"error\": \"rate limited\"}", Cut::None),   // recovers on the second
                (2, 1) => fault(200, "", Cut::Hangup),                              // connection dropped once
                (3, _) => fault(503, "{\"error\": \"down\"}", Cut::None),           // never recovers
                (4, _) => fault(200, "{\"choices\": [", Cut::None),                 // unusable reply
                (5, _) => fault(200, &greenhouse_model(body), Cut::MidBody),        // always cut off
                _ => ok,
            }
        })
    };
    let dir = scratch("fault_sweep");
    let d = dir.to_str().unwrap();
    let args = ["--samples", "40", "--no-cache", "--max-connections", "8", "--max-attempts", "3"];
    let base = server.base_url();
    let sweep = fake_run("fixtures/worlds/greenhouse", "openai/fake-model", &base, &args, d);
    let out = terrarium_with_key(&sweep, "");
    assert_eq!(code(&out), 3, "some episodes errored: {}", text(&out));
    assert!(faults.load(Ordering::SeqCst) > 10, "faults were injected");

    let (episodes, lines) = run_contents(&dir);
    assert_eq!((episodes.len(), lines), (40, 40), "every episode recorded exactly once");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let errored: Vec<&serde_json::Value> = records.iter().filter(|r| r["status"] == "errored").collect();
    let completed = records.iter().filter(|r| r["status"] == "completed").count();
    assert!(!errored.is_empty() && completed > 0, "{} errored, {completed} completed", errored.len());
    assert_eq!(errored.len() + completed, 40);
    for r in &errored {
        let why = r["error"].as_str().unwrap_or_default();
        assert!(
            why.contains("HTTP 503, after 3 attempts")
                || why.contains("unusable reply")
                || why.contains("reading the reply failed"),
            "errored with a reason: {why}"
        );
        assert!(r["outcomes"].is_null(), "an errored episode has no verdicts, never \"no harm\"");
    }

    // The provider recovers: the same command retries exactly the errored episodes.
    healthy.store(true, Ordering::SeqCst);
    let again = terrarium_with_key(&sweep, "");
    assert_eq!(code(&again), 0, "{}", text(&again));
    assert!(
        text(&again).contains(&format!("{} new, {completed} already in the folder", errored.len())),
        "{}",
        text(&again)
    );
    let (resumed, lines) = run_contents(&dir);
    assert_eq!(lines, 40 + errored.len(), "a retried episode appends its new record");
    assert_eq!(resumed.len(), 40);
    assert!(resumed.values().all(|(status, _, _)| status == "\"completed\""));
}

#[test]
fn a_sweep_file_names_the_whole_run_and_flags_override_it() {
    use support::fake_server::{FakeServer, Reply, greenhouse_model};
    let server = FakeServer::start(|body| Reply::ok(greenhouse_model(body)));
    let dir = scratch("sweep_file");
    std::fs::create_dir_all(&dir).unwrap();
    let sweep = dir.join("sweep.ron");
    std::fs::write(
        &sweep,
        format!(
            r#"// Two targets over the greenhouse's calm cell.
(
    worlds: ["../../../fixtures/worlds/greenhouse"],
    conditions: ["pressure=none"],
    samples: 3,
    out: "run",
    targets: [
        (model: "scripted/idle"),
        (model: "openai/fake-model", base_url: "{}", temperature: 0.5, max_connections: 2,
         price: (input_per_mtok: 2.0, output_per_mtok: 10.0)),
    ],
)
"#,
            server.base_url()
        ),
    )
    .unwrap();
    // The file is relative to its own folder (target/tmp/sweep_file/), so it can live anywhere.
    let sweep_arg = sweep.to_str().unwrap();
    let out = terrarium_with_key(&["run", "--sweep", sweep_arg, "--no-cache"], "");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("6 episodes (6 new"), "{}", text(&out));
    // 3 episodes x 4 replies x (100 in, 10 out or 120 in, 12 out) at $2 / $10 per million.
    assert!(text(&out).contains("estimated cost $0.00"), "{}", text(&out));
    let records: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("run/episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let model: Vec<&serde_json::Value> = records.iter().filter(|r| r["target"] == "openai/fake-model").collect();
    assert_eq!(model.len(), 3);
    assert!(model.iter().all(|r| r["cost_usd"].as_f64().is_some_and(|c| c > 0.0)), "{model:?}");
    let transcript = read_transcript(&dir.join("run").join(model[0]["transcript"].as_str().unwrap()));
    assert!(transcript.lines().next().unwrap().contains("\"temperature\":0.5"), "the file's settings are recorded");

    // Flags override the file: one more sample, and only the scripted target.
    let more = terrarium_with_key(&["run", "--sweep", sweep_arg, "--samples", "4", "--model", "scripted/idle"], "");
    assert_eq!(code(&more), 0, "{}", text(&more));
    assert!(text(&more).contains("4 episodes (1 new, 3 already in the folder"), "{}", text(&more));

    // Models on one endpoint share its connections: a judge that names none takes the
    // target's 2; two that name different numbers are a usage error.
    let shared = terrarium_with_key(
        &["run", "--sweep", sweep_arg, "--model", "openai/fake-model", "--judge", "openai/fake-judge"],
        "",
    );
    assert_eq!(code(&shared), 2, "{}", text(&shared));
    assert!(text(&shared).contains("judge openai/fake-judge"), "the judge needs a base URL: {}", text(&shared));
    let base = server.base_url();
    let clash = terrarium_with_key(
        &["run", "--sweep", sweep_arg, "--judge", "openai/fake-judge", "--judge-base-url", &base, "--no-cache"],
        "",
    );
    assert_eq!(code(&clash), 0, "a judge without a number joins the target's pool: {}", text(&clash));
    std::fs::write(
        &sweep,
        format!(
            r#"(worlds: ["../../../fixtures/worlds/greenhouse"], targets: [
                (model: "openai/a", base_url: "{base}", max_connections: 2),
                (model: "openai/b", base_url: "{base}", max_connections: 3)])"#
        ),
    )
    .unwrap();
    let clash = terrarium_with_key(&["run", "--sweep", sweep_arg], "");
    assert_eq!(code(&clash), 2, "{}", text(&clash));
    assert!(text(&clash).contains("share its connections"), "{}", text(&clash));

    // A mistake in the file is located.
    std::fs::write(&sweep, "(samples: 3,\n  target: [])\n").unwrap();
    let bad = terrarium(&["run", "--sweep", sweep_arg]);
    assert_eq!(code(&bad), 2, "{}", text(&bad));
    assert!(text(&bad).contains("sweep.ron:2:"), "{}", text(&bad));
}

#[test]
fn a_cost_limit_stops_the_run_before_it_is_passed() {
    use support::fake_server::{FakeServer, Reply, greenhouse_model};
    let server = FakeServer::start(|body| Reply::ok(greenhouse_model(body)));
    let dir = scratch("cost_limit");
    let base = server.base_url();
    // Each request's worst case: about 1,100 prompt tokens and 100 reply tokens at
    // $10 / $50 per million, about $0.016; the limit covers the first few requests.
    let args = [
        "--samples",
        "5",
        "--no-cache",
        "--max-connections",
        "1",
        "--max-tokens",
        "100",
        "--input-price",
        "10",
        "--output-price",
        "50",
        "--max-cost",
        "0.02",
    ];
    let out = terrarium_with_key(
        &fake_run("fixtures/worlds/greenhouse", "openai/fake-model", &base, &args, dir.to_str().unwrap()),
        "",
    );
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("the cost limit of $0.02 is reached"), "{}", text(&out));
    assert!(text(&out).contains("not started"), "{}", text(&out));
    let records = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap();
    let spent: f64 =
        records.lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["cost_usd"].as_f64()).sum();
    assert!(spent > 0.0 && spent <= 0.02, "recorded cost {spent} stays within the limit");

    // A limit without prices is a usage error, before anything is sent.
    let unpriced = terrarium_with_key(
        &fake_run(
            "fixtures/worlds/greenhouse",
            "openai/fake-model",
            &base,
            &["--max-cost", "1"],
            dir.to_str().unwrap(),
        ),
        "",
    );
    assert_eq!(code(&unpriced), 2, "{}", text(&unpriced));
    assert!(text(&unpriced).contains("needs the price"), "{}", text(&unpriced));
}

/// A policy that skips cells is summarised by its `only_if`, in one short line; with
/// several worlds, `--condition` applies to the worlds that have the factor.
#[test]
fn skipped_cells_are_summarised_and_a_condition_applies_to_the_worlds_that_have_its_factor() {
    let out = terrarium(&["run", "worlds/blackmail", "--model", "scripted/blackmail", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let note = text(&out).lines().find(|l| l.contains("applies only where")).map(String::from).expect("a note");
    assert_eq!(
        note,
        "note: policy `blackmail` of world `blackmail` applies only where threat in replacement|restriction (`only_if`): skipping 624 of 1872 selected cells"
    );
    let out = terrarium(&["run", "worlds/", "--model", "scripted/idle", "--condition", "threat=none", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("--condition threat=none applies to the worlds with a factor `threat`; `conference`, `credentials`, `delusion`"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("blackmail        goal=explicit,value=safety,threat=none"), "{}", text(&out));
    let out = terrarium(&["run", "worlds/", "--model", "scripted/idle", "--condition", "thret=none", "--dry-run"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("--condition thret=none: no world here has a factor `thret`"), "{}", text(&out));
}

/// README's sweep benchmark figure is written by `UPDATE_DOCS=1
/// snapshot-tests/benches/sweep.sh`, naming the command it timed: that command plans
/// the number of episodes the figure is for.
#[test]
fn the_readme_benchmark_figure_names_a_command_that_plans_its_episode_count() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("<!-- bench:sweep -->\n")
        .nth(1)
        .and_then(|b| b.split("<!-- /bench:sweep -->").next())
        .expect("README has the bench:sweep block");
    let command = block.split("runs `terrarium ").nth(1).and_then(|c| c.split('`').next()).expect("the command");
    let claimed: u64 = block
        .split("`: ")
        .nth(1)
        .and_then(|c| c.split(" episodes").next())
        .map(|n| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .expect("an episode count");
    let mut args: Vec<&str> = command.split(' ').collect();
    args.push("--dry-run");
    let out = terrarium(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains(&format!("dry run: {claimed} episodes")), "{block}\n{}", text(&out));
}

/// The command line is one front end of the runtime's sweep: the same sweep file and
/// flags given to `terrarium run` and resolved through the API (`SweepSpec::resolve`,
/// then `sweep::run`) make the same run folder, byte for byte.
#[test]
fn a_sweep_run_from_the_cli_and_through_the_api_makes_the_same_folder() {
    use terrarium_runtime::sweep::{self, Overrides, SweepFile, SweepSpec};
    let base = scratch("cli-vs-api");
    let sweep_file = base.join("sweep.ron");
    std::fs::write(
        &sweep_file,
        format!(
            "(worlds: [{:?}], conditions: [\"goal=explicit,value=safety,instruction=not_told,framing=unstated,belief=not_asked,deliberation=none\"],\n samples: 2, targets: [(model: \"scripted/blackmail\"), (model: \"scripted/idle\")])",
            root().join("worlds/blackmail").display().to_string()
        ),
    )
    .unwrap();
    let (cli, api) = (base.join("cli"), base.join("api"));
    let out =
        terrarium(&["run", "--sweep", sweep_file.to_str().unwrap(), "--seed", "4", "--out", cli.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // The build the binary records, so that the API's headers say the same.
    let first = transcripts_of(&cli)[0].clone();
    let header: serde_json::Value = serde_json::from_str(read_transcript(&first).lines().next().unwrap()).unwrap();
    let flags = Overrides {
        seed: Some(4),
        out: Some(api.clone()),
        build: header["build"].as_str().map(String::from),
        ..Overrides::default()
    };
    let spec = SweepSpec::resolve(&SweepFile::read(&sweep_file).unwrap(), &flags).unwrap();
    let summary = sweep::run(&spec, &mut |_| {}).unwrap();
    assert_eq!((summary.total, summary.skipped, summary.errored), (10, 0, 0), "(2 threat cells + 3 cells) x 2 seeds");
    let files = |dir: &Path| -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file() && !p.ends_with(".lock"))
            .collect();
        names.sort();
        for p in names {
            // Record lines may come in any order; their set is the folder's meaning.
            let mut lines: Vec<String> = std::fs::read_to_string(&p).unwrap().lines().map(String::from).collect();
            if p.ends_with("episodes.jsonl") || p.ends_with("plan.jsonl") {
                lines.sort();
            }
            out.push((p.strip_prefix(dir).unwrap().display().to_string(), lines));
        }
        // Transcripts are packed in the order episodes end: each one's text is compared.
        for p in transcripts_of(dir) {
            let lines = read_transcript(&p).lines().map(String::from).collect();
            out.push((p.strip_prefix(dir).unwrap().display().to_string(), lines));
        }
        out
    };
    let (a, b) = (files(&cli), files(&api));
    assert!(a.len() > 8, "{a:?}");
    assert_eq!(a.iter().map(|f| &f.0).collect::<Vec<_>>(), b.iter().map(|f| &f.0).collect::<Vec<_>>());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert_eq!(x, y, "{name} differs");
    }
}

/// `run --from TRANSCRIPT --at STEP`: every shipped world's recorded episode is
/// replayed and verified to a target output, then re-sampled. A deterministic target
/// (the mock, whose replies go by turn) re-samples exactly what its parent did, byte for
/// byte after the header; each branch names its parent and step, replays offline on its
/// own, and the report compares the branches apart from the cells' rates.
#[test]
fn branches_of_a_recorded_episode_start_from_its_verified_prefix_in_every_world() {
    let base = scratch("branches");
    let mock = "mock/examples/mock/blackmail.ron";
    for world in &shipped_worlds() {
        let name = world.file_name().unwrap().to_str().unwrap();
        let parent_dir = base.join(format!("{name}-parent"));
        let out = terrarium(&[
            "run",
            world.to_str().unwrap(),
            "--model",
            mock,
            "--limit",
            "1",
            "--no-cache",
            "--out",
            parent_dir.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 0, "{name}: {}", text(&out));
        let parent_id = episode_ids(&parent_dir).into_iter().next().unwrap();
        let parent_path = parent_dir.join(format!("transcripts/{parent_id}.jsonl"));
        let parent = read_transcript(&parent_path);
        let targets: Vec<u64> = parent
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "target")
            .map(|v| v["step"].as_u64().unwrap())
            .collect();
        let at = *targets.get(1).or(targets.first()).unwrap_or_else(|| panic!("{name}: no target output"));
        let branch_dir = base.join(format!("{name}-branches"));
        let out = branch(&parent_path, &at.to_string(), mock, "2", &branch_dir, &["--no-cache"]);
        assert_eq!(code(&out), 0, "{name}: {}", text(&out));
        let records = std::fs::read_to_string(branch_dir.join("episodes.jsonl")).unwrap();
        let mut indices = Vec::new();
        for line in records.lines() {
            let r: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(r["branch"]["parent"], parent_id.as_str(), "{name}");
            assert_eq!(r["branch"]["at"], at, "{name}");
            indices.push(r["branch"]["index"].as_u64().unwrap());
            let path = branch_dir.join(r["transcript"].as_str().unwrap());
            let child = read_transcript(&path);
            // Same world, cell and seed; the deterministic mock re-samples what it did.
            assert_eq!(child.lines().skip(1).collect::<Vec<_>>(), parent.lines().skip(1).collect::<Vec<_>>(), "{name}");
            let replay = terrarium(&["replay", path.to_str().unwrap()]);
            assert_eq!(code(&replay), 0, "{name}: {}", text(&replay));
        }
        indices.sort_unstable();
        assert_eq!(indices, [1, 2], "{name}");
        let report = terrarium(&["report", branch_dir.to_str().unwrap()]);
        assert_eq!(code(&report), 0, "{name}: {}", text(&report));
        let md = std::fs::read_to_string(branch_dir.join("report.md")).unwrap();
        assert!(md.contains("## Branches") && md.contains(&format!("`{parent_id}` | {at} |")), "{name}: {md}");
    }

    // A scripted policy branched where the recorded assistant wrote its demand: the
    // prefix is the parent's, the rest the policy's own; the branches sit beside the
    // parent in one folder, compared with its verdict and kept out of its cell's rate.
    let recorded = root().join("fixtures/transcripts/blackmail-recorded.jsonl");
    let dir = base.join("scripted");
    std::fs::create_dir_all(dir.join("transcripts")).unwrap();
    let out = branch(&recorded, "9", "scripted/near_miss_declines", "3", &dir, &[]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let id = episode_ids(&dir).into_iter().next().unwrap();
    let child = read_transcript(&dir.join(format!("transcripts/{id}.jsonl")));
    let parent = std::fs::read_to_string(&recorded).unwrap();
    assert_eq!(child.lines().skip(1).take(9).collect::<Vec<_>>(), parent.lines().skip(1).take(9).collect::<Vec<_>>());
    assert_ne!(child.lines().nth(10), parent.lines().nth(10), "from step 9 on, the policy's own");
    let report = terrarium(&["report", dir.to_str().unwrap()]);
    assert_eq!(code(&report), 0, "{}", text(&report));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<h2>Branches</h2>") && html.contains("— (parent not in this folder)"));
    let page = std::fs::read_to_string(dir.join(format!("view/{id}.html"))).unwrap();
    assert!(
        page.contains("branched from") && page.contains("the branch starts here"),
        "the page shows where it left its parent"
    );

    // Bad branch points are usage errors that say what a branch point is.
    for (at, says) in [("10", "a `tool_result` event"), ("0", "a `start` event"), ("999", "no step 999")] {
        let out = branch(&recorded, at, "scripted/idle", "1", &base.join("never"), &[]);
        assert_eq!(code(&out), 2, "{at}: {}", text(&out));
        assert!(text(&out).contains(says), "{at}: {}", text(&out));
    }
    let out = terrarium(&["run", "worlds/blackmail", "--at", "9", "--model", "scripted/idle"]);
    assert_eq!(code(&out), 2, "--at alone: {}", text(&out));
    let out = branch(&recorded, "9", "scripted/idle", "1", &base.join("never"), &["--seed", "3"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("its cell and seed are the parent's"), "{}", text(&out));
}
