//! Running episodes and keeping a run folder: `episodes.jsonl` (one object per
//! episode, appended) and `transcripts/<episode_id>.jsonl`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value as Json;
use terrarium_core::transcript::{DecidedBy, Reasoning, Verdict, Verdicts};
use terrarium_core::{Condition, Episode, EpisodeKey, World};

use crate::providers::http::ApiTarget;
use crate::providers::usage::Tokens;
use crate::run_folder::latest_lines;
use crate::target::{Next, Target, TargetError};

/// The files `report` writes into a run folder (and `--replace` clears with the logs).
pub const REPORT_FILES: [&str; 5] = ["report.md", "report.html", "summary.csv", "by_factor.csv", "by_turn.csv"];

/// One line of `episodes.jsonl`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct EpisodeRecord {
    pub episode_id: String,
    pub world: String,
    /// The world file, relative to the run folder (folders written before 0.2: as given
    /// on the command line). See [`RunFolder::world_path`].
    pub world_path: String,
    pub dynamics_hash: String,
    pub condition: Json,
    pub condition_key: String,
    pub seed: u64,
    pub target: String,
    pub status: EpisodeStatus,
    pub stop_reason: String,
    /// Outcome name → verdict; `null` when errored. Written with each verdict's keys in
    /// sorted order, as records have always been.
    #[serde(serialize_with = "sorted_keys")]
    pub outcomes: Option<BTreeMap<String, Verdict>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The transcript, relative to the run folder.
    pub transcript: String,
    /// Tokens the provider reported for this episode's replies (model targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// The estimated cost of those tokens in dollars, where the run was given a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// For a model target (or a scripted one that showed reasoning): how much of its
    /// reasoning the transcript shows (`none`, `summary`, `thinking`), as its header says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// The model that played the simulated user, when one did (`--user-model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Tokens the user model reported for its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_tokens: Option<Tokens>,
    /// In a world with a simulated user: how many turns the conversation lasted, and
    /// which of the target's replies the user read as refusals (for rates by turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationTurns>,
}

/// Verdicts as records write them: every object's keys in sorted order (the record's
/// bytes predate typed verdicts, and run folders are compared byte for byte).
fn sorted_keys<S: serde::Serializer>(outcomes: &Option<BTreeMap<String, Verdict>>, s: S) -> Result<S::Ok, S::Error> {
    let value = serde_json::to_value(outcomes).map_err(serde::ser::Error::custom)?;
    value.serialize(s)
}

/// What acted in an episode, as reports group it: the target, and the model that
/// played the simulated user when one did (`scripted/benign with user openai/x`), so
/// episodes with different user models are never pooled.
pub fn acting(target: &str, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("{target} with user {u}"),
        None => target.to_string(),
    }
}

impl EpisodeRecord {
    /// See [`acting`].
    pub fn acting(&self) -> String {
        acting(&self.target, self.user.as_deref())
    }
}

impl Planned {
    /// See [`acting`].
    pub fn acting(&self) -> String {
        acting(&self.target, self.user.as_deref())
    }
}

/// An episode's conversation, turn by turn, as reports count it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ConversationTurns {
    /// Target turns taken.
    pub turns: u32,
    /// The turns whose reply the simulated user read as a refusal.
    pub refused: Vec<u32>,
}

impl ConversationTurns {
    /// Read from an episode's events; `None` for a world without a simulated user.
    pub fn of(world: &World, ep: &Episode) -> Option<Self> {
        if world.file.users.is_empty() {
            return None;
        }
        let refused = ep
            .events()
            .iter()
            .filter_map(|e| match e {
                terrarium_core::Event::User { turn, refused: true, .. } => Some(*turn),
                _ => None,
            })
            .collect();
        Some(ConversationTurns { turns: ep.state().turn, refused })
    }
}

/// How an episode ended: it ran to a stop (its verdicts stand), or a provider fault or
/// a world that could not start ended it (it has none, and a later run retries it), or
/// the model playing its simulated user stopped playing the person (it has none: what
/// followed was no longer the conversation the world describes; counted apart, and not
/// run again, since the same request gets the same cached reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeStatus {
    Completed,
    Errored,
    UserOutOfRole,
}

impl EpisodeStatus {
    /// As `episodes.jsonl` writes it.
    pub fn name(self) -> &'static str {
        match self {
            EpisodeStatus::Completed => "completed",
            EpisodeStatus::Errored => "errored",
            EpisodeStatus::UserOutOfRole => "user_out_of_role",
        }
    }

    /// Whether the episode is done for good (a later run does not run it again).
    pub fn is_final(self) -> bool {
        self != EpisodeStatus::Errored
    }
}

