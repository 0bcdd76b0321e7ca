//! Sweep files: a whole `terrarium run` written down (worlds, filters, samples, targets
//! with their own base URLs, settings, connection limits and prices, judges, budgets),
//! so a published table names the one file that produced it. Flags given on the
//! command line override the file.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use serde::Deserialize;

/// `terrarium run --sweep FILE`. Paths are relative to the file's folder.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SweepFile {
    #[serde(default)]
    pub worlds: Vec<PathBuf>,
    /// `factor=value` filters, as `--condition`.
    #[serde(default)]
    pub conditions: Vec<String>,
    pub samples: Option<u64>,
    pub seed: Option<u64>,
    pub out: Option<PathBuf>,
    /// Requests in flight per provider endpoint, for targets that do not set their own.
    pub max_connections: Option<u64>,
    pub max_api_calls: Option<u64>,
    pub max_cost_usd: Option<f64>,
    #[serde(default)]
    pub targets: Vec<Entry>,
    #[serde(default)]
    pub judges: Vec<Entry>,
    /// Whether judges see the target's visible reasoning (default true).
    pub judge_sees_reasoning: Option<bool>,
    /// The model that plays the simulated user, as `--user-model`.
    pub user_model: Option<Entry>,
}

/// One target or judge: the runtime's description of one.
pub(crate) type Entry = terrarium_runtime::sweep::TargetEntry;

/// Read a sweep file; problems are reported as `path:line:col: message`.
pub(crate) fn read(path: &Path) -> anyhow::Result<SweepFile> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut file: SweepFile = options
        .from_str(&text)
        .map_err(|e| anyhow!("{}:{}:{}: {}", path.display(), e.position.line, e.position.col, e.code))?;
    let folder = path.parent().unwrap_or(Path::new(""));
    for w in &mut file.worlds {
        *w = folder.join(&*w);
    }
    if file.out.as_ref().is_some_and(|o| o.as_os_str().is_empty()) {
        return Err(anyhow!(
            "{}: `out` is empty; name the run folder (relative to this file), or leave `out` out for runs/<world>",
            path.display()
        ));
    }
    file.out = file.out.map(|o| folder.join(o));
    for (i, e) in file.targets.iter().chain(&file.judges).chain(&file.user_model).enumerate() {
        if e.model.trim().is_empty() {
            return Err(anyhow!("{}: entry {} has an empty `model`", path.display(), i + 1));
        }
        if let Some(r) = &e.reasoning_effort
            && !["low", "medium", "high"].contains(&r.as_str())
        {
            return Err(anyhow!(
                "{}: {}: reasoning_effort must be low, medium or high, not {r:?}",
                path.display(),
                e.model
            ));
        }
        if let Some(r) = &e.reasoning_summary
            && !terrarium_runtime::providers::REASONING_SUMMARIES.contains(&r.as_str())
        {
            return Err(anyhow!(
                "{}: {}: reasoning_summary must be auto, concise, detailed or none, not {r:?}",
                path.display(),
                e.model
            ));
        }
        if let Some(p) = &e.price
            && !(p.input_per_mtok >= 0.0 && p.output_per_mtok >= 0.0)
        {
            return Err(anyhow!("{}: {}: prices must be non-negative", path.display(), e.model));
        }
    }
    let connections = file.max_connections.into_iter().chain(file.targets.iter().filter_map(|e| e.max_connections));
    if connections.into_iter().any(|c| c == 0) {
        return Err(anyhow!("{}: max_connections must be at least 1", path.display()));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = file.targets.iter().find(|e| !seen.insert(e.model.as_str())) {
        return Err(anyhow!("{}: target {} is listed twice", path.display(), dup.model));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<SweepFile> {
        let dir = std::env::temp_dir().join(format!("terrarium-sweep-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{:x}.ron", text.len()));
        std::fs::write(&path, text).unwrap();
        read(&path)
    }

    #[test]
    fn a_sweep_file_names_targets_with_their_own_settings_and_prices() {
        let file = parse(
            r#"(
                worlds: ["../worlds/blackmail"],
                conditions: ["goal=explicit"],
                samples: 50,
                targets: [
                    (model: "openai/gpt-x", temperature: 1.0, max_connections: 32,
                     price: (input_per_mtok: 2.0, output_per_mtok: 8.0)),
                    (model: "openai/local", base_url: "http://127.0.0.1:8000/v1", scaffold: "text"),
                ],
                judges: [(model: "anthropic/judge-y")],
                max_cost_usd: 25.0,
            )"#,
        )
        .unwrap();
        assert_eq!(file.samples, Some(50));
        assert!(file.worlds[0].ends_with("../worlds/blackmail"), "relative to the file");
        assert_eq!(file.targets[0].price.unwrap().output_per_mtok, 8.0);
        assert_eq!(file.targets[1].scaffold, Some(terrarium_runtime::providers::Scaffold::Text));
        assert_eq!(file.judges[0].model, "anthropic/judge-y");
    }

    #[test]
    fn the_example_in_the_sweeps_guide_reads() {
        let guide = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/sweeps.md")).unwrap();
        let start = guide.find("```ron\n").expect("the guide has a RON block") + 7;
        let block = &guide[start..start + guide[start..].find("```").unwrap()];
        let file = parse(block).unwrap_or_else(|e| panic!("docs/sweeps.md: {e}"));
        assert_eq!((file.targets.len(), file.judges.len(), file.samples), (4, 1, Some(100)));
        assert_eq!(file.targets[2].scaffold, Some(terrarium_runtime::providers::Scaffold::Text));
    }

    #[test]
    fn mistakes_are_located_or_named() {
        let e = parse("(samples: 5,\n  tragets: [])").unwrap_err().to_string();
        assert!(e.contains(":2:") && e.contains("tragets"), "{e}");
        let e = parse(r#"(targets: [(model: "openai/a", scaffold: "xml")])"#).unwrap_err().to_string();
        assert!(e.contains("a scaffold is `native` or `text`, not `xml`"), "{e}");
        let e = parse(r#"(targets: [(model: "openai/a"), (model: "openai/a")])"#).unwrap_err().to_string();
        assert!(e.contains("listed twice"), "{e}");
    }
}
