//! `terrarium report`: per (world, cell, target, outcome), completed episodes, how many
//! fired, the rate with its Wilson 95% interval, and the difference from the world's
//! control cell with Newcombe's 95% interval. Errored episodes and every stop reason
//! are counted and shown; errored episodes are never in a denominator.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use terrarium_core::stats::{Z95, newcombe, wilson};

use crate::run::{EpisodeRecord, Tokens};

/// (world, condition key, target)
type Group = (String, String, String);

#[derive(Clone, Debug, Default)]
struct Counts {
    completed: u64,
    errored: u64,
    stops: BTreeMap<String, u64>,
    /// outcome → (kind, fired)
    outcomes: BTreeMap<String, (String, u64)>,
}

/// One line of `summary.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub world: String,
    pub condition: String,
    pub target: String,
    pub outcome: String,
    pub kind: String,
    pub completed: u64,
    pub fired: u64,
    pub errored: u64,
    pub interval: Option<(f64, f64)>,
    /// Difference from the control cell (same world and target), with its interval.
    pub vs_control: Option<(f64, f64, f64)>,
}

pub struct Report {
    groups: BTreeMap<Group, Counts>,
    pub rows: Vec<Row>,
    /// Target → (episodes whose replies reported usage, their tokens), errored ones included.
    pub tokens: BTreeMap<String, (u64, Tokens)>,
}

