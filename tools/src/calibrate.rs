//! `terrarium calibrate`: the rules' precision, recall and kappa on labelled sets and,
//! with `--judge`, each judge's, asked exactly as a run asks it.

use std::path::PathBuf;

use anyhow::{Context as _, anyhow};
use terrarium_core::calibrate::{self, Calibration, Share, show_share};
use terrarium_runtime::LoadError;
use terrarium_runtime::labelled::{CalibrateError, JudgeScore, calibrate_file, find_labelled, score_judges};

use terrarium_runtime::sweep::SendOptions;

use crate::common::{Failure, Outcome};

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
            Err(CalibrateError::World { path, cause: LoadError::Invalid { diagnostics, .. } }) => {
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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let send = SendOptions { cache: !no_cache, ..SendOptions::default() };
        scores = runtime
            .block_on(score_judges(&files, judges, judge_base_url, saw_reasoning, send))
            .map_err(|e| Failure::Usage(anyhow!(e)))?;
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
