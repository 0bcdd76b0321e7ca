//! Work on whole run folders after the fact: finding the worlds a folder's episodes
//! were run on, merging folders (the shards of one sweep) into one, re-judging a
//! folder under the current outcome definitions, and gathering what a report of it
//! reads. Each reads folders through [`RunFolder`] and transcripts through the strict
//! reader, and says what it refuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use terrarium_core::World;
use terrarium_core::transcript::{DecidedBy, Header, Line, Transcript, Verdicts};

use terrarium_core::format::{Combine, OutcomeRole};

use super::records::{EpisodeRecord, EpisodeStatus, Finished, Judgement, Planned, read_judgements, read_plan};
use super::{EPISODES, JUDGEMENTS, PLAN, REJUDGE, RunFolder, Writer, read_if_present};

/// Why a merge or a re-judging did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// What the folders hold does not allow it (two versions of a world, two different
    /// copies of an episode, a transcript that was edited or no longer replays).
    #[error("{0}")]
    Refused(String),
    /// A world the folder's episodes were run on cannot be had (moved away, or invalid
    /// now): the caller can name it.
    #[error("{0}")]
    NoWorld(String),
    /// The folder holds no episode to work on.
    #[error("{0}")]
    Empty(String),
    /// What the command was asked for does not fit the folder (a factor no world has).
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    // The cause is in the message, and not also a `source`: an error printed with its
    // chain would say it twice.
    #[error("{context}: {cause}")]
    Io { context: String, cause: std::io::Error },
}

pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> FolderError {
    let context = context.into();
    move |cause| FolderError::Io { context, cause }
}

/// The worlds a run folder's episodes were run on, each loaded once: a given world of
/// the same id (`--world`), else where the folder recorded it. A world that cannot be
/// found or loaded is one error for all its episodes.
pub struct FolderWorlds<'f> {
    folder: &'f RunFolder,
    given: BTreeMap<String, World>,
    loaded: BTreeMap<String, Result<World, String>>,
}

impl<'f> FolderWorlds<'f> {
    pub fn new(folder: &'f RunFolder, given: Vec<World>) -> Self {
        let given = given.into_iter().map(|w| (w.id().to_string(), w)).collect();
        FolderWorlds { folder, given, loaded: BTreeMap::new() }
    }

    /// The world `record` was run on, or why it cannot be had.
    pub fn of(&mut self, record: &EpisodeRecord) -> Result<&World, &str> {
        if let Some(w) = self.given.get(&record.world) {
            return Ok(w);
        }
        let folder = self.folder;
        let loaded = self.loaded.entry(record.world.clone()).or_insert_with(|| {
            let path = folder.world_path(record).ok_or_else(|| {
                format!(
                    "world `{}` is not where {} recorded it ({}), nor found from here: pass --world PATH",
                    record.world,
                    folder.dir.display(),
                    record.world_path
                )
            })?;
            let world = crate::load_world(&path).map_err(|e| format!("world `{}`: {e}", record.world))?;
            if world.id() != record.world {
                return Err(format!(
                    "{} holds world `{}`, not `{}`: pass --world PATH",
                    path.display(),
                    world.id(),
                    record.world
                ));
            }
            Ok(world)
        });
        loaded.as_ref().map_err(String::as_str)
    }

    /// Look up the world of every record in `records` (each loaded once), for work then
    /// shared out over cores, which reads them with [`FolderWorlds::found`].
    pub fn look_up<'r>(&mut self, records: impl IntoIterator<Item = &'r EpisodeRecord>) -> &Self {
        for r in records {
            let _ = self.of(r);
        }
        self
    }

    /// The world of `record` as [`FolderWorlds::of`] found it, without loading: for
    /// work shared out over cores once each record's world has been looked up.
    pub fn found(&self, record: &EpisodeRecord) -> Result<&World, &str> {
        match (self.given.get(&record.world), self.loaded.get(&record.world)) {
            (Some(w), _) | (None, Some(Ok(w))) => Ok(w),
            (None, Some(Err(why))) => Err(why),
            (None, None) => Err("its world was not looked up"),
        }
    }
}

/// What a merge did.
#[derive(Debug, Default)]
pub struct Merged {
    pub added: usize,
    /// Episodes the output held already (or held twice among the inputs).
    pub duplicates: usize,
    pub judgements: usize,
}

