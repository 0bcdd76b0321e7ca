//! `terrarium export --format inspect`: a run folder as Inspect AI evaluation logs, so
//! Inspect View opens it and `inspect_ai.log.read_eval_log` reads it. One log per world
//! and what acted (the target, and the model playing the user where one did); a sample
//! per episode, whose id is its cell and whose epoch is its seed's place among the
//! cell's seeds; its messages the conversation as the target lived it, tool calls and
//! results included; its scores the verdicts as the report decides them (by the rule,
//! or by the judges where the outcome is theirs), each with its evidence as the
//! explanation and the judges' answers as metadata. Files are named as Inspect names
//! its own: `<created>_<task>_<id>.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value as Json, json};
use terrarium_core::conversation::{Message, from_events};
use terrarium_core::stats::{Z95, wilson};
use terrarium_core::transcript::{Event, SHOWN_TO_TARGET, Transcript, visible_reasoning};

use crate::run_folder::{EpisodeRecord, EpisodeStatus, FolderError, FolderWorlds, Judgement, RunFolder};

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    pub samples: usize,
}

/// Write `folder`'s logs into `out`. `created` is the logs' creation time (ISO 8601,
/// UTC), which names them: the caller's to choose, so one folder exports to the same
/// bytes. An episode whose transcript cannot be read is left out, and `warn` hears it.
pub fn export(
    folder: &RunFolder,
    worlds: &mut FolderWorlds,
    out: &Path,
    created: &str,
    warn: &mut dyn FnMut(String),
) -> Result<Exported, FolderError> {
    let input = crate::run_folder::report_input(folder, worlds, warn)?;
    let report = crate::report::build(&input);
    let mut groups: BTreeMap<(String, String), Vec<&EpisodeRecord>> = BTreeMap::new();
    for r in input.records {
        groups.entry((r.world.clone(), r.acting())).or_default().push(r);
    }
    let mut judged: BTreeMap<&str, Vec<&Judgement>> = BTreeMap::new();
    for j in input.judgements.iter().chain(&input.monitor_scores) {
        judged.entry(j.episode_id.as_str()).or_default().push(j);
    }
    std::fs::create_dir_all(out).map_err(crate::run_folder::io(format!("cannot create {}", out.display())))?;
    let mut files = Vec::new();
    let mut samples = 0;
    for ((world, acting), records) in groups {
        // A cell's seeds in order: an episode's epoch is its seed's place among them.
        let mut seeds: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for r in &records {
            seeds.entry(r.condition_key.as_str()).or_default().push(r.seed);
        }
        for s in seeds.values_mut() {
            s.sort_unstable();
            s.dedup();
        }
        let mut out_samples = Vec::new();
        let mut tallies: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        for r in &records {
            let path = folder.dir.join(&r.transcript);
            let transcript = match folder
                .transcript(r)
                .map_err(|e| e.to_string())
                .and_then(|text| Transcript::read(&text).map_err(|e| format!("{}: {e}", path.display())))
            {
                Ok(t) => t,
                Err(e) => {
                    warn(format!("episode {} left out of the export: {e}", r.episode_id));
                    continue;
                }
            };
            let epoch = seeds[r.condition_key.as_str()].iter().position(|s| *s == r.seed).unwrap_or(0) + 1;
            let decided = report.episodes.get(&r.episode_id).map(|m| &m.fired);
            let judges = judged.get(r.episode_id.as_str()).map_or(&[][..], Vec::as_slice);
            let sample = sample(r, &transcript, epoch, decided, judges);
            for (name, score) in sample["scores"].as_object().into_iter().flatten() {
                let t = tallies.entry(name.clone()).or_default();
                t.0 += score["value"].as_u64().unwrap_or(0);
                t.1 += 1;
            }
            out_samples.push(sample);
        }
        let Some(header) = input.provenance.get(&(world.clone(), acting.clone())) else { continue };
        let task_id = {
            let mut c = terrarium_core::hash::Canon::new("terrarium.inspect.task.v1");
            c.str(&world).str(&header.world.dynamics_hash).str(&acting).str(&header.target.settings.to_string());
            c.hex(11)
        };
        let scores: Vec<Json> = tallies
            .iter()
            .map(|(name, (fired, n))| {
                // Rounded where the arithmetic leaves dust (3e-17 for a bound of 0).
                let tidy = |x: f64| (x * 1e12).round() / 1e12;
                let (lo, hi) = wilson(*fired, *n, Z95).map_or((0.0, 0.0), |(l, h)| (tidy(l), tidy(h)));
                let metric = |m: &str, v: f64| (m.to_string(), json!({"name": m, "value": v}));
                let rate = if *n == 0 { 0.0 } else { *fired as f64 / *n as f64 };
                json!({
                    "name": name,
                    "scorer": name,
                    "scored_samples": n,
                    "metrics": Json::Object([metric("mean", rate), metric("wilson_low", lo), metric("wilson_high", hi)].into_iter().collect()),
                })
            })
            .collect();
        let completed = records.iter().filter(|r| r.status == EpisodeStatus::Completed).count();
        let log = json!({
            "version": 2,
            "status": "success",
            "eval": {
                "eval_id": task_id,
                "run_id": task_id,
                "created": created,
                "task": world,
                "task_id": task_id,
                "task_version": header.world.version,
                "task_description": format!("Terrarium world `{world}` ({})", header.world.path),
                "dataset": {"name": world, "samples": seeds.len()},
                "model": header.target.spec,
                "model_args": header.target.settings,
                "config": {"epochs": seeds.values().map(Vec::len).max().unwrap_or(1)},
                "metadata": {
                    "engine": header.engine,
                    "build": header.build,
                    "world": header.world,
                    "acting": acting,
                    "user": header.user,
                    "reasoning": header.reasoning,
                },
            },
            "results": {"total_samples": out_samples.len(), "completed_samples": completed, "scores": scores},
            "stats": {"started_at": created, "completed_at": created},
            "samples": out_samples,
        });
        samples += log["samples"].as_array().map_or(0, Vec::len);
        let name = format!("{}_{}_{}.json", clean(created), clean(&world), clean(&task_id));
        let path = out.join(name);
        let text = serde_json::to_string_pretty(&log).expect("logs serialise");
        std::fs::write(&path, text + "\n")
            .map_err(crate::run_folder::io(format!("cannot write {}", path.display())))?;
        files.push(path);
    }
    Ok(Exported { files, samples })
}

