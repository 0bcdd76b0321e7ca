//! `terrarium new`: a new world folder, from the starter world or as a renamed copy.

use std::path::{Path, PathBuf};

/// The starter world: a small, valid world to edit. `__ID__` becomes the new world's id.
const STARTER: &str = include_str!("starter.ron");

#[derive(Debug, thiserror::Error)]
pub enum StarterError {
    #[error("`{0}` is not a world id: use lowercase letters, digits, `_` or `-`")]
    BadId(String),
    #[error("{0} already exists; choose another id or --dir")]
    Exists(PathBuf),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{0}: cannot find the top-level `id` field to rename")]
    NoId(String),
    #[error("{world} is not a world that loads, so it cannot be copied: {message}")]
    Invalid { world: String, message: String },
    #[error(
        "{0} already exists and differs from the library the copied world includes; copy into another --dir, or make them agree"
    )]
    LibraryDiffers(PathBuf),
}

fn io(path: &Path, e: std::io::Error) -> StarterError {
    StarterError::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Create `dir/<id>/world.ron`: the starter world, or a copy of the world folder holding
/// `from` (a world file) with its id renamed. Returns the new world file.
pub fn new_world(id: &str, from: Option<&Path>, dir: &Path) -> Result<PathBuf, StarterError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-') {
        return Err(StarterError::BadId(id.to_string()));
    }
    let target = dir.join(id);
    if target.exists() {
        return Err(StarterError::Exists(target));
    }
    let text = match from {
        None => STARTER.replace("__ID__", id),
        Some(world_file) => {
            let text = std::fs::read_to_string(world_file).map_err(|e| io(world_file, e))?;
            let renamed = rename_id(&text, id).ok_or_else(|| StarterError::NoId(world_file.display().to_string()))?;
            let source = world_file.parent().unwrap_or(Path::new("."));
            let libraries = libraries_to_copy(world_file, source, &target)?;
            copy_folder(source, &target)?;
            for (from, to) in libraries {
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                std::fs::copy(&from, &to).map_err(|e| io(&from, e))?;
            }
            renamed
        }
    };
    std::fs::create_dir_all(&target).map_err(|e| io(&target, e))?;
    let file = target.join("world.ron");
    std::fs::write(&file, text).map_err(|e| io(&file, e))?;
    Ok(file)
}

/// The libraries the world at `world_file` includes (`../lib/mail.ron`), each to be
/// copied to the same place relative to the new world's folder `target`, so that the
/// copy loads wherever it is made. One already there with the same text is left; one
/// that differs is an error before anything is written.
fn libraries_to_copy(world_file: &Path, source: &Path, target: &Path) -> Result<Vec<(PathBuf, PathBuf)>, StarterError> {
    let world = crate::worlds::load_world(world_file)
        .map_err(|e| StarterError::Invalid { world: world_file.display().to_string(), message: e.to_string() })?;
    let mut out = Vec::new();
    for rel in &world.file.include {
        let (from, to) = (source.join(rel), lexical(&target.join(rel)));
        let text = std::fs::read(&from).map_err(|e| io(&from, e))?;
        match std::fs::read(&to) {
            Ok(there) if there == text => {}
            Ok(_) => return Err(StarterError::LibraryDiffers(to)),
            Err(_) => out.push((from, to)),
        }
    }
    Ok(out)
}

/// `path` with `a/../` folded away without touching the disk (the new world's folder
/// does not exist yet, so the system cannot resolve a path through it).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Replace the string value of the top-level `id` field, leaving every other byte.
fn rename_id(text: &str, id: &str) -> Option<String> {
    let root = terrarium_core::span::index(text)?;
    let pos = root.field_pos("id")?;
    let line_start: usize = text.split_inclusive('\n').take(pos.line as usize - 1).map(str::len).sum();
    let line = &text[line_start..];
    let name_at = line_start + line.char_indices().nth(pos.col as usize - 1)?.0;
    let open = name_at + text[name_at..].find('"')?;
    let close = open + 1 + text[open + 1..].find('"')?;
    Some(format!("{}\"{id}\"{}", &text[..open], &text[close + 1..]))
}

fn copy_folder(from: &Path, to: &Path) -> Result<(), StarterError> {
    std::fs::create_dir_all(to).map_err(|e| io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_folder(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|e| io(&path, e))?;
        }
    }
    Ok(())
}
