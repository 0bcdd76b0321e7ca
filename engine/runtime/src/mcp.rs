//! `terrarium mcp`: an episode's tools served over the Model Context Protocol (the
//! official Rust SDK), so that any MCP-capable agent can be the target: over stdio, or
//! over streamable HTTP on loopback, where each session is an agent of its own.
//!
//! - The tools and their schemas are the world's, as `show` prints them; in a world
//!   with a simulated user, one more, `say`, carries what the agent writes to the user
//!   (an agent's own text is never sent to a server, and a conversation needs it).
//! - Each call is one target output with one tool call, applied to the episode; its
//!   result is the world's tool result, followed by what the world showed the target
//!   meanwhile (a pushed email, a notification, a nudge, the user's next message), as
//!   `[kind] text` paragraphs, and, when the episode ended, why.
//! - The world's system prompt and first message are the server's instructions; the
//!   episode ends on the world's end tool, a world stop, a limit, or the session going
//!   away (`disconnected`). Its transcript is written to a run folder like any other,
//!   the target recorded as `mcp/<client name>-<version>`, and replays offline.
//! - The episodes (cells × seeds) are handed out in order: a session takes the next at
//!   its first call and the one after when its episode ends, so one stdio session runs
//!   them one after another, and concurrent HTTP sessions run them side by side.
//! - A tool call touches nothing but the episode's state: no file, network or process.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::Value as Json;
use terrarium_core::stop::StopReason;
use terrarium_core::transcript::{Event, SHOWN_TO_TARGET, TargetOutput, ToolCall};
use terrarium_core::{Cell, EpisodeKey, World};

use crate::run::EpisodeRun;
use crate::run_folder::{Planned, Writer};
use crate::target::Next;

/// The tool a conversation world adds for the agent's words to the user.
pub const SAY: &str = "say";

/// What an MCP server serves: one world's episodes, in order, into one run folder.
/// Cheap to clone: every session shares it.
#[derive(Clone)]
pub struct McpServer {
    world: &'static World,
    shared: Arc<Mutex<Shared>>,
}

struct Shared {
    /// (cell, seed) of each episode, in the order they are handed out.
    queue: Vec<(&'static Cell, u64)>,
    next: usize,
    writer: Writer,
    out: PathBuf,
    /// The commit the front end was built from, for each header.
    build: Option<String>,
    /// Episodes written.
    written: Vec<String>,
    /// Why a write failed, for the end of serving (a session cannot report it).
    failure: Option<String>,
}

/// What serving did.
#[derive(Debug)]
pub struct Served {
    pub episodes: Vec<String>,
    pub out: PathBuf,
}

/// One client's session: the episode it is playing.
pub struct Session {
    server: McpServer,
    current: Mutex<Option<EpisodeRun<'static>>>,
    /// Episodes this session has begun.
    begun: std::sync::atomic::AtomicUsize,
}

impl McpServer {
    /// A server for `world`'s `cells` at seeds `seed .. seed + samples`, writing into
    /// `out` (locked, as a run's folder is, while it serves).
    pub fn new(
        world: &'static World,
        cells: &'static [Cell],
        seed: u64,
        samples: u64,
        out: PathBuf,
        build: Option<String>,
    ) -> std::io::Result<McpServer> {
        let writer = Writer::open(&out)?;
        let queue = cells.iter().flat_map(|c| (seed..seed.saturating_add(samples)).map(move |s| (c, s))).collect();
        let shared = Shared { queue, next: 0, writer, out, build, written: Vec::new(), failure: None };
        Ok(McpServer { world, shared: Arc::new(Mutex::new(shared)) })
    }

