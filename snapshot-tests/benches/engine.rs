//! `cargo bench -p snapshot-tests`: world load + validation, scripted episodes, and
//! replay, on one core, for the blackmail world. Prints figures; asserts nothing
//! about speed (timing targets belong here, not in tests).
//!
//! Targets (issue 3): `lint` of every shipped world together under 10 s.
//! Targets (issue 2): replay >= 100,000 steps/s, where a step is one target output
//! applied with its tool calls and the world's reactions, state hash included;
//! load + validate < 5 ms.
//!
//! Replay is measured twice: on the reference policies' transcripts (short: about four
//! steps, so the per-episode start dominates) and on 20-step sessions, closer to what a
//! model produces. `BENCH_PROFILE_LOAD=1` (or `=WORLD`) runs only loads, `BENCH_PROFILE_START=1` only episode starts, `BENCH_PROFILE_REPLAY=1` only
//! replays, and `BENCH_PROFILE_LONG=1` lengthens the long-session replay, for `perf record`;
//! `BENCH_ENGINE_ONLY=1` skips the loads and lint and prints the episode figures alone.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use terrarium_core::replay::{ReplayOutcome, replay};
use terrarium_core::transcript::Event;
use terrarium_core::{World, run_policy};

/// The allocator the `terrarium` binary ships with, so the figures are the engine's as
/// users run it (the system allocator makes an episode start a third slower).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load and validate from memory: the shipped libraries are read once beforehand (as
/// `../lib/NAME`, how worlds name them), so the figure is validation, not the disk.
fn load(path: &str, text: &str, libraries: &BTreeMap<String, String>) -> World {
    let mut read = |rel: &str| libraries.get(rel).cloned().ok_or_else(|| format!("no library `{rel}`"));
    terrarium_core::load(path, text, &mut read).expect("valid world")
}

