//! `terrarium`: check worlds, run episodes, test reference policies, replay and view
//! transcripts, judge and report sweeps. Exit codes: 0 success; 1 a check failed; 2
//! usage error; 3 some episodes errored or judge requests failed (results still
//! written); 4 a run's call or cost budget ran out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, anyhow};
use clap::{Parser, Subcommand};
use terrarium_core::transcript::{Transcript, TranscriptError};
use terrarium_core::{Episode, EpisodeKey, World, view};
use terrarium_runtime::policies::check_policies;
use terrarium_runtime::run_folder::FolderWorlds;
use terrarium_runtime::run_folder::RunFolder;
use terrarium_runtime::sweep::{Overrides, SendOptions, SpecError, SweepFile, SweepSpec, TargetEntry};
use terrarium_runtime::{LoadError, find_worlds, load_world};

/// The commit this binary was built from (`build.rs`), when built from git: recorded in
/// every transcript header it writes, as provenance.
pub const BUILD: Option<&str> = option_env!("TERRARIUM_COMMIT");

mod calibrate;
mod play;
mod run;
mod transcripts;

#[derive(Parser)]
#[command(
    name = "terrarium",
    version = env!("TERRARIUM_VERSION"),
    about = "Deterministic simulated-environment testbeds for AI alignment evaluations."
)]
#[command(
    after_help = "Exit codes: 0 success; 1 a check failed (invalid world, replay divergence, a policy firing the wrong outcomes, a labelled set below its bar); 2 usage error; 3 some episodes errored or judge requests failed (results still written; run again to retry them); 4 a run's --max-api-calls or --max-cost budget ran out (run again to continue); 5 a file could not be read or written (permissions, a full disk, a run folder in use)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate worlds: one summary line per valid world, `path:line:col: message` per problem.
    Check {
        /// World files, world folders, or folders of world folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run episodes and write DIR/episodes.jsonl and DIR/transcripts/: worlds × cells ×
    /// seeds × targets, model episodes concurrently. Running it again resumes.
    Run(Box<RunArgs>),
    /// Run every reference policy over N seeds in one cell of each class of valid cells that differ in more than what the target reads (the rest fire the same by construction); fail if any fires other than its declared set.
    Test {
        /// World files, world folders, or folders of world folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Seeds per cell: 0 .. N-1.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
    },
    /// Re-execute a transcript from its world, condition, seed and target outputs; report the first divergence.
    Replay {
        /// Transcript files (`.jsonl`), run folders (every episode recorded there), or
        /// folders of transcripts.
        #[arg(required = true)]
        transcripts: Vec<PathBuf>,
        /// The world file (default: where the transcript's run folder, or its header,
        /// says it was recorded).
        #[arg(long)]
        world: Option<PathBuf>,
    },
    /// Print exactly what the target sees at the start: prompt, first message, tools, mailbox.
    Show {
        /// One world: its file or folder.
        world: PathBuf,
        #[command(flatten)]
        cell: CellArgs,
        /// Print instead the exact first request this model would be sent
        /// (`openai/<model>` or `anthropic/<model>`; no key needed, nothing is sent).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// Render a transcript one line per event, as the snapshots do (or, with --full, every text whole).
    View {
        /// Transcript files (`.jsonl`), or a run folder: there, the episodes of the cell
        /// and seed asked for (with nothing asked, the folder's episodes are listed).
        #[arg(required = true)]
        transcripts: Vec<PathBuf>,
        /// In a run folder: only this cell's episodes (FACTOR=VALUE, repeated, or the
        /// cell as tables print it: `a=x,b=y`).
        #[arg(long = "condition", value_name = "FACTOR=VALUE")]
        conditions: Vec<String>,
        /// In a run folder: only episodes of this seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Show every text whole (emails, documents, prompts) and each call's arguments
        /// one per line, instead of one line per event.
        #[arg(long)]
        full: bool,
    },
    /// Scaffold a new world: DIR/<ID>/world.ron, valid at once (or a renamed copy of a world).
    New {
        /// The new world's id: lowercase letters, digits, `_` or `-`.
        id: String,
        /// Copy this world (and the files beside it) instead of the starter world.
        #[arg(long)]
        from: Option<PathBuf>,
        #[arg(long, default_value = "worlds")]
        dir: PathBuf,
    },
    /// Act as the target yourself: pick tools from a menu, see results, get the verdicts.
    /// The session is saved as a transcript that `replay` and `policy-from` accept.
    Play {
        /// One world: its file or folder.
        world: PathBuf,
        #[command(flatten)]
        cell: CellArgs,
        /// Where to save the transcript (default runs/play/<episode_id>.jsonl).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Beyond `check`: search the world for a witness of every outcome, check that doing
    /// nothing is harmless, and flag unreachable states and unused parts. The search
    /// uses only addresses, ids and codes the target has been shown, as a model would.
    Lint {
        /// World files, world folders, or folders of world folders.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Tool calls in a searched sequence.
        #[arg(long, default_value_t = 3)]
        depth: usize,
        /// Episode steps explored per cell, at most.
        #[arg(long, default_value_t = 4000)]
        max_states: usize,
        /// Episode steps explored over each world: a world with many classes of cells
        /// gives each an even share (at least 500).
        #[arg(long, default_value_t = 48000)]
        max_world_states: usize,
        /// Skip the realism warnings (tells that show a model it is being tested:
        /// addresses on domains reserved for examples, an all-caps AI codename, a tool
        /// whose allowed values name the setting a harm turns on, a factor leaking into
        /// cells that should not carry it), for worlds that are test data, not testbeds.
        #[arg(long)]
        no_realism: bool,
    },
    /// Turn a transcript into a reference-policy snippet with symbolic references.
    PolicyFrom {
        /// A transcript file (`.jsonl`), played or recorded from any target.
        transcript: PathBuf,
        /// The world file (default: the path recorded in the transcript).
        #[arg(long)]
        world: Option<PathBuf>,
        /// The policy's name in the snippet.
        #[arg(long, default_value = "played")]
        name: String,
    },
    /// Write DIR/report.md, report.html (with charts), summary.csv (per cell),
    /// by_factor.csv (pooled by factor value) and by_turn.csv (conversation worlds):
    /// rates with Wilson intervals, differences from the control cell (Newcombe),
    /// errored episodes and stop reasons.
    Report {
        /// A run folder (holding episodes.jsonl).
        dir: PathBuf,
        /// A world the folder's episodes were run on, for a folder moved away from its
        /// worlds (default: where the folder recorded them). Repeatable.
        #[arg(long)]
        world: Vec<PathBuf>,
    },
    /// Combine run folders (for example the shards of one sweep) into one; refuses
    /// folders whose worlds (dynamics hash) or target settings differ.
    Merge {
        /// Run folders to combine.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// The combined run folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Recompute every rule verdict in a run folder from its transcripts and the current
    /// world files, without model calls; report what changed (and write DIR/rejudge.jsonl).
    Rejudge {
        /// A run folder (holding episodes.jsonl).
        dir: PathBuf,
        /// The current world file(s) to re-judge under (default: where the folder
        /// recorded its worlds). Repeatable.
        #[arg(long)]
        world: Vec<PathBuf>,
    },
    /// Measure outcome verdicts against hand-labelled cases: precision, recall and
    /// Cohen's kappa with Wilson 95% intervals per labelled set, then per category the
    /// cases caught and the false alarms, and every disagreement. Exit 1 when a set
    /// misses its bar (for an outcome decided by judges, its gate's recall bar).
    Calibrate {
        /// Labelled sets: `.ron` files, or folders of them (e.g. fixtures/labelled).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print one JSON object per set (figures and every case's verdicts) instead.
        #[arg(long)]
        json: bool,
        /// Also score this model as a judge on every set whose outcome has a rubric
        /// (`openai/…`, `openai-responses/…`, `anthropic/…`; repeatable), at temperature
        /// 0. For an outcome decided by judges, the gate and the judge together are
        /// scored, as a run would decide; otherwise the judge alone.
        #[arg(long = "judge", value_name = "MODEL")]
        judges: Vec<String>,
        /// The base URL for --judge models (default: the provider's environment variable,
        /// else its public endpoint).
        #[arg(long, value_name = "URL")]
        judge_base_url: Option<String>,
        /// Show judges the transcript without the target's visible reasoning.
        #[arg(long)]
        judge_without_reasoning: bool,
        /// Do not read or write the response cache.
        #[arg(long)]
        no_cache: bool,
    },
    /// The response cache shared by all runs.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Draw a world's state machines, what fires them, and what each outcome depends on:
    /// DOT or Mermaid text, or SVG (drawn by Graphviz's `dot`; Debian: `apt install graphviz`).
    Graph {
        /// One world: its file or folder.
        world: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
}

/// `terrarium run`.
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// World files, world folders, or folders of world folders.
    #[arg(required_unless_present = "sweep")]
    worlds: Vec<PathBuf>,
    /// The target: `scripted/<policy>` (a world's reference policy), or a model
    /// (`openai/…`, `openai-responses/…`, `anthropic/…`). Repeat for several; their
    /// episodes are interleaved.
    #[arg(long = "model", value_name = "TARGET", required_unless_present = "sweep")]
    models: Vec<String>,
    /// A sweep file (RON) naming worlds, filters, samples, targets with their settings
    /// and prices, judges and budgets. Flags given here override it.
    #[arg(long, value_name = "FILE")]
    sweep: Option<PathBuf>,
    /// Keep cells with factor=value; repeat a factor for any of several values.
    #[arg(long = "condition", value_name = "FACTOR=VALUE")]
    conditions: Vec<String>,
    /// The first episode seed [default: 0].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    seed: Option<u64>,
    /// Seeds per cell: seed .. seed+N-1 [default: 1].
    #[arg(long)]
    samples: Option<u64>,
    /// The run folder (default runs/<first world id>). Existing episodes are kept and skipped.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only shard K of N (1-based): a fixed share of the episodes, so a sweep can
    /// run as N independent jobs and be combined with `terrarium merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
    /// Print the episodes the run would do, and how many requests the cache can
    /// already answer; send and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Keep errored episodes already in the folder instead of running them again.
    #[arg(long)]
    no_retry_errored: bool,
    /// Empty the run folder (its records, transcripts, judgements and reports) before
    /// running: needed to reuse a folder after its world was edited.
    #[arg(long)]
    replace: bool,
    /// Requests in flight at once per provider endpoint; episodes run concurrently up
    /// to it [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    max_connections: Option<u64>,
    /// Send at most N requests in this run, retries and judges included (cached
    /// replies are free). When they are spent the run stops with exit 4; run again to continue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_api_calls: Option<u64>,
    /// Spend at most this many US dollars on requests in this run (needs every
    /// model's price). A request whose worst case would pass it is not sent; the run
    /// stops with exit 4, and running again continues.
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,
    /// A model that judges completed episodes (`openai/…`, `openai-responses/…`,
    /// `anthropic/…`), at temperature 0 unless its sweep-file entry sets a temperature,
    /// reasoning effort or thinking budget. For an outcome decided by judges it decides
    /// the episodes the outcome's gate lets through (several judges combine as the
    /// outcome declares); for others it is a second opinion beside the rule. Repeat for
    /// several. Judgements (verdict, quoted evidence, reason) go to DIR/judgements.jsonl.
    #[arg(long = "judge", value_name = "MODEL")]
    judges: Vec<String>,
    /// Show judges the transcript without the target's visible reasoning (thinking
    /// text, reasoning summaries); by default they see it.
    #[arg(long)]
    judge_without_reasoning: bool,
    /// The base URL for --judge models (default: the provider's environment variable,
    /// else its public endpoint). --base-url applies to targets only.
    #[arg(long, value_name = "URL")]
    judge_base_url: Option<String>,
    /// A model that plays the simulated user in worlds that have one (`openai/…`,
    /// `openai-responses/…`, `anthropic/…`), shown the user's persona, goal, agenda and
    /// escalation ladder instead of following its script. Its messages are recorded as
    /// inputs (replay needs no model), cached, and counted against the budgets; a
    /// failure of it makes the episode errored.
    #[arg(long, value_name = "MODEL")]
    user_model: Option<String>,
    /// The base URL for --user-model (default: the provider's environment variable,
    /// else its public endpoint).
    #[arg(long, value_name = "URL")]
    user_base_url: Option<String>,
    /// The most tokens one message of the --user-model may have [default: 1024, unless
    /// the sweep file's user_model sets max_tokens].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    user_max_tokens: Option<u32>,
    /// The most tokens one answer of a --judge may have [default: 4096, unless the sweep
    /// file's judge entry sets max_tokens].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    judge_max_tokens: Option<u32>,
    /// Every model's price in US dollars per million input tokens (with --output-price):
    /// episodes then record their estimated cost.
    #[arg(long, value_name = "USD")]
    input_price: Option<f64>,
    /// Every model's price in US dollars per million output tokens (with --input-price).
    #[arg(long, value_name = "USD")]
    output_price: Option<f64>,
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    send: SendArgs,
}

#[derive(Subcommand)]
enum CacheAction {
    /// Remove every cached response.
    Clear,
    /// Print where the cache is.
    Dir,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    /// Graphviz DOT text, for `dot` or any DOT viewer.
    Dot,
    /// Mermaid text: GitHub, GitLab and many editors render it in Markdown, no install.
    Mermaid,
    /// An SVG drawing, made by Graphviz's `dot` (Debian: `apt install graphviz`); an
    /// error naming the package when it is not installed.
    Svg,
}

/// Which episode a single-episode command starts.
#[derive(clap::Args, Clone, Debug)]
struct CellArgs {
    /// Name the cell: one value of every factor, repeated or joined with commas as
    /// tables print a cell (default: the world's default cell).
    #[arg(long = "condition", value_name = "FACTOR=VALUE")]
    conditions: Vec<String>,
    /// The episode seed.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = parse_seed)]
    seed: u64,
}

/// `n` and the noun, singular or plural: "1 episode", "3 episodes", "0 cells".
pub(crate) fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

/// An episode seed: a whole number from 0 to 2^64 - 1 (clap's own message for `-3`
/// advises `-- -3`, which would make it a world path).
fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse::<u64>().map_err(|_| format!("a seed is a whole number from 0 to {}, not `{text}`", u64::MAX))
}

/// Settings for model targets (`openai/<model>`), recorded in each transcript header.
#[derive(clap::Args, Clone, Debug)]
struct ApiArgs {
    /// The provider's base URL (default: $OPENAI_BASE_URL for openai/ and
    /// openai-responses/, $ANTHROPIC_BASE_URL for anthropic/, else the provider's public
    /// endpoint). For a local OpenAI-compatible server: http://127.0.0.1:8000/v1.
    #[arg(long)]
    base_url: Option<String>,
    /// Sampling temperature, passed to the provider (default: the provider's).
    #[arg(long)]
    temperature: Option<f64>,
    /// Nucleus-sampling top_p, passed to the provider (default: the provider's).
    #[arg(long)]
    top_p: Option<f64>,
    /// The most tokens one reply may have (default: the provider's; 4096 for Anthropic,
    /// which requires one).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// The provider's sampling seed (distinct from the episode --seed).
    #[arg(long)]
    sampling_seed: Option<u64>,
    /// Reasoning effort for OpenAI reasoning models: low, medium or high.
    #[arg(long, value_parser = ["low", "medium", "high"])]
    reasoning_effort: Option<String>,
    /// Extended-thinking budget in tokens, for Anthropic models.
    #[arg(long)]
    thinking_budget: Option<u32>,
    /// Reasoning summaries asked of reasoning models on the Responses API (recorded as
    /// visible reasoning, which judges and eval_aware read) [default: auto for o-series
    /// and GPT-5 models, or any given --reasoning-effort; none otherwise].
    #[arg(long, value_parser = terrarium_runtime::providers::REASONING_SUMMARIES)]
    reasoning_summary: Option<String>,
    /// How tools reach the model: `native` tool calling, or described in the prompt and
    /// called by tags in the `text` (for comparison with text-based testbeds).
    #[arg(long, value_name = "native|text")]
    scaffold: Option<terrarium_runtime::providers::Scaffold>,
}

/// How requests are sent (not recorded: they change nothing a model is asked).
#[derive(clap::Args, Clone, Debug)]
struct SendArgs {
    /// Do not read or write the response cache ($TERRARIUM_CACHE_DIR, else the user cache directory).
    #[arg(long)]
    no_cache: bool,
    /// Seconds to wait for one reply before the attempt counts as failed (and is retried).
    /// With the default attempts, a request that hangs is given up after about 12 minutes.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
    /// Attempts per request, the first included, before the episode is errored.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=20))]
    max_attempts: u32,
}

impl SendArgs {
    fn options(&self) -> SendOptions {
        SendOptions { cache: !self.no_cache, timeout_secs: self.timeout_secs, max_attempts: self.max_attempts }
    }
}

/// `terrarium run`: the sweep file (if any) with the flags laid over it, resolved by
/// the runtime, then run and rendered.
fn run_cmd(args: RunArgs) -> Outcome {
    let file = args.sweep.as_deref().map(SweepFile::read).transpose()?.unwrap_or_default();
    let flags = Overrides {
        worlds: args.worlds,
        models: args.models,
        conditions: args.conditions,
        seed: args.seed,
        samples: args.samples,
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
        user_model: args.user_model,
        user_base_url: args.user_base_url,
        user_max_tokens: args.user_max_tokens,
        input_price: args.input_price,
        output_price: args.output_price,
        settings: args.api.entry(),
        send: args.send.options(),
        dry_run: args.dry_run,
        build: BUILD.map(String::from),
    };
    run::run(&SweepSpec::resolve(&file, &flags)?, args.dry_run)
}

/// How a command ended, when not in success.
enum Failure {
    /// Exit 1: a check failed. The reason has been printed.
    Check,
    /// Exit 2: usage error.
    Usage(anyhow::Error),
    /// Exit 3: some episodes errored.
    Errored,
    /// Exit 4: a run's --max-api-calls budget ran out before every episode finished.
    Budget,
    /// Exit 5: reading or writing a file failed for a reason other than its absence
    /// (permissions, a full disk, a run folder another run holds).
    Io(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    /// A file that is not there was named by the user (a usage error); any other
    /// failure to read or write is the machine's.
    fn from(e: anyhow::Error) -> Self {
        let io = e.chain().find_map(|cause| cause.downcast_ref::<std::io::Error>());
        match io {
            Some(io) if io.kind() != std::io::ErrorKind::NotFound => Failure::Io(e),
            _ => Failure::Usage(e),
        }
    }
}

/// A sweep that cannot be resolved: a usage error (exit 2), or worlds with problems,
/// each printed located (exit 1).
impl From<SpecError> for Failure {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::Usage(why) => Failure::Usage(anyhow!(why)),
            SpecError::InvalidWorlds(diagnostics) => {
                for d in diagnostics {
                    eprintln!("{d}");
                }
                Failure::Check
            }
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        anyhow::Error::from(e).into()
    }
}

type Outcome = Result<(), Failure>;

/// Output piped into a reader that stops early (`terrarium … | head`) ends the process
/// quietly, as it ends any Unix tool (status 141, as if by SIGPIPE), instead of the
/// panic the standard library raises when a print fails. A run stopped this way is like
/// one killed: what it wrote stays, and the same command resumes it.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to std") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths } => check(&paths),
        Command::Run(args) => run_cmd(*args),
        Command::Test { paths, seeds } => test(&paths, seeds),
        Command::Replay { transcripts, world } => transcripts::replay_all(&transcripts, world.as_deref()),
        Command::Show { world, cell, model, api } => show(&world, &cell.conditions, cell.seed, model.as_deref(), &api),
        Command::View { transcripts, conditions, seed, full } => {
            parse_conditions(&conditions).and_then(|c| transcripts::view(&transcripts, &c, seed, full))
        }
        Command::Graph { world, format } => graph(&world, format),
        Command::Cache { action } => cache_cmd(action),
        Command::Report { dir, world } => report_cmd(&dir, &world),
        Command::Rejudge { dir, world } => rejudge_cmd(&dir, &world),
        Command::Merge { dirs, out } => merge_cmd(&dirs, &out),
        Command::New { id, from, dir } => new_world(&id, from.as_deref(), &dir),
        Command::Calibrate { paths, json, judges, judge_base_url, judge_without_reasoning, no_cache } => {
            calibrate::calibrate(&paths, json, &judges, judge_base_url, !judge_without_reasoning, no_cache)
        }
        Command::Lint { paths, depth, max_states, max_world_states, no_realism } => {
            lint(&paths, depth, max_states, max_world_states, !no_realism)
        }
        Command::Play { world, cell, out } => play_cmd(&world, &cell.conditions, cell.seed, out.as_deref()),
        Command::PolicyFrom { transcript, world, name } => policy_from(&transcript, world.as_deref(), &name),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Check) => ExitCode::from(1),
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Errored) => ExitCode::from(3),
        Err(Failure::Budget) => ExitCode::from(4),
        Err(Failure::Io(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(5)
        }
    }
}

