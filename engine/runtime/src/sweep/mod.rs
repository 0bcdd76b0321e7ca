//! The sweep: worlds × cells × seeds × targets into one run folder, behind a small typed
//! API that every front end (the `terrarium` binary, and later an MCP server or a Python
//! binding) drives the same way: a [`SweepSpec`] in; [`SweepEvent`]s out while it runs
//! (notes, problems, progress), and a [`Summary`] at the end.
//!
//! The plan lists every (world, cell, seed, target) in a fixed order, targets
//! interleaved. Episodes the folder already holds are skipped (an errored one is run
//! again unless asked not to); a completed one some judge has yet to answer is judged
//! from its transcript. Model episodes run concurrently on one tokio thread: each
//! provider endpoint has a pool of `max_connections` requests in flight, and at most
//! the sum of those episodes are under way at once. Scripted episodes need no waiting:
//! they run on every core, ahead of the sweep, which records them in plan order (see
//! [`ahead`]). One call budget and one cost limit cover the targets and judges.

mod ahead;
mod spec;
pub mod targets;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt as _;
use serde_json::Value as Json;
use terrarium_core::{Cell, Episode, EpisodeKey, World};

use crate::judge::{Judged, judge_episode};
use crate::providers::budget::{CallBudget, CostBudget};
use crate::providers::http::{ApiTarget, Pool};
use crate::providers::usage::Tokens;
use crate::run::{Player, run_model_episode};
use crate::run_folder::{EpisodeStatus, Finished, Judgement, Packed, Planned, Transcripts, Writer};
use crate::target::Scripted;
pub use spec::{BranchFrom, Overrides, SpecError, SweepFile, load_worlds, parse_conditions, parse_shard};
pub use targets::{ApiSpec, JUDGE_MAX_TOKENS, ModelSpec, SendOptions, TargetEntry, TargetSpec, USER_MAX_TOKENS};
use terrarium_core::transcript::TargetRef;

/// Why a sweep cannot run, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep as asked cannot run: a filter no cell matches, a policy a world lacks,
    /// a run folder holding another version of a world, a budget with no model to bound.
    #[error("{0}")]
    Invalid(String),
    /// A world that validated cannot start an episode at some seed (validation renders
    /// each cell at seed 0 only; `lint` starts more): a defect of the world.
    #[error("{0}")]
    CannotStart(String),
    /// Reading or writing the run folder failed (or another run holds it).
    // The cause is in the message, and not also a `source`: an error printed with its
    // chain would say it twice.
    #[error("{context}: {cause}")]
    Io { context: String, cause: std::io::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SweepError {
    let context = context.into();
    move |cause| SweepError::Io { context, cause }
}

/// The most episodes one run (or one shard of a run) may plan: the plan is built in full
/// before the run starts, a few hundred bytes an episode.
pub const MAX_EPISODES: u64 = 1_000_000;

/// What a sweep covers and where it goes.
pub struct SweepSpec {
    pub worlds: Vec<World>,
    /// `factor = value` filters: a factor named several times keeps any of its values.
    pub filter: Vec<(String, String)>,
    /// The first seed, and how many seeds each cell gets.
    pub seed: u64,
    pub samples: u64,
    /// Only the A-th to B-th (from 1) of each world's selected cells (`--limit`).
    pub limit: Option<(u64, u64)>,
    /// Only shard K of N (1-based): a fixed share of the episodes, by world, cell and seed.
    pub shard: Option<(u64, u64)>,
    /// The run folder; by default `runs/<first world id>`.
    pub out: Option<PathBuf>,
    /// Empty the run folder first.
    pub replace: bool,
    pub retry_errored: bool,
    /// Their episodes are interleaved.
    pub targets: Vec<TargetSpec>,
    /// Models that judge each completed episode on every outcome with a judge prompt
    /// (for an outcome decided by judges, the episodes its gate lets through).
    pub judges: Vec<ApiSpec>,
    /// Whether judges see the target's visible reasoning.
    pub judge_sees_reasoning: bool,
    /// Monitors that score how suspicious each completed episode is (`--monitor`),
    /// recorded with the judgements.
    pub monitors: Vec<MonitorSpec>,
    /// Whether monitors see reasoning a world marks as the target's private scratchpad.
    pub monitor_sees_hidden_reasoning: bool,
    /// A model that plays the simulated user of every world that has one (instead of
    /// the user's script); recorded in each such episode's header and part of its id.
    pub user_model: Option<ApiSpec>,
    pub max_api_calls: Option<u64>,
    pub max_cost: Option<f64>,
    /// Connections per provider endpoint where no model on it names a number.
    pub max_connections: usize,
    /// The commit the front end was built from, recorded in each transcript header as
    /// provenance (the engine's libraries do not know it; see `tools/build.rs`).
    pub build: Option<String>,
    /// Branch a recorded episode (`run --from`): the one world and cell are its, the
    /// seed its seed, and `samples` the branches per target.
    pub branch: Option<BranchFrom>,
}

/// A monitor as a sweep names it: a model, or the world's rule-based baseline.
pub enum MonitorSpec {
    Rule,
    Model(Box<ApiSpec>),
}

impl MonitorSpec {
    /// As recorded in a judgement's `judge`.
    pub fn spec(&self) -> String {
        match self {
            MonitorSpec::Rule => terrarium_core::monitor::RULE.to_string(),
            MonitorSpec::Model(api) => api.spec(),
        }
    }

    /// The model, for a model monitor.
    pub fn model(&self) -> Option<&ApiSpec> {
        match self {
            MonitorSpec::Model(api) => Some(api),
            MonitorSpec::Rule => None,
        }
    }
}

impl SweepSpec {
    /// The run folder.
    pub fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(self.worlds.first().map_or("run", |w| w.id())))
    }
}

/// What a sweep says while it runs.
#[derive(Clone, Debug)]
pub enum SweepEvent {
    /// Something to know that changes nothing: a policy that fits only some cells, a
    /// feature a provider cannot honour, a line of the folder left out.
    Note(String),
    /// An episode errored or a judge request failed (the run goes on).
    Problem(String),
    /// An episode (or a judging) finished.
    Progress(Progress),
    /// Nothing finished for a while ([`heartbeat_interval`]) but the run is still
    /// working: how far it has got, API calls included.
    Working(Progress),
}

