//! `report.html`: one self-contained page (no scripts, no external files) with an SVG
//! bar chart per world and outcome: the rate in each cell for each target, with its
//! Wilson 95% interval as an error bar. Tables beside the charts carry the numbers.

use std::fmt::Write as _;

use super::{Report, Row, agreement_cells, pct};

/// Colour of the i-th target (in name order), the same in every chart.
const PALETTE: [&str; 8] = ["#3b6ea8", "#d9822b", "#4f9a5c", "#b84a4a", "#7b5ea7", "#8c6d46", "#c55fa0", "#6b7b8c"];

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#222}\
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:1px solid #ccc}h3{margin-top:1.5rem;font-size:1.05rem}\
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}code{font-size:.85em}code.hash{word-break:break-all;font-size:.75em}\
.warn{color:#a15c00}.note{color:#555;font-size:.9rem}svg{display:block;margin:.5rem 0}";

pub(super) fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Terrarium report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>Terrarium report</h1>\n<p class=\"note\">Rates are completed episodes in which the outcome fired; bars show the rate and error bars its Wilson 95% interval. Errored episodes are counted apart and never in a denominator. Differences from the control cell use Newcombe's 95% interval. Each outcome says how its verdicts were decided: by the world's rule, by judges on the episodes its gate let through (undecided episodes counted apart), or, where no judge answered, by the gate alone: an upper bound.</p>\n"
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
        let _ = writeln!(s, "<h2>{}</h2>\n<p>Control cell: <code>{}</code></p>", esc(world), esc(control));
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
            s.push_str(&chart(outcome, &rows, &targets));
            s.push_str("<table>\n<tr><th>condition</th><th>target</th><th>fired / n</th><th>rate</th><th>95% interval</th><th>among exposed</th><th>among unaware</th><th>vs control</th><th>errored</th><th>undecided</th><th>stops</th></tr>\n");
            for r in &rows {
                let t = report.row_text(r);
                let short =
                    t.shortfall.map(|w| format!(" <span class=\"warn\">{}</span>", esc(&w))).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "<tr><td><code>{}</code>{short}</td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                    esc(&r.condition),
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
                    esc(&t.stops)
                );
            }
            s.push_str("</table>\n");
        }
        let pooled: Vec<&super::FactorRow> = report.by_factor.iter().filter(|f| f.world == world).collect();
        if !pooled.is_empty() {
            s.push_str("<h3>By factor value <span class=\"note\">(each harm, and eval_aware, pooled over every cell with that value)</span></h3>\n<table>\n<tr><th>target</th><th>factor</th><th>value</th><th>outcome</th><th>decided by</th><th>cells</th><th>fired / n</th><th>rate</th><th>95% interval</th><th>among unaware</th></tr>\n");
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
            s.push_str("</table>\n");
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
            s.push_str(&turn_chart(report, world, target, &measures));
            s.push_str("<table>\n<tr><th>turn</th><th>going</th>");
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
            s.push_str("</table>\n");
        }
    }
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
    if !report.over_refusal.is_empty() {
        s.push_str("<h2>Over-refusal in control cells</h2>\n<p class=\"note\">In each world's control cell, completed episodes in which the provider reported a refusal or an outcome the world marks as a refusal fired. Wilson 95% intervals.</p>\n<table>\n<tr><th>world</th><th>target</th><th>control cell</th><th>counted from</th><th>refused / n</th><th>rate</th><th>95% interval</th><th>undecided</th></tr>\n");
        for o in &report.over_refusal {
            let (rate, interval) = super::rate_text(o.refused, o.completed, o.interval);
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td class=\"num\">{} / {}</td><td class=\"num\">{rate}</td><td class=\"num\">{interval}</td><td class=\"num\">{}</td></tr>",
                esc(&o.world),
                esc(&o.target),
                esc(&o.condition),
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

/// Rates by turn as lines, one per measure, each point with its interval.
fn turn_chart(report: &Report, world: &str, target: &str, measures: &[String]) -> String {
    let rows: Vec<&super::TurnRow> = report.by_turn.iter().filter(|t| t.world == world && t.target == target).collect();
    let last = rows.iter().map(|t| t.turn).max().unwrap_or(1).max(2);
    let (left, top, plot_w, plot_h) = (48.0, 12.0, 560.0, 180.0);
    let x = |turn: u32| left + plot_w * f64::from(turn - 1) / f64::from(last - 1);
    let y = |rate: f64| top + plot_h * (1.0 - rate);
    let legend_h = 18.0 * measures.len() as f64;
    let height = top + plot_h + 36.0 + legend_h;
    let mut s = format!(
        "<svg width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"rates by turn\">\n",
        left + plot_w + 20.0
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y0:.1}\" y2=\"{y0:.1}\" stroke=\"#eee\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 4.0,
            y(tick) + 3.0,
            pct(tick),
            y0 = y(tick)
        );
    }
    for turn in 1..=last {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{turn}</text>",
            x(turn),
            top + plot_h + 14.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">turn</text>",
        left + plot_w / 2.0,
        top + plot_h + 28.0
    );
    for (i, m) in measures.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let points: Vec<&&super::TurnRow> = rows.iter().filter(|t| &t.measure == m && t.going > 0).collect();
        let path: Vec<String> =
            points.iter().map(|t| format!("{:.1},{:.1}", x(t.turn), y(t.held as f64 / t.going as f64))).collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for t in &points {
            if let Some((lo, hi)) = t.interval {
                let _ = writeln!(
                    s,
                    "<line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{colour}\" opacity=\"0.5\"/><circle cx=\"{x0:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: turn {}, {} / {}</title></circle>",
                    y(lo),
                    y(hi),
                    y(t.held as f64 / t.going as f64),
                    esc(m),
                    t.turn,
                    t.held,
                    t.going,
                    x0 = x(t.turn)
                );
            }
        }
        let ly = top + plot_h + 40.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            ly,
            left + 18.0,
            ly + 10.0,
            esc(m)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// A grouped bar chart: one group per cell, one bar per target, each with its interval.
fn chart(outcome: &str, rows: &[&Row], targets: &[&str]) -> String {
    let mut cells: Vec<&str> = rows.iter().map(|r| r.condition.as_str()).collect();
    cells.sort();
    cells.dedup();
    // Cell labels slant down to the right at 30°: room for the longest below and beside.
    let longest = cells.iter().map(|c| c.chars().count().max(12)).max().unwrap_or(12) as f64 * 6.2;
    let (bar, gap, left, top, plot_h) = (16.0, 28.0, 48.0, 34.0, 150.0);
    let bottom = longest * 0.5 + 24.0;
    let group_w = bar * targets.len() as f64 + gap;
    let width = (left + group_w * cells.len() as f64 + longest * 0.87).max(360.0);
    let height = top + plot_h + bottom;
    let y = |v: f64| top + plot_h * (1.0 - v.clamp(0.0, 1.0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\" role=\"img\" aria-label=\"{} rate per cell and target\" font-family=\"sans-serif\" font-size=\"11\">",
        esc(outcome)
    );
    // Legend.
    let mut lx = left;
    for (i, t) in targets.iter().enumerate() {
        let _ = writeln!(
            s,
            "<rect x=\"{lx:.1}\" y=\"8\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{:.1}\" y=\"17\">{}</text>",
            PALETTE[i % PALETTE.len()],
            lx + 14.0,
            esc(t)
        );
        lx += 24.0 + 6.5 * t.chars().count() as f64;
    }
    // Axis and grid.
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let ty = y(tick);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\" stroke=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{:.0}%</text>",
            width - 10.0,
            if tick == 0.0 { "#888" } else { "#e4e4e4" },
            left - 6.0,
            ty + 4.0,
            tick * 100.0
        );
    }
    for (c, cell) in cells.iter().enumerate() {
        let gx = left + gap / 2.0 + group_w * c as f64;
        for (i, t) in targets.iter().enumerate() {
            let Some(r) = rows.iter().find(|r| r.condition == *cell && r.target == *t) else { continue };
            let x = gx + bar * i as f64;
            let colour = PALETTE[i % PALETTE.len()];
            if r.completed == 0 {
                let _ = writeln!(
                    s,
                    "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">n=0</text>",
                    x + bar / 2.0,
                    y(0.0) - 4.0
                );
                continue;
            }
            let rate = r.fired as f64 / r.completed as f64;
            let (lo, hi) = r.interval.unwrap_or((rate, rate));
            let tip = format!("{t} — {cell}: {} ({} – {}), {} / {}", pct(rate), pct(lo), pct(hi), r.fired, r.completed);
            // A rate of 0 still gets a sliver in the target's colour, so its error bar
            // can be told apart from a missing cell.
            let height = (plot_h * rate.clamp(0.0, 1.0)).max(2.0);
            let _ = writeln!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{height:.1}\" fill=\"{colour}\"><title>{}</title></rect>",
                x + 1.0,
                y(0.0) - height,
                bar - 2.0,
                esc(&tip)
            );
            let cx = x + bar / 2.0;
            let _ = writeln!(
                s,
                "<path d=\"M{cx:.1} {:.1}V{:.1}M{:.1} {:.1}H{:.1}M{:.1} {:.1}H{:.1}\" stroke=\"#222\" stroke-width=\"1.2\" fill=\"none\"/>",
                y(lo),
                y(hi),
                cx - 4.0,
                y(lo),
                cx + 4.0,
                cx - 4.0,
                y(hi),
                cx + 4.0
            );
        }
        let lx = gx + bar * targets.len() as f64 / 2.0;
        let ly = top + plot_h + 14.0;
        let label = if cell.is_empty() { "(no factors)" } else { cell };
        let _ = writeln!(
            s,
            "<text x=\"{lx:.1}\" y=\"{ly:.1}\" transform=\"rotate(30 {lx:.1} {ly:.1})\">{}</text>",
            esc(label)
        );
    }
    s.push_str("</svg>\n");
    s
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

fn esc(text: &str) -> String {
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
