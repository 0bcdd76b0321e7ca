//! A sweep as people write it down, and the one place it becomes a [`SweepSpec`]: a
//! sweep file ([`SweepFile`]: worlds, filters, samples, targets with their own base
//! URLs, settings, connection limits and prices, judges, budgets) with a front end's
//! flags ([`Overrides`]) laid over it. The layering, the judge and user-model defaults
//! and every check of what was asked live here, so the command line and any other front
//! end resolve the same sweep the same way. Messages name settings as the command line
//! spells them (`--model`, `--shard`).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use terrarium_core::World;

use super::SweepSpec;
use super::targets::{ApiSpec, ModelSpec, SendOptions, TargetEntry, TargetSpec};
use crate::providers::budget::Price;
use crate::worlds::{LoadError, find_worlds, load_world};

/// A sweep file (RON), as `terrarium run --sweep FILE` reads it. Paths in it are
/// relative to the file's folder ([`SweepFile::read`] resolves them).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    #[serde(default)]
    pub worlds: Vec<PathBuf>,
    /// `factor=value` filters, as `--condition`.
    #[serde(default)]
    pub conditions: Vec<String>,
    pub samples: Option<u64>,
    pub seed: Option<u64>,
    /// Only some of each world's selected cells, as `--limit`: `N` or `A-B`.
    pub limit: Option<String>,
    pub out: Option<PathBuf>,
    /// Requests in flight per provider endpoint, for targets that do not set their own.
    pub max_connections: Option<u64>,
    pub max_api_calls: Option<u64>,
    pub max_cost_usd: Option<f64>,
    #[serde(default)]
    pub targets: Vec<TargetEntry>,
    #[serde(default)]
    pub judges: Vec<TargetEntry>,
    /// Whether judges see the target's visible reasoning (default true).
    pub judge_sees_reasoning: Option<bool>,
    /// Monitors: models, or `rule` for each world's rule-based baseline.
    #[serde(default)]
    pub monitors: Vec<TargetEntry>,
    /// Whether monitors see reasoning a world marks as private (default false).
    pub monitor_sees_hidden_reasoning: Option<bool>,
    /// The model that plays the simulated user, as `--user-model`.
    pub user_model: Option<TargetEntry>,
}

/// What a front end's flags say about a sweep. Each one given overrides the sweep
/// file; what neither says takes the default.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// World files, world folders, or folders of world folders.
    pub worlds: Vec<PathBuf>,
    /// Targets; they replace the file's, keeping the file's settings for a model it names.
    pub models: Vec<String>,
    /// `factor=value` filters (several may be joined with commas).
    pub conditions: Vec<String>,
    pub seed: Option<u64>,
    pub samples: Option<u64>,
    /// `N` or `A-B`: only those of each world's selected cells.
    pub limit: Option<String>,
    pub out: Option<PathBuf>,
    /// `K/N`, or `auto` (`auto/N`) from a cluster's job array.
    pub shard: Option<String>,
    pub replace: bool,
    /// Keep errored episodes already in the folder instead of running them again.
    pub keep_errored: bool,
    /// Requests in flight per provider endpoint, for every model.
    pub max_connections: Option<u64>,
    pub max_api_calls: Option<u64>,
    pub max_cost: Option<f64>,
    /// Judges; they replace the file's, keeping the file's settings for a model it names.
    pub judges: Vec<String>,
    /// Show judges the transcript without the target's visible reasoning.
    pub judge_without_reasoning: bool,
    pub judge_base_url: Option<String>,
    pub judge_max_tokens: Option<u32>,
    /// Monitors (`rule` for the worlds' rule-based baseline); they replace the file's.
    pub monitors: Vec<String>,
    /// Show monitors reasoning a world marks as the target's private scratchpad.
    pub monitor_sees_hidden_reasoning: bool,
    pub user_model: Option<String>,
    pub user_base_url: Option<String>,
    pub user_max_tokens: Option<u32>,
    /// Every model's price per million input and output tokens: both or neither.
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    /// Settings laid over every target's (its `model` is not read).
    pub settings: TargetEntry,
    pub send: SendOptions,
    /// Nothing will be sent (a dry run), so no key is needed.
    pub dry_run: bool,
    /// The commit the front end was built from (see [`SweepSpec::build`]).
    pub build: Option<String>,
    /// Branch this recorded transcript (`run --from`) at step `at`: `--samples` branches
    /// per target, each re-sampling from that step on.
    pub from: Option<PathBuf>,
    pub at: Option<u64>,
}

