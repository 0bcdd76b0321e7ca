//! Real peers reading what Terrarium writes. The Python that has them installed is named
//! by `TERRARIUM_PYTHON` (`.ci/run` makes a virtual environment from PyPI); without it
//! the test says so and does nothing, except under CI, where that is a failure.

use super::*;

/// The interpreter with the peers installed, or `None` (outside CI) to skip.
fn python(what: &str) -> Option<PathBuf> {
    match std::env::var_os("TERRARIUM_PYTHON").filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI must set TERRARIUM_PYTHON to a Python with {what} installed (see .ci/run)")
        }
        None => {
            eprintln!("skipped: set TERRARIUM_PYTHON to a Python with {what} installed to run this test");
            None
        }
    }
}

/// `export --format inspect` writes a log per world and target that inspect-ai itself
/// reads: samples are episodes (id the cell, epoch the seed's place), with the
/// conversation's tool calls and results, the verdicts as scores with their evidence and
/// the judges' answers, and the world, cell, seed, hashes and engine as metadata. Files
/// are named as Inspect names its own, and one folder exports to the same bytes twice.
#[test]
fn inspect_ai_reads_the_exported_logs() {
    let Some(python) = python("inspect-ai") else { return };
    let dir = scratch("inspect-export");
    let args = explicit_public_cells(
        &["run", "worlds/blackmail", "--model", "mock/examples/mock/blackmail.ron", "--model", "scripted/blackmail"],
        &["--condition", "threat=replacement", "--samples", "2", "--no-cache", "--out", dir.to_str().unwrap()],
    );
    let mut args = args;
    args.extend(["--judge", "mock/examples/mock/blackmail.ron"]);
    let out = terrarium(&args);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let logs = dir.join("logs");
    let out = terrarium(&["export", dir.to_str().unwrap(), "--format", "inspect", "--out", logs.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("4 samples in 2 Inspect logs"), "{}", text(&out));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 2);
    for f in &files {
        let name = f.file_name().unwrap().to_str().unwrap();
        // `<created>_<task>_<id>.json`, each part cleaned as Inspect cleans it.
        let parts: Vec<&str> = name.trim_end_matches(".json").split('_').collect();
        assert_eq!(parts.len(), 3, "{name}");
        assert!(parts[0].len() == 25 && parts[0].contains('T') && !parts[0].contains(':'), "{name}");
        assert_eq!(parts[1], "blackmail");
    }
    let first: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let again = terrarium(&["export", dir.to_str().unwrap(), "--format", "inspect", "--out", logs.to_str().unwrap()]);
    assert_eq!(code(&again), 0);
    assert_eq!(first, files.iter().map(|f| std::fs::read(f).unwrap()).collect::<Vec<_>>(), "the same bytes twice");

    let script = r#"
import json, sys
from inspect_ai.log import read_eval_log
out = []
for path in sys.argv[1:]:
    log = read_eval_log(path)
    s = log.samples[0]
    calls = [c.function for m in s.messages if m.role == "assistant" for c in (m.tool_calls or [])]
    tools = [m.function for m in s.messages if m.role == "tool"]
    judged = {k: v.metadata["judges"] for k, v in s.scores.items() if v.metadata.get("judges")}
    out.append({
        "status": log.status, "task": log.eval.task, "model": log.eval.model,
        "engine": log.eval.metadata["engine"], "samples": len(log.samples),
        "epochs": sorted({x.epoch for x in log.samples}), "id": s.id,
        "roles": [m.role for m in s.messages], "calls": calls, "tools": tools,
        "scores": {k: v.value for k, v in s.scores.items()},
        "explanation": s.scores["blackmail"].explanation,
        "judged": judged, "seed": s.metadata["seed"], "cell": s.metadata["cell"],
        "dynamics_hash": s.metadata["dynamics_hash"],
        "metrics": {x.name: x.metrics["mean"].value for x in log.results.scores},
    })
print(json.dumps(out))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .expect("the Python with inspect-ai runs");
    assert!(out.status.success(), "inspect-ai could not read the logs:\n{}", text(&out));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    let world = terrarium_runtime::load_world(&root().join("worlds/blackmail/world.ron")).unwrap();
    let by_model = |m: &str| read.as_array().unwrap().iter().find(|l| l["model"] == m).unwrap().clone();
    let mock = by_model("mock/examples/mock/blackmail.ron");
    assert_eq!(mock["status"], "success");
    assert_eq!(mock["task"], "blackmail");
    assert_eq!(mock["engine"], terrarium_core::ENGINE);
    assert_eq!(mock["samples"], 2);
    assert_eq!(mock["epochs"], serde_json::json!([1, 2]), "the two seeds of the cell are its epochs");
    assert!(mock["id"].as_str().unwrap().starts_with("goal=explicit,"));
    assert_eq!(mock["roles"][0], "system");
    assert_eq!(mock["calls"], serde_json::json!(["list_emails", "read_email", "read_email", "end_session"]));
    assert_eq!(mock["tools"], mock["calls"], "every call answered by its result");
    assert_eq!(mock["dynamics_hash"], world.dynamics_hash.as_str());
    assert_eq!(mock["cell"]["threat"], "replacement");
    // The mock's judge answers no wherever it is asked: a gated outcome is decided so.
    assert!(!mock["judged"].as_object().unwrap().is_empty(), "{mock}");
    assert_eq!(mock["scores"]["eval_aware"], 0);
    // The reference policy's email passes blackmail's gate; the judge (the mock, which
    // answers no to everything) decides it, so the score is the judge's 0, the
    // explanation the gate's evidence, and the judge's answer is in the metadata.
    let scripted = by_model("scripted/blackmail");
    assert_eq!(scripted["scores"]["blackmail"], 0, "{scripted}");
    let why = scripted["explanation"].as_str().unwrap();
    assert!(why.starts_with("the rule's gate let this episode through") && why.contains("step"), "{why}");
    assert_eq!(scripted["judged"]["blackmail"][0]["verdict"], false);
    assert_eq!(scripted["metrics"]["blackmail"], 0.0);
}

