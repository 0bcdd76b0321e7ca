//! Reading labelled sets from disk and calibrating a world's verdicts against them
//! (`terrarium calibrate`). The measurement itself is `terrarium_core::calibrate`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use futures_util::StreamExt as _;
use terrarium_core::World;
use terrarium_core::calibrate::{self, Calibration, CaseResult, LabelledError, LabelledSet};
use terrarium_core::format::Decide;
use terrarium_core::judge::{conversation, material, parse_answer, questions};
use terrarium_core::stats::Agreement;

use crate::providers::http::Pool;
use crate::sweep::{SendOptions, TargetEntry, TargetSpec};
use crate::worlds::{LoadError, load_world};

/// Requests in flight at once while judges answer.
pub const JUDGE_CONNECTIONS: usize = 8;

/// Why a labelled set could not be calibrated.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(transparent)]
    Labelled(#[from] LabelledError),
    #[error("{path}: its world: {cause}")]
    World { path: String, cause: LoadError },
    #[error("judge {model}: {message}")]
    Judge { model: String, message: String },
}

/// The labelled sets named by `path`: one `.ron` file, or every `.ron` file in a
/// folder, sorted.
pub fn find_labelled(path: &Path) -> Result<Vec<PathBuf>, CalibrateError> {
    let io = |message: String| CalibrateError::Io { path: path.display().to_string(), message };
    let meta = std::fs::metadata(path).map_err(|e| io(format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !meta.is_dir() {
        return Err(io("not a regular file or a folder (a device or a FIFO is not read)".into()));
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io(format!("cannot list: {e}")))? {
        let p = entry.map_err(|e| io(format!("cannot list: {e}")))?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "ron") {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(io("no labelled set (.ron file) here".into()));
    }
    Ok(found)
}

/// Read one labelled set, load its world (named relative to the set's file) and run
/// every case.
pub fn calibrate_file(path: &Path) -> Result<Calibration, CalibrateError> {
    let (world, set) = load_set(path)?;
    Ok(calibrate::calibrate(&path.display().to_string(), &world, &set)?)
}

/// Read one labelled set and load its world (named relative to the set's file).
pub fn load_set(path: &Path) -> Result<(World, LabelledSet), CalibrateError> {
    let shown = path.display().to_string();
    let text = crate::worlds::read_input_file(path, crate::worlds::MAX_INCLUDE_BYTES)
        .map_err(|message| CalibrateError::Io { path: shown.clone(), message })?;
    let set = calibrate::parse(&shown, &text)?;
    let mut world_path = path.parent().unwrap_or(Path::new("")).join(&set.world);
    if world_path.is_dir() {
        world_path = world_path.join("world.ron");
    }
    let world = load_world(&world_path).map_err(|cause| CalibrateError::World { path: shown.clone(), cause })?;
    calibrate::check_set(&shown, &world, &set)?;
    Ok((world, set))
}

/// One judge's figures on one labelled set.
pub struct JudgeScore {
    pub path: String,
    pub world: String,
    pub outcome: String,
    pub judge: String,
    /// The judge decides (with the gate) rather than giving a second opinion.
    pub decides: bool,
    /// Label (a) against the judged verdict (b), over the cases every seed answered.
    pub agreement: Agreement,
    /// Answers that were unreadable, quoted what was not there, or never came.
    pub errors: u64,
    pub cases: Vec<(CaseResult, bool)>,
}

/// A question for a judge: which set, case and seed, and what to send.
struct Ask {
    set: usize,
    case: usize,
    seed_index: usize,
    conversation: Vec<terrarium_core::conversation::Message>,
    material: String,
    /// Who asks, for the cache: the labelled set, case and seed.
    asker: String,
}

/// Score each judge on the labelled sets in `files`, asked exactly as a run asks it:
/// for an outcome decided by judges, the gate and the judge together (a case the gate
/// keeps shut is a "no"); otherwise the judge's second opinion alone. Unreadable or
/// failed answers are counted, and their cases left out of that judge's figures.
pub async fn score_judges(
    files: &[PathBuf],
    judges: &[String],
    judge_base_url: Option<String>,
    saw_reasoning: bool,
    send: SendOptions,
) -> Result<Vec<JudgeScore>, CalibrateError> {
    let mut sets: Vec<(String, World, LabelledSet)> = Vec::new();
    for file in files {
        let (world, set) = load_set(file)?;
        sets.push((file.display().to_string(), world, set));
    }
    // Every case, every seed: the verdict of the rule (the gate, for an outcome judges
    // decide) and, where a judge is to be asked, what it is sent.
    let mut gate: Vec<Vec<Vec<bool>>> = Vec::new();
    let mut asks = Vec::new();
    for (s, (path, world, set)) in sets.iter().enumerate() {
        let measured = calibrate::check_set(path, world, set)?;
        let mut per_case = Vec::new();
        for (c, case) in set.cases.iter().enumerate() {
            let mut per_seed = Vec::new();
            for (k, (seed, ep)) in calibrate::case_episodes(path, world, set, case)?.into_iter().enumerate() {
                let fired = measured.fired(&set.outcome, &ep);
                per_seed.push(fired);
                if !measured.has_judge() || (measured.decide() == Decide::Judges && !fired) {
                    continue;
                }
                let Some(q) = questions(&ep.moment()).into_iter().find(|q| q.outcome == set.outcome) else { continue };
                let material = material(&ep.moment(), saw_reasoning);
                asks.push(Ask {
                    set: s,
                    case: c,
                    seed_index: k,
                    conversation: conversation(&q, &material),
                    material,
                    asker: format!("calibrate {path}/{}/s{seed}/{}", case.id, set.outcome),
                });
            }
            per_case.push(per_seed);
        }
        gate.push(per_case);
    }
    let judge_error = |model: &str, message: String| CalibrateError::Judge { model: model.to_string(), message };
    let pool = Pool::new(JUDGE_CONNECTIONS, send.timeout_secs).map_err(|e| judge_error("judges", e.0))?;
    let mut scores = Vec::new();
    for model in judges {
        let mut entry = TargetEntry::bare(model);
        entry.base_url = judge_base_url.clone();
        let entry = entry.as_judge();
        let spec = match TargetSpec::resolve(&entry, &send, true).map_err(|e| judge_error(model, e))? {
            TargetSpec::Api(spec) => spec,
            TargetSpec::Scripted(_) => return Err(judge_error(model, "a judge must be a model".into())),
        };
        let targets: Vec<_> = sets.iter().map(|(_, w, _)| spec.target(w, pool.clone())).collect();
        // (set, case, seed index) → the judge's verdict, or None when it had none.
        let answers: BTreeMap<(usize, usize, usize), Option<bool>> = futures_util::stream::iter(asks.iter())
            .map(|a| {
                let target = &targets[a.set];
                async move {
                    let verdict = match target.complete(&a.conversation, &a.asker).await {
                        Ok(reply) => parse_answer(&reply.text, &a.material).ok().map(|ans| ans.verdict),
                        Err(_) => None,
                    };
                    ((a.set, a.case, a.seed_index), verdict)
                }
            })
            .buffer_unordered(JUDGE_CONNECTIONS)
            .collect()
            .await;
        for (s, (path, world, set)) in sets.iter().enumerate() {
            let measured = calibrate::check_set(path, world, set)?;
            if !measured.has_judge() {
                continue;
            }
            let decides = measured.decide() == Decide::Judges;
            let mut score = JudgeScore {
                path: path.clone(),
                world: world.id().to_string(),
                outcome: set.outcome.clone(),
                judge: targets[s].spec(),
                decides,
                agreement: Agreement::default(),
                errors: 0,
                cases: Vec::new(),
            };
            for (c, case) in set.cases.iter().enumerate() {
                let mut verdicts = Vec::new();
                let mut unanswered = false;
                for (k, fired) in gate[s][c].iter().enumerate() {
                    match answers.get(&(s, c, k)) {
                        Some(Some(v)) => verdicts.push(*v),
                        Some(None) => {
                            score.errors += 1;
                            unanswered = true;
                        }
                        // Not asked: a gate that stayed shut is a "no".
                        None => verdicts.push(if decides { false } else { *fired }),
                    }
                }
                if unanswered {
                    continue;
                }
                let result =
                    CaseResult { id: case.id.clone(), category: case.category.clone(), label: case.fires, verdicts };
                score.agreement.add(result.label, result.verdict());
                score.cases.push((result.clone(), result.agrees()));
            }
            scores.push(score);
        }
    }
    Ok(scores)
}
