//! `cargo bench -p snapshot-tests --bench storage`: how a run folder could store its
//! transcripts (issue 27, item 4), measured on the transcripts a real sweep writes.
//!
//! It runs the 10,002 episodes of `snapshot-tests/benches/sweep.sh` in memory (the
//! blackmail world's `blackmail` policy in one cell), then writes their transcripts
//! under `$TMPDIR/terrarium-bench-storage` three ways, three rounds each (the folder
//! deleted between rounds, as a researcher deletes old runs):
//!
//! - `file each`: one file per transcript in one folder, through a temporary file and a
//!   rename (what a run folder does today);
//! - `fan-out`: the same, in 256 subfolders named by the last two hex digits of the id;
//! - `segments`: appended to 64 MB segment files, with an index line per transcript
//!   (id, segment, offset, length) appended to an index file.
//!
//! For each it prints the write time (median of the rounds, and each round), the bytes
//! on disk (allocated blocks), and the time to read 1,000 transcripts by id. Then it
//! measures how well zstd (the `zstd` program, level 3, when installed) compresses
//! transcripts one by one and as a whole segment. Nothing is fsynced: a sweep syncs its
//! records, not its transcripts. `TMPDIR=/dev/shm` measures memory, not the disk.

use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use terrarium_core::{EpisodeKey, World, run_policy};

const SEGMENT_BYTES: u64 = 64 << 20;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root");
    let world = load(&root.join("worlds/blackmail/world.ron"));
    // sweep.sh's condition: six cells, 1,667 seeds each.
    let condition = [
        ("goal", "explicit"),
        ("value", "safety"),
        ("instruction", "not_told"),
        ("belief", "not_asked"),
        ("deliberation", "none"),
    ];
    let only = &world.file.policies["blackmail"].only_if;
    let cells: Vec<_> = world
        .cells
        .iter()
        .filter(|c| condition.iter().all(|(f, v)| c.get(f) == Some(*v)))
        .filter(|c| only.as_ref().is_none_or(|o| c.matches(o)))
        .cloned()
        .collect();
    assert_eq!(cells.len(), 6, "sweep.sh's six cells");
    let mut transcripts: Vec<(String, String)> = Vec::new();
    for cell in &cells {
        for seed in 0..1667 {
            let ep = run_policy(&world, cell, seed, "blackmail").expect("runs");
            let key = EpisodeKey::new(&world, cell, seed, "scripted/blackmail", &serde_json::json!({}));
            let text = terrarium_core::encode_transcript(&key.header(), ep.events(), &ep.verdicts());
            transcripts.push((key.id(), text));
        }
    }
    let raw: u64 = transcripts.iter().map(|(_, t)| t.len() as u64).sum();
    println!(
        "{} transcripts, {:.1} KB each on average ({:.1} MB in all)",
        transcripts.len(),
        raw as f64 / transcripts.len() as f64 / 1024.0,
        raw as f64 / 1e6
    );
    let base = std::env::temp_dir().join("terrarium-bench-storage");
    let _ = std::fs::remove_dir_all(&base);
    println!("{:<10} {:>9} {:>24} {:>14} {:>16}", "layout", "write", "rounds", "on disk", "1,000 reads");
    type Reader = Box<dyn Fn(&str) -> String>;
    type Write = dyn Fn(&Path, &[(String, String)]);
    type Open = dyn Fn(&Path) -> Reader;
    let layouts: [(&str, &Write, &Open); 3] = [
        ("file each", &|dir, ts| write_files(dir, ts, false), &|dir| {
            let dir = dir.to_path_buf();
            Box::new(move |id| read_file(&dir, id, false))
        }),
        ("fan-out", &|dir, ts| write_files(dir, ts, true), &|dir| {
            let dir = dir.to_path_buf();
            Box::new(move |id| read_file(&dir, id, true))
        }),
        ("segments", &|dir, ts| write_segments(dir, ts), &|dir| Box::new(segment_reader(dir))),
    ];
    for (name, write, read) in layouts {
        let mut rounds = Vec::new();
        let dir = base.join("run");
        for _ in 0..3 {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("bench folder");
            rounds.push(time(|| write(&dir, &transcripts)));
        }
        let bytes = allocated(&dir);
        // Opening the layout (reading a segment index) is part of the reads' time.
        let reads = time(|| {
            let read = read(&dir);
            for (id, text) in transcripts.iter().step_by(transcripts.len() / 1000).take(1000) {
                assert_eq!(&read(id), text, "{name} reads back what it wrote");
            }
        });
        let mut sorted = rounds.clone();
        sorted.sort();
        let each: Vec<String> = rounds.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect();
        println!(
            "{name:<10} {:>7.2} s {:>22} s {:>11.1} MB {:>13.1} ms",
            sorted[1].as_secs_f64(),
            each.join(" / "),
            bytes as f64 / 1e6,
            reads.as_secs_f64() * 1e3
        );
    }
    compression(&transcripts);
    let _ = std::fs::remove_dir_all(&base);
}

