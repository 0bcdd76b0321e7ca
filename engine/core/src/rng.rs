//! Seeded randomness: one ChaCha8 stream per purpose, derived from the episode seed.
//!
//! A stream's seed is a hash of the episode seed and the purpose's name, so adding a
//! draw for one purpose never shifts another's. This is the only source of randomness
//! in the engine; a golden test pins the derived choices.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

/// The key all of an episode's streams share: a hash of the episode seed.
#[derive(Clone, Copy, Debug)]
pub struct StreamKey([u8; 32]);

impl StreamKey {
    pub fn new(seed: u64) -> Self {
        let mut h = Sha256::new();
        h.update(b"terrarium.stream.v1\0");
        h.update(seed.to_le_bytes());
        StreamKey(h.finalize().into())
    }

    /// The stream for `purpose`: ChaCha8 under the episode key, on the 64-bit stream
    /// selected by a stable hash (FNV-1a) of the purpose's name. Streams of different
    /// purposes never overlap, and adding one never shifts another.
    pub fn stream(&self, purpose: &str) -> Stream {
        self.numbered(self::purpose(purpose))
    }

    /// The stream whose number [`purpose`] gave: for purposes named once at load.
    pub(crate) fn numbered(&self, purpose: u64) -> Stream {
        let mut rng = ChaCha8Rng::from_seed(self.0);
        rng.set_stream(purpose);
        Stream(rng)
    }
}

/// The stream number of a purpose: a stable hash (FNV-1a) of its name.
pub(crate) fn purpose(name: &str) -> u64 {
    fnv1a(name.as_bytes())
}

/// 64-bit FNV-1a: a fixed, documented function, so stream ids never change.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A deterministic random stream for one purpose.
#[derive(Clone, Debug)]
pub struct Stream(ChaCha8Rng);

impl Stream {
    /// The stream for `purpose` in the episode with `seed` (see [`StreamKey::stream`]).
    pub fn derive(seed: u64, purpose: &str) -> Self {
        StreamKey::new(seed).stream(purpose)
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

    /// `n` lowercase hexadecimal digits: a checksum, a key id.
    pub fn hex(&mut self, n: u32) -> String {
        (0..n).map(|_| char::from(b"0123456789abcdef"[self.0.random_range(0..16usize)])).collect()
    }
}
