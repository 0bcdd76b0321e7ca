//! Texts compiled against the factors that change them, so that validation learns, for
//! every cell of a class, whether a template renders and what it renders to, without
//! rendering it in each cell.
//!
//! A template is compiled for a class into a [`Plan`]: what no cell of the class
//! changes is rendered then (by the class's own resolver, at the depth it would be
//! rendered at), and what a presentational factor changes stays a choice by that
//! factor's value. A later class reuses the plan when everything its compilation read
//! there is the same ([`Plans`]). A plan is evaluated per cell into an [`Fp`], a
//! fingerprint that composes with concatenation, once per combination of the values it
//! reads ([`Memo`]), so a cell costs a lookup, not a render and a digest of the whole
//! text. A plan says where and why rendering fails in
//! the cells that fail, with the renderer's own messages and limits; a template whose
//! plan would pass [`PLAN_BUDGET`] parts is left to the renderer.

use std::collections::BTreeMap;

use crate::format::{Text, WorldFile};
use crate::template::{self, Filter, MAX_RENDERED_BYTES, MAX_TEMPLATE_DEPTH, Piece, Scope, TemplateError};

/// The most parts one template's plan may have; a bigger one is rendered per cell.
pub const PLAN_BUDGET: usize = 4096;

/// The Mersenne prime 2^61 − 1.
const P: u64 = (1 << 61) - 1;
/// Two bases below `P`, for two independent polynomial hashes.
const BASES: [u64; 2] = [0x0d6e_8fe4_b7d1_c2a3, 0x1a2b_6c5d_93e7_f041];

fn mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    add((r as u64) & P, (r >> 61) as u64)
}

fn add(a: u64, b: u64) -> u64 {
    // a, b ≤ P: the sum is below 2P + 1, and one subtraction (or two, for exactly 2P) reduces it.
    let s = a + b;
    let s = if s >= P { s - P } else { s };
    if s >= P { s - P } else { s }
}

/// A fingerprint of a text: its polynomial hash modulo 2^61 − 1 in two bases (with the
/// base raised to its length, so that fingerprints concatenate), and its length in
/// bytes. Equal texts have equal fingerprints; `a.then(b)` is the fingerprint of `a`
/// followed by `b`. Two different texts share one only by a chance of about
/// (length / 2^61)² — far below one in the cells of any world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fp {
    hash: [u64; 2],
    pow: [u64; 2],
    len: usize,
}

impl Fp {
    /// The fingerprint of the empty text.
    pub const EMPTY: Fp = Fp { hash: [0, 0], pow: [1, 1], len: 0 };

    pub fn of(text: &str) -> Fp {
        Fp::of_bytes(text.as_bytes())
    }

    fn of_bytes(bytes: &[u8]) -> Fp {
        // Both lanes in one pass (they are independent, so the multiplications overlap).
        let (mut h0, mut h1) = (0, 0);
        for &b in bytes {
            // Each byte as 1..=256, so that a zero byte still counts.
            let symbol = u64::from(b) + 1;
            h0 = add(mul(h0, BASES[0]), symbol);
            h1 = add(mul(h1, BASES[1]), symbol);
        }
        let n = bytes.len() as u64;
        Fp { hash: [h0, h1], pow: [power(BASES[0], n), power(BASES[1], n)], len: bytes.len() }
    }

    /// A key for a sequence of texts: `key.and(fp)` for each in turn, from
    /// [`Fp::EMPTY`]. Equal sequences have equal keys; different ones, equal keys only
    /// by the same kind of chance as fingerprints.
    pub fn and(self, next: Fp) -> Fp {
        // A polynomial in the texts' hashes and lengths, in a third base.
        const C: u64 = 0x0b7e_1516_28ae_d2a6;
        let mut key = self;
        for lane in 0..2 {
            key.hash[lane] = add(mul(add(mul(self.hash[lane], C), next.hash[lane]), C), next.len as u64 % P);
        }
        key.len += 1;
        key
    }

