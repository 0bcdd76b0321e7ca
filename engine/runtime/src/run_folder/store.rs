//! Where a run folder keeps its transcripts. A transcript's address is
//! `transcripts/<episode_id>.jsonl` however it is kept:
//!
//! - packed (folders written since segments): appended to
//!   `transcripts/packed/segment-N.zst` as one zstd frame, its place (segment, offset,
//!   length, dictionary) appended to `transcripts/packed/index.jsonl` before the
//!   episode's record;
//! - as a file of its own at that address (folders written before).
//!
//! A sweep of many short episodes then writes three growing files instead of creating a
//! file per episode (most of a scripted sweep's time on ext4 went to the kernel's inode
//! allocator). Each frame is compressed against a dictionary: one whole transcript of the
//! same run (`transcripts/packed/dict-N.jsonl`, plain JSONL), whose inbox, prompts and tool
//! results the others mostly repeat. A transcript alone packs to 40% of its bytes; against
//! a sibling, to about 14%. `terrarium view RUN --jsonl` prints them back (as would
//! `zstd -d -D dict-N.jsonl` on a frame).
//!
//! A kill can leave a torn index line or bytes after the last indexed frame: opening the
//! folder to write cuts both off (their episodes have no record, so they run again), and
//! drops index entries that point past the end of their segment.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::transcript_path;

/// The folder of packed transcripts, relative to the run folder: segments, their
/// dictionaries and the index. Apart from `transcripts/`, so that no shell pattern for
/// transcript files (`transcripts/*.jsonl`) takes them for transcripts.
pub const PACKED: &str = "transcripts/packed";

/// The index of packed transcripts, relative to the run folder.
pub const INDEX: &str = "transcripts/packed/index.jsonl";

/// A segment grows to about this size before the next one starts.
const SEGMENT_BYTES: u64 = 64 << 20;

/// zstd's own default: most of the ratio of the higher levels, at a fraction of their
/// time (a transcript of 7.6 KB packs in tens of microseconds).
const LEVEL: i32 = 3;

/// The path of segment `n`, relative to the run folder.
fn segment_path(n: u32) -> String {
    format!("{PACKED}/segment-{n:06}.zst")
}

/// The path of dictionary `n`, relative to the run folder.
fn dict_path(n: u32) -> String {
    format!("{PACKED}/dict-{n:06}.jsonl")
}

/// One line of the index: where one transcript is packed. The latest line of an
/// episode is the one that counts (an errored episode run again is packed again).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Entry {
    episode_id: String,
    segment: u32,
    offset: u64,
    len: u64,
    /// The dictionary the frame was compressed against, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dict: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Place {
    segment: u32,
    offset: u64,
    len: u64,
    dict: Option<u32>,
}

impl Place {
    fn end(self) -> u64 {
        self.offset + self.len
    }
}

/// A dictionary transcripts are packed against: one transcript of the run, whole.
pub type Dictionary = Arc<[u8]>;

/// A transcript compressed, ready to be appended: what a worker thread makes ahead of
/// the [`super::Writer`], so the writer only appends.
#[derive(Debug)]
pub struct Packed {
    frame: Vec<u8>,
    dict: Option<Dictionary>,
}

