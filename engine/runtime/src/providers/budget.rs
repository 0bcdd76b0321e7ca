//! Caps on what a run may send and spend, shared by every target and judge in it:
//! [`CallBudget`] counts requests (each attempt, retries included: each one may be
//! billed) and [`CostBudget`] dollars. Replies served from the cache cost nothing.

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

/// What one model costs, in US dollars per million tokens (as the provider bills them).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of `tokens`, in dollars.
    pub fn cost(&self, tokens: super::usage::Tokens) -> f64 {
        (tokens.input as f64 * self.input_per_mtok + tokens.output as f64 * self.output_per_mtok) / 1e6
    }
}

/// A cap on what a run may spend, in dollars, shared by every target and judge.
///
/// Before a request is sent its worst case is reserved: the prompt at one token per
/// three bytes of request body (an overestimate for JSON), and the reply at its
/// `max_tokens`. When the reply comes the reservation is replaced by what its usage
/// says it cost. A request whose reservation does not fit is not sent, so the run stops
/// before the limit rather than after it (as long as replies stay within `max_tokens`).
#[derive(Clone, Debug)]
pub struct CostBudget {
    /// In millionths of a dollar.
    limit: u64,
    used: Arc<AtomicU64>,
    refused: Arc<std::sync::atomic::AtomicBool>,
}

/// A reservation made by [`CostBudget::reserve`], to be settled when the reply comes.
/// Dropped unsettled, its worst case stays counted as spent.
#[derive(Debug)]
pub struct Reservation(u64);

fn micros(dollars: f64) -> u64 {
    (dollars.max(0.0) * 1e6).ceil() as u64
}

impl CostBudget {
    pub fn new(limit_usd: f64) -> Self {
        CostBudget { limit: micros(limit_usd), used: Arc::new(AtomicU64::new(0)), refused: Arc::default() }
    }

    /// The worst case of one request of `body_bytes` bytes answered with at most
    /// `max_output_tokens` tokens.
    pub fn estimate(price: &Price, body_bytes: usize, max_output_tokens: u32) -> f64 {
        let input = (body_bytes as u64).div_ceil(3);
        price.cost(super::usage::Tokens { input, output: u64::from(max_output_tokens) })
    }

    /// Reserve `estimate_usd`; `None` (and the budget counts as spent from then on) when it does not fit.
    pub fn reserve(&self, estimate_usd: f64) -> Option<Reservation> {
        let want = micros(estimate_usd);
        let ok = self.used.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
            (u.saturating_add(want) <= self.limit).then_some(u + want)
        });
        match ok {
            Ok(_) => Some(Reservation(want)),
            Err(_) => {
                self.refused.store(true, Ordering::SeqCst);
                None
            }
        }
    }

    /// Replace a reservation by what the request actually cost.
    pub fn settle(&self, reservation: Reservation, actual_usd: f64) {
        let actual = micros(actual_usd);
        // The closure always returns `Some`, so the update always happens: the `Result`
        // only says so.
        self.used
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| {
                Some(u.saturating_sub(reservation.0).saturating_add(actual))
            })
            .ok();
    }

    /// Dollars spent so far (reservations in flight included).
    pub fn used_usd(&self) -> f64 {
        self.used.load(Ordering::SeqCst) as f64 / 1e6
    }

    pub fn limit_usd(&self) -> f64 {
        self.limit as f64 / 1e6
    }

    /// Whether a request has been refused, or nothing is left: no new episode starts then.
    pub fn spent(&self) -> bool {
        self.refused.load(Ordering::SeqCst) || self.used.load(Ordering::SeqCst) >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cost_budget_reserves_worst_cases_and_settles_actual_costs() {
        let price = Price { input_per_mtok: 2.0, output_per_mtok: 8.0 };
        // 3,000 bytes -> 1,000 input tokens ($0.002) + 1,000 output tokens ($0.008).
        let est = CostBudget::estimate(&price, 3000, 1000);
        assert!((est - 0.010).abs() < 1e-12, "{est}");
        let b = CostBudget::new(0.025);
        let first = b.reserve(est).expect("fits");
        let second = b.clone().reserve(est).expect("fits");
        assert!(b.reserve(est).is_none(), "a third worst case would pass the limit");
        assert!(b.spent(), "after a refusal no new episode starts");
        b.settle(first, price.cost(crate::providers::usage::Tokens { input: 500, output: 100 }));
        b.settle(second, 0.0);
        assert!((b.used_usd() - 0.0018).abs() < 1e-9, "{}", b.used_usd());
    }

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
