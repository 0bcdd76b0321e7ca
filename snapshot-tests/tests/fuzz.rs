//! The untrusted parsers fed random bytes and mutated copies of real input: world RON
//! (through the loader, and so `span.rs`'s re-parse that locates problems) and
//! transcripts (`Transcript::parse`). Whatever they are given, they answer with a
//! located error or a value, never a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use terrarium_core::transcript::{Transcript, TranscriptError};

use crate::support::root;

/// Worlds whose text is mutated: a small test world, and shipped worlds with libraries.
const WORLDS: [&str; 3] =
    ["fixtures/worlds/greenhouse/world.ron", "worlds/blackmail/world.ron", "worlds/delusion/world.ron"];

/// What mutations insert: RON's structure, quotes, escapes, placeholders, and text.
const PIECES: [&str; 16] =
    ["(", ")", "{", "}", "[", "]", ",", ":", "\"", "\\", "\n", "{text.", "Some(", "// x\n", "é\u{202e}", "0x7fffffff"];

/// One edit at a place given as a share of the text's length.
#[derive(Clone, Debug)]
enum Edit {
    Delete { at: f64, len: usize },
    Insert { at: f64, piece: usize },
    Duplicate { at: f64, len: usize },
    Replace { at: f64, byte: u8 },
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let at = 0.0f64..1.0;
    let edit = prop_oneof![
        (at.clone(), 1usize..64).prop_map(|(at, len)| Edit::Delete { at, len }),
        (at.clone(), 0usize..PIECES.len()).prop_map(|(at, piece)| Edit::Insert { at, piece }),
        (at.clone(), 1usize..200).prop_map(|(at, len)| Edit::Duplicate { at, len }),
        (at, any::<u8>()).prop_map(|(at, byte)| Edit::Replace { at, byte }),
    ];
    proptest::collection::vec(edit, 1..6)
}

/// `text` with `edits` applied byte by byte (invalid UTF-8 read as replacement characters).
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for edit in edits {
        let place = |at: f64, len: usize| ((at * len as f64) as usize).min(len);
        match *edit {
            Edit::Delete { at, len } => {
                let start = place(at, bytes.len());
                bytes.drain(start..(start + len).min(bytes.len()));
            }
            Edit::Insert { at, piece } => {
                let start = place(at, bytes.len());
                bytes.splice(start..start, PIECES[piece].bytes());
            }
            Edit::Duplicate { at, len } => {
                let start = place(at, bytes.len());
                let copy: Vec<u8> = bytes[start..(start + len).min(bytes.len())].to_vec();
                bytes.splice(start..start, copy);
            }
            Edit::Replace { at, byte } => {
                if !bytes.is_empty() {
                    let i = place(at, bytes.len() - 1);
                    bytes[i] = byte;
                }
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The shipped libraries, by the path worlds include them with.
static LIBRARIES: std::sync::LazyLock<BTreeMap<String, String>> = std::sync::LazyLock::new(|| {
    std::fs::read_dir(root().join("worlds/lib"))
        .expect("the libraries")
        .map(|e| e.expect("an entry").path())
        .map(|p| (format!("../lib/{}", p.file_name().unwrap().to_string_lossy()), std::fs::read_to_string(&p).unwrap()))
        .collect()
});

/// Load `text` as the world at `path`: a valid world, or diagnostics each placed at a
/// line and column inside the file it names.
fn load_located(path: &str, text: &str) -> Result<(), String> {
    let mut read = |rel: &str| LIBRARIES.get(rel).cloned().ok_or_else(|| format!("no `{rel}`"));
    let Err(diagnostics) = terrarium_core::load(path, text, &mut read) else { return Ok(()) };
    if diagnostics.is_empty() {
        return Err("an error without a diagnostic".into());
    }
    for d in &diagnostics {
        let source = if d.file == path {
            Some(text)
        } else {
            LIBRARIES.get(d.file.trim_start_matches("worlds/")).map(String::as_str)
        };
        let lines = source.map_or(usize::MAX, |t| t.lines().count() + 1);
        if d.pos.line < 1 || d.pos.line as usize > lines || d.pos.col < 1 || d.message.trim().is_empty() {
            return Err(format!("a diagnostic not placed in its file ({lines} lines): {d}"));
        }
    }
    Ok(())
}

/// Parse `text` as a transcript: a transcript, or an error naming a line of it.
fn parse_located(text: &str) -> Result<(), String> {
    let lines = text.lines().count().max(1);
    match Transcript::parse(text) {
        Ok(_) | Err(TranscriptError::Empty) => Ok(()),
        Err(TranscriptError::Line { line, .. } | TranscriptError::Tampered { line, .. })
            if (1..=lines + 1).contains(&line) =>
        {
            Ok(())
        }
        Err(e) => Err(format!("an error not placed on one of the {lines} lines: {e}")),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn a_mutated_world_loads_or_gets_located_errors(w in 0usize..WORLDS.len(), edits in edits()) {
        let path = WORLDS[w];
        let text = mutate(&std::fs::read_to_string(root().join(path)).expect("reads"), &edits);
        let result = load_located(path, &text);
        prop_assert!(result.is_ok(), "{path} after {edits:?}: {}", result.unwrap_err());
    }

    #[test]
    fn random_bytes_are_never_a_world_or_a_transcript_that_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let text = String::from_utf8_lossy(&bytes);
        let world = load_located("random.ron", &text);
        prop_assert!(world.is_ok(), "{}", world.unwrap_err());
        let transcript = parse_located(&text);
        prop_assert!(transcript.is_ok(), "{}", transcript.unwrap_err());
    }

    #[test]
    fn a_mutated_transcript_parses_or_gets_an_error_naming_its_line(edits in edits()) {
        let recorded = std::fs::read_to_string(root().join("fixtures/transcripts/blackmail-recorded.jsonl")).expect("reads");
        let text = mutate(&recorded, &edits);
        let result = parse_located(&text);
        prop_assert!(result.is_ok(), "after {edits:?}: {}", result.unwrap_err());
    }
}
