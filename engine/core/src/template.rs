//! Templates: text with `{namespace.name}` placeholders, `{{` and `}}` for braces.
//!
//! A placeholder is a dotted path with an optional filter: `{person.kyle.first|lower}`.
//! Every template in a world is parsed and its variables checked when the world loads;
//! rendering at run time cannot meet an unknown variable without it being an error.

use std::fmt::Write as _;

/// Placeholders nest (a `text.X` may contain placeholders) at most this deep.
pub const MAX_TEMPLATE_DEPTH: u32 = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Lit(&'a str),
    /// `{{` or `}}`.
    Brace(char),
    Var {
        path: Vec<&'a str>,
        filter: Option<Filter>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    Lower,
    Upper,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("unclosed `{{` in template (write `{{{{` for a literal brace)")]
    Unclosed,
    #[error("stray `}}` in template (write `}}}}` for a literal brace)")]
    StrayClose,
    #[error("empty placeholder `{{}}`")]
    Empty,
    #[error("unknown filter `{0}` (expected `lower` or `upper`)")]
    UnknownFilter(String),
    #[error("unknown template variable `{0}`")]
    Unknown(String),
    #[error("template variable `{0}` is not available here")]
    NotHere(String),
    #[error("templates nest deeper than {MAX_TEMPLATE_DEPTH} levels (a text that includes itself?) at `{0}`")]
    TooDeep(String),
    #[error(
        "the rendered text passes {MAX_RENDERED_BYTES} bytes (texts that include each other several times grow exponentially?) at `{0}`"
    )]
    TooLong(String),
}

/// Split a template into pieces.
pub fn parse(src: &str) -> Result<Vec<Piece<'_>>, TemplateError> {
    let bytes = src.as_bytes();
    let mut pieces = Vec::new();
    let mut lit_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                push_lit(&mut pieces, &src[lit_start..i]);
                pieces.push(Piece::Brace('{'));
                i += 2;
                lit_start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                push_lit(&mut pieces, &src[lit_start..i]);
                pieces.push(Piece::Brace('}'));
                i += 2;
                lit_start = i;
            }
            b'{' => {
                push_lit(&mut pieces, &src[lit_start..i]);
                let close = src[i + 1..].find('}').ok_or(TemplateError::Unclosed)? + i + 1;
                let inner = src[i + 1..close].trim();
                if inner.is_empty() {
                    return Err(TemplateError::Empty);
                }
                if inner.contains('{') {
                    return Err(TemplateError::Unclosed);
                }
                let (path, filter) = match inner.split_once('|') {
                    Some((path, filter)) => {
                        let filter = match filter.trim() {
                            "lower" => Filter::Lower,
                            "upper" => Filter::Upper,
                            other => return Err(TemplateError::UnknownFilter(other.to_string())),
                        };
                        (path.trim(), Some(filter))
                    }
                    None => (inner, None),
                };
                pieces.push(Piece::Var { path: path.split('.').map(str::trim).collect(), filter });
                i = close + 1;
                lit_start = i;
            }
            b'}' => return Err(TemplateError::StrayClose),
            _ => i += 1,
        }
    }
    push_lit(&mut pieces, &src[lit_start..]);
    Ok(pieces)
}

fn push_lit<'a>(pieces: &mut Vec<Piece<'a>>, s: &'a str) {
    if !s.is_empty() {
        pieces.push(Piece::Lit(s));
    }
}

/// Where placeholders get their values.
pub trait Scope {
    /// Append the value of `path` to `out`. `depth` is the current nesting, to be
    /// passed on when the value is itself a template.
    fn resolve(&self, path: &[&str], depth: u32, out: &mut String) -> Result<(), TemplateError>;
}

/// Render `src` in `scope`.
pub fn render(src: &str, scope: &dyn Scope) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(src.len());
    render_into(src, scope, 0, &mut out)?;
    Ok(out)
}