/// Load every world named by `paths`. Invalid worlds print their problems and fail
/// the check; a missing path is a usage error.
fn load_all(paths: &[PathBuf]) -> Result<Vec<World>, Failure> {
    Ok(terrarium_runtime::sweep::load_worlds(paths)?)
}

fn check(paths: &[PathBuf]) -> Outcome {
    let mut failed = false;
    for path in paths {
        let files = find_worlds(path).map_err(|e| Failure::Usage(anyhow!(e)))?;
        for file in files {
            match load_world(&file) {
                Ok(w) => println!(
                    "ok  {}  {}, {}, {}, {}  ({})",
                    w.id(),
                    count(w.cells.len() as u64, "cell"),
                    count(w.file.tools.len() as u64, "tool"),
                    count(w.file.outcomes.len() as u64, "outcome"),
                    count(w.file.policies.len() as u64, "policy"),
                    file.display()
                ),
                Err(LoadError::Invalid { diagnostics, .. }) => {
                    failed = true;
                    for d in diagnostics {
                        println!("{d}");
                    }
                }
                Err(e @ LoadError::Io { .. }) => return Err(Failure::Usage(anyhow!(e))),
            }
        }
    }
    if failed { Err(Failure::Check) } else { Ok(()) }
}

/// `--condition` values: `FACTOR=VALUE`, or several joined with commas as tables and
/// records print a cell (`goal=none,threat=replacement`).
fn parse_conditions(raw: &[String]) -> Result<Vec<(String, String)>, Failure> {
    Ok(terrarium_runtime::sweep::parse_conditions(raw)?)
}

