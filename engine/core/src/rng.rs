//! Seeded randomness: one ChaCha8 stream per purpose, derived from the episode seed.
//!
//! A stream's seed is a hash of the episode seed and the purpose's name, so adding a
//! draw for one purpose never shifts another's. This is the only source of randomness
//! in the engine; a golden test pins the derived choices.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// A deterministic random stream for one purpose.
#[derive(Clone, Debug)]
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// The stream for `purpose` in the episode with `seed`.
    pub fn derive(seed: u64, purpose: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"terrarium.stream.v1\0");
        h.update(seed.to_le_bytes());
        h.update(purpose.as_bytes());
        Stream(ChaCha8Rng::from_seed(h.finalize().into()))
    }

    /// A uniform integer in `min..=max` (`min` when the range is empty).
    pub fn int_in(&mut self, min: i64, max: i64) -> i64 {
        if max <= min { min } else { self.0.random_range(min..=max) }
    }

    /// A uniform index below `len` (`len` must be positive).
    pub fn index(&mut self, len: usize) -> usize {
        assert!(len > 0, "index into an empty choice");
        self.0.random_range(0..len)
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        items.shuffle(&mut self.0);
    }

    /// A string of `n` decimal digits.
    pub fn digits(&mut self, n: u32) -> String {
        (0..n).map(|_| char::from(b'0' + self.0.random_range(0..10u8))).collect()
    }
}