/// Render `src` into `out` at nesting `depth`. This is the hot path of every episode:
/// it scans the text once and allocates nothing beyond `out` (and a copy of a filtered
/// value that is not ASCII).
pub fn render_into(src: &str, scope: &dyn Scope, depth: u32, out: &mut String) -> Result<(), TemplateError> {
    if !has_braces(src) {
        out.push_str(src);
        return Ok(());
    }
    if depth > MAX_TEMPLATE_DEPTH {
        return Err(TemplateError::TooDeep(src.chars().take(40).collect()));
    }
    let bytes = src.as_bytes();
    let (mut i, mut lit_start) = (0, 0);
    // From brace to brace: the text between is copied as it is.
    while let Some(next) = memchr::memchr2(b'{', b'}', &bytes[i..]) {
        i += next;
        match bytes[i] {
            b if bytes.get(i + 1) == Some(&b) => {
                out.push_str(&src[lit_start..=i]);
                i += 2;
                lit_start = i;
            }
            b'{' => {
                out.push_str(&src[lit_start..i]);
                let close = memchr::memchr(b'}', &bytes[i + 1..]).ok_or(TemplateError::Unclosed)? + i + 1;
                let inner = src[i + 1..close].trim();
                if inner.is_empty() {
                    return Err(TemplateError::Empty);
                }
                // Placeholders are short: a byte search finds `|` and `.` faster than
                // `split` on a char, which a start did hundreds of times.
                let (path, filter) = match memchr::memchr(b'|', inner.as_bytes()) {
                    Some(bar) => (inner[..bar].trim(), Some(inner[bar + 1..].trim())),
                    None => (inner, None),
                };
                let mut segs = [""; 4];
                let mut n = 0;
                let mut seg_start = 0;
                for dot in memchr::memchr_iter(b'.', path.as_bytes()).chain(std::iter::once(path.len())) {
                    if n == segs.len() {
                        return Err(TemplateError::Unknown(path.to_string()));
                    }
                    segs[n] = path[seg_start..dot].trim();
                    seg_start = dot + 1;
                    n += 1;
                }
                let too_long = |len: usize| {
                    (len > MAX_RENDERED_BYTES).then(|| TemplateError::TooLong(path.chars().take(40).collect()))
                };
                match filter {
                    None => {
                        scope.resolve(&segs[..n], depth + 1, out)?;
                        if let Some(e) = too_long(out.len()) {
                            return Err(e);
                        }
                    }
                    Some(f) => {
                        let lower = match f {
                            "lower" => true,
                            "upper" => false,
                            other => return Err(TemplateError::UnknownFilter(other.to_string())),
                        };
                        // The value is rendered in place, then its case changed there:
                        // ASCII without a copy, other text through a lowercased copy.
                        let from = out.len();
                        scope.resolve(&segs[..n], depth + 1, out)?;
                        if let Some(e) = too_long(out.len() - from) {
                            return Err(e);
                        }
                        let value = &mut out[from..];
                        match (value.is_ascii(), lower) {
                            (true, true) => value.make_ascii_lowercase(),
                            (true, false) => value.make_ascii_uppercase(),
                            (false, _) => {
                                let changed = if lower { value.to_lowercase() } else { value.to_uppercase() };
                                out.truncate(from);
                                out.push_str(&changed);
                            }
                        }
                    }
                }
                i = close + 1;
                lit_start = i;
            }
            _ => return Err(TemplateError::StrayClose),
        }
    }
    out.push_str(&src[lit_start..]);
    Ok(())
}

/// The most bytes one rendered text may have (1 MiB): a bound on worlds whose texts
/// include each other so often that rendering would never end.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// Whether `src` has a brace at all (most text has none).
pub fn has_braces(src: &str) -> bool {
    memchr::memchr2(b'{', b'}', src.as_bytes()).is_some()
}

/// The variables a template names, as dotted strings.
pub fn variables(src: &str) -> Result<Vec<String>, TemplateError> {
    Ok(parse(src)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Var { path, .. } => Some(path.join(".")),
            _ => None,
        })
        .collect())
}