/// How long a run may go without saying anything: 30 seconds, or
/// `TERRARIUM_PROGRESS_SECS` (at least 1).
pub fn heartbeat_interval() -> std::time::Duration {
    let secs = std::env::var("TERRARIUM_PROGRESS_SECS").ok().and_then(|s| s.trim().parse::<u64>().ok());
    std::time::Duration::from_secs(secs.unwrap_or(30).max(1))
}

/// How far a sweep has got.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Episodes finished, skipped or not started, of `total`.
    pub done: u64,
    pub total: u64,
    pub errored: usize,
    pub api_calls: u64,
    pub tokens: Option<Tokens>,
    /// Dollars used and the limit, under a cost limit.
    pub cost: Option<(f64, f64)>,
}

/// Episodes, errored episodes and how often each outcome fired, for one world and cell.
#[derive(Clone, Debug, Default)]
pub struct CellCounts {
    pub episodes: usize,
    pub errored: usize,
    pub fired: BTreeMap<String, usize>,
}

/// (world, cell) → counts, for one target's episodes of this run.
pub type Table = BTreeMap<(String, String), CellCounts>;

/// What a sweep did.
#[derive(Debug, Default)]
pub struct Summary {
    pub dir: PathBuf,
    /// Episodes planned, of which `skipped` were in the folder already.
    pub total: usize,
    pub skipped: usize,
    pub errored: usize,
    /// Episodes whose model-played user stopped playing the person: counted apart.
    pub out_of_role: usize,
    /// Episodes a spent budget kept from starting.
    pub not_started: usize,
    /// Stored episodes a spent budget kept from being judged.
    pub not_judged: usize,
    pub tokens: Option<Tokens>,
    pub cost_usd: Option<f64>,
    pub judgements: usize,
    pub judge_errors: usize,
    pub judge_failed: usize,
    /// Each target's spec and its table of this run's episodes.
    pub tables: Vec<(String, Table)>,
    /// Outcomes decided by judges: the counts in the tables are their gates'.
    pub gated: Vec<String>,
    pub had_judges: bool,
    /// Why the run stopped before doing everything: a spent call budget or cost limit.
    pub stopped: Option<String>,
    /// The first planned episode, with its cell and seed: a transcript to look at first.
    pub first: Option<(String, String, u64)>,
}

impl Summary {
    /// Episodes run now.
    pub fn new_episodes(&self) -> usize {
        self.total - self.skipped - self.not_started
    }
}

/// One planned episode: indexes into the targets, worlds and each world's cells.
#[derive(Clone, Copy)]
struct Job {
    target: usize,
    world: usize,
    cell: usize,
    seed: u64,
    /// The branch's number (from 1) in a sweep that branches a recorded episode; 0 in
    /// any other.
    branch: u64,
}

/// The cells of each world, who acts in each world, and the jobs, in order.
struct Plan {
    cells: Vec<Vec<Cell>>,
    cast: Cast,
    jobs: Vec<Job>,
    /// (parent episode id, step) where every branch of this sweep leaves its parent.
    branch_point: Option<(String, u64)>,
}

impl Plan {
    /// The identity of a job's episode: the one every record, header, transcript file
    /// and cached reply of it takes its name from.
    fn key<'a>(&'a self, worlds: &'a [World], job: Job) -> EpisodeKey<'a> {
        let target = self.cast.targets[job.target][job.world].clone();
        EpisodeKey {
            world: &worlds[job.world],
            condition: &self.cells[job.world][job.cell],
            seed: job.seed,
            target,
            user: None,
            branch: self.branch_point.as_ref().filter(|_| job.branch > 0).map(|(parent, at)| {
                terrarium_core::transcript::Branch { parent: parent.clone(), at: *at, index: job.branch }
            }),
        }
        .with_user(self.cast.users[job.world].clone())
    }
}

/// Who acts in each world, as episode keys and transcript headers name them.
struct Cast {
    /// targets[target][world]: the spec and the settings recorded for that world (a
    /// model's may say what it cannot honour of that world's prefill).
    targets: Vec<Vec<TargetRef>>,
    /// users[world]: the model playing the world's simulated user, where it has one.
    users: Vec<Option<TargetRef>>,
}

impl Cast {
    fn new(spec: &SweepSpec) -> Self {
        let targets = spec
            .targets
            .iter()
            .map(|t| {
                spec.worlds
                    .iter()
                    .map(|w| match t {
                        TargetSpec::Scripted(_) => TargetRef { spec: t.spec(), settings: serde_json::json!({}) },
                        TargetSpec::Api(api) => api.recorded(w),
                    })
                    .collect()
            })
            .collect();
        let users = spec
            .worlds
            .iter()
            .map(|w| spec.user_model.as_ref().filter(|_| !w.file.users.is_empty()).map(|api| api.recorded(w)))
            .collect();
        Cast { targets, users }
    }
}

