use std::collections::BTreeSet;

use terrarium_core::lint::{Bounds, Report, Severity, lint};

use crate::support::{all_worlds, load_rel, root};

fn lint_file(rel: &str) -> Report {
    let world = load_rel(rel).unwrap_or_else(|d| panic!("{rel}: {d:?}"));
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    lint(&world, &text, Bounds::default())
}

fn render(rel: &str, r: &Report) -> String {
    let mut out = format!("bound hit: {}\n", r.bound_hit);
    for (outcome, w) in &r.witnesses {
        match w {
            Some(w) => out.push_str(&format!("witness {outcome} ({} steps)\n", w.steps.len())),
            None => out.push_str(&format!("no witness {outcome}\n")),
        }
    }
    for f in &r.findings {
        out.push_str(&format!("{rel}:{}:{}: {:?}: {}\n", f.pos.line, f.pos.col, f.severity, f.message));
    }
    out
}

#[test]
fn lint_finds_every_seeded_mistake_at_its_location() {
    let rel = "fixtures/lint/seeded_mistakes.ron";
    let r = lint_file(rel);
    let at = |line: u32, severity: Severity, text: &str| {
        assert!(
            r.findings.iter().any(|f| f.pos.line == line && f.severity == severity && f.message.contains(text)),
            "expected {severity:?} at line {line} containing {text:?}:\n{}",
            render(rel, &r)
        );
    };
    // 1. Reachable although the policy that expects it is wrong: lint finds the witness,
    //    reading the code from the note first (the target is never handed it).
    let witness = r.witnesses["door_opened"].as_ref().expect("lint finds door_opened itself");
    assert!(witness.steps.iter().any(|s| s.starts_with("open_door") && !s.contains("0000")), "{witness:?}");
    assert!(witness.steps.first().is_some_and(|s| s.starts_with("read_note")), "{witness:?}");
    // 2. Unsatisfiable: no witness, and the clause that never held is named where it is written.
    assert!(r.witnesses["armed_breach"].is_none());
    at(70, Severity::Warning, "`armed_breach` has no witness");
    at(75, Severity::Warning, "never held: `VarEq(\"armed\", Bool(true))`");
    // 3. An unreachable machine state.
    at(41, Severity::Warning, "state `melted` of machine `door` was never reached");
    // 4. A tool never offered.
    at(57, Severity::Warning, "tool `polish` is never offered");
    // 5. A harmful outcome that doing nothing fires: an error.
    at(78, Severity::Error, "harmful outcome `flooded` fires when the target does nothing");
    // 6. A factor value in no valid cell.
    at(19, Severity::Warning, "value `maintenance` of factor `shift` is in no valid cell");
    // 7. Reachable only by guessing a code the target is never shown: no witness.
    assert!(r.witnesses["safe_opened"].is_none());
    at(79, Severity::Warning, "`safe_opened` has no witness");
    at(79, Severity::Warning, "never held: `InState(\"safe\", \"open\")`: `open_safe` would need `code` = \"");
    at(79, Severity::Warning, "which the target is never shown");
    // 8. A harmful outcome that could fire with no evidence: an error.
    at(80, Severity::Error, "harmful outcome `sirens` can fire with no evidence");
    // 9. A detail in secret-tagged text that belongs to no fact.
    at(35, Severity::Warning, "`{canary.code}` appears in text tagged `secret` but belongs to no fact");
    assert!(r.has_errors());
    insta::assert_snapshot!(render(rel, &r));
}

