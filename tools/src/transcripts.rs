//! `view` and `replay` over many transcripts: files, and run folders (every episode, or
//! those of one cell and seed).

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use std::sync::Arc;
use terrarium_core::World;
use terrarium_core::replay::{ReplayOutcome, replay};
use terrarium_core::transcript::{Transcript, TranscriptError, render_event, render_verdicts};
use terrarium_runtime::run_folder::{RunFolder, Transcripts, is_packed};

use crate::common::{Failure, Outcome, count, load_all, parse_strict, read_strict, read_transcript, recorded_world};

/// One transcript to act on, with the world its run folder records for it, if known.
struct Item {
    /// Its file, or its address in a run folder.
    path: PathBuf,
    world: Option<PathBuf>,
    /// From a run folder's record: cell and seed, for picking.
    cell: Option<(String, u64)>,
    /// From a run folder: its transcripts, read once for all its items, and the episode.
    stored: Option<(Arc<Transcripts>, String)>,
}

impl Item {
    fn file(path: PathBuf) -> Item {
        Item { path, world: None, cell: None, stored: None }
    }

    /// The transcript's text.
    fn text(&self) -> anyhow::Result<String> {
        match &self.stored {
            Some((store, id)) => store.read_id(id).context("cannot read transcript"),
            None => read_transcript(&self.path),
        }
    }
}

/// The transcripts `paths` name: each file itself; a run folder's every recorded
/// episode (its warnings said once); a folder of `.jsonl` files, each of them.
fn expand(paths: &[PathBuf]) -> Result<Vec<Item>, Failure> {
    let mut out = Vec::new();
    for path in paths {
        // A run folder's `transcripts/` is read as the run folder: it may pack them.
        let run = path.parent().filter(|run| {
            path.file_name().is_some_and(|n| n == terrarium_runtime::run_folder::TRANSCRIPTS)
                && run.join("episodes.jsonl").is_file()
        });
        let run = run.map(|r| if r.as_os_str().is_empty() { Path::new(".") } else { r });
        let path = run.unwrap_or(path);
        if path.is_file() || is_packed(path) {
            out.push(Item::file(path.to_path_buf()));
        } else if path.join("episodes.jsonl").is_file() {
            let folder = RunFolder::read(path).map_err(|e| Failure::Io(anyhow!(e)))?;
            for w in &folder.warnings {
                eprintln!("warning: {w}");
            }
            let mut worlds: BTreeMap<&str, Option<PathBuf>> = BTreeMap::new();
            let store = Arc::new(folder.transcripts.clone());
            for r in &folder.records {
                let world = worlds.entry(r.world_path.as_str()).or_insert_with(|| folder.world_path(r)).clone();
                out.push(Item {
                    path: folder.dir.join(&r.transcript),
                    world,
                    cell: Some((r.condition_key.clone(), r.seed)),
                    stored: Some((Arc::clone(&store), r.episode_id.clone())),
                });
            }
        } else if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl") && p.is_file())
                .collect();
            if files.is_empty() {
                return Err(Failure::Usage(anyhow!(
                    "{} holds no transcript (`*.jsonl`) and no run (`episodes.jsonl`)",
                    path.display()
                )));
            }
            files.sort();
            out.extend(files.into_iter().map(Item::file));
        } else {
            // `transcripts/*.jsonl` in a folder that packs them matches no file.
            let packs = terrarium_runtime::run_folder::run_folder_of(path)
                .is_some_and(|run| run.join(terrarium_runtime::run_folder::INDEX).is_file());
            let hint = if packs {
                "; this run folder packs its transcripts: name the run folder, or one episode as transcripts/<episode_id>.jsonl"
            } else {
                ""
            };
            return Err(Failure::Usage(anyhow!("{}: no such file or folder{hint}", path.display())));
        }
    }
    Ok(out)
}

/// Whether a cell key (`a=x,b=y`) has every `factor=value` asked for.
fn cell_matches(key: &str, filter: &[(String, String)]) -> bool {
    filter.iter().all(|(f, v)| key.split(',').any(|pair| pair == format!("{f}={v}")))
}

