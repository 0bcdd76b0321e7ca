//! Loading a world: RON text → [`WorldFile`] (shape) → [`World`] (validated, resolved).
//!
//! Loading is sans-IO: the caller passes the text and a resolver for included files.
//! Every problem found is returned at once as a located [`Diagnostic`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::format::*;
use crate::hash::Canon;
use crate::span::{self, Path, Pos};
use crate::template::{self, TemplateError, normalise};

mod include;
mod presentation;
mod time;
mod validation;

pub use include::Includes;
pub use presentation::{
    Dependents, classes_apart_from, inert_for_search, presentational, presentational_classes, seed_plan,
};
pub use time::{format_time, parse_start, parse_time_of_day};
use validation::Validator;

/// One problem in a world file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.pos.line, self.pos.col, self.message)
    }
}

/// A cell of the factor matrix: `(factor, value)` pairs in the world's factor order.
/// The names are shared with the world's other cells: a world has thousands of cells,
/// and a sweep clones them, so a cell costs one small allocation, not two per factor.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell(Vec<(Arc<str>, Arc<str>)>);

impl Cell {
    /// A cell from `(factor, value)` pairs, in the world's factor order.
    pub fn from_pairs<F: Into<Arc<str>>, V: Into<Arc<str>>>(pairs: impl IntoIterator<Item = (F, V)>) -> Self {
        Cell(pairs.into_iter().map(|(f, v)| (f.into(), v.into())).collect())
    }
    /// The index of each value among its factor's values, per factor in the world's
    /// order (a cell names its factors in that order).
    pub fn value_indices(&self, w: &WorldFile) -> Vec<usize> {
        w.factors
            .iter()
            .zip(self.pairs())
            .map(|(f, (_, v))| f.values.iter().position(|x| x == v).unwrap_or(0))
            .collect()
    }
    /// The `(factor, value)` pairs, in the world's factor order.
    pub fn pairs(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + Clone {
        self.0.iter().map(|(f, v)| (&**f, &**v))
    }
    /// The pairs whose factor `keep` accepts, as owned strings (a class key, a filter).
    pub fn pairs_where(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, String)> {
        self.pairs().filter(|(f, _)| keep(f)).map(|(f, v)| (f.to_string(), v.to_string())).collect()
    }
    /// The canonical string `factor=value,factor=value` in factor order.
    pub fn key(&self) -> String {
        let mut key = String::with_capacity(self.0.iter().map(|(f, v)| f.len() + v.len() + 2).sum());
        for (i, (f, v)) in self.pairs().enumerate() {
            if i > 0 {
                key.push(',');
            }
            key.push_str(f);
            key.push('=');
            key.push_str(v);
        }
        key
    }
    pub fn get(&self, factor: &str) -> Option<&str> {
        self.pairs().find(|(f, _)| *f == factor).map(|(_, v)| v)
    }
    pub fn matches(&self, pattern: &CellPattern) -> bool {
        pattern.iter().all(|(f, vals)| self.get(f).is_some_and(|v| vals.iter().any(|x| x == v)))
    }
    pub fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> =
            self.pairs().map(|(f, v)| (f.to_string(), serde_json::Value::String(v.to_string()))).collect();
        serde_json::Value::Object(map)
    }
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() { f.write_str("(no factors)") } else { f.write_str(&self.key()) }
    }
}

/// A validated world, ready to run.
#[derive(Clone, Debug)]
pub struct World {
    /// The authored model, with included files inlined into `body`.
    pub file: WorldFile,
    /// Where it was loaded from, as given to [`load`].
    pub path: String,
    /// Every valid cell, in factor order (the first factor varies slowest).
    pub cells: Vec<Cell>,
    pub default_cell: Cell,
    pub control_cell: Option<Cell>,
    /// The simulated start, ms since the Unix epoch.
    pub start_ms: i64,
    /// Hash of everything that affects simulation.
    pub dynamics_hash: String,
    /// Hash of the outcome definitions and judge prompts.
    pub outcomes_hash: String,
    /// Each lexicon's phrases without placeholders, normalised once at load and shared
    /// by every episode; phrases with placeholders are rendered per episode.
    pub static_lexicons: BTreeMap<String, std::sync::Arc<crate::text::Phrases>>,
    /// (section, name) of the parts that came from an included library: `tools` /
    /// `send_email`. A library is shared, so a world using some of its parts is not
    /// leaving the rest unused.
    pub from_library: std::collections::BTreeSet<(String, String)>,
    /// The factors that change only what the target (or a judge) reads
    /// ([`presentational`]), found once at load.
    pub presentational: BTreeSet<String>,
    /// What the presentational factors reach: texts, email subjects, document titles.
    pub(crate) reach: Dependents,
    /// What every episode's start would otherwise work out again: see [`Prepared`].
    pub(crate) prepared: Prepared,
    /// Each cell's key → its place in `cells`, made on first use.
    cell_keys: std::sync::OnceLock<BTreeMap<String, usize>>,
}

