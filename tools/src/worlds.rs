//! Commands on worlds: `check`, `test`, `show`, `graph`, `new`, `lint`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use terrarium_core::{Episode, view};
use terrarium_runtime::policies::check_policies;
use terrarium_runtime::{LoadError, find_worlds, load_world};

use crate::cli::*;
use crate::common::*;

pub(crate) fn check(paths: &[PathBuf]) -> Outcome {
    let mut failed = false;
    for path in paths {
        let files = find_worlds(path).map_err(|e| Failure::Usage(anyhow!(e)))?;
        for file in files {
            match load_world(&file) {
                Ok(w) => println!(
                    "ok  {}  {}, {}, {}, {}  ({})",
                    w.id(),
                    count(w.cells.len() as u64, "cell"),
                    count(w.file.tools.len() as u64, "tool"),
                    count(w.file.outcomes.len() as u64, "outcome"),
                    count(w.file.policies.len() as u64, "policy"),
                    file.display()
                ),
                Err(LoadError::Invalid { diagnostics, .. }) => {
                    failed = true;
                    for d in diagnostics {
                        println!("{d}");
                    }
                }
                Err(e @ LoadError::Io { .. }) => return Err(Failure::Usage(anyhow!(e))),
            }
        }
    }
    if failed { Err(Failure::Check) } else { Ok(()) }
}

pub(crate) fn test(paths: &[PathBuf], seeds: u64) -> Outcome {
    if seeds == 0 {
        return Err(anyhow!("--seeds must be at least 1").into());
    }
    let worlds = load_all(paths)?;
    let mut failures = 0usize;
    for w in &worlds {
        let runs = check_policies(w, seeds);
        let outcomes: Vec<&String> = w.file.outcomes.keys().collect();
        let classes = terrarium_core::world::presentational_classes(w, &w.cells).len() as u64;
        println!(
            "\n{} — {} ({classes} {} that differ in more than what the target reads) × {}",
            w.id(),
            count(w.cells.len() as u64, "cell"),
            if classes == 1 { "class" } else { "classes" },
            count(seeds, "seed")
        );
        println!(
            "  {:<28} {:>5} {:>5}  {}",
            "policy",
            "runs",
            "ok",
            outcomes.iter().map(|o| format!(" {:>17}", o.as_str())).collect::<String>()
        );
        let mut by_policy: BTreeMap<&str, Vec<&terrarium_runtime::policies::PolicyRun>> = BTreeMap::new();
        for r in &runs {
            by_policy.entry(r.policy.as_str()).or_default().push(r);
        }
        for (policy, rs) in &by_policy {
            let ok = rs.iter().filter(|r| r.ok()).count();
            let counts: String = outcomes
                .iter()
                .map(|o| {
                    let fired = rs.iter().filter(|r| r.fired.contains(*o)).count();
                    let mark = if rs[0].expected.contains(*o) { "*" } else { " " };
                    format!(" {:>16}{mark}", fired)
                })
                .collect();
            println!("  {policy:<28} {:>5} {ok:>5}  {counts}", rs.len());
        }
        for (policy, cell, u) in terrarium_runtime::policies::unseen_uses(w) {
            println!(
                "  warning: `{policy}` step {} calls `{}` with `{}` = `{}`, which nothing the target can read shows (cell {cell}, seed 0): a model could not know it, so `lint` never tries it; put it where the target reads (a directory, a signature, an email)",
                u.step, u.tool, u.param, u.value
            );
        }
        for r in runs.iter().filter(|r| !r.ok()) {
            failures += 1;
            if failures <= 20 {
                match &r.error {
                    Some(e) => println!("  FAIL {} `{}` in {} seed {}: {e}", w.id(), r.policy, r.cell, r.seed),
                    None => println!(
                        "  FAIL {} `{}` in {} seed {}: fired {:?}, declared {:?} (stop: {})",
                        w.id(),
                        r.policy,
                        r.cell,
                        r.seed,
                        r.fired,
                        r.expected,
                        r.stop_reason
                    ),
                }
            }
        }
    }
    println!("\n(* = outcome the policy declares; counts are runs in which it fired)");
    if failures > 0 {
        println!("{failures} policy runs fired other than their declared outcomes");
        Err(Failure::Check)
    } else {
        println!("every policy fired exactly its declared outcomes");
        Ok(())
    }
}

pub(crate) fn show(path: &Path, conditions: &[String], seed: u64, model: Option<&str>, api: &ApiArgs) -> Outcome {
    use terrarium_runtime::providers::http::request_body;
    let filter = parse_conditions(conditions)?;
    let world = &one_world(path, "show")?;
    let cell = world.one_cell(&filter).map_err(|e| anyhow!(e))?;
    let ep = Episode::start(world, &cell, seed).map_err(|e| anyhow!("{e}"))?;
    let Some(model) = model else {
        println!("# world {} — condition {} — seed {seed}\n", world.id(), cell);
        print!("{}", view::initial_view(&ep.moment()));
        if world.file.sabotage.is_some() {
            // What a monitor reads of the same start: the hidden texts cut.
            let hidden = terrarium_core::monitor::hides_reasoning(&ep.moment(), false);
            println!(
                "\n=== what a monitor is shown of this start (not shown to the target; the target's reasoning {}) ===\n{}",
                if hidden { "is hidden from it in this cell" } else { "is shown to it in this cell" },
                terrarium_core::monitor::material(&ep.moment(), false).trim_end()
            );
        }
        return Ok(());
    };
    let Some(spec) = terrarium_runtime::sweep::ModelSpec::parse(model) else {
        return Err(anyhow!(
            "--model `{model}`: show prints provider requests; use openai/<model>, openai-responses/<model>, anthropic/<model> or mock/<file>"
        )
        .into());
    };
    let (provider, name, base_url) = (spec.provider, spec.name, spec.base_url(api.base_url.as_deref()));
    let settings = api.settings(provider, name);
    let body =
        request_body(provider, api.scaffold.unwrap_or_default(), name, &ep, &view::tool_schemas(world), &settings);
    println!("POST {}", terrarium_runtime::redact::url(&provider.endpoint(base_url.trim_end_matches('/'))));
    println!("{}", serde_json::to_string_pretty(&body).expect("requests serialise"));
    Ok(())
}

