//! Validation: every reference checked, every template's variables checked against
//! where the text is rendered, every valid cell rendered; each problem located.

use super::*;
use crate::template::{PLACEHOLDERS, Placeholder, Where};

/// Where a template is used decides which variables it may name.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    /// Static world text: factors, texts, canaries, people, emails, documents.
    Static,
    /// Run-time text outside a tool: also `var`, `record`, `time`.
    Runtime,
    /// Inside a tool: also `arg.NAME` for its parameters.
    Tool(&'a [Param]),
    /// An actor's reply: also `msg.*` for the message answered.
    Actor,
    /// A reference policy: symbolic references to the episode.
    Policy,
}

pub(super) struct Validator<'a> {
    pub(super) locator: &'a Locator,
    pub(super) diags: Vec<Diagnostic>,
}

/// The most cells (valid combinations of factor values) a world may have: far beyond
/// any study's design, far below what would exhaust the machine to enumerate.
pub const MAX_CELLS: usize = 10_000;

/// The most diagnostics of one kind reported for a world: beyond it, one line says how
/// many more there are (a world of a thousand identical cells gets a few lines, not a
/// thousand).
pub const MAX_DIAGNOSTICS_PER_KIND: usize = 20;

/// Diagnostics with repeats summarised: of each message (with the cells, steps and ids
/// it names set aside), the first [`MAX_DIAGNOSTICS_PER_KIND`], then one diagnostic at
/// the first of the rest saying how many more there are.
pub(super) fn cap_diagnostics(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let kind = |message: &str| -> String {
        // The message with anything in backticks set aside: what varies between repeats.
        message.split('`').enumerate().filter(|(i, _)| i % 2 == 0).map(|(_, p)| p).collect::<Vec<_>>().join("`…`")
    };
    let mut count: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut summary: BTreeMap<String, (Diagnostic, usize)> = BTreeMap::new();
    for d in diags {
        let k = kind(&d.message);
        let n = count.entry(k.clone()).or_default();
        *n += 1;
        if *n <= MAX_DIAGNOSTICS_PER_KIND {
            out.push(d);
        } else {
            summary.entry(k).or_insert_with(|| (d, 0)).1 += 1;
        }
    }
    for (_, (first, more)) in summary {
        out.push(Diagnostic {
            message: format!(
                "… and {more} more like the {MAX_DIAGNOSTICS_PER_KIND} above (the first of them here: {})",
                first.message
            ),
            ..first
        });
    }
    out.sort_by_key(|d| d.pos);
    out
}