    /// A session of its own, for one client.
    pub fn session(&self) -> Session {
        Session { server: self.clone(), current: Mutex::new(None), begun: std::sync::atomic::AtomicUsize::new(0) }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What serving did, once every session is over.
    fn served(&self) -> Result<Served, String> {
        let mut s = self.shared();
        if let Some(why) = s.failure.take() {
            return Err(why);
        }
        s.writer.sync().map_err(|e| format!("cannot write {}: {e}", s.out.display()))?;
        Ok(Served { episodes: s.written.clone(), out: s.out.clone() })
    }

    /// Serve over stdio until the client goes; an episode still under way then ends
    /// as `disconnected` and is written.
    pub async fn serve_stdio(self) -> Result<Served, String> {
        let running = self.session().serve(rmcp::transport::stdio()).await.map_err(|e| format!("MCP: {e}"))?;
        let _ = running.waiting().await;
        self.served()
    }

    /// Serve streamable HTTP on `listener` (loopback), each session an agent of its
    /// own, until `stop` resolves; episodes under way then end as `disconnected`.
    pub async fn serve_http(
        self,
        listener: tokio::net::TcpListener,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Served, String> {
        use rmcp::transport::streamable_http_server::{
            StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
        };
        let config = StreamableHttpServerConfig::default();
        let cancel = config.cancellation_token.clone();
        let server = self.clone();
        let service =
            StreamableHttpService::new(move || Ok(server.session()), Arc::new(LocalSessionManager::default()), config);
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut stop = std::pin::pin!(stop);
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut stop => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let service = service.clone();
                    connections.spawn(async move {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                            .serve_connection(io, service)
                            .await;
                    });
                }
            }
        }
        cancel.cancel();
        connections.abort_all();
        while connections.join_next().await.is_some() {}
        drop(service);
        // Every session's task sees the cancellation and drops its handler, which writes
        // an episode it left under way; wait for the last (this server is then the only
        // holder of the shared state), or give up after ten seconds.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10); // determinism-ok: server shutdown at the IO edge; bounds a wait, never read into a transcript
        let in_time = || tokio::time::Instant::now() < deadline; // determinism-ok: the same wait's bound
        while Arc::strong_count(&self.shared) > 1 && in_time() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.served()
    }

    /// The tools the agent is offered: the world's, as `show` prints them, and `say` in
    /// a world with a simulated user.
    pub fn tools(&self) -> Vec<Tool> {
        let mut tools: Vec<Tool> = terrarium_core::view::tool_schemas(self.world)
            .into_iter()
            .map(|s| {
                let name = s["name"].as_str().unwrap_or_default().to_string();
                let description = s["description"].as_str().unwrap_or_default().to_string();
                let schema = s["parameters"].as_object().cloned().unwrap_or_default();
                Tool::new(name, description, Arc::new(schema))
            })
            .collect();
        if !self.world.file.users.is_empty() {
            let schema = serde_json::json!({
                "type": "object",
                "properties": {"text": {"type": "string", "description": "What you say."}},
                "required": ["text"],
            });
            let schema = schema.as_object().cloned().unwrap_or_default();
            tools.push(Tool::new(SAY, "Say something to the person you are talking with.", Arc::new(schema)));
        }
        tools
    }

    /// The world's system prompt and first message of the first episode, as the
    /// server's instructions.
    fn instructions(&self) -> String {
        let first = self.shared().queue.first().copied();
        let Some((cell, seed)) = first else { return String::new() };
        match terrarium_core::Episode::start(self.world, cell, seed) {
            Ok(ep) => opening(ep.events()),
            Err(e) => format!("(the episode does not start: {e})"),
        }
    }

    /// The next episode for `target`, planned in the folder; `None` when none is left.
    fn take_next(&self, target: &str) -> Result<Option<EpisodeRun<'static>>, String> {
        let mut s = self.shared();
        let Some(&(cell, seed)) = s.queue.get(s.next) else { return Ok(None) };
        s.next += 1;
        let settings = serde_json::json!({});
        let planned: Vec<Planned> = s.queue[s.next - 1..]
            .iter()
            .map(|(c, sd)| Planned {
                episode_id: EpisodeKey::new(self.world, c, *sd, target, &settings).id(),
                world: self.world.id().to_string(),
                condition_key: c.key(),
                target: target.to_string(),
                user: None,
                branch: None,
            })
            .collect();
        s.writer.plan(&planned).map_err(|e| e.to_string())?;
        let key = EpisodeKey::new(self.world, cell, seed, target, &settings);
        EpisodeRun::start(key, s.build.as_deref(), None).map(Some)
    }

    /// Write a finished episode.
    fn save(&self, run: EpisodeRun<'static>) -> Result<(), String> {
        let finished = run.finish();
        let mut s = self.shared();
        let saved = s.writer.save(&finished).and_then(|()| s.writer.sync());
        if let Err(e) = saved {
            let why = format!("cannot write {}: {e}", s.out.display());
            s.failure.get_or_insert(why.clone());
            return Err(why);
        }
        s.written.push(finished.record.episode_id);
        Ok(())
    }
}

