//! What the commands share: how a command fails (and so its exit code), loading worlds
//! and transcripts for a command, and counting things in messages.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use terrarium_core::World;
use terrarium_core::transcript::{Transcript, TranscriptError};
use terrarium_runtime::sweep::SpecError;

/// The commit this binary was built from (`build.rs`), when built from git: recorded in
/// every transcript header it writes, as provenance.
pub(crate) const BUILD: Option<&str> = option_env!("TERRARIUM_COMMIT");

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
    terrarium_runtime::run_folder::read_transcript(path).context("cannot read transcript")
}

/// A transcript read through the strict reader, never read around: an edited one is
/// refused naming its line, and a file that is not a transcript at all is a usage
/// error (exit 2).
pub(crate) fn read_strict(path: &Path) -> Result<Transcript, Failure> {
    parse_strict(path, &read_transcript(path)?)
}

/// [`read_strict`] of a transcript's text, read from `path`.
pub(crate) fn parse_strict(path: &Path, text: &str) -> Result<Transcript, Failure> {
    Transcript::read(text).map_err(|e| match e {
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

pub(crate) use terrarium_runtime::{cores, on_all_cores};