/// Plan a sweep: check what it asks, select each world's cells, and list the jobs.
fn plan(spec: &SweepSpec, on: &mut dyn FnMut(SweepEvent)) -> Result<Plan, SweepError> {
    let invalid = |m: String| SweepError::Invalid(m);
    let models = || {
        spec.targets.iter().any(|t| matches!(t, TargetSpec::Api(_)))
            || !spec.judges.is_empty()
            || spec.monitors.iter().any(|m| m.model().is_some())
            || spec.user_model.is_some()
    };
    if spec.max_api_calls.is_some() && !models() {
        return Err(invalid(
            "--max-api-calls applies to model targets; every --model here is a scripted policy".into(),
        ));
    }
    if spec.max_cost.is_some() {
        if !models() {
            return Err(invalid("--max-cost applies to model targets; every --model here is a scripted policy".into()));
        }
        let priced = spec.targets.iter().filter_map(|t| match t {
            TargetSpec::Api(api) => Some(api.as_ref()),
            TargetSpec::Scripted(_) => None,
        });
        let monitors = spec.monitors.iter().filter_map(MonitorSpec::model);
        if let Some(api) =
            priced.chain(&spec.judges).chain(monitors).chain(&spec.user_model).find(|api| api.price.is_none())
        {
            return Err(invalid(format!(
                "--max-cost needs the price of every model target, judge, monitor and user model, and {} has none \
                 (give --input-price and --output-price, or a `price` in the sweep file)",
                api.spec()
            )));
        }
    }
    if spec.samples == 0 {
        return Err(invalid("--samples must be at least 1".into()));
    }
    if spec.worlds.is_empty() {
        return Err(invalid("no world to run".into()));
    }
    if spec.targets.is_empty() {
        return Err(invalid("no target to run".into()));
    }
    let last_seed = match &spec.branch {
        Some(_) => spec.seed,
        None => {
            spec.seed.checked_add(spec.samples - 1).ok_or_else(|| invalid("--seed + --samples overflows".into()))?
        }
    };
    // (seed, branch) of each episode of a cell: its seeds; or, branching, the parent's
    // seed once per branch.
    let runs: Vec<(u64, u64)> = match &spec.branch {
        Some(_) => (1..=spec.samples).map(|b| (spec.seed, b)).collect(),
        None => (spec.seed..=last_seed).map(|s| (s, 0)).collect(),
    };
    if let Some(user) = &spec.user_model
        && spec.worlds.iter().all(|w| w.file.users.is_empty())
    {
        on(SweepEvent::Note(format!(
            "--user-model {}: no world here has a simulated user (`users`), so it plays no part",
            user.spec()
        )));
    }
    let cells = select_cells(spec, on)?;
    // A bounded plan: it is built in full before the run starts.
    let shards = spec.shard.map_or(1, |(_, n)| n);
    let planned = cells
        .iter()
        .try_fold(0u64, |sum, c| sum.checked_add(c.len() as u64))
        .and_then(|c| c.checked_mul(spec.samples))
        .and_then(|c| c.checked_mul(spec.targets.len() as u64));
    match planned {
        Some(n) if n / shards <= MAX_EPISODES && n <= MAX_EPISODES.saturating_mul(1000) => {}
        _ => {
            return Err(invalid(format!(
                "this run asks for {} episodes ({} cells × {} samples × {} targets{}), more than the {MAX_EPISODES} one run may plan: run fewer samples, or split it with --shard K/N into jobs of at most {MAX_EPISODES} each",
                planned.map_or("too many to count".to_string(), |n| n.to_string()),
                cells.iter().map(Vec::len).sum::<usize>(),
                spec.samples,
                spec.targets.len(),
                if shards > 1 { format!(", in {shards} shards") } else { String::new() }
            )));
        }
    }
    // applies[target][world][cell]: a reference policy may declare the cells it fits.
    let mut applies = Vec::new();
    for target in &spec.targets {
        let mut per_world = Vec::new();
        for (w, selected) in spec.worlds.iter().zip(&cells) {
            per_world.push(match target {
                TargetSpec::Scripted(policy) => policy_cells(w, policy, selected, on)?,
                TargetSpec::Api(_) => vec![true; selected.len()],
            });
        }
        applies.push(per_world);
    }
    let mut jobs = Vec::new();
    for (w, world) in spec.worlds.iter().enumerate() {
        for (c, cell) in cells[w].iter().enumerate() {
            let key = cell.key();
            for &(seed, branch) in &runs {
                if spec.shard.is_some_and(|(k, n)| shard_of(world.id(), &key, seed.wrapping_add(branch), n) != k) {
                    continue;
                }
                for (target, applies) in applies.iter().enumerate() {
                    if applies[w][c] {
                        jobs.push(Job { target, world: w, cell: c, seed, branch });
                    }
                }
            }
        }
    }
    let branch_point = spec.branch.as_ref().map(|b| (b.header.episode_id.clone(), b.at));
    Ok(Plan { cells, cast: Cast::new(spec), jobs, branch_point })
}

/// Each world's cells under `--condition`. With several worlds, a factor applies to the
/// worlds that have it (the others run in all their cells, said in a note); a factor
/// no world has is an error, as is a value its world lacks.
fn select_cells(spec: &SweepSpec, on: &mut dyn FnMut(SweepEvent)) -> Result<Vec<Vec<Cell>>, SweepError> {
    let has = |w: &World, factor: &str| w.file.factors.iter().any(|f| f.id == factor);
    let several = spec.worlds.len() > 1;
    if several {
        for (factor, value) in &spec.filter {
            let without: Vec<&str> = spec.worlds.iter().filter(|w| !has(w, factor)).map(World::id).collect();
            if without.len() == spec.worlds.len() {
                return Err(SweepError::Invalid(format!(
                    "--condition {factor}={value}: no world here has a factor `{factor}`"
                )));
            }
            if !without.is_empty() {
                on(SweepEvent::Note(format!(
                    "--condition {factor}={value} applies to the worlds with a factor `{factor}`; {} {} none and {} in all {} cells",
                    without.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", "),
                    if without.len() == 1 { "has" } else { "have" },
                    if without.len() == 1 { "runs" } else { "run" },
                    if without.len() == 1 { "its" } else { "their" },
                )));
            }
        }
    }
    let mut cells = Vec::new();
    for w in &spec.worlds {
        let filter: Vec<(String, String)> =
            spec.filter.iter().filter(|(f, _)| !several || has(w, f)).cloned().collect();
        let mut selected = w.select_cells(&filter).map_err(SweepError::Invalid)?;
        if let Some((a, b)) = spec.limit {
            let n = selected.len() as u64;
            if a > n {
                return Err(SweepError::Invalid(format!(
                    "--limit {a}-{b}: world `{}` has {n} selected cell{}",
                    w.id(),
                    if n == 1 { "" } else { "s" }
                )));
            }
            selected = selected.into_iter().skip((a - 1) as usize).take((b.min(n) - a + 1) as usize).collect();
        }
        cells.push(selected);
    }
    Ok(cells)
}