/// Build the report. `controls` maps a world id to its control cell's key.
pub fn build(records: &[EpisodeRecord], controls: &BTreeMap<String, String>) -> Report {
    let mut groups: BTreeMap<Group, Counts> = BTreeMap::new();
    let mut tokens: BTreeMap<String, (u64, Tokens)> = BTreeMap::new();
    for r in records {
        if let Some(t) = r.tokens {
            let entry = tokens.entry(r.target.clone()).or_default();
            entry.0 += 1;
            entry.1.add(t);
        }
        let g = groups.entry((r.world.clone(), r.condition_key.clone(), r.target.clone())).or_default();
        *g.stops.entry(r.stop_reason.clone()).or_default() += 1;
        if r.status != "completed" {
            g.errored += 1;
            continue;
        }
        g.completed += 1;
        for (name, v) in r.outcomes.as_ref().and_then(|o| o.as_object()).into_iter().flatten() {
            let kind = v["kind"].as_str().unwrap_or_default().to_string();
            let entry = g.outcomes.entry(name.clone()).or_insert((kind, 0));
            entry.1 += u64::from(v["fired"].as_bool().unwrap_or(false));
        }
    }
    let mut rows = Vec::new();
    for ((world, condition, target), c) in &groups {
        let control = controls.get(world).and_then(|key| groups.get(&(world.clone(), key.clone(), target.clone())));
        for (outcome, (kind, fired)) in &c.outcomes {
            let vs_control = control.filter(|_| controls.get(world) != Some(condition)).and_then(|ctl| {
                let ctl_fired = ctl.outcomes.get(outcome).map_or(0, |(_, f)| *f);
                newcombe(*fired, c.completed, ctl_fired, ctl.completed, Z95)
            });
            rows.push(Row {
                world: world.clone(),
                condition: condition.clone(),
                target: target.clone(),
                outcome: outcome.clone(),
                kind: kind.clone(),
                completed: c.completed,
                fired: *fired,
                errored: c.errored,
                interval: wilson(*fired, c.completed, Z95),
                vs_control,
            });
        }
    }
    Report { groups, rows, tokens }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

impl Report {
    /// `summary.csv`: one row per (world, cell, target, outcome).
    pub fn csv(&self) -> String {
        let mut s = String::from(
            "world,condition,target,outcome,kind,completed,fired,rate,ci_low,ci_high,errored,diff_vs_control,diff_low,diff_high\n",
        );
        let num = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
        for r in &self.rows {
            let rate = (r.completed > 0).then(|| r.fired as f64 / r.completed as f64);
            let _ = writeln!(
                s,
                "{},\"{}\",{},{},{},{},{},{},{},{},{},{},{},{}",
                r.world,
                r.condition,
                r.target,
                r.outcome,
                r.kind,
                r.completed,
                r.fired,
                num(rate),
                num(r.interval.map(|i| i.0)),
                num(r.interval.map(|i| i.1)),
                r.errored,
                num(r.vs_control.map(|d| d.0)),
                num(r.vs_control.map(|d| d.1)),
                num(r.vs_control.map(|d| d.2)),
            );
        }
        s
    }

    /// `report.md`: per world and target, rates with intervals per cell, then the
    /// differences from the control cell; errored episodes and stop reasons beside them.
    pub fn markdown(&self, controls: &BTreeMap<String, String>) -> String {
        let mut s = String::from(
            "# Terrarium report\n\nRates are completed episodes in which the outcome fired, with Wilson 95% intervals. Errored episodes are counted apart and never in a denominator. Differences from the control cell use Newcombe's 95% interval.\n",
        );
        let mut by_world_target: BTreeMap<(String, String), Vec<&Row>> = BTreeMap::new();
        for r in &self.rows {
            by_world_target.entry((r.world.clone(), r.target.clone())).or_default().push(r);
        }
        let max_n = self.groups.values().map(|c| c.completed + c.errored).max().unwrap_or(0);
        for ((world, target), rows) in &by_world_target {
            let control = controls.get(world).map_or("(unknown)", String::as_str);
            let _ = writeln!(s, "\n## {world} — {target}\n\nControl cell: `{control}`\n");
            s.push_str("| condition | outcome | kind | fired / completed | rate | 95% interval | vs control | errored | stops |\n|---|---|---|---|---|---|---|---|---|\n");
            for r in rows {
                let g = &self.groups[&(r.world.clone(), r.condition.clone(), r.target.clone())];
                let rate = if r.completed > 0 { pct(r.fired as f64 / r.completed as f64) } else { "—".into() };
                let interval = r.interval.map_or("—".into(), |(l, h)| format!("{} – {}", pct(l), pct(h)));
                let vs = r.vs_control.map_or("—".into(), |(d, l, h)| {
                    format!("{:+.1} pts ({:+.1} to {:+.1})", d * 100.0, l * 100.0, h * 100.0)
                });
                let stops: Vec<String> = g.stops.iter().map(|(k, v)| format!("{k} {v}")).collect();
                let short = if g.completed + g.errored < max_n { " ⚠ fewer samples" } else { "" };
                let _ = writeln!(
                    s,
                    "| `{}`{short} | {} | {} | {} / {} | {rate} | {interval} | {vs} | {} | {} |",
                    r.condition,
                    r.outcome,
                    r.kind,
                    r.fired,
                    r.completed,
                    r.errored,
                    stops.join(", ")
                );
            }
        }
        if !self.tokens.is_empty() {
            s.push_str("\n## Token usage\n\nAs the providers reported them, summed over every reply (errored episodes included: they were billed too).\n\n| target | episodes | input tokens | output tokens |\n|---|---|---|---|\n");
            for (target, (n, t)) in &self.tokens {
                let _ = writeln!(s, "| {target} | {n} | {} | {} |", t.input, t.output);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_read_from_each_provider_shape() {
        let chat =
            Tokens::from_usage(&serde_json::json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}));
        assert_eq!(chat, Tokens { input: 10, output: 5 });
        let anthropic = Tokens::from_usage(&serde_json::json!({
            "input_tokens": 4, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20, "output_tokens": 9
        }));
        assert_eq!(anthropic, Tokens { input: 124, output: 9 });
        assert_eq!(Tokens::from_usage(&serde_json::json!({"surprise": true})), Tokens::default());
    }

    fn record(cell: &str, status: &str, fired: bool, stop: &str) -> EpisodeRecord {
        let completed = status == "completed";
        EpisodeRecord {
            episode_id: String::new(),
            world: "w".into(),
            world_path: String::new(),
            dynamics_hash: String::new(),
            condition: serde_json::json!({}),
            condition_key: cell.into(),
            seed: 0,
            target: "t".into(),
            status: status.into(),
            stop_reason: stop.into(),
            outcomes: completed
                .then(|| serde_json::json!({"harm": {"kind": "harmful", "fired": fired, "evidence": []}})),
            error: (!completed).then(|| "HTTP 500".into()),
            transcript: String::new(),
            tokens: Some(Tokens { input: 100, output: 7 }),
            cost_usd: None,
        }
    }

    #[test]
    fn errored_episodes_are_counted_apart_and_cells_compare_with_the_control() {
        let records = vec![
            record("a", "completed", true, "end_task"),
            record("a", "completed", true, "end_task"),
            record("a", "completed", false, "refusal"),
            record("a", "errored", false, "error"),
            record("ctl", "completed", false, "end_task"),
            record("ctl", "completed", false, "end_task"),
            record("ctl", "completed", true, "end_task"),
        ];
        let controls = BTreeMap::from([("w".to_string(), "ctl".to_string())]);
        let report = build(&records, &controls);
        let a = report.rows.iter().find(|r| r.condition == "a").unwrap();
        assert_eq!((a.fired, a.completed, a.errored), (2, 3, 1), "the errored episode is not in the denominator");
        let (d, lo, hi) = a.vs_control.unwrap();
        assert!((d - 1.0 / 3.0).abs() < 1e-9 && lo < d && d < hi);
        let ctl = report.rows.iter().find(|r| r.condition == "ctl").unwrap();
        assert_eq!(ctl.vs_control, None, "the control is not compared with itself");
        let md = report.markdown(&controls);
        assert!(md.contains("refusal 1") && md.contains("error 1"), "every stop reason is shown");
        assert!(md.contains("| t | 7 | 700 | 49 |"), "tokens summed over every episode: {md}");
        assert!(report.csv().lines().nth(1).unwrap().starts_with("w,\"a\",t,harm,harmful,3,2,0.6667,"));
    }
}
