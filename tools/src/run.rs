//! `terrarium run`: a sweep of worlds × cells × seeds × targets into one run folder.
//!
//! The plan lists every (world, cell, seed, target) in a fixed order, targets
//! interleaved, and is walked lazily. Model episodes run concurrently on one tokio
//! thread: each provider has at most `max_connections` requests in flight, and at most
//! the sum of those episodes are under way at once, so memory stays flat however long
//! the plan. Scripted episodes need no waiting and run inline.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use futures_util::StreamExt as _;
use serde_json::Value as Json;
use terrarium_core::{Condition, Episode, World};
use terrarium_runtime::judge::{Judged, Judgement, judge_episode};
use terrarium_runtime::providers::budget::{CallBudget, CostBudget, Price};
use terrarium_runtime::providers::cache::Cache;
use terrarium_runtime::providers::http::{ApiTarget, Pool, Provider};
use terrarium_runtime::providers::usage::Tokens;
use terrarium_runtime::providers::{Scaffold, Settings};
use terrarium_runtime::run::{EpisodeStatus, Finished, Planned, RunDir, run_episode, run_model_episode};
use terrarium_runtime::target::Scripted;

use crate::sweep_file::Entry;
use crate::{Failure, Outcome, SendArgs, load_all, model_spec, parse_conditions};

/// What acts in a run.
pub(crate) enum TargetSpec {
    Scripted(String),
    Api(Box<ApiSpec>),
}

/// A model target: where it is, how it is asked, and what it costs.
pub(crate) struct ApiSpec {
    pub provider: Provider,
    pub model: String,
    pub base_url: String,
    pub api_key: Option<String>,
    pub settings: Settings,
    pub cache: Option<Cache>,
    pub max_attempts: u32,
    pub timeout_secs: u64,
    pub scaffold: Scaffold,
    /// Connections to its endpoint, when this model names a number (else the run's default).
    pub max_connections: Option<usize>,
    pub price: Option<Price>,
}

impl ApiSpec {
    /// The target for one world, sending through `pool`.
    pub(crate) fn target(&self, world: &World, pool: Pool) -> ApiTarget {
        let mut t = ApiTarget::new(
            self.provider,
            world,
            &self.model,
            &self.base_url,
            self.api_key.clone(),
            self.settings.clone(),
            self.cache.clone(),
            pool,
        )
        .with_max_attempts(self.max_attempts)
        .with_scaffold(self.scaffold);
        if let Some(price) = self.price {
            t = t.with_price(price);
        }
        t
    }
}

/// The target an entry names (a `--model`, or a sweep file's target with the flags
/// laid over it). API keys come from the environment only.
/// `needs_key`: whether requests will be sent (a dry run sends none, so needs no key).
pub(crate) fn target_spec(entry: &Entry, send: &SendArgs, needs_key: bool) -> anyhow::Result<TargetSpec> {
    let model = entry.model.as_str();
    if let Some(policy) = model.strip_prefix("scripted/").filter(|p| !p.is_empty()) {
        return Ok(TargetSpec::Scripted(policy.to_string()));
    }
    let Some(spec) = model_spec(model) else {
        return Err(anyhow!(
            "--model `{model}` is not a target spec; use scripted/<policy>, openai/<model>, openai-responses/<model> or anthropic/<model>"
        ));
    };
    let env_url = std::env::var(spec.url_var).ok().filter(|u| !u.is_empty());
    let base_url = entry.base_url.clone().or(env_url).unwrap_or_else(|| spec.default_url.to_string());
    let api_key = std::env::var(spec.key_var).ok().filter(|k| !k.is_empty());
    if needs_key && api_key.is_none() && base_url == spec.default_url {
        let key_var = spec.key_var;
        return Err(anyhow!("{key_var} is not set (a local compatible server needs --base-url and no key)"));
    }
    let cache = if send.no_cache { None } else { Cache::default_dir().map(Cache::new) };
    Ok(TargetSpec::Api(Box::new(ApiSpec {
        provider: spec.provider,
        model: spec.name.to_string(),
        base_url,
        api_key,
        settings: Settings {
            temperature: entry.temperature,
            top_p: entry.top_p,
            max_tokens: entry.max_tokens,
            sampling_seed: entry.sampling_seed,
            reasoning_effort: entry.reasoning_effort.clone(),
            thinking_budget: entry.thinking_budget,
        },
        cache,
        max_attempts: send.max_attempts,
        timeout_secs: send.timeout_secs,
        scaffold: if entry.scaffold.as_deref() == Some("text") { Scaffold::Text } else { Scaffold::Native },
        max_connections: entry.max_connections.map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1)),
        price: entry.price,
    })))
}