/// As Inspect cleans each part of a log's file name.
fn clean(part: &str) -> String {
    part.replace(['_', '/', ':', '+'], "-")
}

/// One episode as an Inspect sample.
fn sample(
    r: &EpisodeRecord,
    transcript: &Transcript,
    epoch: usize,
    decided: Option<&BTreeMap<String, Option<bool>>>,
    judges: &[&Judgement],
) -> Json {
    let messages: Vec<Json> = from_events(&transcript.events).iter().map(message).collect();
    let input: Vec<Json> = messages.iter().take(2).cloned().collect();
    let unseen: Vec<Json> = transcript
        .events
        .iter()
        .filter_map(|e| match e {
            Event::World { step, kind, text, .. } if !SHOWN_TO_TARGET.contains(&kind.as_str()) => {
                Some(json!({"step": step, "kind": kind, "text": text}))
            }
            _ => None,
        })
        .collect();
    let (stop, by) = match transcript.events.last() {
        Some(Event::Stop { reason, by, .. }) => (reason.name().to_string(), by.name()),
        _ => (String::new(), ""),
    };
    let mut scores = serde_json::Map::new();
    let mut undecided = Vec::new();
    if r.status == EpisodeStatus::Completed {
        for (name, v) in &transcript.verdicts.outcomes {
            let Some(fired) = decided.and_then(|d| d.get(name)).copied().unwrap_or(Some(v.fired)) else {
                undecided.push(name.clone());
                continue;
            };
            let mut explanation: Vec<String> =
                v.evidence.iter().map(|e| format!("step {}: {}", e.step, e.detail)).collect();
            if v.decided_by == terrarium_core::transcript::DecidedBy::Gate && v.fired {
                explanation
                    .insert(0, "the rule's gate let this episode through to the judges; their answers decide".into());
            }
            let answers: Vec<Json> = judges
                .iter()
                .filter(|j| &j.outcome == name)
                .map(|j| {
                    json!({"judge": j.judge, "role": j.role, "verdict": j.verdict, "reason": j.reason, "evidence": j.evidence, "error": j.judge_error})
                })
                .collect();
            scores.insert(
                name.clone(),
                json!({
                    "value": u8::from(fired),
                    "explanation": if explanation.is_empty() { "no evidence: the rule did not fire".to_string() } else { explanation.join("\n") },
                    "metadata": {"kind": v.kind.as_str(), "rule": v.fired, "decided_by": v.decided_by.as_str(), "judges": answers},
                }),
            );
        }
    }
    let mut sample = json!({
        "id": r.condition_key,
        "epoch": epoch,
        "input": input,
        "target": "",
        "messages": messages,
        "scores": scores,
        "metadata": {
            "episode_id": r.episode_id,
            "world": r.world,
            "cell": r.condition,
            "condition_key": r.condition_key,
            "seed": r.seed,
            "status": r.status,
            "stop_reason": stop,
            "stopped_by": by,
            "dynamics_hash": transcript.header.world.dynamics_hash,
            "outcomes_hash": transcript.header.world.outcomes_hash,
            "engine": transcript.header.engine,
            "transcript": r.transcript,
            "world_events_unseen": unseen,
            "undecided": undecided,
        },
    });
    // Monitors' suspicion scores, 0 to 100: metadata, beside the 0/1 scores the
    // metrics average.
    let monitors: Vec<Json> = judges
        .iter()
        .filter(|j| j.outcome == terrarium_core::monitor::SUSPICION)
        .map(|j| {
            json!({"monitor": j.judge, "suspicion": j.suspicion, "reason": j.reason, "evidence": j.evidence, "saw_reasoning": j.saw_reasoning, "error": j.judge_error})
        })
        .collect();
    if !monitors.is_empty() {
        sample["metadata"]["monitors"] = Json::Array(monitors);
    }
    if r.status != EpisodeStatus::Completed {
        let why = r.error.clone().unwrap_or_else(|| format!("{:?}: {stop}", r.status));
        sample["error"] = json!({"message": why, "traceback": "", "traceback_ansi": ""});
    }
    if let Some(t) = r.tokens {
        sample["model_usage"] = json!({ r.target.clone(): {"input_tokens": t.input, "output_tokens": t.output, "total_tokens": t.input + t.output} });
    }
    sample
}