impl std::fmt::Display for EpisodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of `plan.jsonl`: an episode some run in this folder was asked to do, so
/// reports can tell a cell that got fewer episodes than were asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Planned {
    pub episode_id: String,
    pub world: String,
    pub condition_key: String,
    pub target: String,
    /// The model playing the simulated user, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The planned episodes of a `plan.jsonl`, each once. Lines that do not parse are skipped.
pub fn read_plan(text: &str) -> Vec<Planned> {
    latest_lines(text, |p: &Planned| p.episode_id.clone())
}

/// The tokens of an episode's replies; `None` when no reply reported usage.
fn episode_tokens(events: &[terrarium_core::transcript::Event]) -> Option<Tokens> {
    let mut total: Option<Tokens> = None;
    for e in events {
        if let terrarium_core::transcript::Event::Target { output, .. } = e
            && let Some(usage) = &output.meta.usage
        {
            total.get_or_insert_default().add(Tokens::from_usage(usage));
        }
    }
    total
}

/// A finished episode: its record, transcript text and verdicts.
pub struct Finished {
    pub record: EpisodeRecord,
    pub transcript: String,
    pub verdicts: Verdicts,
}

/// An episode being run: started, fed the target's moves one at a time, then finished
/// into its record and transcript. The same steps serve a synchronous target and a
/// model awaited among many others.
pub struct EpisodeRun<'w> {
    world: &'w World,
    condition: &'w Condition,
    seed: u64,
    header: terrarium_core::transcript::Header,
    episode: Episode<'w>,
    error: Option<String>,
    user_tokens: Option<Tokens>,
}

impl<'w> EpisodeRun<'w> {
    /// Start the episode `key` names. With a model playing the world's simulated user
    /// (`key.user`), the episode waits for that model's messages. `build`, the commit
    /// the front end was built from, goes into the header as provenance.
    pub fn start(key: EpisodeKey<'w>, build: Option<&str>) -> Result<Self, String> {
        let mut header = key.header();
        header.build = build.map(String::from);
        let mut episode = Episode::start(key.world, key.condition, key.seed).map_err(|e| e.to_string())?;
        if key.user.is_some() {
            episode.play_user_externally();
        }
        let EpisodeKey { world, condition, seed, .. } = key;
        Ok(EpisodeRun { world, condition, seed, header, episode, error: None, user_tokens: None })
    }

    /// The episode's id.
    pub fn episode_id(&self) -> &str {
        &self.header.episode_id
    }

    /// The user model's reply, or its failure (which ends the episode as `errored`,
    /// never a verdict).
    pub fn user_step(&mut self, reply: Result<crate::providers::http::Completion, TargetError>) {
        let max = self.world.file.limits.max_text_bytes as usize;
        match reply {
            // A message past the world's text limit is not recorded (a transcript stays
            // bounded, as a target reply of that size is stopped): the user model failed.
            Ok(c) if c.text.len() > max => {
                if let Some(usage) = &c.usage {
                    self.user_tokens.get_or_insert_default().add(Tokens::from_usage(usage));
                }
                self.error = Some(format!(
                    "user model: its message is {} bytes, more than the world's max_text_bytes ({max}); not recorded",
                    c.text.len()
                ));
                self.episode.abort("error");
            }
            Ok(c) => {
                if let Some(usage) = &c.usage {
                    self.user_tokens.get_or_insert_default().add(Tokens::from_usage(usage));
                }
                self.episode.user_input(&c.text);
            }
            Err(e) => {
                self.error = Some(format!("user model: {}", e.0));
                self.episode.abort("error");
            }
        }
    }