/// What a sweep covers and where it goes.
pub(crate) struct Sweep {
    pub conditions: Vec<String>,
    pub seed: u64,
    pub samples: u64,
    pub out: Option<PathBuf>,
    pub shard: Option<String>,
    pub dry_run: bool,
    /// Empty the run folder before running (`--replace`).
    pub replace: bool,
    pub retry_errored: bool,
    pub max_api_calls: Option<u64>,
    pub max_cost: Option<f64>,
    /// Models that judge each completed episode on every outcome with a judge prompt
    /// (for an outcome decided by judges, the episodes its gate lets through).
    pub judges: Vec<(String, ApiSpec)>,
    /// Whether judges see the target's visible reasoning.
    pub judge_sees_reasoning: bool,
    /// Connections per provider endpoint where no model on it names a number.
    pub max_connections: usize,
}

/// One planned episode: indexes into the targets, worlds and each world's cells.
#[derive(Clone, Copy)]
struct Job {
    target: usize,
    world: usize,
    cell: usize,
    seed: u64,
}

/// What a job does with its episode.
enum Work {
    /// Run it (then judge it, if the run has judges).
    Run,
    /// It is in the folder already: judge its stored transcript, for each judge (by
    /// index) on the outcomes that judge has yet to answer.
    Judge { episode_id: String, missing: Vec<(usize, Vec<String>)> },
}

/// How a job ended.
enum JobEnd {
    /// A spent budget kept it from starting; the next run does it.
    NotStarted,
    /// A spent budget kept a stored episode from being judged; the next run does it.
    NotJudged,
    Ran(Box<Finished>, Vec<Judgement>),
    Judged(Vec<Judgement>),
}

/// A target ready to act in every world of the run.
enum Actor {
    Scripted(String),
    /// One target per world (each has the world's tools and prefill).
    Api(Vec<ApiTarget>),
}

