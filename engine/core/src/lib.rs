//! Terrarium's simulation core: sans-IO and deterministic.
//!
//! Loading a world from text, validating it, running episodes, evaluating outcomes,
//! encoding transcripts and replaying them all take data and return data. Nothing in
//! this crate reads a file, a socket, a clock or an entropy source, spawns a thread or
//! touches tokio; `clippy.toml` keeps it so.

pub mod calibrate;
pub mod cond;
pub mod conversation;
pub mod env;
pub mod episode;
pub mod format;
pub mod graph;
pub mod hash;
pub mod judge;
pub mod lint;
pub mod policy;
pub mod quantity;
pub mod replay;
pub mod rng;
pub mod span;
pub mod state;
pub mod stats;
pub mod template;
pub mod transcript;
pub mod view;
pub mod world;

pub use episode::Episode;
pub use transcript::{Event, Header, TargetOutput, ToolCall, Verdicts};
pub use world::{Condition, Diagnostic, World, load};

use format::Policy;
use hash::Canon;
use transcript::{Line, TargetRef, WorldRef};

/// The engine version recorded in transcripts.
pub const ENGINE: &str = concat!("terrarium ", env!("CARGO_PKG_VERSION"));

/// The commit the engine was built from (see `build.rs`), when built from git.
pub const BUILD: Option<&str> = option_env!("TERRARIUM_COMMIT");

/// `0.1.0 (commit abc123def456)`, or just the version when not built from git.
pub const VERSION: &str = env!("TERRARIUM_VERSION");

/// The deterministic id of an episode: safe as a file name.
pub fn episode_id(
    world: &World,
    condition: &Condition,
    seed: u64,
    target_spec: &str,
    settings: &serde_json::Value,
) -> String {
    episode_id_with_user(world, condition, seed, target_spec, settings, None)
}

/// The id of an episode whose simulated user a model may play: that model's spec and
/// settings are part of it (without one, the id is [`episode_id`]'s).
pub fn episode_id_with_user(
    world: &World,
    condition: &Condition,
    seed: u64,
    target_spec: &str,
    settings: &serde_json::Value,
    user: Option<&TargetRef>,
) -> String {
    let mut c = Canon::new("terrarium.episode.v1");
    c.str(world.id()).str(&world.dynamics_hash).str(&condition.key()).u64(seed).str(target_spec).json(settings);
    if let Some(user) = user {
        c.str("user").str(&user.spec).json(&user.settings);
    }
    format!("{}-s{seed}-{}", world.id(), c.hex(8))
}

/// The header line of an episode's transcript.
pub fn header(
    world: &World,
    condition: &Condition,
    seed: u64,
    target_spec: &str,
    settings: &serde_json::Value,
) -> Header {
    header_with_user(world, condition, seed, target_spec, settings, None)
}

/// The header of an episode whose simulated user `user` (a model) plays, if any.
pub fn header_with_user(
    world: &World,
    condition: &Condition,
    seed: u64,
    target_spec: &str,
    settings: &serde_json::Value,
    user: Option<TargetRef>,
) -> Header {
    Header {
        format: transcript::TRANSCRIPT_FORMAT,
        engine: ENGINE.to_string(),
        build: BUILD.map(str::to_string),
        episode_id: episode_id_with_user(world, condition, seed, target_spec, settings, user.as_ref()),
        user,
        world: WorldRef {
            id: world.id().to_string(),
            path: world.path.clone(),
            version: world.file.version.clone(),
            dynamics_hash: world.dynamics_hash.clone(),
            outcomes_hash: world.outcomes_hash.clone(),
        },
        condition: condition.to_json(),
        condition_key: condition.key(),
        seed,
        target: TargetRef { spec: target_spec.to_string(), settings: settings.clone() },
        turns: serde_json::to_value(&world.file.turns).expect("turn model serialises"),
        limits: serde_json::to_value(&world.file.limits).expect("limits serialise"),
    }
}

/// Encode a whole transcript: header, events, verdicts, one JSON object per line.
pub fn encode_transcript(header: &Header, events: &[Event], verdicts: &Verdicts) -> String {
    let mut out = serde_json::to_string(&Line::Header(Box::new(header.clone()))).expect("header serialises");
    out.push('\n');
    for e in events {
        out.push_str(&serde_json::to_string(e).expect("events serialise"));
        out.push('\n');
    }
    out.push_str(&serde_json::to_string(&Line::Verdicts(verdicts.clone())).expect("verdicts serialise"));
    out.push('\n');
    out
}

/// Run a reference policy to its end: the scripted target, entirely in the core.
pub fn run_policy<'w>(world: &'w World, condition: &Condition, seed: u64, policy: &str) -> Result<Episode<'w>, String> {
    let p =
        world.file.policies.get(policy).ok_or_else(|| format!("world `{}` has no policy `{policy}`", world.id()))?;
    run_steps(world, condition, seed, p)
}

/// Run a policy's steps to their end (then the target has nothing more to say). A step
/// whose template does not render in this episode (an email of a distractor this seed
/// did not draw, a misspelt name) is an error, never text a verdict is computed from.
pub fn run_steps<'w>(world: &'w World, condition: &Condition, seed: u64, p: &Policy) -> Result<Episode<'w>, String> {
    let mut ep = Episode::start(world, condition, seed).map_err(|e| e.to_string())?;
    let mut i = 0;
    while !ep.is_done() {
        match policy::output(&ep, p, i) {
            Some(out) => {
                let written = out.tool_calls.iter().map(|c| c.arguments_raw.as_str()).chain([out.text.as_str()]);
                if let Some(bad) = written.into_iter().find(|t| t.contains(env::TEMPLATE_ERROR)) {
                    return Err(format!("step {}: a template does not render: {bad}", i + 1));
                }
                ep.apply(out)
            }
            None => ep.stop_by_target("target_exhausted"),
        }
        i += 1;
    }
    Ok(ep)
}