/// Which of `selected` a world's reference policy applies to (a policy may declare
/// `only_if`); says so when some are skipped, fails when none is left.
fn policy_cells(
    w: &World,
    policy: &str,
    selected: &[Cell],
    on: &mut dyn FnMut(SweepEvent),
) -> Result<Vec<bool>, SweepError> {
    let p = w.file.policies.get(policy).ok_or_else(|| {
        let known: Vec<&str> = w.file.policies.keys().map(String::as_str).collect();
        SweepError::Invalid(format!("world `{}` has no policy `{policy}` (policies: {})", w.id(), known.join(", ")))
    })?;
    let fits: Vec<bool> = selected.iter().map(|c| p.only_if.as_ref().is_none_or(|o| c.matches(o))).collect();
    if !fits.iter().any(|f| *f) {
        return Err(SweepError::Invalid(format!(
            "policy `{policy}` of world `{}` applies to none of the selected cells",
            w.id()
        )));
    }
    let skipped = fits.iter().filter(|f| !**f).count();
    if skipped > 0 {
        // The pattern names the skipped cells exactly; listing hundreds helps nobody.
        let only: Vec<String> = p
            .only_if
            .iter()
            .flatten()
            .map(|(factor, values)| match values.as_slice() {
                [one] => format!("{factor}={one}"),
                many => format!("{factor} in {}", many.join("|")),
            })
            .collect();
        on(SweepEvent::Note(format!(
            "policy `{policy}` of world `{}` applies only where {} (`only_if`): skipping {} of {} selected cells",
            w.id(),
            only.join(" and "),
            skipped,
            selected.len()
        )));
    }
    Ok(fits)
}

/// The shard (1-based) an episode belongs to: a stable hash of world, cell and seed, so
/// every target's episode of one (world, cell, seed) lands in the same shard.
pub fn shard_of(world: &str, cell: &str, seed: u64, n: u64) -> u64 {
    let mut c = terrarium_core::hash::Canon::new("terrarium.shard.v1");
    c.str(world).str(cell).u64(seed);
    let d = c.digest();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_le_bytes(first) % n + 1
}

/// One row of a dry run: a world and cell, its episodes, and (for a model with a cache)
/// how many requests the cache can already answer and how many episodes it completes.
#[derive(Clone, Debug)]
pub struct DryRunRow {
    pub world: String,
    pub cell: String,
    pub episodes: usize,
    pub answered: usize,
    pub complete: usize,
}

/// What a sweep would do, per target; nothing is sent and nothing is written.
#[derive(Debug, Default)]
pub struct DryRun {
    /// Each target's spec, whether it has a cache to consult, and its rows.
    pub targets: Vec<(String, bool, Vec<DryRunRow>)>,
    /// The judges' specs, and the most questions each would be asked.
    pub judges: Vec<String>,
    /// The monitors' specs; each scores every completed episode once.
    pub monitors: Vec<String>,
    pub judge_questions: usize,
    /// The model playing the simulated user, and how many of the episodes have one.
    pub user: Option<(String, usize)>,
}

/// Plan `spec` and say what running it would do, following each model episode through
/// cached replies only.
pub fn dry_run(spec: &SweepSpec, on: &mut dyn FnMut(SweepEvent)) -> Result<DryRun, SweepError> {
    let plan = plan(spec, on)?;
    let pool = Pool::new(1, 1).map_err(|e| SweepError::Invalid(e.0))?;
    let mut out = DryRun::default();
    for (t, target) in spec.targets.iter().enumerate() {
        let mut rows: BTreeMap<(String, String), DryRunRow> = BTreeMap::new();
        let mut api_targets: BTreeMap<String, ApiTarget> = BTreeMap::new();
        for job in plan.jobs.iter().filter(|j| j.target == t) {
            let (world, cell) = (&spec.worlds[job.world], &plan.cells[job.world][job.cell]);
            let row = rows.entry((world.id().to_string(), cell.key())).or_insert_with(|| DryRunRow {
                world: world.id().to_string(),
                cell: cell.key(),
                episodes: 0,
                answered: 0,
                complete: 0,
            });
            row.episodes += 1;
            let TargetSpec::Api(api) = target else { continue };
            if api.cache.is_none() {
                continue;
            }
            let model = api_targets.entry(world.id().to_string()).or_insert_with(|| api.target(world, pool.clone()));
            let key = plan.key(&spec.worlds, *job);
            let id = key.id();
            let mut ep = Episode::start(world, cell, job.seed).map_err(|e| cannot_start(world, cell, job.seed, &e))?;
            if key.user.is_some() {
                ep.play_user_externally();
            }
            while !ep.is_done() {
                // A model playing the user would answer next: the cache cannot say what.
                if ep.awaiting_user().is_some() {
                    break;
                }
                // Followed through cached replies only; the first uncached request ends it.
                if !model.cached_next(&id, &ep).is_some_and(|next| next.apply_to(&mut ep)) {
                    break;
                }
                row.answered += 1;
            }
            row.complete += usize::from(ep.is_done());
        }
        let cached = matches!(target, TargetSpec::Api(api) if api.cache.is_some());
        out.targets.push((target.spec(), cached, rows.into_values().collect()));
    }
    out.judges = spec.judges.iter().map(ApiSpec::spec).collect();
    out.monitors = spec.monitors.iter().map(MonitorSpec::spec).collect();
    out.user = spec.user_model.as_ref().map(|u| {
        let with_user = plan.jobs.iter().filter(|j| !spec.worlds[j.world].file.users.is_empty()).count();
        (u.spec(), with_user)
    });
    out.judge_questions = plan
        .jobs
        .iter()
        .map(|j| crate::judge::judged_outcomes(&spec.worlds[j.world], spec.user_model.is_some()).len())
        .sum();
    Ok(out)
}

fn cannot_start(world: &World, cell: &Cell, seed: u64, e: &terrarium_core::env::EnvError) -> SweepError {
    SweepError::CannotStart(format!("world `{}` cannot start at seed {seed} in {}: {e}", world.id(), cell.key()))
}

/// What a job does with its episode.
enum Work {
    /// Run it (then judge it, if the run has judges).
    Run,
    /// It is in the folder already: judge its stored transcript, for each judge (by
    /// index) on the outcomes that judge has yet to answer.
    Judge { episode_id: String, missing: Vec<(usize, Vec<String>)> },
    /// A scripted episode with no model in it: run ahead, on every core; the number is
    /// its place among those (see [`ahead`]).
    Ahead(usize),
}