thread_local! {
    /// Each thread's compressor, with the dictionary it was made for: a compressor's
    /// tables are costly to set up (they were a tenth of a scripted sweep), so each
    /// thread keeps one.
    static COMPRESSOR: std::cell::RefCell<Option<(Option<Dictionary>, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Whether a thread's (de)compressor, made for `had`, fits `want`: the same dictionary
/// (the one loaded, not merely equal bytes), or none for none.
fn same_dictionary(had: Option<&Dictionary>, want: Option<&Dictionary>) -> bool {
    match (had, want) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    }
}

/// Compress a transcript for a segment, against `dict` if given.
pub fn pack(transcript: &str, dict: Option<&Dictionary>) -> std::io::Result<Packed> {
    COMPRESSOR.with_borrow_mut(|slot| {
        let fits = slot.as_ref().is_some_and(|(d, _)| same_dictionary(d.as_ref(), dict));
        if !fits {
            let mut compressor = match dict {
                Some(d) => zstd::bulk::Compressor::with_dictionary(LEVEL, d)?,
                None => zstd::bulk::Compressor::new(LEVEL)?,
            };
            // Four bytes a frame, so a damaged one is an error, never other text.
            compressor.include_checksum(true)?;
            *slot = Some((dict.cloned(), compressor));
        }
        let (_, compressor) = slot.as_mut().expect("set above");
        Ok(Packed { frame: compressor.compress(transcript.as_bytes())?, dict: dict.cloned() })
    })
}

thread_local! {
    /// Each thread's decompressor, with the dictionary last loaded into it: making one
    /// per transcript (its window buffers mapped and unmapped each time) was a fifth of
    /// replaying a folder.
    static DECOMPRESSOR: std::cell::RefCell<Option<(Option<Dictionary>, zstd::bulk::Decompressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// A frame's transcript is at most this long to be decompressed whole; a longer one
/// (or one whose header does not say) is decompressed as a stream.
const WHOLE_FRAME_MAX: u64 = 256 << 20;

/// Decompress one frame, against `dict` if given.
fn unpack(frame: &[u8], dict: Option<&Dictionary>) -> std::io::Result<Vec<u8>> {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n <= WHOLE_FRAME_MAX => n as usize,
        _ => {
            let mut bytes = Vec::new();
            match dict {
                Some(d) => zstd::stream::read::Decoder::with_dictionary(frame, d)?.read_to_end(&mut bytes)?,
                None => zstd::stream::read::Decoder::with_buffer(frame)?.read_to_end(&mut bytes)?,
            };
            return Ok(bytes);
        }
    };
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let fits = slot.as_ref().is_some_and(|(d, _)| same_dictionary(d.as_ref(), dict));
        if !fits {
            let mut decompressor = match slot.take() {
                Some((_, d)) => d,
                None => zstd::bulk::Decompressor::new()?,
            };
            decompressor.set_dictionary(dict.map_or(&[][..], |d| &d[..]))?;
            *slot = Some((dict.cloned(), decompressor));
        }
        let (_, decompressor) = slot.as_mut().expect("set above");
        let mut bytes = Vec::with_capacity(size);
        decompressor.decompress_to_buffer(frame, &mut bytes)?;
        Ok(bytes)
    })
}

/// The transcripts of a run folder, to read by episode: the index of packed ones,
/// read once, and the files of older ones.
#[derive(Debug, Clone, Default)]
pub struct Transcripts {
    dir: PathBuf,
    index: BTreeMap<String, Place>,
    /// Dictionaries read so far, shared by clones.
    dicts: Arc<Mutex<BTreeMap<u32, Dictionary>>>,
}

impl Transcripts {
    /// The transcripts of the run folder `dir`. A folder without an index (written
    /// before segments, or empty) has only files; a damaged index line is passed over.
    pub fn open(dir: &Path) -> std::io::Result<Transcripts> {
        let text = super::read_if_present(&dir.join(INDEX))?;
        Ok(Transcripts::from_index(dir, &text))
    }

    /// The transcripts of `dir` as far as one episode goes: the index's lines that
    /// name it, never parsing the others (reading one transcript of a large folder).
    fn open_one(dir: &Path, episode_id: &str) -> std::io::Result<Transcripts> {
        let text = super::read_if_present(&dir.join(INDEX))?;
        let quoted = format!("\"episode_id\":{}", serde_json::to_string(episode_id).map_err(std::io::Error::other)?);
        let lines: String = text.lines().filter(|l| l.contains(&quoted)).flat_map(|l| [l, "\n"]).collect();
        Ok(Transcripts::from_index(dir, &lines))
    }

