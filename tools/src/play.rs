//! `terrarium play`: the author acts as the target in the terminal. Works the same with
//! piped input, one answer per line, so sessions can be scripted and tested.

use crate::common::*;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};

use terrarium_core::format::ParamType;
use terrarium_core::transcript::{Event, render_verdicts};
use terrarium_core::{Episode, EpisodeKey, TargetOutput, ToolCall};

/// The target spec recorded for a played session.
pub const SPEC: &str = "human/play";

/// Play the started episode `ep` (whose transcript header is `header`) reading answers
/// from `input`; returns the transcript text. With `echo`, each answer read is written
/// back, so a piped session reads like a typed one (a terminal has shown it already).
pub fn play(
    mut ep: Episode,
    header: &terrarium_core::Header,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    echo: bool,
) -> std::io::Result<String> {
    let (world, cell, seed) = (ep.world, ep.env.cell.clone(), ep.env.seed);
    writeln!(out, "# {} — condition {cell} — seed {seed}", world.id())?;
    if let Some(Event::Start { system, .. }) = ep.events().first() {
        writeln!(out, "\n=== system prompt ===\n{system}")?;
    }
    let mut shown = ep.events().len();
    let tools = &world.file.target.tools;
    let mut lines = input.lines();
    let mut next = move |out: &mut dyn Write, prompt: &str| -> std::io::Result<Option<String>> {
        write!(out, "{prompt}")?;
        out.flush()?;
        let line = lines.next().transpose()?;
        if let Some(l) = line.as_ref().filter(|_| echo) {
            writeln!(out, "{l}")?;
        }
        Ok(line)
    };
    while !ep.is_done() {
        for m in &ep.observation().messages {
            writeln!(out, "\n=== user ===\n{m}")?;
        }
        writeln!(out, "\nTurn {}. Choose:", ep.state().turn + 1)?;
        for (i, t) in tools.iter().enumerate() {
            let params: Vec<&str> = world.file.tools[t].params.iter().map(|p| p.name.as_str()).collect();
            writeln!(out, "  {}) {t}({})", i + 1, params.join(", "))?;
        }
        writeln!(out, "  s) say something (no tool call)\n  q) quit")?;
        let Some(choice) = next(out, "> ")? else { break };
        let choice = choice.trim();
        let output = if choice == "q" || choice == "quit" {
            break;
        } else if choice == "s" || choice == "say" {
            let text = next(out, "say: ")?.unwrap_or_default();
            TargetOutput { text, ..Default::default() }
        } else {
            let tool = choice
                .parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| tools.get(i))
                .or_else(|| tools.iter().find(|t| *t == choice));
            let Some(tool) = tool else {
                writeln!(out, "(no such choice: `{choice}`)")?;
                continue;
            };
            let mut args = serde_json::Map::new();
            for p in &world.file.tools[tool].params {
                let mut kind = p.kind.expected();
                if p.kind == ParamType::StringList {
                    kind.push_str(", separated by commas");
                }
                let optional = if p.required { "" } else { ", optional" };
                let Some(raw) = next(out, &format!("  {} ({kind}{optional}): ", p.name))? else { break };
                if raw.is_empty() && !p.required {
                    continue;
                }
                args.insert(p.name.clone(), argument(&p.kind, &raw));
            }
            let value = serde_json::Value::Object(args);
            let id = format!("call_{}_1", ep.state().turn + 1);
            let call = ToolCall { id, name: tool.clone(), arguments_raw: value.to_string(), arguments: Some(value) };
            TargetOutput { text: String::new(), tool_calls: vec![call], ..Default::default() }
        };
        ep.apply(output);
        for e in &ep.events()[shown..] {
            match e {
                Event::ToolResult { tool, ok, text, .. } => {
                    writeln!(out, "\n--- {tool} {} ---\n{text}", if *ok { "result" } else { "error" })?
                }
                Event::World { kind, text, .. }
                    if !matches!(kind.as_str(), "email" | "nudge" | "user" | "notification") =>
                {
                    writeln!(out, "[world] {kind}: {text}")?
                }
                _ => {}
            }
        }
        shown = ep.events().len();
    }
    ep.stop_by_target("player_quit".into());
    let verdicts = ep.verdicts();
    writeln!(out, "\n=== verdicts ===\n{}", render_verdicts(&verdicts))?;
    Ok(terrarium_core::encode_transcript(header, ep.events(), &verdicts))
}

/// A typed answer as the JSON a model would send; what does not parse is sent as
/// text, and the tool answers it as it would answer a model.
fn argument(kind: &ParamType, raw: &str) -> serde_json::Value {
    match kind {
        ParamType::Integer => raw.trim().parse::<i64>().map(Into::into).unwrap_or_else(|_| raw.into()),
        ParamType::Boolean => match raw.trim() {
            "true" | "yes" | "y" => true.into(),
            "false" | "no" | "n" => false.into(),
            other => other.into(),
        },
        ParamType::StringList => {
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(serde_json::Value::from).collect()
        }
        _ => raw.into(),
    }
}

/// Where a played session is saved by default: `runs/play/<episode_id>[-N].jsonl`,
/// never over an earlier session.
pub fn default_path(episode_id: &str) -> PathBuf {
    let dir = Path::new("runs").join("play");
    let mut path = dir.join(format!("{episode_id}.jsonl"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{episode_id}-{n}.jsonl"));
        n += 1;
    }
    path
}

pub(crate) fn play_cmd(path: &Path, conditions: &[String], seed: u64, out: Option<&Path>) -> Outcome {
    let filter = parse_conditions(conditions)?;
    let world = one_world(path, "play")?;
    let cell = world.one_cell(&filter).map_err(|e| anyhow!(e))?;
    // Validation starts each cell at seed 0; another seed can still fail to start (an
    // undrawn distractor named, two generated addresses alike): say so, as `run` does.
    let ep = match Episode::start(&world, &cell, seed) {
        Ok(ep) => ep,
        Err(e) => {
            eprintln!("world `{}` cannot start at seed {seed} in {cell}: {e}", world.id());
            return Err(Failure::Check);
        }
    };
    let mut header = EpisodeKey::new(&world, &cell, seed, SPEC, &serde_json::json!({})).header();
    header.build = BUILD.map(String::from);
    let stdin = std::io::stdin();
    let echo = !std::io::IsTerminal::is_terminal(&stdin);
    let transcript = play(ep, &header, &mut stdin.lock(), &mut std::io::stdout().lock(), echo)
        .context("terminal input or output failed")?;
    let file = out.map(Path::to_path_buf).unwrap_or_else(|| default_path(&header.episode_id));
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&file, transcript).with_context(|| format!("cannot write {}", file.display()))?;
    println!("saved {}", file.display());
    println!("next: terrarium replay {0}  |  terrarium policy-from {0}", file.display());
    Ok(())
}
