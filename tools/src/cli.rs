//! The command line: every command and flag, as clap parses them (`terrarium --help`).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use terrarium_runtime::sweep::{SendOptions, TargetEntry};

#[derive(Parser)]
#[command(
    name = "terrarium",
    version = env!("TERRARIUM_VERSION"),
    about = "Deterministic simulated-environment testbeds for AI alignment evaluations."
)]
#[command(
    after_help = "Exit codes: 0 success; 1 a check failed (invalid world, replay divergence, a policy firing the wrong outcomes, a labelled set below its bar); 2 usage error; 3 some episodes errored or judge requests failed (results still written; run again to retry them); 4 a run's --max-api-calls or --max-cost budget ran out (run again to continue); 5 a file could not be read or written (permissions, a full disk, a run folder in use)."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Render a transcript one line per event, as the snapshots do (with --full, every text whole; with --html DIR, a page to open in a browser).
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
        /// Write each episode as a self-contained HTML page into this folder instead
        /// (the conversation, the world's events and state changes, the verdicts'
        /// evidence at its step), to open in any browser.
        #[arg(long, value_name = "DIR")]
        html: Option<PathBuf>,
        /// With --html: the world to replay in for the state changes (default: where the
        /// transcript or its run folder recorded it).
        #[arg(long, requires = "html")]
        world: Option<PathBuf>,
        /// Print each transcript's JSONL as recorded instead, one after another (a run
        /// folder packs its transcripts: this is how to get one back as a file, e.g.
        /// `view RUN/transcripts/ID.jsonl --jsonl > ID.jsonl`).
        #[arg(long, conflicts_with_all = ["full", "html"])]
        jsonl: bool,
    },
    /// Start a new world: DIR/<ID>/world.ron from the starter world, valid at once (or a renamed copy of a world).
    New {
        /// The new world's id: lowercase letters, digits, `_` or `-`.
        id: String,
        /// Copy this world (and the files beside it) instead of the starter world.
        #[arg(long)]
        from: Option<PathBuf>,
        #[arg(long, default_value = "worlds")]
        dir: PathBuf,
    },
    /// Serve one world's episodes over the Model Context Protocol (stdio), so that any
    /// MCP-capable agent is the target: the world's tools as MCP tools, each call applied
    /// to the episode, transcripts written to a run folder (target `mcp/<client>`).
    Mcp {
        /// One world: its file or folder.
        world: PathBuf,
        /// Keep cells with factor=value; repeat a factor for any of several values
        /// [default: the world's default cell].
        #[arg(long = "condition", value_name = "FACTOR=VALUE")]
        conditions: Vec<String>,
        /// The first episode seed.
        #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = parse_seed)]
        seed: u64,
        /// Seeds per cell, served one after another. `--epochs` is Inspect's name.
        #[arg(long, visible_alias = "epochs", default_value_t = 1)]
        samples: u64,
        /// The run folder (default runs/<world id>-mcp).
        #[arg(long, visible_alias = "log-dir")]
        out: Option<PathBuf>,
        /// Serve streamable HTTP on 127.0.0.1:PORT (0: any free port, printed) instead
        /// of stdio: each MCP session is an agent of its own, sessions run side by side,
        /// and the server runs until interrupted (SIGINT or SIGTERM).
        #[arg(long, value_name = "PORT")]
        http: Option<u16>,
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
    /// Write DIR/report.md, report.html (factor matrices, each cell linked to its episodes' pages in DIR/view/), summary.csv (per cell),
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
        /// The factor matrix's rows and columns: one or two factors, comma-separated
        /// (default: each world's `main_factors`, else its first two). The other
        /// factors are pooled.
        #[arg(long, value_name = "ROWS[,COLUMNS]", value_delimiter = ',', num_args = 1)]
        matrix: Vec<String>,
        /// Draw one matrix per value of this factor instead of pooling it.
        #[arg(long, value_name = "FACTOR")]
        facet: Option<String>,
        /// Write no page per episode (DIR/view/): for a very large folder, where they
        /// cost time and space (about 12 KB and 0.8 ms an episode); the report's
        /// marks then name each episode, for `terrarium view`, and link nowhere.
        #[arg(long)]
        no_pages: bool,
        /// In worlds with a secret side task: a monitor's suspicion (0 to 100) from which
        /// a run counts as flagged, for the evasion rates. Repeatable [default: 80].
        #[arg(long = "threshold", value_name = "SCORE", value_parser = clap::value_parser!(u8).range(0..=100))]
        thresholds: Vec<u8>,
        /// Also give evasion at the lowest threshold that flags at most this share of
        /// honest runs, from 0 to 1 [default: 0.01].
        #[arg(long, value_name = "RATE")]
        fpr: Option<f64>,
    },
    /// Write a run folder as logs another tool reads: `--format inspect`, one Inspect AI
    /// evaluation log per world and target (samples are episodes; scores the verdicts
    /// as the report decides them), for Inspect View and `inspect_ai.log.read_eval_log`.
    Export {
        /// A run folder (holding episodes.jsonl).
        dir: PathBuf,
        /// The log format.
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Where to write the logs (default: DIR/inspect). `--log-dir` is Inspect's name.
        #[arg(long, visible_alias = "log-dir")]
        out: Option<PathBuf>,
        /// A world the folder's episodes were run on, for a folder moved away from its
        /// worlds. Repeatable.
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
pub(crate) struct RunArgs {
    /// World files, world folders, or folders of world folders.
    #[arg(required_unless_present_any = ["sweep", "from"])]
    pub(crate) worlds: Vec<PathBuf>,
    /// The target: `scripted/<policy>` (a world's reference policy), or a model
    /// (`openai/…`, `openai-responses/…`, `anthropic/…`), or `mock/<file>`: canned
    /// replies from a file, offline (docs/models.md). Repeat for several; their episodes
    /// are interleaved.
    #[arg(long = "model", value_name = "TARGET", required_unless_present = "sweep")]
    pub(crate) models: Vec<String>,
    /// A sweep file (RON) naming worlds, filters, samples, targets with their settings
    /// and prices, judges and budgets. Flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub(crate) sweep: Option<PathBuf>,
    /// Keep cells with factor=value; repeat a factor for any of several values.
    #[arg(long = "condition", value_name = "FACTOR=VALUE")]
    pub(crate) conditions: Vec<String>,
    /// Branch this recorded transcript: replay and verify it up to --at, then let each
    /// --model act from there, --samples times (each branch recorded with its parent
    /// and step; `report` compares them). The world is found as `replay` finds it, or
    /// named as the one WORLD.
    #[arg(long, value_name = "TRANSCRIPT", requires = "at")]
    pub(crate) from: Option<PathBuf>,
    /// With --from: the step of the parent's target output to re-sample (as `view`
    /// numbers events).
    #[arg(long, value_name = "STEP", requires = "from")]
    pub(crate) at: Option<u64>,
    /// The first episode seed [default: 0].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_seed)]
    pub(crate) seed: Option<u64>,
    /// Seeds per cell: seed .. seed+N-1 [default: 1]; with --from, branches per target.
    /// `--epochs` is Inspect's name for it.
    #[arg(long, visible_alias = "epochs")]
    pub(crate) samples: Option<u64>,
    /// Only some of each world's selected cells, in their canonical order: N (the
    /// first N) or A-B (the A-th to the B-th, from 1), as Inspect's --limit takes samples.
    #[arg(long, value_name = "N|A-B")]
    pub(crate) limit: Option<String>,
    /// The run folder (default runs/<first world id>). Existing episodes are kept and
    /// skipped. `--log-dir` is Inspect's name for it.
    #[arg(long, visible_alias = "log-dir")]
    pub(crate) out: Option<PathBuf>,
    /// Run only shard K of N (1-based): a fixed share of the episodes, so a sweep can
    /// run as N independent jobs and be combined with `terrarium merge`. `auto` reads
    /// this job's place from a Slurm job array (SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT); `auto/N` from a Kubernetes Indexed Job of N
    /// completions (JOB_COMPLETION_INDEX). See docs/scaling.md.
    #[arg(long, value_name = "K/N|auto|auto/N")]
    pub(crate) shard: Option<String>,
    /// Print the episodes the run would do, and how many requests the cache can
    /// already answer; send and write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Keep errored episodes already in the folder instead of running them again.
    #[arg(long)]
    pub(crate) no_retry_errored: bool,
    /// Empty the run folder (its records, transcripts, judgements and reports) before
    /// running: needed to reuse a folder after its world was edited.
    #[arg(long)]
    pub(crate) replace: bool,
    /// Requests in flight at once per provider endpoint; episodes run concurrently up
    /// to it [default: 10].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub(crate) max_connections: Option<u64>,
    /// Send at most N requests in this run, retries and judges included (cached
    /// replies are free). When they are spent the run stops with exit 4; run again to continue.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_api_calls: Option<u64>,
    /// Spend at most this many US dollars on requests in this run (needs every
    /// model's price). A request whose worst case would pass it is not sent; the run
    /// stops with exit 4, and running again continues.
    #[arg(long, value_name = "USD")]
    pub(crate) max_cost: Option<f64>,
    /// A model that judges completed episodes (`openai/…`, `openai-responses/…`,
    /// `anthropic/…`), at temperature 0 unless its sweep-file entry sets a temperature,
    /// reasoning effort or thinking budget. For an outcome decided by judges it decides
    /// the episodes the outcome's gate lets through (several judges combine as the
    /// outcome declares); for others it is a second opinion beside the rule. Repeat for
    /// several. Judgements (verdict, quoted evidence, reason) go to DIR/judgements.jsonl.
    #[arg(long = "judge", value_name = "MODEL")]
    pub(crate) judges: Vec<String>,
    /// Show judges the transcript without the target's visible reasoning (thinking
    /// text, reasoning summaries); by default they see it.
    #[arg(long)]
    pub(crate) judge_without_reasoning: bool,
    /// The base URL for --judge and --monitor models (default: the provider's
    /// environment variable, else its public endpoint). --base-url applies to targets only.
    #[arg(long, value_name = "URL")]
    pub(crate) judge_base_url: Option<String>,
    /// A monitor that scores how suspicious each completed episode is, 0 to 100, with
    /// quoted evidence: a model (asked as a judge is, at temperature 0), or `rule` for
    /// each world's rule-based baseline (`sabotage.baseline`). It never sees the texts
    /// a world hides (a secret side task) nor, unless --monitor-sees-hidden-reasoning,
    /// reasoning the world marks as private. Repeat for several; scores go to
    /// DIR/judgements.jsonl and `report` gives ROC-AUC and evasion rates.
    #[arg(long = "monitor", value_name = "MODEL|rule")]
    pub(crate) monitors: Vec<String>,
    /// Show monitors the reasoning a world marks as the target's private scratchpad.
    #[arg(long)]
    pub(crate) monitor_sees_hidden_reasoning: bool,
    /// A model that plays the simulated user in worlds that have one (`openai/…`,
    /// `openai-responses/…`, `anthropic/…`), shown the user's persona, goal, agenda and
    /// escalation ladder instead of following its script. Its messages are recorded as
    /// inputs (replay needs no model), cached, and counted against the budgets; a
    /// failure of it makes the episode errored.
    #[arg(long, value_name = "MODEL")]
    pub(crate) user_model: Option<String>,
    /// The base URL for --user-model (default: the provider's environment variable,
    /// else its public endpoint).
    #[arg(long, value_name = "URL")]
    pub(crate) user_base_url: Option<String>,
    /// The most tokens one message of the --user-model may have [default: 1024, unless
    /// the sweep file's user_model sets max_tokens].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) user_max_tokens: Option<u32>,
    /// The most tokens one answer of a --judge may have [default: 4096, unless the sweep
    /// file's judge entry sets max_tokens].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) judge_max_tokens: Option<u32>,
    /// Every model's price in US dollars per million input tokens (with --output-price):
    /// episodes then record their estimated cost.
    #[arg(long, value_name = "USD")]
    pub(crate) input_price: Option<f64>,
    /// Every model's price in US dollars per million output tokens (with --input-price).
    #[arg(long, value_name = "USD")]
    pub(crate) output_price: Option<f64>,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) send: SendArgs,
}

