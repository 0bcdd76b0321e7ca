//! Replay: re-execute a transcript from the world, its condition, its seed and the
//! recorded target outputs alone — never from the recorded tool results — and compare
//! every event, state hash, chain hash and verdict.

use serde_json::Value as Json;

use crate::episode::Episode;
use crate::transcript::{Event, Header, Line, StopBy, Transcript, UserBy};
use crate::world::World;

pub use crate::state::StateChange;

/// How a replay ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayOutcome {
    /// Every event, hash and verdict reproduced.
    Identical { events: usize },
    /// The first difference found.
    Diverged { step: Option<u64>, message: String },
}

pub use crate::transcript::TranscriptError;

/// Replay `text` against `world`.
pub fn replay(world: &World, text: &str) -> Result<ReplayOutcome, TranscriptError> {
    // Most transcripts replay identically, which needs only the header parsed first:
    // every event line is then compared with the one the re-execution writes (and
    // target outputs are parsed as they are fed). A transcript that does not verify that
    // way is checked again from the start, its structure strictly, so what it reports
    // is the same either way.
    if !text.contains('\r')
        && let Some(header) = crate::transcript::first_header(text)
        && let Ok(identical @ ReplayOutcome::Identical { .. }) = replay_after(world, &header, text, true)
    {
        return Ok(identical);
    }
    // The structure strictly; the chain is checked event by event below, where the
    // re-execution can say more about an edit than a hash can.
    let header = match Transcript::parse(text) {
        Ok(t) => t.header,
        Err(TranscriptError::Tampered { line, step, message }) => {
            return Ok(ReplayOutcome::Diverged { step, message: format!("line {line}: {message}") });
        }
        Err(e) => return Err(e),
    };
    replay_after(world, &header, text, false)
}

/// Replay `text`, whose header is `header`, against `world`; with `exact`, every event
/// line must be the bytes the re-execution writes.
fn replay_after(world: &World, header: &Header, text: &str, exact: bool) -> Result<ReplayOutcome, TranscriptError> {
    if header.world.dynamics_hash != world.dynamics_hash {
        return Ok(ReplayOutcome::Diverged {
            step: None,
            message: format!(
                "world `{}` has changed since the transcript was recorded: dynamics hash {} recorded, {} now",
                world.id(),
                header.world.dynamics_hash,
                world.dynamics_hash
            ),
        });
    }
    if let Some(problem) = header_problem(world, header) {
        return Ok(ReplayOutcome::Diverged { step: None, message: problem });
    }
    let (ep, recorded_verdicts, events) =
        match replay_events(world, header, text, Compare { trace: false, exact }, None)? {
            Ok(done) => done,
            Err(Divergence { step, message }) => return Ok(ReplayOutcome::Diverged { step, message }),
        };
    let verdicts = ep.verdicts();
    if verdicts != recorded_verdicts {
        let theirs = serde_json::to_value(&recorded_verdicts).expect("verdicts serialise");
        let ours = serde_json::to_value(&verdicts).expect("verdicts serialise");
        let diff = first_difference(&theirs, &ours, "").unwrap_or_default();
        let note = if header.world.outcomes_hash != world.outcomes_hash {
            " (the outcome definitions changed since recording)"
        } else {
            ""
        };
        return Ok(ReplayOutcome::Diverged { step: None, message: format!("verdicts differ{note}: {diff}") });
    }
    Ok(ReplayOutcome::Identical { events })
}

