//! The factor matrix: an outcome's rate over two factors (rows and columns), the
//! world's other factors pooled or, with a facet, one matrix per value of a third. As
//! the study the worlds reproduce presented its results: a grid a reader scans, where a
//! chart with one bar per cell is a wall.

use std::collections::BTreeMap;

use terrarium_core::stats::{Z95, wilson};

use super::Row;
use crate::run_folder::ReportInput;

/// Which factors the matrices show, as the reader chose them (`report --matrix`,
/// `--facet`); empty: each world's main factors.
#[derive(Clone, Debug, Default)]
pub struct MatrixChoice {
    /// One or two factors: rows, then columns.
    pub factors: Vec<String>,
    /// A factor to draw one matrix per value of, instead of pooling it.
    pub facet: Option<String>,
}

/// One factor on an axis, its values in the world's order.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub factor: String,
    pub values: Vec<String>,
}

/// The episodes behind one square of a matrix.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Design cells pooled into it that were run.
    pub cells: u64,
    pub completed: u64,
    pub fired: u64,
    pub interval: Option<(f64, f64)>,
}

/// One outcome's rates for one target over one or two factors.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    pub world: String,
    pub outcome: String,
    pub target: String,
    pub rows: Axis,
    pub cols: Option<Axis>,
    /// (factor, value) this matrix is restricted to, under a facet.
    pub facet: Option<(String, String)>,
    /// The factors summed over.
    pub pooled: Vec<String>,
    /// Row-major: `rows.values.len()` × (`cols` values or 1).
    pub tallies: Vec<Tally>,
}

impl Matrix {
    /// The square at (row, column).
    pub fn at(&self, row: usize, col: usize) -> &Tally {
        let width = self.cols.as_ref().map_or(1, |c| c.values.len());
        &self.tallies[row * width + col]
    }
}

/// A world's factors, in order, with the values some cell of the report has, in order:
/// the world's own order where it was at hand, else as its cells' keys give them. A
/// value no cell was run with is no row or column of empty squares.
fn factors_of(world: &str, rows: &[&Row], input: &ReportInput) -> Vec<Axis> {
    if let Some(f) = input.factors.get(world) {
        let run = |factor: &str, value: &str| rows.iter().any(|r| pairs(&r.condition).any(|p| p == (factor, value)));
        return f
            .iter()
            .map(|(factor, values)| Axis {
                factor: factor.clone(),
                values: values.iter().filter(|v| run(factor, v)).cloned().collect(),
            })
            .collect();
    }
    let mut axes: Vec<Axis> = Vec::new();
    for r in rows {
        for (factor, value) in pairs(&r.condition) {
            match axes.iter_mut().find(|a| a.factor == factor) {
                Some(a) if !a.values.iter().any(|v| v == value) => a.values.push(value.to_string()),
                Some(_) => {}
                None => axes.push(Axis { factor: factor.to_string(), values: vec![value.to_string()] }),
            }
        }
    }
    axes
}

/// A cell key's `factor=value` pairs.
pub(super) fn pairs(key: &str) -> impl Iterator<Item = (&str, &str)> {
    key.split(',').filter_map(|p| p.split_once('='))
}

/// The factors to show for `world`: the reader's choice where the world has them all,
/// else its main factors (declared, or its first two). `None` for a world without
/// factors.
fn chosen<'a>(world: &str, axes: &'a [Axis], choice: &MatrixChoice, input: &ReportInput) -> Vec<&'a Axis> {
    let find = |name: &str| axes.iter().find(|a| a.factor == name);
    let picked: Option<Vec<&Axis>> =
        (!choice.factors.is_empty()).then(|| choice.factors.iter().map(|f| find(f)).collect()).flatten();
    if let Some(p) = picked {
        return p;
    }
    if let Some(main) = input.main_factors.get(world)
        && let Some(p) = main.iter().map(|f| find(f)).collect::<Option<Vec<_>>>()
    {
        return p;
    }
    axes.iter().take(2).collect()
}