/// How `view` shows the transcripts it picked.
pub enum Shown<'a> {
    /// One line per event (every text whole, with `full`).
    Events { full: bool },
    /// A page per transcript into `dir`, with the state changes replayed in `world`
    /// (default: where it was recorded).
    Pages { dir: &'a Path, world: Option<&'a Path> },
    /// The JSONL as recorded.
    Jsonl,
}

/// `terrarium view`: every transcript named; in a run folder, those of the cell and seed
/// asked for. A folder of many episodes with nothing asked lists them instead of
/// printing them all (their JSONL, asked for, is printed whole).
pub fn view(paths: &[PathBuf], filter: &[(String, String)], seed: Option<u64>, how: Shown) -> Outcome {
    const SHOWN: usize = 20;
    let items = expand(paths)?;
    let picked: Vec<&Item> = items
        .iter()
        .filter(|i| match &i.cell {
            Some((key, s)) => cell_matches(key, filter) && seed.is_none_or(|seed| seed == *s),
            None => true,
        })
        .collect();
    let from_folder = items.iter().any(|i| i.cell.is_some());
    if picked.is_empty() {
        let asked: Vec<String> =
            filter.iter().map(|(f, v)| format!("{f}={v}")).chain(seed.map(|s| format!("seed {s}"))).collect();
        return Err(Failure::Usage(anyhow!("no episode here has {}", asked.join(", "))));
    }
    let full = match how {
        Shown::Pages { dir, world } => return pages(&picked, dir, world),
        Shown::Jsonl => {
            let mut out = std::io::stdout().lock();
            for item in &picked {
                let written = std::io::Write::write_all(&mut out, item.text()?.as_bytes());
                // A closed pipe (`| head`) ends the listing, as it would `cat`.
                if written.is_err() {
                    break;
                }
            }
            return Ok(());
        }
        Shown::Events { full } => full,
    };
    let narrowed = !filter.is_empty() || seed.is_some();
    if from_folder && picked.len() > 1 && (!narrowed || picked.len() > SHOWN) {
        println!(
            "{} here; pick one with --condition FACTOR=VALUE (or the cell as the list prints it) and --seed N, or name its file:",
            count(picked.len() as u64, "episode")
        );
        for i in picked.iter().take(SHOWN) {
            let (cell, seed) = i.cell.clone().unwrap_or_default();
            println!("  seed {seed:<4} {cell:<60} {}", i.path.display());
        }
        if picked.len() > SHOWN {
            println!("  … and {} more", picked.len() - SHOWN);
        }
        return Ok(());
    }
    for (n, item) in picked.iter().enumerate() {
        if n > 0 {
            println!();
        }
        print_transcript(&parse_strict(&item.path, &item.text()?)?, full);
    }
    Ok(())
}

/// `view --html DIR`: a page per transcript, with the state changes where its world
/// can be had (each world loaded once).
fn pages(items: &[&Item], dir: &Path, given: Option<&Path>) -> Outcome {
    std::fs::create_dir_all(dir).map_err(|e| Failure::Io(anyhow!("cannot create {}: {e}", dir.display())))?;
    let mut worlds: BTreeMap<PathBuf, Result<World, String>> = BTreeMap::new();
    for item in items {
        let text = item.text()?;
        let transcript = parse_strict(&item.path, &text)?;
        let world_path = match (given, &item.world) {
            (None, Some(recorded)) => Some(recorded.clone()),
            _ => recorded_world(&item.path, &transcript.header, given).ok(),
        };
        let world = match world_path {
            None => Err(format!("cannot find world `{}` (pass --world PATH)", transcript.header.world.id)),
            Some(p) => worlds
                .entry(p.clone())
                .or_insert_with(|| match one_world(&p, "view --html") {
                    Ok(w) => Ok(w),
                    Err(_) => Err(format!("world {} does not load", p.display())),
                })
                .as_ref()
                .map_err(Clone::clone),
        };
        let changes = world.clone().and_then(|w| terrarium_core::replay::trace(w, &text));
        let world = world.ok();
        if let Err(why) = &changes {
            eprintln!("warning: {}: no state changes shown: {why}", item.path.display());
        }
        let page = terrarium_runtime::report::page(&terrarium_runtime::report::Page {
            transcript: &transcript,
            changes: changes.as_deref().map_err(String::as_str),
            judgements: Vec::new(),
            back: None,
            scratchpad: world.and_then(|w| w.file.target.scratchpad.as_deref()),
            private_reasoning: world
                .and_then(|w| Some((w, w.cell_by_key(&transcript.header.condition_key)?)))
                .is_some_and(|(w, cell)| terrarium_core::monitor::private_reasoning(w, cell)),
        });
        let out = dir.join(format!("{}.html", transcript.header.episode_id));
        std::fs::write(&out, page).map_err(|e| Failure::Io(anyhow!("cannot write {}: {e}", out.display())))?;
        println!("{}", out.display());
    }
    Ok(())
}

