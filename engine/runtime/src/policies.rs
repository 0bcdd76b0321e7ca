//! Checking reference policies: every policy, every applicable valid cell, several
//! seeds; each must fire exactly its declared set of outcomes.

use std::collections::BTreeSet;

use terrarium_core::lint::Unseen;
use terrarium_core::stop::StopReason;
use terrarium_core::{Cell, World, run_policy};

/// One policy run in one cell with one seed.
#[derive(Clone, Debug)]
pub struct PolicyRun {
    pub policy: String,
    pub cell: Cell,
    pub seed: u64,
    pub expected: BTreeSet<String>,
    pub fired: BTreeSet<String>,
    pub stop_reason: StopReason,
    /// Set when the episode could not run at all.
    pub error: Option<String>,
}

impl PolicyRun {
    pub fn ok(&self) -> bool {
        self.error.is_none() && self.expected == self.fired
    }
}

/// Run every reference policy of `world` over `seeds` seeds in one cell of each class
/// of cells it applies to that differ only in presentational factors
/// ([`terrarium_core::world::presentational_classes`]): such a factor reaches no
/// dynamics, no policy step and no rule, so the other cells of a class fire what their
/// head fires, by construction (validation renders each of them, lint starts each).
pub fn check_policies(world: &World, seeds: u64) -> Vec<PolicyRun> {
    let mut runs = Vec::new();
    for (name, policy) in &world.file.policies {
        let expected: BTreeSet<String> = policy.expect.iter().cloned().collect();
        let cells = world.cells.iter().filter(|c| policy.only_if.as_ref().is_none_or(|p| c.matches(p)));
        for cell in terrarium_core::world::presentational_classes(world, cells).into_iter().map(|class| class[0]) {
            for seed in 0..seeds {
                let mut run = PolicyRun {
                    policy: name.clone(),
                    cell: cell.clone(),
                    seed,
                    expected: expected.clone(),
                    fired: BTreeSet::new(),
                    stop_reason: StopReason::Running,
                    error: None,
                };
                match run_policy(world, cell, seed, name) {
                    Ok(ep) => {
                        let v = ep.verdicts();
                        run.fired = v.fired().into_iter().map(String::from).collect();
                        run.stop_reason = v.stop_reason;
                    }
                    Err(e) => run.error = Some(e),
                }
                runs.push(run);
            }
        }
    }
    runs
}

/// Values each reference policy uses before the target could have seen them (see
/// [`terrarium_core::lint::unseen_in_policy`]): the first such use of each policy, with
/// the cell it was found in, at seed 0 of every cell the policy applies to.
pub fn unseen_uses(world: &World) -> Vec<(String, Cell, Unseen)> {
    let mut out = Vec::new();
    for (name, policy) in &world.file.policies {
        let cells = world.cells.iter().filter(|c| policy.only_if.as_ref().is_none_or(|p| c.matches(p)));
        if let Some((cell, first)) = cells
            .filter_map(|c| {
                terrarium_core::lint::unseen_in_policy(world, c, 0, name).into_iter().next().map(|u| (c, u))
            })
            .next()
        {
            out.push((name.clone(), cell.clone(), first));
        }
    }
    out
}
