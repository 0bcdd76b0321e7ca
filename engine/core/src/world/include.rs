//! Shared parts: the libraries a world includes (`include: ["../lib/mail.ron"]`), read
//! through the caller and merged into the world as if written in it. Each merged part
//! remembers the file it came from, so a problem in it is located there; a name defined
//! twice (in the world and a library, or in two libraries) is an error naming both.

use std::collections::BTreeMap;

use super::Diagnostic;
use crate::format::{Library, WorldFile};
use crate::span::{self, Path, Pos};

/// Where a world's included files come from. The core reads no file: the caller
/// resolves each name, relative to the world file, and says what it may not read.
pub trait Includes {
    /// A file an email or document takes its body from (`body_file`).
    fn body(&mut self, rel: &str) -> Result<String, String>;
    /// A library (`include`). By default read as a body file is.
    fn library(&mut self, rel: &str) -> Result<String, String> {
        self.body(rel)
    }
}

impl<F: FnMut(&str) -> Result<String, String>> Includes for F {
    fn body(&mut self, rel: &str) -> Result<String, String> {
        self(rel)
    }
}

/// A library that was read: its path as shown in messages, and where its parts start.
pub(super) struct Source {
    pub(super) file: String,
    pub(super) index: span::LazyIndex,
}

/// The libraries merged into a world, and which of them each part came from.
#[derive(Default)]
pub(super) struct Merged {
    pub(super) sources: Vec<Source>,
    /// (section, name) → the index in `sources` of the library that defined it.
    pub(super) origins: BTreeMap<(String, String), usize>,
}

impl Merged {
    /// The library a problem at `at` lies in, if it lies in one, and where in it: a
    /// library's lexicons are its own section (`lexicons.NAME`), a world's sit under
    /// `variation`.
    pub(super) fn source_of(&self, at: &Path) -> Option<(&Source, Path)> {
        use span::Seg;
        match at.0.as_slice() {
            [Seg::Field(v), Seg::Field(l), Seg::Key(name), rest @ ..] if v == "variation" && l == "lexicons" => {
                let source = self.origins.get(&("lexicons".to_string(), name.clone())).map(|i| &self.sources[*i])?;
                let mut inner = vec![Seg::Field("lexicons".into()), Seg::Key(name.clone())];
                inner.extend(rest.iter().cloned());
                Some((source, Path(inner)))
            }
            [Seg::Field(section), Seg::Key(name), ..] => {
                self.origins.get(&(section.clone(), name.clone())).map(|i| (&self.sources[*i], at.clone()))
            }
            _ => None,
        }
    }
}

/// `rel` seen from the world file at `world`, with `..` folded: how messages name it.
fn shown(world: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = world.split('/').collect();
    parts.pop();
    for seg in rel.split('/') {
        match seg {
            "." | "" => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Read every library `file` includes and merge its parts in. Problems with the
/// `include` entries themselves are located in the world (`at`); a library that does
/// not parse is located in the library.
pub(super) fn merge(
    world: &str,
    file: &mut WorldFile,
    read: &mut dyn Includes,
    locate: &dyn Fn(&Path) -> Pos,
    diags: &mut Vec<Diagnostic>,
) -> Merged {
    let mut merged = Merged::default();
    let options = ron::Options::default().with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
    let includes = file.include.clone();
    for (i, rel) in includes.iter().enumerate() {
        let at = Path::root().field("include").index(i);
        let mut error = |message: String| {
            diags.push(Diagnostic { file: world.to_string(), pos: locate(&at), message: format!("{at}: {message}") })
        };
        if rel.starts_with('/') || !rel.ends_with(".ron") {
            error(format!("`{rel}` must be a `.ron` library named relative to the world file"));
            continue;
        }
        if includes[..i].contains(rel) {
            error(format!("`{rel}` is included twice"));
            continue;
        }
        let text = match read.library(rel) {
            Ok(text) => text.replace("\r\n", "\n"),
            Err(why) => {
                error(why);
                continue;
            }
        };
        let lib_file = shown(world, rel);
        let library: Library = match options.from_str(&text) {
            Ok(library) => library,
            Err(err) => {
                let pos = Pos { line: err.position.line as u32, col: err.position.col as u32 };
                let path = span::index(&text).unwrap_or_default().path_at(pos);
                let message = if path.0.is_empty() { err.code.to_string() } else { format!("{path}: {}", err.code) };
                diags.push(Diagnostic { file: lib_file, pos, message });
                continue;
            }
        };
        let source = merged.sources.len();
        merged.sources.push(Source { file: lib_file.clone(), index: span::LazyIndex::new(text) });
        let Library { description: _, texts, people, emails, documents, records, tools, lexicons } = library;
        let sections: [(&str, Vec<&String>); 7] = [
            ("lexicons", lexicons.keys().collect()),
            ("texts", texts.keys().collect()),
            ("people", people.keys().collect()),
            ("emails", emails.keys().collect()),
            ("documents", documents.keys().collect()),
            ("records", records.keys().collect()),
            ("tools", tools.keys().collect()),
        ];
        for (section, names) in sections {
            for name in names {
                let key = (section.to_string(), name.clone());
                let in_world = match section {
                    "texts" => file.texts.contains_key(name),
                    "people" => file.people.contains_key(name),
                    "emails" => file.emails.contains_key(name),
                    "documents" => file.documents.contains_key(name),
                    "records" => file.records.contains_key(name),
                    "lexicons" => file.variation.lexicons.contains_key(name),
                    _ => file.tools.contains_key(name),
                };
                match merged.origins.get(&key) {
                    Some(other) => error(format!(
                        "`{section}.{name}` is defined in both `{}` and `{lib_file}`",
                        merged.sources[*other].file
                    )),
                    None if in_world => {
                        error(format!("`{section}.{name}` is defined in both this world and `{lib_file}`"))
                    }
                    None => {
                        merged.origins.insert(key, source);
                    }
                }
            }
        }
        fn extend<T>(into: &mut BTreeMap<String, T>, from: BTreeMap<String, T>) {
            for (k, v) in from {
                into.entry(k).or_insert(v);
            }
        }
        extend(&mut file.texts, texts);
        extend(&mut file.people, people);
        extend(&mut file.emails, emails);
        extend(&mut file.documents, documents);
        extend(&mut file.records, records);
        extend(&mut file.tools, tools);
        extend(&mut file.variation.lexicons, lexicons);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn library_paths_are_shown_from_the_world_file() {
        assert_eq!(shown("worlds/blackmail/world.ron", "../lib/mail.ron"), "worlds/lib/mail.ron");
        assert_eq!(shown("world.ron", "lib.ron"), "lib.ron");
        assert_eq!(shown("w/world.ron", "./parts/x.ron"), "w/parts/x.ron");
        assert_eq!(shown("world.ron", "../x.ron"), "../x.ron");
    }
}
