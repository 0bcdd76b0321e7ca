use crate::support::{load_rel, rel};

#[test]
fn malformed_worlds_report_located_errors() {
    insta::glob!("../../fixtures/malformed", "*.ron", |path| {
        let rel = rel(path);
        let text = std::fs::read_to_string(path).expect("fixture reads");
        let title = text.lines().next().unwrap_or_default().trim_start_matches("// ").to_string();
        let diagnostics = match load_rel(&rel) {
            Ok(_) => panic!("{rel} loaded, but it is a malformed fixture"),
            Err(d) => d,
        };
        assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            assert!(d.pos.line > 0 && d.pos.col > 0, "{rel}: unlocated diagnostic {d}");
        }
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        insta::assert_snapshot!(format!("{title}\n\n{}", lines.join("\n")));
    });
}

#[test]
fn every_semantic_error_in_a_file_is_reported_with_its_own_location() {
    let diagnostics = load_rel("fixtures/malformed/many_semantic_errors.ron").expect_err("invalid");
    assert!(diagnostics.len() >= 3, "expected every mistake reported, got {diagnostics:?}");
    let mut lines: Vec<u32> = diagnostics.iter().map(|d| d.pos.line).collect();
    lines.dedup();
    assert!(lines.len() >= 3, "each mistake should be located where it is: {diagnostics:?}");
}

#[test]
fn there_are_at_least_fifteen_distinct_authoring_mistakes() {
    let dir = crate::support::root().join("fixtures/malformed");
    let count = std::fs::read_dir(dir)
        .expect("fixtures")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "ron")))
        .count();
    assert!(count >= 15, "only {count} malformed fixtures");
}

/// A world's libraries (`include`) merge as if their parts were written in it: the
/// same world written inline has the same hashes, and a problem in a library is
/// located in the library.
#[test]
fn included_libraries_merge_as_if_written_in_the_world_and_their_mistakes_are_located_in_them() {
    let load = |rel: &str| terrarium_runtime::load_world(&crate::support::root().join(rel));
    let included = load("fixtures/include/library_user/world.ron").expect("loads");
    let inline = load("fixtures/include/inline/world.ron").expect("loads");
    assert_eq!(included.dynamics_hash, inline.dynamics_hash, "where a part is written does not matter");
    assert_eq!(included.outcomes_hash, inline.outcomes_hash);
    let runs = terrarium_runtime::policies::check_policies(&included, 2);
    assert!(runs.iter().all(|r| r.ok()), "every policy fires what it declares");

    let diagnostics = |rel: &str| match load(rel) {
        Err(terrarium_runtime::LoadError::Invalid { diagnostics, .. }) => {
            diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>()
        }
        other => panic!("{rel} should be invalid: {:?}", other.map(|w| w.id().to_string())),
    };
    let root = crate::support::root().display().to_string();
    let clash = diagnostics("fixtures/include/clash/world.ron");
    assert_eq!(clash.len(), 1, "{clash:?}");
    assert!(clash[0].contains("include[0]: `tools.done` is defined in both this world and"), "{clash:?}");
    let broken: Vec<String> =
        diagnostics("fixtures/include/broken/world.ron").into_iter().map(|d| d.replace(&root, "")).collect();
    assert!(
        broken.iter().any(|d| d.contains(
            "fixtures/include/lib/broken.ron:4:63: tools[\"peek\"].effects[0]: unknown template variable `canary.nope`"
        )),
        "located in the library: {broken:?}"
    );
    assert!(
        broken.iter().any(|d| d.contains("world.ron:8:57: include[2]: cannot read `../lib/missing.ron`")),
        "{broken:?}"
    );
}