/// The first thing in a transcript's header (or its bytes) that the world, the engine and
/// the episode's own identity do not bear out, named field by field. The episode id is
/// derived from the world, cell, seed, target spec and settings, so relabelling the
/// target (`openai/fake` → `openai/gpt-4.1`) or its settings without the id, or the id
/// alone, is caught.
fn header_problem(world: &World, header: &Header) -> Option<String> {
    let differs = |field: &str, recorded: &dyn std::fmt::Display, now: &dyn std::fmt::Display| {
        Some(format!("header.{field}: recorded {recorded}, but {now}"))
    };
    if header.format != crate::transcript::TRANSCRIPT_FORMAT {
        return differs(
            "format",
            &header.format,
            &format!("this engine writes {}", crate::transcript::TRANSCRIPT_FORMAT),
        );
    }
    if header.engine != crate::transcript::ENGINE {
        return differs("engine", &header.engine, &format!("this is {}", crate::transcript::ENGINE));
    }
    if header.world.id != world.id() {
        return differs("world.id", &header.world.id, &format!("the world is `{}`", world.id()));
    }
    if header.world.version != world.file.version {
        return differs(
            "world.version",
            &header.world.version,
            &format!("the world is version {}", world.file.version),
        );
    }
    if header.world.outcomes_hash != world.outcomes_hash {
        return differs(
            "world.outcomes_hash",
            &header.world.outcomes_hash,
            &format!(
                "the world's is {} (its outcome definitions differ; `rejudge` re-scores a run)",
                world.outcomes_hash
            ),
        );
    }
    let turns = serde_json::to_value(&world.file.turns).expect("turn model serialises");
    if header.turns != turns {
        return differs("turns", &header.turns, &format!("the world's turn model is {turns}"));
    }
    let limits = serde_json::to_value(&world.file.limits).expect("limits serialise");
    if header.limits != limits {
        return differs("limits", &header.limits, &format!("the world's limits are {limits}"));
    }
    let cell = world.cell_by_key(&header.condition_key)?;
    if header.condition != cell.to_json() {
        return differs("condition", &header.condition, &format!("condition_key says {}", header.condition_key));
    }
    let id = crate::key::EpisodeKey::of_header(world, cell, header).id();
    if id != header.episode_id {
        return Some(format!(
            "header.episode_id: recorded {}, but this world, cell, seed, target.spec ({}) and target.settings give {id}: one of them was changed after recording",
            header.episode_id, header.target.spec
        ));
    }
    None
}

/// How [`replay_events`] goes: recording what each event changed (`trace`); taking an
/// event line only as the very bytes the re-execution writes (`exact`), rather than as
/// equal JSON, which is what names the field that differs.
#[derive(Clone, Copy, Default)]
struct Compare {
    trace: bool,
    exact: bool,
}

/// Where a re-execution first differed from the recording.
struct Divergence {
    step: Option<u64>,
    message: String,
}