/// Combine run folders (the shards of a sweep, say) into `out`: each episode once (a
/// completed record replaces an errored one), with its judgements and plan. Refused when
/// a world's version or a target's settings differ between folders, when one completed
/// episode has two different transcripts, or when a transcript was edited. `warn` hears
/// every line and file a folder left out.
pub fn merge(dirs: &[PathBuf], out: &Path, warn: &mut dyn FnMut(String)) -> Result<Merged, FolderError> {
    // What must agree across folders: each world's dynamics hash, each target's settings.
    let mut worlds: BTreeMap<String, (String, PathBuf)> = BTreeMap::new();
    let mut targets: BTreeMap<String, (serde_json::Value, PathBuf)> = BTreeMap::new();
    let mut all: Vec<(EpisodeRecord, String, Verdicts)> = Vec::new();
    let refused = |m: String| Err(FolderError::Refused(format!("refusing to merge: {m}")));
    let mut unchecked: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for dir in dirs {
        let folder = RunFolder::read(dir).map_err(io(format!("cannot read {}", dir.display())))?;
        for w in &folder.warnings {
            warn(w.clone());
        }
        let mut folder_worlds = FolderWorlds::new(&folder, Vec::new());
        for mut record in folder.records.iter().cloned() {
            let path = dir.join(&record.transcript);
            let transcript = folder.transcript(&record).map_err(io("cannot read a transcript"))?;
            // The merged folder records the world's path from itself.
            if let Some(world) = folder.world_path(&record) {
                record.world_path = world.display().to_string();
            }
            let Transcript { header, verdicts, .. } = match Transcript::read(&transcript) {
                Ok(t) => t,
                Err(e) => return refused(format!("{}: {e}", path.display())),
            };
            // The verdicts line is not chained: re-derive it where the world is at hand
            // and its outcomes are the recorded ones, so no relabelled verdict is merged.
            match folder_worlds.of(&record) {
                Ok(world) if world.outcomes_hash == header.world.outcomes_hash => {
                    let now = terrarium_core::replay::rejudge(world, &transcript)
                        .map_err(|why| FolderError::Refused(format!("refusing to merge: {}: {why}", path.display())))?;
                    if now != verdicts {
                        return refused(format!(
                            "{}: its verdicts are not what its events give (they were edited after recording)",
                            path.display()
                        ));
                    }
                }
                _ => {
                    if unchecked.insert(record.world.clone()) {
                        warn(format!(
                            "the verdicts of world `{}` are merged as recorded: its world, with the outcomes they were decided under, is not at hand to check them",
                            record.world
                        ));
                    }
                }
            }
            if let Some((hash, first)) = worlds.get(&record.world) {
                if hash != &record.dynamics_hash {
                    return refused(format!(
                        "world `{}` differs between {} and {} (dynamics hash {} vs {})",
                        record.world,
                        first.display(),
                        dir.display(),
                        hash,
                        record.dynamics_hash
                    ));
                }
            } else {
                worlds.insert(record.world.clone(), (record.dynamics_hash.clone(), dir.clone()));
            }
            if let Some((settings, first)) = targets.get(&record.target) {
                if settings != &header.target.settings {
                    return refused(format!(
                        "target `{}` has different settings in {} and {}",
                        record.target,
                        first.display(),
                        dir.display()
                    ));
                }
            } else {
                targets.insert(record.target.clone(), (header.target.settings.clone(), dir.clone()));
            }
            all.push((record, transcript, verdicts));
        }
    }
    let mut run_dir = Writer::open(out).map_err(io(format!("cannot open run folder {}", out.display())))?;
    for w in run_dir.warnings() {
        warn(w.clone());
    }
    // One completed episode, one transcript: two different copies of it (from two
    // folders, or a folder and the output) cannot both be right, so neither is chosen.
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for (record, transcript, _) in all.iter().filter(|(r, _, _)| r.status.is_final()) {
        let existing = if run_dir.has_final(&record.episode_id) {
            run_dir.transcripts().read(&record.episode_id, &record.transcript).ok()
        } else {
            None
        };
        let conflict = match seen.insert(&record.episode_id, transcript) {
            Some(other) if other != transcript => true,
            _ => existing.is_some_and(|e| e != *transcript),
        };
        if conflict {
            return refused(format!(
                "episode {} is completed in more than one place with different transcripts; keep one copy and merge again",
                record.episode_id
            ));
        }
    }
    let mut merged = Merged::default();
    let write = || io(format!("cannot write to {}", out.display()));
    for (record, transcript, verdicts) in all {
        // A final record replaces an errored one; nothing else is added twice.
        if run_dir.has_final(&record.episode_id) || (!record.status.is_final() && run_dir.has(&record.episode_id)) {
            merged.duplicates += 1;
            continue;
        }
        run_dir.save(&Finished { record, transcript, verdicts }).map_err(write())?;
        merged.added += 1;
    }
    // Judgements follow their episodes: each (episode, judge, outcome) once. Failed
    // requests are left behind: the next run in the merged folder asks them again.
    for dir in dirs {
        let path = dir.join(JUDGEMENTS);
        let text = read_if_present(&path).map_err(io(format!("cannot read {}", path.display())))?;
        let fresh: Vec<_> = read_judgements(&text)
            .into_iter()
            .filter(|j| !j.failed && !run_dir.has_judgement(&j.episode_id, &j.judge, &j.outcome))
            .collect();
        merged.judgements += fresh.len();
        run_dir.save_judgements(&fresh).map_err(write())?;
    }
    for dir in dirs {
        let path = dir.join(PLAN);
        let text = read_if_present(&path).map_err(io(format!("cannot read {}", path.display())))?;
        run_dir.plan(&read_plan(&text)).map_err(write())?;
    }
    run_dir.sync().map_err(io(format!("cannot sync {}", out.display())))?;
    Ok(merged)
}

