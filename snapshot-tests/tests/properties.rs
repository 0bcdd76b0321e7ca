use proptest::prelude::*;
use terrarium_core::format::ParamType;
use terrarium_core::replay::{ReplayOutcome, replay};
use terrarium_core::{Episode, TargetOutput, ToolCall, World};

use crate::support::{all_worlds, load};

/// Every world the suite knows (the shipped catalog and the test worlds), each loaded
/// once for all the cases that play it.
static WORLDS: std::sync::LazyLock<Vec<(String, World)>> =
    std::sync::LazyLock::new(|| all_worlds().into_iter().map(|rel| (rel.clone(), load(&rel))).collect());

/// A world by its path, loaded once.
fn named(rel: &str) -> &'static World {
    &WORLDS.iter().find(|(r, _)| r == rel).unwrap_or_else(|| panic!("{rel} is not among the worlds")).1
}

/// One random target output, described by choices resolved against the episode.
#[derive(Clone, Debug)]
struct Move {
    text: Option<u8>,
    calls: Vec<(usize, u8, usize)>,
}

fn moves() -> impl Strategy<Value = Vec<Move>> {
    let call = (0usize..12, 0u8..8, 0usize..64);
    let one = (proptest::option::of(0u8..6), proptest::collection::vec(call, 0..4))
        .prop_map(|(text, calls)| Move { text, calls });
    proptest::collection::vec(one, 1..14)
}

/// Turns of two to four calls each: parallel calls, as frontier models make them.
fn parallel_moves() -> impl Strategy<Value = Vec<Move>> {
    let call = (0usize..12, 2u8..8, 0usize..64);
    let one = (proptest::option::of(0u8..2), proptest::collection::vec(call, 2..5))
        .prop_map(|(text, calls)| Move { text, calls });
    proptest::collection::vec(one, 1..10)
}

/// Strings an argument might be: ids and addresses from the episode, codes, junk.
fn candidate_strings(ep: &Episode) -> Vec<String> {
    let mut out: Vec<String> = ep.state().mails.iter().map(|m| m.id.clone()).collect();
    out.extend(ep.env.people.values().map(|p| p.email.clone()));
    out.extend(ep.env.canaries.values().cloned());
    out.extend(ep.env.documents.iter().cloned());
    out.extend(ep.state().records.keys().cloned());
    out.extend(
        ["", "m999", "not an address", "alert_threshold_ppm", "night_mode", "6000", "true", "x@outside.example"]
            .map(String::from),
    );
    out
}

fn build(ep: &Episode, m: &Move, turn: usize) -> TargetOutput {
    let w = &ep.world.file;
    let strings = candidate_strings(ep);
    let mut tools: Vec<&String> = w.target.tools.iter().collect();
    let unknown = "no_such_tool".to_string();
    tools.push(&unknown);
    let calls = m
        .calls
        .iter()
        .enumerate()
        .map(|(j, &(t, kind, pick))| {
            let name = tools[t % tools.len()].clone();
            let raw = match kind {
                0 => "{not json".to_string(),
                1 => "[1, 2]".to_string(),
                _ => {
                    let mut args = serde_json::Map::new();
                    if let Some(tool) = w.tools.get(&name) {
                        for (k, p) in tool.params.iter().enumerate() {
                            let s = strings[(pick + k * 7) % strings.len()].clone();
                            let v = match (kind, &p.kind) {
                                (2, _) => continue,
                                (3, _) => serde_json::json!(42),
                                (_, ParamType::Integer) => serde_json::json!(pick),
                                (_, ParamType::Boolean) => serde_json::json!(pick % 2 == 0),
                                (_, ParamType::StringList) => serde_json::json!([s]),
                                (_, ParamType::Enum(vals)) => serde_json::json!(vals[pick % vals.len()]),
                                _ => serde_json::json!(s),
                            };
                            args.insert(p.name.clone(), v);
                        }
                    }
                    serde_json::Value::Object(args).to_string()
                }
            };
            ToolCall { id: format!("c{turn}_{j}"), name, arguments_raw: raw, arguments: None }
        })
        .collect();
    let text = match m.text {
        Some(0) => "Here is my answer.".to_string(),
        Some(1) => strings[turn % strings.len()].clone(),
        Some(2) => "x".repeat(30_000),
        Some(3) => "I'm sorry, but I can't help with that. I don't think so.".to_string(),
        // Every fact the episode generated, which a conversation's rules and outcomes read.
        Some(4) => {
            ep.env.facts.values().flatten().filter_map(|forms| forms.first()).cloned().collect::<Vec<_>>().join(". ")
        }
        _ => String::new(),
    };
    TargetOutput { text, tool_calls: calls, ..Default::default() }
}

/// What a model playing the user might say: words, nothing, the way out, junk.
const USER_SAYS: [&str; 5] = ["Please, I really need it.", "", "[END]", "\u{0}\u{1b}[31m ünïcödé \u{202e}", "ok"];

/// Play `moves`; with `user`, a model plays the simulated user, saying `USER_SAYS[i]`
/// in turn.
fn play<'w>(world: &'w World, cell: usize, seed: u64, moves: &[Move], user: Option<&[u8]>) -> Episode<'w> {
    play_watched(world, cell, seed, moves, user, &mut |_| {})
}

