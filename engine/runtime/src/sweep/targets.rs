//! What acts in a sweep, as a front end names it (`scripted/<policy>`, `openai/<model>`,
//! `openai-responses/<model>`, `anthropic/<model>` with its settings), resolved into a
//! target: the provider, where it is (a base URL from the entry, else the provider's
//! environment variable, else its public endpoint) and its key (from the environment
//! only, never from a file or a flag).

use serde::Deserialize;
use terrarium_core::World;
use terrarium_core::transcript::TargetRef;

use crate::providers::budget::Price;
use crate::providers::cache::Cache;
use crate::providers::http::{ApiTarget, Pool, Provider};
use crate::providers::{Scaffold, Settings};

/// One target or judge, as a sweep file or a front end writes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetEntry {
    /// `scripted/<policy>`, `openai/<model>`, `openai-responses/<model>` or `anthropic/<model>`.
    pub model: String,
    pub base_url: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    pub sampling_seed: Option<u64>,
    pub reasoning_effort: Option<String>,
    pub thinking_budget: Option<u32>,
    /// Reasoning summaries on the Responses API: `auto` (the default for reasoning
    /// models), `concise`, `detailed` or `none`.
    pub reasoning_summary: Option<String>,
    /// `native` (the default) or `text`.
    pub scaffold: Option<Scaffold>,
    pub max_connections: Option<u64>,
    pub price: Option<Price>,
}

impl TargetEntry {
    pub fn bare(model: &str) -> Self {
        TargetEntry { model: model.to_string(), ..TargetEntry::default() }
    }

    /// Lay the settings `over` sets over this entry's: a front end's flags over a
    /// sweep file's entry. Its `model`, `max_connections` and `price` are not read.
    pub fn overlay(&mut self, over: &TargetEntry) {
        self.base_url = over.base_url.clone().or(self.base_url.take());
        self.temperature = over.temperature.or(self.temperature);
        self.top_p = over.top_p.or(self.top_p);
        self.max_tokens = over.max_tokens.or(self.max_tokens);
        self.sampling_seed = over.sampling_seed.or(self.sampling_seed);
        self.reasoning_effort = over.reasoning_effort.clone().or(self.reasoning_effort.take());
        self.thinking_budget = over.thinking_budget.or(self.thinking_budget);
        self.reasoning_summary = over.reasoning_summary.clone().or(self.reasoning_summary.take());
        self.scaffold = over.scaffold.or(self.scaffold);
    }

    /// This entry as a judge is asked, whoever asks (a run, `calibrate`): pinned to
    /// temperature 0 where the provider allows it (a reasoning effort or a thinking
    /// budget rules a temperature out), and at most [`JUDGE_MAX_TOKENS`] an answer
    /// unless the entry says otherwise.
    pub fn as_judge(mut self) -> Self {
        if self.temperature.is_none() && self.reasoning_effort.is_none() && self.thinking_budget.is_none() {
            self.temperature = Some(0.0);
        }
        self.max_tokens = self.max_tokens.or(Some(JUDGE_MAX_TOKENS));
        self
    }

    /// This entry as the model playing a simulated user: at most [`USER_MAX_TOKENS`] a
    /// message unless the entry says otherwise.
    pub fn as_user(mut self) -> Self {
        self.max_tokens = self.max_tokens.or(Some(USER_MAX_TOKENS));
        self
    }

    /// Settings a provider would refuse, or that could not be recorded as given (a
    /// temperature of NaN is written `null`), are refused here, naming the setting.
    pub fn check_settings(&self) -> Result<(), String> {
        let model = &self.model;
        if let Some(t) = self.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(format!("{model}: temperature must be from 0 to 2, not {t}"));
        }
        if let Some(p) = self.top_p
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(format!("{model}: top_p must be more than 0 and at most 1, not {p}"));
        }
        if self.max_tokens == Some(0) {
            return Err(format!("{model}: max_tokens must be at least 1"));
        }
        if let Some(b) = self.thinking_budget
            && b < 1024
        {
            return Err(format!("{model}: thinking_budget must be at least 1024 tokens (Anthropic's least), not {b}"));
        }
        if let Some(p) = &self.price
            && !(p.input_per_mtok.is_finite() && p.output_per_mtok.is_finite())
        {
            return Err(format!("{model}: prices must be finite numbers"));
        }
        Ok(())
    }
}

/// The most tokens one reply of a model playing a simulated user may have unless it is
/// told otherwise: a chat message, with room for a reasoning model's reasoning. (Without
/// a bound, a small local model once wrote 8,180 tokens in one message.)
pub const USER_MAX_TOKENS: u32 = 1024;

/// The most tokens one judge's answer may have unless it is told otherwise: a verdict,
/// quotes and a reason, with room for a reasoning model's reasoning.
pub const JUDGE_MAX_TOKENS: u32 = 4096;

/// How requests are sent: nothing here changes what a model is asked, so none of it is
/// recorded.
#[derive(Clone, Copy, Debug)]
pub struct SendOptions {
    /// Read and write the response cache.
    pub cache: bool,
    pub timeout_secs: u64,
    pub max_attempts: u32,
}

impl Default for SendOptions {
    fn default() -> Self {
        SendOptions { cache: true, timeout_secs: 120, max_attempts: 6 }
    }
}

/// A model spec's provider and model name, and where its key and base URL come from.
#[derive(Clone, Copy, Debug)]
pub struct ModelSpec<'a> {
    pub provider: Provider,
    pub name: &'a str,
    pub key_var: &'static str,
    pub url_var: &'static str,
    pub default_url: &'static str,
}

