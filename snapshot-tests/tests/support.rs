use std::path::{Path, PathBuf};

use terrarium_core::transcript::{render_event, render_verdicts};
use terrarium_core::{Cell, Episode, World};

/// The repository root, or the copy of it `TERRARIUM_SUITE_ROOT` names (the authoring
/// test runs the suite on a copy of the catalog with a new world in it).
pub fn root() -> PathBuf {
    match std::env::var_os("TERRARIUM_SUITE_ROOT") {
        Some(copy) => PathBuf::from(copy),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crate sits in the repo").to_path_buf(),
    }
}

/// The shipped catalog, described in `docs/worlds.md`. Every world in `worlds/` must
/// check, pass its reference policies, lint clean with a witness for every outcome and
/// match its snapshots; the catalog must also look lived in (an inbox of 20 to 60
/// messages, `lint --realism` clean). A world an author adds is held to the first list
/// only (`docs/authoring.md`, step 11).
pub const CATALOG: [&str; 11] = [
    "blackmail",
    "conference",
    "credentials",
    "delusion",
    "denial_of_care",
    "edge_cases",
    "expenses",
    "leaking",
    "misuse",
    "shutdown",
    "whistleblowing",
];

/// Whether `rel` (a path from [`all_worlds`]) is a world of the shipped catalog.
pub fn is_shipped(rel: &str) -> bool {
    CATALOG.iter().any(|w| rel == format!("worlds/{w}/world.ron"))
}

/// Load a world by its path relative to the repository root. Diagnostics name the
/// relative path, so snapshots do not depend on where the checkout is.
pub fn load_rel(rel: &str) -> Result<World, Vec<terrarium_core::Diagnostic>> {
    let full = root().join(rel);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {rel}: {e}"));
    let folder = full.parent().expect("file has a folder").to_path_buf();
    let mut read = |inc: &str| std::fs::read_to_string(folder.join(inc)).map_err(|e| e.to_string());
    terrarium_core::load(rel, &text, &mut read)
}

pub fn load(rel: &str) -> World {
    load_rel(rel).unwrap_or_else(|d| panic!("{rel} is invalid: {d:?}"))
}

/// A path relative to the repository root.
pub fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).to_string_lossy().replace('\\', "/")
}

/// Every shipped and fixture world, by relative path.
pub fn all_worlds() -> Vec<String> {
    let mut out = Vec::new();
    for dir in ["worlds", "fixtures/worlds"] {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .expect("world folder exists")
            .map(|e| e.expect("entry").path().join("world.ron"))
            .filter(|p| p.is_file())
            .collect();
        entries.sort();
        out.extend(entries.iter().map(|p| rel(p)));
    }
    out
}

/// The cell a policy is snapshotted in: the default cell when the policy applies
/// there, else its first applicable cell.
pub fn snapshot_cell(world: &World, policy: &str) -> Cell {
    let p = &world.file.policies[policy];
    match &p.only_if {
        Some(only) if !world.default_cell.matches(only) => {
            world.cells.iter().find(|c| c.matches(only)).expect("policy applies somewhere").clone()
        }
        _ => world.default_cell.clone(),
    }
}

/// The transcript of an episode as people read it: one line per event, then verdicts.
pub fn render(ep: &Episode) -> String {
    let mut out = String::new();
    for e in ep.events() {
        out.push_str(&render_event(e));
        out.push('\n');
    }
    out.push_str(&render_verdicts(&ep.verdicts()));
    out
}

/// The whole transcript file of a policy run.
pub fn transcript(world: &World, cell: &Cell, seed: u64, policy: &str) -> String {
    let ep = terrarium_core::run_policy(world, cell, seed, policy).expect("policy runs");
    let spec = format!("scripted/{policy}");
    let header = terrarium_core::EpisodeKey::new(world, cell, seed, &spec, &serde_json::json!({})).header();
    terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts())
}

/// The request each provider would be sent next in `ep`, checked against the rules its
/// API enforces (`providers::conformance`); the first broken rule, named.
pub fn conforms(ep: &Episode, schemas: &[serde_json::Value]) -> Result<(), String> {
    use terrarium_runtime::providers::{Scaffold, conformance, http};
    let settings = terrarium_runtime::providers::Settings::default();
    for (provider, check) in [
        (http::Provider::OpenAiChat, conformance::chat as fn(&str) -> Result<(), String>),
        (http::Provider::OpenAiResponses, conformance::responses),
        (http::Provider::Anthropic, conformance::anthropic),
    ] {
        let body = http::request_body(provider, Scaffold::Native, "m", ep, schemas, &settings).to_string();
        check(&body).map_err(|e| format!("{}: {e}", provider.name()))?;
    }
    Ok(())
}
