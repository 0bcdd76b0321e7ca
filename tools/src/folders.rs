//! Commands on run folders after a run: `report`, `rejudge`, `merge`; and the response
//! cache (`cache`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use terrarium_runtime::run_folder::{FolderWorlds, RunFolder};

use crate::cli::*;
use crate::common::*;

/// A refusal is a check that failed (exit 1), said on stdout; a world to name is a
/// usage error (exit 2); a file that cannot be read or written is an I/O failure.
impl From<terrarium_runtime::run_folder::FolderError> for Failure {
    fn from(e: terrarium_runtime::run_folder::FolderError) -> Self {
        match e {
            terrarium_runtime::run_folder::FolderError::Refused(why) => {
                println!("{why}");
                Failure::Check
            }
            terrarium_runtime::run_folder::FolderError::NoWorld(why)
            | terrarium_runtime::run_folder::FolderError::Empty(why)
            | terrarium_runtime::run_folder::FolderError::Usage(why) => Failure::Usage(anyhow!(why)),
            terrarium_runtime::run_folder::FolderError::Io { ref cause, .. }
                if cause.kind() != std::io::ErrorKind::NotFound =>
            {
                Failure::Io(anyhow::Error::from(e))
            }
            e @ terrarium_runtime::run_folder::FolderError::Io { .. } => Failure::Usage(anyhow::Error::from(e)),
        }
    }
}

/// The worlds of a run folder, with the `--world`s given; a given world the folder has
/// no episode of is said, not silently ignored.
pub(crate) fn folder_worlds<'f>(folder: &'f RunFolder, given: &[PathBuf]) -> Result<FolderWorlds<'f>, Failure> {
    let given = load_all(given)?;
    for w in &given {
        if !folder.records.iter().any(|r| r.world == w.id()) {
            eprintln!("warning: --world {}: {} holds no episode of world `{}`", w.path, folder.dir.display(), w.id());
        }
    }
    Ok(FolderWorlds::new(folder, given))
}

/// Read a run folder, warning about every line and transcript left out.
pub(crate) fn read_folder(dir: &Path) -> Result<RunFolder, Failure> {
    let folder = RunFolder::read(dir)?;
    for warning in &folder.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(folder)
}

pub(crate) fn report_cmd(
    dir: &Path,
    given: &[PathBuf],
    matrix: Vec<String>,
    facet: Option<String>,
    thresholds: terrarium_runtime::report::sabotage::Thresholds,
    pages: bool,
) -> Outcome {
    if let Some(f) = thresholds.fpr.filter(|f| !(0.0..=1.0).contains(f)) {
        return Err(Failure::Usage(anyhow!("--fpr is a share of honest runs, from 0 to 1: got {f}")));
    }
    if matrix.len() > 2 || matrix.iter().any(String::is_empty) {
        return Err(Failure::Usage(anyhow!(
            "--matrix takes one or two factors, comma-separated (rows, then columns): got `{}`",
            matrix.join(",")
        )));
    }
    if let Some(f) = facet.as_ref().filter(|f| matrix.contains(f)) {
        return Err(Failure::Usage(anyhow!("--facet {f} is already on the matrix: facet by another factor")));
    }
    // A torn last line (a crash mid-write) is left out, as resuming would repair it;
    // every line left out is named.
    let folder = read_folder(dir)?;
    let mut worlds = folder_worlds(&folder, given)?;
    let choice = terrarium_runtime::report::MatrixChoice { factors: matrix, facet };
    let reported = terrarium_runtime::report::write(&folder, &mut worlds, choice, thresholds, pages, &mut |w| {
        eprintln!("warning: {w}")
    })?;
    let judged = if reported.judgements == 0 {
        String::new()
    } else {
        format!(" and {}", count(reported.judgements as u64, "judgement"))
    };
    let [md, html, csv, by_factor, by_turn] = &reported.files;
    let pages_written = if pages {
        format!(
            "; {} in {}",
            count(reported.pages as u64, "episode page"),
            folder.dir.join(terrarium_runtime::run_folder::VIEWS).display()
        )
    } else {
        String::new()
    };
    println!(
        "{}{judged} -> {}, {}, {}, {} and {}{pages_written}",
        count(reported.episodes as u64, "episode"),
        md.display(),
        html.display(),
        csv.display(),
        by_factor.display(),
        by_turn.display(),
    );
    Ok(())
}