/// Why a sweep cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// What was asked does not make a sweep (exit 2 on the command line).
    #[error("{0}")]
    Usage(String),
    /// Worlds that do not load, each problem located.
    #[error("{} problem(s) in the worlds", .0.len())]
    InvalidWorlds(Vec<terrarium_core::Diagnostic>),
}

fn usage(message: impl Into<String>) -> SpecError {
    SpecError::Usage(message.into())
}

impl SweepFile {
    /// Read a sweep file; problems are reported as `path:line:col: message`, and the
    /// worlds and the run folder it names are made relative to its folder.
    pub fn read(path: &Path) -> Result<SweepFile, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| usage(format!("{}: cannot read: {e}", path.display())))?;
        let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let mut file: SweepFile = options
            .from_str(&text)
            .map_err(|e| usage(format!("{}:{}:{}: {}", path.display(), e.position.line, e.position.col, e.code)))?;
        let folder = path.parent().unwrap_or(Path::new(""));
        for w in &mut file.worlds {
            *w = folder.join(&*w);
        }
        if file.out.as_ref().is_some_and(|o| o.as_os_str().is_empty()) {
            return Err(usage(format!(
                "{}: `out` is empty; name the run folder (relative to this file), or leave `out` out for runs/<world>",
                path.display()
            )));
        }
        file.out = file.out.map(|o| folder.join(o));
        file.check().map_err(|why| usage(format!("{}: {why}", path.display())))?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        for (i, e) in self.targets.iter().chain(&self.judges).chain(&self.monitors).chain(&self.user_model).enumerate()
        {
            if e.model.trim().is_empty() {
                return Err(format!("entry {} has an empty `model`", i + 1));
            }
            if let Some(r) = &e.reasoning_effort
                && !["low", "medium", "high"].contains(&r.as_str())
            {
                return Err(format!("{}: reasoning_effort must be low, medium or high, not {r:?}", e.model));
            }
            if let Some(r) = &e.reasoning_summary
                && !crate::providers::REASONING_SUMMARIES.contains(&r.as_str())
            {
                return Err(format!(
                    "{}: reasoning_summary must be auto, concise, detailed or none, not {r:?}",
                    e.model
                ));
            }
            if let Some(p) = &e.price
                && !(p.input_per_mtok >= 0.0 && p.output_per_mtok >= 0.0)
            {
                return Err(format!("{}: prices must be non-negative", e.model));
            }
        }
        let connections = self.max_connections.into_iter().chain(self.targets.iter().filter_map(|e| e.max_connections));
        if connections.into_iter().any(|c| c == 0) {
            return Err("max_connections must be at least 1".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = self.targets.iter().find(|e| !seen.insert(e.model.as_str())) {
            return Err(format!("target {} is listed twice", dup.model));
        }
        Ok(())
    }
}