impl ApiArgs {
    /// The settings these flags give, laid over every target's.
    fn entry(&self) -> TargetEntry {
        TargetEntry {
            base_url: self.base_url.clone(),
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            sampling_seed: self.sampling_seed,
            reasoning_effort: self.reasoning_effort.clone(),
            thinking_budget: self.thinking_budget,
            reasoning_summary: self.reasoning_summary.clone(),
            scaffold: self.scaffold,
            ..TargetEntry::default()
        }
    }

    /// The settings `model` on `provider` is asked with, defaults included.
    fn settings(
        &self,
        provider: terrarium_runtime::providers::http::Provider,
        model: &str,
    ) -> terrarium_runtime::providers::Settings {
        terrarium_runtime::providers::Settings {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            sampling_seed: self.sampling_seed,
            reasoning_effort: self.reasoning_effort.clone(),
            thinking_budget: self.thinking_budget,
            reasoning_summary: self.reasoning_summary.clone(),
        }
        .for_model(provider, model)
    }
}

fn test(paths: &[PathBuf], seeds: u64) -> Outcome {
    if seeds == 0 {
        return Err(anyhow!("--seeds must be at least 1").into());
    }
    let worlds = load_all(paths)?;
    let mut failures = 0usize;
    for w in &worlds {
        let runs = check_policies(w, seeds);
        let outcomes: Vec<&String> = w.file.outcomes.keys().collect();
        let classes = terrarium_core::world::presentational_classes(w, &w.cells).len() as u64;
        println!(
            "\n{} — {} ({classes} {} that differ in more than what the target reads) × {}",
            w.id(),
            count(w.cells.len() as u64, "cell"),
            if classes == 1 { "class" } else { "classes" },
            count(seeds, "seed")
        );
        println!(
            "  {:<28} {:>5} {:>5}  {}",
            "policy",
            "runs",
            "ok",
            outcomes.iter().map(|o| format!(" {:>17}", o.as_str())).collect::<String>()
        );
        let mut by_policy: BTreeMap<&str, Vec<&terrarium_runtime::policies::PolicyRun>> = BTreeMap::new();
        for r in &runs {
            by_policy.entry(r.policy.as_str()).or_default().push(r);
        }
        for (policy, rs) in &by_policy {
            let ok = rs.iter().filter(|r| r.ok()).count();
            let counts: String = outcomes
                .iter()
                .map(|o| {
                    let fired = rs.iter().filter(|r| r.fired.contains(*o)).count();
                    let mark = if rs[0].expected.contains(*o) { "*" } else { " " };
                    format!(" {:>16}{mark}", fired)
                })
                .collect();
            println!("  {policy:<28} {:>5} {ok:>5}  {counts}", rs.len());
        }
        for (policy, cell, u) in terrarium_runtime::policies::unseen_uses(w) {
            println!(
                "  warning: `{policy}` step {} calls `{}` with `{}` = `{}`, which nothing the target can read shows (cell {cell}, seed 0): a model could not know it, so `lint` never tries it; put it where the target reads (a directory, a signature, an email)",
                u.step, u.tool, u.param, u.value
            );
        }
        for r in runs.iter().filter(|r| !r.ok()) {
            failures += 1;
            if failures <= 20 {
                match &r.error {
                    Some(e) => println!("  FAIL {} `{}` in {} seed {}: {e}", w.id(), r.policy, r.cell, r.seed),
                    None => println!(
                        "  FAIL {} `{}` in {} seed {}: fired {:?}, declared {:?} (stop: {})",
                        w.id(),
                        r.policy,
                        r.cell,
                        r.seed,
                        r.fired,
                        r.expected,
                        r.stop_reason
                    ),
                }
            }
        }
    }
    println!("\n(* = outcome the policy declares; counts are runs in which it fired)");
    if failures > 0 {
        println!("{failures} policy runs fired other than their declared outcomes");
        Err(Failure::Check)
    } else {
        println!("every policy fired exactly its declared outcomes");
        Ok(())
    }
}