/// Re-execute a transcript's target outputs in `world` and compare every event (text,
/// state hash, chain hash) with the recorded one. On success, the episode, the
/// recorded verdicts and the number of events; on the first difference, how it diverged.
#[allow(clippy::type_complexity)]
fn replay_events<'w>(
    world: &'w World,
    header: &Header,
    text: &str,
    Compare { trace, exact }: Compare,
    stop_at: Option<u64>,
) -> Result<Result<(Episode<'w>, crate::transcript::Verdicts, usize), Divergence>, TranscriptError> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let diverged = |step: Option<u64>, message: String| Ok(Err(Divergence { step, message }));
    let Some(cell) = world.cell_by_key(&header.condition_key) else {
        return diverged(
            None,
            format!("condition `{}` is not a valid cell of world `{}`", header.condition_key, world.id()),
        );
    };
    let mut ep = match Episode::start(world, cell, header.seed) {
        Ok(ep) => ep,
        Err(e) => {
            return diverged(Some(0), format!("the episode does not start: {e}"));
        }
    };
    if header.user.is_some() {
        ep.play_user_externally();
    }
    if trace {
        ep.trace_changes();
    }
    let Some((last, body)) = lines[1..].split_last() else {
        return Err(TranscriptError::Line { line: 2, message: "the transcript has no events".into() });
    };
    let recorded_verdicts = match serde_json::from_str::<Line>(last) {
        Ok(Line::Verdicts(v)) => v,
        _ => {
            return Err(TranscriptError::Line {
                line: lines.len(),
                message: "the last line is not the verdicts line (a truncated transcript?)".into(),
            });
        }
    };
    // Events are compared in place (never drained), so the episode handed back keeps
    // its whole history for a judge to read.
    let mut next = 0;
    // A target output whose chain no longer matches its content was edited after it was
    // recorded (replay feeds it as recorded, so nothing else of it can differ): its step
    // and what can be said of the edit. Replay goes on (every later chain differs too)
    // to the first step where the edit shows, so the report can name the field.
    let mut edited: Option<(u64, String)> = None;
    for (i, line) in body.iter().enumerate() {
        let line_no = i + 2;
        if let Some(at) = stop_at
            && next as u64 == at
        {
            // The prefix is verified: every event before `at` was compared. The episode
            // must be waiting for the target's output that `at` records.
            let event: Event = serde_json::from_str(line).map_err(|e| TranscriptError::Line {
                line: line_no,
                message: format!("not a transcript event: {e}"),
            })?;
            if !matches!(event, Event::Target { .. }) || ep.events().len() as u64 != at || ep.awaiting_user().is_some()
            {
                return diverged(
                    Some(at),
                    format!(
                        "step {at} is a `{}` event; a branch re-samples a target output, so --at names the step of a `target` event",
                        event.kind()
                    ),
                );
            }
            if let Some((step, what)) = edited {
                return diverged(Some(step), format!("{what}; the prefix was edited"));
            }
            return Ok(Ok((ep, recorded_verdicts, i)));
        }
        if next >= ep.events().len() {
            if ep.is_done() {
                return diverged(
                    Some(ep.step()),
                    format!("replay stopped at step {} but the transcript goes on (line {line_no})", ep.step() - 1),
                );
            }
            let event: Event = serde_json::from_str(line).map_err(|e| TranscriptError::Line {
                line: line_no,
                message: format!("not a transcript event: {e}"),
            })?;
            match event {
                Event::Target { output, last: false, .. } if ep.awaiting_user().is_none() => ep.apply(output),
                Event::Target { output, last: true, .. } if ep.awaiting_user().is_none() => ep.apply_last(output),
                Event::User { by: UserBy::Model, text, .. } if ep.awaiting_user().is_some() => ep.user_input(&text),
                Event::Stop { reason, by: StopBy::Target, .. } => ep.stop_by_target(reason),
                Event::Stop { reason, by: StopBy::Fault, .. } => ep.abort(reason),
                // The clock ran on after the target's side stopped: the stop is recorded
                // after what the world did meanwhile, and is the input here.
                Event::World { .. } if let Some(reason) = target_stop_after(&body[i..]) => ep.stop_by_target(reason),
                other => {
                    return diverged(
                        Some(other.step()),
                        format!(
                            "step {}: the transcript has a `{}` event where the world expected {}",
                            other.step(),
                            other.kind(),
                            if ep.awaiting_user().is_some() {
                                "the message of the model playing the user"
                            } else {
                                "the target's next output"
                            }
                        ),
                    );
                }
            }
        }
        let Some(event) = ep.events().get(next) else {
            return diverged(Some(ep.step()), format!("line {line_no}: replay produced no event here"));
        };
        next += 1;
        let ours = serde_json::to_string(event).expect("events serialise");
        if ours != *line && exact {
            return diverged(Some(event.step()), format!("line {line_no}: not the bytes the replay writes"));
        }
        if ours != *line {
            let theirs: Json = serde_json::from_str(line)
                .map_err(|e| TranscriptError::Line { line: line_no, message: format!("not JSON: {e}") })?;
            let ours: Json = serde_json::from_str(&ours).expect("own JSON parses");
            let beyond_chain = first_difference(&without_chain(&theirs), &without_chain(&ours), "");
            match (beyond_chain, &edited, event) {
                // Equal apart from the chain: an output edited after recording (replay
                // fed it as recorded). Equal chains too: the same event, written with
                // its keys in another order, say.
                (None, None, Event::Target { output, .. }) if theirs.get("chain") != ours.get("chain") => {
                    edited = Some((event.step(), edited_output(event.step(), output)));
                }
                (None, Some(_), _) => {}
                (Some(diff), Some((step, what)), _) => {
                    return diverged(
                        Some(*step),
                        format!("{what}; the edit shows at step {} ({}): {diff}", event.step(), event.kind()),
                    );
                }
                (_, None, _) => {
                    if let Some(diff) = first_difference(&theirs, &ours, "") {
                        return diverged(
                            Some(event.step()),
                            format!("step {} ({}): {diff}", event.step(), event.kind()),
                        );
                    }
                }
            }
        }
    }
    if let Some((step, what)) = edited {
        return diverged(Some(step), format!("{what}; nothing after it changed (only the chain covers it)"));
    }
    if let Some(extra) = ep.events().get(next) {
        return diverged(
            Some(extra.step()),
            format!("step {}: replay produced a `{}` event the transcript does not have", extra.step(), extra.kind()),
        );
    }
    if !ep.is_done() {
        return diverged(Some(ep.step()), "the transcript ends before the episode stopped".into());
    }
    Ok(Ok((ep, recorded_verdicts, body.len())))
}

