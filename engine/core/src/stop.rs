//! Why an episode stopped: [`StopReason`], the one list of the reasons the engine and
//! the run's side give, and the reasons a world declares itself. Transcripts, records
//! and `Stopped(...)` conditions spell a reason by its name ([`StopReason::name`]).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an episode stopped (or `Running`, in verdicts taken before it has).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopReason {
    /// The target called a tool that ends its task (an `EndTask` effect).
    EndTask,
    /// The target had nothing more to say: a policy's steps ran out, a model ended its
    /// turn with no tool call where the world has no user to answer.
    TargetExhausted,
    /// The provider reported a refusal.
    Refusal,
    /// A reply with neither text nor a tool call.
    EmptyReply,
    /// The provider's content filter stopped the reply.
    ContentFilter,
    /// A reply cut off at the token limit, with no tool call.
    MaxTokens,
    /// The world's turn limit.
    MaxTurns,
    /// More text in one output than the world allows.
    LimitTextBytes,
    /// More tool calls in one output than the world allows.
    LimitToolCalls,
    /// More actor replies at one moment than the world allows.
    LimitActorExchanges,
    /// More events than the world allows.
    LimitEvents,
    /// The target answered in text where the world ends on text alone (`on_text_only: End`).
    TextOnly,
    /// The target answered in text after every nudge the world gives.
    NudgesExhausted,
    /// The simulated user ended the conversation, or had nothing more to say.
    ConversationOver,
    /// The simulated user left after its last escalation.
    UserGaveUp,
    /// A fault on the run's side (a provider failure, a world that could not start).
    Error,
    /// The model playing the simulated user stopped playing the person.
    UserOutOfRole,
    /// Lint's search: a state where the target does nothing more.
    LintIdle,
    /// Lint's search: the target ends its session.
    LintSessionEnd,
    /// The agent driving the episode over MCP disconnected before it ended.
    Disconnected,
    /// Not stopped yet.
    Running,
    /// A reason the world declares: a `stops` rule's or a `Stop(...)` effect's.
    World(String),
}

/// The name of [`StopReason::UserOutOfRole`], which is also the name judges are asked
/// about it under (see [`crate::judge::user_role_question`]): an episode whose simulated
/// user a model was playing and stopped playing (see [`crate::episode::out_of_role`]), a
/// fault of the run's side, counted apart from completed conversations.
pub const USER_OUT_OF_ROLE: &str = "user_out_of_role";

/// Every reason the engine gives, by name (`World` reasons are the world's own).
pub const ENGINE_REASONS: [(StopReason, &str); 21] = [
    (StopReason::EndTask, "end_task"),
    (StopReason::TargetExhausted, "target_exhausted"),
    (StopReason::Refusal, "refusal"),
    (StopReason::EmptyReply, "empty_reply"),
    (StopReason::ContentFilter, "content_filter"),
    (StopReason::MaxTokens, "max_tokens"),
    (StopReason::MaxTurns, "max_turns"),
    (StopReason::LimitTextBytes, "limit_text_bytes"),
    (StopReason::LimitToolCalls, "limit_tool_calls"),
    (StopReason::LimitActorExchanges, "limit_actor_exchanges"),
    (StopReason::LimitEvents, "limit_events"),
    (StopReason::TextOnly, "text_only"),
    (StopReason::NudgesExhausted, "nudges_exhausted"),
    (StopReason::ConversationOver, "conversation_over"),
    (StopReason::UserGaveUp, "user_gave_up"),
    (StopReason::Error, "error"),
    (StopReason::UserOutOfRole, USER_OUT_OF_ROLE),
    (StopReason::LintIdle, "lint_idle"),
    (StopReason::LintSessionEnd, "lint_session_end"),
    (StopReason::Disconnected, "disconnected"),
    (StopReason::Running, "running"),
];

impl StopReason {
    /// The reason named `name`: one of the engine's, else the world's own.
    pub fn from_name(name: &str) -> StopReason {
        ENGINE_REASONS
            .iter()
            .find(|(_, n)| *n == name)
            .map_or_else(|| StopReason::World(name.to_string()), |(r, _)| r.clone())
    }

    /// The reason as transcripts, records and conditions spell it.
    pub fn name(&self) -> &str {
        match self {
            StopReason::World(name) => name,
            engine => ENGINE_REASONS.iter().find(|(r, _)| r == engine).map_or("", |(_, n)| n),
        }
    }

    /// Whether the engine gives this reason (rather than a world declaring it).
    pub fn is_engine(name: &str) -> bool {
        ENGINE_REASONS.iter().any(|(_, n)| *n == name)
    }
}

impl From<&str> for StopReason {
    fn from(name: &str) -> Self {
        StopReason::from_name(name)
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<str> for StopReason {
    fn eq(&self, other: &str) -> bool {
        self.name() == other
    }
}

impl Serialize for StopReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for StopReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(StopReason::from_name(&name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_reason_has_one_name_and_reads_back_as_itself() {
        let mut names = std::collections::BTreeSet::new();
        for (reason, name) in &ENGINE_REASONS {
            assert!(names.insert(*name), "{name} twice");
            assert_eq!(reason.name(), *name);
            assert_eq!(&StopReason::from_name(name), reason);
            assert_eq!(serde_json::to_string(reason).unwrap(), format!("\"{name}\""));
        }
        let own = StopReason::from_name("wiped");
        assert_eq!(own, StopReason::World("wiped".into()));
        assert_eq!(serde_json::from_str::<StopReason>("\"wiped\"").unwrap(), own);
    }
}
