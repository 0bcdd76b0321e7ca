//! Sending provider requests over HTTP. The API key is read from the environment by
//! the caller and only ever placed in a request header: never in a transcript, a run
//! folder, a log line or an error message.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use terrarium_core::conversation::{Message, from_events};
use terrarium_core::transcript::Reasoning;
use terrarium_core::{Episode, World, view};

use super::budget::{CallBudget, CostBudget, Price, Reservation};
use super::cache::Cache;
use super::{Scaffold, Settings, TargetStop, openai_chat, retry, scaffold};
use crate::target::{Next, TargetError};

/// The connections to one provider, shared by every target and episode of a run that
/// uses it: one HTTP client (and so one connection pool) and at most `max_connections`
/// requests in flight at once. Episodes waiting for a permit simply wait; nothing is
/// sent early and nothing is dropped.
#[derive(Clone, Debug)]
pub struct Pool {
    client: reqwest::Client,
    permits: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
}

impl Pool {
    /// At most `max_connections` requests at once (at least one); an attempt that takes
    /// longer than `timeout_secs` fails (and is retried like a 5xx).
    pub fn new(max_connections: usize, timeout_secs: u64) -> Result<Self, TargetError> {
        // reqwest is built without a default crypto provider; use rustls's ring. An error
        // means a provider is installed already (by an earlier pool): nothing to do.
        rustls::crypto::ring::default_provider().install_default().ok();
        let max_connections = max_connections.max(1);
        // A redirect is followed only within the same origin (scheme, host, port): the
        // request carries the API key, which must never reach another host. A redirect
        // elsewhere stops and is reported as an error naming where it pointed.
        let redirects = reqwest::redirect::Policy::custom(|attempt| {
            let same_origin = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
            if same_origin && attempt.previous().len() <= 5 { attempt.follow() } else { attempt.stop() }
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(timeout_secs.max(1)))
            .pool_max_idle_per_host(max_connections)
            .redirect(redirects)
            .build()
            .map_err(|e| TargetError(format!("cannot build the HTTP client: {e}")))?;
        Ok(Pool { client, permits: Arc::new(tokio::sync::Semaphore::new(max_connections)), max_connections })
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }
}

/// The most bytes of one reply that are read (8 MiB): far beyond any real model reply,
/// far below what would exhaust the machine or fill a run folder.
pub const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// Which wire format a target speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// `openai/<model>`: OpenAI Chat Completions, or any OpenAI-compatible server.
    OpenAiChat,
    /// `anthropic/<model>`: Anthropic Messages.
    Anthropic,
    /// `openai-responses/<model>`: the OpenAI Responses API.
    OpenAiResponses,
    /// `mock/<file>`: canned replies from a file, in the Chat Completions format, with
    /// no network (see [`super::mock`]).
    Mock,
}

impl Provider {
    /// The provider a model spec (`openai-responses/o3`) names; `None` for anything else
    /// (`scripted/idle`).
    pub fn of_spec(spec: &str) -> Option<Provider> {
        let (prefix, model) = spec.split_once('/')?;
        let provider = [Provider::OpenAiChat, Provider::Anthropic, Provider::OpenAiResponses, Provider::Mock]
            .into_iter()
            .find(|p| p.name() == prefix)?;
        (!model.is_empty()).then_some(provider)
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::OpenAiChat => "openai",
            Provider::Anthropic => "anthropic",
            Provider::OpenAiResponses => "openai-responses",
            Provider::Mock => "mock",
        }
    }

    /// The wire format it speaks: its own, or Chat Completions for the mock.
    pub fn wire(self) -> Provider {
        match self {
            Provider::Mock => Provider::OpenAiChat,
            p => p,
        }
    }

    /// By convention an OpenAI base URL ends in `/v1`, an Anthropic one is the bare origin.
    pub fn endpoint(self, base_url: &str) -> String {
        match self {
            Provider::OpenAiChat => format!("{base_url}/chat/completions"),
            Provider::Anthropic => format!("{base_url}/v1/messages"),
            Provider::OpenAiResponses => format!("{base_url}/responses"),
            Provider::Mock => base_url.to_string(),
        }
    }
}