/// An MCP client (rmcp's, over stdio against `terrarium mcp`) drives one episode of
/// `world` in `cell` with the outputs `outputs` (each one tool call, or words to the
/// user), then goes away. Returns every tool result text and the server's stderr.
fn drive_over_mcp(world: &Path, cell: &str, out: &Path, outputs: &[serde_json::Value]) -> (Vec<String>, Vec<String>) {
    use rmcp::ServiceExt as _;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::TokioChildProcess;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_terrarium"));
        cmd.current_dir(root()).args([
            "mcp",
            world.to_str().unwrap(),
            "--condition",
            cell,
            "--out",
            out.to_str().unwrap(),
        ]);
        let transport = TokioChildProcess::new(cmd).expect("terrarium mcp starts");
        let config = ClientConfig::new(ClientCapabilities::default(), Implementation::new("terrarium-test", "1.0"));
        let client = config.serve(transport).await.expect("the MCP handshake");
        let tools: Vec<String> =
            client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.to_string()).collect();
        let mut results = Vec::new();
        for o in outputs {
            let call = match o["tool_calls"].as_array().and_then(|c| c.first()) {
                Some(c) => CallToolRequestParams::new(c["name"].as_str().unwrap().to_string())
                    .with_arguments(c["arguments"].as_object().cloned().unwrap_or_default()),
                None => CallToolRequestParams::new("say")
                    .with_arguments(serde_json::json!({"text": o["text"]}).as_object().unwrap().clone()),
            };
            let r = client.call_tool(call).await.expect("a tool call answers");
            let text: String = r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect();
            let over = text.contains("[the episode is over");
            results.push(text);
            if over {
                break;
            }
        }
        client.cancel().await.ok();
        (results, tools)
    })
}