    /// The fingerprint of this text followed by `next`.
    pub fn then(self, next: Fp) -> Fp {
        let mut fp = Fp { len: self.len + next.len, ..Fp::EMPTY };
        for lane in 0..2 {
            fp.hash[lane] = add(mul(self.hash[lane], next.pow[lane]), next.hash[lane]);
            fp.pow[lane] = mul(self.pow[lane], next.pow[lane]);
        }
        fp
    }
}

fn power(mut base: u64, mut exp: u64) -> u64 {
    let mut out = 1;
    while exp > 0 {
        if exp & 1 == 1 {
            out = mul(out, base);
        }
        base = mul(base, base);
        exp >>= 1;
    }
    out
}

/// A template compiled for one class of cells.
#[derive(Debug, Default)]
pub struct Plan<'w> {
    parts: Vec<Part<'w>>,
}

#[derive(Debug)]
enum Part<'w> {
    /// Text no cell of the class changes.
    Text(String, Fp),
    /// Text chosen by a factor the cells differ in (`{factor.F}` itself, or a switched
    /// text whose every case is fixed): by value index.
    Choice { factor: usize, values: Vec<(String, Fp)> },
    /// A text switched on a factor the cells differ in: each value's case, or why it
    /// cannot render.
    Switch { factor: usize, cases: Vec<Result<Plan<'w>, TemplateError>> },
    /// A filtered placeholder over text the cells change: rendered, then filtered.
    Filtered { filter: Filter, plan: Plan<'w>, path: &'w str },
    /// Rendering fails here in every cell that gets here.
    Fail(TemplateError),
    /// After a placeholder: the text so far may not pass [`MAX_RENDERED_BYTES`].
    Check(&'w str),
}

/// The plan was too big to be worth compiling (see [`PLAN_BUDGET`]).
#[derive(Debug)]
pub struct TooBig;

/// What a plan is compiled against: the world, which factors its cells differ in, the
/// class's own cell for the others, and a resolver for what no cell changes.
pub struct Class<'w, 's> {
    pub world: &'w WorldFile,
    /// For each factor of the world, in order: whether the cells of the class differ in it.
    pub varying: &'s [bool],
    /// The class's first cell: the values of the factors its cells share.
    pub cell: &'s crate::world::Cell,
    /// Which texts, email subjects and document titles the varying factors reach.
    pub reach: &'s crate::world::Dependents,
    /// Renders what no cell of the class changes.
    pub scope: &'s dyn Scope,
}

/// What compiling a plan read from its class: a later class can use the plan when all
/// of it is the same there.
#[derive(Debug)]
enum Assumption<'w> {
    /// A placeholder the class's resolver rendered (at this nesting) to this, or failed.
    Rendered { path: Vec<&'w str>, depth: u32, value: Result<String, TemplateError> },
    /// A switched text's case, chosen by a factor the cells share.
    Chose { factor: &'w str, value: Option<String> },
}

impl Assumption<'_> {
    fn holds(&self, class: &Class) -> bool {
        match self {
            Assumption::Rendered { path, depth, value } => {
                let mut again = String::new();
                match (class.scope.resolve(path, *depth, &mut again), value) {
                    (Ok(()), Ok(before)) => again == *before,
                    (Err(e), Err(before)) => e == *before,
                    _ => false,
                }
            }
            Assumption::Chose { factor, value } => class.cell.get(factor) == value.as_deref(),
        }
    }
}

/// The templates of a world compiled for its classes, kept across classes: a plan is
/// compiled again only where something it read differs, and a reused plan keeps the
/// fingerprints it has already worked out.
#[derive(Default)]
pub struct Plans<'w> {
    /// Fingerprints of the world's literal text, by address and length: every class
    /// compiles the same sources, and their text is fingerprinted once.
    literals: BTreeMap<(usize, usize), Fp>,
    /// By the template's address: each compilation of it.
    compiled: BTreeMap<(usize, usize), Vec<Compiled<'w>>>,
    memos: Vec<Memo<'w>>,
}

/// What one compilation assumed, and its memo (by number).
type Compiled<'w> = (Vec<Assumption<'w>>, usize);