    fn from_index(dir: &Path, text: &str) -> Transcripts {
        let mut index = BTreeMap::new();
        for line in text.lines() {
            if let Ok(e) = serde_json::from_str::<Entry>(line) {
                index.insert(e.episode_id, Place { segment: e.segment, offset: e.offset, len: e.len, dict: e.dict });
            }
        }
        Transcripts { dir: dir.to_path_buf(), index, dicts: Arc::default() }
    }

    /// Whether the folder holds the transcript of this episode, whose record names
    /// `address` (`transcripts/<episode_id>.jsonl`).
    pub fn has(&self, episode_id: &str, address: &str) -> bool {
        self.index.contains_key(episode_id) || self.dir.join(address).is_file()
    }

    /// The transcript of the episode whose record names `address`.
    pub fn read(&self, episode_id: &str, address: &str) -> std::io::Result<String> {
        let Some(place) = self.index.get(episode_id) else {
            let path = self.dir.join(address);
            return std::fs::read_to_string(&path).map_err(|e| named(&path, e));
        };
        let path = self.dir.join(segment_path(place.segment));
        let frame = read_range(&path, *place).map_err(|e| named(&path, e))?;
        let bad = |why: String| {
            let at = format!("{} at byte {}", path.display(), place.offset);
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{at}: episode {episode_id}: {why}"))
        };
        let dict = match place.dict {
            Some(n) => Some(self.dictionary(n)?),
            None => None,
        };
        let bytes =
            unpack(&frame, dict.as_ref()).map_err(|e| bad(format!("not a zstd frame of its dictionary ({e})")))?;
        String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".to_string()))
    }

    /// Dictionary `n`, read once.
    fn dictionary(&self, n: u32) -> std::io::Result<Dictionary> {
        let mut dicts = self.dicts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = dicts.get(&n) {
            return Ok(Arc::clone(d));
        }
        let path = self.dir.join(dict_path(n));
        let d: Dictionary = std::fs::read(&path).map_err(|e| named(&path, e))?.into();
        dicts.insert(n, Arc::clone(&d));
        Ok(d)
    }

    /// The transcript of `episode_id`, at its usual address.
    pub fn read_id(&self, episode_id: &str) -> std::io::Result<String> {
        self.read(episode_id, &transcript_path(episode_id))
    }

    /// How many transcripts are packed (files of older folders apart).
    pub fn packed(&self) -> usize {
        self.index.len()
    }
}

fn read_range(path: &Path, place: Place) -> std::io::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path)?;
    f.seek(std::io::SeekFrom::Start(place.offset))?;
    let mut frame = vec![0; usize::try_from(place.len).map_err(std::io::Error::other)?];
    f.read_exact(&mut frame)?;
    Ok(frame)
}

fn named(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The transcript at `path`: the file there, or, where the path is a run folder's
/// address of a packed transcript (`RUN/transcripts/<episode_id>.jsonl`), the
/// transcript packed under it. So one address reads, views and replays an episode
/// however its folder keeps it.
pub fn read_transcript(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let packed = packed_address(path).and_then(|(dir, id)| {
                let store = Transcripts::open_one(dir, id).ok()?;
                store.index.contains_key(id).then(|| store.read_id(id))
            });
            packed.unwrap_or_else(|| Err(named(path, e)))
        }
        Err(e) => Err(named(path, e)),
        ok => ok,
    }
}

/// Whether `path` names a transcript of a run folder that packs it.
pub fn is_packed(path: &Path) -> bool {
    packed_address(path).is_some_and(|(dir, id)| Transcripts::open_one(dir, id).is_ok_and(|s| s.index.contains_key(id)))
}

/// The run folder and episode of an address `RUN/transcripts/<episode_id>.jsonl`.
fn packed_address(path: &Path) -> Option<(&Path, &str)> {
    let id = path.file_name()?.to_str()?.strip_suffix(".jsonl")?;
    let dir = super::run_folder_of(path)?;
    dir.join(INDEX).is_file().then_some((dir, id))
}

