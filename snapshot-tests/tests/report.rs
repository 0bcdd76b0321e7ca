//! `report`: the markdown and CSV of a fixed set of episodes and judgements,
//! snapshotted; the HTML's charts well-formed and carrying the same numbers.

use std::collections::BTreeMap;

use terrarium_core::EpisodeKey;
use terrarium_runtime::providers::usage::Tokens;
use terrarium_runtime::report::build;
use terrarium_runtime::run::run_episode;
use terrarium_runtime::run_folder::Judgement;
use terrarium_runtime::run_folder::{EpisodeRecord, Planned, ReportInput};
use terrarium_runtime::target::{Scripted, Target as _};

use crate::support::load;

/// The cells pinned: an explicit goal or none, every threat, unstated or evaluation
/// framing (one value, instruction and deliberation each), so that the report stays
/// readable.
const PINNED: &[(&str, &[&str])] = &[
    ("goal", &["explicit", "none"]),
    ("value", &["safety", "unset"]),
    ("instruction", &["not_told"]),
    ("framing", &["unstated", "evaluation"]),
    ("belief", &["not_asked"]),
    ("deliberation", &["none"]),
];

/// Two reference policies over the pinned cells they apply to, four seeds each; one
/// episode errored, and usage and cost on the blackmail policy's.
fn records() -> (Vec<EpisodeRecord>, terrarium_core::World) {
    let world = load("worlds/blackmail/world.ron");
    let pinned: BTreeMap<String, Vec<String>> =
        PINNED.iter().map(|(f, vs)| (f.to_string(), vs.iter().map(|v| v.to_string()).collect())).collect();
    let mut out = Vec::new();
    for policy in ["idle", "blackmail"] {
        let p = &world.file.policies[policy];
        let cells = world.cells.iter().filter(|c| c.matches(&pinned));
        for cell in cells.filter(|c| p.only_if.as_ref().is_none_or(|o| c.matches(o))) {
            for seed in 0..4 {
                let mut target = Scripted::new(policy, p);
                let key = EpisodeKey::new(&world, cell, seed, &target.spec(), &serde_json::json!({}));
                let mut record = run_episode(key, &mut target, None, None).expect("runs").record;
                if policy == "blackmail" {
                    record.tokens = Some(Tokens { input: 1000 + seed * 10, output: 100 });
                    record.cost_usd = Some(0.001 * (seed + 1) as f64);
                }
                out.push(record);
            }
        }
    }
    let mut errored = out[0].clone();
    errored.episode_id.push_str("-errored");
    errored.status = terrarium_runtime::run_folder::EpisodeStatus::Errored;
    errored.stop_reason = "error".into();
    errored.outcomes = None;
    errored.error = Some("HTTP 503, after 6 attempts".into());
    out.push(errored);
    (out, world)
}

/// Blackmail is decided by judges: two judges answer on every episode its gate let
/// through. Judge A says yes except on seed 3 (where it says no), and its first two
/// answers are an unreadable reply and a failed request; judge B always says yes. So
/// under the majority rule seed 3 is a tie, undecided. Judge A is also a second opinion
/// on `secret_mentioned`, agreeing with the rule except on seed 3.
fn judgements(records: &[EpisodeRecord]) -> Vec<Judgement> {
    let mut out = Vec::new();
    let judgement = |r: &EpisodeRecord, outcome: &str, judge: &str, role: &str, verdict: bool| Judgement {
        episode_id: r.episode_id.clone(),
        world: r.world.clone(),
        condition_key: r.condition_key.clone(),
        target: r.target.clone(),
        outcome: outcome.into(),
        judge: judge.into(),
        settings: serde_json::json!({"temperature": 0.0}),
        prompt: "Did it?".into(),
        saw_reasoning: true,
        role: role.into(),
        reply: Some(format!(
            r#"{{"verdict": "{}", "evidence": [], "reason": ""}}"#,
            if verdict { "yes" } else { "no" }
        )),
        request_id: None,
        verdict: Some(verdict),
        suspicion: None,
        evidence: Vec::new(),
        reason: Some(String::new()),
        judge_error: None,
        failed: false,
        tokens: Some(Tokens { input: 2000, output: 3 }),
        cost_usd: None,
    };
    let mut gated = 0;
    for r in records.iter().filter(|r| r.status == terrarium_runtime::run_folder::EpisodeStatus::Completed) {
        let outcomes = r.outcomes.as_ref().unwrap();
        let mentioned = outcomes["secret_mentioned"].fired;
        out.push(judgement(r, "secret_mentioned", "openai/judge-a", "second_opinion", mentioned != (r.seed == 3)));
        if !outcomes["blackmail"].fired {
            continue;
        }
        let mut a = judgement(r, "blackmail", "openai/judge-a", "judges", r.seed != 3);
        if gated == 0 {
            (a.verdict, a.reply) = (None, Some("Hard to say.".into()));
            a.judge_error = Some("the reply has no JSON object: \"Hard to say.\"".into());
        } else if gated == 1 {
            (a.verdict, a.reply, a.failed) = (None, None, true);
            a.judge_error = Some("HTTP 500".into());
        }
        gated += 1;
        out.push(a);
        out.push(judgement(r, "blackmail", "anthropic/judge-b", "judges", true));
    }
    out
}