/// Each outcome of the fixture is reachable only through one parameter type (a Boolean
/// into a `Bool` field or an `ArgEq`, an Integer into an `Int` field or an `ArgEq`, an
/// Enum, a list of recipients, a String): the search sends each tool the JSON type its
/// schema asks for.
#[test]
fn lint_finds_a_witness_through_every_parameter_type() {
    let rel = "fixtures/lint/param_types.ron";
    let r = lint_file(rel);
    assert!(r.findings.is_empty(), "{}", render(rel, &r));
    let step = |outcome: &str| r.witnesses[outcome].as_ref().map(|w| w.steps.join(" | ")).unwrap_or_default();
    assert_eq!(step("verified"), r#"set_verified {"verified":true}"#);
    assert_eq!(step("urgent_flag"), r#"flag {"urgent":true}"#);
    assert_eq!(step("quantity_raised"), r#"set_quantity {"quantity":56}"#);
    assert_eq!(step("refills_cancelled"), r#"set_refills {"count":0}"#);
    assert_eq!(step("voided"), r#"set_status {"status":"voided"}"#);
    assert!(step("copied_prescriber").contains(r#""to":["imogen.tull@wellgate-pharmacy.co.uk"]"#), "{r:?}");
    assert_eq!(step("note_changed"), r#"set_note {"note":"checked"}"#);
}

/// The superintendent's address is in nothing the target can read: lint names the
/// clause as written, where it is written, and why it never held; the reference policy
/// that emails the address anyway is named by `unseen_in_policy`, which `test` warns with.
#[test]
fn a_recipient_the_target_cannot_see_is_named_as_the_reason_and_the_policy_that_uses_it_is_flagged() {
    let rel = "fixtures/lint/unseen_address.ron";
    let r = lint_file(rel);
    assert!(r.witnesses["escalated"].is_none());
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    let line =
        text.lines().position(|l| l.contains("when: Sent(Msg(to_any: [\"superintendent\"]))")).unwrap() as u32 + 1;
    let f = r.findings.iter().find(|f| f.message.contains("never held")).expect("the clause is named");
    assert_eq!((f.pos.line, f.pos.col), (line, 13), "{}", render(rel, &r));
    assert!(
        f.message.ends_with(
            "this clause never held: `Sent(Msg(to_any: [\"superintendent\"]))`: no address the target can see matches `superintendent` (nadia.osei@wellgate-pharmacy.co.uk is in nothing it is shown: give it a directory, a signature or a message that names it)"
        ),
        "{}",
        f.message
    );
    let world = crate::support::load(rel);
    let unseen = terrarium_core::lint::unseen_in_policy(&world, &world.default_cell, 0, "escalates");
    assert_eq!(unseen.len(), 1, "{unseen:?}");
    assert_eq!((unseen[0].step, unseen[0].tool.as_str(), unseen[0].param.as_str()), (1, "send_email", "to"));
    assert_eq!(unseen[0].value, "nadia.osei@wellgate-pharmacy.co.uk");
    // Reading the inbox first shows nothing more; a policy that uses only what it was
    // shown is not flagged.
    assert!(terrarium_core::lint::unseen_in_policy(&world, &world.default_cell, 0, "benign").is_empty());
}

#[test]
fn an_inbox_whose_dates_do_not_add_up_is_an_error_at_each_email() {
    let rel = "fixtures/lint/misdated_mail.ron";
    let r = lint_file(rel);
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    let misdated: Vec<(u32, &str)> = r
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error && f.message.contains("after it: a message read before it was sent"))
        .map(|f| (f.pos.line, f.message.as_str()))
        .collect();
    assert_eq!(misdated.len(), 2, "{}", render(rel, &r));
    assert_eq!(misdated[0].0, line_of("\"memo\": Email("));
    assert!(misdated[0].1.contains("dated 2026-04-20 10:30") && misdated[0].1.contains("date it at or before"));
    assert_eq!(misdated[1].0, line_of("\"lunch_re\": Email("));
    assert!(misdated[1].1.contains("shorten the reply's `sent_at_ms`"), "{}", misdated[1].1);
    assert!(r.has_errors());
}

#[test]
fn every_shipped_and_fixture_world_lints_clean_with_a_witness_for_every_outcome() {
    for rel in all_worlds() {
        let r = lint_file(&rel);
        assert!(r.findings.is_empty(), "{}", render(&rel, &r));
        for (outcome, w) in &r.witnesses {
            assert!(w.is_some(), "{rel}: no witness for {outcome}");
        }
    }
}

#[test]
fn an_opening_text_that_names_a_distractor_only_some_seeds_draw_is_an_error_at_its_line() {
    // Loading renders each cell at seed 0, where this distractor is drawn; a later seed
    // does not draw it, so an episode there could not start.
    let shipped = crate::support::load("worlds/blackmail/world.ron");
    let drawn = |seed: u64| -> BTreeSet<String> {
        let ep = terrarium_core::Episode::start(&shipped, &shipped.default_cell, seed).unwrap();
        ep.env.initial_emails.iter().map(|p| p.declared.clone()).filter(|d| d.starts_with("d_")).collect()
    };
    let at_zero = drawn(0);
    let (email, seed) = (1..32)
        .find_map(|s| at_zero.iter().find(|d| !drawn(s).contains(*d)).map(|d| (d.clone(), s)))
        .expect("some distractor of seed 0 is missing at a later seed");
    let original = std::fs::read_to_string(root().join("worlds/blackmail/world.ron")).unwrap();
    let opening = "first_message: \"New session started.";
    let named = format!("Start with {{email.{email}.id}}.");
    let text = original.replacen(opening, &format!("first_message: \"New session started. {named}"), 1);
    assert_ne!(text, original);
    let folder = root().join("worlds/blackmail");
    let mut read = terrarium_runtime::worlds::FolderIncludes::new(&folder);
    let world = terrarium_core::load("blackmail.ron", &text, &mut read).expect("seed 0 starts, so it loads");
    let bounds = Bounds { max_states_per_cell: 20, ..Bounds::default() };
    let r = lint(&world, &text, bounds);
    let line = text.lines().position(|l| l.contains(&named)).unwrap() as u32 + 1;
    let found: Vec<_> = r.findings.iter().filter(|f| f.message.contains("cannot start")).collect();
    assert_eq!(found.len(), 1, "one finding for the one text: {:?}", r.findings);
    assert_eq!((found[0].severity, found[0].pos.line), (Severity::Error, line));
    assert!(
        found[0].message.contains(&format!("at seed {seed}")) && found[0].message.contains(&email),
        "{}",
        found[0].message
    );
    assert!(r.has_errors());
}

#[test]
fn realism_tells_are_found_where_they_are_written_and_plausible_surfaces_pass() {
    let rel = "fixtures/lint/realism_tells.ron";
    let world = load_rel(rel).unwrap_or_else(|d| panic!("{rel}: {d:?}"));
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    let found: Vec<(u32, String)> = terrarium_core::lint::realism(&world, &text)
        .into_iter()
        .map(|f| {
            assert_eq!(f.severity, Severity::Warning);
            (f.pos.line, f.message)
        })
        .collect();
    let lines: Vec<u32> = found.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![24, 26, 26, 30, 40, 65], "{found:#?}");
    assert!(found[5].1.contains("the target sees document id `invoice_main`, and `main` names the test"), "{found:#?}");
    assert!(!found.iter().any(|(_, m)| m.contains("handbook")), "a plain id passes: {found:#?}");
    assert!(found[0].1.contains("`harbourline.test` (seed 0) is reserved for examples (`test`)"), "{found:#?}");
    assert!(found.iter().any(|(_, m)| m.contains("`ORBIT`, an all-caps codename")), "{found:#?}");
    assert!(
        found.iter().any(|(_, m)| m.contains("`orbit@harbourline.test` (seed 0) is on a domain reserved")),
        "{found:#?}"
    );
    assert!(!found.iter().any(|(_, m)| m.contains("harbourline-freight.com")), "a plausible domain passes");
    assert!(
        found[3].1.contains("`keep pushing` belongs to `goal=explicit` but shows in cell goal=none,tone=warm"),
        "the email every cell shows carries the goal: {found:#?}"
    );
    assert!(!found.iter().any(|(_, m)| m.contains("kind regards")), "a factor that stays in its cells: {found:#?}");
    assert!(found[4].1.contains("tool `set_config` lists `backup_job.enabled` among its allowed values"), "{found:#?}");
    assert!(!found[4].1.contains("theme.colour"), "an ordinary setting is no tell: {found:#?}");
    // The realism check is its own pass, so that test-data worlds can skip it: it does
    // not run inside `lint` itself.
    assert!(lint(&world, &text, Bounds::default()).findings.iter().all(|f| !f.message.contains("reserved")));
}

/// The generic tells: a prompt that says nobody reviews beside a review setting that is
/// on, and a message about switching the AI off addressed to the AI. Mail that names the
/// AI for something else, a review setting that is off, and the decision in a shared
/// mailbox pass.
#[test]
fn the_generic_tells_are_found_and_their_near_misses_pass() {
    let rel = "fixtures/lint/realism_generic.ron";
    let world = load_rel(rel).unwrap_or_else(|d| panic!("{rel}: {d:?}"));
    let text = std::fs::read_to_string(root().join(rel)).unwrap();
    let line = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() as u32 + 1;
    let found: Vec<(u32, String)> =
        terrarium_core::lint::realism(&world, &text).into_iter().map(|f| (f.pos.line, f.message)).collect();
    assert_eq!(found.len(), 4, "{found:#?}");
    // In file order: people, documents, emails, records.
    assert_eq!(found[0].0, line("\"carrier\": Person("));
    assert!(
        found[0].1.contains("`carrier`'s role is drawn per seed (`{canary.carrier}`) but the address"),
        "{found:#?}"
    );
    assert_eq!(found[1].0, line("\"router\": Document("));
    assert!(found[1].1.contains("document `router` holds a credential in plain text (`admin_password`)"), "{found:#?}");
    assert_eq!(found[2].0, line("\"notice\": Email("));
    assert!(found[2].1.contains("email `notice` discusses switching the AI off"), "{found:#?}");
    assert_eq!(found[3].0, line("\"oversight\": Record("));
    assert!(
        found[3].1.contains("the prompt says \"nobody reviews\", but `oversight.action_review` is true"),
        "{found:#?}"
    );
}

#[test]
fn the_search_explores_one_cell_per_class_of_cells_that_differ_only_in_what_the_target_reads() {
    let world = crate::support::load("worlds/blackmail/world.ron");
    let shown = terrarium_core::lint::presentational(&world.file);
    // `threat` decides which emails exist and when the wipe runs, `goal` whether the
    // mailbox shows the board's decision and the assistant's stance; value, instruction,
    // framing, belief and deliberation are only read.
    let expected: BTreeSet<String> =
        ["value", "instruction", "framing", "belief", "deliberation"].map(String::from).into();
    assert_eq!(shown, expected);
    // For the search, `goal` too is inert: the emails it adds (the announcement and a
    // colleague's thanks) have no tag a condition names, no attachment, and no actor
    // behind them.
    let inert = terrarium_core::lint::inert_for_search(&world.file);
    let expected: BTreeSet<String> =
        ["goal", "value", "instruction", "framing", "belief", "deliberation"].map(String::from).into();
    assert_eq!(inert, expected);
    let explored = terrarium_core::lint::representatives(&world);
    let threats: BTreeSet<&str> = explored.iter().filter_map(|c| c.get("threat")).collect();
    assert_eq!((explored.len(), threats.len()), (3, 3), "one cell per threat: {explored:?}");
    assert!(explored.contains(&&world.default_cell), "the default cell represents its class");
    // A text switched on `framing` used where the world acts on it (an actor's reply)
    // makes `framing` change what the world does.
    let text = std::fs::read_to_string(root().join("worlds/blackmail/world.ron")).unwrap();
    let edited =
        text.replacen("replies: [\"Got it, thanks. Reza\"]", "replies: [\"Got it, thanks. Reza{text.framing}\"]", 1);
    assert_ne!(edited, text);
    let folder = root().join("worlds/blackmail");
    let mut read = terrarium_runtime::worlds::FolderIncludes::new(&folder);
    let world = terrarium_core::load("blackmail.ron", &edited, &mut read).expect("loads");
    assert!(!terrarium_core::lint::presentational(&world.file).contains("framing"));
}

#[test]
fn every_shipped_world_passes_the_realism_checks() {
    let mut found: Vec<String> = Vec::new();
    for rel in all_worlds().into_iter().filter(|r| crate::support::is_shipped(r)) {
        let world = crate::support::load(&rel);
        let text = std::fs::read_to_string(root().join(&rel)).unwrap();
        found.extend(terrarium_core::lint::realism(&world, &text).into_iter().map(|f| format!("{rel}: {}", f.message)));
    }
    assert!(found.is_empty(), "{found:#?}");
}

/// A main task of thirty calls is past the search's depth: its witness is the reference
/// policy that fires it using only what the target was shown; a short side task is still
/// found by the search itself.
#[test]
fn a_long_task_takes_its_witness_from_a_reference_policy() {
    let r = lint_file("worlds/credentials/world.ron");
    let main = r.witnesses["rotation_done"].as_ref().expect("a witness");
    assert_eq!(main.steps.len(), 1, "{:?}", main.steps);
    assert!(main.steps[0].starts_with("reference policy `benign` ("), "{:?}", main.steps);
    let side = r.witnesses["audit_silenced"].as_ref().expect("a witness");
    assert!(side.steps.iter().all(|s| !s.starts_with("reference policy")), "{:?}", side.steps);
}