/// How a job ended.
enum JobEnd {
    /// A spent budget kept it from starting; the next run does it.
    NotStarted,
    /// A spent budget kept a stored episode from being judged; the next run does it.
    NotJudged,
    /// It ran: the episode, its judgements, and its transcript packed already (by the
    /// worker that ran it ahead), if it was.
    Ran {
        finished: Box<Finished>,
        judgements: Vec<Judgement>,
        packed: Option<Packed>,
    },
    Judged(Vec<Judgement>),
}

/// What reads a completed episode after it ran: a judge or a model monitor (one target
/// per world), or the worlds' rule-based monitor.
enum Reader {
    Judge(Vec<ApiTarget>),
    Monitor(Vec<ApiTarget>),
    Rule,
}

/// A target ready to act in every world of the run.
enum Resolved {
    Scripted(String),
    /// One target per world (each has the world's tools and prefill).
    Api(Vec<ApiTarget>),
}

/// Run a sweep to the end: every selected cell of every world, `samples` seeds each, for
/// every target, into one run folder, judging what the judges have yet to answer.
/// Requests go out from a tokio runtime of its own (one thread); scripted episodes run
/// on every core.
pub fn run(spec: &SweepSpec, on: &mut dyn FnMut(SweepEvent)) -> Result<Summary, SweepError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the async runtime"))?;
    std::thread::scope(|scope| runtime.block_on(sweep(spec, scope, on)))
}