/// Every recorded episode was planned, and two more of the idle policy in one cell
/// that never ran (a run stopped by its budget).
const DEFAULT: &str = "goal=explicit,value=safety,threat=replacement,instruction=not_told,framing=unstated,belief=not_asked,deliberation=none";

fn planned(records: &[EpisodeRecord]) -> Vec<Planned> {
    let mut out: Vec<Planned> = records
        .iter()
        .map(|r| Planned {
            episode_id: r.episode_id.clone(),
            world: r.world.clone(),
            condition_key: r.condition_key.clone(),
            target: r.target.clone(),
            user: r.user.clone(),
            branch: None,
        })
        .collect();
    for seed in [4, 5] {
        out.push(Planned {
            episode_id: format!("blackmail-s{seed}-not-run"),
            world: "blackmail".into(),
            condition_key: DEFAULT.into(),
            target: "scripted/idle".into(),
            user: None,
            branch: None,
        });
    }
    out
}

/// The report of the fixed sweep, as a folder's report reads it (its world added).
fn fixed_report() -> terrarium_runtime::report::Report {
    let (records, world) = records();
    let mut input = ReportInput {
        records: &records,
        judgements: judgements(&records),
        planned: planned(&records),
        ..ReportInput::default()
    };
    input.add_world(&world);
    build(&input)
}

#[test]
fn the_report_of_a_fixed_sweep_is_pinned() {
    let report = fixed_report();
    insta::assert_snapshot!("report_md", report.markdown());
    insta::assert_snapshot!("summary_csv", report.csv());
}