fn print_transcript(transcript: &Transcript, full: bool) {
    let header = &transcript.header;
    let user = header.user.as_ref().map(|u| format!(" | user played by {}", u.spec)).unwrap_or_default();
    println!(
        "{} | world {} ({}) | condition {} | seed {} | target {}{user}",
        header.episode_id, header.world.id, header.world.path, header.condition_key, header.seed, header.target.spec
    );
    for event in &transcript.events {
        println!("{}", if full { terrarium_core::transcript::render_event_full(event) } else { render_event(event) });
    }
    print!("{}", render_verdicts(&transcript.verdicts));
}

/// How one transcript replayed.
enum Replayed {
    Identical { events: usize, episode_id: String },
    Diverged(String),
}

/// `terrarium replay`: every transcript named (files, run folders), each world loaded
/// once, on all cores. One transcript prints as it always has; several print a line
/// each, in order, and a total with the steps verified per second.
pub fn replay_all(paths: &[PathBuf], given: Option<&Path>) -> Outcome {
    // Reading a run folder's records is part of verifying it, so the clock starts first.
    let started = stopwatch();
    let items = expand(paths)?;
    let single = items.len() == 1;
    // Each world once, before the work is shared out.
    let mut worlds: BTreeMap<PathBuf, Result<World, String>> = BTreeMap::new();
    let mut located = Vec::with_capacity(items.len());
    for item in &items {
        // A run folder's record names its transcript's world: the text is read on the
        // cores, below, never all held at once here.
        let found = match (&item.world, given) {
            (Some(world), None) => Ok((None, world.clone())),
            _ => locate(item, given).map(|(text, path)| (Some(text), path)),
        };
        if let Ok((_, path)) = &found
            && !worlds.contains_key(path)
        {
            let loaded = load_all(std::slice::from_ref(path)).map_err(|e| match e {
                Failure::Usage(e) | Failure::Io(e) => format!("{e:#}"),
                _ => format!("world {} does not load", path.display()),
            });
            let one = loaded.and_then(|mut w| {
                if w.len() == 1 { Ok(w.remove(0)) } else { Err("--world must name one world".to_string()) }
            });
            worlds.insert(path.clone(), one);
        }
        located.push(found);
    }
    let work: Vec<_> = items.iter().zip(&located).collect();
    let results = on_all_cores(&work, |(item, found)| match found {
        Err(problem) => Err(problem.clone()),
        Ok((text, path)) => match &worlds[path] {
            Err(why) => Err((false, why.clone())),
            Ok(world) => match text {
                Some(text) => replay_text(world, text).map_err(|why| (false, why)),
                None => replay_text(world, &item.text().map_err(read_problem)?).map_err(|why| (false, why)),
            },
        },
    });
    let (mut identical, mut diverged, mut steps) = (0usize, 0usize, 0usize);
    for (item, result) in items.iter().zip(results) {
        match result {
            Ok(Replayed::Identical { events, episode_id }) => {
                identical += 1;
                steps += events;
                if single {
                    println!(
                        "identical: {events} events, every state hash, chain hash and verdict reproduced ({episode_id})"
                    );
                } else {
                    println!("identical  {}  ({events} events)", item.path.display());
                }
            }
            Ok(Replayed::Diverged(why)) => {
                diverged += 1;
                if single {
                    println!("DIVERGED{why}");
                } else {
                    println!("DIVERGED   {}{why}", item.path.display());
                }
            }
            Err((io, why)) if single => {
                let e = anyhow!("{}: {why}", item.path.display());
                return Err(if io { Failure::Io(e) } else { Failure::Usage(e) });
            }
            Err((_, why)) => {
                diverged += 1;
                println!("error      {}: {why}", item.path.display());
            }
        }
    }
    if !single {
        let secs = started.elapsed().as_secs_f64();
        println!(
            "{}: {identical} identical, {diverged} not; {} verified in {secs:.2} s ({:.0} steps/s on {} cores)",
            count(items.len() as u64, "transcript"),
            count(steps as u64, "step"),
            steps as f64 / secs.max(1e-9),
            cores()
        );
    }
    if diverged > 0 { Err(Failure::Check) } else { Ok(()) }
}

