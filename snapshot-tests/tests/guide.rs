//! `docs/authoring.md` cannot drift from the engine. Every RON block in it declares
//! its role:
//! - ` ```ron tutorial ` — a piece of the tutorial's world; all pieces in order make a
//!   world that must pass `check`, `test` and `lint` with no findings;
//! - ` ```ron context=tutorial ` — a reference example, merged into the tutorial's
//!   world (map entries added, list items appended, other fields replaced), which
//!   must still pass `check`;
//! - ` ```ron labelled=tutorial ` — a labelled set, calibrated against the tutorial's
//!   world, which must clear its own bar.
//! A RON block with no role fails the test. `docs/world-format.md`'s placeholder table
//! must be the one validation uses.

use terrarium_core::span;

use crate::support::root;

struct Block {
    line: usize,
    info: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        if let Some(fence) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(b) => out.push(b),
                None => current = Some(Block { line: i + 1, info: fence.trim().to_string(), text: String::new() }),
            }
        } else if let Some(b) = current.as_mut() {
            b.text.push_str(line);
            b.text.push('\n');
        }
    }
    out
}

fn load(name: &str, text: &str) -> Result<terrarium_core::World, String> {
    let mut no_includes = |_: &str| Err("the guide's examples have no included files".to_string());
    terrarium_core::load(name, text, &mut no_includes)
        .map_err(|d| d.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))
}

/// Merge the top-level fields of `fragment` into the world text `base`.
fn merge(base: &str, fragment: &str) -> Result<String, String> {
    let root = span::index(base).ok_or("the base world does not index")?;
    let wrapped = format!("({fragment})");
    let frag = span::index(&wrapped).ok_or("the example is not well-formed RON fields")?;
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut appended = String::new();
    for (name, f) in frag.fields() {
        let value = &wrapped[f.start..f.end];
        match root.fields().find(|(n, _)| *n == name) {
            Some((_, b)) => {
                let existing = &base[b.start..b.end];
                let bracket = |s: &str| s.chars().next().filter(|c| *c == '{' || *c == '[');
                if bracket(value).is_some() && bracket(value) == bracket(existing) {
                    let inner = |s: &str| s[1..s.len() - 1].trim().trim_end_matches(',').to_string();
                    let (old, new) = (inner(existing), inner(value));
                    let sep = if old.is_empty() || new.is_empty() { "" } else { ",\n" };
                    let close = &existing[existing.len() - 1..];
                    edits.push((b.start, b.end, format!("{}\n{old}{sep}{new},\n{close}", &existing[..1])));
                } else {
                    edits.push((b.start, b.end, value.to_string()));
                }
            }
            None => appended.push_str(&format!("    {name}: {value},\n")),
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = base.to_string();
    let close = out.rfind(')').ok_or("the base world has no closing parenthesis")?;
    out.insert_str(close, &appended);
    for (start, end, text) in edits {
        out.replace_range(start..end, &text);
    }
    Ok(out)
}

#[test]
fn every_example_in_the_authoring_guide_checks_in_its_context() {
    let guide = std::fs::read_to_string(root().join("docs/authoring.md")).expect("the guide exists");
    let all = blocks(&guide);
    let ron: Vec<&Block> = all.iter().filter(|b| b.info.starts_with("ron")).collect();
    for b in &ron {
        assert!(
            b.info == "ron tutorial" || b.info == "ron context=tutorial" || b.info == "ron labelled=tutorial",
            "docs/authoring.md:{}: a RON example must say `ron tutorial`, `ron context=tutorial` or `ron labelled=tutorial`, not `{}`",
            b.line,
            b.info
        );
    }
    let pieces: Vec<&str> = ron.iter().filter(|b| b.info == "ron tutorial").map(|b| b.text.as_str()).collect();
    assert!(pieces.len() >= 5, "the tutorial is built in pieces");
    let tutorial = format!("World(\n{})\n", pieces.concat());
    let world = load("docs/authoring.md (tutorial)", &tutorial)
        .unwrap_or_else(|e| panic!("the tutorial's world does not check:\n{e}\n\n{tutorial}"));

    let runs = terrarium_runtime::policies::check_policies(&world, 3);
    let wrong: Vec<String> = runs
        .iter()
        .filter(|r| !r.ok())
        .map(|r| format!("{} in {} seed {}: fired {:?}, declared {:?}", r.policy, r.cell, r.seed, r.fired, r.expected))
        .collect();
    assert!(wrong.is_empty(), "the tutorial's world fails `test`:\n{}", wrong.join("\n"));
    let report = terrarium_core::lint::lint(&world, &tutorial, terrarium_core::lint::Bounds::default());
    let findings: Vec<String> =
        report.findings.iter().map(|f| format!("{}:{}: {}", f.pos.line, f.pos.col, f.message)).collect();
    assert!(findings.is_empty(), "the tutorial's world does not lint clean:\n{}", findings.join("\n"));
    assert!(report.witnesses.values().all(Option::is_some));
    let tells: Vec<String> = terrarium_core::lint::realism(&world, &tutorial).into_iter().map(|f| f.message).collect();
    assert!(tells.is_empty(), "the tutorial's world has realism tells:\n{}", tells.join("\n"));

    for b in ron.iter().filter(|b| b.info == "ron labelled=tutorial") {
        let at = format!("docs/authoring.md:{}", b.line);
        let set = terrarium_core::calibrate::parse(&at, &b.text).unwrap_or_else(|e| panic!("{e}"));
        let c = terrarium_core::calibrate::calibrate(&at, &world, &set).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.meets_bar(),
            "{at}: the labelled example misses its own bar:\n{}",
            terrarium_core::calibrate::details(&c)
        );
    }

    let examples: Vec<&&Block> = ron.iter().filter(|b| b.info == "ron context=tutorial").collect();
    assert!(examples.len() >= 15, "the reference has an example for each construct");
    for b in examples {
        let merged = merge(&tutorial, &b.text).unwrap_or_else(|e| panic!("docs/authoring.md:{}: {e}", b.line));
        if let Err(e) = load("example", &merged) {
            panic!(
                "docs/authoring.md:{}: the example does not check in the tutorial's world:\n{e}\n\n{}",
                b.line, b.text
            );
        }
    }
}

/// The tests that read the world catalog: every world in `worlds/` is checked, tested,
/// linted, drawn, rerun, replayed and snapshotted by these.
const CATALOG_TESTS: [&str; 6] =
    ["worlds::", "graphs::", "determinism::", "lint::every_", "conversation::", "properties::"];

/// Copy `from` into `to`, folders and files.
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A new user writes the guide's tutorial world into `worlds/` of their checkout,
/// accepts its first snapshots the way step 11 says, and the suite passes: the rules
/// only the shipped catalog keeps (a lived-in inbox, `lint --realism`) do not trip a
/// world of two emails. The suite's tests that read the catalog run on a copy of the
/// repository's worlds, fixtures, docs and snapshots, in this same test binary.
#[test]
fn a_world_written_from_the_guide_into_worlds_passes_the_suite() {
    if std::env::var_os("TERRARIUM_SUITE_ROOT").is_some() {
        return; // already inside the copy
    }
    let guide = std::fs::read_to_string(root().join("docs/authoring.md")).unwrap();
    let pieces: Vec<String> = blocks(&guide).into_iter().filter(|b| b.info == "ron tutorial").map(|b| b.text).collect();
    let world = format!("World(\n{})\n", pieces.concat());
    let copy = std::env::temp_dir().join(format!("terrarium-authoring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    for part in ["worlds", "fixtures", "docs", "snapshot-tests/tests/snapshots"] {
        copy_tree(&root().join(part), &copy.join(part));
    }
    std::fs::create_dir_all(copy.join("worlds/reading_room")).unwrap();
    std::fs::write(copy.join("worlds/reading_room/world.ron"), world).unwrap();
    let suite = |accept: bool| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args(CATALOG_TESTS).args(["--test-threads", "2"]);
        cmd.env("TERRARIUM_SUITE_ROOT", &copy).env("INSTA_WORKSPACE_ROOT", &copy).env_remove("UPDATE_DOCS");
        if accept {
            cmd.env("INSTA_UPDATE", "always").env_remove("CI");
        } else {
            cmd.env("INSTA_UPDATE", "no").env("CI", "true");
        }
        let out = cmd.output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    };
    // Step 11: the first run records the new world's snapshots; the next passes as CI runs it.
    let (accepted, text) = suite(true);
    assert!(accepted, "the catalog's tests fail with the guide's world in worlds/:\n{text}");
    let (passed, text) = suite(false);
    assert!(passed, "the suite fails on the second run:\n{text}");
    assert!(!text.contains(" 0 passed"), "{text}");
    let snapshots = copy.join("snapshot-tests/tests/snapshots");
    let recorded = std::fs::read_dir(&snapshots)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("reading_room__"))
        .count();
    assert!(recorded >= 4, "one snapshot per policy and the graphs: {recorded}");
    std::fs::remove_dir_all(&copy).unwrap();
}

