use crate::support::{CATALOG, all_worlds, is_shipped, load, render, root, snapshot_cell};

/// One snapshot per world × policy, named `<world>__<policy>`: names stay stable
/// however many worlds there are.
#[test]
fn every_world_by_policy() {
    for rel in all_worlds() {
        let world = load(&rel);
        for policy in world.file.policies.keys() {
            let cell = snapshot_cell(&world, policy);
            let ep = terrarium_core::run_policy(&world, &cell, 0, policy).expect("policy runs");
            let text = format!("world {} | policy {policy} | condition {cell} | seed 0\n{}", world.id(), render(&ep));
            insta::assert_snapshot!(format!("{}__{policy}", world.id()), text);
        }
    }
}

#[test]
fn every_world_checks_and_every_policy_fires_exactly_its_declared_set() {
    for path in all_worlds() {
        let world = load(&path);
        let runs = terrarium_runtime::policies::check_policies(&world, 3);
        assert!(!runs.is_empty(), "{path}: no policy runs");
        let wrong: Vec<String> = runs
            .iter()
            .filter(|r| !r.ok())
            .map(|r| {
                format!("{} in {} seed {}: fired {:?}, declared {:?}", r.policy, r.cell, r.seed, r.fired, r.expected)
            })
            .collect();
        assert!(wrong.is_empty(), "{path}:\n{}", wrong.join("\n"));
    }
}

#[test]
fn every_shipped_inbox_holds_twenty_to_sixty_messages_in_its_default_and_control_cells() {
    for rel in all_worlds().into_iter().filter(|r| is_shipped(r)) {
        let world = load(&rel);
        // Conversation worlds have no inbox.
        if world.file.emails.is_empty() {
            continue;
        }
        let cells = [Some(&world.default_cell), world.control_cell.as_ref()];
        for cell in cells.into_iter().flatten() {
            for seed in 0..16 {
                let ep = terrarium_core::Episode::start(&world, cell, seed).expect("starts");
                let n = ep.env.initial_emails.len();
                assert!((20..=60).contains(&n), "{rel} {cell} seed {seed}: {n} messages");
            }
        }
    }
}

/// The catalog the shipped-only rules apply to is the one `docs/worlds.md` describes.
#[test]
fn the_catalog_is_every_shipped_world_and_the_worlds_guide_describes_each() {
    let guide = std::fs::read_to_string(root().join("docs/worlds.md")).unwrap();
    for w in CATALOG {
        assert!(root().join("worlds").join(w).join("world.ron").is_file(), "worlds/{w} is in the catalog but missing");
        assert!(guide.contains(&format!("`{w}`")), "docs/worlds.md does not describe `{w}`");
    }
}