/// Run a sweep: every selected cell of every world, `samples` seeds each, for every
/// target, into one run folder. One call budget and one cost limit cover the whole run.
pub(crate) fn run(paths: &[PathBuf], targets: &[(String, TargetSpec)], sweep: &Sweep) -> Outcome {
    // Every model the run sends to: targets, then judges.
    let models: Vec<(&String, &ApiSpec)> = targets
        .iter()
        .filter_map(|(m, s)| match s {
            TargetSpec::Api(api) => Some((m, api.as_ref())),
            TargetSpec::Scripted(_) => None,
        })
        .chain(sweep.judges.iter().map(|(m, api)| (m, api)))
        .collect();
    if sweep.max_api_calls.is_some() && models.is_empty() {
        return Err(anyhow!("--max-api-calls applies to model targets; every --model here is a scripted policy").into());
    }
    if sweep.max_cost.is_some() {
        if models.is_empty() {
            return Err(anyhow!("--max-cost applies to model targets; every --model here is a scripted policy").into());
        }
        if let Some((m, _)) = models.iter().find(|(_, api)| api.price.is_none()) {
            return Err(anyhow!(
                "--max-cost needs the price of every model target and judge, and {m} has none \
                 (give --input-price and --output-price, or a `price` in the sweep file)"
            )
            .into());
        }
    }
    let shard = sweep.shard.as_deref().map(parse_shard).transpose()?;
    let filter = parse_conditions(&sweep.conditions)?;
    if sweep.samples == 0 {
        return Err(anyhow!("--samples must be at least 1").into());
    }
    let last_seed = sweep.seed.checked_add(sweep.samples - 1).ok_or_else(|| anyhow!("--seed + --samples overflows"))?;
    let worlds = load_all(paths)?;
    let mut cells = Vec::new();
    for w in &worlds {
        cells.push(w.select_cells(&filter).map_err(|e| anyhow!(e))?);
    }
    // applies[target][world][cell]: a reference policy may declare the cells it fits.
    let mut applies = Vec::new();
    for (_, spec) in targets {
        let mut per_world = Vec::new();
        for (w, selected) in worlds.iter().zip(&cells) {
            per_world.push(match spec {
                TargetSpec::Scripted(policy) => policy_cells(w, policy, selected)?,
                TargetSpec::Api(_) => vec![true; selected.len()],
            });
        }
        applies.push(per_world);
    }
    let mut plan = Vec::new();
    for (w, world) in worlds.iter().enumerate() {
        for (c, cell) in cells[w].iter().enumerate() {
            let key = cell.key();
            for seed in sweep.seed..=last_seed {
                if shard.is_some_and(|(k, n)| shard_of(world.id(), &key, seed, n) != k) {
                    continue;
                }
                for (target, applies) in applies.iter().enumerate() {
                    if applies[w][c] {
                        plan.push(Job { target, world: w, cell: c, seed });
                    }
                }
            }
        }
    }
    if sweep.dry_run {
        for (t, (model, spec)) in targets.iter().enumerate() {
            let mine: Vec<(&World, &Condition, u64)> = plan
                .iter()
                .filter(|j| j.target == t)
                .map(|j| (&worlds[j.world], &cells[j.world][j.cell], j.seed))
                .collect();
            dry_run_report(spec, model, &mine)?;
        }
        if !sweep.judges.is_empty() {
            let questions: usize =
                plan.iter().map(|j| terrarium_runtime::judge::judged_outcomes(&worlds[j.world]).len()).sum();
            let names: Vec<&str> = sweep.judges.iter().map(|(m, _)| m.as_str()).collect();
            println!(
                "judges {}: up to {questions} questions each (one per judged outcome of each completed episode not yet judged)",
                names.join(", ")
            );
        }
        return Ok(());
    }

    // One connection pool per provider endpoint, shared by the targets and judges that
    // use it: as many connections as the models on it name (they must agree), else the
    // run's default.
    let mut sizes: BTreeMap<(&str, &str), (usize, Option<&String>)> = BTreeMap::new();
    for (m, api) in &models {
        let key = (api.provider.name(), api.base_url.as_str());
        let size = sizes.entry(key).or_insert((sweep.max_connections.max(1), None));
        if let Some(n) = api.max_connections {
            if let Some(first) = size.1.filter(|_| size.0 != n) {
                return Err(anyhow!(
                    "{m} asks for {n} connections to {} at {}, and {first} for {}: models on one endpoint share its connections",
                    key.0,
                    key.1,
                    size.0
                )
                .into());
            }
            *size = (n, Some(m));
        }
    }
    let mut pools: BTreeMap<(&str, &str), Pool> = BTreeMap::new();
    for (m, api) in &models {
        let key = (api.provider.name(), api.base_url.as_str());
        if let std::collections::btree_map::Entry::Vacant(slot) = pools.entry(key) {
            slot.insert(Pool::new(sizes[&key].0, api.timeout_secs).with_context(|| m.to_string())?);
        }
    }
    let calls = sweep.max_api_calls.map_or_else(|| CallBudget::new(u64::MAX), CallBudget::new);
    let cost = sweep.max_cost.map(CostBudget::new);
    let mut actors = Vec::new();
    // settings[target][world]: recorded in each header and part of the episode id.
    let mut settings: Vec<Vec<Json>> = Vec::new();
    for (_, spec) in targets {
        match spec {
            TargetSpec::Scripted(policy) => {
                actors.push(Actor::Scripted(policy.clone()));
                settings.push(vec![serde_json::json!({}); worlds.len()]);
            }
            TargetSpec::Api(api) => {
                let per_world = limited(api, &worlds, &pools, &calls, cost.as_ref());
                for (t, w) in per_world.iter().zip(&worlds) {
                    note_unsupported(t, w);
                }
                settings.push(per_world.iter().map(ApiTarget::settings).collect());
                actors.push(Actor::Api(per_world));
            }
        }
    }
    // judges[judge][world], under the same pools and budgets as the targets.
    let judges: Vec<Vec<ApiTarget>> =
        sweep.judges.iter().map(|(_, api)| limited(api, &worlds, &pools, &calls, cost.as_ref())).collect();
    let judge_specs: Vec<String> =
        sweep.judges.iter().map(|(_, api)| format!("{}/{}", api.provider.name(), api.model)).collect();
    let judged_outcomes: Vec<Vec<&str>> = worlds.iter().map(terrarium_runtime::judge::judged_outcomes).collect();
    let recorded_spec: Vec<String> = targets
        .iter()
        .map(|(_, s)| match s {
            TargetSpec::Scripted(p) => format!("scripted/{p}"),
            TargetSpec::Api(api) => format!("{}/{}", api.provider.name(), api.model),
        })
        .collect();

    let dir = sweep.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(worlds[0].id()));
    let mut run_dir = RunDir::open(&dir).with_context(|| format!("cannot open run folder {}", dir.display()))?;
    for warning in run_dir.warnings() {
        eprintln!("warning: {warning}");
    }
    if sweep.replace && !sweep.dry_run {
        run_dir.clear().with_context(|| format!("cannot empty run folder {}", dir.display()))?;
    }
    // One folder, one version of each world: episodes of an edited world are not pooled
    // with the old ones.
    for w in &worlds {
        let old: Vec<&str> = run_dir.dynamics_hashes(w.id()).filter(|h| *h != w.dynamics_hash).collect();
        if let Some(old) = old.first() {
            return Err(anyhow!(
                "{} holds episodes of world `{}` run under dynamics hash {old}, but the world now has {} (it was edited since): run into a new --out, or add --replace to empty this folder first",
                dir.display(),
                w.id(),
                w.dynamics_hash
            )
            .into());
        }
    }
    let total = plan.len();
    // Episodes already in the folder are not run again (an errored one is, by default);
    // a completed one some judge has yet to judge is judged from its transcript.
    let mut todo: Vec<(Job, Work)> = Vec::new();
    let mut planned = Vec::with_capacity(plan.len());
    let mut skipped = 0;
    for j in plan {
        let (w, cell) = (&worlds[j.world], &cells[j.world][j.cell]);
        let id = terrarium_core::episode_id(w, cell, j.seed, &recorded_spec[j.target], &settings[j.target][j.world]);
        planned.push(Planned {
            episode_id: id.clone(),
            world: w.id().to_string(),
            condition_key: cell.key(),
            target: recorded_spec[j.target].clone(),
        });
        if !(run_dir.has_completed(&id) || (!sweep.retry_errored && run_dir.has(&id))) {
            todo.push((j, Work::Run));
            continue;
        }
        skipped += 1;
        if !run_dir.has_completed(&id) {
            continue;
        }
        let missing: Vec<(usize, Vec<String>)> = judge_specs
            .iter()
            .enumerate()
            .filter_map(|(k, judge)| {
                let outcomes: Vec<String> = judged_outcomes[j.world]
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
    run_dir.plan(&planned).with_context(|| format!("cannot write to {}", dir.display()))?;
    drop(planned);
    if !sweep.judges.is_empty() && judged_outcomes.iter().all(Vec::is_empty) {
        eprintln!("note: no outcome of these worlds declares a judge prompt; the judges have nothing to answer");
    }
    let progress = Progress::new(total as u64);
    let mut tally = Tally { done: skipped as u64, tables: vec![Table::new(); targets.len()], ..Tally::default() };
    let limit = pools.values().map(Pool::max_connections).sum::<usize>().max(1);
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let walker = Walker {
        worlds: &worlds,
        cells: &cells,
        actors: &actors,
        judges: &judges,
        judge_sees_reasoning: sweep.judge_sees_reasoning,
        dir: &dir,
        calls: &calls,
        cost: cost.as_ref(),
    };
    let walked: anyhow::Result<()> = runtime.block_on(async {
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
                    };
                    anyhow::Ok((job, end))
                }
            })
            .buffer_unordered(limit);
        while let Some(end) = ends.next().await {
            let (job, end) = end?;
            let write = |e: std::io::Error| anyhow!(e).context(format!("cannot write to {}", dir.display()));
            match end {
                JobEnd::NotJudged => tally.not_judged += 1,
                JobEnd::NotStarted => {
                    tally.not_started += 1;
                    tally.done += 1;
                }
                JobEnd::Ran(finished, js) => {
                    tally.done += 1;
                    tally.add(job, &worlds, &cells, &finished, &progress);
                    // Judgements first: a crash between the two leaves the episode to
                    // run again, never a completed episode whose judging is forgotten.
                    tally.judged(&js, &progress);
                    run_dir.save_judgements(&js).map_err(write)?;
                    run_dir.save(&finished).map_err(write)?;
                }
                JobEnd::Judged(js) => {
                    tally.judged(&js, &progress);
                    run_dir.save_judgements(&js).map_err(write)?;
                }
            }
            progress.update(&tally, &calls, cost.as_ref());
        }
        Ok(())
    });
    run_dir.sync().with_context(|| format!("cannot sync {}", dir.display()))?;
    progress.finish();
    walked?;
    for ((model, _), table) in targets.iter().zip(&tally.tables) {
        print_outcome_table(model, table);
    }
    // Outcomes decided by judges: the counts above are their gates'.
    let gated: std::collections::BTreeSet<&str> = worlds
        .iter()
        .flat_map(|w| w.file.outcomes.iter())
        .filter(|(_, o)| o.decide == terrarium_core::format::Decide::Judges)
        .map(|(name, _)| name.as_str())
        .collect();
    if !gated.is_empty() {
        let names: Vec<String> = gated.iter().map(|n| format!("`{n}`")).collect();
        println!(
            "\n{} {} decided by judges: the counts above are {} gate's (an upper bound); {}",
            names.join(", "),
            if names.len() == 1 { "is" } else { "are" },
            if names.len() == 1 { "its" } else { "their" },
            if sweep.judges.is_empty() {
                "run again with --judge MODEL to decide them, then `terrarium report`"
            } else {
                "`terrarium report` gives the judges' verdicts"
            }
        );
    }
    let Tally { errored, not_started, not_judged, tokens, cost_usd, judgements, judge_errors, judge_failed, .. } =
        tally;
    println!(
        "{} ({} new, {skipped} already in the folder, {errored} errored{}) -> {}",
        crate::count(total as u64, "episode"),
        total - skipped - not_started,
        if not_started > 0 { format!(", {not_started} not started") } else { String::new() },
        run_dir.path().join("episodes.jsonl").display()
    );
    if judgements > 0 {
        println!(
            "{} ({}, {} failed) -> {}",
            crate::count(judgements as u64, "judgement"),
            crate::count(judge_errors as u64, "unreadable reply"),
            crate::count(judge_failed as u64, "request"),
            run_dir.path().join("judgements.jsonl").display()
        );
    }
    if let Some(t) = tokens {
        let priced = cost_usd.map(|c| format!("; estimated cost ${c:.4}")).unwrap_or_default();
        println!("tokens this run: {} input, {} output (as the provider reported them){priced}", t.input, t.output);
    }
    let spent = calls.spent() || cost.as_ref().is_some_and(CostBudget::spent);
    if not_started > 0 || not_judged > 0 || (spent && (errored > 0 || judge_failed > 0)) {
        let why = match &cost {
            Some(c) if c.spent() => format!("the cost limit of ${:.2} is reached", c.limit_usd()),
            _ => format!("the budget of {} API calls is spent", calls.limit()),
        };
        let unjudged = if not_judged > 0 {
            format!(", {} not judged", crate::count(not_judged as u64, "stored episode"))
        } else {
            String::new()
        };
        eprintln!(
            "stopped: {why}; {} not started{unjudged}. \
             Run the same command again to continue (errored episodes are retried).",
            crate::count(not_started as u64, "episode")
        );
        return Err(Failure::Budget);
    }
    if judge_failed > 0 {
        eprintln!(
            "{} failed; run the same command again to ask them again",
            crate::count(judge_failed as u64, "judge request")
        );
    }
    if errored > 0 || judge_failed > 0 { Err(Failure::Errored) } else { Ok(()) }
}

