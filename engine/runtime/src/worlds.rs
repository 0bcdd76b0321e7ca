//! Finding world files on disk and loading them (with their included files).

use std::path::{Path, PathBuf};

use terrarium_core::{Diagnostic, World};

/// Why a world could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// The world file has problems; each is located.
    #[error("{} problem(s) in {path}", diagnostics.len())]
    Invalid { path: String, diagnostics: Vec<Diagnostic> },
}

/// The world files named by `path`: a `world.ron` file (or any `.ron` file), a world
/// folder (holding `world.ron`), or a folder of world folders (all of them, sorted).
pub fn find_worlds(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |message: String| LoadError::Io { path: path.display().to_string(), message };
    let meta = std::fs::metadata(path).map_err(|e| io(format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let own = path.join("world.ron");
    if own.is_file() {
        return Ok(vec![own]);
    }
    let mut found = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| io(format!("cannot list: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(format!("cannot list: {e}")))?;
        let candidate = entry.path().join("world.ron");
        if candidate.is_file() {
            found.push(candidate);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(io("no world.ron here, and no folder here holds one".into()));
    }
    Ok(found)
}

/// Read and validate the world at `path` (a `.ron` file); included files are read
/// relative to its folder.
pub fn load_world(path: &Path) -> Result<World, LoadError> {
    let shown = path.display().to_string();
    let text =
        read_input_file(path, MAX_INCLUDE_BYTES).map_err(|message| LoadError::Io { path: shown.clone(), message })?;
    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    terrarium_core::load(&shown, &text, &mut FolderIncludes { folder })
        .map_err(|diagnostics| LoadError::Invalid { path: shown, diagnostics })
}

/// What a world in `folder` may include: body files inside its own folder, and
/// libraries inside the folder that holds it (the catalog, `worlds/`), so worlds share
/// parts without reaching anywhere else.
pub struct FolderIncludes {
    folder: PathBuf,
}

impl FolderIncludes {
    /// The includes of a world whose file is in `folder`.
    pub fn new(folder: impl Into<PathBuf>) -> Self {
        FolderIncludes { folder: folder.into() }
    }
}

impl terrarium_core::world::Includes for FolderIncludes {
    fn body(&mut self, rel: &str) -> Result<String, String> {
        read_include(&self.folder, rel)
    }

    fn library(&mut self, rel: &str) -> Result<String, String> {
        let folder = if self.folder.as_os_str().is_empty() { Path::new(".") } else { self.folder.as_path() };
        let catalog = std::fs::canonicalize(folder)
            .map_err(|e| format!("cannot resolve the world's folder: {e}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("the world's folder has no parent to share libraries in")?;
        read_confined(&catalog, &folder.join(rel), rel, "the folder that holds the world's folder")
    }
}

/// The text of a file a command reads as input (a world, a labelled set): a regular
/// file of at most `max` bytes, so a device (`/dev/zero`), a FIFO or a huge file is
/// refused with a message, never read until memory runs out or forever.
pub fn read_input_file(path: &Path, max: u64) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file (a device, a FIFO or a folder is not read)".into());
    }
    if meta.len() > max {
        return Err(format!("{} bytes; a file read as input may be at most {max}", meta.len()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))
}

/// The largest file a world may include (`body_file`).
pub const MAX_INCLUDE_BYTES: u64 = 4 * 1024 * 1024;

/// Read a file a world includes, named relative to the world's folder. Its real path
/// (links resolved) must lie inside that folder, and it must be a regular file of at
/// most [`MAX_INCLUDE_BYTES`]: a link to `/etc/passwd` or a folder above, a FIFO that
/// would block, or `/dev/zero` that would never end are refused with the reason.
pub fn read_include(folder: &Path, rel: &str) -> Result<String, String> {
    let folder_real = std::fs::canonicalize(if folder.as_os_str().is_empty() { Path::new(".") } else { folder })
        .map_err(|e| format!("cannot resolve the world's folder: {e}"))?;
    read_confined(&folder_real, &folder.join(rel), rel, "the world's folder")
}

/// Read `path` (named `rel` in messages) if its real path lies inside `root` and it is
/// a regular file of at most [`MAX_INCLUDE_BYTES`].
fn read_confined(root: &Path, path: &Path, rel: &str, root_name: &str) -> Result<String, String> {
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot read `{rel}`: {e}"))?;
    if !real.starts_with(root) {
        return Err(format!(
            "`{rel}` resolves to {}, outside {root_name}; an included file must be inside it",
            real.display()
        ));
    }
    let meta = std::fs::metadata(&real).map_err(|e| format!("cannot read `{rel}`: {e}"))?;
    if !meta.is_file() {
        return Err(format!("`{rel}` is not a regular file"));
    }
    if meta.len() > MAX_INCLUDE_BYTES {
        return Err(format!("`{rel}` is {} bytes; an included file may be at most {MAX_INCLUDE_BYTES}", meta.len()));
    }
    std::fs::read_to_string(&real).map_err(|e| format!("cannot read `{rel}`: {e}"))
}

/// `path` written relative to the folder `base`, both made absolute first (`..` where
/// needed), so a run folder can say where its worlds are in a form that holds from any
/// working directory and when the folder moves together with its worlds. `None` when
/// either path cannot be resolved.
pub fn relative_to(path: &Path, base: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let base = std::fs::canonicalize(base).ok()?;
    let (ours, theirs): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let shared = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    let mut rel = PathBuf::new();
    for _ in shared..theirs.len() {
        rel.push("..");
    }
    for part in &ours[shared..] {
        rel.push(part);
    }
    rel.to_str().map(str::to_string)
}

/// Where a world recorded as `recorded` by the folder `base` is now: relative to `base`
/// (how run folders record it), then as written (absolute, or relative to the working
/// directory, as older run folders recorded it), then under each folder above `base`
/// (an older run folder inside the project, used from elsewhere). The first that is a
/// file; `None` when none is.
pub fn locate(recorded: &str, base: &Path) -> Option<PathBuf> {
    let recorded = Path::new(recorded);
    let mut candidates = vec![base.join(recorded), recorded.to_path_buf()];
    if recorded.is_relative()
        && let Ok(real) = std::fs::canonicalize(base)
    {
        candidates.extend(real.ancestors().skip(1).map(|a| a.join(recorded)));
    }
    candidates.into_iter().find(|c| c.is_file())
}