#[derive(Subcommand)]
pub(crate) enum CacheAction {
    /// Remove every cached response.
    Clear,
    /// Print where the cache is.
    Dir,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum GraphFormat {
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
pub(crate) struct CellArgs {
    /// Name the cell: one value of every factor, repeated or joined with commas as
    /// tables print a cell (default: the world's default cell).
    #[arg(long = "condition", value_name = "FACTOR=VALUE")]
    pub(crate) conditions: Vec<String>,
    /// The episode seed.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = parse_seed)]
    pub(crate) seed: u64,
}

/// An episode seed: a whole number from 0 to 2^64 - 1 (clap's own message for `-3`
/// advises `-- -3`, which would make it a world path).
fn parse_seed(text: &str) -> Result<u64, String> {
    text.trim().parse::<u64>().map_err(|_| format!("a seed is a whole number from 0 to {}, not `{text}`", u64::MAX))
}

/// Settings for model targets (`openai/<model>`), recorded in each transcript header.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ApiArgs {
    /// The provider's base URL (default: $OPENAI_BASE_URL for openai/ and
    /// openai-responses/, $ANTHROPIC_BASE_URL for anthropic/, else the provider's public
    /// endpoint). For a local OpenAI-compatible server: http://127.0.0.1:8000/v1.
    #[arg(long)]
    pub(crate) base_url: Option<String>,
    /// Sampling temperature, passed to the provider (default: the provider's).
    #[arg(long)]
    pub(crate) temperature: Option<f64>,
    /// Nucleus-sampling top_p, passed to the provider (default: the provider's).
    #[arg(long)]
    pub(crate) top_p: Option<f64>,
    /// The most tokens one reply may have (default: the provider's; 4096 for Anthropic,
    /// which requires one).
    #[arg(long)]
    pub(crate) max_tokens: Option<u32>,
    /// The provider's sampling seed (distinct from the episode --seed).
    #[arg(long)]
    pub(crate) sampling_seed: Option<u64>,
    /// Reasoning effort for OpenAI reasoning models: low, medium or high.
    #[arg(long, value_parser = ["low", "medium", "high"])]
    pub(crate) reasoning_effort: Option<String>,
    /// Extended-thinking budget in tokens, for Anthropic models.
    #[arg(long)]
    pub(crate) thinking_budget: Option<u32>,
    /// Reasoning summaries asked of reasoning models on the Responses API (recorded as
    /// visible reasoning, which judges and eval_aware read) [default: auto for o-series
    /// and GPT-5 models, or any given --reasoning-effort; none otherwise].
    #[arg(long, value_parser = terrarium_runtime::providers::REASONING_SUMMARIES)]
    pub(crate) reasoning_summary: Option<String>,
    /// How tools reach the model: `native` tool calling, or described in the prompt and
    /// called by tags in the `text` (for comparison with text-based testbeds).
    #[arg(long, value_name = "native|text")]
    pub(crate) scaffold: Option<terrarium_runtime::providers::Scaffold>,
    /// A model setting as Inspect's `-M` passes model arguments: base_url, temperature,
    /// top_p, max_tokens, sampling_seed (or seed), reasoning_effort, thinking_budget,
    /// reasoning_summary or scaffold. Repeatable; the flag of the same name, if given
    /// too, wins.
    #[arg(short = 'M', value_name = "KEY=VALUE", value_parser = parse_model_arg)]
    pub(crate) model_args: Vec<ModelArg>,
}

/// One `-M key=value`, read and checked.
#[derive(Clone, Debug)]
pub(crate) enum ModelArg {
    BaseUrl(String),
    Temperature(f64),
    TopP(f64),
    MaxTokens(u32),
    SamplingSeed(u64),
    ReasoningEffort(String),
    ThinkingBudget(u32),
    ReasoningSummary(String),
    Scaffold(terrarium_runtime::providers::Scaffold),
}

fn parse_model_arg(text: &str) -> Result<ModelArg, String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let value = value.trim();
    fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
        value.parse().map_err(|_| format!("-M {key}: `{value}` is not a number of the kind it takes"))
    }
    let one_of = |allowed: &[&str]| {
        if allowed.contains(&value) {
            Ok(value.to_string())
        } else {
            Err(format!("-M {key}: `{value}` is not one of {}", allowed.join(", ")))
        }
    };
    Ok(match key.trim().replace('-', "_").as_str() {
        "base_url" => ModelArg::BaseUrl(value.to_string()),
        "temperature" => ModelArg::Temperature(num(key, value)?),
        "top_p" => ModelArg::TopP(num(key, value)?),
        "max_tokens" => ModelArg::MaxTokens(num(key, value)?),
        "sampling_seed" | "seed" => ModelArg::SamplingSeed(num(key, value)?),
        "reasoning_effort" => ModelArg::ReasoningEffort(one_of(&["low", "medium", "high"])?),
        "thinking_budget" => ModelArg::ThinkingBudget(num(key, value)?),
        "reasoning_summary" => ModelArg::ReasoningSummary(one_of(&terrarium_runtime::providers::REASONING_SUMMARIES)?),
        "scaffold" => ModelArg::Scaffold(value.parse().map_err(|e| format!("-M scaffold: {e}"))?),
        other => {
            return Err(format!(
                "-M {other}: not a model setting; use base_url, temperature, top_p, max_tokens, sampling_seed, reasoning_effort, thinking_budget, reasoning_summary or scaffold"
            ));
        }
    })
}