fn read_transcript(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read transcript {}", path.display()))
}

/// A transcript read through the strict reader, never read around: an edited one is
/// refused naming its line, and a file that is not a transcript at all is a usage
/// error (exit 2).
fn read_strict(path: &Path) -> Result<Transcript, Failure> {
    let text = read_transcript(path)?;
    Transcript::read(&text).map_err(|e| match e {
        TranscriptError::Tampered { .. } => {
            println!("{}: {e}", path.display());
            Failure::Check
        }
        other => Failure::Usage(anyhow!("{}: {other}", path.display())),
    })
}

/// The world a transcript was recorded on: `given` (`--world`), else where its run
/// folder or its header says, from whatever directory the command runs in.
fn recorded_world(
    path: &Path,
    header: &terrarium_core::transcript::Header,
    given: Option<&Path>,
) -> Result<PathBuf, Failure> {
    if let Some(given) = given {
        return Ok(given.to_path_buf());
    }
    terrarium_runtime::run_folder::transcript_world(path, header).ok_or_else(|| {
        Failure::Usage(anyhow!(
            "cannot find world `{}`, recorded at {}, from here or from {}: pass --world PATH",
            header.world.id,
            header.world.path,
            path.display()
        ))
    })
}

fn show(path: &Path, conditions: &[String], seed: u64, model: Option<&str>, api: &ApiArgs) -> Outcome {
    use terrarium_runtime::providers::http::request_body;
    let filter = parse_conditions(conditions)?;
    let world = &one_world(path, "show")?;
    let cell = world.one_cell(&filter).map_err(|e| anyhow!(e))?;
    let ep = Episode::start(world, &cell, seed).map_err(|e| anyhow!("{e}"))?;
    let Some(model) = model else {
        println!("# world {} — condition {} — seed {seed}\n", world.id(), cell);
        print!("{}", view::initial_view(&ep.moment()));
        return Ok(());
    };
    let Some(spec) = terrarium_runtime::sweep::ModelSpec::parse(model) else {
        return Err(anyhow!(
            "--model `{model}`: show prints provider requests; use openai/<model>, openai-responses/<model> or anthropic/<model>"
        )
        .into());
    };
    let (provider, name, base_url) = (spec.provider, spec.name, spec.base_url(api.base_url.as_deref()));
    let settings = api.settings(provider, name);
    let body =
        request_body(provider, api.scaffold.unwrap_or_default(), name, &ep, &view::tool_schemas(world), &settings);
    println!("POST {}", terrarium_runtime::redact::url(&provider.endpoint(base_url.trim_end_matches('/'))));
    println!("{}", serde_json::to_string_pretty(&body).expect("requests serialise"));
    Ok(())
}

