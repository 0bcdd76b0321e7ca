//! Writing a run folder: the lock, appended records and judgements with group commit,
//! transcripts packed before their records, and what the folder already holds for a
//! resumed run.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use terrarium_core::transcript::DecidedBy;

use super::records::{EpisodeStatus, Finished, Judgement, Planned, read_judgements, read_plan};
use super::store::{Appender, Packed, Transcripts};
use super::{EPISODES, JUDGEMENTS, PLAN, REJUDGE, REPORT_FILES, RunFolder, TRANSCRIPTS, VIEWS, read_log};

/// How often appended records are synced to disk at the least (group commit): a crash
/// loses at most the episodes in flight and the records of the last interval.
pub const SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The edge's one clock read: when records were last synced. It decides only when to
/// call fsync, never what is written.
#[allow(clippy::disallowed_methods)]
fn monotonic_now() -> std::time::Instant {
    std::time::Instant::now() // determinism-ok: run-folder edge; times fsync only, never read into a record
}

/// A run folder being written. Records are synced every [`SYNC_INTERVAL`], on
/// [`Writer::sync`], and on drop.
pub struct Writer {
    /// Held for the folder's lifetime in this process; see [`Writer::open`].
    _lock: std::fs::File,
    dir: PathBuf,
    completed: BTreeSet<String>,
    errored: BTreeSet<String>,
    /// Episodes whose model-played user stopped playing: done for good, never judged.
    out_of_role: BTreeSet<String>,
    log: std::fs::File,
    /// (episode, judge, outcome) judged for good: a verdict or an unreadable reply.
    judged: BTreeSet<(String, String, String)>,
    /// (episode, outcome) of outcomes decided by judges whose gate this completed
    /// episode did not pass: nothing for a judge to decide.
    gate_closed: BTreeSet<(String, String)>,
    /// `judgements.jsonl`, opened when the first judgement is written.
    judge_log: Option<std::fs::File>,
    /// Episodes in `plan.jsonl`.
    planned: BTreeSet<String>,
    /// World id → the dynamics hashes its recorded episodes were run under.
    world_hashes: BTreeMap<String, BTreeSet<String>>,
    /// What reading the folder left out, and why (see [`RunFolder`]).
    warnings: Vec<String>,
    /// A world path as given → as seen from this folder.
    world_paths: BTreeMap<String, Option<String>>,
    /// Records appended since the last sync, and when that was.
    unsynced: usize,
    last_sync: std::time::Instant,
    /// The folder's transcripts, and the end that appends to them.
    transcripts: Transcripts,
    appender: Appender,
}

