//! A cap on the requests a run may send, shared by every target in the run.
//!
//! Each attempt counts, retries included: each one may be billed. Replies served
//! from the cache do not count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// At most `limit` requests; clones share the count.
#[derive(Clone, Debug)]
pub struct CallBudget {
    limit: u64,
    used: Arc<AtomicU64>,
}

impl CallBudget {
    pub fn new(limit: u64) -> Self {
        CallBudget { limit, used: Arc::new(AtomicU64::new(0)) }
    }

    /// Claim one request; `false` once the budget is spent (nothing is claimed then).
    pub fn take(&self) -> bool {
        self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| (u < self.limit).then_some(u + 1)).is_ok()
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::SeqCst)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn spent(&self) -> bool {
        self.used() >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_count_and_stop_at_the_limit() {
        let a = CallBudget::new(3);
        let b = a.clone();
        assert!(a.take() && b.take() && a.take());
        assert!(a.spent() && b.spent());
        assert!(!b.take());
        assert_eq!(a.used(), 3, "a refused claim takes nothing");
    }

    #[test]
    fn a_zero_budget_allows_nothing() {
        let a = CallBudget::new(0);
        assert!(a.spent());
        assert!(!a.take());
    }
}
