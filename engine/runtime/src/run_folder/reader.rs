//! Reading a run folder: its records with every damaged line and missing transcript
//! named, and the world a transcript was recorded on.

use std::path::{Path, PathBuf};

use super::EPISODES;
use super::records::{EpisodeRecord, read_records};
use super::store::Transcripts;

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
    /// Where the records' transcripts are kept.
    pub transcripts: Transcripts,
}

impl RunFolder {
    /// Read `DIR/episodes.jsonl`, which must exist.
    pub fn read(dir: &Path) -> std::io::Result<RunFolder> {
        let log = dir.join(EPISODES);
        let text = std::fs::read_to_string(&log)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", log.display())))?;
        let transcripts = Transcripts::open(dir).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read {}: {e}", dir.join(super::INDEX).display()))
        })?;
        Ok(RunFolder::from_text(dir, &text, transcripts))
    }

    /// The folder `dir` whose `episodes.jsonl` holds `text` and whose transcripts are
    /// `transcripts`.
    pub(super) fn from_text(dir: &Path, text: &str, transcripts: Transcripts) -> RunFolder {
        let log = dir.join(EPISODES);
        let (mut records, damaged) = read_records(text);
        let mut warnings: Vec<String> =
            damaged.into_iter().map(|(line, why)| format!("{}:{line}: {why}; left out", log.display())).collect();
        records.retain(|r| {
            let there = transcripts.has(&r.episode_id, &r.transcript);
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
        RunFolder { dir: dir.to_path_buf(), records, warnings, transcripts }
    }

    /// The transcript of `record`, however the folder keeps it; the error names where
    /// it was looked for.
    pub fn transcript(&self, record: &EpisodeRecord) -> std::io::Result<String> {
        self.transcripts.read(&record.episode_id, &record.transcript)
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
///
/// A folder holds one version of each world (`run` refuses another), so every record of
/// the transcript's world and dynamics hash names the same world: the log is read line
/// by line up to the first of them, which sits among the first lines whatever the size
/// of the folder, never parsed whole.
pub fn transcript_world(path: &Path, header: &terrarium_core::transcript::Header) -> Option<PathBuf> {
    let folder = path.parent().unwrap_or(Path::new(""));
    let recorded = super::run_folder_of(path).and_then(|dir| {
        let world_path = first_world_path(&dir.join(EPISODES), &header.world.id, &header.world.dynamics_hash)?;
        crate::worlds::locate(&world_path, dir)
    });
    recorded.or_else(|| crate::worlds::locate(&header.world.path, folder))
}

/// The `world_path` of the first record in the log at `log` of world `id` under
/// `dynamics_hash`; lines that are not such a record (another world's, a torn last line)
/// are passed over.
fn first_world_path(log: &Path, id: &str, dynamics_hash: &str) -> Option<String> {
    use std::io::BufRead;
    #[derive(serde::Deserialize)]
    struct WorldOf {
        world: String,
        world_path: String,
        dynamics_hash: String,
    }
    let quoted = serde_json::to_string(id).ok()?;
    let reader = std::io::BufReader::new(std::fs::File::open(log).ok()?);
    reader.lines().map_while(Result::ok).filter(|line| line.contains(&quoted)).find_map(|line| {
        let r: WorldOf = serde_json::from_str(&line).ok()?;
        (r.world == id && r.dynamics_hash == dynamics_hash).then_some(r.world_path)
    })
}

#[cfg(test)]
mod tests {
    use super::first_world_path;

    #[test]
    fn the_first_record_of_the_world_and_version_names_its_path() {
        let dir = std::env::temp_dir().join(format!("terrarium-first-world-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("episodes.jsonl");
        let line = |world: &str, hash: &str, path: &str| {
            format!(r#"{{"episode_id":"e","world":"{world}","world_path":"{path}","dynamics_hash":"{hash}"}}"#)
        };
        let text = [
            line("leaking", "h1", "../worlds/leaking/world.ron"),
            line("blackmail", "old", "../old/blackmail.ron"),
            r#"{"episode_id":"torn","world":"blackmail","wor"#.to_string(),
            line("blackmail", "h2", "../worlds/blackmail/world.ron"),
            line("blackmail", "h2", "elsewhere.ron"),
        ]
        .join("\n");
        std::fs::write(&log, text).unwrap();
        assert_eq!(first_world_path(&log, "blackmail", "h2").as_deref(), Some("../worlds/blackmail/world.ron"));
        assert_eq!(first_world_path(&log, "leaking", "h1").as_deref(), Some("../worlds/leaking/world.ron"));
        assert_eq!(first_world_path(&log, "shutdown", "h1"), None);
        assert_eq!(first_world_path(&dir.join("absent.jsonl"), "blackmail", "h2"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