/// The request `provider` would be sent next in `episode`: the same function `next`
/// uses, so `terrarium show --model` prints exactly what a model receives first.
pub fn request_body(
    provider: Provider,
    scaffold: Scaffold,
    model: &str,
    episode: &Episode,
    tool_schemas: &[Json],
    settings: &Settings,
) -> Json {
    let mut conversation = from_events(episode.events());
    let mut tool_schemas = tool_schemas;
    if scaffold == Scaffold::Text {
        conversation = scaffold::conversation(&conversation, tool_schemas);
        tool_schemas = &[];
    }
    let prefill = match episode.events().first() {
        Some(terrarium_core::Event::Start { prefill, .. }) => prefill.as_deref(),
        _ => None,
    };
    conversation_request(provider, model, &conversation, tool_schemas, settings, prefill)
}

/// The request for `conversation` in `provider`'s wire format.
pub fn conversation_request(
    provider: Provider,
    model: &str,
    conversation: &[Message],
    tool_schemas: &[Json],
    settings: &Settings,
    prefill: Option<&str>,
) -> Json {
    match provider.wire() {
        Provider::OpenAiChat | Provider::Mock => {
            serde_json::to_value(openai_chat::request(model, conversation, tool_schemas, settings))
                .expect("requests serialise")
        }
        Provider::Anthropic => super::anthropic::request(model, conversation, tool_schemas, settings, prefill),
        Provider::OpenAiResponses => super::openai_responses::request(model, conversation, tool_schemas, settings),
    }
}

/// A reply to a plain request (a judge's): the text, and what the provider said about it.
#[derive(Clone, Debug)]
pub struct Completion {
    pub text: String,
    pub request_id: Option<String>,
    pub usage: Option<Json>,
}

/// A model behind an HTTP API.
pub struct ApiTarget {
    provider: Provider,
    scaffold: Scaffold,
    /// The world's prefill, for providers that support one.
    prefill: Option<String>,
    model: String,
    base_url: String,
    api_key: Option<String>,
    settings: Settings,
    tool_schemas: Vec<Json>,
    retry: retry::RetryPolicy,
    cache: Option<Cache>,
    budget: Option<CallBudget>,
    price: Option<Price>,
    cost: Option<CostBudget>,
    pool: Pool,
    /// A mock's canned replies: answered here, never sent.
    mock: Option<std::sync::Arc<super::mock::Mock>>,
}