#[test]
fn merging_adds_map_entries_appends_list_items_and_replaces_the_rest() {
    let base = "World(\n    a: {\"x\": 1},\n    b: [1, 2],\n    c: \"old\",\n)\n";
    let merged = merge(base, "a: {\"y\": 2}, b: [3], c: \"new\", d: 4").unwrap();
    assert!(merged.contains("\"x\": 1,\n\"y\": 2"), "{merged}");
    assert!(merged.contains("1, 2,\n3"), "{merged}");
    assert!(merged.contains("c: \"new\"") && merged.contains("d: 4,"), "{merged}");
}

/// The guide's placeholder table is the one validation checks against
/// (`template::PLACEHOLDERS`); `UPDATE_DOCS=1` rewrites it.
#[test]
fn the_placeholder_table_in_the_world_format_guide_is_the_one_validation_uses() {
    let path = root().join("docs/world-format.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find("| placeholder | value | where |").expect("the guide has the table");
    let end = start + doc[start..].find("\n\n").expect("the table ends") + 1;
    let table = terrarium_core::template::placeholder_table();
    if doc[start..end] != table {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, format!("{}{table}{}", &doc[..start], &doc[end..])).unwrap();
        } else {
            panic!(
                "docs/world-format.md's placeholder table is stale; rerun with UPDATE_DOCS=1.\n--- docs\n{}--- today\n{table}",
                &doc[start..end]
            );
        }
    }
}