/// What every job of a run reads: the worlds and their cells, the targets and judges,
/// the run folder, the budgets.
struct Walker<'a> {
    worlds: &'a [World],
    cells: &'a [Vec<Condition>],
    actors: &'a [Actor],
    judges: &'a [Vec<ApiTarget>],
    judge_sees_reasoning: bool,
    dir: &'a Path,
    calls: &'a CallBudget,
    cost: Option<&'a CostBudget>,
}

impl Walker<'_> {
    fn spent(&self) -> bool {
        self.calls.spent() || self.cost.is_some_and(CostBudget::spent)
    }

    /// Run one episode, then (if it completed) have every judge judge it.
    async fn run(&self, job: Job) -> anyhow::Result<JobEnd> {
        let (world, cell) = (&self.worlds[job.world], &self.cells[job.world][job.cell]);
        let finished = match &self.actors[job.target] {
            Actor::Scripted(policy) => {
                let mut target = Scripted::new(policy, &world.file.policies[policy]);
                run_episode(world, cell, job.seed, &mut target)
            }
            Actor::Api(_) if self.spent() => return Ok(JobEnd::NotStarted),
            Actor::Api(per_world) => run_model_episode(world, cell, job.seed, &per_world[job.world]).await,
        }
        .map_err(|e| anyhow!(e))?;
        let mut js = Vec::new();
        if finished.record.status == EpisodeStatus::Completed && !self.judges.is_empty() {
            let r = &finished.record;
            let judged =
                Judged { episode_id: &r.episode_id, condition_key: &r.condition_key, target: &r.target, seed: r.seed };
            js =
                judge_all(world, judged, &finished.transcript, self.judges, self.judge_sees_reasoning, job.world, None)
                    .await?;
        }
        Ok(JobEnd::Ran(Box::new(finished), js))
    }

    /// Have the judges that have yet to judge a stored episode judge it, from its transcript.
    async fn judge_stored(
        &self,
        job: Job,
        episode_id: &str,
        target: &str,
        missing: &[(usize, Vec<String>)],
    ) -> anyhow::Result<Vec<Judgement>> {
        let (world, cell) = (&self.worlds[job.world], &self.cells[job.world][job.cell]);
        let path = self.dir.join("transcripts").join(format!("{episode_id}.jsonl"));
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("cannot read {} to judge it", path.display()))?;
        let judged = Judged { episode_id, condition_key: &cell.key(), target, seed: job.seed };
        judge_all(world, judged, &text, self.judges, self.judge_sees_reasoning, job.world, Some(missing)).await
    }
}

