//! The lines of a run folder's logs: `episodes.jsonl` ([`EpisodeRecord`]),
//! `plan.jsonl` ([`Planned`]) and `judgements.jsonl` ([`Judgement`]), and how each is
//! read back (the latest line per key; damaged lines named, never silently lost).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use terrarium_core::stop::StopReason;
use terrarium_core::transcript::{Reasoning, Verdict, Verdicts};
use terrarium_core::{Episode, World};

use super::{latest_lines, latest_lines_noting};
use crate::providers::usage::Tokens;

/// One line of `episodes.jsonl`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct EpisodeRecord {
    pub episode_id: String,
    pub world: String,
    /// The world file, relative to the run folder (folders written before 0.2: as given
    /// on the command line). See [`RunFolder::world_path`].
    pub world_path: String,
    pub dynamics_hash: String,
    pub condition: Json,
    pub condition_key: String,
    pub seed: u64,
    pub target: String,
    pub status: EpisodeStatus,
    pub stop_reason: StopReason,
    /// Outcome name → verdict; `null` when errored. Written with each verdict's keys in
    /// sorted order, as records have always been.
    #[serde(serialize_with = "sorted_keys")]
    pub outcomes: Option<BTreeMap<String, Verdict>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The transcript, relative to the run folder.
    pub transcript: String,
    /// Tokens the provider reported for this episode's replies (model targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    /// The estimated cost of those tokens in dollars, where the run was given a price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// For a model target (or a scripted one that showed reasoning): how much of its
    /// reasoning the transcript shows (`none`, `summary`, `thinking`), as its header says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
    /// The model that played the simulated user, when one did (`--user-model`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Tokens the user model reported for its messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_tokens: Option<Tokens>,
    /// In a world with a simulated user: how many turns the conversation lasted, and
    /// which of the target's replies the user read as refusals (for rates by turn).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationTurns>,
    /// For an episode branched from a recorded one (`run --from`): its parent, the step
    /// it re-sampled, its number. Reports compare branches apart from the cells' rates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<terrarium_core::transcript::Branch>,
}

/// Verdicts as records write them: every object's keys in sorted order (the record's
/// bytes predate typed verdicts, and run folders are compared byte for byte).
fn sorted_keys<S: serde::Serializer>(outcomes: &Option<BTreeMap<String, Verdict>>, s: S) -> Result<S::Ok, S::Error> {
    let value = serde_json::to_value(outcomes).map_err(serde::ser::Error::custom)?;
    value.serialize(s)
}

/// What acted in an episode, as reports group it: the target, and the model that
/// played the simulated user when one did (`scripted/benign with user openai/x`), so
/// episodes with different user models are never pooled.
pub fn acting(target: &str, user: Option<&str>) -> String {
    match user {
        Some(u) => format!("{target} with user {u}"),
        None => target.to_string(),
    }
}

impl EpisodeRecord {
    /// See [`acting`].
    pub fn acting(&self) -> String {
        acting(&self.target, self.user.as_deref())
    }
}

impl Planned {
    /// See [`acting`].
    pub fn acting(&self) -> String {
        acting(&self.target, self.user.as_deref())
    }
}

/// An episode's conversation, turn by turn, as reports count it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ConversationTurns {
    /// Target turns taken.
    pub turns: u32,
    /// The turns whose reply the simulated user read as a refusal.
    pub refused: Vec<u32>,
}

impl ConversationTurns {
    /// Read from an episode's events; `None` for a world without a simulated user.
    pub fn of(world: &World, ep: &Episode) -> Option<Self> {
        if world.file.users.is_empty() {
            return None;
        }
        let refused = ep
            .events()
            .iter()
            .filter_map(|e| match e {
                terrarium_core::Event::User { turn, refused: true, .. } => Some(*turn),
                _ => None,
            })
            .collect();
        Some(ConversationTurns { turns: ep.state().turn, refused })
    }
}

/// How an episode ended: it ran to a stop (its verdicts stand), or a provider fault or
/// a world that could not start ended it (it has none, and a later run retries it), or
/// the model playing its simulated user stopped playing the person (it has none: what
/// followed was no longer the conversation the world describes; counted apart, and not
/// run again, since the same request gets the same cached reply).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeStatus {
    Completed,
    Errored,
    UserOutOfRole,
}

impl EpisodeStatus {
    /// As `episodes.jsonl` writes it.
    pub fn name(self) -> &'static str {
        match self {
            EpisodeStatus::Completed => "completed",
            EpisodeStatus::Errored => "errored",
            EpisodeStatus::UserOutOfRole => "user_out_of_role",
        }
    }

    /// Whether the episode is done for good (a later run does not run it again).
    pub fn is_final(self) -> bool {
        self != EpisodeStatus::Errored
    }
}

