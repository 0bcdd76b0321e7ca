//! Reading a run folder: its records with every damaged line and missing transcript
//! named, and the world a transcript was recorded on.

use std::path::{Path, PathBuf};

use super::records::{EpisodeRecord, damaged_records, read_records};
use super::{EPISODES, TRANSCRIPTS};

/// A run folder read for its records: each episode's latest record whose transcript is
/// there, and a warning naming every line and file left out. `report`, `rejudge`,
/// `merge` and a resumed run all read a folder through this, so a damaged line or a
/// deleted transcript costs that one episode (a resumed run runs it again), never the
/// whole folder and never in silence.
#[derive(Debug)]
pub struct RunFolder {
    pub dir: PathBuf,
    pub records: Vec<EpisodeRecord>,
    pub warnings: Vec<String>,
}

impl RunFolder {
    /// Read `DIR/episodes.jsonl`, which must exist.
    pub fn read(dir: &Path) -> std::io::Result<RunFolder> {
        let log = dir.join(EPISODES);
        let text = std::fs::read_to_string(&log)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", log.display())))?;
        Ok(RunFolder::from_text(dir, &text))
    }

    /// The folder `dir` whose `episodes.jsonl` holds `text`.
    pub fn from_text(dir: &Path, text: &str) -> RunFolder {
        let log = dir.join(EPISODES);
        let mut warnings: Vec<String> = damaged_records(text)
            .into_iter()
            .map(|(line, why)| format!("{}:{line}: {why}; left out", log.display()))
            .collect();
        let mut records = read_records(text);
        records.retain(|r| {
            let there = dir.join(&r.transcript).is_file();
            if !there {
                warnings.push(format!(
                    "{}: missing, so {} episode {} is left out (a run into this folder runs it again)",
                    dir.join(&r.transcript).display(),
                    r.status,
                    r.episode_id
                ));
            }
            there
        });
        RunFolder { dir: dir.to_path_buf(), records, warnings }
    }

    /// The world file `record` was run on, wherever the folder is used from (see
    /// [`crate::worlds::locate`]); `None` when it is not to be found.
    pub fn world_path(&self, record: &EpisodeRecord) -> Option<PathBuf> {
        crate::worlds::locate(&record.world_path, &self.dir)
    }
}

/// The world file the transcript at `path` was recorded on: when it sits in a run
/// folder's `transcripts/`, where that folder's record of the episode says; otherwise
/// the header's path, located from the transcript's folder (see
/// [`crate::worlds::locate`]). `None` when neither is to be found.
pub fn transcript_world(path: &Path, header: &terrarium_core::transcript::Header) -> Option<PathBuf> {
    let folder = path.parent().unwrap_or(Path::new(""));
    let run_dir = folder.parent().filter(|_| folder.file_name().is_some_and(|n| n == TRANSCRIPTS));
    let recorded = run_dir.and_then(|dir| {
        let log = std::fs::read_to_string(dir.join(EPISODES)).ok()?;
        let record = read_records(&log).into_iter().find(|r| r.episode_id == header.episode_id)?;
        crate::worlds::locate(&record.world_path, dir)
    });
    recorded.or_else(|| crate::worlds::locate(&header.world.path, folder))
}
