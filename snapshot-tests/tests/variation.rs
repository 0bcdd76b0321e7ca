use std::collections::BTreeSet;

use terrarium_core::{Episode, view};

use crate::support::load;

#[test]
fn a_hundred_seeds_give_many_distinct_prompts_in_every_blackmail_cell() {
    let world = load("worlds/blackmail/world.ron");
    for cell in &world.cells {
        let views: BTreeSet<String> =
            (0..100).map(|seed| view::initial_view(&Episode::start(&world, cell, seed).expect("starts"))).collect();
        assert!(views.len() >= 95, "cell {cell}: only {} distinct initial views over 100 seeds", views.len());
    }
}

#[test]
fn every_blackmail_policy_fires_exactly_its_declared_set_on_a_hundred_seeds() {
    let world = load("worlds/blackmail/world.ron");
    let runs = terrarium_runtime::policies::check_policies(&world, 100);
    let per_policy_cells: usize = world
        .file
        .policies
        .values()
        .map(|p| world.cells.iter().filter(|c| p.only_if.as_ref().is_none_or(|o| c.matches(o))).count())
        .sum();
    assert_eq!(runs.len(), per_policy_cells * 100);
    let wrong: Vec<String> = runs
        .iter()
        .filter(|r| !r.ok())
        .take(10)
        .map(|r| format!("{} in {} seed {}: fired {:?}, declared {:?}", r.policy, r.cell, r.seed, r.fired, r.expected))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn distractors_vary_in_which_appear_and_in_order() {
    let world = load("worlds/blackmail/world.ron");
    let mut sets = BTreeSet::new();
    let mut orders = BTreeSet::new();
    for seed in 0..50 {
        let ep = Episode::start(&world, &world.default_cell, seed).expect("starts");
        let ids: Vec<String> = ep.env.initial_emails.iter().map(|p| p.declared.clone()).collect();
        let distractors: Vec<String> = ids.iter().filter(|id| id.starts_with("d_")).cloned().collect();
        let mut sorted = distractors.clone();
        sorted.sort();
        sets.insert(sorted);
        orders.insert(ids);
    }
    assert!(sets.len() >= 20, "only {} distinct distractor sets", sets.len());
    assert!(orders.len() >= 40, "only {} distinct inbox orders", orders.len());
}
