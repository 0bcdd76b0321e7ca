//! A structural index of a RON document: where each field, list item and map entry
//! starts, so that semantic errors found after deserialisation carry `line:col`.
//!
//! `ron` reports positions for syntax and type errors but gives no spans for values.
//! This module re-reads the same text with a small, tolerant parser that records only
//! structure and positions; a validation error names a [`Path`] and is located here.

use std::fmt;

/// A 1-based line and column, as editors count them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// A named field of a struct or struct-like enum variant.
    Field(String),
    /// The n-th element of a list or tuple.
    Index(usize),
    /// The value under a map key (string keys).
    Key(String),
}

/// A path from the document root to a value, e.g. `tools["flip"].effects[0]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<Seg>);

impl Path {
    pub fn root() -> Self {
        Path(Vec::new())
    }
    pub fn field(&self, name: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Field(name.to_string()));
        Path(segs)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        Path(segs)
    }
    pub fn key(&self, k: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(k.to_string()));
        Path(segs)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Field(name) if i == 0 => write!(f, "{name}")?,
                Seg::Field(name) => write!(f, ".{name}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// A value in the index: its start position and its children.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub pos: Pos,
    /// Byte range of the value itself in the indexed text.
    pub start: usize,
    pub end: usize,
    /// Written as `[...]`.
    is_list: bool,
    named: Vec<(String, Node)>,
    positional: Vec<Node>,
    keyed: Vec<(String, Node)>,
}

impl Node {
    /// The position of the value at `path`, or of the deepest ancestor that exists.
    pub fn locate(&self, path: &Path) -> Pos {
        let mut node = self;
        for seg in &path.0 {
            match node.child(seg) {
                Some(next) => node = next,
                None => break,
            }
        }
        node.pos
    }

    /// The value at exactly `path`, if the text has one there.
    pub fn get(&self, path: &Path) -> Option<&Node> {
        path.0.iter().try_fold(self, |node, seg| node.child(seg))
    }

    /// Where the named top-level field of this node starts (its name).
    pub fn field_pos(&self, name: &str) -> Option<Pos> {
        self.child(&Seg::Field(name.to_string())).map(|n| n.pos)
    }

    /// The named fields of this node (a struct), in written order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.named.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The path of the innermost value that starts at or before `pos`: where a parse
    /// error at `pos` happened, for a message that names the field.
    pub fn path_at(&self, pos: Pos) -> Path {
        let mut path = Path::root();
        let mut node = self;
        loop {
            let named = node.named.iter().map(|(n, v)| (Seg::Field(n.clone()), v));
            let keyed = node.keyed.iter().map(|(k, v)| (Seg::Key(k.clone()), v));
            let positional = node.positional.iter().enumerate().map(|(i, v)| (Seg::Index(i), v));
            let best = named.chain(keyed).chain(positional).filter(|(_, v)| v.pos <= pos).max_by_key(|(_, v)| v.pos);
            match best {
                Some((seg, next)) => {
                    // Newtype wrappers (`Some(x)`, `Sent(Msg(..))`) add no segment.
                    if !(matches!(seg, Seg::Index(0)) && node.positional.len() == 1 && node.named.is_empty()) {
                        path.0.push(seg);
                    }
                    node = next;
                }
                None => return path,
            }
        }
    }

    fn child(&self, seg: &Seg) -> Option<&Node> {
        let direct = match seg {
            Seg::Field(name) => self.named.iter().find(|(n, _)| n == name).map(|(_, v)| v),
            Seg::Index(i) => self.positional.get(*i),
            Seg::Key(k) => self.keyed.iter().find(|(n, _)| n == k).map(|(_, v)| v),
        };
        // A newtype wrapper such as `Some(...)`, `Sent(Msg(...))` or `All([...])` is
        // transparent: the serde model sees through it, so the path does too.
        match (seg, self.positional.as_slice()) {
            (Seg::Field(_) | Seg::Key(_), [only]) => direct.or_else(|| only.child(seg)),
            (Seg::Index(_), [only]) if only.is_list && !self.is_list => only.child(seg),
            _ => direct,
        }
    }
}