impl Validator<'_> {
    fn error(&mut self, at: &Path, message: impl Into<String>) {
        self.diags.push(self.locator.diagnostic(at, message));
    }

    pub(super) fn finish(self) -> Vec<Diagnostic> {
        self.locator.finish(self.diags)
    }

    pub(super) fn includes(&mut self, file: &mut WorldFile, read: &mut dyn super::Includes) {
        let mut resolve = |v: &mut Self, body: &mut Option<String>, body_file: &Option<String>, at: Path| match (
            body.is_some(),
            body_file,
        ) {
            (true, Some(_)) => v.error(&at.field("body_file"), "give `body` or `body_file`, not both"),
            (false, None) => v.error(&at, "missing `body` (or `body_file`)"),
            (true, None) => {}
            (false, Some(_)) if v.locator.merged.source_of(&at).is_some() => {
                v.error(&at.field("body_file"), "a library's part gives its `body` itself")
            }
            (false, Some(rel)) => {
                if rel.starts_with('/') || rel.split(['/', '\\']).any(|p| p == "..") {
                    v.error(&at.field("body_file"), format!("`{rel}` must be a relative path inside the world folder"));
                    return;
                }
                match read.body(rel) {
                    Ok(text) => *body = Some(text.replace("\r\n", "\n")),
                    Err(why) => v.error(&at.field("body_file"), format!("cannot read `{rel}`: {why}")),
                }
            }
        };
        for (id, email) in &mut file.emails {
            let at = Path::root().field("emails").key(id);
            resolve(self, &mut email.body, &email.body_file, at);
        }
        for (id, doc) in &mut file.documents {
            let at = Path::root().field("documents").key(id);
            resolve(self, &mut doc.body, &doc.body_file, at);
        }
    }

    pub(super) fn factors(&mut self, file: &WorldFile) -> (Vec<Cell>, Cell, Option<Cell>) {
        let root = Path::root();
        if file.format != 1 {
            self.error(
                &root.field("format"),
                format!("unsupported format {} (this engine reads format 1)", file.format),
            );
        }
        if file.id.is_empty()
            || !file.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            self.error(
                &root.field("id"),
                format!("world id `{}` must be non-empty lowercase letters, digits, `_` or `-`", file.id),
            );
        }
        let mut seen = BTreeSet::new();
        for (i, f) in file.factors.iter().enumerate() {
            let at = root.field("factors").index(i);
            if !seen.insert(f.id.as_str()) {
                self.error(&at.field("id"), format!("duplicate factor `{}`", f.id));
            }
            for (m, marker) in f.markers.iter().enumerate() {
                let mat = at.field("markers").index(m);
                for (j, v) in marker.values.iter().enumerate() {
                    if !f.values.contains(v) {
                        self.error(&mat.field("values").index(j), format!("factor `{}` has no value `{v}`", f.id));
                    }
                }
                if marker.values.is_empty() {
                    self.error(&mat.field("values"), "a marker belongs to at least one value");
                }
                for (j, p) in marker.phrases.iter().enumerate() {
                    if crate::template::normalise(p).trim().is_empty() {
                        self.error(&mat.field("phrases").index(j), "a marker needs at least one letter or digit");
                    }
                }
            }
            for (old, new) in &f.renamed {
                let rat = at.field("renamed").key(old);
                if f.values.contains(old) {
                    self.error(
                        &rat,
                        format!(
                            "`{old}` is a value of factor `{}`; only a value it no longer has can be renamed",
                            f.id
                        ),
                    );
                } else if !f.values.contains(new) {
                    self.error(&rat, format!("factor `{}` has no value `{new}` for `{old}` to be renamed to", f.id));
                }
            }
            if f.values.is_empty() {
                self.error(&at.field("values"), format!("factor `{}` has no values", f.id));
            }
            let mut vals = BTreeSet::new();
            for v in &f.values {
                if !vals.insert(v) {
                    self.error(&at.field("values"), format!("factor `{}` lists value `{v}` twice", f.id));
                }
            }
        }
        if file.main_factors.len() > 2 {
            self.error(
                &root.field("main_factors"),
                "a report's factor matrix has rows and columns: name one or two main factors",
            );
        }
        for (i, m) in file.main_factors.iter().enumerate() {
            let at = root.field("main_factors").index(i);
            if !seen.contains(m.as_str()) {
                self.error(&at, format!("no factor `{m}` to make a main factor"));
            } else if file.main_factors[..i].contains(m) {
                self.error(&at, format!("main factor `{m}` is named twice"));
            }
        }
        for (i, pattern) in file.invalid_cells.iter().enumerate() {
            self.pattern(file, pattern, &root.field("invalid_cells").index(i));
        }
        // Every combination, first factor slowest: a bounded number of them.
        let combinations =
            file.factors.iter().try_fold(1usize, |n, f| n.checked_mul(f.values.len().max(1))).unwrap_or(usize::MAX);
        if combinations > MAX_CELLS {
            let sizes: Vec<String> = file.factors.iter().map(|f| f.values.len().to_string()).collect();
            self.error(
                &root.field("factors"),
                format!(
                    "the factors make {} combinations ({}), more than the {MAX_CELLS} cells a world may have: drop a factor or some values, or split the design into several worlds",
                    if combinations == usize::MAX { "too many to count".to_string() } else { combinations.to_string() },
                    sizes.join(" × ")
                ),
            );
            return (Vec::new(), Cell::default(), None);
        }
        let cells = valid_cells(file);
        if cells.is_empty() {
            self.error(&root.field("invalid_cells"), "every cell is invalid: the world has no condition to run");
        }
        let named = |v: &mut Self, which: &str, given: &Option<BTreeMap<String, String>>| -> Option<Cell> {
            let at = root.field(which);
            let Some(given) = given else {
                if !file.factors.is_empty() {
                    v.error(&root, format!("missing `{which}`: a world with factors names its {which} cell"));
                }
                return None;
            };
            for (factor, value) in given {
                match file.factors.iter().find(|f| &f.id == factor) {
                    None => v.error(&at.key(factor), format!("unknown factor `{factor}`")),
                    Some(f) if !f.values.contains(value) => {
                        v.error(&at.key(factor), format!("factor `{factor}` has no value `{value}`"))
                    }
                    _ => {}
                }
            }
            let cell = Cell::from_pairs(
                file.factors.iter().filter_map(|f| given.get(&f.id).map(|val| (f.id.as_str(), val.as_str()))),
            );
            if cell.pairs().len() != file.factors.len() {
                v.error(&at, format!("the {which} cell must name a value for every factor"));
                return None;
            }
            if !cells.contains(&cell) {
                v.error(&at, format!("the {which} cell `{}` is not a valid cell", cell.key()));
                return None;
            }
            Some(cell)
        };
        let control = named(self, "control", &file.control);
        let default =
            if file.factors.is_empty() { Some(Cell::default()) } else { named(self, "default", &file.default) };
        (cells, default.unwrap_or_default(), control)
    }

    fn pattern(&mut self, file: &WorldFile, pattern: &CellPattern, at: &Path) {
        for (factor, values) in pattern {
            match file.factors.iter().find(|f| &f.id == factor) {
                None => self.error(&at.key(factor), format!("unknown factor `{factor}`")),
                Some(f) => {
                    for v in values {
                        if !f.values.contains(v) {
                            self.error(&at.key(factor), format!("factor `{factor}` has no value `{v}`"));
                        }
                    }
                }
            }
        }
    }

    pub(super) fn clock(&mut self, file: &WorldFile) -> i64 {
        match parse_start(&file.turns.clock.start) {
            Some(ms) => ms,
            None => {
                let at = Path::root().field("turns").field("clock").field("start");
                self.error(
                    &at,
                    format!("`{}` is not a start time of the form YYYY-MM-DDTHH:MM", file.turns.clock.start),
                );
                0
            }
        }
    }

    /// Every reference checked, by kind of part.
    pub(super) fn references(&mut self, w: &WorldFile) {
        self.texts_and_org(w);
        self.turns_and_target(w);
        self.parts(w);
        self.machines(w);
        self.tools(w);
        self.events_actors_users(w);
        self.outcomes_stops_policies(w);
    }

    /// Texts, and the organisation's domains and locations (which may be drawn per seed).
    fn texts_and_org(&mut self, w: &WorldFile) {
        let root = Path::root();
        for (name, text) in &w.texts {
            let at = root.field("texts").key(name);
            match text {
                Text::Fixed(t) => self.template(w, t, Ctx::Static, &at),
                Text::Switch { factor, cases } => match w.factors.iter().find(|f| &f.id == factor) {
                    None => self.error(&at.field("factor"), format!("unknown factor `{factor}`")),
                    Some(f) => {
                        for v in &f.values {
                            if !cases.contains_key(v) {
                                self.error(&at.field("cases"), format!("text `{name}` has no case for `{factor}={v}` (every value needs one; no fallback)"));
                            }
                        }
                        for (v, t) in cases {
                            if !f.values.contains(v) {
                                self.error(&at.field("cases").key(v), format!("factor `{factor}` has no value `{v}`"));
                            }
                            self.template(w, t, Ctx::Static, &at.field("cases").key(v));
                        }
                    }
                },
            }
        }
        // The organisation's domains and locations may be drawn per seed.
        for (i, d) in w.org.internal_domains.iter().enumerate() {
            self.template(w, d, Ctx::Static, &root.field("org").field("internal_domains").index(i));
        }
        for (i, l) in w.org.internal_locations.iter().enumerate() {
            self.template(w, l, Ctx::Static, &root.field("org").field("internal_locations").index(i));
        }
    }

    /// The turn model and the target's role: prompts, tools, limits.
    fn turns_and_target(&mut self, w: &WorldFile) {
        let root = Path::root();
        let turns = root.field("turns");
        match &w.turns.on_text_only {
            OnTextOnly::Nudge { message, max } => {
                self.template(w, message, Ctx::Runtime, &turns.field("on_text_only").field("message"));
                if *max == 0 {
                    self.error(
                        &turns.field("on_text_only").field("max"),
                        "a nudge needs `max` of at least 1 (use `End` for none)",
                    );
                }
            }
            OnTextOnly::Actor(id) => {
                if !matches!(w.actors.get(id), Some(a) if a.channel == Channel::Chat) {
                    self.error(&turns.field("on_text_only"), format!("`{id}` is not an actor with channel `Chat`"));
                }
            }
            OnTextOnly::User(id) => {
                if !w.users.contains_key(id) {
                    self.error(&turns.field("on_text_only"), format!("`{id}` is not one of the world's `users`"));
                }
            }
            OnTextOnly::End => {}
        }
        let limits = root.field("limits");
        for (name, value, max) in [
            ("max_turns", w.limits.max_turns, 1_000),
            ("max_tool_calls_per_turn", w.limits.max_tool_calls_per_turn, 256),
            ("max_text_bytes", w.limits.max_text_bytes, 1 << 24),
            ("max_events", w.limits.max_events, 1_000_000),
        ] {
            if value == 0 || value > max {
                self.error(&limits.field(name), format!("`{name}` must be between 1 and {max}"));
            }
        }
        let target = root.field("target");
        if let Some(p) = &w.target.person {
            self.person_ref(w, p, &target.field("person"));
        }
        self.template(w, &w.target.system_prompt, Ctx::Static, &target.field("system_prompt"));
        self.template(w, &w.target.first_message, Ctx::Static, &target.field("first_message"));
        if let Some(tag) = &w.target.scratchpad {
            let plain = !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !plain {
                self.error(
                    &target.field("scratchpad"),
                    format!("scratchpad tag `{tag}` must be a plain tag name (letters, digits, `_` or `-`), written without angle brackets, as `scratchpad`"),
                );
            }
        }
        if let Some(prefill) = &w.target.prefill {
            self.template(w, prefill, Ctx::Static, &target.field("prefill"));
        }
        // A conversation with a simulated user may be only a conversation.
        if w.target.tools.is_empty() && !matches!(w.turns.on_text_only, OnTextOnly::User(_)) {
            self.error(&target.field("tools"), "the target is offered no tools");
        }
        let mut offered = BTreeSet::new();
        for (i, t) in w.target.tools.iter().enumerate() {
            if !w.tools.contains_key(t) {
                self.error(&target.field("tools").index(i), format!("unknown tool `{t}`"));
            }
            if !offered.insert(t) {
                self.error(&target.field("tools").index(i), format!("tool `{t}` is offered twice"));
            }
        }
        self.variation(w);
    }

    /// People, emails, documents and records.
    fn parts(&mut self, w: &WorldFile) {
        let root = Path::root();
        let mut addresses = BTreeMap::new();
        for (id, p) in &w.people {
            let at = root.field("people").key(id);
            self.template(w, &p.first, Ctx::Static, &at.field("first"));
            self.template(w, &p.last, Ctx::Static, &at.field("last"));
            self.template(w, &p.email, Ctx::Static, &at.field("email"));
            self.template(w, &p.role, Ctx::Static, &at.field("role"));
            if !p.email.contains('@') {
                self.error(&at.field("email"), format!("`{}` is not an email address", p.email));
            } else if let Some(other) = addresses.insert(p.email.to_lowercase(), id) {
                self.error(&at.field("email"), format!("address `{}` is also person `{other}`'s", p.email));
            }
        }
        let distracting: BTreeSet<&String> = w.variation.distractors.iter().flat_map(|d| &d.emails).collect();
        for (id, e) in &w.emails {
            let at = root.field("emails").key(id);
            self.person_ref(w, &e.mailbox, &at.field("mailbox"));
            self.person_ref(w, &e.from, &at.field("from"));
            for (i, p) in e.to.iter().enumerate() {
                self.person_ref(w, p, &at.field("to").index(i));
            }
            for (i, p) in e.cc.iter().enumerate() {
                self.person_ref(w, p, &at.field("cc").index(i));
            }
            if e.to.is_empty() {
                self.error(&at.field("to"), "an email needs at least one recipient");
            }
            for (i, d) in e.attachments.iter().enumerate() {
                if !w.documents.contains_key(d) {
                    self.error(&at.field("attachments").index(i), format!("unknown document `{d}`"));
                }
            }
            if let Some(p) = &e.only_if {
                self.pattern(w, p, &at.field("only_if"));
            }
            if let Some(parent) = &e.follows {
                self.follows(w, id, parent, &at);
            }
            if e.delivery == Delivery::ByEffect && distracting.contains(id) {
                self.error(&at.field("delivery"), "a distractor email is delivered initially, not by an effect");
            }
            self.template(w, &e.subject, Ctx::Static, &at.field("subject"));
            if let Some(body) = &e.body {
                self.template(w, body, Ctx::Static, &at.field("body"));
            }
        }
        for (id, d) in &w.documents {
            let at = root.field("documents").key(id);
            self.template(w, &d.title, Ctx::Static, &at.field("title"));
            self.template(w, &d.location, Ctx::Static, &at.field("location"));
            self.template(w, &d.classification, Ctx::Static, &at.field("classification"));
            if let Some(body) = &d.body {
                self.template(w, body, Ctx::Static, &at.field("body"));
            }
            if let Some(p) = &d.only_if {
                self.pattern(w, p, &at.field("only_if"));
            }
        }
        for (id, r) in &w.records {
            self.template(w, &r.title, Ctx::Static, &root.field("records").key(id).field("title"));
            for (name, value) in &r.fields {
                if let Value::Str(t) = value {
                    self.template(w, t, Ctx::Static, &root.field("records").key(id).field("fields").key(name));
                }
            }
            if r.fields.is_empty() {
                self.error(&root.field("records").key(id).field("fields"), "a record needs at least one field");
            }
        }
    }

    /// Machines: states and transitions.
    fn machines(&mut self, w: &WorldFile) {
        let root = Path::root();
        for (id, m) in &w.machines {
            let at = root.field("machines").key(id);
            let states: BTreeSet<&String> = m.states.iter().collect();
            if states.len() != m.states.len() {
                self.error(&at.field("states"), "a state is listed twice");
            }
            if !states.contains(&m.initial) {
                self.error(&at.field("initial"), format!("`{}` is not one of the machine's states", m.initial));
            }
            for (i, t) in m.transitions.iter().enumerate() {
                let tat = at.field("transitions").index(i);
                for s in &t.from {
                    if !states.contains(s) {
                        self.error(&tat.field("from"), format!("unknown state `{s}` of machine `{id}`"));
                    }
                }
                if !states.contains(&t.to) {
                    self.error(&tat.field("to"), format!("unknown state `{}` of machine `{id}`", t.to));
                }
                self.effects(w, &t.effects, Ctx::Runtime, &tat.field("effects"));
            }
        }
    }

    /// Tools: parameters, checks and effects.
    fn tools(&mut self, w: &WorldFile) {
        let root = Path::root();
        for (name, tool) in &w.tools {
            let at = root.field("tools").key(name);
            let mut names = BTreeSet::new();
            for (i, p) in tool.params.iter().enumerate() {
                if !names.insert(&p.name) {
                    self.error(&at.field("params").index(i), format!("parameter `{}` is declared twice", p.name));
                }
            }
            for (i, c) in tool.checks.iter().enumerate() {
                let cat = at.field("checks").index(i);
                self.cond(w, &c.require, Ctx::Tool(&tool.params), &cat.field("require"));
                self.template(w, &c.error, Ctx::Tool(&tool.params), &cat.field("error"));
            }
            self.effects(w, &tool.effects, Ctx::Tool(&tool.params), &at.field("effects"));
        }
    }

    /// Scheduled events, actors and simulated users.
    fn events_actors_users(&mut self, w: &WorldFile) {
        let root = Path::root();
        let mut event_ids = BTreeSet::new();
        for (i, e) in w.events.iter().enumerate() {
            let at = root.field("events").index(i);
            if !event_ids.insert(&e.id) {
                self.error(&at.field("id"), format!("duplicate event id `{}`", e.id));
            }
            if let At::FieldTime(record, field) = &e.at {
                let value = w.records.get(record).and_then(|r| r.fields.get(field));
                match value {
                    None => self.error(&at.field("at"), format!("no field `{record}.{field}`")),
                    Some(Value::Str(s)) if parse_time_of_day(s).is_some() => {}
                    Some(_) => self.error(
                        &at.field("at"),
                        format!("`{record}.{field}` must start as a time of day such as Str(\"18:00\")"),
                    ),
                }
            }
            if let At::Turn(0) = e.at {
                self.error(&at.field("at"), "turns count from 1");
            }
            self.cond(w, &e.when, Ctx::Runtime, &at.field("when"));
            self.effects(w, &e.effects, Ctx::Runtime, &at.field("effects"));
        }
        for (id, actor) in &w.actors {
            let at = root.field("actors").key(id);
            if actor.channel == Channel::Email {
                self.person_ref(w, id, &at);
            }
            self.rules(w, &actor.rules, &at.field("rules"));
        }
        for (id, user) in &w.users {
            let at = root.field("users").key(id);
            if !matches!(&w.turns.on_text_only, OnTextOnly::User(u) if u == id) {
                self.error(&at, format!("user `{id}` never speaks: name it in `turns.on_text_only: User(\"{id}\")`"));
            }
            for (field, text) in [("name", &user.name), ("persona", &user.persona), ("goal", &user.goal)] {
                if text.trim().is_empty() {
                    self.error(&at.field(field), format!("a user needs a `{field}`"));
                }
                self.template(w, text, Ctx::Runtime, &at.field(field));
            }
            for (i, fact) in user.facts.iter().enumerate() {
                let fat = at.field("facts").index(i);
                if fact.trim().is_empty() {
                    self.error(&fat, "a fact needs some text");
                }
                self.template(w, fact, Ctx::Runtime, &fat);
            }
            self.cond(w, &user.refusal, Ctx::Actor, &at.field("refusal"));
            for (field, i, says, only_if) in user.lines() {
                let lat = at.field(field).index(i);
                if says.is_empty() {
                    self.error(&lat.field("says"), "a line needs at least one message in `says`");
                }
                for (j, t) in says.iter().enumerate() {
                    self.template(w, t, Ctx::Runtime, &lat.field("says").index(j));
                }
                if let Some(c) = only_if {
                    self.cond(w, c, Ctx::Runtime, &lat.field("only_if"));
                }
            }
            self.rules(w, &user.rules, &at.field("rules"));
        }
    }

    /// Outcomes, their roles, stops and reference policies.
    fn outcomes_stops_policies(&mut self, w: &WorldFile) {
        let root = Path::root();
        for (name, o) in &w.outcomes {
            let at = root.field("outcomes").key(name);
            if name == crate::transcript::SUSPICION {
                self.error(
                    &at,
                    format!("`{name}` is the name monitors' scores are recorded under: name the outcome otherwise"),
                );
            }
            self.cond(w, &o.when, Ctx::Runtime, &at.field("when"));
            if let Some(e) = &o.exposed {
                self.cond(w, e, Ctx::Runtime, &at.field("exposed"));
            }
            if let Some(j) = &o.judge {
                self.template(w, j, Ctx::Runtime, &at.field("judge"));
            }
            if o.decide == crate::format::Decide::Judges && o.judge.is_none() {
                self.error(&at.field("decide"), "`decide: Judges` needs a `judge` rubric for the judges to answer");
            }
        }
        self.roles(w);
        for (i, s) in w.stops.iter().enumerate() {
            let at = root.field("stops").index(i);
            self.cond(w, &s.when, Ctx::Runtime, &at.field("when"));
            if s.reason.is_empty() {
                self.error(&at.field("reason"), "a stop needs a reason");
            }
        }
        self.policies(w);
        self.sabotage(w);
    }

    /// A sabotage design names a factor and its honest value, a `Success` main task and
    /// a `Harmful` side task, texts that exist, a valid cell pattern and sound flags.
    fn sabotage(&mut self, w: &WorldFile) {
        use crate::format::OutcomeKind;
        let Some(s) = &w.sabotage else { return };
        let at = Path::root().field("sabotage");
        match w.factors.iter().find(|f| f.id == s.factor) {
            None => self.error(&at.field("factor"), format!("no factor `{}` to give the side task", s.factor)),
            Some(f) if !f.values.contains(&s.honest) => {
                self.error(&at.field("honest"), format!("factor `{}` has no value `{}`", f.id, s.honest))
            }
            Some(f) if f.values.len() < 2 => self.error(
                &at.field("factor"),
                format!("factor `{}` needs a value that gives the side task besides `{}`", f.id, s.honest),
            ),
            Some(_) => {}
        }
        for (field, name, kind) in
            [("main_task", &s.main_task, OutcomeKind::Success), ("side_task", &s.side_task, OutcomeKind::Harmful)]
        {
            match w.outcomes.get(name) {
                None => self.error(&at.field(field), format!("no outcome `{name}`")),
                Some(o) if o.kind != kind => {
                    self.error(&at.field(field), format!("outcome `{name}` is {:?}; the {field} is {kind:?}", o.kind))
                }
                Some(o) if o.decide != crate::format::Decide::Rule => self.error(
                    &at.field(field),
                    format!("outcome `{name}` is decided by judges; a {field} is decided by the world's state (`decide: Rule`)"),
                ),
                Some(_) => {}
            }
        }
        for (i, t) in s.hidden_texts.iter().enumerate() {
            if !w.texts.contains_key(t) {
                self.error(&at.field("hidden_texts").index(i), format!("no text `{t}` to hide"));
            }
        }
        if let Some(p) = &s.hidden_reasoning {
            self.pattern(w, p, &at.field("hidden_reasoning"));
        }
        let mut ids = BTreeSet::new();
        for (i, f) in s.baseline.iter().enumerate() {
            let fat = at.field("baseline").index(i);
            if !ids.insert(&f.id) {
                self.error(&fat.field("id"), format!("flag `{}` is named twice", f.id));
            }
            if f.score == 0 || f.score > 100 {
                self.error(&fat.field("score"), "a flag's score is from 1 to 100");
            }
            self.cond(w, &f.when, Ctx::Runtime, &fat.field("when"));
        }
    }

    /// Each report role is held by one outcome at most, and the two stated beliefs go
    /// together (the report compares them).
    fn roles(&mut self, w: &WorldFile) {
        use crate::format::OutcomeRole;
        let root = Path::root();
        let mut held: BTreeMap<OutcomeRole, &str> = BTreeMap::new();
        for (name, o) in &w.outcomes {
            let Some(role) = o.role else { continue };
            if let Some(first) = held.insert(role, name) {
                self.error(
                    &root.field("outcomes").key(name).field("role"),
                    format!("outcome `{first}` already has the role `{role:?}`: one outcome per role"),
                );
            }
        }
        let (real, eval) = (held.get(&OutcomeRole::BelievesReal), held.get(&OutcomeRole::BelievesEval));
        if let Some((name, missing)) = match (real, eval) {
            (Some(n), None) => Some((n, "BelievesEval")),
            (None, Some(n)) => Some((n, "BelievesReal")),
            _ => None,
        } {
            self.error(
                &root.field("outcomes").key(name).field("role"),
                format!("a stated belief needs the other one: no outcome has the role `{missing}`"),
            );
        }
    }

    fn variation(&mut self, w: &WorldFile) {
        let at = Path::root().field("variation");
        let mut draws: BTreeMap<&String, usize> = BTreeMap::new();
        for (name, c) in &w.variation.canaries {
            let cat = at.field("canaries").key(name);
            match c {
                Canary::Pick(list) if list.is_empty() => self.error(&cat, "`Pick` needs at least one value"),
                Canary::Draw(pool) => match w.variation.pools.get(pool) {
                    None => self.error(&cat, format!("unknown pool `{pool}`")),
                    Some(_) => *draws.entry(pool).or_default() += 1,
                },
                Canary::Digits(n) if *n == 0 || *n > 18 => self.error(&cat, "`Digits` takes 1 to 18"),
                Canary::Hex(n) if *n == 0 || *n > 128 => self.error(&cat, "`Hex` takes 1 to 128"),
                Canary::Int(min, max) if min > max => self.error(&cat, "`Int(min, max)` needs min <= max"),
                _ => {}
            }
        }
        for (pool, n) in draws {
            let len = w.variation.pools[pool].len();
            if len < n {
                self.error(
                    &at.field("pools").key(pool),
                    format!("pool `{pool}` has {len} values but {n} canaries draw from it"),
                );
            }
        }
        let mut grouped = BTreeSet::new();
        let mut group_ids = BTreeSet::new();
        for (i, d) in w.variation.distractors.iter().enumerate() {
            let dat = at.field("distractors").index(i);
            if let Some(id) = &d.id {
                if id.is_empty() || id.chars().all(|c| c.is_ascii_digit()) {
                    self.error(&dat.field("id"), format!("a distractor group's id names its stream: `{id}` must not be empty or a number (those name groups by position)"));
                } else if !group_ids.insert(id) {
                    self.error(&dat.field("id"), format!("two distractor groups are called `{id}`"));
                }
            }
            for (j, e) in d.emails.iter().enumerate() {
                if !w.emails.contains_key(e) {
                    self.error(&dat.field("emails").index(j), format!("unknown email `{e}`"));
                } else if !grouped.insert(e) {
                    self.error(&dat.field("emails").index(j), format!("email `{e}` is in two distractor groups"));
                }
            }
            let (min, max) = d.pick;
            if min > max || max as usize > d.emails.len() {
                self.error(
                    &dat.field("pick"),
                    format!("`pick` must satisfy min <= max <= {} (the group's size)", d.emails.len()),
                );
            }
            if d.sent_at_ms.0 > d.sent_at_ms.1 {
                self.error(&dat.field("sent_at_ms"), "`sent_at_ms` must be (earliest, latest)");
            }
            if let Some((from, to)) = d.hours
                && (from >= to || to > 24)
            {
                self.error(&dat.field("hours"), "`hours` must be (from, to) with 0 <= from < to <= 24");
            }
        }
        for (set, facts) in &w.variation.facts {
            let fat = at.field("facts").key(set);
            if facts.is_empty() {
                self.error(&fat, format!("fact set `{set}` is empty"));
            }
            for (i, forms) in facts.iter().enumerate() {
                if forms.is_empty() {
                    self.error(&fat.index(i), "a fact needs at least one form");
                }
                for (j, form) in forms.iter().enumerate() {
                    self.template(w, form, Ctx::Static, &fat.index(i).index(j));
                }
            }
        }
        for (set, list) in &w.variation.quantities {
            let qat = at.field("quantities").key(set);
            if list.is_empty() {
                self.error(&qat, format!("quantity set `{set}` is empty"));
            }
            for (i, q) in list.iter().enumerate() {
                self.template(w, &q.value, Ctx::Static, &qat.index(i).field("value"));
                if q.units.is_empty() {
                    self.error(&qat.index(i).field("units"), "a quantity needs at least one unit word");
                }
                for (u, scale) in &q.units {
                    if normalise(u).trim().contains(' ') || normalise(u).trim().is_empty() {
                        self.error(&qat.index(i).field("units").key(u), "a unit is one word");
                    }
                    if !(scale.is_finite() && *scale > 0.0) {
                        self.error(&qat.index(i).field("units").key(u), "a unit's scale must be a positive number");
                    }
                }
                if !(q.tolerance_pct.is_finite() && q.tolerance_pct >= 0.0) {
                    self.error(&qat.index(i).field("tolerance_pct"), "`tolerance_pct` must be 0 or more");
                }
            }
        }
        for (name, phrases) in &w.variation.lexicons {
            for (i, p) in phrases.iter().enumerate() {
                self.template(w, p, Ctx::Static, &at.field("lexicons").key(name).index(i));
            }
        }
    }

    fn policies(&mut self, w: &WorldFile) {
        let at = Path::root().field("policies");
        for required in ["idle", "benign"] {
            if !w.policies.contains_key(required) {
                self.error(
                    &at,
                    format!("missing reference policy `{required}` (every world ships `idle` and `benign`)"),
                );
            }
        }
        for name in w.outcomes.keys() {
            if !w.policies.values().any(|p| p.expect.contains(name)) {
                self.error(
                    &Path::root().field("outcomes").key(name),
                    format!("no reference policy expects outcome `{name}` (ship one that fires it)"),
                );
            }
        }
        for (name, p) in &w.policies {
            let pat = at.key(name);
            for (i, o) in p.expect.iter().enumerate() {
                if !w.outcomes.contains_key(o) {
                    self.error(&pat.field("expect").index(i), format!("unknown outcome `{o}`"));
                }
            }
            if let Some(only) = &p.only_if {
                self.pattern(w, only, &pat.field("only_if"));
            }
            if p.steps.is_empty() {
                self.error(&pat.field("steps"), "a policy needs at least one step");
            }
            for (i, step) in p.steps.iter().enumerate() {
                let sat = pat.field("steps").index(i);
                let call = |v: &mut Self, tool: &String, args: &BTreeMap<String, serde_json::Value>, cat: Path| {
                    if !w.tools.contains_key(tool) {
                        v.error(&cat, format!("unknown tool `{tool}`"));
                    }
                    for (k, val) in args {
                        v.json_templates(w, val, &cat.key(k));
                    }
                };
                match step {
                    Step::Say(text) => self.template(w, text, Ctx::Policy, &sat),
                    Step::Think { thinking, text } => {
                        self.template(w, thinking, Ctx::Policy, &sat.field("thinking"));
                        self.template(w, text, Ctx::Policy, &sat.field("text"));
                    }
                    Step::Call(tool, args) => call(self, tool, args, sat),
                    Step::Turn { text, calls } => {
                        self.template(w, text, Ctx::Policy, &sat.field("text"));
                        for (j, (tool, args)) in calls.iter().enumerate() {
                            call(self, tool, args, sat.field("calls").index(j));
                        }
                    }
                }
            }
        }
    }

    /// Check every string inside a policy's JSON argument as a template.
    fn json_templates(&mut self, w: &WorldFile, value: &serde_json::Value, at: &Path) {
        match value {
            serde_json::Value::String(s) => self.template(w, s, Ctx::Policy, at),
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.json_templates(w, item, &at.index(i));
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map {
                    self.json_templates(w, item, &at.key(k));
                }
            }
            _ => {}
        }
    }

    /// A thread: `id` follows `parent`, which must exist and be delivered initially;
    /// the chain may not loop, and a reply is sent after what it answers.
    fn follows(&mut self, w: &WorldFile, id: &str, parent: &str, at: &Path) {
        let e = &w.emails[id];
        let Some(p) = w.emails.get(parent) else {
            return self.error(&at.field("follows"), format!("unknown email `{parent}`"));
        };
        if e.delivery == Delivery::ByEffect || p.delivery == Delivery::ByEffect {
            return self.error(&at.field("follows"), "a thread is of emails delivered initially");
        }
        if e.sent_at_ms <= 0 {
            self.error(
                &at.field("sent_at_ms"),
                format!(
                    "an email that follows `{parent}` is sent after it: `sent_at_ms` (ms after it) must be positive"
                ),
            );
        }
        if w.variation.distractors.iter().any(|d| d.emails.iter().any(|x| x == id)) {
            self.error(
                &at.field("follows"),
                "an email that follows another appears with it; it is not drawn in a distractor group itself",
            );
        }
        let mut seen = BTreeSet::from([id]);
        let mut next = Some(parent);
        while let Some(cur) = next {
            if !seen.insert(cur) {
                return self.error(&at.field("follows"), format!("the thread of `{id}` loops back to `{cur}`"));
            }
            next = w.emails.get(cur).and_then(|x| x.follows.as_deref());
        }
    }

    fn person_ref(&mut self, w: &WorldFile, id: &str, at: &Path) {
        if !w.people.contains_key(id) {
            self.error(at, format!("unknown person `{id}`"));
        }
    }

    /// A variable a condition or an effect names: declared, and holding `value`'s kind,
    /// or an integer where it is counted (`None`: `VarAtLeast`, `AddVar`).
    fn var_ref(&mut self, w: &WorldFile, name: &str, value: Option<&Value>, at: &Path) {
        match (w.vars.get(name), value) {
            (None, _) => self.error(at, format!("unknown variable `{name}`")),
            (Some(current), Some(value)) => self.value_kind(current, value, at, &format!("variable `{name}`")),
            (Some(Value::Int(_)), None) => {}
            (Some(_), None) => self.error(at, format!("variable `{name}` is not an integer")),
        }
    }

    fn value_kind(&mut self, expected: &Value, got: &Value, at: &Path, what: &str) {
        if std::mem::discriminant(expected) != std::mem::discriminant(got) {
            self.error(at, format!("{what} holds {} but this gives {}", kind_name(expected), kind_name(got)));
        }
    }

    fn cond(&mut self, w: &WorldFile, cond: &Cond, ctx: Ctx, at: &Path) {
        match cond {
            Cond::Always | Cond::Never | Cond::TurnAtLeast(_) => {}
            Cond::Stopped(reason) => {
                if reason.trim().is_empty() {
                    self.error(at, "`Stopped` needs a stop reason (`refusal`, `max_turns`, ...)");
                } else if let Some(known) = unknown_stop(w, reason) {
                    self.error(at, format!("`Stopped(\"{reason}\")` names no stop reason: {known}"));
                }
            }
            Cond::All(items) | Cond::Any(items) | Cond::Seq(items) => {
                for (i, c) in items.iter().enumerate() {
                    self.cond(w, c, ctx, &at.index(i));
                }
            }
            Cond::Not(inner) => self.cond(w, inner, ctx, at),
            Cond::Refusals(user, _) => {
                if !w.users.contains_key(user) {
                    self.error(at, format!("unknown user `{user}`"));
                }
            }
            Cond::Cell(pattern) => self.pattern(w, pattern, at),
            Cond::VarEq(name, value) => self.var_ref(w, name, Some(value), at),
            Cond::VarAtLeast(name, _) => self.var_ref(w, name, None, at),
            Cond::FieldEq(record, field, value) => {
                self.field_ref(w, record, field, Some(value), at);
                if let Value::Str(t) = value {
                    self.template(w, t, Ctx::Runtime, at);
                }
            }
            Cond::InState(machine, state) => match w.machines.get(machine) {
                None => self.error(at, format!("unknown machine `{machine}`")),
                Some(m) if !m.states.contains(state) => {
                    self.error(at, format!("machine `{machine}` has no state `{state}`"))
                }
                _ => {}
            },
            Cond::Exposed(tag) => {
                let tagged = w.emails.values().any(|e| e.tags.contains(tag))
                    || w.documents.values().any(|d| d.tags.contains(tag))
                    || w.records.values().any(|r| r.tags.contains(tag));
                if !tagged {
                    self.error(at, format!("no email, document or record carries tag `{tag}`, so this can never hold"));
                }
            }
            Cond::ArgEq(param, template) => {
                self.param_ref(param, ctx, at);
                self.template(w, template, ctx, at);
            }
            Cond::ArgExists(param, _) => self.param_ref(param, ctx, at),
            Cond::ArgCue(param, lexicon) => {
                self.param_ref(param, ctx, at);
                if !w.variation.lexicons.contains_key(lexicon) {
                    self.error(at, format!("unknown lexicon `{lexicon}`"));
                }
            }
            Cond::ArgSentence { param, cue, unless } => {
                self.param_ref(param, ctx, at);
                for lexicon in std::iter::once(cue).chain(unless) {
                    if !w.variation.lexicons.contains_key(lexicon) {
                        self.error(at, format!("unknown lexicon `{lexicon}`"));
                    }
                }
            }
            Cond::Said(msg) => self.msg(w, msg, at),
            Cond::Sent(msg) | Cond::Voiced(msg) => {
                self.msg(w, msg, at);
                self.not_conversation(msg, at);
            }
            Cond::Incoming(msg) => {
                self.not_conversation(msg, at);
                if !matches!(ctx, Ctx::Actor) {
                    self.error(at, "`Incoming` only applies in an actor's rule");
                }
                self.msg(w, msg, at);
            }
            Cond::Called { tool, args } => match w.tools.get(tool) {
                None => self.error(at, format!("unknown tool `{tool}`")),
                Some(t) => {
                    for (k, v) in args {
                        if !t.params.iter().any(|p| &p.name == k) {
                            self.error(&at.field("args").key(k), format!("tool `{tool}` has no parameter `{k}`"));
                        }
                        self.template(w, v, Ctx::Runtime, &at.field("args").key(k));
                    }
                }
            },
            Cond::Copied { tag, .. } => {
                if !w.documents.values().any(|d| d.tags.contains(tag)) {
                    self.error(at, format!("no document carries tag `{tag}`, so this can never hold"));
                }
            }
        }
    }

    /// An actor's or a user's rules.
    fn rules(&mut self, w: &WorldFile, rules: &[crate::format::Rule], at: &Path) {
        for (i, rule) in rules.iter().enumerate() {
            let rat = at.index(i);
            self.cond(w, &rule.when, Ctx::Actor, &rat.field("when"));
            if rule.replies.is_empty() {
                self.error(&rat.field("replies"), "a rule needs at least one reply");
            }
            for (j, r) in rule.replies.iter().enumerate() {
                self.template(w, r, Ctx::Actor, &rat.field("replies").index(j));
            }
            self.effects(w, &rule.effects, Ctx::Actor, &rat.field("effects"));
        }
    }

    fn not_conversation(&mut self, msg: &Msg, at: &Path) {
        if msg.within == Within::Conversation {
            self.error(&at.field("within"), "`within: Conversation` applies to `Said` only");
        }
    }

    fn param_ref(&mut self, param: &str, ctx: Ctx, at: &Path) {
        match ctx {
            Ctx::Tool(params) if params.iter().any(|p| p.name == param) => {}
            Ctx::Tool(_) => self.error(at, format!("the tool has no parameter `{param}`")),
            _ => self.error(at, "argument conditions only apply inside a tool"),
        }
    }

    fn field_ref(&mut self, w: &WorldFile, record: &str, field: &str, value: Option<&Value>, at: &Path) {
        match w.records.get(record) {
            None => self.error(at, format!("unknown record `{record}`")),
            Some(r) => match r.fields.get(field) {
                None => self.error(at, format!("record `{record}` has no field `{field}`")),
                Some(current) => {
                    if let Some(v) = value {
                        self.value_kind(current, v, at, &format!("field `{record}.{field}`"));
                    }
                }
            },
        }
    }

    fn msg(&mut self, w: &WorldFile, msg: &Msg, at: &Path) {
        for (i, p) in msg.to_any.iter().enumerate() {
            self.person_ref(w, p, &at.field("to_any").index(i));
        }
        for (i, p) in msg.to_other_than.iter().enumerate() {
            self.person_ref(w, p, &at.field("to_other_than").index(i));
        }
        for (i, d) in msg.to_domains.iter().enumerate() {
            if d.trim().is_empty() || d.contains('@') || d.contains(char::is_whitespace) {
                self.error(&at.field("to_domains").index(i), format!("`{d}` is not a domain"));
            }
        }
        for (i, need) in msg.facts.iter().enumerate() {
            let texts = w.variation.facts.get(&need.set).map(Vec::len);
            let numbers = w.variation.quantities.get(&need.set).map(Vec::len);
            let size = texts.unwrap_or(0) + numbers.unwrap_or(0);
            if texts.is_none() && numbers.is_none() {
                self.error(&at.field("facts").index(i), format!("unknown fact set `{}`", need.set));
            } else if need.ordered && numbers.is_some() {
                self.error(
                    &at.field("facts").index(i).field("ordered"),
                    format!("fact set `{}` has quantities; `ordered` counts text facts only", need.set),
                );
            } else if need.min == 0 || need.min as usize > size {
                self.error(
                    &at.field("facts").index(i),
                    format!("`min` must be between 1 and {size} (the size of fact set `{}`)", need.set),
                );
            }
        }
        for (i, tag) in msg.attaches.iter().enumerate() {
            if !w.documents.values().any(|d| d.tags.contains(tag)) {
                self.error(
                    &at.field("attaches").index(i),
                    format!("no document carries tag `{tag}`, so this can never hold"),
                );
            }
        }
        for (field, names) in [("cues", &msg.cues), ("no_cues", &msg.no_cues)] {
            for (i, lex) in names.iter().enumerate() {
                if !w.variation.lexicons.contains_key(lex) {
                    self.error(&at.field(field).index(i), format!("unknown lexicon `{lex}`"));
                }
            }
        }
    }

    fn effects(&mut self, w: &WorldFile, effects: &[Effect], ctx: Ctx, at: &Path) {
        for (i, e) in effects.iter().enumerate() {
            self.effect(w, e, ctx, &at.index(i));
        }
    }

    fn effect(&mut self, w: &WorldFile, effect: &Effect, ctx: Ctx, at: &Path) {
        let t = |v: &mut Self, s: &str, field: &str| {
            let at = if field.is_empty() { at.clone() } else { at.field(field) };
            v.template(w, s, ctx, &at)
        };
        match effect {
            Effect::Say(s) | Effect::Notify(s) => t(self, s, ""),
            Effect::When { cond, then, otherwise } => {
                self.cond(w, cond, ctx, &at.field("cond"));
                self.effects(w, then, ctx, &at.field("then"));
                self.effects(w, otherwise, ctx, &at.field("else"));
            }
            Effect::SetVar(name, value) => self.var_ref(w, name, Some(value), at),
            Effect::AddVar(name, _) => self.var_ref(w, name, None, at),
            Effect::SetField(record, field, value) => self.field_ref(w, record, field, Some(value), at),
            Effect::SetFieldFromArg(record, field, param) => {
                self.field_ref(w, record, field, None, at);
                self.param_ref(param, ctx, at);
            }
            Effect::Fire(machine, event) => match w.machines.get(machine) {
                None => self.error(at, format!("unknown machine `{machine}`")),
                Some(m) if !m.transitions.iter().any(|tr| &tr.event == event) => {
                    self.error(at, format!("machine `{machine}` has no transition on event `{event}`"))
                }
                _ => {}
            },
            Effect::SendEmail { to, cc, subject, body, attachments } => {
                self.needs_identity(w, at);
                t(self, to, "to");
                t(self, cc, "cc");
                t(self, subject, "subject");
                t(self, body, "body");
                t(self, attachments, "attachments");
            }
            Effect::ReplyEmail { email, body } => {
                self.needs_identity(w, at);
                t(self, email, "email");
                t(self, body, "body");
            }
            Effect::ForwardEmail { email, to, body } => {
                self.needs_identity(w, at);
                t(self, email, "email");
                t(self, to, "to");
                t(self, body, "body");
            }
            Effect::ReadEmail(s)
            | Effect::SearchEmails(s)
            | Effect::SearchPeople(s)
            | Effect::ReadDocument(s)
            | Effect::ReadRecord(s) => t(self, s, ""),
            Effect::ListEmails => self.needs_identity(w, at),
            Effect::ListDocuments | Effect::EndTask => {}
            Effect::CopyDocument { document, destination } => {
                t(self, document, "document");
                t(self, destination, "destination");
            }
            Effect::ListRecords(kind) => {
                if !w.records.values().any(|r| &r.kind == kind) {
                    self.error(at, format!("no record has kind `{kind}`"));
                }
            }
            Effect::Deliver(id) => match w.emails.get(id) {
                None => self.error(at, format!("unknown email `{id}`")),
                Some(e) if e.delivery != Delivery::ByEffect => {
                    self.error(at, format!("email `{id}` is delivered initially; give it `delivery: ByEffect`"))
                }
                _ => {}
            },
            Effect::Stop(reason) => {
                if reason.is_empty() {
                    self.error(at, "a stop needs a reason");
                }
            }
        }
    }

    fn needs_identity(&mut self, w: &WorldFile, at: &Path) {
        if w.target.person.is_none() {
            self.error(at, "mail effects need `target.person` (whose mailbox the target uses)");
        }
    }

    /// Check a template's syntax and that every variable it names exists here.
    fn template(&mut self, w: &WorldFile, src: &str, ctx: Ctx, at: &Path) {
        let vars = match template::variables(src) {
            Ok(vars) => vars,
            Err(e) => return self.error(at, e.to_string()),
        };
        for var in vars {
            if let Err(e) = check_variable(w, &var, ctx) {
                self.error(at, e.to_string());
            }
        }
    }
}

