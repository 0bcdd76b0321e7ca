//! `terrarium calibrate`: the rules' precision, recall and kappa on labelled sets and,
//! with `--judge`, each judge's, asked exactly as a run asks it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use futures_util::StreamExt as _;
use terrarium_core::World;
use terrarium_core::calibrate::{self, Calibration, CaseResult, LabelledSet, Share, show_share};
use terrarium_core::format::Decide;
use terrarium_core::judge::{conversation, material, parse_answer, questions};
use terrarium_core::stats::Agreement;
use terrarium_runtime::LoadError;
use terrarium_runtime::labelled::{CalibrateError, calibrate_file, find_labelled, load_set};
use terrarium_runtime::providers::http::Pool;

use terrarium_runtime::sweep::{SendOptions, TargetEntry as Entry, TargetSpec};

use crate::{Failure, Outcome};

/// Requests in flight at once while judges answer.
const JUDGE_CONNECTIONS: usize = 8;

pub(crate) fn calibrate(
    paths: &[PathBuf],
    json: bool,
    judges: &[String],
    judge_base_url: Option<String>,
    saw_reasoning: bool,
    no_cache: bool,
) -> Outcome {
    let mut files = Vec::new();
    for path in paths {
        files.extend(find_labelled(path).map_err(|e| Failure::Usage(anyhow!(e)))?);
    }
    let mut results = Vec::new();
    let mut broken = false;
    for file in &files {
        match calibrate_file(file) {
            Ok(c) => results.push(c),
            Err(CalibrateError::World { path, source: LoadError::Invalid { diagnostics, .. } }) => {
                broken = true;
                eprintln!("{path}: its world is invalid:");
                for d in diagnostics {
                    eprintln!("{d}");
                }
            }
            Err(e) => {
                broken = true;
                eprintln!("{e}");
            }
        }
    }
    let mut scores = Vec::new();
    if !judges.is_empty() && !broken {
        scores = score_judges(&files, judges, judge_base_url, saw_reasoning, no_cache)?;
    }
    if json {
        for c in &results {
            println!("{}", calibration_json(c));
        }
        for s in &scores {
            println!("{}", judge_json(s));
        }
    } else if !results.is_empty() {
        print!("{}", calibrate::table(&results));
        if !scores.is_empty() {
            println!();
            print!("{}", judge_table(&scores));
        }
        for c in &results {
            println!();
            print!("{}", calibrate::details(c));
        }
    }
    let missed: Vec<String> =
        results.iter().filter(|c| !c.meets_bar()).map(|c| format!("{} ({})", c.outcome, c.path)).collect();
    if !missed.is_empty() {
        eprintln!("below the bar: {}", missed.join(", "));
    }
    let errors: u64 = scores.iter().map(|s| s.errors).sum();
    if errors > 0 {
        eprintln!(
            "{errors} judge answers could not be read or requested; those cases are left out of the judges' figures"
        );
    }
    if broken || !missed.is_empty() { Err(Failure::Check) } else { Ok(()) }
}