impl Session {
    /// One tool call, applied to this session's episode (the next one started first if
    /// none is under way).
    fn call(&self, target: &str, name: &str, args: serde_json::Map<String, Json>) -> Result<CallToolResult, String> {
        let server = &self.server;
        let mut current = self.current.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut preface = String::new();
        if current.is_none() {
            let Some(run) = server.take_next(target)? else {
                return Ok(CallToolResult::error(vec![ContentBlock::text(
                    "Every episode this server was asked to serve is over or under way elsewhere; nothing more happens here.",
                )]));
            };
            if self.begun.fetch_add(1, std::sync::atomic::Ordering::Relaxed) > 0 {
                preface = format!("[a new episode begins]\n{}\n\n", opening(run.events()));
            }
            *current = Some(run);
        }
        let run = current.as_mut().expect("an episode is under way");
        let Some(ep) = run.pending() else { return Err("the episode is over".into()) };
        let before = ep.events().len();
        let turn = ep.state().turn + 1;
        let output = if name == SAY && !server.world.file.users.is_empty() {
            let text = args.get("text").and_then(Json::as_str).unwrap_or_default().to_string();
            TargetOutput { text, ..TargetOutput::default() }
        } else {
            let value = Json::Object(args);
            TargetOutput {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: format!("call_{turn}_1"),
                    name: name.to_string(),
                    arguments_raw: serde_json::to_string(&value).expect("arguments serialise"),
                    arguments: Some(value),
                }],
                ..TargetOutput::default()
            }
        };
        run.step(Ok(Next::Output(output)));
        let (text, failed) = answer(run.events().get(before..).unwrap_or_default());
        let mut text = preface + &text;
        if run.pending().is_none() {
            let done = current.take().expect("the episode under way");
            server.save(done)?;
            let more = {
                let s = server.shared();
                s.next < s.queue.len()
            };
            if more {
                text.push_str("\n\n[the next episode begins with your next call]");
            }
        }
        Ok(if failed {
            CallToolResult::error(vec![ContentBlock::text(text)])
        } else {
            CallToolResult::success(vec![ContentBlock::text(text)])
        })
    }
}

impl Drop for Session {
    /// The client went away: an episode still under way ends as `disconnected` and is
    /// written like any other.
    fn drop(&mut self) {
        let current = self.current.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(mut run) = current.take() {
            run.stop(StopReason::Disconnected);
            let _ = self.server.save(run);
        }
    }
}

/// What the target is shown first: the system prompt and the first message.
fn opening(events: &[Event]) -> String {
    match events.first() {
        Some(Event::Start { system, user, .. }) => format!("{system}\n\n{user}"),
        _ => String::new(),
    }
}

/// The text an agent gets back for the events one call made: the tool's result, then
/// what the world showed the target meanwhile, then the stop; and whether the tool
/// refused the call.
fn answer(events: &[Event]) -> (String, bool) {
    let mut parts = Vec::new();
    let mut failed = false;
    for e in events {
        match e {
            Event::ToolResult { text, ok, .. } => {
                failed |= !ok;
                parts.push(text.clone());
            }
            Event::World { kind, text, .. } if SHOWN_TO_TARGET.contains(&kind.as_str()) => {
                parts.push(format!("[{kind}] {text}"));
            }
            Event::User { user, text, .. } => parts.push(format!("[{user}] {text}")),
            Event::Stop { reason, .. } => parts.push(format!("[the episode is over: {}]", reason.name())),
            _ => {}
        }
    }
    (parts.join("\n\n"), failed)
}

impl ServerHandler for Session {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("terrarium", terrarium_core::ENGINE.trim_start_matches("terrarium ")))
            .with_instructions(self.server.instructions())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.server.tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let client = context
            .peer
            .peer_info()
            .map(|i| format!("mcp/{}-{}", i.client_info.name, i.client_info.version))
            .unwrap_or_else(|| "mcp/unknown".to_string());
        let client = client.replace(char::is_whitespace, "_");
        let args = request.arguments.unwrap_or_default();
        self.call(&client, &request.name, args).map(Into::into).map_err(|e| McpError::internal_error(e, None))
    }
}