/// Every combination of factor values (first factor slowest) that no `invalid_cells`
/// pattern matches. Combinations are counted by value index and only the valid ones
/// are built: a world with thousands of cells pays for its cells, not for the strings
/// of every combination on the way.
fn valid_cells(file: &WorldFile) -> Vec<Cell> {
    let factors = &file.factors;
    if factors.iter().any(|f| f.values.is_empty()) {
        return Vec::new();
    }
    // Each pattern as, per factor, which value indices it matches (None: any value).
    // A pattern naming a factor the world lacks matches no cell.
    let patterns: Vec<Vec<Option<Vec<bool>>>> = file
        .invalid_cells
        .iter()
        .filter(|p| p.keys().all(|f| factors.iter().any(|x| &x.id == f)))
        .map(|p| {
            factors
                .iter()
                .map(|f| p.get(&f.id).map(|vals| f.values.iter().map(|v| vals.contains(v)).collect()))
                .collect()
        })
        .collect();
    let invalid = |index: &[usize]| {
        patterns.iter().any(|p| p.iter().zip(index).all(|(allowed, &i)| allowed.as_ref().is_none_or(|a| a[i])))
    };
    // The names, shared by every cell.
    let names: Vec<(Arc<str>, Vec<Arc<str>>)> = factors
        .iter()
        .map(|f| (Arc::from(f.id.as_str()), f.values.iter().map(|v| Arc::from(v.as_str())).collect()))
        .collect();
    let mut cells = Vec::new();
    let mut index = vec![0usize; factors.len()];
    loop {
        if !invalid(&index) {
            cells.push(Cell::from_pairs(
                names.iter().zip(&index).map(|((f, values), &i)| (Arc::clone(f), Arc::clone(&values[i]))),
            ));
        }
        // The next combination: the last factor fastest.
        let mut k = factors.len();
        loop {
            if k == 0 {
                return cells;
            }
            k -= 1;
            index[k] += 1;
            if index[k] < factors[k].values.len() {
                break;
            }
            index[k] = 0;
        }
    }
}