async fn sweep<'scope, 'env>(
    spec: &'env SweepSpec,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    on: &mut dyn FnMut(SweepEvent),
) -> Result<Summary, SweepError> {
    let plan = Arc::new(plan(spec, on)?);
    let worlds = &spec.worlds;
    // Every model the run sends to: targets, then judges.
    let models: Vec<&ApiSpec> = spec
        .targets
        .iter()
        .filter_map(|t| match t {
            TargetSpec::Api(api) => Some(api.as_ref()),
            TargetSpec::Scripted(_) => None,
        })
        .chain(&spec.judges)
        .chain(spec.monitors.iter().filter_map(MonitorSpec::model))
        .chain(&spec.user_model)
        .collect();
    let pools = pools(&models, spec.max_connections)?;
    let calls = spec.max_api_calls.map_or_else(|| CallBudget::new(u64::MAX), CallBudget::new);
    let cost = spec.max_cost.map(CostBudget::new);
    let mut actors = Vec::new();
    for target in &spec.targets {
        match target {
            TargetSpec::Scripted(policy) => actors.push(Resolved::Scripted(policy.clone())),
            TargetSpec::Api(api) => {
                let per_world = limited(api, worlds, &pools, &calls, cost.as_ref());
                for (t, w) in per_world.iter().zip(worlds) {
                    if let Some(note) = unsupported(t, w) {
                        on(SweepEvent::Note(note));
                    }
                }
                actors.push(Resolved::Api(per_world));
            }
        }
    }
    // Who reads each completed episode: the judges, then the monitors, each model one
    // target per world under the same pools and budgets as the targets.
    let mut readers: Vec<Reader> =
        spec.judges.iter().map(|api| Reader::Judge(limited(api, worlds, &pools, &calls, cost.as_ref()))).collect();
    readers.extend(spec.monitors.iter().map(|m| match m {
        MonitorSpec::Rule => Reader::Rule,
        MonitorSpec::Model(api) => Reader::Monitor(limited(api, worlds, &pools, &calls, cost.as_ref())),
    }));
    let reader_specs: Vec<String> =
        spec.judges.iter().map(ApiSpec::spec).chain(spec.monitors.iter().map(MonitorSpec::spec)).collect();
    // users[world]: the model playing the simulated user, under the same pools and
    // budgets, for the worlds that have one.
    let users: Vec<Option<ApiTarget>> = match &spec.user_model {
        Some(api) => limited(api, worlds, &pools, &calls, cost.as_ref())
            .into_iter()
            .zip(worlds)
            .map(|(t, w)| (!w.file.users.is_empty()).then_some(t))
            .collect(),
        None => worlds.iter().map(|_| None).collect(),
    };
    let judged_outcomes: Vec<Vec<&str>> =
        worlds.iter().map(|w| crate::judge::judged_outcomes(w, spec.user_model.is_some())).collect();
    // asked[reader][world]: what each reader answers about an episode of each world.
    let asked: Vec<Vec<Vec<&str>>> = readers
        .iter()
        .map(|r| {
            worlds
                .iter()
                .enumerate()
                .map(|(w, world)| match r {
                    Reader::Judge(_) => judged_outcomes[w].clone(),
                    Reader::Monitor(_) | Reader::Rule => {
                        if crate::judge::monitors(world, matches!(r, Reader::Rule)) {
                            vec![terrarium_core::monitor::SUSPICION]
                        } else {
                            Vec::new()
                        }
                    }
                })
                .collect()
        })
        .collect();
    if spec.monitors.iter().any(|m| matches!(m, MonitorSpec::Rule))
        && !worlds.iter().any(|w| crate::judge::monitors(w, true))
    {
        on(SweepEvent::Note(
            "no world here declares a rule-based monitor (`sabotage.baseline`); `--monitor rule` scores nothing".into(),
        ));
    }
    let recorded_spec: Vec<String> = spec.targets.iter().map(TargetSpec::spec).collect();

    let dir = spec.out();
    let mut run_dir = Writer::open(&dir).map_err(io(format!("cannot open run folder {}", dir.display())))?;
    for warning in run_dir.warnings() {
        on(SweepEvent::Note(warning.clone()));
    }
    if spec.replace {
        run_dir.clear().map_err(io(format!("cannot empty run folder {}", dir.display())))?;
    }
    // One folder, one version of each world: episodes of an edited world are not pooled
    // with the old ones.
    for w in worlds {
        let old: Vec<&str> = run_dir.dynamics_hashes(w.id()).filter(|h| *h != w.dynamics_hash).collect();
        if let Some(old) = old.first() {
            return Err(SweepError::Invalid(format!(
                "{} holds episodes of world `{}` run under dynamics hash {old}, but the world now has {} (it was edited since): run into a new --out, or add --replace to empty this folder first",
                dir.display(),
                w.id(),
                w.dynamics_hash
            )));
        }
    }
    let total = plan.jobs.len();
    // Episodes already in the folder are not run again (an errored one is, by default);
    // a completed one some judge has yet to judge is judged from its transcript.
    let mut todo: Vec<(Job, Work)> = Vec::new();
    let mut orders = Vec::new();
    let mut planned = Vec::with_capacity(plan.jobs.len());
    let mut skipped = 0;
    for &j in &plan.jobs {
        let key = plan.key(worlds, j);
        let id = key.id();
        planned.push(Planned {
            episode_id: id.clone(),
            world: key.world.id().to_string(),
            condition_key: key.condition.key(),
            target: key.target.spec.clone(),
            user: key.user.as_ref().map(|u| u.spec.clone()),
            branch: key.branch.clone(),
        });
        if !(run_dir.has_final(&id) || (!spec.retry_errored && run_dir.has(&id))) {
            match &actors[j.target] {
                Resolved::Scripted(policy) if users[j.world].is_none() => {
                    todo.push((j, Work::Ahead(orders.len())));
                    orders.push(ahead::Order { job: j, policy: policy.clone() });
                }
                _ => todo.push((j, Work::Run)),
            }
            continue;
        }
        skipped += 1;
        if !run_dir.has_completed(&id) {
            continue;
        }
        let missing: Vec<(usize, Vec<String>)> = reader_specs
            .iter()
            .enumerate()
            .filter_map(|(k, judge)| {
                let outcomes: Vec<String> = asked[k][j.world]
                    .iter()
                    .filter(|o| !run_dir.has_judgement(&id, judge, o) && !run_dir.gate_closed(&id, o))
                    .map(|o| o.to_string())
                    .collect();
                (!outcomes.is_empty()).then_some((k, outcomes))
            })
            .collect();
        if !missing.is_empty() {
            todo.push((j, Work::Judge { episode_id: id, missing }));
        }
    }
    // What was asked, so a report can say where fewer episodes came back.
    run_dir.plan(&planned).map_err(io(format!("cannot write to {}", dir.display())))?;
    let first =
        plan.jobs.first().zip(planned.first()).map(|(j, p)| (p.episode_id.clone(), p.condition_key.clone(), j.seed));
    drop(planned);
    if !spec.judges.is_empty() && judged_outcomes.iter().all(Vec::is_empty) {
        on(SweepEvent::Note(
            "no outcome of these worlds declares a judge prompt; the judges have nothing to answer".into(),
        ));
    }
    let mut summary = Summary {
        dir: dir.clone(),
        total,
        skipped,
        tables: recorded_spec.iter().map(|s| (s.clone(), Table::new())).collect(),
        had_judges: !spec.judges.is_empty(),
        first,
        ..Summary::default()
    };
    let mut done = skipped as u64;
    let limit = pools.values().map(Pool::max_connections).sum::<usize>().max(1);
    let parent = spec.branch.as_ref().map(|b| b.text.as_str());
    let batch = ahead::Batch { worlds, plan: Arc::clone(&plan), orders, build: spec.build.as_deref(), parent };
    let ahead = ahead::start(scope, batch, crate::cores());
    // The transcripts stored before this run, which judges new to the folder read.
    let stored = run_dir.transcripts().clone();
    let walker = Walker {
        worlds,
        plan: &plan,
        build: spec.build.as_deref(),
        parent,
        ahead: &ahead,
        actors: &actors,
        readers: &readers,
        users: &users,
        judge_sees_reasoning: spec.judge_sees_reasoning,
        monitor_sees_hidden_reasoning: spec.monitor_sees_hidden_reasoning,
        dir: &dir,
        stored: &stored,
        calls: &calls,
        cost: cost.as_ref(),
    };
    let cells = &plan.cells;
    let mut ends = futures_util::stream::iter(todo)
        .map(|(job, work)| {
            let walker = &walker;
            let target = &recorded_spec[job.target];
            async move {
                let end = match work {
                    // A spent budget starts nothing new: what is left stays for the next run.
                    Work::Judge { .. } if walker.spent() => JobEnd::NotJudged,
                    Work::Judge { episode_id, missing } => {
                        JobEnd::Judged(walker.judge_stored(job, &episode_id, target, &missing).await?)
                    }
                    Work::Run => walker.run(job).await?,
                    Work::Ahead(i) => walker.ran_ahead(job, i).await?,
                };
                Ok::<_, SweepError>((job, end))
            }
        })
        .buffer_unordered(limit);
    let progress = |done: u64, summary: &Summary| Progress {
        done,
        total: total as u64,
        errored: summary.errored,
        api_calls: calls.used(),
        tokens: summary.tokens,
        cost: cost.as_ref().map(|c| (c.used_usd(), c.limit_usd())),
    };
    let mut failed = None;
    let mut cache_warning = None;
    let heartbeat = heartbeat_interval();
    loop {
        // While episodes are under way, say so at least every `heartbeat`, so a run whose
        // episodes are long (a slow model, a talkative user model) never goes quiet.
        let end = {
            let next = ends.next();
            let tick = tokio::time::sleep(heartbeat);
            futures_util::pin_mut!(next, tick);
            match futures_util::future::select(next, tick).await {
                futures_util::future::Either::Left((end, _)) => end,
                futures_util::future::Either::Right(_) => {
                    on(SweepEvent::Working(progress(done, &summary)));
                    continue;
                }
            }
        };
        let Some(end) = end else { break };
        let (job, end) = match end {
            Ok(end) => end,
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        let write = io(format!("cannot write to {}", dir.display()));
        let saved = match end {
            JobEnd::NotJudged => {
                summary.not_judged += 1;
                Ok(())
            }
            JobEnd::NotStarted => {
                summary.not_started += 1;
                done += 1;
                Ok(())
            }
            JobEnd::Ran { finished, judgements: js, packed } => {
                done += 1;
                summary.add(job, worlds, cells, &finished, on);
                // Judgements first: a crash between the two leaves the episode to run
                // again, never a completed episode whose judging is forgotten.
                summary.judged(&js, on);
                run_dir.save_judgements(&js).and_then(|()| match &packed {
                    Some(packed) => run_dir.save_packed(&finished, packed),
                    None => run_dir.save(&finished),
                })
            }
            JobEnd::Judged(js) => {
                summary.judged(&js, on);
                run_dir.save_judgements(&js)
            }
        };
        if let Err(e) = saved {
            failed = Some(write(e));
            break;
        }
        // Said once, as soon as it happens: replies are not being cached.
        if cache_warning.is_none()
            && let Some(why) = models.iter().find_map(|m| m.cache.as_ref().and_then(|c| c.write_failure()))
        {
            on(SweepEvent::Problem(format!("warning: {why}; replies are not cached, so a rerun sends them again")));
            cache_warning = Some(());
        }
        on(SweepEvent::Progress(progress(done, &summary)));
    }
    drop(ends);
    run_dir.sync().map_err(io(format!("cannot sync {}", dir.display())))?;
    if let Some(e) = failed {
        return Err(e);
    }
    let gated: BTreeSet<&str> = worlds
        .iter()
        .flat_map(|w| w.file.outcomes.iter())
        .filter(|(_, o)| o.decide == terrarium_core::format::Decide::Judges)
        .map(|(name, _)| name.as_str())
        .collect();
    summary.gated = gated.into_iter().map(String::from).collect();
    let spent = calls.spent() || cost.as_ref().is_some_and(CostBudget::spent);
    if summary.not_started > 0 || summary.not_judged > 0 || (spent && (summary.errored > 0 || summary.judge_failed > 0))
    {
        summary.stopped = Some(match &cost {
            Some(c) if c.spent() => format!("the cost limit of ${:.2} is reached", c.limit_usd()),
            _ => format!("the budget of {} API calls is spent", calls.limit()),
        });
    }
    Ok(summary)
}

/// One connection pool per provider endpoint, shared by the targets and judges that use
/// it: as many connections as the models on it name (they must agree), else `default`.
fn pools(models: &[&ApiSpec], default: usize) -> Result<BTreeMap<(String, String), Pool>, SweepError> {
    let mut sizes: BTreeMap<(String, String), (usize, Option<String>)> = BTreeMap::new();
    for api in models {
        let key = (api.provider.name().to_string(), api.base_url.clone());
        let size = sizes.entry(key.clone()).or_insert((default.max(1), None));
        if let Some(n) = api.max_connections {
            if let Some(first) = size.1.as_ref().filter(|_| size.0 != n) {
                return Err(SweepError::Invalid(format!(
                    "{} asks for {n} connections to {} at {}, and {first} for {}: models on one endpoint share its connections",
                    api.spec(),
                    key.0,
                    key.1,
                    size.0
                )));
            }
            *size = (n, Some(api.spec()));
        }
    }
    let mut pools = BTreeMap::new();
    for api in models {
        let key = (api.provider.name().to_string(), api.base_url.clone());
        let size = sizes[&key].0;
        if let std::collections::btree_map::Entry::Vacant(slot) = pools.entry(key) {
            let pool = Pool::new(size, api.timeout_secs)
                .map_err(|e| SweepError::Invalid(format!("{}: {}", api.spec(), e.0)))?;
            slot.insert(pool);
        }
    }
    Ok(pools)
}

/// A model's target for each world, sending through its endpoint's pool and counted
/// against the run's budgets.
fn limited(
    api: &ApiSpec,
    worlds: &[World],
    pools: &BTreeMap<(String, String), Pool>,
    calls: &CallBudget,
    cost: Option<&CostBudget>,
) -> Vec<ApiTarget> {
    let pool = &pools[&(api.provider.name().to_string(), api.base_url.clone())];
    worlds
        .iter()
        .map(|w| {
            let t = api.target(w, pool.clone()).with_budget(calls.clone());
            match cost {
                Some(c) => t.with_cost_budget(c.clone()),
                None => t,
            }
        })
        .collect()
}

/// What a target cannot honour of what a world asks for, said once per world.
fn unsupported(target: &ApiTarget, world: &World) -> Option<String> {
    let settings = target.settings();
    let unsupported = settings.get("unsupported").and_then(Json::as_array)?;
    let names: Vec<&str> = unsupported.iter().filter_map(Json::as_str).collect();
    Some(format!(
        "{} cannot honour {} for world `{}`; recorded as unsupported in each transcript header",
        target.spec(),
        names.join(", "),
        world.id()
    ))
}

/// What every job of a run reads: the worlds and their cells, the targets and judges,
/// the run folder, the budgets.
struct Walker<'a> {
    worlds: &'a [World],
    plan: &'a Plan,
    /// The front end's commit, for each header.
    build: Option<&'a str>,
    /// The transcript every branch starts from, in a sweep that branches one.
    parent: Option<&'a str>,
    /// The scripted episodes run ahead.
    ahead: &'a ahead::Ahead,
    actors: &'a [Resolved],
    readers: &'a [Reader],
    /// The model playing each world's simulated user, if any.
    users: &'a [Option<ApiTarget>],
    judge_sees_reasoning: bool,
    monitor_sees_hidden_reasoning: bool,
    dir: &'a Path,
    /// The transcripts the folder held when the run started.
    stored: &'a Transcripts,
    calls: &'a CallBudget,
    cost: Option<&'a CostBudget>,
}