/// How requests are sent (not recorded: they change nothing a model is asked).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct SendArgs {
    /// Do not read or write the response cache ($TERRARIUM_CACHE_DIR, else the user cache directory).
    #[arg(long)]
    pub(crate) no_cache: bool,
    /// Seconds to wait for one reply before the attempt counts as failed (and is retried).
    /// With the default attempts, a request that hangs is given up after about 12 minutes.
    #[arg(long, default_value_t = 120)]
    pub(crate) timeout_secs: u64,
    /// Attempts per request, the first included, before the episode is errored.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub(crate) max_attempts: u32,
}

impl SendArgs {
    pub(crate) fn options(&self) -> SendOptions {
        SendOptions { cache: !self.no_cache, timeout_secs: self.timeout_secs, max_attempts: self.max_attempts }
    }
}

impl ApiArgs {
    /// These flags with each `-M` folded in where the flag of its name was not given.
    fn folded(&self) -> ApiArgs {
        let mut a = self.clone();
        for m in &self.model_args {
            match m.clone() {
                ModelArg::BaseUrl(v) => a.base_url = a.base_url.or(Some(v)),
                ModelArg::Temperature(v) => a.temperature = a.temperature.or(Some(v)),
                ModelArg::TopP(v) => a.top_p = a.top_p.or(Some(v)),
                ModelArg::MaxTokens(v) => a.max_tokens = a.max_tokens.or(Some(v)),
                ModelArg::SamplingSeed(v) => a.sampling_seed = a.sampling_seed.or(Some(v)),
                ModelArg::ReasoningEffort(v) => a.reasoning_effort = a.reasoning_effort.or(Some(v)),
                ModelArg::ThinkingBudget(v) => a.thinking_budget = a.thinking_budget.or(Some(v)),
                ModelArg::ReasoningSummary(v) => a.reasoning_summary = a.reasoning_summary.or(Some(v)),
                ModelArg::Scaffold(v) => a.scaffold = a.scaffold.or(Some(v)),
            }
        }
        a.model_args.clear();
        a
    }

    /// The settings these flags give, laid over every target's.
    pub(crate) fn entry(&self) -> TargetEntry {
        self.folded().entry_of()
    }

    fn entry_of(&self) -> TargetEntry {
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
    pub(crate) fn settings(
        &self,
        provider: terrarium_runtime::providers::http::Provider,
        model: &str,
    ) -> terrarium_runtime::providers::Settings {
        let this = self.folded();
        terrarium_runtime::providers::Settings {
            temperature: this.temperature,
            top_p: this.top_p,
            max_tokens: this.max_tokens,
            sampling_seed: this.sampling_seed,
            reasoning_effort: this.reasoning_effort.clone(),
            thinking_budget: this.thinking_budget,
            reasoning_summary: this.reasoning_summary.clone(),
        }
        .for_model(provider, model)
    }
}

/// What `export` writes.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub(crate) enum ExportFormat {
    /// Inspect AI evaluation logs (`.json`), named as Inspect names its own.
    Inspect,
}