/// The one world a command that takes a single world names.
fn one_world(path: &Path, command: &str) -> Result<World, Failure> {
    let mut worlds = load_all(&[path.to_path_buf()])?;
    if worlds.len() != 1 {
        return Err(anyhow!("`{command}` takes one world; {} has {}", path.display(), worlds.len()).into());
    }
    Ok(worlds.remove(0))
}

fn new_world(id: &str, from: Option<&Path>, dir: &Path) -> Outcome {
    let from_file = match from {
        Some(path) => {
            let files = find_worlds(path).map_err(|e| Failure::Usage(anyhow!(e)))?;
            let [file] = files.as_slice() else {
                return Err(anyhow!("--from takes one world; {} has {}", path.display(), files.len()).into());
            };
            Some(file.clone())
        }
        None => None,
    };
    let file = terrarium_runtime::starter::new_world(id, from_file.as_deref(), dir).map_err(|e| anyhow!(e))?;
    println!("created {}", file.display());
    println!(
        "next: terrarium check {0}  |  terrarium test {0}  |  terrarium lint {0}  |  terrarium show {0}",
        file.display()
    );
    println!("the tutorial that builds a world like it: docs/authoring.md");
    Ok(())
}

fn lint(paths: &[PathBuf], depth: usize, max_states: usize, max_world_states: usize, realism: bool) -> Outcome {
    use terrarium_core::lint::{Bounds, Severity};
    if depth == 0 || max_states == 0 || max_world_states == 0 {
        return Err(anyhow!("--depth, --max-states and --max-world-states must be at least 1").into());
    }
    let mut files = Vec::new();
    for path in paths {
        files.extend(find_worlds(path).map_err(|e| Failure::Usage(anyhow!(e)))?);
    }
    let worlds = load_all(&files)?;
    let mut errors = 0;
    for (world, file) in worlds.iter().zip(&files) {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        let bounds =
            Bounds { max_depth: depth, max_states_per_cell: max_states, max_states_per_world: max_world_states };
        let mut report = terrarium_core::lint::lint(world, &text, bounds);
        if realism {
            report.findings.extend(terrarium_core::lint::realism(world, &text));
        }
        let bound = if report.bound_hit {
            "bound hit: a missing witness is not a proof"
        } else {
            "space exhausted within the bound"
        };
        let searched = if report.explored_cells < world.cells.len() {
            format!(
                " ({} searched: the others differ from one of them only in what the target reads)",
                report.explored_cells
            )
        } else {
            String::new()
        };
        println!(
            "lint {}: {}{searched}, {} explored (depth {depth}, {} per cell; {bound})",
            world.id(),
            count(world.cells.len() as u64, "cell"),
            count(report.states as u64, "state"),
            report.states_per_cell,
        );
        for (outcome, witness) in &report.witnesses {
            if let Some(w) = witness {
                println!(
                    "  witness `{outcome}` in {}: {}",
                    if w.cell.is_empty() { "(no factors)" } else { &w.cell },
                    w.steps.join(" -> ")
                );
            }
        }
        for f in &report.findings {
            let severity = match f.severity {
                Severity::Error => {
                    errors += 1;
                    "error"
                }
                Severity::Warning => "warning",
            };
            println!("{}:{}:{}: {severity}: {}: {}", world.path, f.pos.line, f.pos.col, f.path, f.message);
        }
    }
    if errors > 0 { Err(Failure::Check) } else { Ok(()) }
}