/// `terrarium export --format inspect`: the logs are dated by the folder's record file
/// (when its last episode was written), so one folder exports to the same bytes.
pub(crate) fn export_cmd(dir: &Path, out: Option<&Path>, given: &[PathBuf]) -> Outcome {
    let folder = read_folder(dir)?;
    let mut worlds = folder_worlds(&folder, given)?;
    let written = std::fs::metadata(folder.dir.join(terrarium_runtime::run_folder::EPISODES))
        .and_then(|m| m.modified())
        .map_err(|e| Failure::Io(anyhow!("cannot read the time of {}: {e}", folder.dir.display())))?;
    let created = iso_utc(written);
    let out = out.map_or_else(|| folder.dir.join("inspect"), Path::to_path_buf);
    let exported =
        terrarium_runtime::inspect::export(&folder, &mut worlds, &out, &created, &mut |w| eprintln!("warning: {w}"))?;
    println!(
        "{} in {} -> {}",
        count(exported.samples as u64, "sample"),
        count(exported.files.len() as u64, "Inspect log"),
        out.display()
    );
    for f in &exported.files {
        println!("  {}", f.display());
    }
    Ok(())
}

/// A time as ISO 8601 in UTC, to the second (`2026-12-05T10:00:00+00:00`), by the
/// engine's own calendar.
fn iso_utc(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let minute = terrarium_core::world::format_time(i64::try_from(secs).unwrap_or(0) * 1_000);
    format!("{}:{:02}+00:00", minute.replace(' ', "T"), secs % 60)
}

pub(crate) fn rejudge_cmd(dir: &Path, given: &[PathBuf]) -> Outcome {
    let folder = read_folder(dir)?;
    let mut worlds = folder_worlds(&folder, given)?;
    let rejudged = terrarium_runtime::run_folder::rejudge(&folder, &mut worlds)?;
    for c in &rejudged.changes {
        let why = if c.evidence.is_empty() { "no evidence now".to_string() } else { c.evidence.join("; ") };
        let how = match c.decided_by {
            terrarium_core::transcript::DecidedBy::Rule => "",
            terrarium_core::transcript::DecidedBy::Gate => " at the gate (judges decide)",
        };
        println!(
            "{}: `{}` {} -> {}{how} ({why})",
            c.episode_id,
            c.outcome,
            c.was.map_or("absent".into(), |f| f.to_string()),
            c.now
        );
    }
    println!(
        "{} of {} completed episodes changed verdict -> {}",
        rejudged.changed,
        rejudged.completed,
        dir.join("rejudge.jsonl").display()
    );
    Ok(())
}

pub(crate) fn merge_cmd(dirs: &[PathBuf], out: &Path) -> Outcome {
    let merged = terrarium_runtime::run_folder::merge(dirs, out, &mut |w| eprintln!("warning: {w}"))?;
    let judged = if merged.judgements > 0 {
        format!(" and {}", count(merged.judgements as u64, "judgement"))
    } else {
        String::new()
    };
    println!(
        "merged {}{judged} ({} already present) -> {}",
        count(merged.added as u64, "episode"),
        count(merged.duplicates as u64, "episode"),
        out.join("episodes.jsonl").display()
    );
    Ok(())
}

pub(crate) fn cache_cmd(action: CacheAction) -> Outcome {
    use terrarium_runtime::providers::cache::Cache;
    let dir = Cache::default_dir().ok_or_else(|| anyhow!("no cache directory: set TERRARIUM_CACHE_DIR or HOME"))?;
    match action {
        CacheAction::Dir => println!("{}", dir.display()),
        CacheAction::Clear => {
            let n = Cache::new(dir.clone()).clear().with_context(|| format!("cannot clear {}", dir.display()))?;
            println!("removed {n} cached responses from {}", dir.display());
        }
    }
    Ok(())
}