/// One judge's figures on one labelled set.
struct JudgeScore {
    path: String,
    world: String,
    outcome: String,
    judge: String,
    /// The judge decides (with the gate) rather than giving a second opinion.
    decides: bool,
    /// Label (a) against the judged verdict (b), over the cases every seed answered.
    agreement: Agreement,
    /// Answers that were unreadable, quoted what was not there, or never came.
    errors: u64,
    cases: Vec<(CaseResult, bool)>,
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

fn score_judges(
    files: &[PathBuf],
    judges: &[String],
    judge_base_url: Option<String>,
    saw_reasoning: bool,
    no_cache: bool,
) -> Result<Vec<JudgeScore>, Failure> {
    let mut sets: Vec<(String, World, LabelledSet)> = Vec::new();
    for file in files {
        let (world, set) = load_set(file).map_err(|e| Failure::Usage(anyhow!(e)))?;
        sets.push((file.display().to_string(), world, set));
    }
    // Every case, every seed: the verdict of the rule (the gate, for an outcome judges
    // decide) and, where a judge is to be asked, what it is sent.
    let mut gate: Vec<Vec<Vec<bool>>> = Vec::new();
    let mut asks = Vec::new();
    for (s, (path, world, set)) in sets.iter().enumerate() {
        let outcome = &world.file.outcomes[&set.outcome];
        let mut per_case = Vec::new();
        for (c, case) in set.cases.iter().enumerate() {
            let mut per_seed = Vec::new();
            for (k, (seed, ep)) in calibrate::case_episodes(path, world, set, case)
                .map_err(|e| Failure::Usage(anyhow!(e)))?
                .into_iter()
                .enumerate()
            {
                let fired = ep.verdicts().outcomes.get(&set.outcome).is_some_and(|v| v.fired);
                per_seed.push(fired);
                if outcome.judge.is_none() || (outcome.decide == Decide::Judges && !fired) {
                    continue;
                }
                let Some(q) = questions(&ep).into_iter().find(|q| q.outcome == set.outcome) else { continue };
                let material = material(&ep, saw_reasoning);
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
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let pool = Pool::new(JUDGE_CONNECTIONS, 120).map_err(|e| Failure::Usage(anyhow!(e.0)))?;
    let send = SendOptions { cache: !no_cache, ..SendOptions::default() };
    let mut scores = Vec::new();
    for model in judges {
        let mut entry = Entry::bare(model);
        entry.base_url = judge_base_url.clone();
        entry.temperature = Some(0.0);
        let spec = match TargetSpec::resolve(&entry, &send, true).map_err(|e| anyhow!("judge {model}: {e}"))? {
            TargetSpec::Api(spec) => spec,
            TargetSpec::Scripted(_) => return Err(anyhow!("a judge must be a model, not {model}").into()),
        };
        let targets: Vec<_> = sets.iter().map(|(_, w, _)| spec.target(w, pool.clone())).collect();
        // (set, case, seed index) → the judge's verdict, or None when it had none.
        let answers: BTreeMap<(usize, usize, usize), Option<bool>> = runtime.block_on(async {
            futures_util::stream::iter(asks.iter())
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
                .await
        });
        for (s, (path, world, set)) in sets.iter().enumerate() {
            let outcome = &world.file.outcomes[&set.outcome];
            if outcome.judge.is_none() {
                continue;
            }
            let decides = outcome.decide == Decide::Judges;
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

fn judge_table(scores: &[JudgeScore]) -> String {
    let mut s = String::from(
        "| world | outcome | judge | role | cases answered | precision (95% CI) | recall (95% CI) | kappa | judge errors |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for j in scores {
        let kappa = j.agreement.kappa().map(|k| format!("{k:.2}")).unwrap_or_else(|| "–".into());
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {kappa} | {} |\n",
            j.world,
            j.outcome,
            j.judge,
            if j.decides { "decides (with the gate)" } else { "second opinion" },
            j.agreement.n(),
            show_share(&calibrate::precision(&j.agreement)),
            show_share(&calibrate::recall(&j.agreement)),
            j.errors,
        ));
    }
    s
}

fn share_json(s: Share) -> serde_json::Value {
    serde_json::json!({"value": s.value(), "hits": s.hits, "of": s.of, "ci95": s.interval().map(|(lo, hi)| [lo, hi])})
}

/// One labelled set's rule figures as a JSON object, for scripts.
fn calibration_json(c: &Calibration) -> serde_json::Value {
    serde_json::json!({
        "path": c.path,
        "world": c.world,
        "outcome": c.outcome,
        "decided_by": c.decided_by.as_str(),
        "seeds": c.seeds,
        "precision": share_json(c.precision()),
        "recall": share_json(c.recall()),
        "kappa": c.agreement().kappa(),
        "bar": {"precision": c.bar.precision, "recall": c.bar.recall},
        "meets_bar": c.meets_bar(),
        "cases": c.cases.iter().map(|k| serde_json::json!({
            "id": k.id, "category": k.category, "label": k.label, "verdicts": k.verdicts, "agrees": k.agrees(),
        })).collect::<Vec<_>>(),
    })
}

/// One judge's figures on one labelled set as a JSON object.
fn judge_json(j: &JudgeScore) -> serde_json::Value {
    serde_json::json!({
        "path": j.path,
        "world": j.world,
        "outcome": j.outcome,
        "judge": j.judge,
        "role": if j.decides { "decides" } else { "second_opinion" },
        "precision": share_json(calibrate::precision(&j.agreement)),
        "recall": share_json(calibrate::recall(&j.agreement)),
        "kappa": j.agreement.kappa(),
        "judge_errors": j.errors,
        "cases": j.cases.iter().map(|(k, agrees)| serde_json::json!({
            "id": k.id, "category": k.category, "label": k.label, "verdicts": k.verdicts, "agrees": agrees,
        })).collect::<Vec<_>>(),
    })
}