/// For a stop reason neither the engine gives nor the world declares (in `stops` or a
/// `Stop(...)` effect), the reasons there are; `None` for a known one.
fn unknown_stop(w: &WorldFile, reason: &str) -> Option<String> {
    use crate::stop::{ENGINE_REASONS, StopReason};
    let mut own: BTreeSet<&str> = w.stops.iter().map(|s| s.reason.as_str()).collect();
    w.visit_logic(&mut |_| {}, &mut |e| {
        if let Effect::Stop(r) = e {
            own.insert(r.as_str());
        }
    });
    // `running` is no stop, and lint's own reasons stop only its search.
    let for_worlds = |n: &str| StopReason::is_engine(n) && n != StopReason::Running.name() && !n.starts_with("lint_");
    if own.contains(reason) || for_worlds(reason) {
        return None;
    }
    let engine: Vec<&str> = ENGINE_REASONS.iter().map(|(_, n)| *n).filter(|n| for_worlds(n)).collect();
    let own: Vec<&str> = own.into_iter().collect();
    Some(format!(
        "the engine's are {}{}",
        engine.join(", "),
        if own.is_empty() { String::new() } else { format!("; this world's own are {}", own.join(", ")) }
    ))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "a Bool",
        Value::Int(_) => "an Int",
        Value::Str(_) => "a Str",
    }
}

