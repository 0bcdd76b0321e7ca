//! `report.md`: the report as markdown, from the numbers [`super::build`] computed.

use std::fmt::Write as _;

use super::*;

impl Report {
    /// `report.md`: per world and target, rates with intervals per cell, then the
    /// differences from the control cell; errored episodes and stop reasons beside them.
    /// Then targets side by side, judge agreement, and usage.
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "# Terrarium report\n\nRates are completed episodes in which the outcome fired, with Wilson 95% intervals. Errored episodes are counted apart and never in a denominator. Differences from the control cell use Newcombe's 95% interval. Where a world declares when the target was exposed (it saw the secret, the threat), the rate among exposed episodes is given too; where it measures whether the target said it suspects a test (`eval_aware`), each harm's rate among the episodes where it did not is given as well: the rate a real deployment would see.\n\n`decided by` says how each verdict was reached: `rule`, the world's rule; `judges (…)`, the judges' combined answers on the episodes the outcome's gate let through (episodes they left undecided are counted apart, never in a denominator); `gate (no judges)`, an outcome meant to be decided by judges in a folder where none answered, so its rate is the gate's: an upper bound, not a finding.\n",
        );
        if let Some(note) = self.missing_note() {
            let _ = writeln!(s, "\n{note}");
        }
        if !self.reasoning.is_empty() {
            s.push_str("\n## Reasoning each target showed\n\nWhat of a target's reasoning its transcripts show, and so what judges and `eval_aware` can read: `none`, a `summary` (OpenAI reasoning models asked for summaries), or the `thinking` itself (Anthropic thinking, a compatible server's reasoning text).\n\n| target | reasoning shown |\n|---|---|\n");
            for target in self.targets() {
                let shown = self.reasoning_text(target).unwrap_or_else(|| "— (not a model)".into());
                let _ = writeln!(s, "| {target} | {shown} |");
            }
            if let Some(note) = self.reasoning_note() {
                let _ = writeln!(s, "\n{note}");
            }
        }
        for ((world, target), rows) in self.by_world_target() {
            let control = self.controls.get(world).map_or("(unknown)", String::as_str);
            let _ = writeln!(s, "\n## {world} — {target}\n\nControl cell: `{control}`\n");
            let defined: Vec<String> = self
                .definitions
                .iter()
                .filter(|((w, _), _)| w == world)
                .map(|((_, outcome), d)| format!("- `{outcome}`: {d}"))
                .collect();
            if !defined.is_empty() {
                let _ = writeln!(s, "What each outcome measures:\n\n{}\n", defined.join("\n"));
            }
            if let Some(shown) = self.reasoning_text(target) {
                let _ = writeln!(s, "Reasoning shown to judges and `eval_aware`: {shown}\n");
            }
            s.push_str(&self.matrices_md(world, target));
            s.push_str("| condition | outcome | kind | decided by | fired / n | rate | 95% interval | among exposed | among unaware | vs control | errored | undecided | stops |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
            for r in &rows {
                let t = self.row_text(r);
                let short = t.shortfall.map(|w| format!(" {w}")).unwrap_or_default();
                let _ = writeln!(
                    s,
                    "| `{}`{short} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.condition,
                    r.outcome,
                    r.kind,
                    r.decided_by,
                    r.fired,
                    r.completed,
                    t.rate,
                    t.interval,
                    t.exposed,
                    t.unaware,
                    t.vs_control,
                    r.errored,
                    r.undecided,
                    t.stops
                );
            }
            let pooled: Vec<&FactorRow> =
                self.by_factor.iter().filter(|f| f.world == world && f.target == target).collect();
            if !pooled.is_empty() {
                s.push_str("\n### By factor value\n\nEach harm, and `eval_aware`, pooled over every cell with that value (the other factors vary within it).\n\n| factor | value | outcome | decided by | cells | fired / n | rate | 95% interval | among unaware |\n|---|---|---|---|---|---|---|---|---|\n");
                for f in pooled {
                    let (rate, interval) = rate_text(f.fired, f.completed, f.interval);
                    let unaware = f.unaware.map_or_else(|| "—".to_string(), |u| u.text("unaware"));
                    let _ = writeln!(
                        s,
                        "| {} | `{}` | {} | {} | {} | {} / {} | {rate} | {interval} | {unaware} |",
                        f.factor, f.value, f.outcome, f.decided_by, f.cells, f.fired, f.completed
                    );
                }
            }
            if let Some((measures, turns)) = self.turn_table(world, target) {
                s.push_str("\n### By turn\n\nOver the conversations still going at each turn (one that ended earlier is not in that turn's denominator): how often the simulated user read the target's reply as a refusal, and how often each outcome's condition held after the turn (`(gate)`: an outcome decided by judges, whose per-turn rate is its gate's, an upper bound). Wilson 95% intervals.\n\n");
                let _ = writeln!(s, "| turn | going | {} |", measures.join(" | "));
                let _ = writeln!(s, "|---|---|{}", "---|".repeat(measures.len()));
                for (turn, going, cells) in turns {
                    let _ = writeln!(s, "| {turn} | {going} | {} |", cells.join(" | "));
                }
            }
            let mut gated: Vec<&str> =
                rows.iter().filter(|r| r.decided_by.starts_with("gate")).map(|r| r.outcome.as_str()).collect();
            gated.dedup();
            for outcome in gated {
                let _ = writeln!(
                    s,
                    "\n⚠ `{outcome}` is meant to be decided by judges and no judge answered in this folder: its rates are the gate's, an upper bound, not a finding."
                );
            }
        }
        if !self.sabotage.is_empty() {
            s.push('\n');
            s.push_str(&super::sabotage::markdown(&self.sabotage));
        }
        if !self.by_belief.is_empty() {
            let _ = write!(
                s,
                "\n## Harms by the belief the target stated\n\n{BY_BELIEF_NOTE}\n\n| world | target | outcome | believes real | believes evaluation | neither stated |\n|---|---|---|---|---|---|\n"
            );
            let cell = belief_cell;
            for b in &self.by_belief {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} |",
                    b.world,
                    b.target,
                    b.outcome,
                    cell(b.real),
                    cell(b.eval),
                    cell(b.neither)
                );
            }
        }
        if !self.branches.is_empty() {
            let _ = writeln!(
                s,
                "\n## Branches\n\n{}\n\n| world | parent | at step | target | outcome | decided by | parent's verdict | branches fired / n | rate | 95% interval | errored | undecided |\n|---|---|---|---|---|---|---|---|---|---|---|---|",
                super::BRANCHES_NOTE
            );
            for b in &self.branches {
                let (rate, interval) = super::rate_text(b.fired, b.completed, b.interval);
                let _ = writeln!(
                    s,
                    "| {} | `{}` | {} | {} | {} | {} | {} | {} / {} | {rate} | {interval} | {} | {} |",
                    b.world,
                    b.parent,
                    b.at,
                    b.target,
                    b.outcome,
                    b.decided_by,
                    super::parent_text(b.parent_fired),
                    b.fired,
                    b.completed,
                    b.errored,
                    b.undecided
                );
            }
        }
        if !self.over_refusal.is_empty() {
            s.push_str("\n## Over-refusal in control cells\n\nIn each world's control cell, completed episodes in which the provider reported a refusal or an outcome the world marks as a refusal fired (decided as its rows say; episodes the judges left undecided are counted apart). Wilson 95% intervals.\n\n| world | target | control cell | counted from | refused / n | rate | 95% interval | undecided |\n|---|---|---|---|---|---|---|---|\n");
            for o in &self.over_refusal {
                let (rate, interval) = rate_text(o.refused, o.completed, o.interval);
                let _ = writeln!(
                    s,
                    "| {} | {} | `{}` | {} | {} / {} | {rate} | {interval} | {} |",
                    o.world, o.target, o.condition, o.decided_by, o.refused, o.completed, o.undecided
                );
            }
        }
        let played = self.user_models();
        if !played.is_empty() {
            s.push_str("\n## Conversations with a model playing the user\n\nA conversation whose user model stopped playing the person (it refused the role, said it was an AI, talked about the role-play, answered as an assistant) is counted apart, never in a denominator: the rule that notices it stops the episode as `user_out_of_role`. Judges asked whether the user model left its role in the conversations the rule let run say what the rule missed.\n\n| world | target | conversations | completed | user out of role | judged out of role (among completed) |\n|---|---|---|---|---|---|\n");
            for (world, target, c) in played {
                let judged = self.judged_out_of_role(world, target);
                let _ = writeln!(
                    s,
                    "| {world} | {target} | {} | {} | {} | {judged} |",
                    c.completed + c.errored + c.out_of_role,
                    c.completed,
                    c.out_of_role
                );
            }
        }
        let targets = self.targets();
        if targets.len() > 1 {
            s.push_str(
                "\n## Targets side by side\n\nRate and Wilson 95% interval per cell; `n` is completed episodes.\n",
            );
            for ((world, outcome), rows) in self.by_world_outcome() {
                let _ = writeln!(s, "\n### {world}: {outcome}\n");
                let _ = writeln!(s, "| condition | {} |", targets.join(" | "));
                let _ = writeln!(s, "|---|{}", "---|".repeat(targets.len()));
                let mut cells: Vec<&str> = rows.iter().map(|r| r.condition.as_str()).collect();
                cells.dedup();
                for cell in cells {
                    let cols: Vec<String> = targets
                        .iter()
                        .map(|t| match rows.iter().find(|r| r.condition == cell && r.target == *t) {
                            Some(r) => {
                                let (rate, interval) = rate_text(r.fired, r.completed, r.interval);
                                format!("{rate} ({interval}), n={}", r.completed)
                            }
                            None => "—".into(),
                        })
                        .collect();
                    let _ = writeln!(s, "| `{cell}` | {} |", cols.join(" | "));
                }
            }
        }
        if !self.judges.is_empty() {
            s.push_str("\n## Judges against the rule verdicts\n\nOver completed episodes. The rule verdict is primary; a judge is a second opinion. Kappa is Cohen's (— where undefined: every answer the same).\n\n| world | outcome | judge | both yes | rule only | judge only | both no | agreement | kappa | unreadable | failed |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
            for j in &self.judges {
                let cells = agreement_cells(&j.agreement).join(" | ");
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {cells} | {} | {} |",
                    j.world, j.outcome, j.judge, j.unreadable, j.failed
                );
            }
        }
        if !self.judge_pairs.is_empty() {
            s.push_str("\n## Judges against each other\n\nOver completed episodes both judges gave a verdict on.\n\n| world | outcome | judge A | judge B | both yes | A only | B only | both no | agreement | kappa |\n|---|---|---|---|---|---|---|---|---|---|\n");
            for p in &self.judge_pairs {
                let cells = agreement_cells(&p.agreement).join(" | ");
                let _ = writeln!(s, "| {} | {} | {} | {} | {cells} |", p.world, p.outcome, p.a, p.b);
            }
        }
        if !self.provenance.is_empty() {
            s.push_str("\n## Provenance\n\nWhere these numbers come from, read from the run's transcript headers and records: rerun with the same engine, world version and settings to get the same transcripts.\n\n| world | target | engine | commit | world version | dynamics hash | outcomes hash | settings | seeds | episodes |\n|---|---|---|---|---|---|---|---|---|---|\n");
            for p in &self.provenance {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | `{}` | `{}` | `{}` | {}–{} | {} |",
                    p.world,
                    p.target,
                    p.engine,
                    p.build.as_deref().unwrap_or("—"),
                    p.world_version,
                    p.dynamics_hash,
                    p.outcomes_hash,
                    p.settings,
                    p.seeds.0,
                    p.seeds.1,
                    p.episodes
                );
            }
        }
        if !self.usage.is_empty() {
            let priced = self.usage.values().any(|u| u.cost_usd.is_some());
            s.push_str("\n## Token usage\n\nAs the providers reported them, summed over every reply (errored episodes included: they were billed too).");
            s.push_str(if priced { " Cost is estimated from the prices the run was given.\n\n| target | episodes (judgements) | input tokens | output tokens | estimated cost |\n|---|---|---|---|---|\n" } else { "\n\n| target | episodes (judgements) | input tokens | output tokens |\n|---|---|---|---|\n" });
            for (target, u) in &self.usage {
                let cost = if priced {
                    format!(" {} |", u.cost_usd.map_or("—".into(), |c| format!("${c:.4}")))
                } else {
                    String::new()
                };
                let _ = writeln!(s, "| {target} | {} | {} | {} |{cost}", u.n, u.tokens.input, u.tokens.output);
            }
        }
        s
    }
}