impl SweepSpec {
    /// The sweep `file` describes with the flags in `flags` laid over it: every
    /// setting's one layering, the judges' and user model's defaults, the worlds
    /// loaded, keys read from the environment (unless nothing will be sent).
    pub fn resolve(file: &SweepFile, flags: &Overrides) -> Result<SweepSpec, SpecError> {
        let price = price(flags.input_price, flags.output_price)?;
        let max_cost = flags.max_cost.or(file.max_cost_usd);
        if let Some(c) = max_cost.filter(|c| !(c.is_finite() && *c > 0.0)) {
            return Err(usage(format!("--max-cost must be a positive number of dollars, not {c}")));
        }
        // What every model gets from the flags, whatever its role.
        let common = |mut entry: TargetEntry| {
            if price.is_some() {
                entry.price = price;
            }
            if flags.max_connections.is_some() {
                entry.max_connections = flags.max_connections;
            }
            entry
        };
        let needs_key = !flags.dry_run;
        let mut targets = Vec::new();
        for entry in chosen(&flags.models, &file.targets, "--model")? {
            let mut entry = common(entry);
            entry.overlay(&flags.settings);
            targets.push(TargetSpec::resolve(&entry, &flags.send, needs_key).map_err(usage)?);
        }
        if targets.is_empty() {
            return Err(usage("no target: give --model, or `targets` in the sweep file"));
        }
        let mut judges = Vec::new();
        for entry in chosen(&flags.judges, &file.judges, "judge")? {
            let mut entry = common(entry);
            entry.base_url = flags.judge_base_url.clone().or(entry.base_url);
            entry.max_tokens = flags.judge_max_tokens.or(entry.max_tokens);
            let refused = format!("a judge must be a model, not {}", entry.model);
            judges.push(model_only(&entry.as_judge(), &flags.send, needs_key, "judge", &refused)?);
        }
        if judges.is_empty() && flags.judge_max_tokens.is_some() {
            return Err(usage("--judge-max-tokens needs --judge"));
        }
        let mut monitors = Vec::new();
        for entry in chosen(&flags.monitors, &file.monitors, "monitor")? {
            if entry.model == terrarium_core::monitor::RULE {
                monitors.push(super::MonitorSpec::Rule);
                continue;
            }
            if ModelSpec::parse(&entry.model).is_none() {
                return Err(usage(format!(
                    "--monitor `{}` is neither a model spec nor `rule`; use openai/<model>, openai-responses/<model>, anthropic/<model>, mock/<file>, or rule for each world's rule-based monitor",
                    entry.model
                )));
            }
            let mut entry = common(entry);
            entry.base_url = flags.judge_base_url.clone().or(entry.base_url);
            entry.max_tokens = flags.judge_max_tokens.or(entry.max_tokens);
            let refused = format!("a monitor is a model or `rule`, not {}", entry.model);
            let api = model_only(&entry.as_judge(), &flags.send, needs_key, "monitor", &refused)?;
            monitors.push(super::MonitorSpec::Model(Box::new(api)));
        }
        let user_entry = match &flags.user_model {
            Some(m) => Some(file.user_model.clone().filter(|e| &e.model == m).unwrap_or_else(|| TargetEntry::bare(m))),
            None => file.user_model.clone(),
        };
        let user_model = match user_entry {
            None if flags.user_base_url.is_some() || flags.user_max_tokens.is_some() => {
                return Err(usage("--user-base-url and --user-max-tokens need --user-model"));
            }
            None => None,
            Some(entry) => {
                let model = entry.model.as_str();
                if !model.starts_with("scripted/") && ModelSpec::parse(model).is_none() {
                    return Err(usage(format!(
                        "--user-model `{model}` is not a model spec; use openai/<model>, openai-responses/<model>, anthropic/<model> or mock/<file>"
                    )));
                }
                let mut entry = common(entry);
                entry.base_url = flags.user_base_url.clone().or(entry.base_url);
                entry.max_tokens = flags.user_max_tokens.or(entry.max_tokens);
                let refused = format!(
                    "--user-model must be a model, not {}: without it the world's own script plays the user",
                    entry.model
                );
                Some(model_only(&entry.as_user(), &flags.send, needs_key, "--user-model", &refused)?)
            }
        };
        // A branch's world, cell and seed are its parent's; a sweep's are the flags' and
        // the file's.
        let (worlds, filter, seed, limit, branch) = if let Some(from) = &flags.from {
            let at =
                flags.at.ok_or_else(|| usage("--from needs --at STEP: the step of the target output to re-sample"))?;
            if !flags.conditions.is_empty() || flags.seed.is_some() {
                return Err(usage(
                    "--from branches one recorded episode: its cell and seed are the parent's, so --condition and --seed do not apply",
                ));
            }
            let branch = BranchFrom::read(from, at, &flags.worlds)?;
            if branch.header.user.is_some() != user_model.is_some() {
                return Err(usage(match &branch.header.user {
                    Some(u) => format!("the parent's user was played by {}: give --user-model to play it in the branches", u.spec),
                    None => "the parent's user followed the world's script; a branch keeps that, so --user-model does not apply".into(),
                }));
            }
            let filter = parse_conditions(std::slice::from_ref(&branch.header.condition_key))?;
            let worlds = load_worlds(std::slice::from_ref(&branch.world_path))?;
            (worlds, filter, branch.header.seed, None, Some(branch))
        } else {
            if flags.at.is_some() {
                return Err(usage("--at names a step of the transcript given with --from"));
            }
            let worlds = if flags.worlds.is_empty() { &file.worlds } else { &flags.worlds };
            if worlds.is_empty() {
                return Err(usage("no world: name worlds on the command line, or `worlds` in the sweep file"));
            }
            let conditions = if flags.conditions.is_empty() { &file.conditions } else { &flags.conditions };
            let limit = flags.limit.as_deref().or(file.limit.as_deref()).map(parse_limit).transpose()?;
            (load_worlds(worlds)?, parse_conditions(conditions)?, flags.seed.or(file.seed).unwrap_or(0), limit, None)
        };
        let out = match &flags.out {
            Some(o) if o.as_os_str().is_empty() => {
                return Err(usage("--out is empty; name the run folder, or leave --out out for runs/<world>"));
            }
            Some(o) => Some(o.clone()),
            None => file.out.clone(),
        };
        Ok(SweepSpec {
            worlds,
            filter,
            seed,
            samples: flags.samples.or(file.samples).unwrap_or(1),
            limit,
            shard: flags.shard.as_deref().map(parse_shard).transpose()?,
            out,
            replace: flags.replace,
            retry_errored: !flags.keep_errored,
            targets,
            judges,
            judge_sees_reasoning: !flags.judge_without_reasoning && file.judge_sees_reasoning.unwrap_or(true),
            monitors,
            monitor_sees_hidden_reasoning: flags.monitor_sees_hidden_reasoning
                || file.monitor_sees_hidden_reasoning.unwrap_or(false),
            user_model,
            max_api_calls: flags.max_api_calls.or(file.max_api_calls),
            max_cost,
            max_connections: usize::try_from(file.max_connections.unwrap_or(10)).unwrap_or(usize::MAX),
            build: flags.build.clone(),
            branch,
        })
    }
}

