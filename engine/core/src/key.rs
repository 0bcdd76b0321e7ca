//! An episode's identity, defined once: [`EpisodeKey`] names everything that decides an
//! episode (the world and its dynamics, the cell, the seed, what acts as the target
//! with its settings, and the model playing a simulated user), and everything that
//! names an episode takes its name from it: the plan of a sweep, the transcript
//! header, the response cache's key and the record in `episodes.jsonl`.

use crate::hash::Canon;
use crate::transcript::{Branch, Header, TargetRef, WorldRef};
use crate::world::{Cell, World};

/// Everything that decides one episode. Two episodes with equal keys are the same
/// episode (same id, same transcript); two that differ in any part are different
/// episodes, and share no cached model reply.
#[derive(Clone, Debug)]
pub struct EpisodeKey<'a> {
    pub world: &'a World,
    pub condition: &'a Cell,
    pub seed: u64,
    /// What acts: `scripted/<policy>` or `provider/model`, with the settings recorded in
    /// the header (sampling, base URL, reasoning exposure; `{}` for scripted targets).
    pub target: TargetRef,
    /// The model playing the world's simulated user, when one does.
    pub user: Option<TargetRef>,
    /// Where this episode branched from a recorded one, if it did.
    pub branch: Option<Branch>,
}

impl<'a> EpisodeKey<'a> {
    /// The key of an episode with no model playing a user.
    pub fn new(world: &'a World, condition: &'a Cell, seed: u64, spec: &str, settings: &serde_json::Value) -> Self {
        EpisodeKey {
            world,
            condition,
            seed,
            target: TargetRef { spec: spec.to_string(), settings: settings.clone() },
            user: None,
            branch: None,
        }
    }

    /// The same episode with `user` playing the simulated user. A world without a
    /// simulated user has no one for a model to play: the key is unchanged.
    pub fn with_user(mut self, user: Option<TargetRef>) -> Self {
        self.user = user.filter(|_| !self.world.file.users.is_empty());
        self
    }

    /// The deterministic id, safe as a file name: `<world>-s<seed>-<16 hex>`.
    pub fn id(&self) -> String {
        let mut c = Canon::new("terrarium.episode.v1");
        c.str(self.world.id())
            .str(&self.world.dynamics_hash)
            .str(&self.condition.key())
            .u64(self.seed)
            .str(&self.target.spec)
            .json(&self.target.settings);
        if let Some(user) = &self.user {
            c.str("user").str(&user.spec).json(&user.settings);
        }
        if let Some(b) = &self.branch {
            c.str("branch").str(&b.parent).u64(b.at).u64(b.index);
        }
        format!("{}-s{}-{}", self.world.id(), self.seed, c.hex(8))
    }

    /// The transcript header. `build` (the commit the front end was built from) is
    /// provenance only: the caller knows it, the core does not.
    pub fn header(&self) -> Header {
        let world = self.world;
        Header {
            format: crate::transcript::TRANSCRIPT_FORMAT,
            engine: crate::transcript::ENGINE.to_string(),
            build: None,
            episode_id: self.id(),
            user: self.user.clone(),
            reasoning: None,
            world: WorldRef {
                id: world.id().to_string(),
                path: world.path.clone(),
                version: world.file.version.clone(),
                dynamics_hash: world.dynamics_hash.clone(),
                outcomes_hash: world.outcomes_hash.clone(),
            },
            condition: self.condition.to_json(),
            condition_key: self.condition.key(),
            seed: self.seed,
            target: self.target.clone(),
            turns: serde_json::to_value(&world.file.turns).expect("turn model serialises"),
            limits: serde_json::to_value(&world.file.limits).expect("limits serialise"),
            branch: self.branch.clone(),
        }
    }

    /// The key a recorded header names, in `world` (whose cell `condition` is the
    /// header's): what replay recomputes the id from.
    pub fn of_header(world: &'a World, condition: &'a Cell, header: &Header) -> Self {
        EpisodeKey {
            world,
            condition,
            seed: header.seed,
            target: header.target.clone(),
            user: header.user.clone(),
            branch: header.branch.clone(),
        }
    }
}