    /// The episode so far, which the target's next move answers; `None` once it is over.
    pub fn pending(&self) -> Option<&Episode<'w>> {
        (!self.episode.is_done()).then_some(&self.episode)
    }

    /// Apply the target's move. A target error ends the episode as `errored`.
    pub fn step(&mut self, next: Result<Next, TargetError>) {
        match next {
            Ok(next) => {
                if !next.apply_to(&mut self.episode) {
                    self.episode.stop_by_target("target_exhausted");
                }
            }
            Err(e) => {
                self.error = Some(e.0);
                self.episode.abort("error");
            }
        }
    }

    /// The record, transcript and verdicts of the finished episode.
    pub fn finish(self) -> Finished {
        let EpisodeRun { world, condition, seed, mut header, episode: ep, error, user_tokens } = self;
        // What the settings asked the provider to expose, or more where replies showed more.
        let shown = Reasoning::shown(ep.events());
        let declared = crate::providers::http::declared_reasoning(&header.target.spec, &header.target.settings);
        header.reasoning = declared.map(|d| d.max(shown)).or((shown != Reasoning::None).then_some(shown));
        let verdicts = ep.verdicts();
        let status = match (&error, ep.stop_reason()) {
            (Some(_), _) => EpisodeStatus::Errored,
            (None, Some(terrarium_core::episode::USER_OUT_OF_ROLE)) => EpisodeStatus::UserOutOfRole,
            (None, _) => EpisodeStatus::Completed,
        };
        let transcript = terrarium_core::encode_transcript(&header, ep.events(), &verdicts);
        let record = EpisodeRecord {
            episode_id: header.episode_id.clone(),
            world: world.id().to_string(),
            world_path: world.path.clone(),
            dynamics_hash: world.dynamics_hash.clone(),
            condition: condition.to_json(),
            condition_key: condition.key(),
            seed,
            target: header.target.spec.clone(),
            status,
            stop_reason: verdicts.stop_reason.clone(),
            outcomes: (status == EpisodeStatus::Completed).then(|| verdicts.outcomes.clone()),
            error,
            transcript: format!("transcripts/{}.jsonl", header.episode_id),
            tokens: episode_tokens(ep.events()),
            cost_usd: None,
            reasoning: header.reasoning,
            user: header.user.as_ref().map(|u| u.spec.clone()),
            user_tokens,
            conversation: ConversationTurns::of(world, &ep),
        };
        Finished { record, transcript, verdicts }
    }
}

/// Run one episode of a synchronous target to its end. `key.target` names `target`.
pub fn run_episode(key: EpisodeKey, target: &mut dyn Target, build: Option<&str>) -> Result<Finished, String> {
    debug_assert_eq!(key.target.spec, target.spec(), "the key names the target that acts");
    let mut run = EpisodeRun::start(key, build)?;
    while let Some(ep) = run.pending() {
        let next = target.next(ep);
        run.step(next);
    }
    Ok(run.finish())
}

/// What acts as the target in an episode run on the async driver.
pub enum Player<'a, 'w> {
    /// A reference policy (with a model playing the user).
    Scripted(&'a mut dyn Target),
    /// A model.
    Model(&'w ApiTarget),
}

/// Run one episode on the async driver: a model target, or any target with a model
/// playing the world's simulated user (`user`, which `key.user` names). Many may run
/// at once.
pub async fn run_model_episode(
    key: EpisodeKey<'_>,
    player: Player<'_, '_>,
    user: Option<&ApiTarget>,
    build: Option<&str>,
) -> Result<Finished, String> {
    debug_assert_eq!(key.user.as_ref().map(|u| u.spec.clone()), user.map(ApiTarget::spec), "the key names the user");
    let mut run = EpisodeRun::start(key, build)?;
    let mut player = player;
    while let Some(ep) = run.pending() {
        if ep.awaiting_user().is_some()
            && let Some(user) = user
        {
            let prompt = ep.user_prompt().unwrap_or_default();
            let asker = format!("user {} turn {}", run.episode_id(), ep.state().turn);
            let reply = user.complete(&prompt, &asker).await;
            run.user_step(reply);
            continue;
        }
        let next = match &mut player {
            Player::Scripted(t) => t.next(ep),
            Player::Model(t) => t.next(run.episode_id(), ep).await,
        };
        run.step(next);
    }
    let mut finished = run.finish();
    let target_cost = match player {
        Player::Model(t) => t.price().zip(finished.record.tokens).map(|(p, t)| p.cost(t)),
        Player::Scripted(_) => None,
    };
    let user_cost = user.and_then(|u| u.price()).zip(finished.record.user_tokens).map(|(p, t)| p.cost(t));
    finished.record.cost_usd = match (target_cost, user_cost) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    };
    Ok(finished)
}

/// The records of an `episodes.jsonl`: for each episode its latest record (an errored
/// episode retried later has two lines; the later one counts), in order of first
/// appearance. Lines that are not records (a torn last line), and records whose status
/// is neither `completed` nor `errored`, are left out; [`damaged_records`] names them.
pub fn read_records(text: &str) -> Vec<EpisodeRecord> {
    latest_lines(text, |r: &EpisodeRecord| r.episode_id.clone())
}

/// The lines of an `episodes.jsonl` that are not usable records, as (line number, why),
/// so a reader can say so rather than let an episode silently vanish. A last line cut
/// short by a crash is among them (a resumed run writes the episode again).
pub fn damaged_records(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let Err(e) = serde_json::from_str::<EpisodeRecord>(line) else { continue };
        // A record in all but its status says which episode it is.
        let value: Option<Json> = serde_json::from_str(line).ok();
        let named = value.as_ref().and_then(|v| Some((v.get("episode_id")?.as_str()?, v.get("status")?)));
        let status_only = value.as_ref().is_some_and(|v| {
            let mut v = v.clone();
            v["status"] = Json::from("completed");
            serde_json::from_value::<EpisodeRecord>(v).is_ok()
        });
        out.push((
            i + 1,
            match named {
                Some((id, status)) if status_only => {
                    format!("episode {id} has status {status}, neither completed nor errored")
                }
                _ => format!("not an episode record ({e})"),
            },
        ));
    }
    out
}

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
        let log = dir.join("episodes.jsonl");
        let text = std::fs::read_to_string(&log)
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot read {}: {e}", log.display())))?;
        Ok(RunFolder::from_text(dir, &text))
    }

    /// The folder `dir` whose `episodes.jsonl` holds `text`.
    pub fn from_text(dir: &Path, text: &str) -> RunFolder {
        let log = dir.join("episodes.jsonl");
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
    let run_dir = folder.parent().filter(|_| folder.file_name().is_some_and(|n| n == "transcripts"));
    let recorded = run_dir.and_then(|dir| {
        let log = std::fs::read_to_string(dir.join("episodes.jsonl")).ok()?;
        let record = read_records(&log).into_iter().find(|r| r.episode_id == header.episode_id)?;
        crate::worlds::locate(&record.world_path, dir)
    });
    recorded.or_else(|| crate::worlds::locate(&header.world.path, folder))
}

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
/// [`RunDir::sync`], and on drop.
pub struct RunDir {
    /// Held for the folder's lifetime in this process; see [`RunDir::open`].
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
}

