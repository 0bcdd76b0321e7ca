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