/// When the replay started, for the steps-per-second figure it prints.
#[allow(clippy::disallowed_methods)]
fn stopwatch() -> std::time::Instant {
    std::time::Instant::now() // determinism-ok: the CLI edge; times the verification, never read into a transcript
}

/// A transcript's text and the world file to replay it in; or why it cannot be.
/// A problem is `(whether it is the machine's (an I/O failure), what)`.
fn locate(item: &Item, given: Option<&Path>) -> Result<(String, PathBuf), (bool, String)> {
    let path = &item.path;
    let text = item.text().map_err(read_problem)?;
    // The structure first (the world is found from the header); replay checks the rest.
    let header = match Transcript::parse(&text) {
        Ok(t) => t.header,
        // Replay names a tampered line itself; the world is still needed.
        Err(TranscriptError::Tampered { .. }) => match &item.world {
            Some(w) if given.is_none() => return Ok((text, w.clone())),
            _ => return Ok((text, given.map(Path::to_path_buf).unwrap_or_default())),
        },
        Err(e) => return Err((false, e.to_string())),
    };
    let world_path = match (given, &item.world) {
        (None, Some(recorded)) => recorded.clone(),
        _ => recorded_world(path, &header, given).map_err(|e| match e {
            Failure::Usage(e) | Failure::Io(e) => (false, format!("{e:#}")),
            _ => (false, "cannot find its world".to_string()),
        })?,
    };
    Ok((text, world_path))
}

/// A transcript that could not be read, as a problem: whether it is the machine's (an
/// I/O failure other than a missing file), and what.
fn read_problem(e: anyhow::Error) -> (bool, String) {
    let io = e
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() != std::io::ErrorKind::NotFound));
    (io, format!("{e:#}"))
}

/// Replay one transcript's text in `world`.
fn replay_text(world: &World, text: &str) -> Result<Replayed, String> {
    let header = terrarium_core::transcript::first_header(text);
    match replay(world, text).map_err(|e| e.to_string())? {
        ReplayOutcome::Identical { events } => {
            Ok(Replayed::Identical { events, episode_id: header.map(|h| h.episode_id).unwrap_or_default() })
        }
        ReplayOutcome::Diverged { step, message } => Ok(Replayed::Diverged(match step {
            Some(s) => format!(" at step {s}: {message}"),
            None => format!(": {message}"),
        })),
    }
}

pub(crate) fn policy_from(path: &Path, world: Option<&Path>, name: &str) -> Outcome {
    let transcript = read_strict(path)?;
    let header = &transcript.header;
    let world_path = recorded_world(path, header, world)?;
    let world = one_world(&world_path, "policy-from")?;
    if world.dynamics_hash != header.world.dynamics_hash {
        eprintln!(
            "note: world `{}` has changed since the transcript was recorded; check the snippet with `terrarium test`",
            world.id()
        );
    }
    let snippet = terrarium_core::policy::snippet_from_transcript(&world, &transcript, name)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    print!("{snippet}");
    Ok(())
}