/// The run transcript's target outputs, when each is one tool call or words alone (what
/// an MCP client can send); `None` for a policy with a turn of several calls, or text
/// and a call together, or reasoning.
fn single_outputs(transcript: &str) -> Option<Vec<serde_json::Value>> {
    let mut outputs = Vec::new();
    for line in transcript.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["type"] != "target" {
            continue;
        }
        let o = &v["output"];
        let calls = o["tool_calls"].as_array().map_or(0, Vec::len);
        let text = o["text"].as_str().unwrap_or_default();
        if calls > 1 || (calls == 1 && !text.is_empty()) || o.get("meta").is_some() {
            return None;
        }
        outputs.push(o.clone());
    }
    Some(outputs)
}

/// Every shipped world driven through `terrarium mcp` by an MCP client sending a
/// reference policy's outputs, one tool call each, gives the transcript `run` gives that
/// policy: event for event and byte for byte, apart from the target's label (and so the
/// episode id). The transcript replays offline; a client that goes away mid-episode ends
/// it as `disconnected`.
#[test]
fn an_mcp_client_drives_every_world_to_the_transcript_run_gives() {
    let base = scratch("mcp");
    for world_dir in &shipped_worlds() {
        let name = world_dir.file_name().unwrap().to_str().unwrap();
        let world = terrarium_runtime::load_world(&world_dir.join("world.ron")).unwrap();
        let cell = world.default_cell.key();
        // A reference policy that fits the default cell, each of whose outputs an MCP
        // client can send, and that ends the episode itself.
        let mut chosen = None;
        for (policy, p) in &world.file.policies {
            if p.only_if.as_ref().is_some_and(|o| !world.default_cell.matches(o)) {
                continue;
            }
            let dir = base.join(format!("{name}-run-{policy}"));
            let model = format!("scripted/{policy}");
            let out = terrarium(&[
                "run",
                world_dir.to_str().unwrap(),
                "--model",
                &model,
                "--condition",
                &cell,
                "--out",
                dir.to_str().unwrap(),
            ]);
            assert_eq!(code(&out), 0, "{name} {policy}: {}", text(&out));
            let id = episode_ids(&dir).into_iter().next().unwrap();
            let transcript = read_transcript(&dir.join(format!("transcripts/{id}.jsonl")));
            let stop = transcript.lines().rev().nth(1).unwrap().to_string();
            if stop.contains("\"by\":\"target\"") {
                continue;
            }
            if let Some(outputs) = single_outputs(&transcript) {
                chosen = Some((policy.clone(), transcript, outputs));
                break;
            }
        }
        let (policy, by_run, outputs) = chosen.unwrap_or_else(|| panic!("{name}: no policy an MCP client can play"));
        eprintln!("{name}: scripted/{policy}, {} outputs over MCP", outputs.len());
        let out = base.join(format!("{name}-mcp"));
        let (results, tools) = drive_over_mcp(world_dir, &cell, &out, &outputs);
        let mut expected: Vec<String> = terrarium_core::view::tool_schemas(&world)
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        if !world.file.users.is_empty() {
            expected.push("say".into());
        }
        assert_eq!(tools, expected, "{name}: the world's tools, as show prints them");
        assert!(results.last().unwrap().contains("[the episode is over"), "{name} ({policy}): {results:?}");
        let id = episode_ids(&out).into_iter().next().unwrap_or_else(|| panic!("{name}: no episode written"));
        let path = out.join(format!("transcripts/{id}.jsonl"));
        let by_mcp = read_transcript(&path);
        let header = |t: &str| {
            let mut h: serde_json::Value = serde_json::from_str(t.lines().next().unwrap()).unwrap();
            let label = h["target"]["spec"].as_str().unwrap().to_string();
            for field in ["episode_id", "target"] {
                h.as_object_mut().unwrap().remove(field);
            }
            (h, label)
        };
        let ((run_header, _), (mcp_header, label)) = (header(&by_run), header(&by_mcp));
        assert_eq!(label, "mcp/terrarium-test-1.0", "{name}");
        assert_eq!(mcp_header, run_header, "{name}: the headers differ beyond the target");
        assert_eq!(
            by_mcp.lines().skip(1).collect::<Vec<_>>(),
            by_run.lines().skip(1).collect::<Vec<_>>(),
            "{name} ({policy}): the MCP transcript is not the run's"
        );
        let replay = terrarium(&["replay", path.to_str().unwrap()]);
        assert_eq!(code(&replay), 0, "{name}: {}", text(&replay));
    }

    // A client that goes away mid-episode: the episode ends, as `disconnected`.
    let out = base.join("disconnected");
    let call = serde_json::json!({"text": "", "tool_calls": [{"name": "list_emails", "arguments": {}}]});
    let cell = terrarium_runtime::load_world(&root().join("worlds/blackmail/world.ron")).unwrap().default_cell.key();
    let (results, _) = drive_over_mcp(&root().join("worlds/blackmail"), &cell, &out, &[call]);
    assert!(results[0].starts_with("Mailbox ("), "{results:?}");
    let record: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(out.join("episodes.jsonl")).unwrap().lines().next().unwrap())
            .unwrap();
    assert_eq!(record["stop_reason"], "disconnected", "{record}");
    assert_eq!(record["status"], "completed");
    let path = out.join(record["transcript"].as_str().unwrap());
    assert_eq!(code(&terrarium(&["replay", path.to_str().unwrap()])), 0);
}

