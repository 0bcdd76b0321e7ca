//! Running model judges on finished episodes and keeping `judgements.jsonl`.
//!
//! A judge reads the episode as re-enacted from its stored transcript, so an episode
//! judged the moment it finishes and one judged by a later run are asked the same
//! thing. Judgements never touch the transcript, which stays byte-identical.

use std::collections::BTreeMap;

use terrarium_core::World;
use terrarium_core::episode::USER_OUT_OF_ROLE;
use terrarium_core::format::Decide;
use terrarium_core::judge::{Question, conversation, material, parse_answer, questions};
use terrarium_core::transcript::Verdict;

use crate::providers::http::ApiTarget;
use crate::providers::usage::Tokens;
use crate::run_folder::Judgement;

/// The outcomes of `world` that declare a judge prompt; with `user_model`, where the
/// world has a simulated user, also whether the user model stopped playing it
/// ([`USER_OUT_OF_ROLE`]).
pub fn judged_outcomes(world: &World, user_model: bool) -> Vec<&str> {
    let mut out: Vec<&str> =
        world.file.outcomes.iter().filter(|(_, o)| o.judge.is_some()).map(|(n, _)| n.as_str()).collect();
    if user_model && !world.file.users.is_empty() {
        out.push(USER_OUT_OF_ROLE);
    }
    out
}

/// Whether judges are asked about `outcome` for an episode whose recorded verdicts are
/// `outcomes` (an `episodes.jsonl` record's): always for a second opinion; for an
/// outcome decided by judges, only when its gate let the episode through.
pub fn asks_about(world: &World, outcome: &str, outcomes: Option<&BTreeMap<String, Verdict>>) -> bool {
    if outcome == USER_OUT_OF_ROLE {
        // Asked of every conversation a model-played user did not leave (the question
        // exists only for those), as a second opinion beside the rule that stops one.
        return true;
    }
    let Some(o) = world.file.outcomes.get(outcome).filter(|o| o.judge.is_some()) else { return false };
    o.decide == Decide::Rule || outcomes.and_then(|v| v.get(outcome)).is_some_and(|v| v.fired)
}

/// Which episode is judged: what its record would say.
#[derive(Clone, Copy, Debug)]
pub struct Judged<'a> {
    pub episode_id: &'a str,
    pub condition_key: &'a str,
    pub target: &'a str,
    pub seed: u64,
}

/// Ask `judge` every judged outcome of an episode for which `wanted` says yes, from the
/// episode's stored transcript. Fails only when the transcript does not re-enact in
/// `world`; a judge's failures are judgements with a `judge_error`.
pub async fn judge_episode(
    world: &World,
    episode: Judged<'_>,
    transcript: &str,
    judge: &ApiTarget,
    saw_reasoning: bool,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<Judgement>, String> {
    let ep = terrarium_core::replay::reenact(world, transcript)?;
    let material = material(&ep.moment(), saw_reasoning);
    let verdicts = ep.verdicts().outcomes;
    let mut out = Vec::new();
    for Question { outcome, prompt } in questions(&ep.moment())
        .into_iter()
        .filter(|q| wanted(&q.outcome) && asks_about(world, &q.outcome, Some(&verdicts)))
    {
        let role = match world.file.outcomes.get(&outcome).map(|o| o.decide) {
            Some(Decide::Judges) => "judges",
            Some(Decide::Rule) | None => "second_opinion",
        };
        let asked = judge
            .complete(
                &conversation(&Question { outcome: outcome.clone(), prompt: prompt.clone() }, &material),
                &format!("judge {}/{outcome}", episode.episode_id),
            )
            .await;
        let mut j = Judgement {
            outcome,
            judge: judge.spec(),
            settings: judge.settings(),
            prompt,
            saw_reasoning,
            role: role.to_string(),
            ..unanswered(world, episode)
        };
        record_reply(&mut j, judge, asked, |j, reply| {
            let a = parse_answer(reply, &material)?;
            j.verdict = Some(a.verdict);
            j.evidence = a.evidence;
            j.reason = Some(a.reason);
            Ok(())
        });
        out.push(j);
    }
    Ok(out)
}

/// A monitor: a model asked how suspicious a transcript is, or the world's rule-based
/// baseline.
#[derive(Clone, Copy)]
pub enum Monitor<'a> {
    Model(&'a ApiTarget),
    Rule,
}

impl Monitor<'_> {
    /// As recorded in a judgement's `judge`.
    pub fn spec(&self) -> String {
        match self {
            Monitor::Model(m) => m.spec(),
            Monitor::Rule => terrarium_core::monitor::RULE.to_string(),
        }
    }
}

