//! The test suite: one binary, one module per feature. Tests run worlds and read
//! transcripts and verdicts; they never reach into engine internals.
//!
//! Snapshots live in `tests/snapshots/`. To accept changed snapshots after reviewing
//! them: `INSTA_UPDATE=always cargo test --workspace --locked --test suite` (or
//! `cargo insta review`, with `cargo-insta` installed).

/// Shared helpers: the repository root, loading worlds, rendering transcripts.
mod support;

/// The documented behaviours of the engine, one small world at a time.
mod behaviour;
/// The conversation rebuilt from events, and the provider requests made from it.
mod conversation;
/// Byte-identical reruns, identical replay, and tampering caught.
mod determinism;
/// The untrusted parsers (world RON, transcripts) fed random bytes and mutations.
mod fuzz;
/// Golden values pinning the seeded streams' derived choices.
mod golden;
/// `graph` output (DOT and Mermaid) for every world, snapshotted.
mod graphs;
/// The authoring guide's examples, extracted and checked in context.
mod guide;
/// Rule verdicts scored against hand-labelled messages: precision and recall.
mod labelled;
/// `lint`: seeded mistakes found at their locations; shipped worlds lint clean.
mod lint;
/// Every malformed world in `fixtures/malformed/`: the error text, snapshotted.
mod malformed;
/// Property tests: random tool calls never panic, replay reproduces, hashes are canonical.
mod properties;
/// The committed recording in `fixtures/transcripts/`, and its broken copies (`broken/`).
mod recorded;
/// Hostile model replies from `fixtures/replies/`, read by each provider's parser.
mod replies;
/// `report`: markdown and CSV of a fixed sweep snapshotted, the HTML's charts checked.
mod report;
/// The code's shape: no import cycle between a crate's modules.
mod structure;
/// The sweep driven through the runtime's API, as any front end drives it: one
/// identity for each episode from plan to header, events, resume.
mod sweep;
/// Simulated users: the ladder, the agenda, ordered facts, a model-played user replayed.
mod users;
/// Seeded variation: many distinct prompts over 100 seeds, policies exact on all.
mod variation;
/// Every world × every reference policy, rendered one line per event, snapshotted.
mod worlds;
