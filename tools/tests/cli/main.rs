//! The command-line contract: outputs, files written, and exit codes (0 success, 1 a
//! check failed, 2 usage error, 3 some episodes errored, 4 a call budget ran out, 5 a
//! file could not be read or written). One test binary (`cargo test -p terrarium --test
//! cli`), one module per group of commands; this file holds what they share: running
//! the binary, scratch folders, and `fake_provider`, a scripted reply list served by
//! `support/fake_server.rs` (the one fake provider, also serving replies as a function
//! of the request, and shared with the concurrency benchmark).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support {
    pub mod fake_server;
}

/// The hostile-input and fault campaign, kept as a suite.
mod campaign;
/// Help, exit codes and the messages every command shares.
mod commands;
/// `report`, `merge` and `rejudge`.
mod folders;
/// Other tools reading what Terrarium writes: inspect-ai reading `export` (a real peer
/// from PyPI, which `.ci/run` installs and names in `TERRARIUM_PYTHON`).
mod interop;
/// Judges in a run, and `calibrate`.
mod judges;
/// Model targets through fake providers: wire formats, retries, the cache, scaffolds.
mod models;
/// `run`: sweeps, resuming, retries, budgets, concurrency, sweep files.
mod run;
/// `replay`, `view`, `play` and `policy-from`.
mod transcripts;
/// A model playing the simulated user.
mod users;
/// `check`, `test`, `show`, `graph`, `new` and `lint`.
mod worlds;