impl ModelSpec<'_> {
    /// `openai/<model>`, `openai-responses/<model>` or `anthropic/<model>`.
    pub fn parse(model: &str) -> Option<ModelSpec<'_>> {
        let provider = Provider::of_spec(model)?;
        let (_, name) = model.split_once('/')?;
        let (key_var, url_var, default_url) = match provider {
            Provider::OpenAiChat | Provider::OpenAiResponses => {
                ("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1")
            }
            Provider::Anthropic => ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
            // No key, no server: the file is the model.
            Provider::Mock => ("", "", ""),
        };
        Some(ModelSpec { provider, name, key_var, url_var, default_url })
    }

    /// `given`, else the provider's environment variable, else its public endpoint.
    pub fn base_url(&self, given: Option<&str>) -> String {
        let env_url = std::env::var(self.url_var).ok().filter(|u| !u.is_empty());
        given.map(str::to_string).or(env_url).unwrap_or_else(|| self.default_url.to_string())
    }
}

/// What acts in a run.
pub enum TargetSpec {
    Scripted(String),
    Api(Box<ApiSpec>),
}

impl TargetSpec {
    /// The target `entry` names. `needs_key`: whether requests will be sent (a dry run
    /// sends none, so it needs no key).
    pub fn resolve(entry: &TargetEntry, send: &SendOptions, needs_key: bool) -> Result<TargetSpec, String> {
        let model = entry.model.as_str();
        if let Some(policy) = model.strip_prefix("scripted/").filter(|p| !p.is_empty()) {
            return Ok(TargetSpec::Scripted(policy.to_string()));
        }
        let Some(spec) = ModelSpec::parse(model) else {
            return Err(format!(
                "--model `{model}` is not a target spec; use scripted/<policy>, openai/<model>, openai-responses/<model>, anthropic/<model> or mock/<file>"
            ));
        };
        entry.check_settings()?;
        let mock = match spec.provider {
            Provider::Mock => {
                Some(std::sync::Arc::new(crate::providers::mock::Mock::read(std::path::Path::new(spec.name))?))
            }
            _ => None,
        };
        let base_url = match &mock {
            Some(m) => m.base_url(),
            None => spec.base_url(entry.base_url.as_deref()),
        };
        let api_key = std::env::var(spec.key_var).ok().filter(|k| !k.is_empty() && mock.is_none());
        if needs_key && mock.is_none() && api_key.is_none() && base_url == spec.default_url {
            let key_var = spec.key_var;
            return Err(format!("{key_var} is not set (a local compatible server needs --base-url and no key)"));
        }
        let cache = if send.cache { Cache::default_dir().map(Cache::new) } else { None };
        Ok(TargetSpec::Api(Box::new(ApiSpec {
            provider: spec.provider,
            model: spec.name.to_string(),
            base_url,
            api_key,
            settings: Settings {
                temperature: entry.temperature,
                top_p: entry.top_p,
                max_tokens: entry.max_tokens,
                sampling_seed: entry.sampling_seed,
                reasoning_effort: entry.reasoning_effort.clone(),
                thinking_budget: entry.thinking_budget,
                reasoning_summary: entry.reasoning_summary.clone(),
            }
            .for_model(spec.provider, spec.name),
            cache,
            max_attempts: send.max_attempts,
            timeout_secs: send.timeout_secs,
            scaffold: entry.scaffold.unwrap_or_default(),
            max_connections: entry.max_connections.map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1)),
            price: entry.price,
            mock,
        })))
    }

    /// The spec recorded in transcripts and records: `scripted/<policy>` or
    /// `<provider>/<model>`.
    pub fn spec(&self) -> String {
        match self {
            TargetSpec::Scripted(policy) => format!("scripted/{policy}"),
            TargetSpec::Api(api) => api.spec(),
        }
    }
}

impl std::fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.spec())
    }
}

/// A model target: where it is, how it is asked, and what it costs.
pub struct ApiSpec {
    pub provider: Provider,
    pub model: String,
    pub base_url: String,
    pub api_key: Option<String>,
    pub settings: Settings,
    pub cache: Option<Cache>,
    pub max_attempts: u32,
    pub timeout_secs: u64,
    pub scaffold: Scaffold,
    /// Connections to its endpoint, when this model names a number (else the run's default).
    pub max_connections: Option<usize>,
    pub price: Option<Price>,
    /// A mock's canned replies (`mock/<file>`), read once.
    pub mock: Option<std::sync::Arc<crate::providers::mock::Mock>>,
}

impl ApiSpec {
    /// `<provider>/<model>`, as transcripts, records and judgements name it.
    pub fn spec(&self) -> String {
        crate::providers::http::spec_of(self.provider, &self.model)
    }

    /// The spec and settings this model records in the headers of `world`'s episodes
    /// (what [`ApiTarget::settings`] of [`ApiSpec::target`] gives, without a pool).
    pub fn recorded(&self, world: &World) -> TargetRef {
        let settings = crate::providers::http::recorded_settings(
            self.provider,
            self.scaffold,
            &self.base_url,
            &self.settings,
            world.file.target.prefill.is_some(),
        );
        TargetRef { spec: self.spec(), settings }
    }

    /// The target for one world, sending through `pool`.
    pub fn target(&self, world: &World, pool: Pool) -> ApiTarget {
        let mut t = ApiTarget::new(
            self.provider,
            world,
            &self.model,
            &self.base_url,
            self.api_key.clone(),
            self.settings.clone(),
            self.cache.clone(),
            pool,
        )
        .with_max_attempts(self.max_attempts)
        .with_scaffold(self.scaffold);
        if let Some(price) = self.price {
            t = t.with_price(price);
        }
        if let Some(mock) = &self.mock {
            t = t.with_mock(mock.clone());
        }
        t
    }
}
