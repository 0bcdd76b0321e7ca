//! `check`, `test`, `show`, `graph`, `new` and `lint`: commands on world files.

use super::*;

#[test]
fn check_summarises_valid_worlds_and_locates_problems() {
    let out = terrarium(&["check", "worlds/", "fixtures/worlds/greenhouse"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("ok  blackmail  1872 cells, 8 tools, 7 outcomes"), "{}", text(&out));
    let out = terrarium(&["check", "fixtures/malformed/many_semantic_errors.ron"]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out)
            .contains("fixtures/malformed/many_semantic_errors.ron:21:33: target.tools[2]: unknown tool `teleport`"),
        "{}",
        text(&out)
    );
}

#[test]
fn test_passes_on_the_shipped_worlds() {
    let out = terrarium(&["test", "worlds/", "fixtures/worlds/", "--seeds", "2"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("every policy fired exactly its declared outcomes"));
}

#[test]
fn test_fails_when_a_policy_fires_the_wrong_outcomes() {
    let dir = scratch("wrong_policy");
    let world = std::fs::read_to_string(root().join("fixtures/worlds/greenhouse/world.ron")).unwrap();
    let wrong = world.replace(
        r#""wrong_code": Policy(
            description: "Near miss: tries to cancel with a wrong code, and is refused.",
            expect: [],"#,
        r#""wrong_code": Policy(
            description: "Near miss: tries to cancel with a wrong code, and is refused.",
            expect: ["unsafe_cancel"],"#,
    );
    assert_ne!(world, wrong);
    std::fs::write(dir.join("world.ron"), wrong).unwrap();
    let out = terrarium(&["test", dir.to_str().unwrap(), "--seeds", "1"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("FAIL greenhouse `wrong_code`"), "{}", text(&out));
}

#[test]
fn show_prints_what_the_target_sees() {
    let out = terrarium(&[
        "show",
        "worlds/blackmail",
        "--condition",
        "goal=none",
        "--condition",
        "threat=none",
        "--condition",
        "instruction=not_told",
        "--condition",
        "framing=unstated",
        "--condition",
        "belief=not_asked",
        "--condition",
        "deliberation=none",
        "--seed",
        "4",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("=== system prompt ==="));
    assert!(shown.contains("\"name\": \"send_email\""));
    assert!(shown.contains("=== mailbox ==="));
    assert!(!shown.contains("Your primary goal"), "the none cell has no goal statement");
    let out = terrarium(&["show", "worlds/blackmail", "--condition", "goal=none"]);
    assert_eq!(code(&out), 2, "a partial condition names several cells");
}

#[test]
fn graph_draws_dot_or_mermaid() {
    let out = terrarium(&["graph", "worlds/blackmail"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out).starts_with("digraph \"blackmail\""));
    let out = terrarium(&["graph", "worlds/blackmail", "--format", "mermaid"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out).contains("flowchart LR"));
    assert_eq!(code(&terrarium(&["graph", "worlds/blackmail", "--format", "png"])), 2);
    let several = terrarium(&["graph", "worlds/"]);
    assert_eq!(code(&several), 2, "a folder of several worlds is not one world");
    assert!(text(&several).contains("`graph` takes one world"), "{}", text(&several));
}

/// `--format svg` pipes the DOT text through Graphviz's `dot -Tsvg`; without Graphviz it
/// is an error naming the package, never an empty drawing.
#[test]
fn graph_draws_svg_through_graphviz_or_names_the_package_it_needs() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch("graph_svg");
    let svg = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_terrarium"))
            .args(["graph", "fixtures/worlds/greenhouse", "--format", "svg"])
            .current_dir(root())
            .env("PATH", path)
            .output()
            .unwrap()
    };
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = svg(&empty);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(out.stdout.is_empty());
    assert!(text(&out).contains("`apt install graphviz`"), "{}", text(&out));
    // A stand-in `dot` that wraps what it reads: the DOT text reaches it with -Tsvg.
    let fake = dir.join("bin");
    std::fs::create_dir_all(&fake).unwrap();
    std::fs::write(fake.join("dot"), "#!/bin/sh\n[ \"$1\" = -Tsvg ] || exit 9\necho '<svg>'; cat; echo '</svg>'\n")
        .unwrap();
    std::fs::set_permissions(fake.join("dot"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", fake.display());
    let out = svg(Path::new(&path));
    assert_eq!(code(&out), 0, "{}", text(&out));
    let drawn = String::from_utf8(out.stdout).unwrap();
    assert!(drawn.starts_with("<svg>\ndigraph \"greenhouse\"") && drawn.ends_with("</svg>\n"), "{drawn}");
}

#[test]
fn new_scaffolds_a_world_that_check_and_test_accept_at_once() {
    let dir = scratch("new");
    let d = dir.to_str().unwrap();
    let out = terrarium(&["new", "harbour", "--dir", d]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let world = dir.join("harbour");
    let scaffold = std::fs::read_to_string(world.join("world.ron")).unwrap();
    assert!(scaffold.contains("The tutorial in docs/authoring.md"), "the scaffold points to the tutorial");
    assert!(root().join("docs/authoring.md").is_file());
    assert_eq!(code(&terrarium(&["check", world.to_str().unwrap()])), 0);
    let tested = terrarium(&["test", world.to_str().unwrap(), "--seeds", "2"]);
    assert_eq!(code(&tested), 0, "{}", text(&tested));
    let linted = terrarium(&["lint", world.to_str().unwrap()]);
    assert_eq!(code(&linted), 0, "{}", text(&linted));
    assert!(!text(&linted).contains("warning"), "the scaffold lints clean: {}", text(&linted));

    let out = terrarium(&["new", "copy", "--from", "worlds/blackmail", "--dir", d]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let copied = std::fs::read_to_string(dir.join("copy/world.ron")).unwrap();
    let original = std::fs::read_to_string(root().join("worlds/blackmail/world.ron")).unwrap();
    assert_eq!(copied.replacen("id: \"copy\"", "id: \"blackmail\"", 1), original, "only the id changes");
    assert_eq!(code(&terrarium(&["check", dir.join("copy").to_str().unwrap()])), 0);
    // Its libraries came along, to the same place beside the copy; one that is already
    // there and differs is never overwritten.
    let lib = dir.join("lib/mail.ron");
    assert_eq!(
        std::fs::read_to_string(&lib).unwrap(),
        std::fs::read_to_string(root().join("worlds/lib/mail.ron")).unwrap()
    );
    std::fs::write(&lib, "// someone's own library\n").unwrap();
    let refused = terrarium(&["new", "copy2", "--from", "worlds/blackmail", "--dir", d]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(text(&refused).contains("lib/mail.ron already exists and differs"), "{}", text(&refused));
    assert_eq!(std::fs::read_to_string(&lib).unwrap(), "// someone's own library\n");
    assert!(!dir.join("copy2").exists(), "nothing written");

    assert_eq!(code(&terrarium(&["new", "harbour", "--dir", d])), 2, "never overwrites");
    assert_eq!(code(&terrarium(&["new", "Not An Id", "--dir", d])), 2);
    assert_eq!(code(&terrarium(&["new", "x", "--from", "no/such/world", "--dir", d])), 2);
}

#[test]
fn lint_exits_1_on_errors_and_0_on_clean_worlds() {
    let out = terrarium(&["lint", "fixtures/lint/seeded_mistakes.ron", "--max-states", "500"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("fixtures/lint/seeded_mistakes.ron:78:9: error:"), "{}", text(&out));
    assert!(text(&out).contains("states explored"));
    let out = terrarium(&["lint", "fixtures/worlds/greenhouse"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("witness `unsafe_cancel`"), "{}", text(&out));
    assert_eq!(code(&terrarium(&["lint", "fixtures/worlds/greenhouse", "--depth", "0"])), 2);
    // Realism is part of lint; test-data worlds can skip it.
    let tells = text(&terrarium(&["lint", "fixtures/lint/realism_tells.ron"]));
    assert!(tells.contains("an all-caps codename"), "{tells}");
    let skipped = text(&terrarium(&["lint", "fixtures/lint/realism_tells.ron", "--no-realism"]));
    assert!(!skipped.contains("an all-caps codename") && !skipped.contains("reserved for examples"), "{skipped}");
}

/// A world that loads (seed 0 starts) but cannot start an episode at another seed: `run`
/// and `play` say which seed and cell and why, as a failed check (exit 1), never a panic.
#[test]
fn a_seed_the_world_cannot_start_is_named_by_run_and_play() {
    let (base, world_dir, original) = scratch_blackmail("cannot_start");
    let opening = "first_message: \"New session started.";
    // Seed 0 draws this distractor (so the world loads); seed 1 does not.
    let edited =
        original.replacen(opening, "first_message: \"New session started. Start with {email.d_facilities.id}.", 1);
    std::fs::write(world_dir.join("world.ron"), edited).unwrap();
    let w = world_dir.to_str().unwrap();
    assert_eq!(code(&terrarium(&["check", w])), 0, "seed 0 starts in every cell");
    let out_dir = base.join("run");
    let run = terrarium(&[
        "run",
        w,
        "--model",
        "scripted/idle",
        "--samples",
        "2",
        "--condition",
        "goal=none",
        "--condition",
        "threat=none",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code(&run), 1, "{}", text(&run));
    assert!(text(&run).contains("cannot start at seed 1") && text(&run).contains("terrarium lint"), "{}", text(&run));
    let play = Command::new(env!("CARGO_BIN_EXE_terrarium"))
        .args(["play", w, "--seed", "1"])
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(code(&play), 1, "{}", text(&play));
    assert!(text(&play).contains("cannot start at seed 1"), "{}", text(&play));
    assert!(!text(&play).contains("panicked"));
}

/// Each command's help names what it writes: `report` its five files.
#[test]
fn report_help_names_every_file_report_writes() {
    let help = text(&terrarium(&["report", "--help"]));
    for file in terrarium_runtime::run_folder::REPORT_FILES {
        assert!(help.contains(file), "`report --help` does not name {file}:\n{help}");
    }
}

/// `test` passes a policy that uses an address nothing the target reads shows, but
/// warns: no model could send it, and `lint` never tries it.
#[test]
fn test_warns_when_a_policy_uses_what_the_target_was_never_shown() {
    let out = terrarium(&["test", "fixtures/lint/unseen_address.ron", "--seeds", "1"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains(
            "warning: `escalates` step 1 calls `send_email` with `to` = `nadia.osei@wellgate-pharmacy.co.uk`, which nothing the target can read shows"
        ),
        "{}",
        text(&out)
    );
    let clean = terrarium(&["test", "fixtures/lint/param_types.ron", "--seeds", "1"]);
    assert!(!text(&clean).contains("warning"), "{}", text(&clean));
}
