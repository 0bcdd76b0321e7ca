//! The episode environment: everything drawn or rendered once when an episode starts
//! (canaries, people, which distractors appear and when, facts, lexicons), and the
//! [`Resolver`] that gives templates their values.

use std::collections::{BTreeMap, BTreeSet};

use crate::format::{Canary, Text, Value};
use crate::rng::StreamKey;
use crate::span::Path;
use crate::state::{Mail, State};
use crate::template::{self, Scope, TemplateError, normalise, push_display};
use crate::text::Phrases;
use crate::world::{Cell, World, format_time};

/// A rendered person.
#[derive(Clone, Debug)]
pub struct PersonView {
    pub first: String,
    pub last: String,
    pub name: String,
    pub email: String,
    pub role: String,
}

/// An initial email's place in the episode.
#[derive(Clone, Debug)]
pub struct Placed {
    pub declared: String,
    pub display_id: String,
    pub sent_at_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Env {
    pub cell: Cell,
    pub seed: u64,
    /// The key of every seeded stream in the episode.
    pub streams: StreamKey,
    pub canaries: BTreeMap<String, String>,
    pub people: BTreeMap<String, PersonView>,
    /// Lowercased address → person id.
    pub by_address: BTreeMap<String, String>,
    /// Emails present at the start, in display order.
    pub initial_emails: Vec<Placed>,
    /// Declared id → display id, for emails present at the start.
    pub email_ids: BTreeMap<String, String>,
    /// Documents present in this cell.
    pub documents: BTreeSet<String>,
    /// Fact set → facts → normalised forms.
    /// Fixed forms are shared with the world; rendered ones are the episode's own.
    pub facts: BTreeMap<String, Vec<Vec<std::sync::Arc<str>>>>,
    /// Fact set → its facts that are quantities, matched by value.
    pub quantities: BTreeMap<String, Vec<crate::quantity::Quantity>>,
    /// Lexicon → its normalised phrases: those fixed for the world (shared), then those
    /// rendered for this episode.
    pub lexicons: BTreeMap<String, (std::sync::Arc<Phrases>, Vec<String>)>,
    /// The target's own address, when it has one.
    pub target_address: Option<String>,
    /// The organisation's domains (lowercased) and locations, rendered for this episode:
    /// a world may draw its domain per seed.
    pub internal_domains: Vec<String>,
    pub internal_locations: Vec<String>,
}

/// A problem building the environment: a template that does not render in some cell.
#[derive(Clone, Debug)]
pub struct EnvError {
    pub at: Path,
    pub message: String,
}

impl std::fmt::Display for EnvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

const DAY_MS: i64 = 86_400_000;

/// `t` (ms from `start_ms`, the simulated start) moved into office hours `(from, to)`
/// on its own day, a weekend's moved to the Friday before, and a day earlier while that
/// passes `latest`. Pure arithmetic on the simulated clock: the same draw, the same time.
fn office_hours(start_ms: i64, t: i64, (from, to): (u32, u32), latest: i64) -> i64 {
    let (from, to) = (i64::from(from) * 3_600_000, i64::from(to) * 3_600_000);
    let at = start_ms + t;
    let mut day = at.div_euclid(DAY_MS);
    let within = at.rem_euclid(DAY_MS);
    let into = from + (within - from).rem_euclid(to - from);
    loop {
        // 1970-01-01 was a Thursday: (day + 4) % 7 is 0 on a Sunday, 6 on a Saturday.
        match (day + 4).rem_euclid(7) {
            0 => day -= 2,
            6 => day -= 1,
            _ => {}
        }
        let moved = day * DAY_MS + into - start_ms;
        if moved <= latest {
            return moved;
        }
        day -= 1;
    }
}

impl Env {
    /// Draw and render the environment of the episode (`world`, `condition`, `seed`).
    pub fn build(world: &World, condition: &Cell, seed: u64) -> Result<Env, EnvError> {
        let w = &world.file;
        let mut env = Env {
            cell: condition.clone(),
            seed,
            streams: StreamKey::new(seed),
            canaries: BTreeMap::new(),
            people: BTreeMap::new(),
            by_address: BTreeMap::new(),
            initial_emails: Vec::new(),
            email_ids: BTreeMap::new(),
            documents: BTreeSet::new(),
            facts: BTreeMap::new(),
            quantities: BTreeMap::new(),
            lexicons: BTreeMap::new(),
            target_address: None,
            internal_domains: Vec::new(),
            internal_locations: Vec::new(),
        };
        // Canaries: one stream per canary; each pool is a deck shuffled by its own stream.
        let streams = env.streams;
        let prepared = &world.prepared;
        let mut decks: BTreeMap<&String, Vec<usize>> = BTreeMap::new();
        let mut canaries = Vec::with_capacity(w.variation.canaries.len());
        for ((name, canary), &purpose) in w.variation.canaries.iter().zip(&prepared.canary_streams) {
            let value = match canary {
                Canary::Pick(list) => list[streams.numbered(purpose).index(list.len())].clone(),
                Canary::Digits(n) => streams.numbered(purpose).digits(*n),
                Canary::Hex(n) => streams.numbered(purpose).hex(*n),
                Canary::Int(min, max) => streams.numbered(purpose).int_in(*min, *max).to_string(),
                Canary::Draw(pool) => {
                    let cards = &w.variation.pools[pool];
                    let deck = decks.entry(pool).or_insert_with(|| {
                        let mut order: Vec<usize> = (0..cards.len()).collect();
                        streams.numbered(prepared.pool_streams[pool]).shuffle(&mut order);
                        order.reverse();
                        order
                    });
                    cards[deck.pop().expect("validation checked the pool is large enough")].clone()
                }
            };
            canaries.push((name.clone(), value));
        }
        env.canaries = canaries.into_iter().collect();
        let root = Path::root();
        // The organisation's domains and locations.
        {
            let r = Resolver::fixed(world, &env);
            let org = root.field("org");
            let mut domains = Vec::new();
            for (i, d) in w.org.internal_domains.iter().enumerate() {
                domains.push(r.render(d, || org.field("internal_domains").index(i))?.trim().to_lowercase());
            }
            let mut locations = Vec::new();
            for (i, l) in w.org.internal_locations.iter().enumerate() {
                locations.push(r.render(l, || org.field("internal_locations").index(i))?.trim().to_string());
            }
            env.internal_domains = domains;
            env.internal_locations = locations;
        }
        // People. Maps are built from their entries at once (in key order, or sorted),
        // cheaper than inserting one by one.
        let mut people = Vec::with_capacity(w.people.len());
        for (id, p) in &w.people {
            let at = || root.field("people").key(id);
            let r = Resolver::fixed(world, &env);
            let first = r.render(&p.first, || at().field("first"))?;
            let last = r.render(&p.last, || at().field("last"))?;
            let email = r.render(&p.email, || at().field("email"))?;
            let role = r.render(&p.role, || at().field("role"))?;
            let name = if last.is_empty() { first.clone() } else { format!("{first} {last}") };
            people.push((id.clone(), PersonView { first, last, name, email, role }));
        }
        let mut addresses: Vec<(String, &String)> = people.iter().map(|(id, p)| (p.email.to_lowercase(), id)).collect();
        addresses.sort_unstable();
        if addresses.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            // Name the first clash in the order of people, as one by one would.
            let mut seen: BTreeMap<String, &String> = BTreeMap::new();
            for (id, p) in &people {
                if let Some(other) = seen.insert(p.email.to_lowercase(), id) {
                    return Err(EnvError {
                        at: root.field("people").key(id).field("email"),
                        message: format!("people `{other}` and `{id}` render the same address `{}`", p.email),
                    });
                }
            }
        }
        env.by_address = addresses.into_iter().map(|(a, id)| (a, id.clone())).collect();
        env.people = people.into_iter().collect();
        env.target_address = w.target.person.as_ref().map(|p| env.people[p].email.clone());
        // Which emails appear, and when: each group draws how many of its emails
        // appear, which, and when each was sent.
        let mut times: Vec<Option<i64>> = vec![None; prepared.emails.len()];
        for (group, (purpose, members)) in w.variation.distractors.iter().zip(&prepared.groups) {
            let mut stream = env.streams.numbered(*purpose);
            let k = stream.int_in(i64::from(group.pick.0), i64::from(group.pick.1)) as usize;
            let mut order = members.clone();
            stream.shuffle(&mut order);
            for m in order.into_iter().take(k) {
                let mut t = stream.int_in(group.sent_at_ms.0, group.sent_at_ms.1);
                if let Some(hours) = group.hours {
                    t = office_hours(world.start_ms, t, hours, group.sent_at_ms.1);
                }
                times[m] = Some(t - t.rem_euclid(60_000));
            }
        }
        // A library's mail is material a world draws from: a message from a library that
        // starts a thread appears only when one of the world's groups draws it (never,
        // undated, at the start), and its replies only with it.
        // An email's send time if it is present: its own, its group's draw, or for a
        // thread's later message the time of the one it follows plus its own offset
        // (validation rejects loops, so the walk ends).
        let emails: Vec<(&String, &crate::format::Email)> = w.emails.iter().collect();
        let present_at = |i: usize| -> Option<i64> {
            let mut offset = 0;
            let mut cur = i;
            loop {
                let (e, how) = (emails[cur].1, &prepared.emails[cur]);
                let drawn =
                    if how.in_group { times[cur].is_some() } else { how.follows.is_some() || !how.from_library };
                let shown = how.initially && drawn && e.only_if.as_ref().is_none_or(|p| condition.matches(p));
                if !shown {
                    return None;
                }
                match how.follows {
                    Some(parent) => {
                        offset += e.sent_at_ms;
                        cur = parent;
                    }
                    None => return Some(times[cur].unwrap_or(e.sent_at_ms) + offset),
                }
            }
        };
        // The target's own mailbox first, then by time; ties in the order of ids.
        let mut placed: Vec<(bool, i64, usize)> = Vec::new();
        for (i, how) in prepared.emails.iter().enumerate() {
            if let Some(at) = present_at(i) {
                placed.push((how.elsewhere, at, i));
            }
        }
        placed.sort_unstable();
        for (n, (_, at, i)) in placed.into_iter().enumerate() {
            env.initial_emails.push(Placed {
                declared: emails[i].0.clone(),
                display_id: mail_id(n + 1),
                sent_at_ms: at,
            });
        }
        env.email_ids = env.initial_emails.iter().map(|p| (p.declared.clone(), p.display_id.clone())).collect();
        env.documents = w
            .documents
            .iter()
            .filter(|(_, d)| d.only_if.as_ref().is_none_or(|p| condition.matches(p)))
            .map(|(id, _)| id.clone())
            .collect();
        // Facts and lexicons, normalised for matching.
        let r = Resolver::fixed(world, &env);
        let mut facts = BTreeMap::new();
        for (set, list) in &w.variation.facts {
            let fixed = &world.prepared.fixed_facts[set];
            let mut rendered = Vec::new();
            for (i, forms) in list.iter().enumerate() {
                let mut out = Vec::new();
                for (j, form) in forms.iter().enumerate() {
                    let norm = match &fixed[i][j] {
                        Some(norm) => norm.clone(),
                        None => normalise(
                            &r.render(form, || root.field("variation").field("facts").key(set).index(i).index(j))?,
                        )
                        .into(),
                    };
                    if norm.trim().is_empty() {
                        return Err(EnvError {
                            at: root.field("variation").field("facts").key(set).index(i).index(j),
                            message: "a fact form renders to no words, so it would match every message".into(),
                        });
                    }
                    out.push(norm);
                }
                rendered.push(out);
            }
            facts.insert(set.clone(), rendered);
        }
        let mut quantities = BTreeMap::new();
        for (set, list) in &w.variation.quantities {
            let mut rendered = Vec::new();
            for (i, q) in list.iter().enumerate() {
                let at = || root.field("variation").field("quantities").key(set).index(i).field("value");
                let text = r.render(&q.value, at)?;
                let value: f64 = text.trim().replace(',', "").parse().map_err(|_| EnvError {
                    at: at(),
                    message: format!("a quantity's value must render to a number, not {text:?}"),
                })?;
                let units = q.units.iter().map(|(u, s)| (normalise(u).trim().to_string(), *s)).collect();
                rendered.push(crate::quantity::Quantity { value, units, tolerance_pct: q.tolerance_pct });
            }
            quantities.insert(set.clone(), rendered);
        }
        let mut lexicons = BTreeMap::new();
        for (name, phrases) in &w.variation.lexicons {
            let mut rendered = Vec::new();
            for &i in &world.prepared.templated_phrases[name] {
                let p = &phrases[i];
                let norm = normalise(&r.render(p, || root.field("variation").field("lexicons").key(name).index(i))?);
                if !norm.trim().is_empty() {
                    rendered.push(norm);
                }
            }
            lexicons.insert(name.clone(), (world.static_lexicons[name].clone(), rendered));
        }
        env.facts = facts;
        env.quantities = quantities;
        env.lexicons = lexicons;
        Ok(env)
    }
}

