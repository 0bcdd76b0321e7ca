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
pub mod monitor;
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

pub use policy::{run_policy, run_steps};
pub use transcript::{ENGINE, encode_transcript};
