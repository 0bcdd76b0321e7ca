//! `terrarium run`: renders a sweep that `terrarium_runtime::sweep` plans and runs —
//! progress on stderr (a bar on a terminal), the dry run's table, each target's outcome
//! table and the closing summary — and turns how it ended into an exit code.

use crate::cli::*;
use crate::common::*;
use std::io::IsTerminal as _;

use terrarium_runtime::sweep::{
    self, DryRun, Overrides, Progress, Summary, SweepError, SweepEvent, SweepFile, SweepSpec, Table,
};

/// A sweep's failure as the command's: a sweep that cannot run as asked is a usage
/// error (exit 2); a world that cannot start at some seed failed a check (exit 1); a run folder that cannot be read or written is exit 5, or a usage
/// error when it names something that is not there.
impl From<SweepError> for Failure {
    fn from(e: SweepError) -> Self {
        match e {
            SweepError::Invalid(m) => Failure::Usage(anyhow::anyhow!(m)),
            SweepError::CannotStart(m) => {
                eprintln!("error: {m}");
                Failure::Check
            }
            SweepError::Io { ref cause, .. } if cause.kind() != std::io::ErrorKind::NotFound => {
                Failure::Io(anyhow::Error::from(e))
            }
            e @ SweepError::Io { .. } => Failure::Usage(anyhow::Error::from(e)),
        }
    }
}

/// Run `spec` (or, with `dry_run`, say what running it would do), rendering as it goes.
pub(crate) fn run(spec: &SweepSpec, dry_run: bool) -> Outcome {
    if dry_run {
        let plan = sweep::dry_run(spec, &mut |e| note(&e))?;
        print_dry_run(&plan);
        return Ok(());
    }
    let mut bar = Bar::new();
    let ran = sweep::run(spec, &mut |event| match event {
        SweepEvent::Progress(p) => bar.update(&p),
        SweepEvent::Working(p) => bar.working(&p),
        other => bar.note(&other),
    });
    bar.finish();
    let summary = ran?;
    for (target, table) in &summary.tables {
        print_outcome_table(target, table);
    }
    print_summary(&summary)
}

/// A note or problem on stderr.
fn note(event: &SweepEvent) {
    match event {
        SweepEvent::Note(n) => eprintln!("note: {n}"),
        SweepEvent::Problem(p) => eprintln!("{p}"),
        SweepEvent::Progress(_) | SweepEvent::Working(_) => {}
    }
}

fn print_summary(summary: &Summary) -> Outcome {
    // Outcomes decided by judges: the counts in the tables are their gates'.
    if !summary.gated.is_empty() {
        let names: Vec<String> = summary.gated.iter().map(|n| format!("`{n}`")).collect();
        let one = names.len() == 1;
        println!(
            "\n{} {} decided by judges: the counts above are {} gate's (an upper bound); {}",
            names.join(", "),
            if one { "is" } else { "are" },
            if one { "its" } else { "their" },
            if summary.had_judges {
                "`terrarium report` gives the judges' verdicts"
            } else {
                "run again with --judge MODEL to decide them, then `terrarium report`"
            }
        );
    }
    println!(
        "{} ({} new, {} already in the folder, {} errored{}) -> {}",
        count(summary.total as u64, "episode"),
        summary.new_episodes(),
        summary.skipped,
        summary.errored,
        match (summary.out_of_role, summary.not_started) {
            (0, 0) => String::new(),
            (o, 0) => format!(", {o} with the user model out of role (counted apart)"),
            (0, n) => format!(", {n} not started"),
            (o, n) => format!(", {o} with the user model out of role (counted apart), {n} not started"),
        },
        summary.dir.join("episodes.jsonl").display()
    );
    if let Some((id, cell, seed)) = &summary.first {
        let transcript = summary.dir.join("transcripts").join(format!("{id}.jsonl"));
        if transcript.is_file() || terrarium_runtime::run_folder::is_packed(&transcript) {
            let pick = if cell.is_empty() { String::new() } else { format!(" --condition {cell}") };
            println!("one transcript: terrarium view {}", transcript.display());
            println!(
                "or by cell and seed: terrarium view {}{pick} --seed {seed}; the tables: terrarium report {}",
                summary.dir.display(),
                summary.dir.display()
            );
        }
    }
    if summary.judgements > 0 {
        println!(
            "{} ({}, {} failed) -> {}",
            count(summary.judgements as u64, "judgement"),
            count(summary.judge_errors as u64, "unreadable reply"),
            count(summary.judge_failed as u64, "request"),
            summary.dir.join("judgements.jsonl").display()
        );
    }
    if let Some(t) = summary.tokens {
        let priced = summary.cost_usd.map(|c| format!("; estimated cost ${c:.4}")).unwrap_or_default();
        println!("tokens this run: {} input, {} output (as the provider reported them){priced}", t.input, t.output);
    }
    if let Some(why) = &summary.stopped {
        let unjudged = if summary.not_judged > 0 {
            format!(", {} not judged", count(summary.not_judged as u64, "stored episode"))
        } else {
            String::new()
        };
        eprintln!(
            "stopped: {why}; {} not started{unjudged}. \
             Run the same command again to continue (errored episodes are retried).",
            count(summary.not_started as u64, "episode")
        );
        return Err(Failure::Budget);
    }
    if summary.judge_failed > 0 {
        eprintln!(
            "{} failed; run the same command again to ask them again",
            count(summary.judge_failed as u64, "judge request")
        );
    }
    if summary.errored > 0 || summary.judge_failed > 0 { Err(Failure::Errored) } else { Ok(()) }
}