impl RunDir {
    /// Open (or create) a run folder and note the episodes and judgements it already
    /// holds. Takes the folder's lock (`DIR/.lock`) for as long as this lives: a second
    /// run on the same folder is refused, never interleaved (the operating system drops
    /// the lock when the process ends, even when it is killed).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir.join("transcripts"))?;
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
        let log = dir.join("episodes.jsonl");
        let folder = RunFolder::from_text(dir, &read_log(&log)?);
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
        let judged = crate::judge::read_judgements(&read_log(&dir.join("judgements.jsonl"))?)
            .into_iter()
            .filter(|j| !j.failed)
            .map(|j| j.key())
            .collect();
        let planned = read_plan(&read_log(&dir.join("plan.jsonl"))?).into_iter().map(|p| p.episode_id).collect();
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        Ok(RunDir {
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
        let logs = ["judgements.jsonl", "plan.jsonl", "rejudge.jsonl"];
        for name in logs.into_iter().chain(REPORT_FILES) {
            match std::fs::remove_file(self.dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        for entry in std::fs::read_dir(self.dir.join("transcripts"))? {
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

    /// Write the transcript, then append the record (so a record never points at a
    /// missing transcript).
    pub fn save(&mut self, finished: &Finished) -> std::io::Result<()> {
        let rel = &finished.record.transcript;
        let tmp = self.dir.join(format!("{rel}.tmp"));
        std::fs::write(&tmp, &finished.transcript)?;
        std::fs::rename(&tmp, self.dir.join(rel))?;
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
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("plan.jsonl"))?;
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
    pub fn save_judgements(&mut self, judgements: &[crate::judge::Judgement]) -> std::io::Result<()> {
        if judgements.is_empty() {
            return Ok(());
        }
        let log = match &mut self.judge_log {
            Some(log) => log,
            None => self
                .judge_log
                .insert(std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("judgements.jsonl"))?),
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

    /// Sync the records and judgements appended so far to disk.
    pub fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced > 0 {
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

/// The text of a run folder's file, or "" when there is none (yet): a folder written
/// before judges or plans existed simply has no `judgements.jsonl` or `plan.jsonl`.
pub fn read_if_present(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

/// The text of an append-only log about to be appended to. A crash can leave a
/// half-written last line: it is cut off, so the next line starts on a line of its own
/// (the episode or judgement it held is simply done again).
fn read_log(path: &Path) -> std::io::Result<String> {
    let mut text = read_if_present(path)?;
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        text.truncate(keep);
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_data()?;
    }
    Ok(text)
}

impl Drop for RunDir {
    fn drop(&mut self) {
        // A drop cannot report an error: every caller syncs explicitly first and reports
        // its error (the sweep, merge), so this only covers an early return's unwinding.
        self.sync().ok();
    }
}