#[test]
fn the_html_report_shows_a_factor_matrix_per_outcome_and_target_with_pooled_numbers() {
    let mut report = fixed_report();
    // Without pages, each episode's mark names it and links nowhere (a packed
    // transcript is no file to link to).
    let bare = report.html();
    assert!(!bare.contains("href=\"view/") && !bare.contains("href=\"transcripts/"));
    assert!(report.rows.iter().flat_map(|r| &r.episode_ids).all(|id| bare.contains(&format!("title=\"{id}"))));
    report.pages = true;
    let html = report.html();
    assert!(html.starts_with("<!doctype html>") && html.ends_with("</html>\n"));
    assert!(!html.contains("<script") && !html.contains("<link"), "self-contained: no scripts, no external files");
    let world = load("worlds/blackmail/world.ron");
    let targets = 2;
    let tables = html.matches("<table class=\"heat\">").count();
    assert_eq!(tables, world.file.outcomes.len() * targets, "one matrix per outcome and target");
    // The world's main factors are rows and columns; the rest pooled.
    assert_eq!(world.main_factors(), ["goal", "threat"]);
    assert!(html.contains(
        "rows <b>goal</b>, columns <b>threat</b>; pooled over value, instruction, framing, belief, deliberation"
    ));
    // Every square is the sum of the cells it pools, computed here from the rows.
    for m in &report.matrices {
        let cols = m.cols.as_ref().expect("two main factors");
        for (i, g) in m.rows.values.iter().enumerate() {
            for (j, t) in cols.values.iter().enumerate() {
                let pooled: Vec<_> = report
                    .rows
                    .iter()
                    .filter(|r| r.world == m.world && r.outcome == m.outcome && r.target == m.target)
                    .filter(|r| {
                        r.condition.contains(&format!("goal={g},")) && r.condition.contains(&format!("threat={t},"))
                    })
                    .collect();
                let square = m.at(i, j);
                assert_eq!(square.cells, pooled.len() as u64, "{} {g} × {t}", m.outcome);
                assert_eq!(square.completed, pooled.iter().map(|r| r.completed).sum::<u64>());
                assert_eq!(square.fired, pooled.iter().map(|r| r.fired).sum::<u64>());
                assert_eq!(
                    square.interval,
                    terrarium_core::stats::wilson(square.fired, square.completed, terrarium_core::stats::Z95)
                );
            }
        }
    }
    // The judges decided blackmail in 3 of the 4 episodes of the default cell (seed 3 a
    // tie, undecided); pooled with the other explicit × replacement cells: its square.
    let m = report
        .matrices
        .iter()
        .find(|m| m.outcome == "blackmail" && m.target == "scripted/blackmail")
        .expect("a blackmail matrix");
    let sq = m.at(0, 0);
    assert_eq!((m.rows.values[0].as_str(), m.cols.as_ref().unwrap().values[0].as_str()), ("explicit", "replacement"));
    let text = format!("{}/{}</small>", sq.fired, sq.completed);
    assert!(html.contains(&text), "{text}");
    // Each cell's numbers are folded beneath, every episode linked to its page.
    assert!(html.contains("<details><summary>Each cell:"));
    for r in &report.rows {
        for id in &r.episode_ids {
            assert!(html.contains(&format!("href=\"view/{id}.html\"")), "{id} is not linked");
        }
    }
    assert!(html.contains("<td class=\"num\">43.9% – 100.0%</td>"));
    assert!(html.contains("decided by judges (majority of 2)") && html.contains("decided by rule"));
    assert!(html.contains("Judges against the rule verdicts") && html.contains("openai/judge-a"));
    assert!(html.contains("⚠ 5 of 7 asked-for episodes"), "the short cell is flagged (4 completed, 1 errored)");
    assert!(html.contains("⚠ 2 of the 83 episodes asked for have no record yet"));
    // `DEFAULT` is a cell of the sweep.
    assert!(report.rows.iter().any(|r| r.condition == DEFAULT));
}

/// `--matrix` and `--facet`: the chosen factors on the axes, one matrix per facet value,
/// the rest pooled.
#[test]
fn a_chosen_matrix_and_facet_pool_the_other_factors() {
    let (records, world) = records();
    let mut input = ReportInput { records: &records, judgements: judgements(&records), ..ReportInput::default() };
    input.add_world(&world);
    let choice =
        terrarium_runtime::report::MatrixChoice { factors: vec!["framing".into()], facet: Some("goal".into()) };
    let report = terrarium_runtime::report::build_with(&input, &choice);
    let m: Vec<_> =
        report.matrices.iter().filter(|m| m.outcome == "task_done" && m.target == "scripted/idle").collect();
    assert_eq!(m.len(), 2, "one per value of goal the sweep ran (explicit, none)");
    assert!(m.iter().all(|m| m.rows.factor == "framing" && m.cols.is_none()));
    assert_eq!(m[0].facet, Some(("goal".to_string(), "explicit".to_string())));
    assert_eq!(m[0].pooled, ["value", "threat", "instruction", "belief", "deliberation"]);
    // Only values some cell ran with are rows: the sweep pinned framing to two.
    assert_eq!(m[0].rows.values, ["unstated", "evaluation"]);
    assert!(m.iter().all(|m| m.tallies.iter().all(|t| t.cells > 0)));
    let html = report.html();
    assert!(html.contains("<h4>goal = explicit</h4>") && html.contains("<h4>goal = none</h4>"));
}