impl<'w> Plans<'w> {
    /// The plan of the template `src` in `class` (by number), or [`TooBig`].
    pub fn plan(&mut self, class: &Class<'w, '_>, src: &'w str) -> Result<usize, TooBig> {
        let key = (src.as_ptr() as usize, src.len());
        if let Some(&(_, memo)) =
            self.compiled.get(&key).and_then(|c| c.iter().find(|(a, _)| a.iter().all(|a| a.holds(class))))
        {
            return Ok(memo);
        }
        let mut compiler = Compiler { class, literals: &mut self.literals, assumed: Vec::new(), parts: 0 };
        let plan = compiler.compile(src)?;
        let assumed = std::mem::take(&mut compiler.assumed);
        self.memos.push(Memo::new(plan, class.world));
        let memo = self.memos.len() - 1;
        self.compiled.entry(key).or_default().push((assumed, memo));
        Ok(memo)
    }

    /// The fingerprint of plan `plan` in the cell with value indices `cell`.
    pub fn fingerprint(&mut self, plan: usize, cell: &[usize]) -> Result<Fp, TemplateError> {
        self.memos[plan].fingerprint(cell)
    }
}

struct Compiler<'w, 's, 'c> {
    class: &'c Class<'w, 's>,
    literals: &'c mut BTreeMap<(usize, usize), Fp>,
    assumed: Vec<Assumption<'w>>,
    parts: usize,
}