/// Text normalised for matching: lowercase, every run of non-alphanumerics one space,
/// padded with a space at each end so that `contains(" word ")` is a word match.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push(' ');
    let mut last_space = true;
    for c in text.chars() {
        if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                out.push(l);
            }
            last_space = false;
        } else if !last_space {
            out.push(' ');
            last_space = true;
        }
    }
    if !last_space {
        out.push(' ');
    }
    out
}

/// Append `value` formatted, for scopes that resolve to numbers.
pub fn push_display(out: &mut String, value: impl std::fmt::Display) {
    let _ = write!(out, "{value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Scope for Names {
        fn resolve(&self, path: &[&str], depth: u32, out: &mut String) -> Result<(), TemplateError> {
            match path {
                ["person", "kyle", "first"] => out.push_str("Kyle"),
                ["person", "ode", "first"] => out.push_str("Ödön"),
                ["text", "loop"] => render_into("{text.loop}", self, depth, out)?,
                _ => return Err(TemplateError::Unknown(path.join("."))),
            }
            Ok(())
        }
    }

    #[test]
    fn renders_placeholders_filters_and_braces() {
        assert_eq!(render("Hi {person.kyle.first|upper}, {{x}}", &Names).unwrap(), "Hi KYLE, {x}");
        assert_eq!(render("{ nope.x }", &Names), Err(TemplateError::Unknown("nope.x".into())));
        assert_eq!(render("a { b", &Names), Err(TemplateError::Unclosed));
        assert_eq!(render("a } b", &Names), Err(TemplateError::StrayClose));
        assert!(matches!(render("{text.loop}", &Names), Err(TemplateError::TooDeep(_))));
        // A filter changes the case of what it is given, ASCII or not, and nothing else.
        assert_eq!(render("{person.kyle.first|lower}/{person.ode.first|lower}", &Names).unwrap(), "kyle/ödön");
        assert_eq!(render("é{person.ode.first|upper}é", &Names).unwrap(), "éÖDÖNé");
    }

    proptest::proptest! {
        /// Rendering agrees with the parsed pieces of any text made of braces, words
        /// and placeholders: literals as written, `{{` and `}}` as one brace each.
        #[test]
        fn rendering_agrees_with_parsing(parts in proptest::collection::vec(
            proptest::sample::select(vec!["a", "é ", "{{", "}}", "{", "}", "{person.kyle.first}", "{person.ode.first|upper}", ". "]),
            0..12,
        )) {
            let src: String = parts.concat();
            // What the pieces give; `None` where a piece is no template or an unknown name.
            let expected = parse(&src).ok().and_then(|pieces| {
                let mut expected = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Lit(l) => expected.push_str(l),
                        Piece::Brace(b) => expected.push(b),
                        Piece::Var { path, filter } => {
                            let mut v = String::new();
                            Names.resolve(&path, 1, &mut v).ok()?;
                            expected.push_str(&match filter {
                                Some(Filter::Upper) => v.to_uppercase(),
                                Some(Filter::Lower) => v.to_lowercase(),
                                None => v,
                            });
                        }
                    }
                }
                Some(expected)
            });
            match expected {
                Some(expected) => proptest::prop_assert_eq!(render(&src, &Names), Ok(expected), "{}", src),
                None => proptest::prop_assert!(render(&src, &Names).is_err(), "{} renders, but is no template", src),
            }
        }
    }

    #[test]
    fn normalises_for_word_matching() {
        assert_eq!(normalise("Hello,  World!! 4,250"), " hello world 4 250 ");
        assert!(normalise("Meet at the Lantern Bar.").contains(&normalise("lantern bar")));
        assert!(!normalise("planter barrel").contains(&normalise("lantern bar")));
    }
}

/// Where a placeholder can be rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Where {
    /// Any text, prompts and initial emails included.
    Everywhere,
    /// Text rendered once the episode runs: tools, events, actors, outcomes, policies.
    RunTime,
    /// Inside a tool (its arguments).
    InTool,
    /// In an actor's rule (the message it answers).
    InActorRule,
}