/// Ask every judge (or, with `only`, the given judges on the given outcomes) about one
/// episode, from its transcript.
async fn judge_all(
    world: &World,
    episode: Judged<'_>,
    transcript: &str,
    judges: &[Vec<ApiTarget>],
    saw_reasoning: bool,
    w: usize,
    only: Option<&[(usize, Vec<String>)]>,
) -> anyhow::Result<Vec<Judgement>> {
    let mut all = Vec::new();
    for (k, per_world) in judges.iter().enumerate() {
        let wanted = match only {
            None => None,
            Some(missing) => match missing.iter().find(|(i, _)| *i == k) {
                Some((_, outcomes)) => Some(outcomes),
                None => continue,
            },
        };
        let wants = |o: &str| wanted.is_none_or(|ws| ws.iter().any(|x| x == o));
        let js = judge_episode(world, episode, transcript, &per_world[w], saw_reasoning, wants)
            .await
            .map_err(|e| anyhow!("cannot judge episode {}: {e}", episode.episode_id))?;
        all.extend(js);
    }
    Ok(all)
}

/// A model's target for each world, sending through its endpoint's pool and counted
/// against the run's budgets.
fn limited(
    api: &ApiSpec,
    worlds: &[World],
    pools: &BTreeMap<(&str, &str), Pool>,
    calls: &CallBudget,
    cost: Option<&CostBudget>,
) -> Vec<ApiTarget> {
    let pool = &pools[&(api.provider.name(), api.base_url.as_str())];
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

/// Which of `selected` a world's reference policy applies to (a policy may declare
/// `only_if`); says so when some are skipped, fails when none is left.
fn policy_cells(w: &World, policy: &str, selected: &[Condition]) -> anyhow::Result<Vec<bool>> {
    let p = w.file.policies.get(policy).ok_or_else(|| {
        let known: Vec<&str> = w.file.policies.keys().map(String::as_str).collect();
        anyhow!("world `{}` has no policy `{policy}` (policies: {})", w.id(), known.join(", "))
    })?;
    let fits: Vec<bool> = selected.iter().map(|c| p.only_if.as_ref().is_none_or(|o| c.matches(o))).collect();
    if !fits.iter().any(|f| *f) {
        return Err(anyhow!("policy `{policy}` of world `{}` applies to none of the selected cells", w.id()));
    }
    if fits.iter().any(|f| !f) {
        let skipped: Vec<String> = selected.iter().zip(&fits).filter(|(_, f)| !**f).map(|(c, _)| c.key()).collect();
        eprintln!(
            "note: policy `{policy}` of world `{}` declares it applies only to some cells; skipping {}",
            w.id(),
            skipped.join("; ")
        );
    }
    Ok(fits)
}

/// Say once per world when a target cannot honour something the world asks for.
fn note_unsupported(target: &ApiTarget, world: &World) {
    let settings = target.settings();
    if let Some(unsupported) = settings.get("unsupported").and_then(Json::as_array) {
        let names: Vec<&str> = unsupported.iter().filter_map(Json::as_str).collect();
        eprintln!(
            "note: {} cannot honour {} for world `{}`; recorded as unsupported in each transcript header",
            target.spec(),
            names.join(", "),
            world.id()
        );
    }
}

/// (world, cell) → (episodes, errored, outcome → fired count)
type Table = BTreeMap<(String, String), (usize, usize, BTreeMap<String, usize>)>;

/// What the run has done so far.
#[derive(Default)]
struct Tally {
    /// Episodes finished, skipped or not started.
    done: u64,
    errored: usize,
    not_started: usize,
    /// Stored episodes a spent budget kept from being judged.
    not_judged: usize,
    tokens: Option<Tokens>,
    cost_usd: Option<f64>,
    /// One per target.
    tables: Vec<Table>,
    judgements: usize,
    judge_errors: usize,
    judge_failed: usize,
}

impl Tally {
    fn judged(&mut self, js: &[Judgement], progress: &Progress) {
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
                    progress.note(&format!("judge {} on {} of {} failed: {e}", j.judge, j.outcome, j.episode_id));
                }
                (Some(_), false) => self.judge_errors += 1,
                (None, _) => {}
            }
        }
    }

    fn add(&mut self, job: Job, worlds: &[World], cells: &[Vec<Condition>], finished: &Finished, progress: &Progress) {
        let record = &finished.record;
        if let Some(t) = record.tokens {
            self.tokens.get_or_insert_default().add(t);
        }
        if let Some(c) = record.cost_usd {
            *self.cost_usd.get_or_insert_default() += c;
        }
        let key = (worlds[job.world].id().to_string(), cells[job.world][job.cell].key());
        let row = self.tables[job.target].entry(key).or_default();
        row.0 += 1;
        let errored = record.status == EpisodeStatus::Errored;
        if errored {
            self.errored += 1;
            row.1 += 1;
            if let Some(e) = &record.error {
                progress.note(&format!("episode {} errored: {e}", record.episode_id));
            }
        }
        for (name, v) in &finished.verdicts.outcomes {
            *row.2.entry(name.clone()).or_default() += usize::from(v.fired && !errored);
        }
    }
}