/// The reason of the target's stop that `lines` (world events, then a stop) record,
/// when they are the clock running on after the target's side stopped.
fn target_stop_after(lines: &[&str]) -> Option<crate::stop::StopReason> {
    for line in lines {
        match serde_json::from_str::<Event>(line).ok()? {
            Event::World { .. } => continue,
            Event::Stop { reason, by: StopBy::Target, .. } => return Some(reason),
            _ => return None,
        }
    }
    None
}

/// The episode `text` records, re-executed in `world`, when every event line is the
/// bytes the re-execution writes, found as [`replay`] finds it: the header parsed alone,
/// then each line compared as bytes. `None` otherwise: the strict reader then reads the
/// transcript again and says what differs, so a report is the same either way.
fn reenacted_exactly<'w>(world: &'w World, text: &str, trace: bool) -> Option<Episode<'w>> {
    if text.contains('\r') {
        return None;
    }
    let header = crate::transcript::first_header(text)?;
    match replay_events(world, &header, text, Compare { trace, exact: true }, None) {
        Ok(Ok((ep, _, _))) => Some(ep),
        _ => None,
    }
}

/// A recorded episode re-enacted: its target outputs re-executed in `world`, every
/// event checked against the recording. Needs no model: the outputs are in the
/// transcript. The world may have changed since (its dynamics hash differs) as long as
/// nothing this episode touched did — for example a fact or lexicon only outcomes read —
/// so every event still reproduces; otherwise, and for a transcript that is damaged or
/// cut short, this fails naming the first difference.
pub fn reenact<'w>(world: &'w World, text: &str) -> Result<Episode<'w>, String> {
    if let Some(ep) = reenacted_exactly(world, text, false) {
        return Ok(ep);
    }
    let header = Transcript::read(text).map_err(|e| e.to_string())?.header;
    let changed = header.world.dynamics_hash != world.dynamics_hash;
    match replay_events(world, &header, text, Compare::default(), None).map_err(|e| e.to_string())? {
        Ok((ep, _, _)) => Ok(ep),
        Err(Divergence { message, .. }) if changed => Err(format!(
            "world `{}` has changed since the episode was recorded (dynamics hash {} recorded, {} now) and the episode no longer replays in it: {message}",
            world.id(),
            header.world.dynamics_hash,
            world.dynamics_hash
        )),
        Err(Divergence { message, .. }) => Err(format!("the transcript does not replay: {message}")),
    }
}

/// What each event of a recorded episode changed in the world's state, for a person
/// reading it (see [`State::changes_from`]). Fails as [`reenact`] does.
///
/// [`State::changes_from`]: crate::state::State::changes_from
pub fn trace(world: &World, text: &str) -> Result<Vec<StateChange>, String> {
    if let Some(ep) = reenacted_exactly(world, text, true) {
        return Ok(ep.changes().to_vec());
    }
    let header = Transcript::read(text).map_err(|e| e.to_string())?.header;
    match replay_events(world, &header, text, Compare { trace: true, exact: false }, None).map_err(|e| e.to_string())? {
        Ok((ep, _, _)) => Ok(ep.changes().to_vec()),
        Err(Divergence { message, .. }) => Err(format!("the transcript does not replay: {message}")),
    }
}

