//! `terrarium`: check worlds, run episodes, test reference policies, replay and view
//! transcripts, judge and report sweeps. Exit codes: 0 success; 1 a check failed; 2
//! usage error; 3 some episodes errored or judge requests failed (results still
//! written); 4 a run's call or cost budget ran out; 5 a file could not be read or
//! written.

use std::process::ExitCode;

use clap::Parser;

mod calibrate;
mod cli;
mod common;
mod folders;
mod mcp;
mod play;
mod run;
mod transcripts;
mod worlds;

use cli::{Cli, Command};
use common::Failure;

/// A scripted sweep allocates in small pieces on every core; glibc's allocator was a
/// quarter of its time (see `docs/performance.md`). Built without the `mimalloc`
/// feature, the system allocator serves, for heap profilers.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Output piped into a reader that stops early (`terrarium … | head`) ends the process
/// quietly, as it ends any Unix tool (status 141, as if by SIGPIPE), instead of the
/// panic the standard library raises when a print fails. A run stopped this way is like
/// one killed: what it wrote stays, and the same command resumes it.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths } => worlds::check(&paths),
        Command::Run(args) => run::run_cmd(*args),
        Command::Test { paths, seeds } => worlds::test(&paths, seeds),
        Command::Replay { transcripts, world } => transcripts::replay_all(&transcripts, world.as_deref()),
        Command::Show { world, cell, model, api } => {
            worlds::show(&world, &cell.conditions, cell.seed, model.as_deref(), &api)
        }
        Command::View { transcripts, conditions, seed, full, html, world, jsonl } => {
            common::parse_conditions(&conditions).and_then(|c| {
                let how = match (jsonl, html.as_deref()) {
                    (true, _) => transcripts::Shown::Jsonl,
                    (false, Some(dir)) => transcripts::Shown::Pages { dir, world: world.as_deref() },
                    (false, None) => transcripts::Shown::Events { full },
                };
                transcripts::view(&transcripts, &c, seed, how)
            })
        }
        Command::Graph { world, format } => worlds::graph(&world, format),
        Command::Cache { action } => folders::cache_cmd(action),
        Command::Report { dir, world, matrix, facet, no_pages, thresholds, fpr } => {
            let thresholds = terrarium_runtime::report::sabotage::Thresholds { fixed: thresholds, fpr };
            folders::report_cmd(&dir, &world, matrix, facet, thresholds, !no_pages)
        }
        Command::Rejudge { dir, world } => folders::rejudge_cmd(&dir, &world),
        Command::Merge { dirs, out } => folders::merge_cmd(&dirs, &out),
        Command::Export { dir, format: cli::ExportFormat::Inspect, out, world } => {
            folders::export_cmd(&dir, out.as_deref(), &world)
        }
        Command::New { id, from, dir } => worlds::new_world(&id, from.as_deref(), &dir),
        Command::Calibrate { paths, json, judges, judge_base_url, judge_without_reasoning, no_cache } => {
            calibrate::calibrate(&paths, json, &judges, judge_base_url, !judge_without_reasoning, no_cache)
        }
        Command::Lint { paths, depth, max_states, max_world_states, no_realism } => {
            worlds::lint(&paths, depth, max_states, max_world_states, !no_realism)
        }
        Command::Mcp { world, conditions, seed, samples, out, http } => {
            mcp::mcp_cmd(&world, &conditions, seed, samples, out.as_deref(), http)
        }
        Command::Play { world, cell, out } => play::play_cmd(&world, &cell.conditions, cell.seed, out.as_deref()),
        Command::PolicyFrom { transcript, world, name } => {
            transcripts::policy_from(&transcript, world.as_deref(), &name)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Check) => ExitCode::from(1),
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Errored) => ExitCode::from(3),
        Err(Failure::Budget) => ExitCode::from(4),
        Err(Failure::Io(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(5)
        }
    }
}