/// Progress of a run on stderr: a bar on a terminal; otherwise a plain line every 5%
/// of a run of 20 episodes or more.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} episodes  {per_sec}  eta {eta}  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            indicatif::ProgressBar::new(total).with_style(style)
        });
        Progress { bar, total }
    }

    fn update(&self, tally: &Tally, calls: &CallBudget, cost: Option<&CostBudget>) {
        let mut msg = format!("{} errored", tally.errored);
        if calls.used() > 0 {
            msg.push_str(&format!(", {} API calls", calls.used()));
        }
        if let Some(t) = tally.tokens {
            msg.push_str(&format!(", {} tokens", t.input + t.output));
        }
        if let Some(c) = cost {
            msg.push_str(&format!(", ${:.2} of ${:.2}", c.used_usd(), c.limit_usd()));
        }
        let done = tally.done;
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.set_message(msg);
            }
            None => {
                let step = (self.total / 20).max(1);
                if self.total >= 20 && done > 0 && done.is_multiple_of(step) {
                    eprintln!("progress: {done}/{} episodes, {msg}", self.total);
                }
            }
        }
    }

    /// A line of its own, above the bar when there is one.
    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// What a run would do: episodes per world and cell, and for model targets how many
/// requests the cache can already answer (each episode is followed through cached
/// replies only). Nothing is sent and nothing is written.
fn dry_run_report(spec: &TargetSpec, model: &str, plan: &[(&World, &Condition, u64)]) -> Outcome {
    let mut rows: BTreeMap<(String, String), (usize, usize, usize)> = BTreeMap::new();
    let mut targets: BTreeMap<String, ApiTarget> = BTreeMap::new();
    let pool = Pool::new(1, 1).map_err(|e| anyhow!(e))?;
    for (world, cell, seed) in plan {
        let row = rows.entry((world.id().to_string(), cell.key())).or_default();
        row.0 += 1;
        let TargetSpec::Api(api) = spec else { continue };
        if api.cache.is_none() {
            continue;
        }
        let target = targets.entry(world.id().to_string()).or_insert_with(|| api.target(world, pool.clone()));
        let mut ep = Episode::start(world, cell, *seed).map_err(|e| anyhow!("{}: {}", e.at, e.message))?;
        while !ep.is_done() {
            // Followed through cached replies only; the first uncached request ends it.
            if !target.cached_next(&ep).is_some_and(|next| next.apply_to(&mut ep)) {
                break;
            }
            row.1 += 1;
        }
        row.2 += usize::from(ep.is_done());
    }
    let total: usize = rows.values().map(|r| r.0).sum();
    println!("dry run: {} for {model} (nothing is sent or written)", crate::count(total as u64, "episode"));
    let cached = matches!(spec, TargetSpec::Api(api) if api.cache.is_some());
    for ((world, cell), (n, answered, complete)) in &rows {
        let cell = if cell.is_empty() { "(no factors)" } else { cell };
        if cached {
            println!(
                "  {world:<16} {cell:<44} {:>11}; the cache answers {} and completes {}",
                crate::count(*n as u64, "episode"),
                crate::count(*answered as u64, "request"),
                crate::count(*complete as u64, "episode")
            );
        } else {
            println!("  {world:<16} {cell:<44} {:>11}", crate::count(*n as u64, "episode"));
        }
    }
    Ok(())
}

