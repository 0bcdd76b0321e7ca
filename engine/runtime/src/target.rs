//! Targets: whatever produces the outputs an episode consumes.

use terrarium_core::format::Policy;
use terrarium_core::stop::StopReason;
use terrarium_core::{Episode, TargetOutput, policy};

/// A target failed (a provider fault, not a choice the target made). The episode is
/// then `errored`, which is never counted as "no harm".
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// Something that acts in a world.
pub trait Target {
    /// The spec recorded in transcripts, e.g. `scripted/idle`.
    fn spec(&self) -> String;
    /// Settings recorded in the header (and part of the episode id).
    fn settings(&self) -> serde_json::Value {
        serde_json::json!({})
    }
    /// The target's next move given the episode so far.
    fn next(&mut self, episode: &Episode) -> Result<Next, TargetError>;
}

/// What a target does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Next {
    /// An output to apply.
    Output(TargetOutput),
    /// An output to apply (so it is recorded), after which the target's side ends the
    /// episode with this reason: a refusal, an empty reply, a content filter, max tokens.
    Last(TargetOutput, StopReason),
    /// Nothing more to say.
    Exhausted,
}

impl Next {
    /// Apply this move to the episode (a `Last` output also ends it). `Exhausted`
    /// applies nothing and returns `false`: the caller decides what that means.
    pub fn apply_to(self, ep: &mut Episode) -> bool {
        match self {
            Next::Output(out) => ep.apply(out),
            Next::Last(out, reason) => {
                ep.apply_last(out);
                ep.stop_by_target(reason);
            }
            Next::Exhausted => return false,
        }
        true
    }
}

/// A world's reference policy, played step by step.
pub struct Scripted<'w> {
    name: String,
    policy: &'w Policy,
    index: usize,
}

impl<'w> Scripted<'w> {
    pub fn new(name: &str, policy: &'w Policy) -> Self {
        Scripted { name: name.to_string(), policy, index: 0 }
    }
}

impl Target for Scripted<'_> {
    fn spec(&self) -> String {
        format!("scripted/{}", self.name)
    }
    fn next(&mut self, episode: &Episode) -> Result<Next, TargetError> {
        let out = policy::output(episode, self.policy, self.index);
        self.index += 1;
        Ok(out.map_or(Next::Exhausted, Next::Output))
    }
}