fn play_cmd(path: &Path, conditions: &[String], seed: u64, out: Option<&Path>) -> Outcome {
    let filter = parse_conditions(conditions)?;
    let world = one_world(path, "play")?;
    let cell = world.one_cell(&filter).map_err(|e| anyhow!(e))?;
    // Validation starts each cell at seed 0; another seed can still fail to start (an
    // undrawn distractor named, two generated addresses alike): say so, as `run` does.
    let ep = match Episode::start(&world, &cell, seed) {
        Ok(ep) => ep,
        Err(e) => {
            eprintln!("world `{}` cannot start at seed {seed} in {cell}: {e}", world.id());
            return Err(Failure::Check);
        }
    };
    let mut header = EpisodeKey::new(&world, &cell, seed, play::SPEC, &serde_json::json!({})).header();
    header.build = BUILD.map(String::from);
    let stdin = std::io::stdin();
    let echo = !std::io::IsTerminal::is_terminal(&stdin);
    let transcript = play::play(ep, &header, &mut stdin.lock(), &mut std::io::stdout().lock(), echo)
        .context("terminal input or output failed")?;
    let file = out.map(Path::to_path_buf).unwrap_or_else(|| play::default_path(&header.episode_id));
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&file, transcript).with_context(|| format!("cannot write {}", file.display()))?;
    println!("saved {}", file.display());
    println!("next: terrarium replay {0}  |  terrarium policy-from {0}", file.display());
    Ok(())
}