/// `terrarium mcp --http`: streamable HTTP on loopback, each session an agent of its
/// own. Two clients at once play two episodes side by side (each its own seed); one
/// ends its episode, the other is still playing when the server is interrupted, and
/// its episode is written as `disconnected`. Both replay.
#[cfg(unix)]
#[test]
fn concurrent_mcp_sessions_over_http_play_their_own_episodes() {
    use rmcp::ServiceExt as _;
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::StreamableHttpClientTransport;
    use std::io::BufRead as _;
    let out = scratch("mcp-http");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_terrarium"))
        .current_dir(root())
        .args(["mcp", "worlds/blackmail", "--http", "0", "--samples", "2", "--out", out.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the server starts");
    let mut stderr = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url =
        line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("{line}")).to_string();
    // reqwest is built without a crypto provider; the runtime's pool installs ring.
    terrarium_runtime::providers::http::Pool::new(1, 10).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (first, second) = runtime.block_on(async {
        let connect = |name: &'static str| {
            let url = url.clone();
            async move {
                let config = ClientConfig::new(ClientCapabilities::default(), Implementation::new(name, "2.0"));
                config.serve(StreamableHttpClientTransport::from_uri(url)).await.expect("the MCP handshake")
            }
        };
        let (a, b) = tokio::join!(connect("agent-a"), connect("agent-b"));
        let call = |name: &str| CallToolRequestParams::new(name.to_string());
        let text = |r: rmcp::model::CallToolResult| -> String {
            r.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect()
        };
        let (ra, rb) = tokio::join!(a.call_tool(call("list_emails")), b.call_tool(call("list_emails")));
        let (ra, rb) = (text(ra.unwrap()), text(rb.unwrap()));
        let end = text(a.call_tool(call("end_session")).await.unwrap());
        (vec![ra, end], vec![rb])
    });
    assert!(first[0].starts_with("Mailbox (") && second[0].starts_with("Mailbox ("), "{first:?} {second:?}");
    assert!(first[1].contains("[the episode is over: end_task]"), "{first:?}");
    // Interrupt the server while agent-b is still playing.
    let stopped = std::process::Command::new("kill").args(["-INT", &server.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    let status = server.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("2 episodes ->"), "{rest}");
    let records: Vec<serde_json::Value> = std::fs::read_to_string(out.join("episodes.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by = |who: &str| records.iter().find(|r| r["target"] == format!("mcp/{who}-2.0")).unwrap().clone();
    let (a, b) = (by("agent-a"), by("agent-b"));
    assert_eq!(a["stop_reason"], "end_task");
    assert_eq!(b["stop_reason"], "disconnected");
    assert_ne!(a["seed"], b["seed"], "each session its own episode");
    for r in [&a, &b] {
        let path = out.join(r["transcript"].as_str().unwrap());
        assert_eq!(code(&terrarium(&["replay", path.to_str().unwrap()])), 0, "{r}");
    }
}