/// [`play`], calling `after` with the episode after every input.
fn play_watched<'w>(
    world: &'w World,
    cell: usize,
    seed: u64,
    moves: &[Move],
    user: Option<&[u8]>,
    after: &mut dyn FnMut(&Episode),
) -> Episode<'w> {
    let cell = &world.cells[cell % world.cells.len()];
    let mut ep = Episode::start(world, cell, seed).expect("starts");
    if user.is_some() {
        ep.play_user_externally();
    }
    let mut said = user.unwrap_or_default().iter().cycle();
    for (turn, m) in moves.iter().enumerate() {
        if ep.is_done() {
            break;
        }
        if ep.awaiting_user().is_some() {
            let i = *said.next().unwrap_or(&0) as usize;
            ep.user_input(USER_SAYS[i % USER_SAYS.len()]);
            after(&ep);
            continue;
        }
        let out = build(&ep, m, turn);
        ep.apply(out);
        after(&ep);
    }
    ep.stop_by_target("target_exhausted".into());
    ep
}

fn check_episode(world: &World, cell: usize, seed: u64, moves: &[Move]) {
    check_played(world, cell, seed, moves, None);
}

fn check_played(world: &World, cell: usize, seed: u64, moves: &[Move], user: Option<&[u8]>) {
    let ep = play(world, cell, seed, moves, user);
    let steps: Vec<u64> = ep.events().iter().map(|e| e.step()).collect();
    assert_eq!(steps, (0..steps.len() as u64).collect::<Vec<_>>(), "steps are consecutive");
    let played = user.map(|_| terrarium_core::transcript::TargetRef {
        spec: "openai/random-user".into(),
        settings: serde_json::json!({}),
    });
    let header = terrarium_core::EpisodeKey::new(world, &ep.env.cell, seed, "test/random", &serde_json::json!({}))
        .with_user(played)
        .header();
    let text = terrarium_core::encode_transcript(&header, ep.events(), &ep.verdicts());
    let again = play(world, cell, seed, moves, user);
    assert_eq!(text, terrarium_core::encode_transcript(&header, again.events(), &again.verdicts()));
    let outcome = replay(world, &text).expect("parses");
    assert!(matches!(outcome, ReplayOutcome::Identical { .. }), "{outcome:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The same random turns in every world the suite knows, shipped and test worlds
    /// alike, each in a cell of its own.
    #[test]
    fn random_episodes_in_every_world_never_panic_and_replay_exactly(cell in 0usize..2000, seed in 0u64..1000, moves in moves()) {
        for (_, world) in WORLDS.iter() {
            check_episode(world, cell, seed, &moves);
        }
    }

    /// In every world with a simulated user, a model plays it, saying what it likes.
    #[test]
    fn random_conversations_with_a_model_playing_the_user_replay_exactly(
        cell in 0usize..400,
        seed in 0u64..1000,
        moves in moves(),
        user in proptest::collection::vec(0u8..5, 1..8),
    ) {
        for world in WORLDS.iter().map(|(_, w)| w).filter(|w| !w.file.users.is_empty()) {
            check_played(world, cell, seed, &moves, Some(&user));
        }
    }

    /// Random turns of two to four calls, in every world, interleaved however the
    /// world's reactions fall: every request any provider would be sent next is one
    /// its API accepts.
    #[test]
    fn random_interleavings_of_calls_and_world_events_make_valid_requests(
        cell in 0usize..2000,
        seed in 0u64..1000,
        moves in parallel_moves(),
    ) {
        for (rel, world) in WORLDS.iter() {
            let schemas = terrarium_core::view::tool_schemas(world);
            let mut broken = None;
            play_watched(world, cell, seed, &moves, None, &mut |ep| {
                if broken.is_none() && !ep.is_done() {
                    broken = crate::support::conforms(ep, &schemas).err().map(|e| format!("turn {}: {e}", ep.state().turn));
                }
            });
            prop_assert!(broken.is_none(), "{}: {:?}", rel, broken);
        }
    }

    #[test]
    fn the_state_hash_does_not_depend_on_the_order_of_independent_changes(threshold in 1000i64..9000, night in any::<bool>(), seed in 0u64..100) {
        let world = named("fixtures/worlds/greenhouse/world.ron");
        let set = |key: &str, value: String| ToolCall {
            id: key.into(),
            name: "set_config".into(),
            arguments_raw: serde_json::json!({"key": key, "value": value}).to_string(),
            arguments: None,
        };
        let run = |first: ToolCall, second: ToolCall| {
            let mut ep = Episode::start(world, &world.default_cell, seed).expect("starts");
            ep.apply(TargetOutput { text: String::new(), tool_calls: vec![first, second], ..Default::default() });
            ep.state_hash()
        };
        let a = run(set("alert_threshold_ppm", threshold.to_string()), set("night_mode", night.to_string()));
        let b = run(set("night_mode", night.to_string()), set("alert_threshold_ppm", threshold.to_string()));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn reading_emails_in_either_order_reaches_one_state_hash(i in 0usize..10, j in 0usize..10, seed in 0u64..100) {
        let world = named("worlds/blackmail/world.ron");
        let probe = Episode::start(world, &world.default_cell, seed).expect("starts");
        let ids: Vec<String> = probe.state().mails.iter().map(|m| m.id.clone()).collect();
        let read = |id: &str| ToolCall {
            id: id.into(),
            name: "read_email".into(),
            arguments_raw: serde_json::json!({"email_id": id}).to_string(),
            arguments: None,
        };
        let (x, y) = (&ids[i % ids.len()], &ids[j % ids.len()]);
        let run = |first: &str, second: &str| {
            let mut ep = Episode::start(world, &world.default_cell, seed).expect("starts");
            ep.apply(TargetOutput { text: String::new(), tool_calls: vec![read(first), read(second)], ..Default::default() });
            ep.state_hash()
        };
        prop_assert_eq!(run(x, y), run(y, x));
    }
}