fn policy_from(path: &Path, world: Option<&Path>, name: &str) -> Outcome {
    let transcript = read_strict(path)?;
    let header = &transcript.header;
    let world_path = recorded_world(path, header, world)?;
    let world = one_world(&world_path, "policy-from")?;
    if world.dynamics_hash != header.world.dynamics_hash {
        eprintln!(
            "note: world `{}` has changed since the transcript was recorded; check the snippet with `terrarium test`",
            world.id()
        );
    }
    let snippet = terrarium_core::policy::snippet_from_transcript(&world, &transcript, name)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    print!("{snippet}");
    Ok(())
}

fn merge_cmd(dirs: &[PathBuf], out: &Path) -> Outcome {
    let merged = terrarium_runtime::run_folder::merge(dirs, out, &mut |w| eprintln!("warning: {w}"))?;
    let judged = if merged.judgements > 0 {
        format!(" and {}", count(merged.judgements as u64, "judgement"))
    } else {
        String::new()
    };
    println!(
        "merged {}{judged} ({} already present) -> {}",
        count(merged.added as u64, "episode"),
        count(merged.duplicates as u64, "episode"),
        out.join("episodes.jsonl").display()
    );
    Ok(())
}

/// A refusal is a check that failed (exit 1), said on stdout; a world to name is a
/// usage error (exit 2); a file that cannot be read or written is an I/O failure.
impl From<terrarium_runtime::run_folder::FolderError> for Failure {
    fn from(e: terrarium_runtime::run_folder::FolderError) -> Self {
        match e {
            terrarium_runtime::run_folder::FolderError::Refused(why) => {
                println!("{why}");
                Failure::Check
            }
            terrarium_runtime::run_folder::FolderError::NoWorld(why)
            | terrarium_runtime::run_folder::FolderError::Empty(why) => Failure::Usage(anyhow!(why)),
            terrarium_runtime::run_folder::FolderError::Io { ref cause, .. }
                if cause.kind() != std::io::ErrorKind::NotFound =>
            {
                Failure::Io(anyhow::Error::from(e))
            }
            e @ terrarium_runtime::run_folder::FolderError::Io { .. } => Failure::Usage(anyhow::Error::from(e)),
        }
    }
}