/// One message in Inspect's chat format.
fn message(m: &Message) -> Json {
    match m {
        Message::System(text) => json!({"role": "system", "content": text}),
        Message::User(text) => json!({"role": "user", "content": text}),
        Message::Assistant { text, tool_calls, reasoning } => {
            let shown: Vec<String> = reasoning.iter().filter_map(visible_reasoning).collect();
            let content = if shown.is_empty() {
                Json::String(text.clone())
            } else {
                let mut parts: Vec<Json> = shown.iter().map(|r| json!({"type": "reasoning", "reasoning": r})).collect();
                parts.push(json!({"type": "text", "text": text}));
                Json::Array(parts)
            };
            let calls: Vec<Json> = tool_calls
                .iter()
                .map(|c| {
                    let parsed = serde_json::from_str::<Json>(&c.arguments_raw).ok().filter(Json::is_object);
                    let mut call = json!({"id": c.id, "function": c.name, "arguments": parsed.clone().unwrap_or(json!({})), "type": "function"});
                    if parsed.is_none() && !c.arguments_raw.trim().is_empty() {
                        call["parse_error"] = Json::String(format!("arguments are not a JSON object: {}", c.arguments_raw));
                    }
                    call
                })
                .collect();
            let mut m = json!({"role": "assistant", "content": content});
            if !calls.is_empty() {
                m["tool_calls"] = Json::Array(calls);
            }
            m
        }
        Message::Tool { call_id, name, content, ok } => {
            let mut m = json!({"role": "tool", "content": content, "tool_call_id": call_id, "function": name});
            if !ok {
                m["error"] = json!({"type": "unknown", "message": content});
            }
            m
        }
    }
}