/// The recorded episode a sweep branches (`run --from`), read and checked.
#[derive(Clone, Debug)]
pub struct BranchFrom {
    /// The parent transcript's text, replayed to the branch point by every branch.
    pub text: std::sync::Arc<String>,
    pub header: terrarium_core::transcript::Header,
    /// The step of the target output each branch re-samples.
    pub at: u64,
    /// The world file the parent was recorded in.
    pub world_path: PathBuf,
}

impl BranchFrom {
    /// Read `path`, find its world (one of `given`, else where it was recorded) and check
    /// that it replays, event for event, to step `at`, a target output.
    pub fn read(path: &std::path::Path, at: u64, given: &[PathBuf]) -> Result<BranchFrom, SpecError> {
        let text = crate::run_folder::read_transcript(path).map_err(|e| usage(format!("--from {e}")))?;
        let header = terrarium_core::transcript::Transcript::read(&text)
            .map_err(|e| usage(format!("--from {}: {e}", path.display())))?
            .header;
        let world_path = match given {
            [] => crate::run_folder::transcript_world(path, &header).ok_or_else(|| {
                usage(format!(
                    "--from {}: cannot find world `{}`, recorded at {}; name it: run WORLD --from …",
                    path.display(),
                    header.world.id,
                    header.world.path
                ))
            })?,
            [one] => one.clone(),
            _ => return Err(usage("--from branches one episode of one world: name at most one world")),
        };
        let world = load_worlds(std::slice::from_ref(&world_path))?
            .into_iter()
            .find(|w| w.id() == header.world.id)
            .ok_or_else(|| {
                usage(format!(
                    "--from {}: {} holds no world `{}`",
                    path.display(),
                    world_path.display(),
                    header.world.id
                ))
            })?;
        terrarium_core::replay::prefix(&world, &text, at)
            .map_err(|e| usage(format!("--from {} --at {at}: {e}", path.display())))?;
        Ok(BranchFrom { text: std::sync::Arc::new(text), header, at, world_path })
    }
}

/// Both prices or neither, each a non-negative number.
fn price(input: Option<f64>, output: Option<f64>) -> Result<Option<Price>, SpecError> {
    match (input, output) {
        (None, None) => Ok(None),
        (Some(i), Some(o)) if i >= 0.0 && o >= 0.0 && i.is_finite() && o.is_finite() => {
            Ok(Some(Price { input_per_mtok: i, output_per_mtok: o }))
        }
        (Some(_), Some(_)) => Err(usage("--input-price and --output-price must be non-negative numbers")),
        _ => Err(usage("give --input-price and --output-price together")),
    }
}