impl std::fmt::Display for EpisodeStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One line of `plan.jsonl`: an episode some run in this folder was asked to do, so
/// reports can tell a cell that got fewer episodes than were asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Planned {
    pub episode_id: String,
    pub world: String,
    pub condition_key: String,
    pub target: String,
    /// The model playing the simulated user, when one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Where a planned branch leaves its parent (`run --from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<terrarium_core::transcript::Branch>,
}

/// The planned episodes of a `plan.jsonl`, each once. Lines that do not parse are skipped.
pub fn read_plan(text: &str) -> Vec<Planned> {
    latest_lines(text, |p: &Planned| p.episode_id.clone())
}

/// A finished episode: its record, transcript text and verdicts.
pub struct Finished {
    pub record: EpisodeRecord,
    pub transcript: String,
    pub verdicts: Verdicts,
}

/// The records of an `episodes.jsonl`: for each episode its latest record (an errored
/// episode retried later has two lines; the later one counts), in order of first
/// appearance; and the lines that are not usable records, as (line number, why), so a
/// reader can say so rather than let an episode silently vanish. A last line cut short
/// by a crash is among them (a resumed run writes the episode again), as is a record
/// whose status is neither `completed` nor `errored`. Each line is parsed once.
pub fn read_records(text: &str) -> (Vec<EpisodeRecord>, Vec<(usize, String)>) {
    let mut damaged = Vec::new();
    let records = latest_lines_noting(
        text,
        |r: &EpisodeRecord| r.episode_id.clone(),
        |n, line, e| damaged.push((n, damage(line, &e))),
    );
    (records, damaged)
}

/// Why `line`, which does not parse as a record (`e`), is not one.
fn damage(line: &str, e: &serde_json::Error) -> String {
    // A record in all but its status says which episode it is.
    let value: Option<Json> = serde_json::from_str(line).ok();
    let named = value.as_ref().and_then(|v| Some((v.get("episode_id")?.as_str()?, v.get("status")?)));
    let status_only = value.as_ref().is_some_and(|v| {
        let mut v = v.clone();
        v["status"] = Json::from("completed");
        serde_json::from_value::<EpisodeRecord>(v).is_ok()
    });
    match named {
        Some((id, status)) if status_only => format!("episode {id} has status {status}, neither completed nor errored"),
        _ => format!("not an episode record ({e})"),
    }
}

/// One line of `judgements.jsonl`: one judge's answer on one outcome of one episode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub episode_id: String,
    pub world: String,
    pub condition_key: String,
    pub target: String,
    pub outcome: String,
    /// The judge's spec, e.g. `anthropic/<model>`.
    pub judge: String,
    /// The judge's settings, as a target's are recorded.
    pub settings: Json,
    /// The question asked (the outcome's judge prompt, rendered for this episode). The
    /// whole request is this, the transcript as [`terrarium_core::judge::material`]
    /// renders it (with the target's visible reasoning when `saw_reasoning`),
    /// [`terrarium_core::judge::ANSWER_FORM`] and [`terrarium_core::judge::SYSTEM`].
    pub prompt: String,
    /// Whether the transcript shown included the target's visible reasoning.
    #[serde(default)]
    pub saw_reasoning: bool,
    /// `judges` when this outcome is decided by judges (its rule a gate this episode
    /// passed), `second_opinion` when the rule decides and the judge is a comparison.
    #[serde(default)]
    pub role: String,
    /// The judge's reply, as it wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Yes or no, read strictly from the reply; `null` on a judge error, and for a
    /// monitor, which scores instead.
    pub verdict: Option<bool>,
    /// A monitor's suspicion, 0 to 100 (its `outcome` is
    /// [`terrarium_core::monitor::SUSPICION`]); `null` on a monitor error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspicion: Option<u8>,
    /// The passages of the transcript the judge quoted, each found in it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// The judge's short reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why there is no verdict: a reply that could not be read, or a request that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_error: Option<String>,
    /// The request failed (no reply came): the next run asks again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Tokens>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl Judgement {
    /// The key a later judgement of the same thing replaces this one under.
    pub fn key(&self) -> (String, String, String) {
        (self.episode_id.clone(), self.judge.clone(), self.outcome.clone())
    }
}

/// The judgements of a `judgements.jsonl`: the latest for each (episode, judge,
/// outcome), in order of first appearance. Lines that do not parse are skipped.
pub fn read_judgements(text: &str) -> Vec<Judgement> {
    latest_lines(text, Judgement::key)
}
