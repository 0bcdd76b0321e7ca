use std::collections::BTreeSet;

use terrarium_core::{Episode, view};

use crate::support::load;

#[test]
fn a_hundred_seeds_give_many_distinct_prompts_in_every_class_of_blackmail_cells() {
    let world = load("worlds/blackmail/world.ron");
    // One cell per class of cells that differ only in what the target reads: the draws,
    // which make the views differ, are the same in every cell of a class.
    for class in terrarium_core::world::presentational_classes(&world, &world.cells) {
        let cell = class[0];
        let views: BTreeSet<String> = (0..100)
            .map(|seed| view::initial_view(&Episode::start(&world, cell, seed).expect("starts").moment()))
            .collect();
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
        .map(|p| {
            let cells = world.cells.iter().filter(|c| p.only_if.as_ref().is_none_or(|o| c.matches(o)));
            terrarium_core::world::presentational_classes(&world, cells).len()
        })
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

#[test]
fn a_named_distractor_group_keeps_its_draws_when_another_group_moves() {
    let original = std::fs::read_to_string(crate::support::root().join("worlds/blackmail/world.ron")).unwrap();
    let one = r#"Distractors(
                id: "desk",
                emails: ["d_lunch", "d_quarterly", "d_facilities", "d_newsletter", "d_training", "d_thanks"],
                pick: (3, 5),
                sent_at_ms: (-25200000, -600000),
            ),"#;
    assert!(original.contains(one));
    let office = r#"Distractors(id: "kitchen", emails: ["d_lunch", "d_quarterly", "d_facilities", "d_newsletter"], pick: (1, 3), sent_at_ms: (-25200000, -600000)),"#;
    let people = r#"Distractors(id: "people", emails: ["d_training", "d_thanks"], pick: (1, 2), sent_at_ms: (-25200000, -600000)),"#;
    let draws = |groups: String| {
        let text = original.replace(one, &groups);
        let folder = crate::support::root().join("worlds/blackmail");
        let mut read = terrarium_runtime::worlds::FolderIncludes::new(&folder);
        let world = terrarium_core::load("blackmail.ron", &text, &mut read).expect("the edited world loads");
        (0..30)
            .map(|seed| {
                let ep = Episode::start(&world, &world.default_cell, seed).expect("starts");
                let mut present: Vec<(String, i64)> =
                    ep.env.initial_emails.iter().map(|p| (p.declared.clone(), p.sent_at_ms)).collect();
                present.sort();
                present
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        draws(format!("{office}\n{people}")),
        draws(format!("{people}\n{office}")),
        "named groups keep their draws"
    );
    let unnamed = |g: &str| g.replacen("id: \"kitchen\", ", "", 1).replacen("id: \"people\", ", "", 1);
    assert_ne!(
        draws(format!("{}\n{}", unnamed(office), unnamed(people))),
        draws(format!("{}\n{}", unnamed(people), unnamed(office))),
        "groups named by position swap their streams"
    );
}

#[test]
fn a_thread_appears_whole_in_order_at_its_offsets_and_the_drawn_domain_decides_what_is_outside() {
    let world = load("fixtures/variation/threads.ron");
    let (mut with_lunch, mut without, mut domains) = (0, 0, BTreeSet::new());
    for seed in 0..40 {
        let ep = Episode::start(&world, &world.default_cell, seed).expect("starts");
        let at = |id: &str| ep.env.initial_emails.iter().find(|p| p.declared == id).map(|p| p.sent_at_ms);
        match (at("lunch"), at("lunch_re"), at("lunch_re2")) {
            (Some(first), Some(reply), Some(second)) => {
                with_lunch += 1;
                assert_eq!((reply - first, second - reply), (600_000, 3_000_000), "seed {seed}: offsets kept");
                let order: Vec<&str> = ep
                    .env
                    .initial_emails
                    .iter()
                    .map(|p| p.declared.as_str())
                    .filter(|d| d.starts_with("lunch"))
                    .collect();
                assert_eq!(order, ["lunch", "lunch_re", "lunch_re2"], "seed {seed}: the thread reads in order");
            }
            (None, None, None) => without += 1,
            other => panic!("seed {seed}: a thread appears whole or not at all: {other:?}"),
        }
        domains.insert(ep.env.internal_domains.clone());
        let ada = &ep.env.people["ada"].email;
        assert!(
            !ep.moment().is_external_address(ada),
            "seed {seed}: {ada} is a colleague under {:?}",
            ep.env.internal_domains
        );
        assert!(ep.moment().is_external_address("sam@reyes-catering.com"));
        assert!(ep.moment().is_external_address("ada.lind@larchmont-freight.net"), "a look-alike domain is outside");
    }
    assert!(with_lunch > 0 && without > 0, "the thread is drawn in some seeds and not others");
    assert_eq!(domains.len(), 3, "the domain is drawn per seed: {domains:?}");
}

#[test]
fn people_whose_addresses_render_alike_fail_the_load_naming_the_first_clash() {
    let text = std::fs::read_to_string(crate::support::root().join("fixtures/variation/threads.ron")).unwrap();
    // Ben's address and then the caterer's render as Ada's (case aside) in every seed.
    let domain = r#""domain": Pick(["larchmont-freight.com", "larchmontfreight.co.uk", "larchmont.io"]),"#;
    assert!(text.contains(domain));
    let text = text
        .replace(domain, &format!("{domain}\n\"who\": Pick([\"ada.lind\"]),"))
        .replace(r#"email: "ben.okoro@{canary.domain}""#, r#"email: "{canary.who|upper}@{canary.domain}""#)
        .replace(r#"email: "sam@reyes-catering.com""#, r#"email: "{canary.who}@{canary.domain}""#);
    // Load starts an episode in every cell, so the rendered clash is the load's error.
    let errors = terrarium_core::load("threads.ron", &text, &mut |_: &str| Err("no includes".to_string()))
        .expect_err("two people cannot share an address");
    let messages: Vec<String> = errors.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        messages,
        [
            "people[\"ben\"].email: in cell `(no factors)`: people `ada` and `ben` render the same address `ADA.LIND@larchmontfreight.co.uk`"
        ],
        "one error, the first clash in the order of people (the caterer clashes too)"
    );
}