/// The parts of starting an episode that depend on neither the cell nor the seed,
/// worked out once at load, so each episode renders only what its seed changes.
#[derive(Clone, Debug, Default)]
pub(crate) struct Prepared {
    /// Each declared email (in `file.emails`' order), as placing the inbox reads it.
    pub emails: Vec<StartEmail>,
    /// Each distractor group: its stream and its emails (places in `emails`), in
    /// declared order.
    pub groups: Vec<(u64, Vec<usize>)>,
    /// Each canary's stream (in `variation.canaries`' order), and each pool's.
    pub canary_streams: Vec<u64>,
    pub pool_streams: BTreeMap<String, u64>,
    /// Lexicon → the positions of its phrases with placeholders (the rest are in
    /// `static_lexicons`).
    pub templated_phrases: BTreeMap<String, Vec<usize>>,
    /// Fact set → fact → form → the form normalised, for forms without placeholders
    /// (`None`: rendered per episode).
    pub fixed_facts: BTreeMap<String, Vec<Vec<Option<std::sync::Arc<str>>>>>,
}

/// A declared email as placing an episode's inbox reads it: what is fixed at load.
#[derive(Clone, Debug, Default)]
pub(crate) struct StartEmail {
    /// A distractor group draws it.
    pub in_group: bool,
    /// It came from an included library.
    pub from_library: bool,
    /// The place of the email it follows in a thread.
    pub follows: Option<usize>,
    /// It is there from the start (rather than delivered by an effect).
    pub initially: bool,
    /// It sits in another mailbox than the target's own.
    pub elsewhere: bool,
}

impl Prepared {
    fn of(file: &WorldFile, from_library: &BTreeSet<(String, String)>) -> Prepared {
        let templated = |p: &String| p.contains(['{', '}']);
        // Validation has checked every reference; one it missed is simply left out.
        let place = |id: &String| file.emails.keys().position(|k| k == id);
        let target = file.target.person.as_deref();
        let mut emails: Vec<StartEmail> = file
            .emails
            .iter()
            .map(|(id, e)| StartEmail {
                in_group: false,
                from_library: from_library.contains(&("emails".to_string(), id.clone())),
                follows: e.follows.as_ref().and_then(place),
                initially: e.delivery == crate::format::Delivery::Initially,
                elsewhere: Some(e.mailbox.as_str()) != target,
            })
            .collect();
        let mut groups = Vec::new();
        for (i, group) in file.variation.distractors.iter().enumerate() {
            let name = group.id.as_ref().map_or_else(|| format!("distractors:{i}"), |id| format!("distractors:{id}"));
            let members: Vec<usize> = group.emails.iter().filter_map(place).collect();
            for &m in &members {
                emails[m].in_group = true;
            }
            groups.push((crate::rng::purpose(&name), members));
        }
        Prepared {
            emails,
            groups,
            canary_streams: file
                .variation
                .canaries
                .keys()
                .map(|n| crate::rng::purpose(&format!("canary:{n}")))
                .collect(),
            pool_streams: file
                .variation
                .pools
                .keys()
                .map(|p| (p.clone(), crate::rng::purpose(&format!("pool:{p}"))))
                .collect(),
            templated_phrases: file
                .variation
                .lexicons
                .iter()
                .map(|(name, phrases)| {
                    (name.clone(), phrases.iter().enumerate().filter(|(_, p)| templated(p)).map(|(i, _)| i).collect())
                })
                .collect(),
            fixed_facts: file
                .variation
                .facts
                .iter()
                .map(|(set, list)| {
                    let forms = |forms: &Vec<String>| {
                        forms.iter().map(|f| (!templated(f)).then(|| template::normalise(f).into())).collect()
                    };
                    (set.clone(), list.iter().map(forms).collect())
                })
                .collect(),
        }
    }
}

impl World {
    pub fn id(&self) -> &str {
        &self.file.id
    }

    /// The factors a report's matrix shows by default: the declared `main_factors`, or
    /// the first two factors.
    pub fn main_factors(&self) -> Vec<&str> {
        if self.file.main_factors.is_empty() {
            self.file.factors.iter().take(2).map(|f| f.id.as_str()).collect()
        } else {
            self.file.main_factors.iter().map(String::as_str).collect()
        }
    }