/// Every matrix of the report: per world, outcome and target (and facet value).
pub fn matrices(rows: &[Row], input: &ReportInput, choice: &MatrixChoice) -> Vec<Matrix> {
    let mut by_world: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_world.entry(r.world.as_str()).or_default().push(r);
    }
    let mut out = Vec::new();
    for (world, rows) in by_world {
        let axes = factors_of(world, &rows, input);
        let shown = chosen(world, &axes, choice, input);
        let Some(row_axis) = shown.first() else { continue };
        let col_axis = shown.get(1).copied();
        let facet = choice
            .facet
            .as_deref()
            .and_then(|f| axes.iter().find(|a| a.factor == f))
            .filter(|f| !shown.iter().any(|s| s.factor == f.factor));
        let pooled: Vec<String> = axes
            .iter()
            .filter(|a| !shown.iter().any(|s| s.factor == a.factor) && facet.is_none_or(|f| f.factor != a.factor))
            .map(|a| a.factor.clone())
            .collect();
        let facets: Vec<Option<(String, String)>> = match facet {
            Some(f) => f.values.iter().map(|v| Some((f.factor.clone(), v.clone()))).collect(),
            None => vec![None],
        };
        let mut keys: Vec<(&str, &str)> = rows.iter().map(|r| (r.outcome.as_str(), r.target.as_str())).collect();
        keys.sort();
        keys.dedup();
        for (outcome, target) in keys {
            for facet in &facets {
                let width = col_axis.map_or(1, |c| c.values.len());
                let mut tallies = vec![Tally::default(); row_axis.values.len() * width];
                for r in rows.iter().filter(|r| r.outcome == outcome && r.target == target) {
                    let value = |factor: &str| pairs(&r.condition).find(|(f, _)| *f == factor).map(|(_, v)| v);
                    if let Some((f, v)) = facet
                        && value(f) != Some(v.as_str())
                    {
                        continue;
                    }
                    let place = |axis: &Axis| value(&axis.factor).and_then(|v| axis.values.iter().position(|x| x == v));
                    let Some(i) = place(row_axis) else { continue };
                    let j = match col_axis {
                        Some(c) => match place(c) {
                            Some(j) => j,
                            None => continue,
                        },
                        None => 0,
                    };
                    let t = &mut tallies[i * width + j];
                    t.cells += 1;
                    t.completed += r.completed;
                    t.fired += r.fired;
                }
                for t in &mut tallies {
                    t.interval = wilson(t.fired, t.completed, Z95);
                }
                out.push(Matrix {
                    world: world.to_string(),
                    outcome: outcome.to_string(),
                    target: target.to_string(),
                    rows: (*row_axis).clone(),
                    cols: col_axis.cloned(),
                    facet: facet.clone(),
                    pooled: pooled.clone(),
                    tallies,
                });
            }
        }
    }
    out
}

/// The factors `choice` names that no world of the report has: the reader mistyped.
pub fn unknown_factors(rows: &[Row], input: &ReportInput, choice: &MatrixChoice) -> Vec<String> {
    let known = known_factors(rows, input);
    choice.factors.iter().chain(&choice.facet).filter(|f| !known.contains(f)).cloned().collect()
}

/// Every factor of the report's worlds, once each, in order of first appearance.
pub fn known_factors(rows: &[Row], input: &ReportInput) -> Vec<String> {
    let mut worlds: Vec<&str> = rows.iter().map(|r| r.world.as_str()).collect();
    worlds.dedup();
    let mut out: Vec<String> = Vec::new();
    for w in worlds {
        let rows: Vec<&Row> = rows.iter().filter(|r| r.world == w).collect();
        for a in factors_of(w, &rows, input) {
            if !out.contains(&a.factor) {
                out.push(a.factor);
            }
        }
    }
    out
}