/// The writing end of a run folder's transcripts: packed transcripts appended to the
/// last segment, their places to the index. Opening it repairs what a kill left.
#[derive(Debug)]
pub(super) struct Appender {
    dir: PathBuf,
    segment: u32,
    /// The segment's length: where the next frame goes.
    len: u64,
    file: Option<std::fs::File>,
    index: Option<std::fs::File>,
    unsynced: bool,
    /// [`SEGMENT_BYTES`], but for tests of the roll-over.
    segment_bytes: u64,
    /// The dictionaries written by this appender, and the number of the next.
    dicts: Vec<(Dictionary, u32)>,
    next_dict: u32,
    /// What [`Appender::pack`] packs against: the first transcript it packed.
    own: Option<Dictionary>,
}

impl Appender {
    /// Open the transcripts of `dir` to append to, repairing them first: the index's
    /// torn last line is cut off, entries past the end of their segment are dropped, and
    /// the last segment is cut back to the end of its last indexed frame.
    pub(super) fn open(dir: &Path) -> std::io::Result<(Transcripts, Appender)> {
        let mut store = Transcripts::from_index(dir, &super::read_log(&dir.join(INDEX))?);
        let mut lengths: BTreeMap<u32, u64> = BTreeMap::new();
        for place in store.index.values() {
            if let std::collections::btree_map::Entry::Vacant(slot) = lengths.entry(place.segment) {
                let len = match std::fs::metadata(dir.join(segment_path(place.segment))) {
                    Ok(m) => m.len(),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                    Err(e) => return Err(e),
                };
                slot.insert(len);
            }
        }
        store.index.retain(|_, p| p.end() <= lengths[&p.segment]);
        let segment = store.index.values().map(|p| p.segment).max().unwrap_or(1);
        let len = store.index.values().filter(|p| p.segment == segment).map(|p| p.end()).max().unwrap_or(0);
        let path = dir.join(segment_path(segment));
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > len) {
            let f = std::fs::OpenOptions::new().write(true).open(&path)?;
            f.set_len(len)?;
            f.sync_data()?;
        }
        let appender = Appender {
            dir: dir.to_path_buf(),
            segment,
            len,
            file: None,
            index: None,
            unsynced: false,
            segment_bytes: SEGMENT_BYTES,
            dicts: Vec::new(),
            // A dictionary file past the index's last holds nothing indexed: what a kill
            // left there is overwritten.
            next_dict: store.index.values().filter_map(|p| p.dict).max().map_or(1, |n| n + 1),
            own: None,
        };
        Ok((store, appender))
    }

    /// Pack a transcript here, on the writer's thread: against the first transcript
    /// this appender packed.
    pub(super) fn pack(&mut self, transcript: &str) -> std::io::Result<Packed> {
        let own = self.own.get_or_insert_with(|| transcript.as_bytes().into());
        pack(transcript, Some(&Arc::clone(own)))
    }

    /// The number of `dict`, written to the folder (whole, and synced) the first time.
    fn dict_number(&mut self, dict: &Dictionary) -> std::io::Result<u32> {
        if let Some((_, n)) = self.dicts.iter().find(|(d, _)| Arc::ptr_eq(d, dict) || d[..] == dict[..]) {
            return Ok(*n);
        }
        let n = self.next_dict;
        std::fs::create_dir_all(self.dir.join(PACKED))?;
        let path = self.dir.join(dict_path(n));
        let mut f = std::fs::File::create(&path)?;
        f.write_all(dict)?;
        f.sync_data()?;
        self.next_dict += 1;
        self.dicts.push((Arc::clone(dict), n));
        Ok(n)
    }

    /// Append one packed transcript (its dictionary first, the first time), then its
    /// place in the index; `store` learns it.
    pub(super) fn append(&mut self, store: &mut Transcripts, episode_id: &str, packed: &Packed) -> std::io::Result<()> {
        let dict = match &packed.dict {
            Some(d) => Some(self.dict_number(d)?),
            None => None,
        };
        let n = packed.frame.len() as u64;
        if self.len > 0 && self.len + n > self.segment_bytes {
            self.sync()?;
            self.segment += 1;
            self.len = 0;
            self.file = None;
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                std::fs::create_dir_all(self.dir.join(PACKED))?;
                // A segment past the index's last holds nothing indexed: what a kill left
                // in it is dropped.
                let mut options = std::fs::OpenOptions::new();
                options.create(true).write(true);
                let mut f = options.open(self.dir.join(segment_path(self.segment)))?;
                f.set_len(self.len)?;
                f.seek(std::io::SeekFrom::Start(self.len))?;
                self.file.insert(f)
            }
        };
        file.write_all(&packed.frame)?;
        let place = Place { segment: self.segment, offset: self.len, len: n, dict };
        self.len += n;
        let entry =
            Entry { episode_id: episode_id.to_string(), segment: place.segment, offset: place.offset, len: n, dict };
        let mut line = serde_json::to_string(&entry).expect("index entries serialise");
        line.push('\n');
        let index = match &mut self.index {
            Some(f) => f,
            None => {
                self.index.insert(std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(INDEX))?)
            }
        };
        // One write per line, so a kill leaves at most one torn line.
        index.write_all(line.as_bytes())?;
        self.unsynced = true;
        store.index.insert(episode_id.to_string(), place);
        Ok(())
    }

    /// Sync the segment, then the index (before the records that rely on them).
    pub(super) fn sync(&mut self) -> std::io::Result<()> {
        if self.unsynced {
            if let Some(f) = &self.file {
                f.sync_data()?;
            }
            if let Some(f) = &self.index {
                f.sync_data()?;
            }
            self.unsynced = false;
        }
        Ok(())
    }

    /// Remove every segment, dictionary and the index: `run --replace`.
    pub(super) fn clear(&mut self, store: &mut Transcripts) -> std::io::Result<()> {
        self.file = None;
        self.index = None;
        match std::fs::remove_dir_all(self.dir.join(PACKED)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        (self.segment, self.len, self.unsynced, self.next_dict) = (1, 0, false, 1);
        self.dicts.clear();
        store.index.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("terrarium-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(PACKED)).unwrap();
        dir
    }

    fn text(id: &str) -> String {
        format!("{{\"type\":\"header\",\"episode_id\":\"{id}\"}}\n{}\n", "{\"type\":\"event\"}\n".repeat(40))
    }

    fn append(dir: &Path, ids: &[&str]) -> Transcripts {
        let (mut store, mut appender) = Appender::open(dir).unwrap();
        for id in ids {
            let packed = appender.pack(&text(id)).unwrap();
            appender.append(&mut store, id, &packed).unwrap();
        }
        appender.sync().unwrap();
        store
    }

    #[test]
    fn packed_transcripts_read_back_by_episode_and_by_address() {
        let dir = scratch("read");
        let store = append(&dir, &["a", "b", "c"]);
        assert_eq!(store.read_id("b").unwrap(), text("b"));
        let again = Transcripts::open(&dir).unwrap();
        assert_eq!((again.packed(), again.read_id("c").unwrap()), (3, text("c")));
        assert_eq!(read_transcript(&dir.join("transcripts/a.jsonl")).unwrap(), text("a"));
        assert!(is_packed(&dir.join("transcripts/a.jsonl")) && !is_packed(&dir.join("transcripts/z.jsonl")));
        let missing = read_transcript(&dir.join("transcripts/z.jsonl")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
        assert!(missing.to_string().contains("z.jsonl"), "{missing}");
        // Packed against the first, which is kept whole as the dictionary, at a fraction
        // of the bytes.
        assert_eq!(std::fs::read_to_string(dir.join(dict_path(1))).unwrap(), text("a"));
        let packed = std::fs::metadata(dir.join(segment_path(1))).unwrap().len();
        assert!(packed * 10 < 3 * text("a").len() as u64, "{packed} bytes");
        // An episode packed again (an errored one run again): the latest counts.
        let (mut store, mut appender) = Appender::open(&dir).unwrap();
        appender.append(&mut store, "b", &pack("again\n", None).unwrap()).unwrap();
        assert_eq!(Transcripts::open(&dir).unwrap().read_id("b").unwrap(), "again\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_a_kill_leaves_is_cut_off_and_what_was_indexed_is_kept() {
        use std::io::Write as _;
        let dir = scratch("torn");
        append(&dir, &["a", "b"]);
        let segment = dir.join(segment_path(1));
        let whole = std::fs::metadata(&segment).unwrap().len();
        // Killed mid-frame and mid-line: half a frame, and half an index line.
        let half = pack(&text("c"), None).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&segment)
            .unwrap()
            .write_all(&half.frame[..half.frame.len() / 2])
            .unwrap();
        let mut index = std::fs::OpenOptions::new().append(true).open(dir.join(INDEX)).unwrap();
        index.write_all(br#"{"episode_id":"c","segm"#).unwrap();
        let (store, _) = Appender::open(&dir).unwrap();
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), whole, "the torn frame is cut off");
        assert!(std::fs::read_to_string(dir.join(INDEX)).unwrap().ends_with("}\n"), "the torn line is cut off");
        assert_eq!((store.packed(), store.read_id("b").unwrap()), (2, text("b")));
        // An index line whose frame never reached the segment (a lost write) is dropped.
        let f = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
        f.set_len(whole - 3).unwrap();
        let (store, _) = Appender::open(&dir).unwrap();
        assert_eq!(store.packed(), 1, "b's frame is incomplete: b runs again");
        let store = append(&dir, &["b", "c"]);
        assert_eq!((store.read_id("b").unwrap(), store.read_id("c").unwrap()), (text("b"), text("c")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_full_segment_rolls_over_to_the_next() {
        let dir = scratch("roll");
        let (mut store, mut appender) = Appender::open(&dir).unwrap();
        appender.segment_bytes = 30;
        for id in ["a", "b", "c", "d"] {
            let packed = appender.pack(&text(id)).unwrap();
            appender.append(&mut store, id, &packed).unwrap();
        }
        drop(appender);
        assert!(dir.join(segment_path(2)).is_file(), "a second segment");
        let again = Transcripts::open(&dir).unwrap();
        for id in ["a", "b", "c", "d"] {
            assert_eq!(again.read_id(id).unwrap(), text(id));
        }
        // Garbage in a segment past the index's last is dropped when it is started.
        let last = store.index.values().map(|p| p.segment).max().unwrap();
        std::fs::write(dir.join(segment_path(last + 1)), b"torn").unwrap();
        let (mut store, mut appender) = Appender::open(&dir).unwrap();
        appender.segment_bytes = 30;
        for id in ["e", "f", "g", "h"] {
            let packed = appender.pack(&text(id)).unwrap();
            appender.append(&mut store, id, &packed).unwrap();
        }
        assert!(store.index.values().any(|p| p.segment == last + 1), "the next segment was started");
        let again = Transcripts::open(&dir).unwrap();
        for id in ["a", "b", "c", "d", "e", "f", "g", "h"] {
            assert_eq!(again.read_id(id).unwrap(), text(id));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_frame_is_an_error_naming_its_segment_and_episode() {
        let dir = scratch("damaged");
        append(&dir, &["a"]);
        let segment = dir.join(segment_path(1));
        let good = std::fs::read(&segment).unwrap();
        // The frame's magic number, its header's declared size, its payload, its
        // checksum: each damaged alone is an error, never other text.
        for at in [0, 5, good.len() / 2, good.len() - 1] {
            let mut bytes = good.clone();
            bytes[at] ^= 0x5a;
            std::fs::write(&segment, bytes).unwrap();
            let e = Transcripts::open(&dir).unwrap().read_id("a").unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "byte {at}: {e}");
            assert!(e.to_string().contains("segment-000001.zst at byte 0: episode a"), "byte {at}: {e}");
        }
        std::fs::write(&segment, good).unwrap();
        assert_eq!(Transcripts::open(&dir).unwrap().read_id("a").unwrap(), text("a"), "mended, it reads again");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