/// One outcome whose verdict re-judging changed.
#[derive(Debug, Clone)]
pub struct Change {
    pub episode_id: String,
    pub outcome: String,
    /// The recorded verdict (`None`: the outcome did not exist).
    pub was: Option<bool>,
    pub now: bool,
    pub decided_by: DecidedBy,
    /// The evidence now, one line per step; empty when there is none.
    pub evidence: Vec<String>,
}

/// What re-judging a folder found.
#[derive(Debug, Default)]
pub struct Rejudged {
    pub completed: usize,
    /// Episodes with at least one changed verdict.
    pub changed: usize,
    pub changes: Vec<Change>,
}

/// Recompute every completed episode's rule verdicts from its transcript under the
/// current outcome definitions (no model calls), and write `DIR/rejudge.jsonl`. Every
/// recorded event must still replay in the current world; an episode that does not (or
/// whose transcript was edited) refuses the whole re-judging, naming it.
pub fn rejudge(folder: &RunFolder, worlds: &mut FolderWorlds) -> Result<Rejudged, FolderError> {
    let completed: Vec<&EpisodeRecord> =
        folder.records.iter().filter(|r| r.status == EpisodeStatus::Completed).collect();
    // Each world once, then the episodes on every core; what they found is taken in the
    // records' order, so the first refusal named is the one a reading in order meets.
    let worlds = worlds.look_up(completed.iter().copied());
    let judged = crate::on_all_cores(&completed, |r| {
        let world = worlds
            .found(r)
            .map_err(|why| FolderError::NoWorld(format!("cannot rejudge episode {}: {why}", r.episode_id)))?;
        let transcript = folder.transcript(r).map_err(io("cannot read a transcript"))?;
        let verdicts = terrarium_core::replay::rejudge(world, &transcript)
            .map_err(|why| FolderError::Refused(format!("refusing to rejudge episode {}: {why}", r.episode_id)))?;
        Ok::<_, FolderError>((world, verdicts))
    });
    let mut out = Rejudged::default();
    let mut lines = String::new();
    for (r, judged) in completed.iter().zip(judged) {
        let (world, verdicts) = judged?;
        out.completed += 1;
        let old = r.outcomes.clone().unwrap_or_default();
        let mut changed = Vec::new();
        for (name, v) in &verdicts.outcomes {
            let was = old.get(name).map(|o| o.fired);
            // An outcome added since that does not fire changes no verdict.
            if was != Some(v.fired) && (was.is_some() || v.fired) {
                out.changes.push(Change {
                    episode_id: r.episode_id.clone(),
                    outcome: name.clone(),
                    was,
                    now: v.fired,
                    decided_by: v.decided_by,
                    evidence: v.evidence.iter().map(|e| format!("step {}: {}", e.step, e.detail)).collect(),
                });
                changed.push(name.clone());
            }
        }
        out.changed += usize::from(!changed.is_empty());
        let line = serde_json::json!({
            "episode_id": r.episode_id, "outcomes_hash": world.outcomes_hash,
            "changed": changed, "outcomes": verdicts.outcomes,
        });
        lines.push_str(&line.to_string());
        lines.push('\n');
    }
    let path = folder.dir.join(REJUDGE);
    std::fs::write(&path, lines).map_err(io(format!("cannot write {}", path.display())))?;
    Ok(out)
}

