//! The response cache: content-addressed files on disk, shared by all runs, so the same
//! sweep run again costs no API calls and reproduces identical transcripts.
//!
//! The key is a canonical hash of the whole request — provider, base URL, model,
//! settings, messages, tools — and the episode seed, so a hundred samples of one prompt
//! are a hundred independent draws, not one reply served a hundred times. The API key
//! is never part of it. Entries are written to a temporary file and renamed into place,
//! so several processes writing at once cannot leave a torn entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use terrarium_core::hash::Canon;

#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

static WRITES: AtomicU64 = AtomicU64::new(0);

impl Cache {
    /// `$TERRARIUM_CACHE_DIR`, else the platform's per-user cache directory.
    pub fn default_dir() -> Option<PathBuf> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        env("TERRARIUM_CACHE_DIR")
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("terrarium")))
            .or_else(|| env("HOME").map(|h| h.join(".cache").join("terrarium")))
    }

    pub fn new(dir: PathBuf) -> Self {
        Cache { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of one request of one episode.
    pub fn key(provider: &str, base_url: &str, request_body: &str, seed: u64) -> String {
        let mut c = Canon::new("terrarium.cache.v1");
        c.str(provider).str(base_url).str(request_body).u64(seed);
        c.hex(32)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The cached reply (the provider's request id and the response body), if any.
    pub fn get(&self, key: &str) -> Option<(Option<String>, String)> {
        let entry: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(self.path(key)).ok()?).ok()?;
        let body = entry.get("body")?.as_str()?.to_string();
        Some((entry.get("request_id").and_then(|v| v.as_str()).map(String::from), body))
    }

    /// Store a reply. A failure to cache never fails the episode.
    pub fn put(&self, key: &str, request_id: Option<&str>, body: &str) {
        let entry = serde_json::json!({"request_id": request_id, "body": body}).to_string();
        let path = self.path(key);
        let Some(folder) = path.parent() else { return };
        if std::fs::create_dir_all(folder).is_err() {
            return;
        }
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = folder.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
        if std::fs::write(&tmp, entry).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }

    /// Remove every entry; returns how many there were.
    pub fn clear(&self) -> std::io::Result<usize> {
        let mut removed = 0;
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                removed += std::fs::read_dir(&path)?.count();
                std::fs::remove_dir_all(&path)?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_seeds_servers_and_requests() {
        let k = |p: &str, u: &str, b: &str, s: u64| Cache::key(p, u, b, s);
        let base = k("openai", "http://a/v1", "{\"model\":\"m\"}", 0);
        assert_eq!(base, k("openai", "http://a/v1", "{\"model\":\"m\"}", 0));
        assert_ne!(base, k("openai", "http://a/v1", "{\"model\":\"m\"}", 1), "each seed is its own draw");
        assert_ne!(base, k("openai", "http://b/v1", "{\"model\":\"m\"}", 0));
        assert_ne!(base, k("openai", "http://a/v1", "{\"model\":\"n\"}", 0));
    }

    #[test]
    fn concurrent_writers_never_leave_a_torn_entry() {
        let dir = std::env::temp_dir().join(format!("terrarium-cache-race-{}", std::process::id()));
        let cache = Cache::new(dir.clone());
        let key = Cache::key("openai", "u", "race", 0);
        let body = "x".repeat(200_000);
        std::thread::scope(|scope| {
            for i in 0..8 {
                let (cache, key, body) = (&cache, &key, &body);
                scope.spawn(move || {
                    for _ in 0..10 {
                        cache.put(key, Some(&format!("req-{i}")), body);
                        if let Some((_, read)) = cache.get(key) {
                            assert_eq!(read.len(), body.len(), "a reader saw a torn entry");
                        }
                    }
                });
            }
        });
        assert_eq!(cache.get(&key).map(|(_, b)| b.len()), Some(body.len()));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn stores_reads_and_clears() {
        let dir = std::env::temp_dir().join(format!("terrarium-cache-test-{}", std::process::id()));
        let cache = Cache::new(dir.clone());
        let key = Cache::key("openai", "u", "b", 3);
        assert_eq!(cache.get(&key), None);
        cache.put(&key, Some("req-1"), "{\"reply\":1}");
        assert_eq!(cache.get(&key), Some((Some("req-1".to_string()), "{\"reply\":1}".to_string())));
        assert_eq!(cache.clear().unwrap(), 1);
        assert_eq!(cache.get(&key), None);
        let _ = std::fs::remove_dir_all(dir);
    }
}
