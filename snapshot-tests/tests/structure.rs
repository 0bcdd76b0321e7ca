//! The code's own shape: no crate has an import cycle between its top-level modules.
//! A module that imports another sits above it; a cycle means neither can be read, or
//! changed, without the other. The graph is drawn from the source: `crate::m` paths
//! (grouped `crate::{a, b}` included) and `super::super::m` from nested files, with
//! comments and unit-test modules set aside.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::support::{CATALOG, load, root};

/// The crates whose module graphs must stay acyclic.
const CRATES: [&str; 3] = ["engine/core/src", "engine/runtime/src", "tools/src"];

/// Every `.rs` file under `src`.
fn rust_files(src: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("reads the source folder") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// Module → the modules it imports, for every `.rs` file under `src`.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let files = rust_files(src);
    let top = |file: &Path| -> String {
        let rel = file.strip_prefix(src).expect("under src").with_extension("");
        match rel.iter().next().map(|p| p.to_string_lossy().into_owned()) {
            Some(m) if !["lib", "main", "mod"].contains(&m.as_str()) => m,
            _ => "<root>".to_string(),
        }
    };
    let modules: BTreeSet<String> = files.iter().map(|f| top(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src");
        let parts: Vec<String> = rel.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let nested = parts.len() >= 2;
        let me = top(&file);
        let text = std::fs::read_to_string(&file).expect("reads a source file");
        for target in imports(&text, nested, &modules) {
            if target != me {
                graph.entry(me.clone()).or_default().insert(target);
            }
        }
        graph.entry(me).or_default();
    }
    graph
}

/// The top-level modules (of `modules`) a file's code names.
fn imports(text: &str, nested: bool, modules: &BTreeSet<String>) -> BTreeSet<String> {
    // Unit tests may reach anywhere; they are not the module's imports.
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = BTreeSet::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            // `terrarium_core::` and the like are other crates; a path segment ends in `crate`.
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                out.extend(inner.split(',').filter_map(|p| module_name(p.trim())));
            } else {
                out.extend(module_name(rest));
            }
        }
        if nested {
            let mut rest = line;
            while let Some(at) = rest.find("super::super::") {
                rest = &rest[at + "super::super::".len()..];
                out.extend(module_name(rest));
            }
        }
    }
    out.retain(|m| modules.contains(m));
    out
}

/// The name a path starts with (a module, if the crate has one by that name).
fn module_name(path: &str) -> Option<String> {
    let name: String = path.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// The strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.out.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.out
}

#[test]
fn no_crate_has_an_import_cycle_between_its_modules() {
    for krate in CRATES {
        let graph = import_graph(&root().join(krate));
        assert!(graph.len() > 3, "{krate}: only {} modules found", graph.len());
        let found = cycles(&graph);
        assert!(
            found.is_empty(),
            "{krate} has import cycles: {}. A module that imports another sits above it: move what both need below both.",
            found.iter().map(|c| c.join(" <-> ")).collect::<Vec<_>>().join("; ")
        );
    }
}

/// Every `.rs` file under `src`, with its unit-test module and comments set aside: the
/// code itself, line by line.
fn code_lines(src: &Path) -> Vec<(String, usize, String)> {
    let mut out = Vec::new();
    for path in rust_files(src) {
        let text = std::fs::read_to_string(&path).expect("reads a source file");
        let code = text.find("#[cfg(test)]\nmod tests").map_or(text.as_str(), |at| &text[..at]);
        for (i, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            out.push((path.display().to_string(), i + 1, line.to_string()));
        }
    }
    out
}

/// No world-specific code: the engine's own code names no shipped world, none of their
/// tools and none of their outcomes. A world's parts are found by what the world
/// declares (an outcome's `role`, `refusal`), never by name.
#[test]
fn the_engine_names_no_world_tool_or_outcome_of_the_shipped_worlds() {
    let mut names = BTreeSet::new();
    for id in CATALOG {
        let world = load(&format!("worlds/{id}/world.ron"));
        names.insert(id.to_string());
        names.extend(world.file.outcomes.keys().cloned());
        names.extend(world.file.tools.keys().cloned());
    }
    assert!(names.len() > 40, "{names:?}");
    let mut found = Vec::new();
    for krate in ["engine/core/src", "engine/runtime/src"] {
        for (file, line, code) in code_lines(&root().join(krate)) {
            for literal in code.split('"').skip(1).step_by(2) {
                if names.contains(literal) {
                    found.push(format!("{file}:{line}: \"{literal}\""));
                }
            }
        }
    }
    assert!(found.is_empty(), "engine code names a world's part:\n{}", found.join("\n"));
}

#[test]
fn the_cycle_finder_reads_grouped_and_nested_imports_and_finds_a_cycle() {
    let modules: BTreeSet<String> =
        ["cond", "env", "episode", "judge", "world"].into_iter().map(String::from).collect();
    assert_eq!(
        imports(
            "use crate::{episode::Episode, cond, count};\nuse terrarium_core::world; // crate::judge\n",
            false,
            &modules
        ),
        ["cond", "episode"].into_iter().map(String::from).collect()
    );
    assert_eq!(imports("use super::super::env::Env;\n", true, &modules), ["env".to_string()].into());
    assert!(imports("use super::super::env::Env;\n", false, &modules).is_empty());
    assert!(imports("x\n#[cfg(test)]\nmod tests {\n use crate::world::World;\n}\n", false, &modules).is_empty());
    let graph: BTreeMap<String, BTreeSet<String>> =
        [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a", "d"]), ("d", vec![])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
            .collect();
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]);
}
