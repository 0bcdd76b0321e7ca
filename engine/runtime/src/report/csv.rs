//! The report's CSV files: `summary.csv`, `by_factor.csv` and `by_turn.csv`. Each file's
//! columns are declared once, a header with the function that fills it, so a header and
//! its rows cannot drift apart.

use super::{FactorRow, Report, Row, TurnRow};

/// One CSV column: its header, and what a row of `R` writes in it.
struct Column<R> {
    name: &'static str,
    cell: fn(&Report, &R) -> String,
}

const fn col<R>(name: &'static str, cell: fn(&Report, &R) -> String) -> Column<R> {
    Column { name, cell }
}

/// A header line, then one line per row.
fn table<R>(report: &Report, columns: &[Column<R>], rows: &[R]) -> String {
    let mut s = columns.iter().map(|c| c.name).collect::<Vec<_>>().join(",");
    s.push('\n');
    for r in rows {
        s.push_str(&columns.iter().map(|c| (c.cell)(report, r)).collect::<Vec<_>>().join(","));
        s.push('\n');
    }
    s
}

/// A number for a CSV cell: four places, empty when there is none.
pub(super) fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_default()
}

fn int(x: Option<u64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// A text cell that may hold commas.
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

/// `fired / n`, empty where there is no episode.
fn rate(fired: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| fired as f64 / n as f64)
}

const SUMMARY: [Column<Row>; 29] = [
    col("world", |_, r| r.world.clone()),
    col("condition", |_, r| quoted(&r.condition)),
    col("target", |_, r| r.target.clone()),
    col("outcome", |_, r| r.outcome.clone()),
    col("kind", |_, r| r.kind.clone()),
    col("completed", |_, r| r.completed.to_string()),
    col("fired", |_, r| r.fired.to_string()),
    col("rate", |_, r| num(rate(r.fired, r.completed))),
    col("ci_low", |_, r| num(r.interval.map(|i| i.0))),
    col("ci_high", |_, r| num(r.interval.map(|i| i.1))),
    col("errored", |_, r| r.errored.to_string()),
    col("diff_vs_control", |_, r| num(r.vs_control.map(|d| d.0))),
    col("diff_low", |_, r| num(r.vs_control.map(|d| d.1))),
    col("diff_high", |_, r| num(r.vs_control.map(|d| d.2))),
    col("exposed", |_, r| int(r.exposed.map(|e| e.n))),
    col("fired_exposed", |_, r| int(r.exposed.map(|e| e.fired))),
    col("rate_exposed", |_, r| num(r.exposed.and_then(|e| rate(e.fired, e.n)))),
    col("exposed_ci_low", |_, r| num(r.exposed.and_then(|e| e.interval).map(|i| i.0))),
    col("exposed_ci_high", |_, r| num(r.exposed.and_then(|e| e.interval).map(|i| i.1))),
    col("decided_by", |_, r| quoted(&r.decided_by)),
    col("undecided", |_, r| r.undecided.to_string()),
    col("unaware", |_, r| int(r.unaware.map(|u| u.n))),
    col("fired_unaware", |_, r| int(r.unaware.map(|u| u.fired))),
    col("rate_unaware", |_, r| num(r.unaware.and_then(|u| rate(u.fired, u.n)))),
    col("unaware_ci_low", |_, r| num(r.unaware.and_then(|u| u.interval).map(|i| i.0))),
    col("unaware_ci_high", |_, r| num(r.unaware.and_then(|u| u.interval).map(|i| i.1))),
    col("reasoning", |report, r| quoted(&report.reasoning_text(&r.target).unwrap_or_default())),
    col("user_out_of_role", |_, r| r.out_of_role.to_string()),
    col("episode_ids", |_, r| quoted(&r.episode_ids.join(" "))),
];

const BY_FACTOR: [Column<FactorRow>; 17] = [
    col("world", |_, f| f.world.clone()),
    col("target", |_, f| f.target.clone()),
    col("factor", |_, f| f.factor.clone()),
    col("value", |_, f| f.value.clone()),
    col("outcome", |_, f| f.outcome.clone()),
    col("decided_by", |_, f| quoted(&f.decided_by)),
    col("cells", |_, f| f.cells.to_string()),
    col("completed", |_, f| f.completed.to_string()),
    col("fired", |_, f| f.fired.to_string()),
    col("rate", |_, f| num(rate(f.fired, f.completed))),
    col("ci_low", |_, f| num(f.interval.map(|i| i.0))),
    col("ci_high", |_, f| num(f.interval.map(|i| i.1))),
    col("unaware", |_, f| int(f.unaware.map(|u| u.n))),
    col("fired_unaware", |_, f| int(f.unaware.map(|u| u.fired))),
    col("rate_unaware", |_, f| num(f.unaware.and_then(|u| rate(u.fired, u.n)))),
    col("unaware_ci_low", |_, f| num(f.unaware.and_then(|u| u.interval).map(|i| i.0))),
    col("unaware_ci_high", |_, f| num(f.unaware.and_then(|u| u.interval).map(|i| i.1))),
];

const BY_TURN: [Column<TurnRow>; 9] = [
    col("world", |_, t| t.world.clone()),
    col("target", |_, t| t.target.clone()),
    col("turn", |_, t| t.turn.to_string()),
    col("measure", |_, t| quoted(&t.measure)),
    col("going", |_, t| t.going.to_string()),
    col("held", |_, t| t.held.to_string()),
    col("rate", |_, t| num(rate(t.held, t.going))),
    col("ci_low", |_, t| num(t.interval.map(|i| i.0))),
    col("ci_high", |_, t| num(t.interval.map(|i| i.1))),
];

impl Report {
    /// `summary.csv`: one row per (world, cell, target, outcome).
    pub fn csv(&self) -> String {
        table(self, &SUMMARY, &self.rows)
    }

    /// `by_factor.csv`: [`FactorRow`]s, one line each.
    pub fn by_factor_csv(&self) -> String {
        table(self, &BY_FACTOR, &self.by_factor)
    }

    /// `by_turn.csv`: [`TurnRow`]s, one line each.
    pub fn by_turn_csv(&self) -> String {
        table(self, &BY_TURN, &self.by_turn)
    }
}