/// One form of placeholder: its path, with `*` for a name the world declares and
/// `a|b` for alternatives; how the guide writes it; what it gives; where it renders.
/// [`PLACEHOLDERS`] is the one list: validation checks every placeholder against it,
/// and the world-format guide's table is generated from it (the suite checks the two
/// agree).
#[derive(Clone, Copy, Debug)]
pub struct Placeholder {
    pub path: &'static [&'static str],
    pub written: &'static str,
    pub gives: &'static str,
    pub renders: Where,
}

const fn form(
    path: &'static [&'static str],
    written: &'static str,
    gives: &'static str,
    renders: Where,
) -> Placeholder {
    Placeholder { path, written, gives, renders }
}

/// Every placeholder form, in the guide's order. A new namespace is a row here, its
/// existence check in validation and its value in `env::Resolver::resolve`.
pub const PLACEHOLDERS: &[Placeholder] = &[
    form(&["factor", "*"], "`{factor.F}`", "the cell's value of factor F", Where::Everywhere),
    form(&["text", "*"], "`{text.T}`", "the rendered text T", Where::Everywhere),
    form(&["canary", "*"], "`{canary.C}`", "the episode's value of canary C", Where::Everywhere),
    form(
        &["person", "*", "first|last|name|email|role"],
        "`{person.P.first}`, `.last`, `.name`, `.email`, `.role`",
        "person P",
        Where::Everywhere,
    ),
    form(
        &["target", "first|last|name|email|role"],
        "`{target.first}` … `{target.role}`",
        "the person the target acts as",
        Where::Everywhere,
    ),
    form(
        &["email", "*", "id|subject"],
        "`{email.E.id}`, `{email.E.subject}`",
        "the id the target sees for email E",
        Where::Everywhere,
    ),
    form(&["doc", "*", "id|title|location"], "`{doc.D.id}`, `.title`, `.location`", "document D", Where::Everywhere),
    form(&["record", "*", "id|title"], "`{record.R.id}`, `{record.R.title}`", "record R", Where::Everywhere),
    form(&["record", "*", "*"], "`{record.R.F}`", "the current value of field F of record R", Where::RunTime),
    form(&["var", "*"], "`{var.V}`", "the current value of variable V", Where::RunTime),
    form(&["time", "start"], "`{time.start}`", "the simulated start, `YYYY-MM-DD HH:MM`", Where::Everywhere),
    form(&["time", "now"], "`{time.now}`", "the simulated time now", Where::RunTime),
    form(&["arg", "*"], "`{arg.A}`", "argument A of the tool call (lists joined with `, `)", Where::InTool),
    form(
        &["msg", "from|from_name|subject|body"],
        "`{msg.from}`, `.from_name`, `.subject`, `.body`",
        "the message an actor answers",
        Where::InActorRule,
    ),
];

impl Placeholder {
    /// Whether `parts` (a placeholder split at dots) has this form.
    pub fn matches(&self, parts: &[&str]) -> bool {
        parts.len() == self.path.len()
            && self.path.iter().zip(parts).all(|(p, part)| *p == "*" || p.split('|').any(|alt| alt == *part))
    }

    /// The first form `parts` has.
    pub fn of(parts: &[&str]) -> Option<&'static Placeholder> {
        PLACEHOLDERS.iter().find(|p| p.matches(parts))
    }
}

impl Where {
    /// As the guide's table says it.
    pub fn written(self) -> &'static str {
        match self {
            Where::Everywhere => "everywhere",
            Where::RunTime => "run time only",
            Where::InTool => "inside a tool",
            Where::InActorRule => "actor rules",
        }
    }
}

/// The guide's placeholder table, generated from [`PLACEHOLDERS`].
pub fn placeholder_table() -> String {
    let mut s = String::from("| placeholder | value | where |\n|---|---|---|\n");
    for p in PLACEHOLDERS {
        s.push_str(&format!("| {} | {} | {} |\n", p.written, p.gives, p.renders.written()));
    }
    s
}