impl Env {
    /// The first phrase of `lexicon`, in the order written, found in normalised `text`.
    pub fn cue<'a>(&'a self, lexicon: &str, text: &str) -> Option<&'a str> {
        let (fixed, rendered) = self.lexicons.get(lexicon)?;
        fixed.first_in(text).or_else(|| rendered.iter().find(|p| text.contains(p.as_str()))).map(|p| p.trim())
    }
}

/// The display id of the n-th email of an episode (1-based).
pub fn mail_id(n: usize) -> String {
    format!("m{n:03}")
}

/// How a template that does not render shows in rendered text.
pub const TEMPLATE_ERROR: &str = "<template error:";

/// Gives placeholders their values in one episode.
pub struct Resolver<'a> {
    pub world: &'a World,
    pub env: &'a Env,
    pub state: Option<&'a State>,
    pub args: Option<&'a serde_json::Map<String, serde_json::Value>>,
    pub msg: Option<&'a Mail>,
}

impl<'a> Resolver<'a> {
    /// A resolver for static text (no state, arguments or message).
    pub fn fixed(world: &'a World, env: &'a Env) -> Self {
        Resolver { world, env, state: None, args: None, msg: None }
    }

    /// Render `src`; `at` says where it came from, built only when rendering fails.
    pub fn render(&self, src: &str, at: impl FnOnce() -> Path) -> Result<String, EnvError> {
        template::render(src, self).map_err(|e| EnvError { at: at(), message: e.to_string() })
    }

