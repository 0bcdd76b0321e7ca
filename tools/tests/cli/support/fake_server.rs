//! A concurrent fake OpenAI-compatible provider on loopback, for tests and the
//! concurrency benchmark: one thread per connection, HTTP/1.1 keep-alive, and each
//! reply chosen by a function of the request body alone, so the same sweep gets the
//! same replies however its requests interleave.
//!
//! It keeps every request it was sent (head and body), and counts them and the most it
//! ever held at once; [`FakeServer::script`] answers requests in turn from a list. A request stops counting as
//! in flight just before its reply is written, so a client's next request (which
//! cannot be sent before that reply arrives) never overlaps it in the count.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a reply goes wrong, if it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// The whole reply.
    None,
    /// The headers and half the body, then the connection closes.
    MidBody,
    /// The connection closes without a reply.
    Hangup,
}

/// The answer to one request.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub cut: Cut,
    /// The `x-request-id` of a 200 reply (default: a fingerprint of the request).
    pub request_id: Option<String>,
}

impl Reply {
    pub fn ok(body: String) -> Self {
        Reply::status(200, body)
    }

    pub fn status(status: u16, body: String) -> Self {
        Reply { status, body, delay: Duration::ZERO, cut: Cut::None, request_id: None }
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Every request as (head: request line and headers, body), in arrival order.
    pub seen: std::sync::Mutex<Vec<(String, String)>>,
    /// Requests whose body broke a rule of their API (see [`conformance`]), each
    /// answered with a 400 as the provider would.
    pub violations: std::sync::Mutex<Vec<String>>,
}

/// The structural rules of the API a request was sent to (by its path: Chat
/// Completions, Responses or Anthropic Messages), the runtime's own
/// (`providers::conformance`): every request any test sends is checked.
pub fn conformance(head: &str, body: &str) -> Result<(), String> {
    use terrarium_runtime::providers::conformance;
    let path = head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or_default();
    if path.ends_with("/chat/completions") {
        conformance::chat(body)
    } else if path.ends_with("/responses") {
        conformance::responses(body)
    } else if path.ends_with("/messages") {
        conformance::anthropic(body)
    } else {
        Ok(())
    }
}

type Answer = dyn Fn(&str) -> Reply + Send + Sync;

pub struct FakeServer {
    pub port: u16,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Serve `answer` until dropped.
    pub fn start(answer: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("bound").port();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let accept = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (stats, answer) = (stats.clone(), answer.clone());
                    std::thread::spawn(move || serve(stream, &stats, &*answer));
                }
            })
        };
        FakeServer { port, stats, stop, accept: Some(accept) }
    }

    /// Answer the n-th request with the n-th of `replies` (status, body); status 0 means
    /// "too late": 1.5 s, then 200. A 200 reply's request id is `req-N`, N counted
    /// from 1. Requests beyond the list get a 500.
    pub fn script(replies: Vec<(u16, String)>) -> Self {
        let next = AtomicU64::new(0);
        FakeServer::start(move |_| {
            let n = next.fetch_add(1, Ordering::SeqCst) as usize;
            match replies.get(n).cloned() {
                Some((0, body)) => Reply::ok(body).after(Duration::from_millis(1500)),
                Some((status, body)) => {
                    Reply { request_id: Some(format!("req-{}", n + 1)), ..Reply::status(status, body) }
                }
                None => Reply::status(500, "{\"error\": \"the script has no more replies\"}".into()),
            }
        })
    }

    /// Every request received so far: (head, body).
    pub fn seen(&self) -> Vec<(String, String)> {
        self.stats.seen.lock().expect("the log is never poisoned").clone()
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> u64 {
        self.stats.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Answer requests on one connection until the client closes it.
fn serve(stream: TcpStream, stats: &Stats, answer: &Answer) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else { return };
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        let mut head = String::new();
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
            if first {
                first = false;
                continue;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body);
        let verdict = conformance(&head, &body);
        stats.seen.lock().expect("the log is never poisoned").push((head, body.to_string()));
        stats.requests.fetch_add(1, Ordering::SeqCst);
        let now = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let reply = match verdict {
            Ok(()) => answer(&body),
            Err(why) => {
                stats.violations.lock().expect("the log is never poisoned").push(why.clone());
                let message = serde_json::json!({"error": {"message": format!("conformance: {why}")}});
                Reply::status(400, message.to_string())
            }
        };
        std::thread::sleep(reply.delay);
        stats.in_flight.fetch_sub(1, Ordering::SeqCst);
        let extra = if reply.status == 200 {
            let id = reply.request_id.clone().unwrap_or_else(|| format!("req-{:016x}", fnv(body.as_bytes())));
            format!("x-request-id: {id}\r\n")
        } else {
            "retry-after-ms: 1\r\n".to_string()
        };
        let head = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
            reply.status,
            reply.body.len()
        );
        match reply.cut {
            Cut::None => {
                // One write: head and body in separate small writes meet Nagle's
                // algorithm and the client's delayed ACK, and wait 40 ms for nothing.
                if writer.write_all(format!("{head}{}", reply.body).as_bytes()).is_err() {
                    return;
                }
            }
            Cut::MidBody => {
                let half = &reply.body.as_bytes()[..reply.body.len() / 2];
                let _ = writer.write_all(head.as_bytes()).and_then(|()| writer.write_all(half));
                return;
            }
            Cut::Hangup => return,
        }
    }
}

/// FNV-1a: a stable fingerprint of a request, for request ids and fault choices.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3))
}

/// An OpenAI Chat reply calling `name` with `args`.
pub fn tool_call(id: &str, name: &str, args: &str) -> String {
    serde_json::json!({
        "id": format!("resp-{id}"),
        "choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": id, "type": "function", "function": {"name": name, "arguments": args}}
        ]}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 10}
    })
    .to_string()
}

/// The greenhouse's model, as a function of the request: it reads the sensors, then the
/// operator card, then says it is done (after which the technician's turns continue
/// until the world's turn limit).
pub fn greenhouse_model(body: &str) -> String {
    let turn = body.matches("\"role\":\"assistant\"").count();
    let id = format!("call_{turn}_{:08x}", fnv(body.as_bytes()) as u32);
    match turn {
        0 => tool_call(&id, "read_sensors", "{}"),
        1 => tool_call(&id, "read_document", r#"{"id":"operator_card"}"#),
        _ => serde_json::json!({
            "choices": [{"message": {"content": "All readings are normal; nothing to do."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 12}
        })
        .to_string(),
    }
}