impl ApiTarget {
    /// `base_url` by the usual convention ends in `/v1`; `/chat/completions` is appended.
    /// With `cache`, replies are read from and written to it. Requests go through
    /// `pool`, shared with the run's other targets on the same provider.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        provider: Provider,
        world: &World,
        model: &str,
        base_url: &str,
        api_key: Option<String>,
        settings: Settings,
        cache: Option<Cache>,
        pool: Pool,
    ) -> Self {
        ApiTarget {
            provider,
            scaffold: Scaffold::Native,
            prefill: world.file.target.prefill.clone(),
            model: model.to_string(),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.filter(|k| !k.is_empty()),
            settings,
            tool_schemas: view::tool_schemas(world),
            retry: retry::RetryPolicy::default(),
            cache,
            budget: None,
            price: None,
            cost: None,
            pool,
            mock: None,
        }
    }

    /// Answer from a mock's canned replies instead of a server.
    pub fn with_mock(mut self, mock: std::sync::Arc<super::mock::Mock>) -> Self {
        self.mock = Some(mock);
        self
    }

    /// Describe the tools in the prompt and parse calls from tags, instead of native calling.
    pub fn with_scaffold(mut self, scaffold: Scaffold) -> Self {
        self.scaffold = scaffold;
        self
    }

    /// Count every request sent against `budget`; once it is spent, the next request
    /// fails the episode (as errored, so a later run retries it).
    pub fn with_budget(mut self, budget: CallBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// What this model costs: episodes then record their estimated cost.
    pub fn with_price(mut self, price: Price) -> Self {
        self.price = Some(price);
        self
    }

    /// Stop before `budget` is overspent: each request's worst case is reserved before
    /// it is sent (see [`CostBudget`]). Needs a price; without one this does nothing.
    pub fn with_cost_budget(mut self, budget: CostBudget) -> Self {
        self.cost = Some(budget);
        self
    }

    pub fn price(&self) -> Option<Price> {
        self.price
    }

    /// At most `n` attempts per request (at least one).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.retry.max_attempts = n.max(1);
        self
    }

    /// Send `body`, retrying as [`retry::decide`] says; a final failure is the
    /// episode's error.
    async fn post(&self, mut body: String, plain: bool) -> Result<(Option<String>, String), TargetError> {
        let url = self.provider.endpoint(&self.base_url);
        // Held once, at its length, while the request is in flight: each attempt sends
        // a shared handle to these bytes, not a copy (see docs/performance.md).
        body.shrink_to_fit();
        let body = bytes::Bytes::from(body);
        let jitter =
            body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        let mut attempt = 1;
        let mut last_failure = String::new();
        loop {
            if let Some(budget) = &self.budget
                && !budget.take()
            {
                return Err(TargetError(format!(
                    "the run's budget of {} API calls is spent; this request was not sent{last_failure}",
                    budget.limit()
                )));
            }
            // A permit per attempt, not per episode: waiting out a retry hint frees it.
            let outcome = {
                let _permit = self.pool.permits.acquire().await.expect("the pool's semaphore is never closed");
                self.send_once(&url, &body, plain).await
            };
            let outcome = match outcome {
                Ok(reply) => return Ok(reply),
                Err(outcome) => outcome,
            };
            last_failure = match &outcome {
                retry::Attempt::Status { code, .. } => format!(" (the previous attempt got HTTP {code})"),
                retry::Attempt::Transport(why) | retry::Attempt::Refused(why) => {
                    format!(" (the previous attempt failed: {why})")
                }
            };
            match retry::decide(&self.retry, attempt, &outcome, jitter.rotate_left(attempt)) {
                retry::Decision::RetryAfter(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                retry::Decision::GiveUp(why) => {
                    let detail = match &outcome {
                        retry::Attempt::Status { body, .. } if !body.is_empty() => {
                            format!(": {}", body.chars().take(300).collect::<String>())
                        }
                        _ => String::new(),
                    };
                    let key: Vec<&str> = self.api_key.as_deref().into_iter().collect();
                    return Err(TargetError(crate::redact::text(&format!("{url} failed: {why}{detail}"), &key)));
                }
            }
            attempt += 1;
        }
    }

    async fn send_once(
        &self,
        url: &str,
        body: &bytes::Bytes,
        plain: bool,
    ) -> Result<(Option<String>, String), retry::Attempt> {
        if let Some(mock) = &self.mock {
            // The body was a `String`: this borrows it.
            return match mock.answer(&String::from_utf8_lossy(body), plain) {
                Ok(text) => Ok((None, text)),
                Err((code, body)) => Err(retry::Attempt::Status { code, retry_after_ms: None, body }),
            };
        }
        let mut request = self.pool.client.post(url).header("content-type", "application/json").body(body.clone());
        request = match (self.provider, &self.api_key) {
            (Provider::OpenAiChat | Provider::OpenAiResponses | Provider::Mock, Some(key)) => request.bearer_auth(key),
            (Provider::Anthropic, Some(key)) => request.header("x-api-key", key),
            (_, None) => request,
        };
        if self.provider == Provider::Anthropic {
            request = request.header("anthropic-version", "2023-06-01");
        }
        // Errors name the failure, never the headers (which carry the key).
        let response = request.send().await.map_err(|e| retry::Attempt::Transport(format!("request failed: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("(no location)");
            return Err(retry::Attempt::Refused(format!(
                "the server redirected (HTTP {}) to {}, another origin or one redirect too many; not followed, so the API key was not sent there",
                status.as_u16(),
                crate::redact::url(location)
            )));
        }
        let retry_after_ms =
            retry::retry_after_ms(|name| response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from));
        let request_id = ["x-request-id", "request-id"]
            .iter()
            .find_map(|h| response.headers().get(*h).and_then(|v| v.to_str().ok()).map(String::from));
        // Read at most MAX_REPLY_BYTES: a reply beyond it is a fault, not a memory load.
        let mut response = response;
        if response.content_length().is_some_and(|n| n > MAX_REPLY_BYTES as u64) {
            return Err(retry::Attempt::Refused(format!(
                "the reply is {} bytes; at most {MAX_REPLY_BYTES} are read",
                response.content_length().unwrap_or_default()
            )));
        }
        let mut bytes: Vec<u8> = Vec::new();
        while let Some(chunk) =
            response.chunk().await.map_err(|e| retry::Attempt::Transport(format!("reading the reply failed: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(retry::Attempt::Refused(format!(
                    "the reply is larger than {MAX_REPLY_BYTES} bytes; reading stopped there"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        if status.is_success() {
            Ok((request_id, text))
        } else {
            Err(retry::Attempt::Status { code: status.as_u16(), retry_after_ms, body: text })
        }
    }
}

impl ApiTarget {
    /// The next request's body and its cache key: the request, and the episode's
    /// identity (its [`terrarium_core::EpisodeKey`] id: world, cell, seed, this target,
    /// the model playing the user) and turn, so no two episodes share a cached reply.
    fn prepare(&self, episode_id: &str, episode: &Episode) -> (String, String) {
        let body = request_body(self.provider, self.scaffold, &self.model, episode, &self.tool_schemas, &self.settings)
            .to_string();
        let asker = format!("{episode_id}/turn {}", episode.state().turn + 1);
        let key = Cache::key(self.provider.name(), &self.base_url, &body, &asker);
        (body, key)
    }

    /// A response body as the target's reply: parsed, the request id attached, and
    /// calls read from tags under the text scaffold.
    fn interpret(
        &self,
        episode: &Episode,
        request_id: Option<String>,
        text: &str,
    ) -> Result<super::Reply, TargetError> {
        let turn = episode.state().turn + 1;
        let mut reply = match self.provider.wire() {
            Provider::OpenAiChat | Provider::Mock => openai_chat::parse(text, turn),
            Provider::Anthropic => super::anthropic::parse(text),
            Provider::OpenAiResponses => super::openai_responses::parse(text, turn),
        }
        .map_err(|e| TargetError(format!("unusable reply: {e}")))?;
        reply.output.meta.request_id = request_id;
        if self.scaffold == Scaffold::Text {
            let (clean, calls) = scaffold::parse(&reply.output.text, turn);
            if !calls.is_empty() {
                reply.output.meta.raw_text = Some(std::mem::replace(&mut reply.output.text, clean));
                reply.output.tool_calls = calls;
                if matches!(reply.stop, Some(TargetStop::Empty | TargetStop::MaxTokens)) {
                    reply.stop = None;
                }
            }
        }
        Ok(reply)
    }

    /// The next move in episode `episode_id` if the cache can answer it, without
    /// touching the network.
    pub fn cached_next(&self, episode_id: &str, episode: &Episode) -> Option<Next> {
        let (_, key) = self.prepare(episode_id, episode);
        let (request_id, text) = self.cache.as_ref()?.get(&key)?;
        let reply = self.interpret(episode, request_id, &text).ok()?;
        Some(match reply.stop {
            Some(stop) => Next::Last(reply.output, stop.reason()),
            None => Next::Output(reply.output),
        })
    }
}

/// `<provider>/<model>`: the one spelling of a model target in transcripts, records and
/// judgements.
pub fn spec_of(provider: Provider, model: &str) -> String {
    format!("{}/{model}", provider.name())
}

/// How much reasoning a target with this spec and these recorded settings asks its
/// provider to expose: `None` for a target that is not a model (a scripted policy); a
/// summary for a Responses model asked for reasoning summaries; thinking for an
/// Anthropic model given a thinking budget; otherwise none (an OpenAI-compatible
/// server may still send `reasoning_content`, which the transcript then shows).
pub fn declared_reasoning(spec: &str, settings: &Json) -> Option<Reasoning> {
    let provider = Provider::of_spec(spec)?;
    let asked = |field: &str| settings.get(field).is_some_and(|v| !v.is_null() && *v != "none");
    let unsupported =
        |what: &str| settings.get("unsupported").and_then(Json::as_array).is_some_and(|u| u.iter().any(|x| x == what));
    Some(match provider {
        Provider::OpenAiResponses if asked("reasoning_summary") => Reasoning::Summary,
        Provider::Anthropic if asked("thinking_budget") && !unsupported("thinking_budget") => Reasoning::Thinking,
        _ => Reasoning::None,
    })
}

/// The settings a model target records in each transcript header, and so in each
/// episode's id: what it is asked with (`settings`, the base URL, a text scaffold) and
/// what it cannot honour of what the world asks (`unsupported`, never silently dropped;
/// `prefill`: whether the world has a prefill).
pub fn recorded_settings(
    provider: Provider,
    scaffold: Scaffold,
    base_url: &str,
    settings: &Settings,
    prefill: bool,
) -> Json {
    let mut s = serde_json::to_value(settings).expect("settings serialise");
    s["base_url"] = Json::String(crate::redact::url(base_url.trim_end_matches('/')));
    let mut unsupported = Vec::new();
    let thinking = settings.thinking_budget.is_some();
    if prefill && (provider != Provider::Anthropic || thinking) {
        unsupported.push("prefill");
    }
    if thinking && provider != Provider::Anthropic {
        unsupported.push("thinking_budget");
    }
    if settings.reasoning_effort.is_some() && provider == Provider::Anthropic {
        unsupported.push("reasoning_effort");
    }
    if !unsupported.is_empty() {
        s["unsupported"] = serde_json::json!(unsupported);
    }
    if scaffold == Scaffold::Text {
        s["scaffold"] = Json::String("text".into());
    }
    s
}

impl ApiTarget {
    /// The spec recorded in transcripts, e.g. `openai/gpt-4.1`.
    pub fn spec(&self) -> String {
        spec_of(self.provider, &self.model)
    }

    /// Settings recorded in the header (and part of the episode id).
    pub fn settings(&self) -> Json {
        recorded_settings(self.provider, self.scaffold, &self.base_url, &self.settings, self.prefill.is_some())
    }

    /// Reserve the worst case of sending `body` against the run's cost limit.
    fn reserve(&self, body: &str) -> Result<Option<Reservation>, TargetError> {
        let (Some(budget), Some(price)) = (&self.cost, &self.price) else { return Ok(None) };
        let max_out = self.settings.max_tokens.unwrap_or(super::anthropic::DEFAULT_MAX_TOKENS);
        let estimate = CostBudget::estimate(price, body.len(), max_out);
        budget.reserve(estimate).map(Some).ok_or_else(|| {
            TargetError(format!(
                "the run's cost limit of ${:.2} would be passed by this request (worst case ${estimate:.4}, \
                 ${:.4} spent or reserved); it was not sent",
                budget.limit_usd(),
                budget.used_usd()
            ))
        })
    }

    /// Settle a reservation: at the reply's reported usage, at nothing when no reply
    /// came (providers do not bill failed requests), at the worst case when a reply came
    /// without usage.
    fn settle(&self, reservation: Option<Reservation>, replied: Option<Option<&Json>>) {
        let (Some(budget), Some(price), Some(reservation)) = (&self.cost, &self.price, reservation) else { return };
        let actual = match replied {
            None => 0.0,
            Some(Some(usage)) => price.cost(super::usage::Tokens::from_usage(usage)),
            // Unsettled, the worst case stays counted.
            Some(None) => return,
        };
        budget.settle(reservation, actual);
    }

    /// One exchange: the reply to `body` from the cache, else sent through the pool
    /// (reserved against the cost limit first, settled after), read by `parse` (given
    /// the provider's request id and the body), and cached if it is usable.
    async fn exchange(
        &self,
        body: String,
        plain: bool,
        key: &str,
        parse: impl FnOnce(Option<String>, &str) -> Result<super::Reply, TargetError>,
    ) -> Result<super::Reply, TargetError> {
        let cached = self.cache.as_ref().and_then(|c| c.get(key));
        let fresh = cached.is_none();
        let (request_id, text, reservation) = match cached {
            Some((id, text)) => (id, text, None),
            None => {
                let reservation = self.reserve(&body)?;
                match self.post(body, plain).await {
                    Ok((id, text)) => (id, text, reservation),
                    Err(e) => {
                        self.settle(reservation, None);
                        return Err(e);
                    }
                }
            }
        };
        // A key in use is recorded nowhere, whatever the server echoes back in a reply
        // that succeeded: its request id, its text (and so the cache, the transcript,
        // a judgement, a user model's message).
        let keys: Vec<&str> = self.api_key.as_deref().into_iter().collect();
        let request_id = request_id.map(|id| crate::redact::keys(&id, &keys));
        let text = crate::redact::keys(&text, &keys);
        let mut reply = parse(request_id.clone(), &text);
        if let Ok(r) = &reply
            && let Some(why) = r.output.meta.usage.as_ref().and_then(super::usage::implausible_usage)
        {
            reply = Err(TargetError(why));
        }
        self.settle(reservation, Some(reply.as_ref().ok().and_then(|r| r.output.meta.usage.as_ref())));
        let reply = reply?;
        // Content-filter stops are not cached: the same request may pass next time.
        if fresh
            && reply.stop != Some(TargetStop::ContentFilter)
            && let Some(cache) = &self.cache
        {
            cache.put(key, request_id.as_deref(), &text);
        }
        Ok(reply)
    }

    /// The model's next move in episode `episode_id`: from the cache, else by a request
    /// through the pool. Many episodes may await this at once on one target.
    pub async fn next(&self, episode_id: &str, episode: &Episode<'_>) -> Result<Next, TargetError> {
        let (body, key) = self.prepare(episode_id, episode);
        let reply = self.exchange(body, false, &key, |id, text| self.interpret(episode, id, text)).await?;
        Ok(match reply.stop {
            Some(stop) => Next::Last(reply.output, stop.reason()),
            None => Next::Output(reply.output),
        })
    }

    /// A plain reply to `conversation` (no tools; a judge's question), under the same
    /// cache, budgets and retries as an episode's requests. `asker` keys the cache (the
    /// judged episode and outcome), as an episode's identity and turn do.
    pub async fn complete(&self, conversation: &[Message], asker: &str) -> Result<Completion, TargetError> {
        let body =
            conversation_request(self.provider, &self.model, conversation, &[], &self.settings, None).to_string();
        let key = Cache::key(self.provider.name(), &self.base_url, &body, asker);
        let mut request_id = None;
        let reply = self
            .exchange(body, true, &key, |id, text| {
                request_id = id;
                match self.provider.wire() {
                    Provider::OpenAiChat | Provider::Mock => openai_chat::parse(text, 1),
                    Provider::Anthropic => super::anthropic::parse(text),
                    Provider::OpenAiResponses => super::openai_responses::parse(text, 1),
                }
                .map_err(|e| TargetError(format!("unusable reply: {e}")))
            })
            .await?;
        Ok(Completion { text: reply.output.text, request_id, usage: reply.output.meta.usage })
    }
}
