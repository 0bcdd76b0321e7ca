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

/// `work` over every item, on all cores, the results in the items' order.
pub fn on_all_cores<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done: std::sync::Mutex<Vec<(usize, R)>> = std::sync::Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..cores().min(items.len()).max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = work(item);
                    done.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((i, r));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
