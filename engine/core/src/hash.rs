//! Canonical hashing: a length-prefixed byte encoding fed to SHA-256.
//!
//! Every hash the engine writes (world hashes, state hashes, the event chain, episode
//! ids) goes through [`Canon`], so the bytes hashed never depend on a serialiser's
//! map order, float formatting or platform.

use sha2::{Digest, Sha256};

/// A canonical encoder. Each value is tagged and length-prefixed, so distinct
/// sequences of values never encode to the same bytes. The encoding is collected in a
/// buffer and hashed once: SHA-256 is fastest fed in one piece.
#[derive(Clone, Default)]
pub struct Canon(Vec<u8>);

impl Canon {
    pub fn new(domain: &str) -> Self {
        let mut c = Canon(Vec::with_capacity(1024));
        c.str(domain);
        c
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.bytes(b's', s.as_bytes())
    }
    pub fn bytes(&mut self, tag: u8, b: &[u8]) -> &mut Self {
        self.0.push(tag);
        self.0.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
        self
    }
    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.0.push(b'u');
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.0.push(b'i');
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.0.extend_from_slice(&[b'b', u8::from(b)]);
        self
    }
    /// Hash a JSON value canonically (object keys sorted, numbers by their text).
    pub fn json(&mut self, v: &serde_json::Value) -> &mut Self {
        use serde_json::Value as J;
        match v {
            J::Null => {
                self.0.push(b'n');
            }
            J::Bool(b) => {
                self.bool(*b);
            }
            J::Number(n) => {
                self.bytes(b'#', n.to_string().as_bytes());
            }
            J::String(s) => {
                self.str(s);
            }
            J::Array(items) => {
                self.0.push(b'[');
                self.u64(items.len() as u64);
                for item in items {
                    self.json(item);
                }
            }
            J::Object(map) => {
                self.0.push(b'{');
                self.u64(map.len() as u64);
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for k in keys {
                    self.str(k);
                    self.json(&map[k]);
                }
            }
        }
        self
    }
    pub fn digest(self) -> [u8; 32] {
        Sha256::digest(&self.0).into()
    }
    /// The first `n` bytes of the digest as lowercase hex.
    pub fn hex(self, n: usize) -> String {
        hex(&self.digest()[..n])
    }
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}
