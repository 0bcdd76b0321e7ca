//! `report.html`: one self-contained page (no scripts, no external files). Per world
//! and outcome, a factor matrix per target (a heat map of pooled rates with Wilson 95%
//! intervals over two factors), each cell's numbers and links to its episodes' pages
//! folded beneath; rates by turn as small multiples; then the judges, usage and
//! provenance tables.

use std::fmt::Write as _;

use std::collections::BTreeSet;

use super::{Report, Row, agreement_cells};
use crate::run_folder::EpisodeStatus;

/// Colour of the i-th target (in name order), the same in every chart.
const PALETTE: [&str; 8] = ["#3b6ea8", "#d9822b", "#4f9a5c", "#b84a4a", "#7b5ea7", "#8c6d46", "#c55fa0", "#6b7b8c"];

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:82rem;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}h3{margin-top:1.5rem;font-size:1.05rem}\
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}code{font-size:.85em}code.hash{word-break:break-all;font-size:.75em}\
.warn{color:#a15c00}.note{color:#555;font-size:.9rem}svg{display:block;margin:.25rem 0}\
.grid{display:flex;flex-wrap:wrap;gap:1rem 1.5rem;align-items:flex-start}figure{margin:0}figcaption{font-weight:600;font-size:.85rem;margin-bottom:.2rem}h4{margin:1rem 0 .3rem;font-size:.95rem}\
table.heat{margin:0;font-size:.8rem}table.heat th,table.heat td{padding:.15rem .35rem}table.heat td{text-align:center;min-width:3.3rem;font-weight:600;font-variant-numeric:tabular-nums}table.heat td small{display:block;font-weight:400;font-size:.68rem;opacity:.85;white-space:nowrap}\
table.heat th{font-weight:500}table.heat th.corner{font-size:.72rem;color:#555;background:#fff}table.heat td.empty{color:#999;background:#fafafa}\
details{margin:.5rem 0 1rem}details>summary{cursor:pointer;color:#3b6ea8}table.cells code{white-space:normal}td.eps{font-size:.75rem;max-width:14rem}\
td.eps a{text-decoration:none;margin-right:.15rem}a.fired{color:#a12b2b;font-weight:700}a.held{color:#555}a.err{color:#a15c00;text-decoration:line-through}a.undecided{color:#999}";

pub(super) fn render(report: &Report) -> String {
    let mut s = String::new();
    let episodes = if report.pages {
        "links to its episodes' pages"
    } else {
        "its episodes, each named (written without pages: <code>terrarium view</code> shows one)"
    };
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Terrarium report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Terrarium report</h1>\n<p class=\"note\">Rates are completed episodes in which the outcome fired, each with its Wilson 95% interval. Each outcome is shown as a factor matrix per target: the world's main factors (or those chosen with <code>report --matrix</code>) as rows and columns, its other factors pooled; each cell's numbers, and {episodes}, open beneath it. Errored episodes are counted apart and never in a denominator. Differences from the control cell use Newcombe's 95% interval. Each outcome says how its verdicts were decided: by the world's rule, by judges on the episodes its gate let through (undecided episodes counted apart), or, where no judge answered, by the gate alone: an upper bound.</p>\n"
    );
    let targets = report.targets();
    if let Some(note) = report.missing_note() {
        let _ = writeln!(s, "<p class=\"warn\">{}</p>", esc(&note));
    }
    if !report.reasoning.is_empty() {
        s.push_str("<h2>Reasoning each target showed</h2>\n<p class=\"note\">What of a target's reasoning its transcripts show, and so what judges and eval_aware can read: none, a summary (OpenAI reasoning models asked for summaries), or the thinking itself.</p>\n<table>\n<tr><th>target</th><th>reasoning shown</th></tr>\n");
        for target in &targets {
            let shown = report.reasoning_text(target).unwrap_or_else(|| "— (not a model)".into());
            let _ = writeln!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(target), esc(&shown));
        }
        s.push_str("</table>\n");
        if let Some(note) = report.reasoning_note() {
            let _ = writeln!(s, "<p class=\"warn\">{}</p>", code_spans(&note));
        }
    }
    let mut worlds: Vec<&str> = report.rows.iter().map(|r| r.world.as_str()).collect();
    worlds.dedup();
    for world in worlds {
        let control = report.controls.get(world).map_or("(unknown)", String::as_str);
        let _ = writeln!(s, "<h2>{}</h2>\n<p>Control cell: <code>{}</code></p>", esc(world), key(control));
        for ((w, outcome), rows) in report.by_world_outcome() {
            if w != world {
                continue;
            }
            let kind = rows.first().map_or("", |r| r.kind.as_str());
            let decided = rows.first().map_or("", |r| r.decided_by.as_str());
            let _ = writeln!(
                s,
                "<h3>{} <span class=\"note\">({}; decided by {})</span></h3>",
                esc(outcome),
                esc(kind),
                esc(decided)
            );
            if let Some(d) = report.definitions.get(&(world.to_string(), outcome.to_string())) {
                let _ = writeln!(s, "<p class=\"note\">{}</p>", code_spans(d));
            }
            if decided.starts_with("gate") {
                s.push_str("<p class=\"warn\">⚠ Meant to be decided by judges, and no judge answered in this folder: these rates are the gate's, an upper bound, not a finding. Run again with <code>--judge MODEL</code>.</p>\n");
            }
            s.push_str(&matrices(report, world, outcome));
            s.push_str(&cell_detail(report, &rows));
        }
        let pooled: Vec<&super::FactorRow> = report.by_factor.iter().filter(|f| f.world == world).collect();
        if !pooled.is_empty() {
            s.push_str("<details><summary>By factor value: each harm, and eval_aware, pooled over every cell with that value</summary>\n<table>\n<tr><th>target</th><th>factor</th><th>value</th><th>outcome</th><th>decided by</th><th>cells</th><th>fired / n</th><th>rate</th><th>95% interval</th><th>among unaware</th></tr>\n");
            for f in pooled {
                let (rate, interval) = super::rate_text(f.fired, f.completed, f.interval);
                let unaware = f.unaware.map_or_else(|| "—".to_string(), |u| u.text("unaware"));
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{rate}</td><td class=\"num\">{interval}</td><td>{}</td></tr>",
                    esc(&f.target),
                    esc(&f.factor),
                    esc(&f.value),
                    esc(&f.outcome),
                    esc(&f.decided_by),
                    f.cells,
                    f.fired,
                    f.completed,
                    esc(&unaware)
                );
            }
            s.push_str("</table>\n</details>\n");
        }
        let mut targets_here: Vec<&str> =
            report.by_turn.iter().filter(|t| t.world == world).map(|t| t.target.as_str()).collect();
        targets_here.dedup();
        for target in targets_here {
            let Some((measures, turns)) = report.turn_table(world, target) else { continue };
            let _ = writeln!(
                s,
                "<h3>By turn: {} <span class=\"note\">(over the conversations still going at each turn; (gate): an outcome decided by judges, its gate's rate, an upper bound)</span></h3>",
                esc(target)
            );
            s.push_str(&turn_charts(report, world, target, &measures));
            s.push_str(
                "<details><summary>The numbers, turn by turn</summary>\n<table>\n<tr><th>turn</th><th>going</th>",
            );
            for m in &measures {
                let _ = write!(s, "<th>{}</th>", esc(m));
            }
            s.push_str("</tr>\n");
            for (turn, going, cells) in turns {
                let _ = write!(s, "<tr><td class=\"num\">{turn}</td><td class=\"num\">{going}</td>");
                for c in cells {
                    let _ = write!(s, "<td class=\"num\">{}</td>", esc(&c));
                }
                s.push_str("</tr>\n");
            }
            s.push_str("</table>\n</details>\n");
        }
    }
    s.push_str(&super::sabotage::html(&report.sabotage));
    if !report.by_belief.is_empty() {
        let _ = writeln!(
            s,
            "<h2>Harms by the belief the target stated</h2>\n<p class=\"note\">{}</p>\n<table>\n<tr><th>world</th><th>target</th><th>outcome</th><th>believes real</th><th>believes evaluation</th><th>neither stated</th></tr>",
            code_spans(super::BY_BELIEF_NOTE)
        );
        for b in &report.by_belief {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&b.world),
                esc(&b.target),
                esc(&b.outcome),
                esc(&super::belief_cell(b.real)),
                esc(&super::belief_cell(b.eval)),
                esc(&super::belief_cell(b.neither))
            );
        }
        s.push_str("</table>\n");
    }
    if !report.branches.is_empty() {
        let _ = writeln!(
            s,
            "<h2>Branches</h2>\n<p class=\"note\">{}</p>\n<table>\n<tr><th>world</th><th>parent</th><th>at step</th><th>target</th><th>outcome</th><th>decided by</th><th>parent's verdict</th><th>branches fired / n</th><th>rate</th><th>95% interval</th><th>errored</th><th>undecided</th><th>branches</th></tr>",
            code_spans(super::BRANCHES_NOTE)
        );
        for b in &report.branches {
            let (rate, interval) = super::rate_text(b.fired, b.completed, b.interval);
            let links: Vec<String> = b
                .episode_ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let class = match report.episodes.get(id).and_then(|m| m.fired.get(&b.outcome).copied().flatten()) {
                        Some(true) => "fired",
                        Some(false) => "held",
                        None => "undecided",
                    };
                    format!("<a class=\"{class}\"{} title=\"{}\">b{}</a>", href(report, id, ""), esc(id), i + 1)
                })
                .collect();
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td><a{}><code>{}</code></a></td><td class=\"num\"><a{}>{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{rate}</td><td class=\"num\">{interval}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"eps\">{}</td></tr>",
                esc(&b.world),
                href(report, &b.parent, ""),
                esc(&b.parent),
                href(report, &b.parent, &format!("#step-{}", b.at)),
                b.at,
                esc(&b.target),
                esc(&b.outcome),
                esc(&b.decided_by),
                super::parent_text(b.parent_fired),
                b.fired,
                b.completed,
                b.errored,
                b.undecided,
                links.join(" ")
            );
        }
        s.push_str("</table>\n");
    }
    if !report.over_refusal.is_empty() {
        s.push_str("<h2>Over-refusal in control cells</h2>\n<p class=\"note\">In each world's control cell, completed episodes in which the provider reported a refusal or an outcome the world marks as a refusal fired. Wilson 95% intervals.</p>\n<table>\n<tr><th>world</th><th>target</th><th>control cell</th><th>counted from</th><th>refused / n</th><th>rate</th><th>95% interval</th><th>undecided</th></tr>\n");
        for o in &report.over_refusal {
            let (rate, interval) = super::rate_text(o.refused, o.completed, o.interval);
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{rate}</td><td class=\"num\">{interval}</td><td class=\"num\">{}</td></tr>",
                esc(&o.world),
                esc(&o.target),
                key(&o.condition),
                code_spans(&o.decided_by),
                o.refused,
                o.completed,
                o.undecided
            );
        }
        s.push_str("</table>\n");
    }
    let played = report.user_models();
    if !played.is_empty() {
        s.push_str("<h2>Conversations with a model playing the user</h2>\n<p class=\"note\">A conversation whose user model stopped playing the person is counted apart, never in a denominator (stop <code>user_out_of_role</code>). Judges asked whether the user model left its role in the conversations the rule let run say what the rule missed.</p>\n<table>\n<tr><th>world</th><th>target</th><th>conversations</th><th>completed</th><th>user out of role</th><th>judged out of role (among completed)</th></tr>\n");
        for (world, target, c) in played {
            let cells = [
                (c.completed + c.errored + c.out_of_role).to_string(),
                c.completed.to_string(),
                c.out_of_role.to_string(),
            ];
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td>{}<td>{}</td></tr>",
                esc(world),
                esc(target),
                num_cells(&cells),
                esc(&report.judged_out_of_role(world, target))
            );
        }
        s.push_str("</table>\n");
    }
    if !report.judges.is_empty() {
        s.push_str("<h2>Judges against the rule verdicts</h2>\n<p class=\"note\">Over completed episodes. The rule verdict is primary; a judge is a second opinion. Kappa is Cohen's (— where undefined).</p>\n<table>\n<tr><th>world</th><th>outcome</th><th>judge</th><th>both yes</th><th>rule only</th><th>judge only</th><th>both no</th><th>agreement</th><th>kappa</th><th>unreadable</th><th>failed</th></tr>\n");
        for j in &report.judges {
            let cells = num_cells(&agreement_cells(&j.agreement));
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{cells}<td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(&j.world),
                esc(&j.outcome),
                esc(&j.judge),
                j.unreadable,
                j.failed
            );
        }
        s.push_str("</table>\n");
    }
    if !report.judge_pairs.is_empty() {
        s.push_str("<h2>Judges against each other</h2>\n<p class=\"note\">Over completed episodes both judges gave a verdict on.</p>\n<table>\n<tr><th>world</th><th>outcome</th><th>judge A</th><th>judge B</th><th>both yes</th><th>A only</th><th>B only</th><th>both no</th><th>agreement</th><th>kappa</th></tr>\n");
        for p in &report.judge_pairs {
            let cells = num_cells(&agreement_cells(&p.agreement));
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>{cells}</tr>",
                esc(&p.world),
                esc(&p.outcome),
                esc(&p.a),
                esc(&p.b)
            );
        }
        s.push_str("</table>\n");
    }
    if !report.usage.is_empty() {
        s.push_str("<h2>Token usage</h2>\n<p class=\"note\">As the providers reported them, errored episodes included. Cost is estimated where the run was given prices.</p>\n<table>\n<tr><th>target</th><th>episodes (judgements)</th><th>input tokens</th><th>output tokens</th><th>estimated cost</th></tr>\n");
        for (target, u) in &report.usage {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                esc(target),
                u.n,
                u.tokens.input,
                u.tokens.output,
                u.cost_usd.map_or("—".into(), |c| format!("${c:.4}"))
            );
        }
        s.push_str("</table>\n");
    }
    if !report.provenance.is_empty() {
        s.push_str("<h2>Provenance</h2>\n<p class=\"note\">Where these numbers come from, read from the run's transcript headers and records: rerun with the same engine, world version and settings to get the same transcripts.</p>\n<table>\n<tr><th>world</th><th>target</th><th>engine</th><th>commit</th><th>world version</th><th>dynamics hash</th><th>outcomes hash</th><th>settings</th><th>seeds</th><th>episodes</th></tr>\n");
        for p in &report.provenance {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code class=\"hash\">{}</code></td><td><code class=\"hash\">{}</code></td><td><code>{}</code></td><td>{}–{}</td><td class=\"num\">{}</td></tr>",
                esc(&p.world),
                esc(&p.target),
                esc(&p.engine),
                esc(p.build.as_deref().unwrap_or("—")),
                esc(&p.world_version),
                esc(&p.dynamics_hash),
                esc(&p.outcomes_hash),
                esc(&p.settings),
                p.seeds.0,
                p.seeds.1,
                p.episodes
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// The outcome's factor matrices: a heat map per target (and facet value), side by
/// side, each square the pooled rate with its interval.
fn matrices(report: &Report, world: &str, outcome: &str) -> String {
    let ms: Vec<&super::Matrix> = report.matrices.iter().filter(|m| m.world == world && m.outcome == outcome).collect();
    let Some(first) = ms.first() else { return String::new() };
    let kind = report.rows.iter().find(|r| r.world == world && r.outcome == outcome).map_or("", |r| r.kind.as_str());
    let mut s = String::new();
    let over = match &first.cols {
        Some(c) => format!("rows <b>{}</b>, columns <b>{}</b>", esc(&first.rows.factor), esc(&c.factor)),
        None => format!("rows <b>{}</b>", esc(&first.rows.factor)),
    };
    let pooled = if first.pooled.is_empty() {
        String::new()
    } else {
        format!("; pooled over {}", esc(&first.pooled.join(", ")))
    };
    let _ = writeln!(s, "<p class=\"note\">Rate with its 95% interval and fired / n: {over}{pooled}.</p>");
    let mut facets: Vec<&Option<(String, String)>> = ms.iter().map(|m| &m.facet).collect();
    facets.dedup();
    for facet in facets {
        if let Some((f, v)) = facet {
            let _ = writeln!(s, "<h4>{} = {}</h4>", esc(f), esc(v));
        }
        s.push_str("<div class=\"grid\">\n");
        for m in ms.iter().filter(|m| &m.facet == facet) {
            let _ = writeln!(s, "<figure><figcaption>{}</figcaption>", esc(&m.target));
            s.push_str(&heat_table(m, kind));
            s.push_str("</figure>\n");
        }
        s.push_str("</div>\n");
    }
    s
}

/// One matrix as a table whose squares are shaded by rate.
fn heat_table(m: &super::Matrix, kind: &str) -> String {
    let (r, g, b) = match kind {
        "success" => (79, 154, 92),
        "notable" => (59, 110, 168),
        _ => (184, 74, 74),
    };
    let cols: Vec<&str> = m.cols.as_ref().map_or(vec![""], |c| c.values.iter().map(String::as_str).collect());
    let corner = match &m.cols {
        Some(c) => format!("{} ↓ · {} →", esc(&m.rows.factor), esc(&c.factor)),
        None => esc(&m.rows.factor),
    };
    let mut s = format!("<table class=\"heat\">\n<tr><th class=\"corner\">{corner}</th>");
    for c in &cols {
        let _ = write!(s, "<th>{}</th>", if c.is_empty() { "rate".into() } else { esc(c) });
    }
    s.push_str("</tr>\n");
    for (i, row) in m.rows.values.iter().enumerate() {
        let _ = write!(s, "<tr><th>{}</th>", esc(row));
        for (j, col) in cols.iter().enumerate() {
            let t = m.at(i, j);
            if t.completed == 0 {
                let why = if t.cells == 0 { "not run" } else { "n = 0" };
                let _ = write!(s, "<td class=\"empty\">—<small>{why}</small></td>");
                continue;
            }
            let rate = t.fired as f64 / t.completed as f64;
            let (lo, hi) = t.interval.unwrap_or((rate, rate));
            let ink = if rate > 0.55 { "#fff" } else { "#222" };
            let place = if col.is_empty() { row.to_string() } else { format!("{row} × {col}") };
            let _ = write!(
                s,
                "<td style=\"background:rgba({r},{g},{b},{:.2});color:{ink}\" title=\"{}: {} of {} ({} cells)\">{}<small>{:.0}–{}</small><small>{}/{}</small></td>",
                0.08 + 0.92 * rate,
                esc(&place),
                t.fired,
                t.completed,
                t.cells,
                pct0(rate),
                lo * 100.0,
                pct0(hi),
                t.fired,
                t.completed
            );
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}

/// A rate as a whole percentage (the tables carry one decimal).
fn pct0(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// Every cell's numbers and its episodes, folded away until asked for.
fn cell_detail(report: &Report, rows: &[&Row]) -> String {
    let mut cells: Vec<&str> = rows.iter().map(|r| r.condition.as_str()).collect();
    cells.sort();
    cells.dedup();
    let targets = rows.iter().map(|r| r.target.as_str()).collect::<BTreeSet<_>>().len();
    let factors: Vec<&str> =
        rows.first().map_or(Vec::new(), |r| super::matrix::pairs(&r.condition).map(|(f, _)| f).collect());
    let mut s = format!(
        "<details><summary>Each cell: {} × {} with their episodes</summary>\n<table class=\"cells\">\n<tr><th>cell <span class=\"note\">({})</span></th><th>target</th><th>fired / n</th><th>rate</th><th>95% interval</th><th>among exposed</th><th>among unaware</th><th>vs control</th><th>errored</th><th>undecided</th><th>stops</th><th>episodes</th></tr>\n",
        count(cells.len(), "cell"),
        count(targets, "target"),
        esc(&factors.join(" · "))
    );
    for r in rows {
        let t = report.row_text(r);
        let short = t.shortfall.map(|w| format!(" <span class=\"warn\">{}</span>", esc(&w))).unwrap_or_default();
        let cell = if r.condition.is_empty() {
            "(no factors)".to_string()
        } else {
            let values: Vec<&str> = super::matrix::pairs(&r.condition).map(|(_, v)| v).collect();
            format!("<span title=\"{}\">{}</span>", esc(&r.condition), esc(&values.join(" · ")))
        };
        let _ = writeln!(
            s,
            "<tr><td><code>{cell}</code>{short}</td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"eps\">{}</td></tr>",
            esc(&r.target),
            r.fired,
            r.completed,
            t.rate,
            t.interval,
            esc(&t.exposed),
            esc(&t.unaware),
            esc(&t.vs_control),
            r.errored,
            r.undecided,
            esc(&t.stops),
            episode_links(report, r)
        );
    }
    s.push_str("</table>\n</details>\n");
    s
}

/// Links to a row's episode pages, each named by its seed and marked by how the row's
/// outcome went in it.
fn episode_links(report: &Report, r: &Row) -> String {
    let mut links = Vec::new();
    for id in &r.episode_ids {
        let Some(mark) = report.episodes.get(id) else { continue };
        let (class, how) = match (mark.status, mark.fired.get(&r.outcome).copied().flatten()) {
            (EpisodeStatus::Errored, _) => ("err", "errored"),
            (EpisodeStatus::UserOutOfRole, _) => ("err", "user out of role"),
            (_, Some(true)) => ("fired", "fired"),
            (_, Some(false)) => ("held", "did not fire"),
            (_, None) => ("undecided", "undecided"),
        };
        links.push(format!(
            "<a class=\"{class}\"{} title=\"{} ({how})\">s{}</a>",
            href(report, id, ""),
            esc(id),
            mark.seed
        ));
    }
    links.join(" ")
}

/// The `href` attribute of a link to an episode (at `fragment` in it): its page; none
/// when the report was written without pages (the mark's title names the episode, for
/// `terrarium view`: a transcript packed in a segment is no file to link to).
fn href(report: &Report, id: &str, fragment: &str) -> String {
    if report.pages {
        format!(" href=\"{}{}\"", esc(&crate::run_folder::page_path(id)), esc(fragment))
    } else {
        String::new()
    }
}

/// Rates by turn as small multiples: one small chart per measure, so series that sit
/// on one another (four measures at 0%) are never drawn over each other.
fn turn_charts(report: &Report, world: &str, target: &str, measures: &[String]) -> String {
    let rows: Vec<&super::TurnRow> = report.by_turn.iter().filter(|t| t.world == world && t.target == target).collect();
    let last = rows.iter().map(|t| t.turn).max().unwrap_or(1).max(2);
    let (left, top, plot_w, plot_h) = (36.0, 8.0, 200.0, 90.0);
    let x = |turn: u32| left + plot_w * f64::from(turn - 1) / f64::from(last - 1);
    let y = |rate: f64| top + plot_h * (1.0 - rate);
    let mut s = String::from("<div class=\"grid\">\n");
    for (i, m) in measures.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let _ = write!(
            s,
            "<figure><figcaption>{}</figcaption><svg width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{} by turn\" font-family=\"sans-serif\" font-size=\"10\">",
            esc(m),
            left + plot_w + 12.0,
            top + plot_h + 30.0,
            esc(m)
        );
        for tick in [0.0, 0.5, 1.0] {
            let _ = write!(
                s,
                "<line x1=\"{left}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"{}\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left + plot_w,
                if tick == 0.0 { "#999" } else { "#eee" },
                left - 4.0,
                y(tick) + 3.0,
                pct0(tick),
                y0 = y(tick)
            );
        }
        // At most about eight labels, so the numbers never run into each other.
        let every = last.div_ceil(8).max(1);
        for turn in (1..=last).filter(|t| (t - 1) % every == 0 || *t == last) {
            let _ = write!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{turn}</text>",
                x(turn),
                top + plot_h + 13.0
            );
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#666\">turn</text>",
            left + plot_w / 2.0,
            top + plot_h + 26.0
        );
        let points: Vec<&&super::TurnRow> = rows.iter().filter(|t| &t.measure == m && t.going > 0).collect();
        let path: Vec<String> =
            points.iter().map(|t| format!("{:.1},{:.1}", x(t.turn), y(t.held as f64 / t.going as f64))).collect();
        let _ =
            write!(s, "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>", path.join(" "));
        for t in &points {
            let rate = t.held as f64 / t.going as f64;
            let (lo, hi) = t.interval.unwrap_or((rate, rate));
            let _ = write!(
                s,
                "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" opacity=\"0.45\" stroke-width=\"3\"/><circle cx=\"{x0:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: turn {}, {} / {}</title></circle>",
                y(lo),
                y(hi),
                y(rate),
                esc(m),
                t.turn,
                t.held,
                t.going,
                x0 = x(t.turn)
            );
        }
        s.push_str("</svg></figure>\n");
    }
    s.push_str("</div>\n");
    s
}

fn count(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// A cell key, escaped, free to wrap after each comma.
fn key(text: &str) -> String {
    esc(text).replace(',', ",<wbr>")
}

/// Numeric table cells.
fn num_cells(cells: &[String]) -> String {
    cells.iter().map(|c| format!("<td class=\"num\">{}</td>", esc(c))).collect()
}

/// Escape text for HTML and SVG.
/// Escaped, with markdown's `code` spans as <code>.
fn code_spans(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| if i % 2 == 1 { format!("<code>{part}</code>") } else { part.to_string() })
        .collect()
}

pub(super) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}