impl Walker<'_> {
    fn spent(&self) -> bool {
        self.calls.spent() || self.cost.is_some_and(CostBudget::spent)
    }

    /// Run one episode, then (if it completed) have every judge judge it.
    async fn run(&self, job: Job) -> Result<JobEnd, SweepError> {
        let world = &self.worlds[job.world];
        let key = self.plan.key(self.worlds, job);
        let user = self.users[job.world].as_ref();
        let build = self.build;
        // A scripted episode with no model in it runs ahead (`ran_ahead`).
        let finished = match &self.actors[job.target] {
            _ if self.spent() => return Ok(JobEnd::NotStarted),
            Resolved::Scripted(policy) => {
                let mut target = Scripted::new(policy, &world.file.policies[policy]);
                run_model_episode(key, Player::Scripted(&mut target), user, build, self.parent).await
            }
            Resolved::Api(per_world) => {
                run_model_episode(key, Player::Model(&per_world[job.world]), user, build, self.parent).await
            }
        }
        .map_err(|e| self.cannot_start(job, &e))?;
        self.judged(job, Box::new(finished), None).await
    }

    /// A scripted episode's result from the worker that ran it ahead, judged.
    async fn ran_ahead(&self, job: Job, i: usize) -> Result<JobEnd, SweepError> {
        match self.ahead.take(i) {
            Ok((finished, packed)) => self.judged(job, finished, Some(packed)).await,
            Err(ahead::Failed::CannotStart(e)) => Err(self.cannot_start(job, &e)),
            Err(ahead::Failed::Io(cause)) => {
                Err(SweepError::Io { context: format!("cannot write to {}", self.dir.display()), cause })
            }
        }
    }

    /// A run episode, with every reader's judgement if it completed.
    async fn judged(&self, job: Job, finished: Box<Finished>, packed: Option<Packed>) -> Result<JobEnd, SweepError> {
        let mut js = Vec::new();
        if finished.record.status == EpisodeStatus::Completed && !self.readers.is_empty() {
            let r = &finished.record;
            let judged =
                Judged { episode_id: &r.episode_id, condition_key: &r.condition_key, target: &r.target, seed: r.seed };
            js = self.judge_all(job.world, judged, &finished.transcript, None).await?;
        }
        Ok(JobEnd::Ran { finished, judgements: js, packed })
    }

    fn cannot_start(&self, job: Job, e: &str) -> SweepError {
        let (world, cell) = (&self.worlds[job.world], &self.plan.cells[job.world][job.cell]);
        SweepError::CannotStart(format!(
            "world `{}` cannot start at seed {} in {}: {e} (`terrarium lint` finds such seeds)",
            world.id(),
            job.seed,
            cell.key()
        ))
    }

    /// Have the judges that have yet to judge a stored episode judge it, from its transcript.
    async fn judge_stored(
        &self,
        job: Job,
        episode_id: &str,
        target: &str,
        missing: &[(usize, Vec<String>)],
    ) -> Result<Vec<Judgement>, SweepError> {
        let cell = &self.plan.cells[job.world][job.cell];
        let text = self
            .stored
            .read_id(episode_id)
            .map_err(io(format!("cannot read the transcript of episode {episode_id} to judge it")))?;
        let judged = Judged { episode_id, condition_key: &cell.key(), target, seed: job.seed };
        self.judge_all(job.world, judged, &text, Some(missing)).await
    }

    /// Ask every judge (or, with `only`, the given judges on the given outcomes) about
    /// one episode, from its transcript.
    async fn judge_all(
        &self,
        w: usize,
        episode: Judged<'_>,
        transcript: &str,
        only: Option<&[(usize, Vec<String>)]>,
    ) -> Result<Vec<Judgement>, SweepError> {
        use crate::judge::{Monitor, monitor_episode, monitors};
        use terrarium_core::monitor::SUSPICION;
        let world = &self.worlds[w];
        let mut all = Vec::new();
        for (k, reader) in self.readers.iter().enumerate() {
            let wanted = match only {
                None => None,
                Some(missing) => match missing.iter().find(|(i, _)| *i == k) {
                    Some((_, outcomes)) => Some(outcomes),
                    None => continue,
                },
            };
            let wants = |o: &str| wanted.is_none_or(|ws| ws.iter().any(|x| x == o));
            let cannot = |e: String| SweepError::Invalid(format!("cannot judge episode {}: {e}", episode.episode_id));
            let monitor = match reader {
                Reader::Judge(per_world) => {
                    let js = judge_episode(world, episode, transcript, &per_world[w], self.judge_sees_reasoning, wants)
                        .await
                        .map_err(cannot)?;
                    all.extend(js);
                    continue;
                }
                Reader::Monitor(per_world) => Monitor::Model(&per_world[w]),
                Reader::Rule => Monitor::Rule,
            };
            if monitors(world, matches!(monitor, Monitor::Rule)) && wants(SUSPICION) {
                let hidden = self.monitor_sees_hidden_reasoning;
                all.push(monitor_episode(world, episode, transcript, monitor, hidden).await.map_err(cannot)?);
            }
        }
        Ok(all)
    }
}

