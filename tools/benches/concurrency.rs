//! Concurrency against a slow provider: the fake OpenAI-compatible server answers every
//! request after L = 500 ms, the cache is off, and `terrarium run` sweeps the greenhouse
//! with --max-connections C. Ideal throughput is C/L requests per second; issue 6 asks
//! for at least 90% of it for C up to 256, issue 27 95% for C = 512 and 1,024. Also
//! prints the run's peak memory (VmHWM), the memory each further request in flight
//! costs (peak memory over that of the first C measured), and the client's CPU time
//! (user + system, from /proc) per request.
//!
//! `cargo bench -p terrarium --bench concurrency [-- C...]` (default C = 1 16 64 256
//! 512 1024).
//! Each C runs 8·C episodes of 4 requests each (eight full waves, ideally 16 s), timed
//! from the process's start to its exit, start-up and the final writes included.
//! `LATENCY_MS` and `WAVES` change L and the waves: `LATENCY_MS=20 WAVES=80 cargo bench
//! -p terrarium --bench concurrency -- 256` queues 20,480 episodes, to see that memory
//! stays flat however many are queued.
//!
//! `BENCH_WRAP` runs the binary under a profiler, its words put before the binary's
//! path; the memory and CPU columns then read the wrapper, not the binary. Who holds
//! the heap per request in flight (see `docs/performance.md`):
//! `BENCH_WRAP="heaptrack -o /tmp/heap256" cargo bench -p terrarium --no-default-features
//! --bench concurrency -- 256`, the same at C = 1, then `tools/benches/heap_owners.py`.

// Wall time is what a benchmark measures; nothing here reaches a transcript.
#![allow(clippy::disallowed_methods)]

#[path = "../tests/cli/support/fake_server.rs"]
mod fake_server;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fake_server::{FakeServer, Reply, greenhouse_model};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let mut cs: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if cs.is_empty() {
        cs = vec![1, 16, 64, 256, 512, 1024];
    }
    let latency = Duration::from_millis(env_or("LATENCY_MS", 500));
    let waves = env_or("WAVES", 8);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    println!(
        "{:>5} {:>9} {:>9} {:>10} {:>10} {:>7} {:>11} {:>14} {:>12}",
        "C", "episodes", "requests", "req/s", "ideal C/L", "ratio", "peak RSS", "KB/in flight", "CPU/request"
    );
    let mut first: Option<(u64, u64)> = None;
    for c in cs {
        let server = FakeServer::start(move |body| Reply::ok(greenhouse_model(body)).after(latency));
        let out = std::env::temp_dir().join(format!("terrarium-bench-concurrency-{c}"));
        let _ = std::fs::remove_dir_all(&out);
        let episodes = waves * c;
        let start = Instant::now(); // determinism-ok: benchmark timing
        let wrap: Vec<String> =
            std::env::var("BENCH_WRAP").unwrap_or_default().split_whitespace().map(String::from).collect();
        let mut command = match wrap.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_terrarium"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_terrarium")),
        };
        let mut child = command
            .current_dir(&root)
            .args(["run", "fixtures/worlds/greenhouse", "--model", "openai/fake-model", "--condition", "pressure=none"])
            .args(["--base-url", &server.base_url(), "--no-cache", "--samples", &episodes.to_string()])
            .args(["--max-connections", &c.to_string(), "--out", out.to_str().expect("utf-8 path")])
            .env_remove("OPENAI_API_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the terrarium binary, or the program BENCH_WRAP names, runs");
        let status_file = format!("/proc/{}/status", child.id());
        let stat_file = format!("/proc/{}/stat", child.id());
        let (mut peak_kb, mut cpu_ticks) = (None, 0);
        let status = loop {
            if let Some(kb) = std::fs::read_to_string(&status_file).ok().and_then(|s| vm_hwm_kb(&s)) {
                peak_kb = Some(kb);
            }
            // The last reading before the process exits: its CPU time to within a poll.
            if let Some(ticks) = std::fs::read_to_string(&stat_file).ok().and_then(|s| cpu_ticks_of(&s)) {
                cpu_ticks = ticks;
            }
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = start.elapsed().as_secs_f64();
        assert!(status.success(), "the run failed: {status}");
        let requests = server.requests();
        let rate = requests as f64 / elapsed;
        let ideal = c as f64 / latency.as_secs_f64();
        let rss = peak_kb.map_or_else(|| "n/a".to_string(), |kb| format!("{:.1} MB", kb as f64 / 1024.0));
        let per_flight = match (first, peak_kb) {
            (Some((c0, kb0)), Some(kb)) if c > c0 => format!("{:.1}", (kb as f64 - kb0 as f64) / (c - c0) as f64),
            _ => "-".to_string(),
        };
        if first.is_none() {
            first = peak_kb.map(|kb| (c, kb));
        }
        // Linux counts CPU time in USER_HZ ticks, 100 a second.
        let cpu = format!("{:.0} us", cpu_ticks as f64 * 10_000.0 / requests.max(1) as f64);
        println!(
            "{c:>5} {episodes:>9} {requests:>9} {rate:>10.1} {ideal:>10.1} {:>6.1}% {rss:>11} {per_flight:>14} {cpu:>12}",
            100.0 * rate / ideal
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

fn vm_hwm_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// utime + stime from a `/proc/PID/stat` line, in clock ticks. The command name (field
/// 2) is in parentheses and may hold spaces, so fields are counted after its `)`.
fn cpu_ticks_of(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}
