//! Running episodes: start one, feed it the target's moves, and finish it into the
//! record and transcript a run folder keeps ([`crate::run_folder`]).

use terrarium_core::stop::StopReason;
use terrarium_core::transcript::Reasoning;
use terrarium_core::{Episode, EpisodeKey};

use crate::providers::http::ApiTarget;
use crate::providers::usage::Tokens;
use crate::run_folder::{ConversationTurns, EpisodeRecord, EpisodeStatus, Finished, transcript_path};
use crate::target::{Next, Target, TargetError};

/// The tokens of an episode's replies; `None` when no reply reported usage.
fn episode_tokens(events: &[terrarium_core::transcript::Event]) -> Option<Tokens> {
    let mut total: Option<Tokens> = None;
    for e in events {
        if let terrarium_core::transcript::Event::Target { output, .. } = e
            && let Some(usage) = &output.meta.usage
        {
            total.get_or_insert_default().add(Tokens::from_usage(usage));
        }
    }
    total
}

/// An episode being run: started, fed the target's moves one at a time, then finished
/// into its record and transcript. The same steps serve a synchronous target and a
/// model awaited among many others.
pub struct EpisodeRun<'w> {
    key: EpisodeKey<'w>,
    /// Worked out when first asked for (a model's requests name it; a scripted run needs
    /// it only in the header).
    id: std::sync::OnceLock<String>,
    /// The commit the front end was built from, for the header.
    build: Option<String>,
    episode: Episode<'w>,
    error: Option<String>,
    user_tokens: Option<Tokens>,
}

impl<'w> EpisodeRun<'w> {
    /// Start the episode `key` names. With a model playing the world's simulated user
    /// (`key.user`), the episode waits for that model's messages. `build`, the commit
    /// the front end was built from, goes into the header as provenance.
    ///
    /// A key that names a branch (`key.branch`) starts from `parent`, the recorded
    /// transcript it branches from: replayed and verified up to the step it re-samples.
    pub fn start(key: EpisodeKey<'w>, build: Option<&str>, parent: Option<&str>) -> Result<Self, String> {
        let mut episode = match (&key.branch, parent) {
            (Some(b), Some(text)) => terrarium_core::replay::prefix(key.world, text, b.at)?,
            (Some(_), None) => return Err("a branch starts from its parent's transcript, and none was given".into()),
            (None, _) => Episode::start(key.world, key.condition, key.seed).map_err(|e| e.to_string())?,
        };
        if key.user.is_some() {
            episode.play_user_externally();
        }
        // The header is built when the episode finishes: a thousand episodes awaiting
        // replies would otherwise each hold its JSON (4 KB) all the while.
        let build = build.map(String::from);
        Ok(EpisodeRun { key, id: std::sync::OnceLock::new(), build, episode, error: None, user_tokens: None })
    }

    /// The episode's id.
    pub fn episode_id(&self) -> &str {
        self.id.get_or_init(|| self.key.id())
    }

    /// The user model's reply, or its failure (which ends the episode as `errored`,
    /// never a verdict).
    pub fn user_step(&mut self, reply: Result<crate::providers::http::Completion, TargetError>) {
        let max = self.key.world.file.limits.max_text_bytes as usize;
        match reply {
            // A message past the world's text limit is not recorded (a transcript stays
            // bounded, as a target reply of that size is stopped): the user model failed.
            Ok(c) if c.text.len() > max => {
                if let Some(usage) = &c.usage {
                    self.user_tokens.get_or_insert_default().add(Tokens::from_usage(usage));
                }
                self.error = Some(format!(
                    "user model: its message is {} bytes, more than the world's max_text_bytes ({max}); not recorded",
                    c.text.len()
                ));
                self.episode.abort(StopReason::Error);
            }
            Ok(c) => {
                if let Some(usage) = &c.usage {
                    self.user_tokens.get_or_insert_default().add(Tokens::from_usage(usage));
                }
                self.episode.user_input(&c.text);
            }
            Err(e) => {
                self.error = Some(format!("user model: {}", e.0));
                self.episode.abort(StopReason::Error);
            }
        }
    }

    /// Every event so far.
    pub fn events(&self) -> &[terrarium_core::transcript::Event] {
        self.episode.events()
    }

    /// End the episode from the target's side (`reason`), as when the agent driving it
    /// went away.
    pub fn stop(&mut self, reason: StopReason) {
        if !self.episode.is_done() {
            self.episode.stop_by_target(reason);
        }
    }

