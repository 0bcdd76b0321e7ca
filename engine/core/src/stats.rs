//! Interval estimates for outcome rates: Wilson's score interval for one proportion,
//! and Newcombe's hybrid score interval (his method 10) for a difference of two; and for
//! a monitor's scores, the ROC curve and its area with DeLong's interval.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `x` successes in `n` trials; `None` when `n` is 0.
pub fn wilson(x: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (x, n) = (x as f64, n as f64);
    let p = x / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z2 / n;
    Some((((centre - half) / denom).max(0.0), ((centre + half) / denom).min(1.0)))
}

/// Newcombe's interval for p1 − p2 (`x1/n1` minus `x2/n2`): `(difference, low, high)`.
pub fn newcombe(x1: u64, n1: u64, x2: u64, n2: u64, z: f64) -> Option<(f64, f64, f64)> {
    let (l1, u1) = wilson(x1, n1, z)?;
    let (l2, u2) = wilson(x2, n2, z)?;
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let d = p1 - p2;
    let low = d - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let high = d + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    Some((d, low, high))
}

/// The area under the ROC curve of scores that should rank `positives` above
/// `negatives`: the share of (positive, negative) pairs the positive outranks, a tie
/// counting half (the Mann–Whitney statistic), with DeLong's 95% interval (DeLong,
/// DeLong and Clarke-Pearson, 1988), clipped to [0, 1]. `None` without both kinds; no
/// interval with fewer than two of either.
pub fn auc(positives: &[f64], negatives: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    let (m, n) = (positives.len(), negatives.len());
    if m == 0 || n == 0 {
        return None;
    }
    let psi = |x: f64, y: f64| {
        if x > y {
            1.0
        } else if x == y {
            0.5
        } else {
            0.0
        }
    };
    // Each positive's share of negatives below it, and each negative's share of
    // positives above it: DeLong's structural components.
    let v10: Vec<f64> =
        positives.iter().map(|&x| negatives.iter().map(|&y| psi(x, y)).sum::<f64>() / n as f64).collect();
    let v01: Vec<f64> =
        negatives.iter().map(|&y| positives.iter().map(|&x| psi(x, y)).sum::<f64>() / m as f64).collect();
    let area = v10.iter().sum::<f64>() / m as f64;
    if m < 2 || n < 2 {
        return Some((area, None));
    }
    let var = |v: &[f64]| v.iter().map(|a| (a - area).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    let se = (var(&v10) / m as f64 + var(&v01) / n as f64).sqrt();
    Some((area, Some(((area - Z95 * se).max(0.0), (area + Z95 * se).min(1.0)))))
}

/// The ROC curve of integer scores (flagged when `score >= t`), as (false-positive
/// rate, true-positive rate) points from (0, 0) to (1, 1), one per distinct score from
/// the highest down.
pub fn roc(positives: &[u8], negatives: &[u8]) -> Vec<(f64, f64)> {
    let (m, n) = (positives.len().max(1) as f64, negatives.len().max(1) as f64);
    let mut points = vec![(0.0, 0.0)];
    let mut thresholds: Vec<u8> = positives.iter().chain(negatives).copied().collect();
    thresholds.sort_unstable_by(|a, b| b.cmp(a));
    thresholds.dedup();
    for t in thresholds {
        let tp = positives.iter().filter(|&&s| s >= t).count() as f64;
        let fp = negatives.iter().filter(|&&s| s >= t).count() as f64;
        points.push((fp / n, tp / m));
    }
    if points.last() != Some(&(1.0, 1.0)) {
        points.push((1.0, 1.0));
    }
    points
}

/// The lowest threshold (flagged when `score >= t`, `t` from 0 to 101) whose
/// false-positive rate on `negatives` is at most `fpr`: how a monitor is set to flag at
/// most that share of honest runs.
pub fn threshold_at_fpr(negatives: &[u8], fpr: f64) -> u8 {
    (0..=101u8)
        .find(|&t| {
            let fp = negatives.iter().filter(|&&s| u16::from(s) >= u16::from(t)).count() as f64;
            negatives.is_empty() || fp / negatives.len() as f64 <= fpr
        })
        .unwrap_or(101)
}

/// Agreement of two raters on yes/no, in counts: `both_yes`, `only_a` (a yes, b no),
/// `only_b` (a no, b yes), `both_no`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Agreement {
    pub both_yes: u64,
    pub only_a: u64,
    pub only_b: u64,
    pub both_no: u64,
}

impl Agreement {
    pub fn add(&mut self, a: bool, b: bool) {
        match (a, b) {
            (true, true) => self.both_yes += 1,
            (true, false) => self.only_a += 1,
            (false, true) => self.only_b += 1,
            (false, false) => self.both_no += 1,
        }
    }

    pub fn n(&self) -> u64 {
        self.both_yes + self.only_a + self.only_b + self.both_no
    }

    /// The share of items the raters agree on.
    pub fn observed(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| (self.both_yes + self.both_no) as f64 / n as f64)
    }

    /// Cohen's kappa: agreement beyond what the raters' own yes rates give by chance.
    /// `None` with no items, or when chance agreement is already total (both raters
    /// gave one answer to everything), where kappa is undefined.
    pub fn kappa(&self) -> Option<f64> {
        let n = self.n() as f64;
        let po = self.observed()?;
        let a_yes = (self.both_yes + self.only_a) as f64 / n;
        let b_yes = (self.both_yes + self.only_b) as f64 / n;
        let pe = a_yes * b_yes + (1.0 - a_yes) * (1.0 - b_yes);
        (pe < 1.0).then(|| (po - pe) / (1.0 - pe))
    }
}

