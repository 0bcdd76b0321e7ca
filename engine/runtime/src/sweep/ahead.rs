//! Scripted episodes on every core. A scripted policy needs no waiting, so its episodes
//! are pure work: worker threads run them, in plan order, ahead of the sweep, and pack
//! each transcript. The sweep takes the results back in that same order and appends
//! each transcript and record itself, so `episodes.jsonl` keeps the order and bytes of a run on one
//! core, and the guarantees a kill relies on (a record is the last thing written; an
//! episode without one runs again) are unchanged.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::Scope;

use terrarium_core::World;

use super::{Job, Plan};
use crate::run::run_episode;
use crate::run_folder::{Dictionary, Finished, Packed, pack};
use crate::target::Scripted;

/// Why a scripted episode ran ahead has no result to record.
pub(super) enum Failed {
    /// The episode cannot start (a defect of the world at this seed).
    CannotStart(String),
    /// Its transcript could not be packed.
    Io(std::io::Error),
}

type Outcome = Result<(Box<Finished>, Packed), Failed>;

/// One scripted episode to run ahead: the job and the policy that acts.
pub(super) struct Order {
    pub job: Job,
    pub policy: String,
}

/// The episodes to run ahead and what running them reads.
pub(super) struct Batch<'env> {
    pub worlds: &'env [World],
    pub plan: Arc<Plan>,
    /// In plan order.
    pub orders: Vec<Order>,
    /// The front end's commit, for each header.
    pub build: Option<&'env str>,
    /// The transcript every branch starts from, in a sweep that branches one.
    pub parent: Option<&'env str>,
}

/// What every worker reads: the batch, and the next order to take.
struct Shared<'env> {
    batch: Batch<'env>,
    next: AtomicUsize,
    /// What every transcript is packed against: the first order's transcript (none
    /// when it could not start), so the folder's bytes do not depend on which worker
    /// ran what.
    dict: OnceLock<Option<Dictionary>>,
}

/// Sets the dictionary to none if the first order's worker leaves without setting it
/// (it panicked), so that no other worker waits for it for ever.
struct SetOnLeave<'a>(&'a OnceLock<Option<Dictionary>>);

impl Drop for SetOnLeave<'_> {
    fn drop(&mut self) {
        let _ = self.0.set(None);
    }
}

/// The results of the episodes run ahead, handed back in order.
pub(super) struct Ahead {
    results: Mutex<Results>,
}

struct Results {
    from_workers: Option<Receiver<(usize, Outcome)>>,
    /// Results that arrived before an earlier one was asked for.
    parked: BTreeMap<usize, Outcome>,
}

/// How many results may wait for the sweep to record them: enough to keep every worker
/// busy while the sweep writes a record, and few enough to keep memory flat.
const QUEUE_PER_WORKER: usize = 16;

/// Start running the batch's orders, in their order, on `workers` threads of `scope`.
/// Nothing starts when there are no orders.
pub(super) fn start<'scope, 'env>(scope: &'scope Scope<'scope, 'env>, batch: Batch<'env>, workers: usize) -> Ahead {
    let workers = workers.min(batch.orders.len());
    let (send, receive) = sync_channel(QUEUE_PER_WORKER * workers.max(1));
    if workers > 0 {
        let shared = Arc::new(Shared { batch, next: AtomicUsize::new(0), dict: OnceLock::new() });
        for _ in 0..workers {
            let (shared, send) = (Arc::clone(&shared), send.clone());
            scope.spawn(move || work(&shared, &send));
        }
    }
    Ahead { results: Mutex::new(Results { from_workers: Some(receive), parked: BTreeMap::new() }) }
}

/// Take the next order, run it, pack its transcript, hand the result back; until the
/// orders run out or the sweep stops listening (it returned, or failed).
fn work(shared: &Shared<'_>, send: &SyncSender<(usize, Outcome)>) {
    let b = &shared.batch;
    loop {
        let i = shared.next.fetch_add(1, Ordering::Relaxed);
        let Some(order) = b.orders.get(i) else { return };
        let (world, key) = (&b.worlds[order.job.world], b.plan.key(b.worlds, order.job));
        let mut target = Scripted::new(&order.policy, &world.file.policies[&order.policy]);
        let first = (i == 0).then(|| SetOnLeave(&shared.dict));
        let ran = run_episode(key, &mut target, b.build, b.parent);
        if first.is_some() {
            let _ = shared.dict.set(ran.as_ref().ok().map(|f| f.transcript.as_bytes().into()));
        }
        drop(first);
        let outcome = match ran {
            Ok(finished) => match pack(&finished.transcript, shared.dict.wait().as_ref()) {
                Ok(packed) => Ok((Box::new(finished), packed)),
                Err(e) => Err(Failed::Io(e)),
            },
            Err(e) => Err(Failed::CannotStart(e)),
        };
        if send.send((i, outcome)).is_err() {
            return;
        }
    }
}

impl Ahead {
    /// The result of the `i`-th order, waiting for it if a worker is still running it.
    /// Each is taken once.
    pub(super) fn take(&self, i: usize) -> Outcome {
        let mut results = self.results.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(outcome) = results.parked.remove(&i) {
                return outcome;
            }
            let received = results.from_workers.as_ref().and_then(|r| r.recv().ok());
            match received {
                Some((j, outcome)) => {
                    results.parked.insert(j, outcome);
                }
                // Only if a worker died (its panic is raised when the scope ends).
                None => {
                    results.from_workers = None;
                    return Err(Failed::CannotStart(format!("the worker running scripted episode {i} stopped")));
                }
            }
        }
    }
}