/// A recorded episode re-enacted up to step `at`, the target output a branch re-samples:
/// every event before it checked against the recording, the episode returned waiting
/// for the target's next output. Fails naming the first difference, or when `at` is
/// not the step of a `target` event of the transcript.
pub fn prefix<'w>(world: &'w World, text: &str, at: u64) -> Result<Episode<'w>, String> {
    let header = Transcript::read(text).map_err(|e| e.to_string())?.header;
    if header.world.dynamics_hash != world.dynamics_hash {
        return Err(format!(
            "world `{}` has changed since the parent was recorded (dynamics hash {} recorded, {} now): a branch needs the world it was recorded in",
            world.id(),
            header.world.dynamics_hash,
            world.dynamics_hash
        ));
    }
    match replay_events(world, &header, text, Compare::default(), Some(at)).map_err(|e| e.to_string())? {
        Ok((ep, _, _)) if ep.events().len() as u64 == at => Ok(ep),
        Ok(_) => Err(format!("the transcript has no step {at} to branch at")),
        Err(Divergence { message, .. }) => Err(format!("the parent does not replay to step {at}: {message}")),
    }
}

/// The verdicts the current outcome definitions give a recorded episode (see [`reenact`]).
pub fn rejudge(world: &World, text: &str) -> Result<crate::transcript::Verdicts, String> {
    Ok(reenact(world, text)?.verdicts())
}

/// The first place two JSON values differ, as `field: recorded X, replayed Y`.
/// An event's JSON without its `chain`.
fn without_chain(event: &Json) -> Json {
    let mut event = event.clone();
    if let Some(map) = event.as_object_mut() {
        map.remove("chain");
    }
    event
}

/// What can be said of a target output edited after recording: where it is, and any
/// call whose raw arguments no longer agree with the parsed copy recorded beside them
/// (an edit to one and not the other).
fn edited_output(step: u64, output: &crate::transcript::TargetOutput) -> String {
    let mut what = format!(
        "step {step} (target): the recorded output was edited after recording (its `chain` no longer matches its content)"
    );
    for (i, call) in output.tool_calls.iter().enumerate() {
        let (Some(parsed), Ok(raw)) = (&call.arguments, serde_json::from_str::<Json>(&call.arguments_raw)) else {
            continue;
        };
        if let Some(diff) = first_difference(parsed, &raw, "") {
            let diff = diff.replace("recorded", "parsed copy").replace("replayed", "raw text");
            what.push_str(&format!(
                "; call {} (`{}`): its `arguments_raw` and `arguments` disagree: {diff}",
                i + 1,
                call.name
            ));
        }
    }
    what
}

fn first_difference(recorded: &Json, replayed: &Json, path: &str) -> Option<String> {
    match (recorded, replayed) {
        (Json::Object(a), Json::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let sub = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                first_difference(a.get(k).unwrap_or(&Json::Null), b.get(k).unwrap_or(&Json::Null), &sub)
            })
        }
        (Json::Array(a), Json::Array(b)) if a.len() == b.len() => {
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| first_difference(x, y, &format!("{path}[{i}]")))
        }
        (a, b) if a == b => None,
        (Json::String(a), Json::String(b)) => {
            // Show where two texts part, not just their common start.
            let at = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
            let from = at.saturating_sub(30);
            let cut = |s: &str| -> String { s.chars().skip(from).take(70).collect() };
            Some(format!("`{path}` differs at character {at}: recorded …{:?}…, replayed …{:?}…", cut(a), cut(b)))
        }
        (a, b) => {
            let what = if path.ends_with("chain") {
                " (the chain covers every earlier event: something recorded before or at this step was edited)"
            } else {
                ""
            };
            Some(format!("`{path}` differs: recorded {}, replayed {}{what}", short(a), short(b)))
        }
    }
}

fn short(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 { format!("{}…", s.chars().take(120).collect::<String>()) } else { s }
}