/// Progress of a run on stderr: a bar on a terminal; otherwise a plain line every 5%
/// of a run of 20 episodes or more, and while nothing finishes, a line at least every
/// 30 seconds (`TERRARIUM_PROGRESS_SECS`).
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let style =
                indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} episodes  {per_sec}  eta {eta}  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            indicatif::ProgressBar::new(0).with_style(style)
        });
        Bar { bar }
    }

    fn update(&mut self, p: &Progress) {
        let step = (p.total / 20).max(1);
        let line_due = p.total >= 20 && p.done > 0 && p.done.is_multiple_of(step);
        if self.bar.is_none() && !line_due {
            return;
        }
        self.show(p, "");
    }

    /// Nothing finished for a while: a plain line when there is no bar (the bar shows
    /// its own elapsed time).
    fn working(&mut self, p: &Progress) {
        match &self.bar {
            Some(bar) => bar.tick(),
            None => self.show(p, " (still working)"),
        }
    }

    fn show(&self, p: &Progress, suffix: &str) {
        let mut msg = format!("{} errored", p.errored);
        if p.api_calls > 0 {
            msg.push_str(&format!(", {} API calls", p.api_calls));
        }
        if let Some(t) = p.tokens {
            msg.push_str(&format!(", {} tokens", t.input + t.output));
        }
        if let Some((used, limit)) = p.cost {
            msg.push_str(&format!(", ${used:.2} of ${limit:.2}"));
        }
        match &self.bar {
            Some(bar) => {
                bar.set_length(p.total);
                bar.set_position(p.done);
                bar.set_message(msg);
            }
            None => eprintln!("progress: {}/{} episodes, {msg}{suffix}", p.done, p.total),
        }
    }

    /// A line of its own, above the bar when there is one.
    fn note(&self, event: &SweepEvent) {
        match (&self.bar, event) {
            (Some(bar), SweepEvent::Note(n)) => bar.println(format!("note: {n}")),
            (Some(bar), SweepEvent::Problem(p)) => bar.println(p),
            _ => note(event),
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn print_dry_run(plan: &DryRun) {
    for (target, cached, rows) in &plan.targets {
        let total: usize = rows.iter().map(|r| r.episodes).sum();
        println!("dry run: {} for {target} (nothing is sent or written)", count(total as u64, "episode"));
        for r in rows {
            let cell = if r.cell.is_empty() { "(no factors)" } else { &r.cell };
            if *cached {
                println!(
                    "  {:<16} {cell:<44} {:>11}; the cache answers {} and completes {}",
                    r.world,
                    count(r.episodes as u64, "episode"),
                    count(r.answered as u64, "request"),
                    count(r.complete as u64, "episode")
                );
            } else {
                println!("  {:<16} {cell:<44} {:>11}", r.world, count(r.episodes as u64, "episode"));
            }
        }
    }
    if let Some((user, episodes)) = &plan.user {
        println!(
            "user model {user}: plays the simulated user in {} (the cache is followed only up to the user's first message)",
            count(*episodes as u64, "episode")
        );
    }
    if !plan.judges.is_empty() {
        println!(
            "judges {}: up to {} questions each (one per judged outcome of each completed episode not yet judged)",
            plan.judges.join(", "),
            plan.judge_questions
        );
    }
    if !plan.monitors.is_empty() {
        println!("monitors {}: one score each per completed episode not yet scored", plan.monitors.join(", "));
    }
}

fn print_outcome_table(target: &str, table: &Table) {
    let mut current_world = "";
    for ((world, cell), counts) in table {
        if world != current_world {
            current_world = world;
            let names: Vec<&str> = counts.fired.keys().map(String::as_str).collect();
            println!("\n{world} — {target}");
            println!(
                "  {:<44} {:>5} {:>7}  {}",
                "condition",
                "n",
                "errored",
                names.iter().map(|n| format!(" {n:>16}")).collect::<String>()
            );
        }
        let cell = if cell.is_empty() { "(no factors)" } else { cell };
        let fired: String = counts.fired.values().map(|c| format!(" {c:>16}")).collect();
        println!("  {cell:<44} {:>5} {:>7}  {fired}", counts.episodes, counts.errored);
    }
}

/// `terrarium run`: the sweep file (if any) with the flags laid over it, resolved by
/// the runtime, then run and rendered.
pub(crate) fn run_cmd(args: RunArgs) -> Outcome {
    let file = args.sweep.as_deref().map(SweepFile::read).transpose()?.unwrap_or_default();
    let flags = Overrides {
        worlds: args.worlds,
        models: args.models,
        conditions: args.conditions,
        seed: args.seed,
        samples: args.samples,
        limit: args.limit,
        out: args.out,
        shard: args.shard,
        replace: args.replace,
        keep_errored: args.no_retry_errored,
        max_connections: args.max_connections,
        max_api_calls: args.max_api_calls,
        max_cost: args.max_cost,
        judges: args.judges,
        judge_without_reasoning: args.judge_without_reasoning,
        judge_base_url: args.judge_base_url,
        judge_max_tokens: args.judge_max_tokens,
        monitors: args.monitors,
        monitor_sees_hidden_reasoning: args.monitor_sees_hidden_reasoning,
        user_model: args.user_model,
        user_base_url: args.user_base_url,
        user_max_tokens: args.user_max_tokens,
        input_price: args.input_price,
        output_price: args.output_price,
        settings: args.api.entry(),
        send: args.send.options(),
        dry_run: args.dry_run,
        build: BUILD.map(String::from),
        from: args.from,
        at: args.at,
    };
    run(&SweepSpec::resolve(&file, &flags)?, args.dry_run)
}