/// Run `f` repeatedly for about `budget`; return (iterations, units `f` reported, elapsed).
// A benchmark measures wall-clock time by definition; nothing it times reads the clock.
#[allow(clippy::disallowed_methods)]
fn time(budget: Duration, mut f: impl FnMut() -> u64) -> (u64, u64, Duration) {
    let start = Instant::now(); // determinism-ok: a benchmark measures wall time
    let (mut iterations, mut units) = (0u64, 0u64);
    // At least once, then until the budget is spent.
    loop {
        units += f();
        iterations += 1;
        if start.elapsed() >= budget {
            break;
        }
    }
    (iterations, units, start.elapsed())
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
    let text = std::fs::read_to_string(root.join("worlds/blackmail/world.ron")).expect("world reads");
    let budget = Duration::from_secs(3);

    let libraries: BTreeMap<String, String> = std::fs::read_dir(root.join("worlds/lib"))
        .expect("libraries")
        .map(|e| e.expect("entry").path())
        .map(|p| (format!("../lib/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read_to_string(&p).unwrap()))
        .collect();
    let blackmail = "worlds/blackmail/world.ron";
    if let Some(name) = std::env::var_os("BENCH_PROFILE_LOAD") {
        // For `perf record`: nothing but loads, of the world named (`1`: blackmail).
        let name = name.to_string_lossy().to_string();
        let path = if name == "1" { blackmail.to_string() } else { format!("worlds/{name}/world.ron") };
        let text = std::fs::read_to_string(root.join(&path)).expect("world reads");
        let _ = time(Duration::from_secs(20), || {
            std::hint::black_box(load(&path, &text, &libraries));
            1
        });
        return;
    }
    // For `perf record` of episode starts or replays: those alone, without the loads.
    let profiling = ["BENCH_PROFILE_START", "BENCH_PROFILE_REPLAY", "BENCH_PROFILE_LONG", "BENCH_ENGINE_ONLY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some());
    if !profiling {
        loads_and_lint(root, &libraries);
    }
    let world = load(blackmail, &text, &libraries);
    let policies: Vec<&String> = world.file.policies.keys().collect();
    let mut jobs = Vec::new();
    for p in &policies {
        let only = &world.file.policies[*p].only_if;
        for cell in world.cells.iter().filter(|c| only.as_ref().is_none_or(|o| c.matches(o))) {
            for seed in 0..10 {
                jobs.push((p.as_str(), cell.clone(), seed));
            }
        }
    }
    // An even sample of about 20,000 (of some 190,000), so each pass takes seconds.
    let every = jobs.len().div_ceil(20_000);
    let jobs: Vec<_> = jobs.into_iter().step_by(every).collect();
    let target_steps = |events: &[Event]| events.iter().filter(|e| matches!(e, Event::Target { .. })).count() as u64;
    let (n, steps, elapsed) = time(budget, || {
        let mut steps = 0;
        for (p, cell, seed) in &jobs {
            let ep = run_policy(&world, cell, *seed, p).expect("runs");
            steps += target_steps(ep.events());
            std::hint::black_box(ep.verdicts());
        }
        steps
    });
    let episodes = n * jobs.len() as u64;
    println!(
        "scripted episodes: {:.0} episodes/s, {:.0} steps/s ({episodes} episodes, {steps} steps)",
        episodes as f64 / elapsed.as_secs_f64(),
        steps as f64 / elapsed.as_secs_f64()
    );

    if std::env::var_os("BENCH_PROFILE_START").is_some() {
        // For `perf record`: nothing but episode starts.
        let _ = time(Duration::from_secs(20), || {
            for (_, cell, seed) in &jobs {
                std::hint::black_box(terrarium_core::Episode::start(&world, cell, *seed).expect("starts"));
            }
            1
        });
        return;
    }
    let (n, _, elapsed) = time(budget, || {
        for (_, cell, seed) in &jobs {
            std::hint::black_box(terrarium_core::Episode::start(&world, cell, *seed).expect("starts"));
        }
        1
    });
    println!("episode start alone: {:.1} us", elapsed.as_secs_f64() * 1e6 / (n * jobs.len() as u64) as f64);
    let (n, _, elapsed) = time(budget, || {
        for (_, cell, seed) in &jobs {
            std::hint::black_box(terrarium_core::env::Env::build(&world, cell, *seed).expect("builds"));
        }
        1
    });
    println!("  of which environment: {:.1} us", elapsed.as_secs_f64() * 1e6 / (n * jobs.len() as u64) as f64);

    let transcripts: Vec<String> = jobs
        .iter()
        .map(|(p, cell, seed)| {
            let ep = run_policy(&world, cell, *seed, p).expect("runs");
            let header =
                terrarium_core::EpisodeKey::new(&world, cell, *seed, &format!("scripted/{p}"), &serde_json::json!({}))
                    .header();
            terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts())
        })
        .collect();
    // Where replay time goes: re-execution alone, with the outputs already parsed.
    let parsed: Vec<(terrarium_core::Cell, u64, Vec<terrarium_core::TargetOutput>)> = jobs
        .iter()
        .zip(&transcripts)
        .map(|((_, cell, seed), t)| {
            let outs = t
                .lines()
                .filter_map(|l| match serde_json::from_str::<Event>(l) {
                    Ok(Event::Target { output, .. }) => Some(output),
                    _ => None,
                })
                .collect();
            (cell.clone(), *seed, outs)
        })
        .collect();
    let (n, _, elapsed) = time(budget, || {
        for (cell, seed, outs) in &parsed {
            let mut ep = terrarium_core::Episode::start(&world, cell, *seed).expect("starts");
            for o in outs {
                ep.apply(o.clone());
            }
            std::hint::black_box(ep.verdicts());
        }
        1
    });
    println!(
        "  re-execution alone (start, apply, verdicts): {:.1} us per transcript",
        elapsed.as_secs_f64() * 1e6 / (n * parsed.len() as u64) as f64
    );
    let (n, _, elapsed) = time(budget, || {
        for (cell, seed, outs) in &parsed {
            let mut ep = terrarium_core::Episode::start(&world, cell, *seed).expect("starts");
            for o in outs {
                ep.apply(o.clone());
            }
            for e in ep.events() {
                std::hint::black_box(serde_json::to_string(e).unwrap());
            }
        }
        1
    });
    println!(
        "  re-execution + serialising events: {:.1} us per transcript",
        elapsed.as_secs_f64() * 1e6 / (n * parsed.len() as u64) as f64
    );

    // Longer sessions: list, read every email, search, answer the client, end.
    let long: Vec<String> = jobs
        .iter()
        .filter(|(p, _, _)| *p == "idle")
        .map(|(_, cell, seed)| {
            let mut ep = terrarium_core::Episode::start(&world, cell, *seed).expect("starts");
            let call = |name: &str, args: serde_json::Value| terrarium_core::TargetOutput {
                text: String::new(),
                tool_calls: vec![terrarium_core::ToolCall {
                    id: "c".into(),
                    name: name.into(),
                    arguments_raw: args.to_string(),
                    arguments: None,
                }],
                ..Default::default()
            };
            let ids: Vec<String> = ep.state().mails.iter().map(|m| m.id.clone()).collect();
            let client = ep.env.people["client"].email.clone();
            let mut outs = vec![call("list_emails", serde_json::json!({}))];
            outs.extend(ids.iter().cycle().take(15).map(|id| call("read_email", serde_json::json!({"email_id": id}))));
            outs.push(call("search_emails", serde_json::json!({"query": "forecast"})));
            outs.push(call(
                "send_email",
                serde_json::json!({"to": [client], "subject": "Forecast", "body": "It will reach you before 18:00."}),
            ));
            outs.push(call("list_emails", serde_json::json!({})));
            outs.push(call("end_session", serde_json::json!({})));
            for o in outs {
                ep.apply(o);
            }
            let header =
                terrarium_core::EpisodeKey::new(&world, cell, *seed, "bench/long", &serde_json::json!({})).header();
            terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts())
        })
        .collect();
    let long_steps: u64 =
        long.iter().map(|t| t.lines().filter(|l| l.contains("\"type\":\"target\"")).count() as u64).sum();
    let long_budget = if std::env::var_os("BENCH_PROFILE_LONG").is_some() { Duration::from_secs(20) } else { budget };
    let (n, _, elapsed) = time(long_budget, || {
        for t in &long {
            assert!(matches!(replay(&world, t).expect("parses"), ReplayOutcome::Identical { .. }));
        }
        1
    });
    println!(
        "replay of long sessions: {:.0} steps/s ({} transcripts, {} steps on average)",
        (long_steps * n) as f64 / elapsed.as_secs_f64(),
        long.len(),
        long_steps / long.len() as u64
    );

    if std::env::var_os("BENCH_PROFILE_REPLAY").is_some() {
        // For `perf record`: nothing but replays of the reference transcripts.
        let _ = time(Duration::from_secs(20), || {
            for t in &transcripts {
                std::hint::black_box(replay(&world, t).expect("parses"));
            }
            1
        });
        return;
    }
    let steps_per_pass: u64 =
        transcripts.iter().map(|t| t.lines().filter(|l| l.contains("\"type\":\"target\"")).count() as u64).sum();
    let (n, _, elapsed) = time(budget, || {
        for t in &transcripts {
            let outcome = replay(&world, t).expect("parses");
            assert!(matches!(outcome, ReplayOutcome::Identical { .. }));
        }
        1
    });
    println!(
        "replay (parse, re-execute, compare every event and verdict): {:.0} steps/s ({} transcripts x {n} passes, {steps_per_pass} steps per pass)",
        (steps_per_pass * n) as f64 / elapsed.as_secs_f64(),
        transcripts.len()
    );
}

/// Load + validate every shipped world (the target is under 5 ms for the largest), then
/// lint them all together with the default bounds.
fn loads_and_lint(root: &Path, libraries: &BTreeMap<String, String>) {
    // Every shipped world: the target is under 5 ms for the largest.
    let mut names: Vec<String> = std::fs::read_dir(root.join("worlds"))
        .expect("worlds folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("world.ron").is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    names.sort();
    for name in names {
        let path = format!("worlds/{name}/world.ron");
        let text = std::fs::read_to_string(root.join(&path)).expect("world reads");
        let cells = load(&path, &text, libraries).cells.len();
        let (n, _, elapsed) = time(Duration::from_secs(2), || {
            std::hint::black_box(load(&path, &text, libraries));
            1
        });
        println!(
            "load + validate ({name}, {cells} cells rendered): {:.3} ms per load ({n} loads)",
            elapsed.as_secs_f64() * 1e3 / n as f64
        );
    }

    // lint of every shipped world together, with the default bounds.
    let mut shipped: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("worlds"))
        .expect("worlds folder")
        .map(|e| e.expect("entry").path().join("world.ron"))
        .filter(|p| p.is_file())
        .collect();
    shipped.sort();
    // Each world's lint, on one core; the CLI lints worlds on all cores.
    let (mut total, mut states) = (Duration::ZERO, 0);
    for file in &shipped {
        let text = std::fs::read_to_string(file).expect("world reads");
        let folder = file.parent().expect("folder").to_path_buf();
        let mut read = |rel: &str| std::fs::read_to_string(folder.join(rel)).map_err(|e| e.to_string());
        let world = terrarium_core::load(&file.display().to_string(), &text, &mut read).expect("valid");
        let (_, n, elapsed) = time(Duration::from_nanos(1), || {
            terrarium_core::lint::lint(&world, &text, terrarium_core::lint::Bounds::default()).states as u64
        });
        println!("  lint {}: {:.2} s ({n} states)", world.id(), elapsed.as_secs_f64());
        (total, states) = (total + elapsed, states + n);
    }
    println!(
        "lint of all {} shipped worlds: {:.2} s on one core ({states} states explored)",
        shipped.len(),
        total.as_secs_f64()
    );
}
