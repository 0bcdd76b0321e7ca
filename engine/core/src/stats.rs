//! Interval estimates for outcome rates: Wilson's score interval for one proportion,
//! and Newcombe's hybrid score interval (his method 10) for a difference of two.

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
