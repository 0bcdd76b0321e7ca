//! `terrarium mcp`: an episode's tools served over the Model Context Protocol (the
//! official Rust SDK, over stdio), so that any MCP-capable agent can be the target.
//!
//! - The tools and their schemas are the world's, as `show` prints them; in a world
//!   with a simulated user, one more, `say`, carries what the agent writes to the user
//!   (an agent's own text is never sent to a server, and a conversation needs it).
//! - Each call is one target output with one tool call, applied to the episode; its
//!   result is the world's tool result, followed by what the world showed the target
//!   meanwhile (a pushed email, a notification, a nudge, the user's next message), as
//!   `[kind] text` paragraphs, and, when the episode ended, why.
//! - The world's system prompt and first message are the server's instructions and
//!   the answer to `start`'s first call; the episode ends on the world's end tool, a
//!   world stop, a limit, or the client going away (`disconnected`). Its transcript is
//!   written to a run folder like any other, the target recorded as
//!   `mcp/<client name>-<version>`, and replays offline.
//! - Several episodes (cells × seeds) are served one after another: when one ends, the
//!   next begins, and the ending call's result says so with the next first message.
//! - A tool call touches nothing but the episode's state: no file, network or process.

use std::path::PathBuf;
use std::sync::Arc;

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
use tokio::sync::Mutex;

use crate::run::EpisodeRun;
use crate::run_folder::{Planned, Writer};
use crate::target::Next;

/// The tool a conversation world adds for the agent's words to the user.
pub const SAY: &str = "say";

/// What an MCP server serves: one world's episodes, in order, into one run folder.
pub struct McpServer {
    world: &'static World,
    /// (cell, seed) of each episode, in the order they are served.
    queue: Vec<(&'static Cell, u64)>,
    out: PathBuf,
    /// The commit the front end was built from, for each header.
    build: Option<String>,
    state: Arc<Mutex<Serving>>,
}

struct Serving {
    writer: Writer,
    next: usize,
    current: Option<EpisodeRun<'static>>,
    /// `mcp/<client>-<version>`, once the client has said who it is.
    target: Option<String>,
    /// Episodes written, and where.
    written: Vec<String>,
}

/// What serving did.
#[derive(Debug)]
pub struct Served {
    pub episodes: Vec<String>,
    pub out: PathBuf,
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
        let state = Serving { writer, next: 0, current: None, target: None, written: Vec::new() };
        Ok(McpServer { world, queue, out, build, state: Arc::new(Mutex::new(state)) })
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
        let Some((cell, seed)) = self.queue.first() else { return String::new() };
        match terrarium_core::Episode::start(self.world, cell, *seed) {
            Ok(ep) => opening(ep.events()),
            Err(e) => format!("(the episode does not start: {e})"),
        }
    }

    /// Serve over stdio until the client goes; an episode still under way then ends
    /// as `disconnected` and is written.
    pub async fn serve_stdio(self) -> Result<Served, String> {
        let state = self.state.clone();
        let out = self.out.clone();
        let running = self.serve(rmcp::transport::stdio()).await.map_err(|e| format!("MCP: {e}"))?;
        let _ = running.waiting().await;
        let mut s = state.lock().await;
        if let Some(mut run) = s.current.take() {
            run.stop(StopReason::Disconnected);
            let finished = run.finish();
            s.writer.save(&finished).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            s.written.push(finished.record.episode_id);
        }
        s.writer.sync().map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        Ok(Served { episodes: s.written.clone(), out })
    }

    /// One tool call, applied to the episode under way (started first if none is).
    async fn call(
        &self,
        client: String,
        name: &str,
        args: serde_json::Map<String, Json>,
    ) -> Result<CallToolResult, String> {
        let mut guard = self.state.lock().await;
        let s = &mut *guard;
        let target = s.target.get_or_insert(client).clone();
        let mut preface = String::new();
        if s.current.is_none() {
            let Some(&(cell, seed)) = self.queue.get(s.next) else {
                return Ok(CallToolResult::error(vec![ContentBlock::text(
                    "Every episode this server was asked to serve is over; nothing more happens here.",
                )]));
            };
            let key = EpisodeKey::new(self.world, cell, seed, &target, &serde_json::json!({}));
            let planned: Vec<Planned> = self.queue[s.next..]
                .iter()
                .map(|(c, sd)| {
                    let k = EpisodeKey::new(self.world, c, *sd, &target, &serde_json::json!({}));
                    Planned {
                        episode_id: k.id(),
                        world: self.world.id().to_string(),
                        condition_key: c.key(),
                        target: target.clone(),
                        user: None,
                        branch: None,
                    }
                })
                .collect();
            s.writer.plan(&planned).map_err(|e| e.to_string())?;
            s.current = Some(EpisodeRun::start(key, self.build.as_deref(), None)?);
            if s.next > 0 {
                preface = format!(
                    "[a new episode begins]\n{}\n\n",
                    s.current
                        .as_ref()
                        .map_or(String::new(), |r| { r.pending().map_or(String::new(), |ep| opening(ep.events())) })
                );
            }
        }
        let run = s.current.as_mut().expect("an episode is under way");
        let Some(ep) = run.pending() else { return Err("the episode is over".into()) };
        let before = ep.events().len();
        let turn = ep.state().turn + 1;
        let output = if name == SAY && !self.world.file.users.is_empty() {
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
            let done = s.current.take().expect("the episode under way");
            let finished = done.finish();
            s.writer.save(&finished).map_err(|e| e.to_string())?;
            s.writer.sync().map_err(|e| e.to_string())?;
            s.written.push(finished.record.episode_id);
            s.next += 1;
            if s.next < self.queue.len() {
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

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("terrarium", terrarium_core::ENGINE.trim_start_matches("terrarium ")))
            .with_instructions(self.instructions())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools()))
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
        self.call(client, &request.name, args).await.map(Into::into).map_err(|e| McpError::internal_error(e, None))
    }
}
