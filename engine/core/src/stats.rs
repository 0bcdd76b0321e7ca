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
}
