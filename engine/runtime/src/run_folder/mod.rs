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
pub fn latest_lines<T: serde::de::DeserializeOwned + Send, K: Ord>(text: &str, key: impl Fn(&T) -> K) -> Vec<T> {
    latest_lines_noting(text, key, |_, _, _| {})
}

/// [`latest_lines`], handing each line that does not parse to `bad` (its 1-based line
/// number, its text, why), so one pass both reads a log and names its damage.
fn latest_lines_noting<T: serde::de::DeserializeOwned + Send, K: Ord>(
    text: &str,
    key: impl Fn(&T) -> K,
    mut bad: impl FnMut(usize, &str, serde_json::Error),
) -> Vec<T> {
    let mut order: Vec<T> = Vec::new();
    let mut at: std::collections::BTreeMap<K, usize> = std::collections::BTreeMap::new();
    for (number, line, parsed) in parse_lines(text) {
        let item = match parsed {
            Ok(item) => item,
            Err(e) => {
                bad(number, line, e);
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

/// A line of a log: its 1-based number, its text, and what it parsed to.
type ParsedLine<'t, T> = (usize, &'t str, serde_json::Result<T>);

/// A log at least this long is parsed on every core; below it, starting threads costs
/// more than it saves.
const PARSED_ON_ALL_CORES_FROM: usize = 1 << 20;

/// Each line of `text` that is not blank, parsed as `T`, with its 1-based number, in
/// order. A long log is cut at line ends into a piece per core, and the pieces are
/// parsed at once: a 10,000-episode run's records are 15 MB.
fn parse_lines<T: serde::de::DeserializeOwned + Send>(text: &str) -> Vec<ParsedLine<'_, T>> {
    let pieces = if text.len() < PARSED_ON_ALL_CORES_FROM { 1 } else { crate::cores() };
    parse_lines_in(text, pieces)
}

/// [`parse_lines`] in (at most) `pieces` pieces.
fn parse_lines_in<T: serde::de::DeserializeOwned + Send>(text: &str, pieces: usize) -> Vec<ParsedLine<'_, T>> {
    /// A piece's lines that are not blank, and how many lines it has in all.
    fn parse<T: serde::de::DeserializeOwned>(piece: &str) -> (usize, Vec<ParsedLine<'_, T>>) {
        let mut count = 0;
        let mut parsed = Vec::new();
        for (i, line) in piece.lines().enumerate() {
            count = i + 1;
            if !line.trim().is_empty() {
                parsed.push((i + 1, line, serde_json::from_str::<T>(line)));
            }
        }
        (count, parsed)
    }
    if pieces <= 1 {
        return parse(text).1;
    }
    // Cut after the first line end at or past each share of the bytes.
    let mut cuts = vec![0];
    for k in 1..pieces {
        let from = (text.len() * k / pieces).max(*cuts.last().unwrap_or(&0));
        match text.as_bytes()[from..].iter().position(|&b| b == b'\n') {
            Some(end) => cuts.push(from + end + 1),
            None => break,
        }
    }
    cuts.push(text.len());
    cuts.dedup();
    let parsed: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            cuts.windows(2).map(|w| &text[w[0]..w[1]]).map(|piece| scope.spawn(move || parse::<T>(piece))).collect();
        // A thread that panicked would panic here too: parsing never panics.
        handles.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    });
    let mut lines = Vec::with_capacity(parsed.iter().map(|(_, p)| p.len()).sum());
    let mut before = 0;
    for (count, piece) in parsed {
        lines.extend(piece.into_iter().map(|(n, line, item)| (before + n, line, item)));
        before += count;
    }
    lines
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Line {
        id: u64,
        n: u64,
    }

    /// A log long enough to be parsed on every core reads exactly as one read line by
    /// line: the latest line for each key, in order of first appearance, and each
    /// damaged line named by its number, wherever the cuts fall.
    #[test]
    fn a_long_log_parsed_in_pieces_reads_as_one_read_line_by_line() {
        let mut text = String::new();
        for n in 0..40_000u64 {
            match n % 997 {
                // Damage, a blank line and a CRLF line among the rest.
                0 => text.push_str("{\"id\": 1, \"n\":\n"),
                1 => text.push_str("   \n"),
                2 => text.push_str(&format!("{{\"id\": {}, \"n\": {n}}}\r\n", n % 300)),
                _ => text.push_str(&format!(
                    "{{\"id\": {}, \"n\": {n}, \"padding\": \"{}\"}}\n",
                    n % 300,
                    "x".repeat(20)
                )),
            }
        }
        text.push_str("{\"id\": 7, \"n\": 1}"); // The last line, cut short of its newline.
        assert!(text.len() > PARSED_ON_ALL_CORES_FROM, "the log is long enough to be cut");

        let mut damaged = Vec::new();
        let read = latest_lines_noting(&text, |l: &Line| l.id, |n, line, _| damaged.push((n, line.to_string())));

        let (mut expected, mut expected_damage) = (Vec::<Line>::new(), Vec::new());
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            match serde_json::from_str::<Line>(line) {
                Ok(l) => match expected.iter_mut().find(|e| e.id == l.id) {
                    Some(e) => *e = l,
                    None => expected.push(l),
                },
                Err(_) => expected_damage.push((i + 1, line.to_string())),
            }
        }
        assert_eq!(read, expected);
        // However many pieces, each line keeps its number and its reading.
        let one: Vec<(usize, &str, bool)> =
            parse_lines_in::<Line>(&text, 1).into_iter().map(|(n, l, r)| (n, l, r.is_ok())).collect();
        for pieces in [2, 3, 7, 64] {
            let cut: Vec<(usize, &str, bool)> =
                parse_lines_in::<Line>(&text, pieces).into_iter().map(|(n, l, r)| (n, l, r.is_ok())).collect();
            assert_eq!(cut, one, "{pieces} pieces");
        }
        assert_eq!(damaged, expected_damage);
        assert_eq!(damaged.len(), 41);
        assert_eq!(read.len(), 300);
        assert_eq!(read.iter().find(|l| l.id == 7), Some(&Line { id: 7, n: 1 }));
    }
}
