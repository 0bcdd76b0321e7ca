//! `terrarium`: check worlds, run episodes, test reference policies, replay and view
//! transcripts, judge and report sweeps. Exit codes: 0 success; 1 a check failed; 2
//! usage error; 3 some episodes errored or judge requests failed (results still
//! written); 4 a run's call or cost budget ran out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use terrarium_core::transcript::{Transcript, TranscriptError};
use terrarium_core::{Episode, EpisodeKey, World, view};
use terrarium_runtime::policies::check_policies;
use terrarium_runtime::run_folder::FolderWorlds;
use terrarium_runtime::run_folder::RunFolder;
use terrarium_runtime::sweep::{Overrides, SendOptions, SpecError, SweepFile, TargetEntry};
use terrarium_runtime::{LoadError, find_worlds, load_world};

/// The commit this binary was built from (`build.rs`), when built from git: recorded in
/// every transcript header it writes, as provenance.
pub const BUILD: Option<&str> = option_env!("TERRARIUM_COMMIT");

mod calibrate;
mod cli;
mod folders;
mod play;
mod run;
mod transcripts;
mod worlds;

use cli::{ApiArgs, CacheAction, Cli, Command, GraphFormat, RunArgs};

/// `n` and the noun, singular or plural: "1 episode", "3 episodes", "0 cells".
pub(crate) fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

/// How a command ended, when not in success.
pub(crate) enum Failure {
    /// Exit 1: a check failed. The reason has been printed.
    Check,
    /// Exit 2: usage error.
    Usage(anyhow::Error),
    /// Exit 3: some episodes errored.
    Errored,
    /// Exit 4: a run's --max-api-calls budget ran out before every episode finished.
    Budget,
    /// Exit 5: reading or writing a file failed for a reason other than its absence
    /// (permissions, a full disk, a run folder another run holds).
    Io(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    /// A file that is not there was named by the user (a usage error); any other
    /// failure to read or write is the machine's.
    fn from(e: anyhow::Error) -> Self {
        let io = e.chain().find_map(|cause| cause.downcast_ref::<std::io::Error>());
        match io {
            Some(io) if io.kind() != std::io::ErrorKind::NotFound => Failure::Io(e),
            _ => Failure::Usage(e),
        }
    }
}

/// A sweep that cannot be resolved: a usage error (exit 2), or worlds with problems,
/// each printed located (exit 1).
impl From<SpecError> for Failure {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Usage(why) => Failure::Usage(anyhow!(why)),
            SpecError::InvalidWorlds(diagnostics) => {
                for d in diagnostics {
                    eprintln!("{d}");
                }
                Failure::Check
            }
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

pub(crate) type Outcome = Result<(), Failure>;

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
        Command::View { transcripts, conditions, seed, full } => {
            parse_conditions(&conditions).and_then(|c| transcripts::view(&transcripts, &c, seed, full))
        }
        Command::Graph { world, format } => worlds::graph(&world, format),
        Command::Cache { action } => folders::cache_cmd(action),
        Command::Report { dir, world } => folders::report_cmd(&dir, &world),
        Command::Rejudge { dir, world } => folders::rejudge_cmd(&dir, &world),
        Command::Merge { dirs, out } => folders::merge_cmd(&dirs, &out),
        Command::New { id, from, dir } => worlds::new_world(&id, from.as_deref(), &dir),
        Command::Calibrate { paths, json, judges, judge_base_url, judge_without_reasoning, no_cache } => {
            calibrate::calibrate(&paths, json, &judges, judge_base_url, !judge_without_reasoning, no_cache)
        }
        Command::Lint { paths, depth, max_states, max_world_states, no_realism } => {
            worlds::lint(&paths, depth, max_states, max_world_states, !no_realism)
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

/// Load every world named by `paths`. Invalid worlds print their problems and fail
/// the check; a missing path is a usage error.
pub(crate) fn load_all(paths: &[PathBuf]) -> Result<Vec<World>, Failure> {
    Ok(terrarium_runtime::sweep::load_worlds(paths)?)
}

/// `--condition` values: `FACTOR=VALUE`, or several joined with commas as tables and
/// records print a cell (`goal=none,threat=replacement`).
pub(crate) fn parse_conditions(raw: &[String]) -> Result<Vec<(String, String)>, Failure> {
    Ok(terrarium_runtime::sweep::parse_conditions(raw)?)
}

pub(crate) fn read_transcript(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read transcript {}", path.display()))
}

/// A transcript read through the strict reader, never read around: an edited one is
/// refused naming its line, and a file that is not a transcript at all is a usage
/// error (exit 2).
pub(crate) fn read_strict(path: &Path) -> Result<Transcript, Failure> {
    let text = read_transcript(path)?;
    Transcript::read(&text).map_err(|e| match e {
        TranscriptError::Tampered { .. } => {
            println!("{}: {e}", path.display());
            Failure::Check
        }
        other => Failure::Usage(anyhow!("{}: {other}", path.display())),
    })
}

/// The world a transcript was recorded on: `given` (`--world`), else where its run
/// folder or its header says, from whatever directory the command runs in.
pub(crate) fn recorded_world(
    path: &Path,
    header: &terrarium_core::transcript::Header,
    given: Option<&Path>,
) -> Result<PathBuf, Failure> {
    if let Some(given) = given {
        return Ok(given.to_path_buf());
    }
    terrarium_runtime::run_folder::transcript_world(path, header).ok_or_else(|| {
        Failure::Usage(anyhow!(
            "cannot find world `{}`, recorded at {}, from here or from {}: pass --world PATH",
            header.world.id,
            header.world.path,
            path.display()
        ))
    })
}

/// The one world a command that takes a single world names.
pub(crate) fn one_world(path: &Path, command: &str) -> Result<World, Failure> {
    let mut worlds = load_all(&[path.to_path_buf()])?;
    if worlds.len() != 1 {
        return Err(anyhow!("`{command}` takes one world; {} has {}", path.display(), worlds.len()).into());
    }
    Ok(worlds.remove(0))
}