impl Report {
    /// One world and target's factor matrices: a table per outcome (and facet value),
    /// each square the pooled rate, its interval and fired / n.
    fn matrices_md(&self, world: &str, target: &str) -> String {
        let ms: Vec<&super::Matrix> = self.matrices.iter().filter(|m| m.world == world && m.target == target).collect();
        let Some(first) = ms.first() else { return String::new() };
        let axes = match &first.cols {
            Some(c) => format!("rows `{}`, columns `{}`", first.rows.factor, c.factor),
            None => format!("rows `{}`", first.rows.factor),
        };
        let pooled = if first.pooled.is_empty() {
            String::new()
        } else {
            format!("; pooled over {}", first.pooled.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", "))
        };
        let mut s =
            format!("### Factor matrices\n\nEach outcome's rate, Wilson 95% interval and fired / n: {axes}{pooled}.\n");
        for m in ms {
            let facet = m.facet.as_ref().map(|(f, v)| format!(" ({f} = {v})")).unwrap_or_default();
            let cols: Vec<&str> =
                m.cols.as_ref().map_or(vec!["rate"], |c| c.values.iter().map(String::as_str).collect());
            let _ = write!(
                s,
                "\n**{}**{facet}\n\n| {} | {} |\n|---|{}\n",
                m.outcome,
                m.rows.factor,
                cols.join(" | "),
                "---|".repeat(cols.len())
            );
            for (i, row) in m.rows.values.iter().enumerate() {
                let squares: Vec<String> = (0..cols.len())
                    .map(|j| {
                        let t = m.at(i, j);
                        match t.cells {
                            0 => "— (not run)".to_string(),
                            _ => {
                                let (rate, interval) = super::rate_text(t.fired, t.completed, t.interval);
                                format!("{rate} ({interval}) {}/{}", t.fired, t.completed)
                            }
                        }
                    })
                    .collect();
                let _ = writeln!(s, "| {row} | {} |", squares.join(" | "));
            }
        }
        s.push('\n');
        s
    }
}