/// The entries the flags name (each once; the file's settings kept for a model it
/// names), or the file's when the flags name none.
fn chosen(named: &[String], from_file: &[TargetEntry], what: &str) -> Result<Vec<TargetEntry>, SpecError> {
    let mut out: Vec<TargetEntry> = Vec::new();
    for model in named {
        if out.iter().any(|e| &e.model == model) {
            return Err(usage(format!("{what} {model} is given twice")));
        }
        out.push(from_file.iter().find(|e| &e.model == model).cloned().unwrap_or_else(|| TargetEntry::bare(model)));
    }
    Ok(if out.is_empty() { from_file.to_vec() } else { out })
}

/// A model, never a scripted policy, in a role only a model can play.
fn model_only(
    entry: &TargetEntry,
    send: &SendOptions,
    needs_key: bool,
    role: &str,
    refused: &str,
) -> Result<ApiSpec, SpecError> {
    match TargetSpec::resolve(entry, send, needs_key).map_err(|e| usage(format!("{role} {}: {e}", entry.model)))? {
        TargetSpec::Api(api) => Ok(*api),
        TargetSpec::Scripted(_) => Err(usage(refused)),
    }
}

/// Every world under `paths`, loaded; all their problems at once.
pub fn load_worlds(paths: &[PathBuf]) -> Result<Vec<World>, SpecError> {
    let mut worlds = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        for file in find_worlds(path).map_err(|e| usage(e.to_string()))? {
            match load_world(&file) {
                Ok(w) => worlds.push(w),
                Err(LoadError::Invalid { diagnostics, .. }) => problems.extend(diagnostics),
                Err(e @ LoadError::Io { .. }) => return Err(usage(e.to_string())),
            }
        }
    }
    if problems.is_empty() { Ok(worlds) } else { Err(SpecError::InvalidWorlds(problems)) }
}

/// `factor=value` filters, several joined with commas allowed.
pub fn parse_conditions(raw: &[String]) -> Result<Vec<(String, String)>, SpecError> {
    let mut out = Vec::new();
    for c in raw {
        let bad = || usage(format!("--condition `{c}` must be FACTOR=VALUE, or several joined with commas"));
        for pair in c.split(',') {
            let (f, v) = pair.split_once('=').ok_or_else(bad)?;
            let (f, v) = (f.trim(), v.trim());
            if f.is_empty() || v.is_empty() {
                return Err(bad());
            }
            out.push((f.to_string(), v.to_string()));
        }
    }
    Ok(out)
}

/// `K/N` with 1 <= K <= N.
pub fn parse_shard(text: &str) -> Result<(u64, u64), SpecError> {
    shard_of(text, &|name| std::env::var(name).ok())
}

/// `K/N`; or `auto`, `auto/N`: this process's place in a cluster's job array, read from
/// `env`. A Slurm array task numbered from 1 (`sbatch --array=1-N`) is shard
/// `SLURM_ARRAY_TASK_ID` of `SLURM_ARRAY_TASK_COUNT`; a count given as `auto/N` wins, so
/// one task resubmitted alone (`--array=5`, a count of 1) is still shard 5 of N. A
/// Kubernetes Indexed Job's pod is shard `JOB_COMPLETION_INDEX` + 1 (it counts from 0)
/// of the Job's `completions`, given as `auto/N` since the pod is not told it.
pub fn shard_of(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<(u64, u64), SpecError> {
    let text = text.trim();
    let number = |name: &str| -> Result<Option<u64>, SpecError> {
        match env(name).filter(|v| !v.trim().is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| usage(format!("--shard auto: {name}=`{v}` is not a whole number"))),
        }
    };
    if let Some(rest) = text.strip_prefix("auto") {
        let given = match rest.strip_prefix('/') {
            Some(n) => Some(n.trim().parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                usage(format!("--shard `{text}`: the count after `auto/` must be a whole number of at least 1"))
            })?),
            None if rest.is_empty() => None,
            None => return Err(usage(format!("--shard `{text}` must be K/N, auto or auto/N"))),
        };
        let (index, count) = if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let Some(count) = given.or(number("SLURM_ARRAY_TASK_COUNT")?) else {
                return Err(usage("--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give the count, --shard auto/N"));
            };
            if id == 0 {
                return Err(usage(
                    "--shard auto: SLURM_ARRAY_TASK_ID is 0; number the array from 1 (sbatch --array=1-N), so each task's id is its shard",
                ));
            }
            (id - 1, count)
        } else if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let Some(count) = given else {
                return Err(usage(format!(
                    "--shard auto: in a Kubernetes Indexed Job (JOB_COMPLETION_INDEX={index}) give the Job's completions as the count, --shard auto/N"
                )));
            };
            (index, count)
        } else {
            return Err(usage(
                "--shard auto: neither a Slurm array task (SLURM_ARRAY_TASK_ID) nor a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) is running this; give --shard K/N",
            ));
        };
        if index >= count {
            return Err(usage(format!(
                "--shard auto: task {} of {count} does not exist (index {index}, from 0)",
                index + 1
            )));
        }
        return Ok((index + 1, count));
    }
    let parsed =
        text.split_once('/').and_then(|(k, n)| Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => Err(usage(format!(
            "--shard `{text}` must be K/N with 1 <= K <= N, or auto (a Slurm array or a Kubernetes Indexed Job)"
        ))),
    }
}