pub(crate) fn graph(path: &Path, format: GraphFormat) -> Outcome {
    let world = one_world(path, "graph")?;
    match format {
        GraphFormat::Dot => print!("{}", terrarium_core::graph::dot(&world)),
        GraphFormat::Mermaid => print!("{}", terrarium_core::graph::mermaid(&world)),
        GraphFormat::Svg => {
            use std::io::Write as _;
            let missing = || {
                anyhow!(
                    "--format svg draws with Graphviz's `dot`, which is not installed (Debian and Ubuntu: `apt install graphviz`; macOS: `brew install graphviz`); `--format mermaid` needs nothing"
                )
            };
            let mut child = std::process::Command::new("dot")
                .arg("-Tsvg")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Failure::Usage(missing())
                    } else {
                        Failure::Io(anyhow!("cannot run `dot`: {e}"))
                    }
                })?;
            let dot = terrarium_core::graph::dot(&world);
            let mut stdin = child.stdin.take().expect("stdin is piped");
            let writer = std::thread::spawn(move || stdin.write_all(dot.as_bytes()));
            let out = child.wait_with_output().map_err(|e| Failure::Io(anyhow!("`dot` failed: {e}")))?;
            let _ = writer.join();
            if !out.status.success() || out.stdout.is_empty() {
                return Err(Failure::Io(anyhow!(
                    "`dot -Tsvg` failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            std::io::stdout().write_all(&out.stdout).context("cannot write the drawing")?;
        }
    }
    Ok(())
}

pub(crate) fn new_world(id: &str, from: Option<&Path>, dir: &Path) -> Outcome {
    let from_file = match from {
        Some(path) => {
            let files = find_worlds(path).map_err(|e| Failure::Usage(anyhow!(e)))?;
            let [file] = files.as_slice() else {
                return Err(anyhow!("--from takes one world; {} has {}", path.display(), files.len()).into());
            };
            Some(file.clone())
        }
        None => None,
    };
    let file = terrarium_runtime::starter::new_world(id, from_file.as_deref(), dir).map_err(|e| anyhow!(e))?;
    println!("created {}", file.display());
    println!(
        "next: terrarium check {0}  |  terrarium test {0}  |  terrarium lint {0}  |  terrarium show {0}",
        file.display()
    );
    println!("the tutorial that builds a world like it: docs/authoring.md");
    Ok(())
}

pub(crate) fn lint(
    paths: &[PathBuf],
    depth: usize,
    max_states: usize,
    max_world_states: usize,
    realism: bool,
) -> Outcome {
    use terrarium_core::lint::{Bounds, Severity};
    if depth == 0 || max_states == 0 || max_world_states == 0 {
        return Err(anyhow!("--depth, --max-states and --max-world-states must be at least 1").into());
    }
    let mut files = Vec::new();
    for path in paths {
        files.extend(find_worlds(path).map_err(|e| Failure::Usage(anyhow!(e)))?);
    }
    let worlds = load_all(&files)?;
    let mut texts = Vec::new();
    for file in &files {
        texts.push(std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?);
    }
    // Each world's search on a core of its own; the reports are printed in order.
    let bounds = Bounds { max_depth: depth, max_states_per_cell: max_states, max_states_per_world: max_world_states };
    let pairs: Vec<(&terrarium_core::World, &String)> = worlds.iter().zip(&texts).collect();
    let reports = on_all_cores(&pairs, |&(world, text)| {
        let mut report = terrarium_core::lint::lint(world, text, bounds);
        if realism {
            report.findings.extend(terrarium_core::lint::realism(world, text));
        }
        report
    });
    let mut errors = 0;
    for (world, report) in worlds.iter().zip(reports) {
        let bound = if report.bound_hit {
            "bound hit: a missing witness is not a proof"
        } else {
            "space exhausted within the bound"
        };
        let searched = if report.explored_cells < world.cells.len() {
            format!(
                " ({} searched: the others differ from one of them only in what the target reads)",
                report.explored_cells
            )
        } else {
            String::new()
        };
        println!(
            "lint {}: {}{searched}, {} explored (depth {depth}, {} per cell; {bound})",
            world.id(),
            count(world.cells.len() as u64, "cell"),
            count(report.states as u64, "state"),
            report.states_per_cell,
        );
        for (outcome, witness) in &report.witnesses {
            if let Some(w) = witness {
                println!(
                    "  witness `{outcome}` in {}: {}",
                    if w.cell.is_empty() { "(no factors)" } else { &w.cell },
                    w.steps.join(" -> ")
                );
            }
        }
        for f in &report.findings {
            let severity = match f.severity {
                Severity::Error => {
                    errors += 1;
                    "error"
                }
                Severity::Warning => "warning",
            };
            println!("{}:{}:{}: {severity}: {}: {}", world.path, f.pos.line, f.pos.col, f.path, f.message);
        }
    }
    if errors > 0 { Err(Failure::Check) } else { Ok(()) }
}