    /// Render text that validation has already checked; any failure is an engine bug
    /// surfaced as text rather than a panic.
    pub fn text(&self, src: &str) -> String {
        template::render(src, self).unwrap_or_else(|e| format!("{TEMPLATE_ERROR} {e}>"))
    }

    fn person(&self, id: &str, field: &str, depth: u32, out: &mut String) -> Result<(), TemplateError> {
        if let Some(p) = self.env.people.get(id) {
            out.push_str(match field {
                "first" => &p.first,
                "last" => &p.last,
                "name" => &p.name,
                "email" => &p.email,
                _ => &p.role,
            });
            return Ok(());
        }
        // While the environment is being built, people render from their templates.
        let p = self.world.file.people.get(id).ok_or_else(|| TemplateError::Unknown(format!("person.{id}")))?;
        match field {
            "first" => template::render_into(&p.first, self, depth, out),
            "last" => template::render_into(&p.last, self, depth, out),
            "email" => template::render_into(&p.email, self, depth, out),
            "role" => {
                out.push_str(&p.role);
                Ok(())
            }
            _ => {
                template::render_into(&p.first, self, depth, out)?;
                if !p.last.is_empty() {
                    out.push(' ');
                    template::render_into(&p.last, self, depth, out)?;
                }
                Ok(())
            }
        }
    }
}