fn load(path: &Path) -> World {
    let text = std::fs::read_to_string(path).expect("world reads");
    let folder = path.parent().expect("folder").to_path_buf();
    let mut read = |rel: &str| std::fs::read_to_string(folder.join(rel)).map_err(|e| e.to_string());
    terrarium_core::load(&path.display().to_string(), &text, &mut read).expect("valid world")
}

// A benchmark measures wall-clock time by definition; nothing it times reads the clock.
#[allow(clippy::disallowed_methods)]
fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now(); // determinism-ok: a benchmark measures wall time
    f();
    start.elapsed()
}

/// Bytes allocated on disk under `dir` (blocks, not lengths: a small file takes a block).
fn allocated(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).expect("bench folder") {
        let entry = entry.expect("entry");
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() { allocated(&entry.path()) + meta.blocks() * 512 } else { meta.blocks() * 512 };
    }
    total
}

fn file_path(dir: &Path, id: &str, fan_out: bool) -> PathBuf {
    if fan_out { dir.join(&id[id.len() - 2..]).join(format!("{id}.jsonl")) } else { dir.join(format!("{id}.jsonl")) }
}

fn write_files(dir: &Path, transcripts: &[(String, String)], fan_out: bool) {
    if fan_out {
        for i in 0..256 {
            std::fs::create_dir(dir.join(format!("{i:02x}"))).expect("subfolder");
        }
    }
    for (id, text) in transcripts {
        let path = file_path(dir, id, fan_out);
        let tmp = path.with_extension("jsonl.tmp");
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
    }
}

fn read_file(dir: &Path, id: &str, fan_out: bool) -> String {
    std::fs::read_to_string(file_path(dir, id, fan_out)).expect("read")
}

fn write_segments(dir: &Path, transcripts: &[(String, String)]) {
    let mut index = std::fs::File::create(dir.join("index.jsonl")).expect("index");
    let (mut n, mut segment, mut offset) = (0, None::<std::fs::File>, 0u64);
    let mut lines = String::new();
    for (id, text) in transcripts {
        if segment.is_none() || offset + text.len() as u64 > SEGMENT_BYTES {
            n += 1;
            segment = Some(std::fs::File::create(dir.join(format!("segment-{n:04}.jsonl"))).expect("segment"));
            offset = 0;
        }
        segment.as_mut().expect("open").write_all(text.as_bytes()).expect("append");
        lines.push_str(&format!("{{\"id\":\"{id}\",\"segment\":{n},\"offset\":{offset},\"len\":{}}}\n", text.len()));
        // One index write per transcript, as a run appends one record per episode.
        index.write_all(lines.as_bytes()).expect("index line");
        lines.clear();
        offset += text.len() as u64;
    }
}

/// Read the index once; then each transcript is one seek and one read.
fn segment_reader(dir: &Path) -> impl Fn(&str) -> String + use<> {
    let index: std::collections::BTreeMap<String, (u64, u64, usize)> = std::fs::read_to_string(dir.join("index.jsonl"))
        .expect("index")
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("index line");
            let n = |k: &str| v[k].as_u64().expect("number");
            (v["id"].as_str().expect("id").to_string(), (n("segment"), n("offset"), n("len") as usize))
        })
        .collect();
    let dir = dir.to_path_buf();
    move |id| {
        let (segment, offset, len) = index[id];
        let mut f = std::fs::File::open(dir.join(format!("segment-{segment:04}.jsonl"))).expect("segment");
        f.seek(std::io::SeekFrom::Start(offset)).expect("seek");
        let mut buf = vec![0; len];
        f.read_exact(&mut buf).expect("read");
        String::from_utf8(buf).expect("utf-8")
    }
}

/// zstd -3 on a sample of transcripts one by one, and on all of them as one stream.
fn compression(transcripts: &[(String, String)]) {
    let zstd = |input: &[u8]| -> Option<u64> {
        let mut child = std::process::Command::new("zstd")
            .args(["-3", "-q", "-c"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut stdin = child.stdin.take()?;
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().ok()?;
        writer.join().ok()?.ok()?;
        Some(out.stdout.len() as u64)
    };
    let sample: Vec<&(String, String)> = transcripts.iter().step_by(transcripts.len() / 200).take(200).collect();
    let (mut raw, mut alone) = (0, 0);
    for (_, t) in &sample {
        let Some(z) = zstd(t.as_bytes()) else {
            println!("zstd: not installed; compression not measured");
            return;
        };
        raw += t.len() as u64;
        alone += z;
    }
    let all: String = transcripts.iter().map(|(_, t)| t.as_str()).collect();
    let whole = zstd(all.as_bytes()).unwrap_or(0);
    println!(
        "zstd -3, each of {} transcripts alone: {:.0}% of their bytes ({:.1} KB each); all {} as one stream: {:.1}% ({:.2} KB each)",
        sample.len(),
        100.0 * alone as f64 / raw as f64,
        alone as f64 / sample.len() as f64 / 1024.0,
        transcripts.len(),
        100.0 * whole as f64 / all.len() as f64,
        whole as f64 / transcripts.len() as f64 / 1024.0
    );
}