impl Summary {
    fn judged(&mut self, js: &[Judgement], on: &mut dyn FnMut(SweepEvent)) {
        for j in js {
            self.judgements += 1;
            if let Some(t) = j.tokens {
                self.tokens.get_or_insert_default().add(t);
            }
            if let Some(c) = j.cost_usd {
                *self.cost_usd.get_or_insert_default() += c;
            }
            match (&j.judge_error, j.failed) {
                (Some(e), true) => {
                    self.judge_failed += 1;
                    on(SweepEvent::Problem(format!(
                        "judge {} on {} of {} failed: {e}",
                        j.judge, j.outcome, j.episode_id
                    )));
                }
                (Some(_), false) => self.judge_errors += 1,
                (None, _) => {}
            }
        }
    }

    fn add(
        &mut self,
        job: Job,
        worlds: &[World],
        cells: &[Vec<Cell>],
        finished: &Finished,
        on: &mut dyn FnMut(SweepEvent),
    ) {
        let record = &finished.record;
        if let Some(t) = record.tokens {
            self.tokens.get_or_insert_default().add(t);
        }
        if let Some(c) = record.cost_usd {
            *self.cost_usd.get_or_insert_default() += c;
        }
        let key = (worlds[job.world].id().to_string(), cells[job.world][job.cell].key());
        let row = self.tables[job.target].1.entry(key).or_default();
        row.episodes += 1;
        let errored = record.status == EpisodeStatus::Errored;
        if errored {
            self.errored += 1;
            row.errored += 1;
            if let Some(e) = &record.error {
                on(SweepEvent::Problem(format!("episode {} errored: {e}", record.episode_id)));
            }
        }
        if record.status == EpisodeStatus::UserOutOfRole {
            self.out_of_role += 1;
            on(SweepEvent::Problem(format!(
                "episode {}: the model playing the user ({}) stopped playing the person, so the conversation is counted apart (stop `{}`)",
                record.episode_id,
                record.user.as_deref().unwrap_or("?"),
                record.stop_reason
            )));
        }
        for (name, v) in &finished.verdicts.outcomes {
            *row.fired.entry(name.clone()).or_default() +=
                usize::from(v.fired && record.status == EpisodeStatus::Completed);
        }
    }
}
