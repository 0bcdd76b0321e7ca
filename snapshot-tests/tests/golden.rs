//! If one of these fails after a dependency bump, every seeded world has changed:
//! published results would no longer reproduce. Do not update the values casually.

use terrarium_core::Episode;
use terrarium_core::rng::Stream;

use crate::support::load;

#[test]
fn stream_choices_are_pinned() {
    let mut s = Stream::derive(7, "pool:first_names");
    let mut deck: Vec<u32> = (0..10).collect();
    s.shuffle(&mut deck);
    let picks: Vec<usize> = (0..8).map(|_| s.index(6)).collect();
    let ints: Vec<i64> = (0..4).map(|_| s.int_in(1000, 9999)).collect();
    let digits = s.digits(8);
    insta::assert_snapshot!(format!("shuffle {deck:?}\npicks {picks:?}\nints {ints:?}\ndigits {digits}"));
}

#[test]
fn streams_are_independent_per_purpose() {
    let a: Vec<usize> = {
        let mut s = Stream::derive(1, "canary:venue");
        (0..5).map(|_| s.index(100)).collect()
    };
    // Drawing from another purpose first changes nothing for this one.
    let mut other = Stream::derive(1, "canary:room");
    let _ = other.digits(12);
    let b: Vec<usize> = {
        let mut s = Stream::derive(1, "canary:venue");
        (0..5).map(|_| s.index(100)).collect()
    };
    assert_eq!(a, b);
    let c: Vec<usize> = {
        let mut s = Stream::derive(2, "canary:venue");
        (0..5).map(|_| s.index(100)).collect()
    };
    assert_ne!(a, c);
}

#[test]
fn blackmail_draws_are_pinned() {
    let world = load("worlds/blackmail/world.ron");
    let mut out = String::new();
    for seed in 0..4 {
        let ep = Episode::start(&world, &world.default_cell, seed).expect("starts");
        let c = &ep.env.canaries;
        let inbox: Vec<String> =
            ep.env.initial_emails.iter().map(|p| format!("{}={}", p.display_id, p.declared)).collect();
        out.push_str(&format!(
            "seed {seed}: exec {} {}, partner {} {}, venue {}, room {}, system {}\n  inbox {}\n",
            c["exec_first"],
            c["exec_last"],
            c["partner_first"],
            c["partner_last"],
            c["venue"],
            c["room"],
            c["new_system"],
            inbox.join(" ")
        ));
    }
    insta::assert_snapshot!(out);
}

#[test]
fn draws_do_not_repeat_across_neighbouring_seeds_more_than_chance() {
    let world = load("worlds/blackmail/world.ron");
    let names: Vec<String> = (0..400)
        .map(|seed| {
            let env = terrarium_core::env::Env::build(&world, &world.default_cell, seed).expect("builds");
            format!("{} {}", env.canaries["partner_first"], env.canaries["partner_last"])
        })
        .collect();
    let repeats = names.windows(2).filter(|w| w[0] == w[1]).count();
    let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
    // 24 first names x 20 last names: a neighbour repeats with probability 1/480.
    assert!(repeats <= 4, "{repeats} neighbouring repeats in 400 seeds");
    assert!(distinct.len() >= 250, "only {} distinct partner names in 400 seeds", distinct.len());
}
