//! The response cache: content-addressed files on disk, shared by all runs, so the same
//! sweep run again costs no API calls and reproduces identical transcripts.
//!
//! The key is a canonical hash of the whole request — provider, base URL, model,
//! settings, messages, tools — and of who asks: the episode's identity and turn (its
//! id covers the world, dynamics hash, cell, seed, target and settings), or the judged
//! episode and outcome. A hundred samples of one prompt are a hundred independent
//! draws, not one reply served a hundred times; two cells whose first requests are
//! identical get independent replies, as the report's intervals assume; and a rerun of
//! a sweep is served entirely from the cache, however its requests interleaved. The API
//! key is never part of it. Entries are written to a temporary file and renamed into place,
//! so several processes writing at once cannot leave a torn entry.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use terrarium_core::hash::Canon;

#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
    /// The first failure to write an entry (shared by every clone), so a run can say
    /// once that replies are not being cached, and where.
    failure: std::sync::Arc<std::sync::OnceLock<String>>,
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
        Cache { dir, failure: std::sync::Arc::default() }
    }

    /// Why an entry could not be written, the first time one could not (a full disk, a
    /// read-only folder): replies are then not cached, and a rerun sends them again.
    pub fn write_failure(&self) -> Option<&str> {
        self.failure.get().map(String::as_str)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of one request: `asker` says whose (an episode's id and turn, a judge's
    /// episode and outcome).
    pub fn key(provider: &str, base_url: &str, request_body: &str, asker: &str) -> String {
        let mut c = Canon::new("terrarium.cache.v2");
        c.str(provider).str(base_url).str(request_body).str(asker);
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

    /// Store a reply. A failure to cache never fails the episode; the first is kept for
    /// [`Cache::write_failure`].
    pub fn put(&self, key: &str, request_id: Option<&str>, body: &str) {
        let entry = serde_json::json!({"request_id": request_id, "body": body}).to_string();
        let path = self.path(key);
        let Some(folder) = path.parent() else { return };
        let failed = |e: std::io::Error, what: &Path| {
            self.failure.get_or_init(|| format!("cannot write the response cache at {}: {e}", what.display()));
        };
        if let Err(e) = std::fs::create_dir_all(folder) {
            return failed(e, folder);
        }
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let tmp = folder.join(format!(".{key}.{}.{n}.tmp", std::process::id()));
        if let Err(e) = std::fs::write(&tmp, entry).and_then(|()| std::fs::rename(&tmp, &path)) {
            // The entry is simply not cached (the reply itself is kept); a leftover
            // temporary file is removed if it can be, and is never read as an entry.
            std::fs::remove_file(&tmp).ok();
            failed(e, &self.dir);
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
    fn keys_separate_askers_servers_and_requests() {
        let k = |p: &str, u: &str, b: &str, s: &str| Cache::key(p, u, b, s);
        let (body, ep) = ("{\"model\":\"m\"}", "w-s0-abc/turn 1");
        let base = k("openai", "http://a/v1", body, ep);
        assert_eq!(base, k("openai", "http://a/v1", body, ep));
        assert_ne!(base, k("openai", "http://a/v1", body, "w-s1-def/turn 1"), "each episode is its own draw");
        assert_ne!(base, k("openai", "http://a/v1", body, "w-s0-abc/turn 2"));
        assert_ne!(base, k("openai", "http://b/v1", body, ep));
        assert_ne!(base, k("openai", "http://a/v1", "{\"model\":\"n\"}", ep));
    }

    #[test]
    fn concurrent_writers_never_leave_a_torn_entry() {
        let dir = std::env::temp_dir().join(format!("terrarium-cache-race-{}", std::process::id()));
        let cache = Cache::new(dir.clone());
        let key = Cache::key("openai", "u", "race", "e/turn 1");
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
        std::fs::remove_dir_all(dir).expect("the test's cache folder is removed");
    }

    #[test]
    fn stores_reads_and_clears() {
        let dir = std::env::temp_dir().join(format!("terrarium-cache-test-{}", std::process::id()));
        let cache = Cache::new(dir.clone());
        let key = Cache::key("openai", "u", "b", "e/turn 3");
        assert_eq!(cache.get(&key), None);
        cache.put(&key, Some("req-1"), "{\"reply\":1}");
        assert_eq!(cache.get(&key), Some((Some("req-1".to_string()), "{\"reply\":1}".to_string())));
        assert_eq!(cache.clear().unwrap(), 1);
        assert_eq!(cache.get(&key), None);
        std::fs::remove_dir_all(dir).expect("the test's cache folder is removed");
    }
}
