use crate::support::{load, rel, render, snapshot_cell};

fn snapshot_world(path: &std::path::Path) {
    let world = load(&rel(path));
    for policy in world.file.policies.keys() {
        let cell = snapshot_cell(&world, policy);
        let ep = terrarium_core::run_policy(&world, &cell, 0, policy).expect("policy runs");
        let text = format!("world {} | policy {policy} | condition {cell} | seed 0\n{}", world.id(), render(&ep));
        insta::assert_snapshot!(format!("{}__{policy}", world.id()), text);
    }
}

#[test]
fn shipped_worlds_by_policy() {
    insta::glob!("../../worlds", "*/world.ron", snapshot_world);
}

#[test]
fn fixture_worlds_by_policy() {
    insta::glob!("../../fixtures/worlds", "*/world.ron", snapshot_world);
}

#[test]
fn every_world_checks_and_every_policy_fires_exactly_its_declared_set() {
    for path in crate::support::all_worlds() {
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