/// The index of a text, built the first time a position is asked for: a world that
/// loads without a problem never needs one.
#[derive(Debug)]
pub struct LazyIndex {
    text: String,
    node: std::cell::OnceCell<Node>,
}

impl LazyIndex {
    pub fn new(text: String) -> Self {
        LazyIndex { text, node: std::cell::OnceCell::new() }
    }

    /// The index ([`index`], or an empty one where the text cannot be indexed).
    pub fn get(&self) -> &Node {
        self.node.get_or_init(|| index(&self.text).unwrap_or_default())
    }
}

/// Index `text`. Returns `None` when the text is not well-formed enough to index; the
/// caller then relies on the positions `ron` itself reports.
pub fn index(text: &str) -> Option<Node> {
    let mut p = Parser { src: text.as_bytes(), at: 0, line: 1, col: 1, depth: 0 };
    p.skip_trivia();
    while p.peek() == Some(b'#') {
        // `#![enable(...)]` extension attributes.
        p.skip_attribute()?;
        p.skip_trivia();
    }
    p.value()
}

struct Parser<'a> {
    src: &'a [u8],
    at: usize,
    line: u32,
    col: u32,
    depth: u32,
}

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: u32 = 128;

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.at).copied()
    }
    fn pos(&self) -> Pos {
        Pos { line: self.line, col: self.col }
    }
    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            // Count characters, not bytes: skip UTF-8 continuation bytes.
            self.col += 1;
        }
        Some(b)
    }
    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(), self.src.get(self.at + 1).copied()) {
                (Some(b' ' | b'\t' | b'\r' | b'\n'), _) => {
                    self.bump();
                }
                (Some(b'/'), Some(b'/')) => {
                    while !matches!(self.peek(), None | Some(b'\n')) {
                        self.bump();
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    self.bump();
                    self.bump();
                    let mut nest = 1;
                    while nest > 0 {
                        match (self.bump(), self.peek()) {
                            (None, _) => return,
                            (Some(b'*'), Some(b'/')) => {
                                self.bump();
                                nest -= 1;
                            }
                            (Some(b'/'), Some(b'*')) => {
                                self.bump();
                                nest += 1;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return,
            }
        }
    }
    fn skip_attribute(&mut self) -> Option<()> {
        // `#` `!`? `[` ... `]` with nested brackets.
        self.bump();
        self.eat(b'!');
        if !self.eat(b'[') {
            return None;
        }
        let mut nest = 1;
        while nest > 0 {
            match self.bump()? {
                b'[' => nest += 1,
                b']' => nest -= 1,
                _ => {}
            }
        }
        Some(())
    }
    fn ident(&mut self) -> String {
        let start = self.at;
        while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || b == b'_') {
            self.bump();
        }
        String::from_utf8_lossy(&self.src[start..self.at]).into_owned()
    }

    fn value(&mut self) -> Option<Node> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.skip_trivia();
        let mut node = Node { pos: self.pos(), start: self.at, ..Node::default() };
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'\'' => {
                self.bump();
                while self.peek()? != b'\'' {
                    if self.bump()? == b'\\' {
                        self.bump()?;
                    }
                }
                self.bump();
            }
            b'r' if matches!(self.src.get(self.at + 1), Some(b'"' | b'#')) => {
                self.raw_string()?;
            }
            b'[' => {
                self.bump();
                node.is_list = true;
                self.sequence(b']', &mut node)?;
            }
            b'(' => {
                self.bump();
                self.sequence(b')', &mut node)?;
            }
            b'{' => {
                self.bump();
                self.map(&mut node)?;
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                self.ident();
                self.skip_trivia();
                if self.eat(b'(') {
                    self.sequence(b')', &mut node)?;
                }
            }
            b if b.is_ascii_digit() || b == b'-' || b == b'+' || b == b'.' => {
                self.bump();
                while matches!(self.peek(), Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
                {
                    self.bump();
                }
            }
            _ => return None,
        }
        node.end = self.at;
        self.depth -= 1;
        Some(node)
    }

    fn string(&mut self) -> Option<String> {
        self.bump(); // opening quote
        let mut out = Vec::new();
        loop {
            match self.bump()? {
                b'"' => break,
                b'\\' => {
                    let escaped = self.bump()?;
                    out.push(match escaped {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        other => other,
                    });
                }
                b => out.push(b),
            }
        }
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn raw_string(&mut self) -> Option<String> {
        self.bump(); // r
        let mut hashes = 0;
        while self.eat(b'#') {
            hashes += 1;
        }
        if !self.eat(b'"') {
            return None;
        }
        let start = self.at;
        loop {
            if self.bump()? == b'"' {
                let end = self.at - 1;
                let mut n = 0;
                while n < hashes && self.peek() == Some(b'#') {
                    self.bump();
                    n += 1;
                }
                if n == hashes {
                    return Some(String::from_utf8_lossy(&self.src[start..end]).into_owned());
                }
            }
        }
    }

    /// Elements of `(...)` or `[...]`: positional values or `name: value` fields.
    fn sequence(&mut self, close: u8, node: &mut Node) -> Option<()> {
        loop {
            self.skip_trivia();
            if self.eat(close) {
                return Some(());
            }
            // A named field is an identifier followed by a single `:`.
            let save = (self.at, self.line, self.col);
            if matches!(self.peek(), Some(b) if b.is_ascii_alphabetic() || b == b'_') {
                let name_pos = self.pos();
                let name = self.ident();
                self.skip_trivia();
                if self.peek() == Some(b':') && self.src.get(self.at + 1) != Some(&b':') {
                    self.bump();
                    let mut value = self.value()?;
                    // Point at the field name: that is where an author looks.
                    value.pos = name_pos;
                    node.named.push((name, value));
                    self.after_item(close)?;
                    continue;
                }
                (self.at, self.line, self.col) = save;
            }
            let value = self.value()?;
            node.positional.push(value);
            self.after_item(close)?;
        }
    }

    fn map(&mut self, node: &mut Node) -> Option<()> {
        loop {
            self.skip_trivia();
            if self.eat(b'}') {
                return Some(());
            }
            let key_pos = self.pos();
            let key = match self.peek()? {
                b'"' => self.string()?,
                b'r' => self.raw_string()?,
                _ => {
                    self.value()?;
                    String::new()
                }
            };
            self.skip_trivia();
            if !self.eat(b':') {
                return None;
            }
            let mut value = self.value()?;
            value.pos = key_pos;
            node.keyed.push((key, value));
            self.skip_trivia();
            if !self.eat(b',') {
                self.skip_trivia();
                if self.peek() != Some(b'}') {
                    return None;
                }
            }
        }
    }

    fn after_item(&mut self, close: u8) -> Option<()> {
        self.skip_trivia();
        if self.eat(b',') {
            return Some(());
        }
        (self.peek() == Some(close)).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_fields_items_and_keys() {
        let text = "World(\n  id: \"x\",\n  tools: {\n    \"send\": Tool(effects: [\n      Fire(\"m\", \"e\"),\n      Result(\"ok\"),\n    ]),\n  },\n)";
        let root = index(text).expect("indexes");
        let path = Path::root().field("tools").key("send").field("effects").index(1);
        assert_eq!(root.locate(&path), Pos { line: 6, col: 7 });
        assert_eq!(root.locate(&Path::root().field("id")), Pos { line: 2, col: 3 });
        // A missing tail falls back to the deepest existing ancestor.
        let missing = Path::root().field("tools").key("nope");
        assert_eq!(root.locate(&missing), Pos { line: 3, col: 3 });
    }

    #[test]
    fn newtype_wrappers_are_transparent() {
        let text = "(when: Sent(Msg(to_any: [\"a\"], facts: [])))";
        let root = index(text).expect("indexes");
        let path = Path::root().field("when").field("facts");
        assert_eq!(root.locate(&path), Pos { line: 1, col: 32 });
        let text = "(when: All([\n  Always,\n  Never,\n]))";
        let root = index(text).expect("indexes");
        assert_eq!(root.locate(&Path::root().field("when").index(1)), Pos { line: 3, col: 3 });
    }
}
