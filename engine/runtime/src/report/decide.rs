//! How a report decides each recorded verdict: by the outcome's rule, or, for an outcome
//! decided by judges, by the judges' combined answers on the episodes its gate let
//! through (left undecided where they cannot settle it), or by the gate alone in a
//! folder where no judge answered (an upper bound, and labelled so).

use std::collections::{BTreeMap, BTreeSet};

use terrarium_core::format::Combine;
use terrarium_core::transcript::{DecidedBy, Verdict};

use crate::run_folder::{EpisodeRecord, Judgement};

/// The judges' answers of a folder, ready to decide verdicts with.
pub(super) struct Decider<'a> {
    /// (world, outcome) → the judges that decide it in this folder.
    judges: BTreeMap<(&'a str, &'a str), BTreeSet<&'a str>>,
    /// (episode, outcome) → the judges' readable answers.
    answers: BTreeMap<(&'a str, &'a str), Vec<bool>>,
    /// (world, outcome) → how its judges' answers combine.
    combine: &'a BTreeMap<(String, String), Combine>,
}

impl<'a> Decider<'a> {
    pub(super) fn new(judgements: &'a [Judgement], combine: &'a BTreeMap<(String, String), Combine>) -> Self {
        let mut judges: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
        let mut answers: BTreeMap<(&str, &str), Vec<bool>> = BTreeMap::new();
        for j in judgements.iter().filter(|j| j.role == "judges") {
            judges.entry((j.world.as_str(), j.outcome.as_str())).or_default().insert(j.judge.as_str());
            if let Some(v) = j.verdict {
                answers.entry((j.episode_id.as_str(), j.outcome.as_str())).or_default().push(v);
            }
        }
        Decider { judges, answers, combine }
    }

    /// Episode `r`'s verdict on outcome `name`, as decided (`None`: the judges left it
    /// undecided), and how it was decided.
    pub(super) fn decide(&self, r: &EpisodeRecord, name: &str, v: &Verdict) -> (Option<bool>, String) {
        let passed_gate = v.fired;
        if v.decided_by != DecidedBy::Gate {
            return (Some(passed_gate), "rule".into());
        }
        let Some(judges) = self.judges.get(&(r.world.as_str(), name)) else {
            return (Some(passed_gate), "gate (no judges)".into());
        };
        let rule = self.combine.get(&(r.world.clone(), name.to_string())).copied().unwrap_or_default();
        let by = match rule {
            Combine::Majority => format!("judges (majority of {})", judges.len()),
            Combine::Unanimous => format!("judges (unanimous, {})", judges.len()),
        };
        let said = self.answers.get(&(r.episode_id.as_str(), name)).map_or(&[][..], Vec::as_slice);
        (if passed_gate { rule.combine(said, judges.len()) } else { Some(false) }, by)
    }
}