/// `--limit`: `N` (the first N cells) or `A-B` (the A-th to the B-th, from 1), as
/// Inspect's `--limit` takes samples.
pub fn parse_limit(text: &str) -> Result<(u64, u64), SpecError> {
    let bad = || {
        usage(format!("--limit `{text}` must be N (the first N cells of each world) or A-B (its A-th to B-th, from 1)"))
    };
    let text = text.trim();
    let (a, b) = match text.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u64>().map_err(|_| bad())?, b.trim().parse::<u64>().map_err(|_| bad())?),
        None => (1, text.parse::<u64>().map_err(|_| bad())?),
    };
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SweepFile, SpecError> {
        let dir = std::env::temp_dir().join(format!("terrarium-sweep-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.ron", text.len()));
        std::fs::write(&path, text).unwrap();
        SweepFile::read(&path)
    }

    #[test]
    fn a_sweep_file_names_targets_with_their_own_settings_and_prices() {
        let file = parse(
            r#"(
                worlds: ["../worlds/blackmail"],
                conditions: ["goal=explicit"],
                samples: 50,
                targets: [
                    (model: "openai/gpt-x", temperature: 1.0, max_connections: 32,
                     price: (input_per_mtok: 2.0, output_per_mtok: 8.0)),
                    (model: "openai/local", base_url: "http://127.0.0.1:8000/v1", scaffold: "text"),
                ],
                judges: [(model: "anthropic/judge-y")],
                max_cost_usd: 25.0,
            )"#,
        )
        .unwrap();
        assert_eq!(file.samples, Some(50));
        assert!(file.worlds[0].ends_with("../worlds/blackmail"), "relative to the file");
        assert_eq!(file.targets[0].price.unwrap().output_per_mtok, 8.0);
        assert_eq!(file.targets[1].scaffold, Some(crate::providers::Scaffold::Text));
        assert_eq!(file.judges[0].model, "anthropic/judge-y");
    }

    #[test]
    fn the_example_in_the_sweeps_guide_reads() {
        let guide =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/sweeps.md")).unwrap();
        let start = guide.find("```ron\n").expect("the guide has a RON block") + 7;
        let block = &guide[start..start + guide[start..].find("```").unwrap()];
        let file = parse(block).unwrap_or_else(|e| panic!("docs/sweeps.md: {e}"));
        assert_eq!((file.targets.len(), file.judges.len(), file.samples), (4, 1, Some(100)));
        assert_eq!(file.monitors.iter().map(|m| m.model.as_str()).collect::<Vec<_>>(), ["openai/gpt-4.1-mini", "rule"]);
        assert_eq!(file.targets[2].scaffold, Some(crate::providers::Scaffold::Text));
    }

    #[test]
    fn mistakes_are_located_or_named() {
        let e = parse("(samples: 5,\n  tragets: [])").unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("tragets"), "{e}");
        let e = parse(r#"(targets: [(model: "openai/a", scaffold: "xml")])"#).unwrap_err().to_string();
        assert!(e.contains("a scaffold is `native` or `text`, not `xml`"), "{e}");
        let e = parse(r#"(targets: [(model: "openai/a"), (model: "openai/a")])"#).unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
    }

    #[test]
    fn flags_override_the_file_and_judges_get_their_defaults_in_one_place() {
        let worlds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../worlds/blackmail");
        let file = SweepFile {
            worlds: vec![worlds],
            samples: Some(3),
            targets: vec![TargetEntry { temperature: Some(0.7), ..TargetEntry::bare("openai/a") }],
            judges: vec![
                TargetEntry::bare("openai/judge"),
                TargetEntry { reasoning_effort: Some("low".into()), ..TargetEntry::bare("openai/thinker") },
            ],
            ..SweepFile::default()
        };
        let flags = Overrides { samples: Some(5), dry_run: true, ..Overrides::default() };
        let spec = SweepSpec::resolve(&file, &flags).unwrap();
        assert_eq!((spec.samples, spec.seed, spec.targets.len()), (5, 0, 1));
        let TargetSpec::Api(a) = &spec.targets[0] else { panic!("a model target") };
        assert_eq!(a.settings.temperature, Some(0.7), "the file's setting");
        assert_eq!(spec.judges[0].settings.temperature, Some(0.0), "judges are pinned to temperature 0");
        assert_eq!(spec.judges[0].settings.max_tokens, Some(super::super::JUDGE_MAX_TOKENS));
        assert_eq!(spec.judges[1].settings.temperature, None, "a reasoning model takes no temperature");
        // A flag's model keeps the file's settings for it; a flag's setting wins.
        let flags = Overrides {
            models: vec!["openai/a".into(), "scripted/benign".into()],
            settings: TargetEntry { top_p: Some(0.5), ..TargetEntry::default() },
            judge_max_tokens: Some(99),
            dry_run: true,
            ..Overrides::default()
        };
        let spec = SweepSpec::resolve(&file, &flags).unwrap();
        let TargetSpec::Api(a) = &spec.targets[0] else { panic!("a model target") };
        assert_eq!((a.settings.temperature, a.settings.top_p), (Some(0.7), Some(0.5)));
        assert!(matches!(&spec.targets[1], TargetSpec::Scripted(p) if p == "benign"));
        assert_eq!(spec.judges[0].settings.max_tokens, Some(99));
        // What does not make a sweep is a usage error, naming it.
        for (flags, says) in [
            (Overrides { input_price: Some(1.0), ..Overrides::default() }, "together"),
            (Overrides { shard: Some("3/2".into()), ..Overrides::default() }, "K/N"),
            (Overrides { judges: vec!["scripted/x".into()], ..Overrides::default() }, "a judge must be a model"),
            (Overrides { user_max_tokens: Some(5), ..Overrides::default() }, "need --user-model"),
        ] {
            let flags = Overrides { dry_run: true, ..flags };
            let e = SweepSpec::resolve(&file, &flags).map(|_| ()).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }

    #[test]
    fn shard_auto_reads_a_slurm_array_or_a_kubernetes_indexed_job() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
        };
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
        assert_eq!(shard_of("auto", &slurm).unwrap(), (3, 8), "a task's id is its shard");
        assert_eq!(shard_of("auto/8", &slurm).unwrap(), (3, 8));
        // One task resubmitted alone: Slurm counts 1, the given count is the sweep's.
        let again =
            env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "1")]);
        assert_eq!(shard_of("auto/8", &again).unwrap(), (5, 8));
        assert!(shard_of("auto", &again).unwrap_err().to_string().contains("does not exist"));
        let from_zero = env(&[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "8")]);
        assert!(shard_of("auto", &from_zero).unwrap_err().to_string().contains("number the array from 1"));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "7")]);
        assert_eq!(shard_of("auto/8", &k8s).unwrap(), (8, 8));
        assert!(shard_of("auto", &k8s).unwrap_err().to_string().contains("--shard auto/N"));
        assert!(shard_of("auto/7", &k8s).unwrap_err().to_string().contains("does not exist"));
        let none = env(&[]);
        assert!(shard_of("auto", &none).unwrap_err().to_string().contains("neither a Slurm array task"));
        let garbled = env(&[("JOB_COMPLETION_INDEX", "two")]);
        assert!(shard_of("auto/8", &garbled).unwrap_err().to_string().contains("not a whole number"));
        assert_eq!(shard_of("2/5", &none).unwrap(), (2, 5), "K/N needs no environment");
        assert!(shard_of("autox", &none).is_err() && shard_of("auto/0", &none).is_err());
    }

    #[test]
    fn limit_takes_n_or_a_range_from_one() {
        assert_eq!(parse_limit("10").unwrap(), (1, 10));
        assert_eq!(parse_limit(" 3-7 ").unwrap(), (3, 7));
        for bad in ["0", "0-3", "5-2", "x", "-3", ""] {
            assert!(parse_limit(bad).is_err(), "{bad}");
        }
    }
}