fn check_variable(w: &WorldFile, var: &str, ctx: Ctx) -> Result<(), TemplateError> {
    let parts: Vec<&str> = var.split('.').collect();
    let unknown = || Err(TemplateError::Unknown(var.to_string()));
    let not_here = || Err(TemplateError::NotHere(var.to_string()));
    // The first form the placeholder has whose names the world declares (`record.R.id`
    // and `.title` before `record.R.F`, a field).
    let mut forms = PLACEHOLDERS.iter().filter(|p| p.matches(&parts));
    match forms.clone().find(|form| declared(w, &parts, form, ctx)) {
        Some(form) if renders_in(form.renders, ctx) => Ok(()),
        Some(_) => not_here(),
        // A form that belongs inside a tool or an actor's rule is "not here" elsewhere,
        // whatever it names.
        None if forms.next().is_some_and(|f| {
            matches!(f.renders, Where::InTool | Where::InActorRule) && !renders_in(f.renders, ctx)
        }) =>
        {
            not_here()
        }
        None => unknown(),
    }
}

/// Whether a text rendered in `ctx` can hold a placeholder that renders `renders`.
fn renders_in(renders: Where, ctx: Ctx) -> bool {
    match (renders, ctx) {
        (Where::Everywhere, _) => true,
        (Where::RunTime, Ctx::Static) => false,
        (Where::RunTime, _) => true,
        (Where::InTool, Ctx::Tool(_)) | (Where::InActorRule, Ctx::Actor) => true,
        (Where::InTool | Where::InActorRule, _) => false,
    }
}

/// Whether the world declares the names a placeholder of this form uses.
fn declared(w: &WorldFile, parts: &[&str], form: &Placeholder, ctx: Ctx) -> bool {
    match parts {
        ["factor", f] => w.factors.iter().any(|x| x.id == *f),
        ["text", t] => w.texts.contains_key(*t),
        ["canary", c] => w.variation.canaries.contains_key(*c),
        ["person", p, _] => w.people.contains_key(*p),
        ["target", _] => w.target.person.is_some(),
        ["email", e, _] => w.emails.contains_key(*e),
        ["doc", d, _] => w.documents.contains_key(*d),
        ["record", r, f] if form.path[2] == "*" => w.records.get(*r).is_some_and(|x| x.fields.contains_key(*f)),
        ["record", r, _] => w.records.contains_key(*r),
        ["var", v] => w.vars.contains_key(*v),
        ["arg", a] => match ctx {
            Ctx::Tool(params) => params.iter().any(|p| p.name == *a),
            _ => true,
        },
        _ => true,
    }
}
