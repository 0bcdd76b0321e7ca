//! Terrarium's simulation core: sans-IO and deterministic.
//!
//! Loading a world from text, validating it, running episodes, evaluating outcomes,
//! encoding transcripts and replaying them all take data and return data. Nothing in
//! this crate reads a file, a socket, a clock or an entropy source, spawns a thread or
//! touches tokio; `clippy.toml` keeps it so.

pub mod calibrate;
pub mod cells;
pub mod cond;
pub mod conversation;
pub mod env;
pub mod episode;
pub mod format;
pub mod graph;
pub mod hash;
pub mod judge;
pub mod key;
pub mod lint;
pub mod moment;
pub mod policy;
pub mod quantity;
pub mod replay;
pub mod rng;
pub mod span;
pub mod state;
pub mod stats;
pub mod stop;
pub mod template;
pub mod text;
pub mod transcript;
pub mod view;
pub mod world;

pub use cells::load;
pub use episode::Episode;
pub use key::EpisodeKey;
pub use transcript::{Event, Header, TargetOutput, ToolCall, Verdicts};
pub use world::{Cell, Diagnostic, World};

use format::Policy;
use stop::StopReason;
use transcript::Line;

/// The engine version recorded in transcripts.
pub const ENGINE: &str = concat!("terrarium ", env!("CARGO_PKG_VERSION"));

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
pub fn run_policy<'w>(world: &'w World, condition: &Cell, seed: u64, policy: &str) -> Result<Episode<'w>, String> {
    let p =
        world.file.policies.get(policy).ok_or_else(|| format!("world `{}` has no policy `{policy}`", world.id()))?;
    run_steps(world, condition, seed, p)
}

/// Run a policy's steps to their end (then the target has nothing more to say). A step
/// whose template does not render in this episode (an email of a distractor this seed
/// did not draw, a misspelt name) is an error, never text a verdict is computed from.
pub fn run_steps<'w>(world: &'w World, condition: &Cell, seed: u64, p: &Policy) -> Result<Episode<'w>, String> {
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
            None => ep.stop_by_target(StopReason::TargetExhausted),
        }
        i += 1;
    }
    Ok(ep)
}