    /// The episode so far, which the target's next move answers; `None` once it is over.
    pub fn pending(&self) -> Option<&Episode<'w>> {
        (!self.episode.is_done()).then_some(&self.episode)
    }

    /// Apply the target's move. A target error ends the episode as `errored`.
    pub fn step(&mut self, next: Result<Next, TargetError>) {
        match next {
            Ok(next) => {
                if !next.apply_to(&mut self.episode) {
                    self.episode.stop_by_target(StopReason::TargetExhausted);
                }
            }
            Err(e) => {
                self.error = Some(e.0);
                self.episode.abort(StopReason::Error);
            }
        }
    }

    /// The record, transcript and verdicts of the finished episode.
    pub fn finish(self) -> Finished {
        let EpisodeRun { key, id, build, episode: ep, error, user_tokens } = self;
        let mut header = key.header();
        debug_assert!(id.get().is_none_or(|id| *id == header.episode_id), "the id is the key's");
        header.build = build;
        let EpisodeKey { world, condition, seed, .. } = key;
        // What the settings asked the provider to expose, or more where replies showed more.
        let shown = Reasoning::shown(ep.events());
        let declared = crate::providers::http::declared_reasoning(&header.target.spec, &header.target.settings);
        header.reasoning = declared.map(|d| d.max(shown)).or((shown != Reasoning::None).then_some(shown));
        let verdicts = ep.verdicts();
        let status = match (&error, ep.stop_reason()) {
            (Some(_), _) => EpisodeStatus::Errored,
            (None, Some(StopReason::UserOutOfRole)) => EpisodeStatus::UserOutOfRole,
            (None, _) => EpisodeStatus::Completed,
        };
        let transcript = terrarium_core::encode_transcript(&header, ep.events(), &verdicts);
        let record = EpisodeRecord {
            episode_id: header.episode_id.clone(),
            world: world.id().to_string(),
            world_path: world.path.clone(),
            dynamics_hash: world.dynamics_hash.clone(),
            condition: condition.to_json(),
            condition_key: condition.key(),
            seed,
            target: header.target.spec.clone(),
            status,
            stop_reason: verdicts.stop_reason.clone(),
            outcomes: (status == EpisodeStatus::Completed).then(|| verdicts.outcomes.clone()),
            error,
            transcript: transcript_path(&header.episode_id),
            tokens: episode_tokens(ep.events()),
            cost_usd: None,
            reasoning: header.reasoning,
            user: header.user.as_ref().map(|u| u.spec.clone()),
            user_tokens,
            conversation: ConversationTurns::of(world, &ep),
            branch: header.branch.clone(),
        };
        Finished { record, transcript, verdicts }
    }
}

/// Run one episode of a synchronous target to its end. `key.target` names `target`;
/// `parent` is the transcript a branch starts from (see [`EpisodeRun::start`]).
pub fn run_episode(
    key: EpisodeKey,
    target: &mut dyn Target,
    build: Option<&str>,
    parent: Option<&str>,
) -> Result<Finished, String> {
    debug_assert_eq!(key.target.spec, target.spec(), "the key names the target that acts");
    let mut run = EpisodeRun::start(key, build, parent)?;
    while let Some(ep) = run.pending() {
        let next = target.next(ep);
        run.step(next);
    }
    Ok(run.finish())
}

/// What acts as the target in an episode run on the async driver.
pub enum Player<'a, 'w> {
    /// A reference policy (with a model playing the user).
    Scripted(&'a mut dyn Target),
    /// A model.
    Model(&'w ApiTarget),
}

/// Run one episode on the async driver: a model target, or any target with a model
/// playing the world's simulated user (`user`, which `key.user` names). Many may run
/// at once.
pub async fn run_model_episode(
    key: EpisodeKey<'_>,
    player: Player<'_, '_>,
    user: Option<&ApiTarget>,
    build: Option<&str>,
    parent: Option<&str>,
) -> Result<Finished, String> {
    debug_assert_eq!(key.user.as_ref().map(|u| u.spec.clone()), user.map(ApiTarget::spec), "the key names the user");
    let mut run = EpisodeRun::start(key, build, parent)?;
    let mut player = player;
    while let Some(ep) = run.pending() {
        if ep.awaiting_user().is_some()
            && let Some(user) = user
        {
            let prompt = ep.user_prompt().unwrap_or_default();
            let asker = format!("user {} turn {}", run.episode_id(), ep.state().turn);
            let reply = user.complete(&prompt, &asker).await;
            run.user_step(reply);
            continue;
        }
        let next = match &mut player {
            Player::Scripted(t) => t.next(ep),
            Player::Model(t) => t.next(run.episode_id(), ep).await,
        };
        run.step(next);
    }
    let mut finished = run.finish();
    let target_cost = match player {
        Player::Model(t) => t.price().zip(finished.record.tokens).map(|(p, t)| p.cost(t)),
        Player::Scripted(_) => None,
    };
    let user_cost = user.and_then(|u| u.price()).zip(finished.record.user_tokens).map(|(p, t)| p.cost(t));
    finished.record.cost_usd = match (target_cost, user_cost) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    };
    Ok(finished)
}