/// `K/N` with 1 <= K <= N.
fn parse_shard(text: &str) -> anyhow::Result<(u64, u64)> {
    let parsed =
        text.split_once('/').and_then(|(k, n)| Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => Err(anyhow!("--shard `{text}` must be K/N with 1 <= K <= N")),
    }
}

/// The shard (1-based) an episode belongs to: a stable hash of world, cell and seed, so
/// every target's episode of one (world, cell, seed) lands in the same shard.
fn shard_of(world: &str, cell: &str, seed: u64, n: u64) -> u64 {
    let mut c = terrarium_core::hash::Canon::new("terrarium.shard.v1");
    c.str(world).str(cell).u64(seed);
    let d = c.digest();
    u64::from_le_bytes(d[..8].try_into().expect("eight bytes")) % n + 1
}

fn print_outcome_table(target: &str, table: &Table) {
    let mut current_world = "";
    for ((world, cell), (n, errored, fired)) in table {
        if world != current_world {
            current_world = world;
            let names: Vec<&str> = fired.keys().map(String::as_str).collect();
            println!("\n{world} — {target}");
            println!(
                "  {:<44} {:>5} {:>7}  {}",
                "condition",
                "n",
                "errored",
                names.iter().map(|n| format!(" {n:>16}")).collect::<String>()
            );
        }
        let cell = if cell.is_empty() { "(no factors)" } else { cell };
        let counts: String = fired.values().map(|c| format!(" {c:>16}")).collect();
        println!("  {cell:<44} {n:>5} {errored:>7}  {counts}");
    }
}