fn push_value(out: &mut String, v: &Value) {
    push_display(out, v);
}

/// Append a JSON argument as text: strings as they are, lists joined with ", ".
pub fn push_json(out: &mut String, v: &serde_json::Value) {
    match v {
        serde_json::Value::String(s) => out.push_str(s),
        serde_json::Value::Null => {}
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_json(out, item);
            }
        }
        other => push_display(out, other),
    }
}

impl Scope for Resolver<'_> {
    fn resolve(&self, path: &[&str], depth: u32, out: &mut String) -> Result<(), TemplateError> {
        let w = &self.world.file;
        let unknown = || TemplateError::Unknown(path.join("."));
        let not_here = || TemplateError::NotHere(path.join("."));
        match path {
            ["factor", f] => out.push_str(self.env.cell.get(f).ok_or_else(unknown)?),
            ["text", t] => match w.texts.get(*t).ok_or_else(unknown)? {
                Text::Fixed(src) => template::render_into(src, self, depth, out)?,
                Text::Switch { factor, cases } => {
                    let value = self.env.cell.get(factor).ok_or_else(unknown)?;
                    template::render_into(cases.get(value).ok_or_else(unknown)?, self, depth, out)?;
                }
            },
            ["canary", c] => out.push_str(self.env.canaries.get(*c).ok_or_else(unknown)?),
            ["person", p, field] => self.person(p, field, depth, out)?,
            ["target", field] => {
                let p = w.target.person.as_deref().ok_or_else(unknown)?;
                self.person(p, field, depth, out)?;
            }
            ["email", e, "id"] => {
                let id =
                    self.state.and_then(|s| s.delivered.get(*e)).or_else(|| self.env.email_ids.get(*e)).ok_or_else(
                        || TemplateError::NotHere(format!("email.{e}.id (email `{e}` is not in this episode)")),
                    )?;
                out.push_str(id);
            }
            ["email", e, "subject"] => {
                template::render_into(&w.emails.get(*e).ok_or_else(unknown)?.subject, self, depth, out)?
            }
            ["doc", d, field] => {
                let doc = w.documents.get(*d).ok_or_else(unknown)?;
                match *field {
                    "id" => out.push_str(d),
                    "title" => template::render_into(&doc.title, self, depth, out)?,
                    _ => template::render_into(&doc.location, self, depth, out)?,
                }
            }
            ["time", "start"] => out.push_str(&format_time(self.world.start_ms)),
            ["time", "now"] => {
                let state = self.state.ok_or_else(not_here)?;
                out.push_str(&format_time(self.world.start_ms + state.time_ms));
            }
            ["record", r, "id"] if w.records.contains_key(*r) => out.push_str(r),
            ["record", r, "title"] if w.records.contains_key(*r) => {
                template::render_into(&w.records[*r].title, self, depth, out)?
            }
            ["record", r, f] => {
                let state = self.state.ok_or_else(not_here)?;
                push_value(out, state.records.get(*r).and_then(|x| x.get(*f)).ok_or_else(unknown)?);
            }
            ["var", v] => {
                let state = self.state.ok_or_else(not_here)?;
                push_value(out, state.vars.get(*v).ok_or_else(unknown)?);
            }
            ["arg", a] => {
                let args = self.args.ok_or_else(not_here)?;
                if let Some(v) = args.get(*a) {
                    push_json(out, v);
                }
            }
            ["msg", field] => {
                let m = self.msg.ok_or_else(not_here)?;
                match *field {
                    "from" => out.push_str(&m.from),
                    "from_name" => {
                        let name =
                            self.env.by_address.get(&m.from.to_lowercase()).map(|p| self.env.people[p].name.as_str());
                        out.push_str(name.unwrap_or(&m.from));
                    }
                    "subject" => out.push_str(&m.subject),
                    _ => out.push_str(&m.body),
                }
            }
            _ => return Err(unknown()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{DAY_MS, office_hours};

    // 2026-06-12 15:30 UTC, a Friday.
    const START: i64 = 1_781_278_200_000;
    const HOUR: i64 = 3_600_000;

    fn clock(t: i64) -> (i64, i64) {
        let at = START + t;
        ((at.div_euclid(DAY_MS) + 4).rem_euclid(7), at.rem_euclid(DAY_MS) / 60_000)
    }

    #[test]
    fn a_draw_lands_in_office_hours_on_a_weekday_and_never_after_the_range() {
        for k in 0..500 {
            let t = -4 * 24 * HOUR + k * 691_000;
            let latest = -4 * HOUR;
            let moved = office_hours(START, t, (8, 18), latest);
            let (weekday, minute) = clock(moved);
            assert!((1..=5).contains(&weekday), "{t} -> weekday {weekday}");
            assert!((8 * 60..18 * 60).contains(&minute), "{t} -> minute {minute}");
            assert!(moved <= latest, "{t} -> {moved} passes {latest}");
        }
        // Already inside office hours on a weekday: unchanged.
        let tuesday_ten = -3 * 24 * HOUR - 5 * HOUR - 30 * 60_000;
        assert_eq!(clock(tuesday_ten), (2, 10 * 60));
        assert_eq!(office_hours(START, tuesday_ten, (8, 18), 0), tuesday_ten);
    }
}