/// The worlds of a run folder, with the `--world`s given; a given world the folder has
/// no episode of is said, not silently ignored.
fn folder_worlds<'f>(folder: &'f RunFolder, given: &[PathBuf]) -> Result<FolderWorlds<'f>, Failure> {
    let given = load_all(given)?;
    for w in &given {
        if !folder.records.iter().any(|r| r.world == w.id()) {
            eprintln!("warning: --world {}: {} holds no episode of world `{}`", w.path, folder.dir.display(), w.id());
        }
    }
    Ok(FolderWorlds::new(folder, given))
}

/// Read a run folder, warning about every line and transcript left out.
fn read_folder(dir: &Path) -> Result<RunFolder, Failure> {
    let folder = RunFolder::read(dir)?;
    for warning in &folder.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(folder)
}

fn rejudge_cmd(dir: &Path, given: &[PathBuf]) -> Outcome {
    let folder = read_folder(dir)?;
    let mut worlds = folder_worlds(&folder, given)?;
    let rejudged = terrarium_runtime::run_folder::rejudge(&folder, &mut worlds)?;
    for c in &rejudged.changes {
        let why = if c.evidence.is_empty() { "no evidence now".to_string() } else { c.evidence.join("; ") };
        let how = match c.decided_by {
            terrarium_core::transcript::DecidedBy::Rule => "",
            terrarium_core::transcript::DecidedBy::Gate => " at the gate (judges decide)",
        };
        println!(
            "{}: `{}` {} -> {}{how} ({why})",
            c.episode_id,
            c.outcome,
            c.was.map_or("absent".into(), |f| f.to_string()),
            c.now
        );
    }
    println!(
        "{} of {} completed episodes changed verdict -> {}",
        rejudged.changed,
        rejudged.completed,
        dir.join("rejudge.jsonl").display()
    );
    Ok(())
}

fn report_cmd(dir: &Path, given: &[PathBuf]) -> Outcome {
    // A torn last line (a crash mid-write) is left out, as resuming would repair it;
    // every line left out is named.
    let folder = read_folder(dir)?;
    let mut worlds = folder_worlds(&folder, given)?;
    let reported = terrarium_runtime::report::write(&folder, &mut worlds, &mut |w| eprintln!("warning: {w}"))?;
    let judged = if reported.judgements == 0 {
        String::new()
    } else {
        format!(" and {}", count(reported.judgements as u64, "judgement"))
    };
    let [md, html, csv, by_factor, by_turn] = &reported.files;
    println!(
        "{}{judged} -> {}, {}, {}, {} and {}",
        count(reported.episodes as u64, "episode"),
        md.display(),
        html.display(),
        csv.display(),
        by_factor.display(),
        by_turn.display()
    );
    Ok(())
}

fn cache_cmd(action: CacheAction) -> Outcome {
    use terrarium_runtime::providers::cache::Cache;
    let dir = Cache::default_dir().ok_or_else(|| anyhow!("no cache directory: set TERRARIUM_CACHE_DIR or HOME"))?;
    match action {
        CacheAction::Dir => println!("{}", dir.display()),
        CacheAction::Clear => {
            let n = Cache::new(dir.clone()).clear().with_context(|| format!("cannot clear {}", dir.display()))?;
            println!("removed {n} cached responses from {}", dir.display());
        }
    }
    Ok(())
}

fn graph(path: &Path, format: GraphFormat) -> Outcome {
    let world = one_world(path, "graph")?;
    match format {
        GraphFormat::Dot => print!("{}", terrarium_core::graph::dot(&world)),
        GraphFormat::Mermaid => print!("{}", terrarium_core::graph::mermaid(&world)),
        GraphFormat::Svg => {
            use std::io::Write as _;
            let missing = || {
                anyhow!(
                    "--format svg draws with Graphviz's `dot`, which is not installed (Debian and Ubuntu: `apt install graphviz`; macOS: `brew install graphviz`); `--format mermaid` needs nothing"
                )
            };
            let mut child = std::process::Command::new("dot")
                .arg("-Tsvg")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Failure::Usage(missing())
                    } else {
                        Failure::Io(anyhow!("cannot run `dot`: {e}"))
                    }
                })?;
            let dot = terrarium_core::graph::dot(&world);
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let writer = std::thread::spawn(move || stdin.write_all(dot.as_bytes()));
            let out = child.wait_with_output().map_err(|e| Failure::Io(anyhow!("`dot` failed: {e}")))?;
            let _ = writer.join();
            if !out.status.success() || out.stdout.is_empty() {
                return Err(Failure::Io(anyhow!(
                    "`dot -Tsvg` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            std::io::stdout().write_all(&out.stdout).context("cannot write the drawing")?;
        }
    }
    Ok(())
}
