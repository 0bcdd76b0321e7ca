//! Terrarium's IO edge: finding and reading world files, running targets against the
//! core, and writing transcripts and episode logs. Everything that touches the file
//! system lives here or in the binary, never in `terrarium-core`.

pub mod inspect;
pub mod judge;
pub mod labelled;
pub mod mcp;
pub mod policies;
pub mod providers;
pub mod redact;
pub mod report;
pub mod run;
pub mod run_folder;
pub mod starter;
pub mod sweep;
pub mod target;
pub mod worlds;

pub use worlds::{LoadError, find_worlds, load_world};

/// The machine's cores, as work is shared out over them.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