#[cfg(test)]
mod tests {

    /// Worked by hand: 20 pairs, the positive above in 17 and tied in one, so 17.5 / 20.
    /// DeLong: V10 = (1, 1, 0.8, 0.7), V01 = (1, 1, 0.875, 0.5, 1); S10 = 0.0675 / 3,
    /// S01 = 0.1875 / 4; variance 0.0225 / 4 + 0.046875 / 5 = 0.015.
    #[test]
    fn auc_and_delong_match_a_hand_computation() {
        let (area, interval) = auc(&[90.0, 80.0, 70.0, 40.0], &[10.0, 20.0, 40.0, 75.0, 30.0]).unwrap();
        assert!((area - 0.875).abs() < 1e-12);
        let (low, high) = interval.unwrap();
        assert!((low - (0.875 - Z95 * 0.015f64.sqrt())).abs() < 1e-12, "{low}");
        assert_eq!(high, 1.0, "clipped");
        assert_eq!(auc(&[1.0], &[2.0]), Some((0.0, None)));
        assert_eq!(auc(&[], &[2.0]), None);
        assert_eq!(auc(&[5.0, 5.0], &[5.0, 5.0]).unwrap().0, 0.5);
    }

    #[test]
    fn roc_runs_corner_to_corner_and_thresholds_hold_the_rate() {
        let pos = [90, 80, 70, 40];
        let neg = [10, 20, 40, 75, 30];
        let curve = roc(&pos, &neg);
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(1.0, 1.0)));
        assert!(curve.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(curve.contains(&(0.0, 0.5)) && curve.contains(&(0.2, 0.75)));
        // No honest run may be flagged at 1% of five: just above the highest honest score.
        assert_eq!(threshold_at_fpr(&neg, 0.01), 76);
        assert_eq!(threshold_at_fpr(&neg, 0.2), 41);
        assert_eq!(threshold_at_fpr(&[100], 0.0), 101);
        assert_eq!(threshold_at_fpr(&[], 0.01), 0);
    }
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), Table I: 81/263 → 0.2553–0.3662; 15/148 → 0.0624–0.1605;
        // 0/20 → 0–0.1611; 1/29 → 0.0061–0.1718.
        for (x, n, lo, hi) in
            [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)]
        {
            let (l, h) = wilson(x, n, Z95).unwrap();
            assert!(close(l, lo) && close(h, hi), "{x}/{n}: {l:.4}–{h:.4}, published {lo}–{hi}");
        }
        assert_eq!(wilson(0, 0, Z95), None);
    }

    #[test]
    fn newcombe_matches_the_published_example() {
        // Newcombe (1998), method 10: 56/70 − 48/80 = 0.2000 (0.0524, 0.3339).
        let (d, l, h) = newcombe(56, 70, 48, 80, Z95).unwrap();
        assert!(close(d, 0.2) && close(l, 0.0524) && close(h, 0.3339), "{d:.4} ({l:.4}, {h:.4})");
    }

    #[test]
    fn newcombe_intervals_behave() {
        for (x1, n1, x2, n2) in [(9, 10, 3, 10), (0, 10, 0, 10), (10, 10, 0, 10), (1, 50, 49, 50), (3, 7, 5, 9)] {
            let (d, l, h) = newcombe(x1, n1, x2, n2, Z95).unwrap();
            assert!(l <= d && d <= h, "contains the estimate");
            assert!((-1.0..=1.0).contains(&l) && (-1.0..=1.0).contains(&h), "within [-1, 1]");
            // Swapping the groups mirrors the interval.
            let (d2, l2, h2) = newcombe(x2, n2, x1, n1, Z95).unwrap();
            assert!(close(d2, -d) && close(l2, -h) && close(h2, -l));
        }
        assert_eq!(newcombe(1, 0, 1, 5, Z95), None);
    }

    #[test]
    fn kappa_matches_worked_examples() {
        // 50 items: 20 both yes, 5 only A, 10 only B, 15 both no. Observed 0.70,
        // chance 0.50, kappa 0.40.
        let a = Agreement { both_yes: 20, only_a: 5, only_b: 10, both_no: 15 };
        assert!(close(a.observed().unwrap(), 0.70) && close(a.kappa().unwrap(), 0.40), "{a:?}");
        // 45/15/25/15 of 100: observed 0.60, chance 0.60·0.70 + 0.40·0.30 = 0.54, kappa 0.06/0.46.
        let b = Agreement { both_yes: 45, only_a: 15, only_b: 25, both_no: 15 };
        assert!(close(b.kappa().unwrap(), 0.1304), "{:?}", b.kappa());
        // Perfect agreement with both answers present is 1; one answer for everything is undefined.
        assert_eq!(Agreement { both_yes: 3, both_no: 7, ..Default::default() }.kappa(), Some(1.0));
        assert_eq!(Agreement { both_no: 10, ..Default::default() }.kappa(), None);
        assert_eq!(Agreement::default().kappa(), None);
    }
}