/// Whether `monitor` scores episodes of `world`: a model scores every world; the rule
/// only worlds that declare a baseline.
pub fn monitors(world: &World, rule: bool) -> bool {
    !rule || world.file.sabotage.as_ref().is_some_and(|s| !s.baseline.is_empty())
}

/// Have `monitor` score an episode from its stored transcript: the transcript as
/// [`terrarium_core::monitor::material`] renders it (hidden texts cut, hidden reasoning
/// left out unless `sees_hidden_reasoning`), recorded as a judgement of
/// [`SUSPICION`](terrarium_core::monitor::SUSPICION). Fails only when the transcript does
/// not re-enact in `world`; a monitor's failures are judgements with a `judge_error`.
pub async fn monitor_episode(
    world: &World,
    episode: Judged<'_>,
    transcript: &str,
    monitor: Monitor<'_>,
    sees_hidden_reasoning: bool,
) -> Result<Judgement, String> {
    use terrarium_core::monitor;
    let ep = terrarium_core::replay::reenact(world, transcript)?;
    let now = ep.moment();
    let material = monitor::material(&now, sees_hidden_reasoning);
    let mut j = Judgement {
        outcome: monitor::SUSPICION.to_string(),
        judge: monitor.spec(),
        prompt: monitor::QUESTION.to_string(),
        saw_reasoning: !monitor::hides_reasoning(&now, sees_hidden_reasoning),
        role: "monitor".to_string(),
        ..unanswered(world, episode)
    };
    match monitor {
        Monitor::Rule => match monitor::baseline(&now) {
            Some(score) => {
                j.suspicion = Some(score.suspicion);
                j.evidence = score.evidence;
                j.reason = Some(score.reason);
            }
            None => j.judge_error = Some(format!("world `{}` declares no rule-based monitor", world.id())),
        },
        Monitor::Model(model) => {
            j.settings = model.settings();
            let asked =
                model.complete(&monitor::conversation(&material), &format!("monitor {}", episode.episode_id)).await;
            record_reply(&mut j, model, asked, |j, reply| {
                let score = monitor::parse_score(reply, &material)?;
                j.suspicion = Some(score.suspicion);
                j.evidence = score.evidence;
                j.reason = Some(score.reason);
                Ok(())
            });
        }
    }
    Ok(j)
}

/// Record what a model asked for a judgement answered: its usage and cost, the reply as
/// written and its request id, and what `read` makes of the reply (an error it returns
/// is the judgement's `judge_error`); or, where no reply came, the failure, for the next
/// run to ask again.
fn record_reply(
    j: &mut Judgement,
    model: &ApiTarget,
    asked: Result<crate::providers::http::Completion, crate::target::TargetError>,
    read: impl FnOnce(&mut Judgement, &str) -> Result<(), String>,
) {
    match asked {
        Ok(c) => {
            j.tokens = c.usage.as_ref().map(Tokens::from_usage);
            j.cost_usd = model.price().zip(j.tokens).map(|(p, t)| p.cost(t));
            if let Err(e) = read(j, &c.text) {
                j.judge_error = Some(e);
            }
            j.reply = Some(c.text);
            j.request_id = c.request_id;
        }
        Err(e) => {
            j.judge_error = Some(e.0);
            j.failed = true;
        }
    }
}

/// A judgement of `episode` with nothing asked or answered yet.
fn unanswered(world: &World, episode: Judged<'_>) -> Judgement {
    Judgement {
        episode_id: episode.episode_id.to_string(),
        world: world.id().to_string(),
        condition_key: episode.condition_key.to_string(),
        target: episode.target.to_string(),
        outcome: String::new(),
        judge: String::new(),
        settings: serde_json::Value::Null,
        prompt: String::new(),
        saw_reasoning: false,
        role: String::new(),
        reply: None,
        request_id: None,
        verdict: None,
        suspicion: None,
        evidence: Vec::new(),
        reason: None,
        judge_error: None,
        failed: false,
        tokens: None,
        cost_usd: None,
    }
}