impl<'w> Compiler<'w, '_, '_> {
    /// Compile a template rendered at the top level.
    fn compile(&mut self, src: &'w str) -> Result<Plan<'w>, TooBig> {
        let mut plan = Plan::default();
        self.compile_into(src, 0, &mut plan)?;
        // A text that cannot reach the length limit needs no checks against it.
        let checks = plan.longest() > MAX_RENDERED_BYTES;
        Ok(plan.simplified(checks))
    }

    /// Append the plan of `src`, rendered at nesting `depth`, to `plan`: the
    /// renderer's steps in its order, with its limits.
    fn compile_into(&mut self, src: &'w str, depth: u32, plan: &mut Plan<'w>) -> Result<(), TooBig> {
        if !template::has_braces(src) {
            let part = self.literal(src);
            return self.push(plan, part);
        }
        if depth > MAX_TEMPLATE_DEPTH {
            return self.push(plan, Part::Fail(TemplateError::TooDeep(src.chars().take(40).collect())));
        }
        let pieces = match template::parse(src) {
            Ok(pieces) => pieces,
            Err(e) => return self.push(plan, Part::Fail(e)),
        };
        // Where each placeholder's text sits in `src`, for the renderer's messages.
        let mut rest = src;
        for piece in pieces {
            match piece {
                Piece::Lit(s) => {
                    let part = self.literal(s);
                    self.push(plan, part)?
                }
                Piece::Brace(c) => self.push(plan, rendered(c.to_string()))?,
                Piece::Var { path, filter } => {
                    let written = placeholder_path(&mut rest);
                    match filter {
                        None => {
                            self.placeholder(&path, depth, plan)?;
                            self.push(plan, Part::Check(written))?;
                        }
                        Some(filter) => {
                            let mut inner = Plan::default();
                            self.placeholder(&path, depth, &mut inner)?;
                            if inner.varies() {
                                self.push(plan, Part::Filtered { filter, plan: inner, path: written })?;
                            } else {
                                // Nothing changes it: filter it now.
                                let mut value = String::new();
                                let part = match inner.render(&[], &mut value) {
                                    Err(e) => Part::Fail(e),
                                    Ok(()) if value.len() > MAX_RENDERED_BYTES => {
                                        Part::Fail(TemplateError::TooLong(written.chars().take(40).collect()))
                                    }
                                    Ok(()) => rendered(apply(filter, &value)),
                                };
                                self.push(plan, part)?;
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The plan of one placeholder's value (at nesting `depth` + 1, as the renderer
    /// resolves it), without the length check after it.
    fn placeholder(&mut self, path: &[&'w str], depth: u32, plan: &mut Plan<'w>) -> Result<(), TooBig> {
        let class = self.class;
        let w = class.world;
        let depth = depth + 1;
        let unknown = || TemplateError::Unknown(path.join("."));
        match path {
            ["factor", f] => {
                if let Some(i) = self.varying_factor(f) {
                    let values = w.factors[i].values.iter().map(|v| (v.clone(), Fp::of(v))).collect();
                    return self.push(plan, Part::Choice { factor: i, values });
                }
            }
            ["text", t] if class.reach.reaches(&format!("text.{t}")) => {
                return match w.texts.get(*t) {
                    None => self.push(plan, Part::Fail(unknown())),
                    Some(Text::Fixed(src)) => self.compile_into(src, depth, plan),
                    Some(Text::Switch { factor, cases }) => match self.varying_factor(factor) {
                        Some(i) => {
                            let mut plans = Vec::with_capacity(w.factors[i].values.len());
                            for value in &w.factors[i].values {
                                plans.push(match cases.get(value) {
                                    None => Err(unknown()),
                                    Some(case) => {
                                        let mut case_plan = Plan::default();
                                        self.compile_into(case, depth, &mut case_plan)?;
                                        Ok(case_plan)
                                    }
                                });
                            }
                            self.push(plan, Part::Switch { factor: i, cases: plans })
                        }
                        None => {
                            let value = class.cell.get(factor);
                            self.assumed.push(Assumption::Chose { factor, value: value.map(str::to_string) });
                            match value.and_then(|v| cases.get(v)) {
                                Some(case) => self.compile_into(case, depth, plan),
                                None => self.push(plan, Part::Fail(unknown())),
                            }
                        }
                    },
                };
            }
            ["email", e, "subject"] if class.reach.reaches(&format!("email.{e}.subject")) => {
                if let Some(mail) = w.emails.get(*e) {
                    return self.compile_into(&mail.subject, depth, plan);
                }
            }
            ["doc", d, "title"] if class.reach.reaches(&format!("doc.{d}.title")) => {
                if let Some(doc) = w.documents.get(*d) {
                    return self.compile_into(&doc.title, depth, plan);
                }
            }
            _ => {}
        }
        // Nothing the cells differ in reaches it: the class's resolver renders it now.
        let mut value = String::new();
        let value = class.scope.resolve(path, depth, &mut value).map(|()| value);
        self.assumed.push(Assumption::Rendered { path: path.to_vec(), depth, value: value.clone() });
        match value {
            Ok(value) => self.push(plan, rendered(value)),
            Err(e) => self.push(plan, Part::Fail(e)),
        }
    }

    fn varying_factor(&self, id: &str) -> Option<usize> {
        let class = self.class;
        class.world.factors.iter().position(|f| f.id == id).filter(|&i| class.varying[i])
    }

    /// Text of the world's own, whose fingerprint is taken once for all classes.
    fn literal(&mut self, text: &'w str) -> Part<'w> {
        let fp = *self.literals.entry((text.as_ptr() as usize, text.len())).or_insert_with(|| Fp::of(text));
        Part::Text(text.to_string(), fp)
    }

    /// Append `part`, merging text into text before it; count it against the budget.
    fn push(&mut self, plan: &mut Plan<'w>, part: Part<'w>) -> Result<(), TooBig> {
        if let (Part::Text(s, next), Some(Part::Text(last, fp))) = (&part, plan.parts.last_mut()) {
            last.push_str(s);
            *fp = fp.then(*next);
            return Ok(());
        }
        self.parts += 1;
        if self.parts > PLAN_BUDGET {
            return Err(TooBig);
        }
        plan.parts.push(part);
        Ok(())
    }
}

/// Text rendered for the class, with its fingerprint.
fn rendered<'w>(text: String) -> Part<'w> {
    let fp = Fp::of(&text);
    Part::Text(text, fp)
}

/// The path of the next placeholder in `rest` (as written, trimmed, without its filter),
/// and `rest` moved past it. Literal braces (`{{`, `}}`) are skipped.
fn placeholder_path<'w>(rest: &mut &'w str) -> &'w str {
    loop {
        let Some(open) = rest.find('{') else { return "" };
        if rest[open + 1..].starts_with('{') {
            *rest = &rest[open + 2..];
            continue;
        }
        let inner_start = open + 1;
        let close = rest[inner_start..].find('}').map_or(rest.len(), |c| c + inner_start);
        let inner = rest[inner_start..close].trim();
        *rest = &rest[(close + 1).min(rest.len())..];
        return inner.split_once('|').map_or(inner, |(path, _)| path.trim());
    }
}

fn apply(filter: Filter, value: &str) -> String {
    match filter {
        Filter::Lower => value.to_lowercase(),
        Filter::Upper => value.to_uppercase(),
    }
}

/// Where an evaluated plan goes: its fingerprint, or (for a filter) its text.
trait Sink {
    fn push(&mut self, text: &str, fp: Fp);
    fn len(&self) -> usize;
}

impl Sink for Fp {
    fn push(&mut self, _: &str, fp: Fp) {
        if fp.len > 0 {
            *self = self.then(fp);
        }
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl Sink for String {
    fn push(&mut self, text: &str, _: Fp) {
        self.push_str(text);
    }
    fn len(&self) -> usize {
        self.len()
    }
}

impl<'w> Plan<'w> {
    /// An upper bound on the length of the text in any cell, in bytes.
    fn longest(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Text(text, _) => text.len(),
                Part::Choice { values, .. } => values.iter().map(|(v, _)| v.len()).max().unwrap_or(0),
                Part::Switch { cases, .. } => cases.iter().flatten().map(Plan::longest).max().unwrap_or(0),
                // A case change can make a character longer (`ß` → `SS`), never more than fourfold.
                Part::Filtered { plan, .. } => plan.longest().saturating_mul(4),
                Part::Fail(_) | Part::Check(_) => 0,
            })
            .fold(0, usize::saturating_add)
    }

    /// The same plan, cheaper to evaluate: without length checks unless `checks`, a
    /// switch whose every case is fixed text as a choice, and adjacent text merged.
    fn simplified(self, checks: bool) -> Plan<'w> {
        let mut parts: Vec<Part<'w>> = Vec::with_capacity(self.parts.len());
        for part in self.parts {
            let part = match part {
                Part::Check(_) if !checks => continue,
                Part::Switch { factor, cases } => {
                    let cases: Vec<_> = cases.into_iter().map(|c| c.map(|plan| plan.simplified(checks))).collect();
                    if cases.iter().all(|c| c.as_ref().is_ok_and(Plan::is_fixed)) {
                        let values = cases
                            .into_iter()
                            .map(|c| match c.ok().and_then(|plan| plan.parts.into_iter().next()) {
                                Some(Part::Text(text, fp)) => (text, fp),
                                _ => (String::new(), Fp::EMPTY),
                            })
                            .collect();
                        Part::Choice { factor, values }
                    } else {
                        Part::Switch { factor, cases }
                    }
                }
                Part::Filtered { filter, plan, path } => Part::Filtered { filter, plan: plan.simplified(checks), path },
                other => other,
            };
            match (parts.last_mut(), part) {
                (Some(Part::Text(last, fp)), Part::Text(text, next)) => {
                    last.push_str(&text);
                    *fp = fp.then(next);
                }
                (_, Part::Text(text, _)) if text.is_empty() => {}
                (_, part) => parts.push(part),
            }
        }
        Plan { parts }
    }

    /// Append the factors (by index) whose values it reads.
    fn factors(&self, out: &mut Vec<usize>) {
        for part in &self.parts {
            match part {
                Part::Choice { factor, .. } => out.push(*factor),
                Part::Switch { factor, cases } => {
                    out.push(*factor);
                    cases.iter().flatten().for_each(|plan| plan.factors(out));
                }
                Part::Filtered { plan, .. } => plan.factors(out),
                Part::Text(..) | Part::Fail(_) | Part::Check(_) => {}
            }
        }
    }

    /// Whether it is at most one piece of fixed text.
    fn is_fixed(&self) -> bool {
        matches!(self.parts.as_slice(), [] | [Part::Text(..)])
    }

    /// Whether the cells of the class can render it differently (or some not at all).
    fn varies(&self) -> bool {
        self.parts.iter().any(|p| !matches!(p, Part::Text(..) | Part::Check(_)))
    }

    /// The fingerprint of the text in the cell whose value indices (per factor, in the
    /// world's order) are `cell`, or the renderer's error there.
    pub fn fingerprint(&self, cell: &[usize]) -> Result<Fp, TemplateError> {
        let mut fp = Fp::EMPTY;
        self.eval(cell, &mut fp)?;
        Ok(fp)
    }

    fn render(&self, cell: &[usize], out: &mut String) -> Result<(), TemplateError> {
        self.eval(cell, out)
    }

    fn eval<S: Sink>(&self, cell: &[usize], out: &mut S) -> Result<(), TemplateError> {
        for part in &self.parts {
            match part {
                Part::Text(text, fp) => out.push(text, *fp),
                Part::Choice { factor, values } => {
                    let (value, fp) = &values[cell[*factor]];
                    out.push(value, *fp);
                }
                Part::Switch { factor, cases } => match &cases[cell[*factor]] {
                    Ok(plan) => plan.eval(cell, out)?,
                    Err(e) => return Err(e.clone()),
                },
                Part::Filtered { filter, plan, path } => {
                    let mut value = String::new();
                    plan.render(cell, &mut value)?;
                    if value.len() > MAX_RENDERED_BYTES {
                        return Err(TemplateError::TooLong(path.chars().take(40).collect()));
                    }
                    let filtered = apply(*filter, &value);
                    let fp = Fp::of(&filtered);
                    out.push(&filtered, fp);
                }
                Part::Fail(e) => return Err(e.clone()),
                Part::Check(path) => {
                    if out.len() > MAX_RENDERED_BYTES {
                        return Err(TemplateError::TooLong(path.chars().take(40).collect()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The most entries a [`Memo`] table may have.
const MEMO_LIMIT: usize = 4096;

/// A plan with its fingerprints remembered by the values of the factors it reads: the
/// cells of a class that agree on those values render it the same, and it is
/// evaluated once for them.
pub struct Memo<'w> {
    plan: Plan<'w>,
    /// (factor, stride) of each factor the plan reads; empty when the table would be too big.
    strides: Vec<(usize, usize)>,
    table: Vec<Option<Result<Fp, TemplateError>>>,
}

impl<'w> Memo<'w> {
    pub fn new(plan: Plan<'w>, world: &WorldFile) -> Self {
        let mut read = Vec::new();
        plan.factors(&mut read);
        read.sort_unstable();
        read.dedup();
        let mut strides = Vec::with_capacity(read.len());
        let mut size = 1usize;
        for f in read {
            strides.push((f, size));
            size = size.saturating_mul(world.factors[f].values.len().max(1));
        }
        if size > MEMO_LIMIT {
            return Memo { plan, strides: Vec::new(), table: Vec::new() };
        }
        Memo { plan, strides, table: vec![None; size] }
    }

    /// As [`Plan::fingerprint`], evaluated once per combination of the values it reads.
    pub fn fingerprint(&mut self, cell: &[usize]) -> Result<Fp, TemplateError> {
        if self.table.is_empty() {
            return self.plan.fingerprint(cell);
        }
        let slot: usize = self.strides.iter().map(|&(f, stride)| cell[f] * stride).sum();
        self.table[slot].get_or_insert_with(|| self.plan.fingerprint(cell)).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Fingerprints compose: the fingerprint of a concatenation is the
        /// concatenation of fingerprints, however the text is split.
        #[test]
        fn fingerprints_compose(a in ".{0,40}", b in ".{0,40}", c in ".{0,40}") {
            let whole = format!("{a}{b}{c}");
            prop_assert_eq!(Fp::of(&a).then(Fp::of(&b)).then(Fp::of(&c)), Fp::of(&whole));
            prop_assert_eq!(Fp::of(&a).then(Fp::of(&b).then(Fp::of(&c))), Fp::of(&whole));
        }

        /// Different texts, different fingerprints.
        #[test]
        fn different_texts_differ(a in ".{0,40}", b in ".{0,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(Fp::of(&a), Fp::of(&b));
        }
    }

    #[test]
    fn a_zero_byte_and_the_empty_text_differ() {
        assert_ne!(Fp::of("\0"), Fp::EMPTY);
        assert_ne!(Fp::of("\0a"), Fp::of("a"));
        assert_eq!(Fp::of(""), Fp::EMPTY);
    }
}