    /// The valid cells matching `filter`: factor → any of the values (factors not
    /// named range over all values). Errors name unknown factors and values.
    pub fn select_cells(&self, filter: &[(String, String)]) -> Result<Vec<Cell>, String> {
        let mut pattern: CellPattern = BTreeMap::new();
        for (factor, value) in filter {
            let Some(def) = self.file.factors.iter().find(|f| &f.id == factor) else {
                let known: Vec<&str> = self.file.factors.iter().map(|f| f.id.as_str()).collect();
                return Err(format!(
                    "world `{}` has no factor `{factor}` (factors: {})",
                    self.id(),
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            };
            let value = match def.renamed.get(value) {
                Some(new) if !def.values.contains(value) => new,
                _ => value,
            };
            if !def.values.contains(value) {
                return Err(format!(
                    "factor `{factor}` of world `{}` has no value `{value}` (values: {})",
                    self.id(),
                    def.values.join(", ")
                ));
            }
            pattern.entry(factor.clone()).or_default().push(value.clone());
        }
        let cells: Vec<Cell> = self.cells.iter().filter(|c| c.matches(&pattern)).cloned().collect();
        if cells.is_empty() {
            let asked: Vec<String> = filter.iter().map(|(f, v)| format!("{f}={v}")).collect();
            return Err(format!(
                "no valid cell of world `{}` matches {} (invalid cells are not part of the design)",
                self.id(),
                asked.join(", ")
            ));
        }
        Ok(cells)
    }

    /// The cell named exactly by `filter`, or the default cell when it is empty.
    pub fn one_cell(&self, filter: &[(String, String)]) -> Result<Cell, String> {
        if filter.is_empty() {
            return Ok(self.default_cell.clone());
        }
        let cells = self.select_cells(filter)?;
        match cells.as_slice() {
            [one] => Ok(one.clone()),
            many => {
                let missing: Vec<String> = self
                    .file
                    .factors
                    .iter()
                    .filter(|f| !filter.iter().any(|(name, _)| name == &f.id))
                    .map(|f| format!("{}={}", f.id, self.default_cell.get(&f.id).unwrap_or("?")))
                    .collect();
                Err(format!(
                    "--condition selects {} cells of world `{}`; name one value of every factor (not named: {}, e.g. the default cell's {})",
                    many.len(),
                    self.id(),
                    self.file
                        .factors
                        .iter()
                        .filter(|f| !filter.iter().any(|(n, _)| n == &f.id))
                        .map(|f| f.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    missing.join(" ")
                ))
            }
        }
    }

    /// The cell with this canonical key (each world's keys indexed on first use: replay
    /// looks one up per transcript, and a world has thousands of cells).
    pub fn cell_by_key(&self, key: &str) -> Option<&Cell> {
        let index = self.cell_keys.get_or_init(|| self.cells.iter().enumerate().map(|(i, c)| (c.key(), i)).collect());
        // `cells` is public: a caller that changed it after the first lookup gets a scan.
        match index.get(key).and_then(|&i| self.cells.get(i)).filter(|c| c.key() == key) {
            Some(cell) => Some(cell),
            None => self.cells.iter().find(|c| c.key() == key),
        }
    }
}

/// Where a problem found in a world's files is: the world file, or the library a part
/// was merged from. Kept after validation for the checks that start the world's
/// episodes ([`crate::cells`]).
pub struct Locator {
    path: String,
    index: span::LazyIndex,
    /// The libraries merged in: a problem in a part from one is located in it.
    merged: include::Merged,
}

impl Locator {
    /// A located diagnostic for a problem at `at`.
    pub fn diagnostic(&self, at: &Path, message: impl Into<String>) -> Diagnostic {
        let message = message.into();
        let (file, pos) = match self.merged.source_of(at) {
            Some((library, inner)) => (library.file.clone(), library.index.get().locate(&inner)),
            None => (self.path.clone(), self.index.get().locate(at)),
        };
        Diagnostic { file, pos, message: format!("{at}: {message}") }
    }

    /// Diagnostics as reported: in file order, without repeats, each kind capped (see
    /// [`validation::MAX_DIAGNOSTICS_PER_KIND`]).
    pub fn finish(&self, mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
        diags.sort_by_key(|d| d.pos);
        diags.dedup();
        validation::cap_diagnostics(diags)
    }
}

/// Validate a world statically: its shape, its libraries, its factors and cells, every
/// reference and every template's variables, each problem located. `path` is used in
/// messages and recorded in transcripts; `read_include` returns the text of a file
/// named relative to the world file (a closure reads body files and libraries alike;
/// see [`Includes`]). The check that starts and renders every cell is
/// [`crate::cells::check`]; [`crate::load`] makes both.
pub fn validate(path: &str, text: &str, read_include: &mut dyn Includes) -> Result<(World, Locator), Vec<Diagnostic>> {
    // Line endings never matter: the hash and every position are of the LF text; nor
    // does a byte-order mark some editors put first.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).replace("\r\n", "\n");
    // Positions are looked up only when there is a problem to locate.
    let index = span::LazyIndex::new(text.clone());
    // `implicit_some`: optional fields are written bare (`control: {...}`), as authors expect.
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let mut file: WorldFile = match options.from_str(&text) {
        Ok(file) => file,
        Err(err) => {
            let pos = Pos { line: err.position.line as u32, col: err.position.col as u32 };
            let at = index.get().path_at(pos);
            let message = describe_ron_error(&err.code);
            let message = if at.0.is_empty() { message } else { format!("{at}: {message}") };
            // Reading the file's shape cannot go past a syntax or shape error; every later
            // check (references, templates, cells) reports all it finds.
            let message = format!("{message} (reading stops here: fix this and check again for any problem after it)");
            return Err(vec![Diagnostic { file: path.to_string(), pos, message }]);
        }
    };
    let mut diags = Vec::new();
    let merged = include::merge(path, &mut file, read_include, &|at| index.get().locate(at), &mut diags);
    let locator = Locator { path: path.to_string(), index, merged };
    let mut v = Validator { locator: &locator, diags };
    v.includes(&mut file, read_include);
    let (cells, default_cell, control_cell) = v.factors(&file);
    let start_ms = v.clock(&file);
    v.references(&file);
    if !v.diags.is_empty() {
        return Err(v.finish());
    }
    let mut world = World {
        dynamics_hash: String::new(),
        outcomes_hash: String::new(),
        file,
        path: path.to_string(),
        cells,
        default_cell,
        control_cell,
        start_ms,
        static_lexicons: BTreeMap::new(),
        from_library: locator.merged.origins.keys().cloned().collect(),
        presentational: BTreeSet::new(),
        reach: Dependents::default(),
        prepared: Prepared::default(),
        cell_keys: std::sync::OnceLock::new(),
    };
    world.prepared = Prepared::of(&world.file, &world.from_library);
    for (name, phrases) in &world.file.variation.lexicons {
        let normalised: Vec<String> = phrases
            .iter()
            .filter(|p| !p.contains(['{', '}']))
            .map(|p| template::normalise(p))
            .filter(|p| !p.trim().is_empty())
            .collect();
        world.static_lexicons.insert(name.clone(), std::sync::Arc::new(crate::text::Phrases::new(normalised)));
    }
    // The world as JSON once: which factors are presentational, then the dynamics hash.
    let mut json = serde_json::to_value(&world.file).expect("world model serialises");
    (world.presentational, world.reach) = presentation::presentational_of(&world.file, &json);
    world.dynamics_hash = dynamics_hash(&mut json);
    world.outcomes_hash = outcomes_hash(&world.file);
    Ok((world, locator))
}

/// The hash of everything that affects simulation: the world (as JSON) without its
/// policies and outcomes, which are taken out of `value`.
fn dynamics_hash(value: &mut serde_json::Value) -> String {
    if let Some(map) = value.as_object_mut() {
        map.remove("policies");
        map.remove("outcomes");
    }
    let mut c = Canon::new("terrarium.world.dynamics.v1");
    c.json(value);
    format!("sha256:{}", c.hex(32))
}

/// The hash of the outcome definitions: what decides verdicts. An outcome's report
/// `role` is left out: it changes what a report does with a verdict, never the verdict,
/// so declaring one leaves recorded transcripts' verdicts standing.
fn outcomes_hash(file: &WorldFile) -> String {
    let mut value = serde_json::to_value(&file.outcomes).expect("outcomes serialise");
    for outcome in value.as_object_mut().into_iter().flat_map(|o| o.values_mut()) {
        if let Some(fields) = outcome.as_object_mut() {
            fields.remove("role");
        }
    }
    let mut c = Canon::new("terrarium.world.outcomes.v1");
    c.json(&value);
    format!("sha256:{}", c.hex(32))
}

fn describe_ron_error(code: &ron::Error) -> String {
    let text = code.to_string();
    // ron names the struct it was in; say what an author should do.
    match code {
        ron::Error::NoSuchStructField { .. } | ron::Error::NoSuchEnumVariant { .. } => {
            format!("{text} (check the spelling against docs/world-format.md)")
        }
        ron::Error::ExceededRecursionLimit => {
            "the file nests values deeper than a world may (a condition inside 128 others, say): flatten it, with `All([...])` and `Any([...])` lists".to_string()
        }
        _ => text,
    }
}