impl Writer {
    /// Open (or create) a run folder and note the episodes and judgements it already
    /// holds. Takes the folder's lock (`DIR/.lock`) for as long as this lives: a second
    /// run on the same folder is refused, never interleaved (the operating system drops
    /// the lock when the process ends, even when it is killed).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join(TRANSCRIPTS))?;
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    format!(
                        "another terrarium run is using {} (it holds {}); wait for it to finish, or use another --out",
                        dir.display(),
                        dir.join(".lock").display()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let (mut completed, mut errored, mut out_of_role) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        let mut gate_closed = BTreeSet::new();
        let mut world_hashes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let log = dir.join(EPISODES);
        let (transcripts, appender) = Appender::open(dir)?;
        let folder = RunFolder::from_text(dir, &read_log(&log)?, transcripts);
        let transcripts = folder.transcripts;
        let warnings = folder.warnings;
        for rec in folder.records {
            world_hashes.entry(rec.world.clone()).or_default().insert(rec.dynamics_hash.clone());
            if rec.status == EpisodeStatus::Completed {
                for (name, v) in rec.outcomes.iter().flatten() {
                    if v.decided_by == DecidedBy::Gate && !v.fired {
                        gate_closed.insert((rec.episode_id.clone(), name.clone()));
                    }
                }
                completed.insert(rec.episode_id);
            } else if rec.status == EpisodeStatus::UserOutOfRole {
                out_of_role.insert(rec.episode_id);
            } else {
                errored.insert(rec.episode_id);
            }
        }
        let judged = read_judgements(&read_log(&dir.join(JUDGEMENTS))?)
            .into_iter()
            .filter(|j| !j.failed)
            .map(|j| j.key())
            .collect();
        let planned = read_plan(&read_log(&dir.join(PLAN))?).into_iter().map(|p| p.episode_id).collect();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        Ok(Writer {
            _lock: lock,
            dir: dir.to_path_buf(),
            completed,
            errored,
            out_of_role,
            log,
            judged,
            gate_closed,
            judge_log: None,
            planned,
            world_hashes,
            warnings,
            world_paths: BTreeMap::new(),
            unsynced: 0,
            last_sync: monotonic_now(),
            transcripts,
            appender,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The lines and transcripts that opening the folder left out (their episodes run
    /// again), each naming its file.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The dynamics hashes this folder's episodes of `world` were recorded under.
    pub fn dynamics_hashes(&self, world: &str) -> impl Iterator<Item = &str> {
        self.world_hashes.get(world).into_iter().flatten().map(String::as_str)
    }

    /// Empty the folder of what runs and reports wrote (records, plan, judgements,
    /// transcripts, rejudge and report files), keeping the lock: `run --replace`.
    pub fn clear(&mut self) -> std::io::Result<()> {
        self.log.set_len(0)?;
        self.judge_log = None;
        let logs = [JUDGEMENTS, PLAN, REJUDGE];
        for name in logs.into_iter().chain(REPORT_FILES) {
            match std::fs::remove_file(self.dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        match std::fs::remove_dir_all(self.dir.join(VIEWS)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.appender.clear(&mut self.transcripts)?;
        for entry in std::fs::read_dir(self.dir.join(TRANSCRIPTS))? {
            let path = entry?.path();
            if path.extension().is_some_and(|x| x == "jsonl" || x == "tmp") {
                std::fs::remove_file(path)?;
            }
        }
        self.completed.clear();
        self.errored.clear();
        self.out_of_role.clear();
        self.judged.clear();
        self.gate_closed.clear();
        self.planned.clear();
        self.world_hashes.clear();
        Ok(())
    }

    /// Whether the folder already holds this episode, however it ended.
    pub fn has(&self, episode_id: &str) -> bool {
        self.has_final(episode_id) || self.errored.contains(episode_id)
    }

    /// Whether the folder holds this episode completed (an errored one may be retried).
    pub fn has_completed(&self, episode_id: &str) -> bool {
        self.completed.contains(episode_id)
    }

    /// Whether the folder holds this episode done for good: completed, or ended by its
    /// user model stopping to play (see [`EpisodeStatus::is_final`]).
    pub fn has_final(&self, episode_id: &str) -> bool {
        self.completed.contains(episode_id) || self.out_of_role.contains(episode_id)
    }

    /// The run folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder's transcripts, those this writer packed included.
    pub fn transcripts(&self) -> &Transcripts {
        &self.transcripts
    }

    /// Pack the transcript, append it, then append the record (so a record never
    /// points at a missing transcript).
    pub fn save(&mut self, finished: &Finished) -> std::io::Result<()> {
        let packed = self.appender.pack(&finished.transcript)?;
        self.save_packed(finished, &packed)
    }

    /// [`Writer::save`] with the transcript packed already ([`super::pack`], on
    /// another thread): append it, then the record, which is what makes the episode part of the
    /// folder.
    pub fn save_packed(&mut self, finished: &Finished, packed: &Packed) -> std::io::Result<()> {
        self.appender.append(&mut self.transcripts, &finished.record.episode_id, packed)?;
        self.record(finished)
    }

    fn record(&mut self, finished: &Finished) -> std::io::Result<()> {
        // The world's path as seen from this folder, so the folder reads from anywhere
        // (worked out once per world: it costs a path resolution).
        let mut record = finished.record.clone();
        let dir = &self.dir;
        let relative = self
            .world_paths
            .entry(record.world_path.clone())
            .or_insert_with(|| crate::worlds::relative_to(Path::new(&record.world_path), dir));
        if let Some(rel) = relative {
            record.world_path = rel.clone();
        }
        let mut line = serde_json::to_string(&record).expect("records serialise");
        line.push('\n');
        // One write per record, so a kill leaves at most one torn line (repaired on open).
        self.log.write_all(line.as_bytes())?;
        self.unsynced += 1;
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        let id = finished.record.episode_id.clone();
        match finished.record.status {
            EpisodeStatus::Completed => {
                self.errored.remove(&id);
                self.completed.insert(id);
            }
            EpisodeStatus::UserOutOfRole => {
                self.errored.remove(&id);
                self.out_of_role.insert(id);
            }
            EpisodeStatus::Errored => {
                self.errored.insert(id);
            }
        }
        Ok(())
    }

    /// Add episodes to `plan.jsonl` (those not in it yet), and sync it.
    pub fn plan(&mut self, episodes: &[Planned]) -> std::io::Result<()> {
        let mut text = String::new();
        for p in episodes {
            if self.planned.insert(p.episode_id.clone()) {
                text.push_str(&serde_json::to_string(p).expect("plans serialise"));
                text.push('\n');
            }
        }
        if !text.is_empty() {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(PLAN))?;
            f.write_all(text.as_bytes())?;
            f.sync_data()?;
        }
        Ok(())
    }

    /// Whether this judge has judged this outcome of this episode for good (a failed
    /// request does not count: it is asked again).
    /// Whether the stored episode's gate for `outcome` (decided by judges) stayed shut,
    /// so no judge is asked about it.
    pub fn gate_closed(&self, episode_id: &str, outcome: &str) -> bool {
        self.gate_closed.contains(&(episode_id.to_string(), outcome.to_string()))
    }

    pub fn has_judgement(&self, episode_id: &str, judge: &str, outcome: &str) -> bool {
        self.judged.contains(&(episode_id.to_string(), judge.to_string(), outcome.to_string()))
    }

    /// Append judgements to `judgements.jsonl`, one write each, under the same group
    /// commit as the records.
    pub fn save_judgements(&mut self, judgements: &[Judgement]) -> std::io::Result<()> {
        if judgements.is_empty() {
            return Ok(());
        }
        let log = match &mut self.judge_log {
            Some(log) => log,
            None => self
                .judge_log
                .insert(std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(JUDGEMENTS))?),
        };
        for j in judgements {
            let mut line = serde_json::to_string(j).expect("judgements serialise");
            line.push('\n');
            log.write_all(line.as_bytes())?;
            if !j.failed {
                self.judged.insert(j.key());
            }
        }
        self.unsynced += judgements.len();
        if self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync()?;
        }
        Ok(())
    }

    /// Sync the transcripts, records and judgements appended so far to disk (the
    /// transcripts first: a record synced before its transcript could outlive it).
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced > 0 {
            self.appender.sync()?;
            self.log.sync_data()?;
            if let Some(log) = &self.judge_log {
                log.sync_data()?;
            }
            self.unsynced = 0;
        }
        self.last_sync = monotonic_now();
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A drop cannot report an error: every caller syncs explicitly first and reports
        // its error (the sweep, merge), so this only covers an early return's unwinding.
        self.sync().ok();
    }
}