/// The shipped worlds' folders, in name order (at least the eight the catalogue has).
fn shipped_worlds() -> Vec<PathBuf> {
    let mut worlds: Vec<PathBuf> = std::fs::read_dir(root().join("worlds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("world.ron").is_file())
        .collect();
    worlds.sort();
    assert!(worlds.len() >= 8, "{worlds:?}");
    worlds
}

/// `terrarium run --from PARENT --at STEP --model MODEL --samples N --out DIR EXTRA...`.
fn branch(parent: &Path, at: &str, model: &str, samples: &str, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["run", "--from", parent.to_str().unwrap(), "--at", at, "--model", model, "--samples", samples];
    args.extend(["--out", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    terrarium(&args)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

fn terrarium(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrarium")).args(args).current_dir(root()).output().expect("binary runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A fresh scratch folder for one test.
/// A scratch folder holding a copy of the blackmail world in `world/`, for tests that
/// edit it: (the folder, the world's folder, the world's text).
fn scratch_blackmail(name: &str) -> (PathBuf, PathBuf, String) {
    let base = scratch(name);
    let world_dir = base.join("world");
    std::fs::create_dir_all(&world_dir).unwrap();
    let original = std::fs::read_to_string(root().join("worlds/blackmail/world.ron")).unwrap();
    std::fs::write(world_dir.join("world.ron"), &original).unwrap();
    copy_libraries(&base);
    (base, world_dir, original)
}

/// The shipped libraries (`worlds/lib`) into `base/lib`, so that a world copied to
/// `base/<folder>` finds its `../lib/…` includes as it does in the catalog.
fn copy_libraries(base: &Path) {
    std::fs::create_dir_all(base.join("lib")).unwrap();
    for entry in std::fs::read_dir(root().join("worlds/lib")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, base.join("lib").join(path.file_name().unwrap())).unwrap();
    }
}

/// `before`, then conditions naming the blackmail cells of an explicit public goal, not
/// instructed, framing unstated (one per threat), then `after`: a folder small enough to
/// reason about.
/// The blackmail cells most CLI tests run: every goal type and threat, one value, no
/// extra instruction or scratchpad (60 cells), where all 1,872 would only slow them.
const SMALL: &str = "value=safety,value=unset,instruction=not_told,deliberation=none";

/// `terrarium run worlds/blackmail --model MODEL --condition SMALL REST...`.
fn run_small(model: &str, rest: &[&str]) -> Output {
    let mut args = vec!["run", "worlds/blackmail", "--model", model, "--condition", SMALL];
    args.extend_from_slice(rest);
    terrarium(&args)
}

/// The id (`m027`) the target sees for the first email of the default cell, at `seed`,
/// whose listing line contains `subject`: tests name mail as the target finds it, so a
/// world's inbox can grow without breaking them.
fn email_id(world: &str, seed: &str, subject: &str) -> String {
    let shown = terrarium(&["show", world, "--seed", seed]);
    let listing = text(&shown);
    let line = listing
        .lines()
        .find(|l| l.starts_with("[m") && l.contains(subject))
        .unwrap_or_else(|| panic!("no email `{subject}` in {world} seed {seed}:\n{listing}"));
    line[1..line.find(']').unwrap()].to_string()
}

fn explicit_public_cells<'a>(before: &[&'a str], after: &[&'a str]) -> Vec<&'a str> {
    let pinned = [
        "goal=explicit",
        "value=safety",
        "instruction=not_told",
        "framing=unstated",
        "belief=not_asked",
        "deliberation=none",
    ];
    let mut args = before.to_vec();
    args.extend(pinned.iter().flat_map(|c| ["--condition", c]));
    args.extend_from_slice(after);
    args
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Each episode of a run folder: (status, outcomes, transcript bytes) by id, and the
/// number of record lines.
fn run_contents(dir: &Path) -> (std::collections::BTreeMap<String, (String, String, String)>, usize) {
    let text = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap();
    let mut map = std::collections::BTreeMap::new();
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        let r: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let transcript = read_transcript(&dir.join(r["transcript"].as_str().unwrap()));
        map.insert(
            r["episode_id"].as_str().unwrap().to_string(),
            (r["status"].to_string(), r["outcomes"].to_string(), transcript),
        );
    }
    (map, lines)
}

/// `run worlds/edge_cases --model openai/fake-model --base-url BASE` in its control cell
/// (a plain dose question, the context stated), then `extra`, into `out`.
fn edge_control_run<'a>(base: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", "worlds/edge_cases", "--model", "openai/fake-model", "--base-url", base];
    for cell in ["request=plain", "context=stated", "framing=unstated"] {
        args.extend(["--condition", cell]);
    }
    args.extend_from_slice(extra);
    args.extend(["--out", out]);
    args
}

/// The delusion world's control cell, with the reference policy `benign` as the target.
fn user_run<'a>(base: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "worlds/delusion",
        "--model",
        "scripted/benign",
        "--user-model",
        "openai/fake-user",
        "--user-base-url",
        base,
        "--condition",
        "scenario=paranoid",
        "--condition",
        "pushback=none",
        "--condition",
        "length=short",
        "--condition",
        "role=assistant",
        "--condition",
        "framing=unstated",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out]);
    args
}

/// A scripted fake provider (`FakeServer::script`: the n-th request gets the n-th
/// reply; status 0 means a reply 1.5 s late), its port, and the test's response cache
/// emptied first, since a new server may reuse an old port.
fn fake_provider(replies: Vec<(u16, String)>) -> (u16, support::fake_server::FakeServer) {
    let _ = std::fs::remove_dir_all(test_cache_dir());
    let server = support::fake_server::FakeServer::script(replies);
    (server.port, server)
}

fn tool_call_reply(id: &str, name: &str, args: serde_json::Value) -> (u16, String) {
    let body = serde_json::json!({
        "id": format!("resp-{id}"),
        "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}
        ]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10}
    });
    (200, body.to_string())
}

/// Run with an API key set, and the response cache in a folder of the test's own (never
/// the user's). Cache keys include the fake server's port, but ports are reused across
/// tests, so each test gets its own cache folder, named after the test.
fn terrarium_with_key(args: &[&str], key: &str) -> Output {
    terrarium_with_key_in("OPENAI_API_KEY", args, key)
}

/// `run WORLD --model MODEL --base-url BASE --condition pressure=none EXTRA... --out OUT`:
/// the greenhouse's one-cell run against a fake provider, as most provider tests make it.
fn fake_run<'a>(world: &'a str, model: &'a str, base: &'a str, extra: &[&'a str], out: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run", world, "--model", model, "--base-url", base, "--condition", "pressure=none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out]);
    args
}

