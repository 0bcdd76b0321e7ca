//! A run folder, its one definition: what it holds and where (`episodes.jsonl`,
//! `plan.jsonl`, `judgements.jsonl`, the transcripts, the report files), and how its
//! append-only logs are read. `records` are the lines, `store` where transcripts are
//! kept (segments with an index), `reader` and `writer` the folder's two sides, and
//! `ops` the work on whole folders after the fact (merge, rejudge, what a report
//! reads).

mod ops;
mod reader;
mod records;
mod store;
mod writer;

pub(crate) use ops::io;
pub use ops::{Change, FolderError, FolderWorlds, Merged, Rejudged, ReportInput, merge, rejudge, report_input};
pub use reader::{RunFolder, transcript_world};
pub use records::{
    ConversationTurns, EpisodeRecord, EpisodeStatus, Finished, Judgement, Planned, acting, read_judgements, read_plan,
    read_records,
};
pub use store::{Dictionary, INDEX, PACKED, Packed, Transcripts, is_packed, pack, read_transcript};
pub use writer::{SYNC_INTERVAL, Writer};

/// The log of episodes, one record per line, appended.
pub const EPISODES: &str = "episodes.jsonl";
/// The episodes some run into the folder was asked to do.
pub const PLAN: &str = "plan.jsonl";
/// Judges' answers, one per line, appended.
pub const JUDGEMENTS: &str = "judgements.jsonl";
/// What `rejudge` found changed.
pub const REJUDGE: &str = "rejudge.jsonl";
/// The folder of transcripts: packed into segments with an index, or (in folders
/// written before segments) one file per episode; see [`store`].
pub const TRANSCRIPTS: &str = "transcripts";

/// The files `report` writes into a run folder (and `--replace` clears with the logs).
pub const REPORT_FILES: [&str; 5] = ["report.md", "report.html", "summary.csv", "by_factor.csv", "by_turn.csv"];

/// The folder of episode pages `report` writes, one per episode.
pub const VIEWS: &str = "view";

/// Where an episode's page is, relative to its run folder.
pub fn page_path(episode_id: &str) -> String {
    format!("{VIEWS}/{episode_id}.html")
}

/// An episode's transcript's address, relative to its run folder: the one place it is
/// built. In folders written before segments, a file is there; since, the transcript is
/// packed under it (see [`store`]), and [`read_transcript`] reads either.
pub fn transcript_path(episode_id: &str) -> String {
    format!("{TRANSCRIPTS}/{episode_id}.jsonl")
}

/// The run folder a transcript at `path` sits in, when `path` is an address in one
/// (`RUN/transcripts/<file>`); `.` for a relative `transcripts/<file>`.
pub fn run_folder_of(path: &std::path::Path) -> Option<&std::path::Path> {
    let folder = path.parent()?;
    let dir = folder.parent().filter(|_| folder.file_name().is_some_and(|n| n == TRANSCRIPTS))?;
    Some(if dir.as_os_str().is_empty() { std::path::Path::new(".") } else { dir })
}

/// The lines of an append-only JSONL log that parse as `T`, the latest for each key, in
/// order of the key's first appearance. Lines that do not parse are skipped.
pub fn latest_lines<T: serde::de::DeserializeOwned, K: Ord>(text: &str, key: impl Fn(&T) -> K) -> Vec<T> {
    latest_lines_noting(text, key, |_, _, _| {})
}

/// [`latest_lines`], handing each line that does not parse to `bad` (its 1-based line
/// number, its text, why), so one pass both reads a log and names its damage.
fn latest_lines_noting<T: serde::de::DeserializeOwned, K: Ord>(
    text: &str,
    key: impl Fn(&T) -> K,
    mut bad: impl FnMut(usize, &str, serde_json::Error),
) -> Vec<T> {
    let mut order: Vec<T> = Vec::new();
    let mut at: std::collections::BTreeMap<K, usize> = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let item = match serde_json::from_str::<T>(line) {
            Ok(item) => item,
            Err(e) => {
                bad(i + 1, line, e);
                continue;
            }
        };
        match at.entry(key(&item)) {
            std::collections::btree_map::Entry::Occupied(i) => order[*i.get()] = item,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(order.len());
                order.push(item);
            }
        }
    }
    order
}

/// The text of a run folder's file, or "" when there is none (yet): a folder written
/// before judges or plans existed simply has no `judgements.jsonl` or `plan.jsonl`.
pub fn read_if_present(path: &std::path::Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

/// The text of an append-only log about to be appended to. A crash can leave a
/// half-written last line: it is cut off, so the next line starts on a line of its own
/// (the episode or judgement it held is simply done again).
pub(super) fn read_log(path: &std::path::Path) -> std::io::Result<String> {
    let mut text = read_if_present(path)?;
    if !text.is_empty() && !text.ends_with('\n') {
        let keep = text.rfind('\n').map_or(0, |i| i + 1);
        text.truncate(keep);
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_data()?;
    }
    Ok(text)
}
