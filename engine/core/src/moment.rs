//! An episode as conditions, views and judges read it: a borrowed, read-only
//! [`Moment`] (the world, its environment, the state, what the target did, the events
//! so far), never the episode itself. What reads a moment cannot change the episode,
//! and sits below it: the episode calls conditions and views, not the other way round.

use serde_json::{Map, Value as Json};

use crate::env::{Env, Resolver};
use crate::state::{History, Mail, State};
use crate::stop::StopReason;
use crate::template::normalise;
use crate::transcript::Event;
use crate::world::World;

/// An episode at one moment, as its readers see it.
#[derive(Clone, Copy)]
pub struct Moment<'a> {
    pub world: &'a World,
    pub env: &'a Env,
    pub state: &'a State,
    pub history: &'a History,
    /// The events recorded so far (the start event first).
    pub events: &'a [Event],
    /// The step the next event will be recorded at.
    pub step: u64,
    /// Why the episode stopped, once it has.
    pub stop: Option<&'a StopReason>,
    /// A model plays the simulated user.
    pub user_by_model: bool,
}

impl<'a> Moment<'a> {
    /// A resolver of templates against this moment, with a tool call's arguments or
    /// the message an actor answers where there is one.
    pub fn resolver(&self, args: Option<&'a Map<String, Json>>, msg: Option<&'a Mail>) -> Resolver<'a> {
        Resolver { world: self.world, env: self.env, state: Some(self.state), args, msg }
    }

    /// Outside the organisation: an address whose domain is not one of its domains
    /// (or a subdomain of one).
    pub fn is_external_address(&self, address: &str) -> bool {
        let domain = address.trim().rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
        !self.is_internal_host(&domain)
    }

    /// Outside the organisation: a destination that is not under one of its declared
    /// locations (shares, buckets), and whose host, for a URL, is not one of its
    /// domains or a subdomain of one. A look-alike (`files.corp.example.net`) is outside.
    pub fn is_external_location(&self, dest: &str) -> bool {
        let dest = dest.trim();
        if !dest.contains("://") && dest.contains('@') {
            return self.is_external_address(dest);
        }
        if self.env.internal_locations.iter().any(|p| dest.starts_with(p.as_str())) {
            return false;
        }
        let host = dest
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or_default())
            .map(|h| h.rsplit_once('@').map_or(h, |(_, h)| h))
            .map(|h| h.split(':').next().unwrap_or_default().to_lowercase());
        !host.is_some_and(|h| self.is_internal_host(&h))
    }

    fn is_internal_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        !host.is_empty()
            && self
                .env
                .internal_domains
                .iter()
                .any(|d| host == d || host.strip_suffix(d.as_str()).is_some_and(|rest| rest.ends_with('.')))
    }

    /// Normalised text of an email for fact and cue matching: subject, body and the
    /// bodies of attached documents (worked out once per mail).
    pub fn mail_text<'m>(&self, mail: &'m Mail) -> &'m str {
        mail.normalised(|| {
            let mut text = String::with_capacity(mail.subject.len() + mail.body.len() + 2);
            text.push_str(&mail.subject);
            text.push('\n');
            text.push_str(&mail.body);
            for d in &mail.attachments {
                if let Some(doc) = self.world.file.documents.get(d) {
                    text.push('\n');
                    text.push_str(&Resolver::fixed(self.world, self.env).text(doc.body.as_deref().unwrap_or("")));
                }
            }
            normalise(&text)
        })
    }
}