/// The greenhouse's one-cell run of `model` against a scripted provider (`replies`, as
/// `fake_provider` serves them), into the scratch folder `name`, with `extra` flags and
/// `key` as the provider's API key: the output, every request the provider was sent,
/// and the run folder.
fn scripted_greenhouse(
    replies: Vec<(u16, String)>,
    model: &str,
    name: &str,
    extra: &[&str],
    key: &str,
) -> (Output, Vec<(String, String)>, PathBuf) {
    let (port, server) = fake_provider(replies);
    let dir = scratch(name);
    let base = format!("http://127.0.0.1:{port}/v1");
    let args = fake_run("fixtures/worlds/greenhouse", model, &base, extra, dir.to_str().unwrap());
    let key_var = if model.starts_with("anthropic/") { "ANTHROPIC_API_KEY" } else { "OPENAI_API_KEY" };
    let out = terrarium_with_key_in(key_var, &args, key);
    (out, server.seen(), dir)
}

/// The greenhouse's one-cell run of `openai/fake-model` against `base`, uncached, into
/// a scratch folder: its output and `episodes.jsonl`.
fn greenhouse_run_against(base: &str, name: &str, key: &str) -> (Output, String) {
    let dir = scratch(name);
    let args =
        fake_run("fixtures/worlds/greenhouse", "openai/fake-model", base, &["--no-cache"], dir.to_str().unwrap());
    let out = terrarium_with_key(&args, key);
    let records = std::fs::read_to_string(dir.join("episodes.jsonl")).unwrap_or_default();
    (out, records)
}

/// The response cache of the running test (libtest names each test's thread after it).
fn test_cache_dir() -> PathBuf {
    let test = std::thread::current().name().unwrap_or("unnamed").replace("::", "_");
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("provider-cache").join(test)
}

fn terrarium_with_key_in(key_var: &str, args: &[&str], key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrarium"))
        .args(args)
        .current_dir(root())
        .env(key_var, key)
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_BASE_URL")
        .env("TERRARIUM_CACHE_DIR", test_cache_dir())
        .output()
        .expect("binary runs")
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

/// The addresses of a run folder's transcripts (`DIR/transcripts/<episode_id>.jsonl`),
/// one per recorded episode, in episode order: a file each in older folders, packed in
/// segments since.
fn transcripts_of(dir: &Path) -> Vec<PathBuf> {
    episode_ids(dir).into_iter().map(|id| dir.join(format!("transcripts/{id}.jsonl"))).collect()
}

/// A transcript's text, from its file or its address in a run folder.
fn read_transcript(path: &Path) -> String {
    terrarium_runtime::run_folder::read_transcript(path).unwrap_or_else(|e| panic!("{e}"))
}

/// Replace a transcript as a hand editing the folder would: its file, or, for a packed
/// one, a new frame appended to the last segment and a new index line (the latest
/// counts).
fn put_transcript(path: &Path, text: &str) {
    use std::io::Write as _;
    if path.is_file() {
        return std::fs::write(path, text).unwrap();
    }
    let packed = path.parent().unwrap().join("packed");
    let id = path.file_stem().unwrap().to_str().unwrap();
    let index = std::fs::read_to_string(packed.join("index.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(index.lines().last().unwrap()).unwrap();
    let segment = packed.join(format!("segment-{:06}.zst", last["segment"].as_u64().unwrap()));
    let offset = std::fs::metadata(&segment).unwrap().len();
    // Without a dictionary: the index says which frames have one.
    let frame = zstd::bulk::compress(text.as_bytes(), 3).unwrap();
    std::fs::OpenOptions::new().append(true).open(&segment).unwrap().write_all(&frame).unwrap();
    let line = serde_json::json!({"episode_id": id, "segment": last["segment"], "offset": offset, "len": frame.len()});
    let mut f = std::fs::OpenOptions::new().append(true).open(packed.join("index.jsonl")).unwrap();
    writeln!(f, "{line}").unwrap();
}

/// Take a transcript out of its run folder, as a lost file would: its file, or its
/// packed frame's index lines.
fn lose_transcript(path: &Path) {
    if path.is_file() {
        return std::fs::remove_file(path).unwrap();
    }
    let index = path.parent().unwrap().join("packed/index.jsonl");
    let id = format!("\"{}\"", path.file_stem().unwrap().to_str().unwrap());
    let kept: String = std::fs::read_to_string(&index)
        .unwrap()
        .lines()
        .filter(|l| !l.contains(&id))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(index, kept).unwrap();
}

fn episode_ids(dir: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_to_string(dir.join("episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["episode_id"].as_str().unwrap().to_string())
        .collect()
}