/// What a report of a run folder reads: its records, and from their worlds and the
/// folder's logs, each world's control cell, how its judges combine, which outcomes
/// count refusals and what each outcome measures, the judgements and the plan.
#[derive(Debug, Default)]
pub struct ReportInput<'f> {
    pub records: &'f [EpisodeRecord],
    /// World id → the key of its control cell.
    pub controls: BTreeMap<String, String>,
    /// (world, outcome) → how its judges' answers combine.
    pub combine: BTreeMap<(String, String), Combine>,
    /// World id → its outcomes marked `refusal`.
    pub refusals: BTreeMap<String, Vec<String>>,
    /// (world, outcome) → what it measures, in the world's words.
    pub definitions: BTreeMap<(String, String), String>,
    /// World id → its outcomes with a report role (awareness, the stated beliefs).
    pub roles: BTreeMap<String, BTreeMap<OutcomeRole, String>>,
    /// (world, what acted) → the header of one of its transcripts: the engine and the
    /// commit that ran it, the world's version and hashes, the target's settings.
    pub provenance: BTreeMap<(String, String), Header>,
    /// The judges' judgements (monitors' scores apart).
    pub judgements: Vec<Judgement>,
    /// The monitors' scores: judgements of [`terrarium_core::monitor::SUSPICION`].
    pub monitor_scores: Vec<Judgement>,
    /// World id → its sabotage design, for worlds that have one.
    pub sabotage: BTreeMap<String, terrarium_core::format::Sabotage>,
    /// The suspicion thresholds evasion is given at (`report --threshold`); empty: 80.
    pub thresholds: Vec<u8>,
    /// The false-positive rate on honest runs that fixes one more threshold
    /// (`report --fpr`); `None`: 1%.
    pub fpr: Option<f64>,
    pub planned: Vec<Planned>,
    /// World id → its factors in order, each with its values in order.
    pub factors: BTreeMap<String, Vec<(String, Vec<String>)>>,
    /// World id → the factors its report matrix shows by default.
    pub main_factors: BTreeMap<String, Vec<String>>,
}

impl ReportInput<'_> {
    /// What the report reads from a world its records were run on: its control cell,
    /// how its judges combine, which outcomes count refusals, what each measures, and
    /// which outcomes hold a report role.
    pub fn add_world(&mut self, w: &World) {
        let id = w.id().to_string();
        if let Some(c) = &w.control_cell {
            self.controls.insert(id.clone(), c.key());
        }
        for (name, o) in &w.file.outcomes {
            self.combine.insert((id.clone(), name.clone()), o.combine);
            self.definitions.insert((id.clone(), name.clone()), o.description.clone());
        }
        let roles = w.file.outcomes.iter().filter_map(|(n, o)| Some((o.role?, n.clone())));
        self.roles.insert(id.clone(), roles.collect());
        let factors = w.file.factors.iter().map(|f| (f.id.clone(), f.values.clone()));
        self.factors.insert(id.clone(), factors.collect());
        self.main_factors.insert(id.clone(), w.main_factors().into_iter().map(String::from).collect());
        if let Some(s) = &w.file.sabotage {
            self.sabotage.insert(id.clone(), s.clone());
        }
        let marked = w.file.outcomes.iter().filter(|(_, o)| o.refusal).map(|(n, _)| n.clone());
        self.refusals.insert(id, marked.collect());
    }
}

/// Gather what a report of `folder` reads. A world that cannot be had costs its control
/// comparisons (and judges are combined by majority for it): `warn` hears it once.
pub fn report_input<'f>(
    folder: &'f RunFolder,
    worlds: &mut FolderWorlds,
    warn: &mut dyn FnMut(String),
) -> Result<ReportInput<'f>, FolderError> {
    let records = &folder.records;
    if records.is_empty() {
        return Err(FolderError::Empty(format!("{} holds no episodes", folder.dir.join(EPISODES).display())));
    }
    let mut input = ReportInput { records, ..ReportInput::default() };
    let mut seen = std::collections::BTreeSet::new();
    for r in records {
        if !seen.insert(r.world.clone()) {
            continue;
        }
        match worlds.of(r) {
            Ok(w) => input.add_world(w),
            Err(why) => warn(format!(
                "{why}; the report has no control comparison for it, and no rates by awareness or stated belief"
            )),
        }
    }
    let read = |name: &str| {
        let path = folder.dir.join(name);
        read_if_present(&path).map_err(io(format!("cannot read {}", path.display())))
    };
    for r in records {
        let key = (r.world.clone(), r.acting());
        if input.provenance.contains_key(&key) {
            continue;
        }
        // The first line of one transcript per (world, what acted); the reader has
        // checked the transcripts are there, and one that cannot be read goes unnamed.
        let text = folder.transcript(r).ok();
        let first = text.as_deref().and_then(|t| t.lines().next());
        if let Some(Ok(Line::Header(header))) = first.map(serde_json::from_str::<Line>) {
            input.provenance.insert(key, *header);
        }
    }
    (input.monitor_scores, input.judgements) =
        read_judgements(&read(JUDGEMENTS)?).into_iter().partition(|j| j.outcome == terrarium_core::monitor::SUSPICION);
    input.planned = read_plan(&read(PLAN)?);
    Ok(input)
}
