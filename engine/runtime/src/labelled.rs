//! Reading labelled sets from disk and calibrating a world's verdicts against them
//! (`terrarium calibrate`). The measurement itself is `terrarium_core::calibrate`.

use std::path::{Path, PathBuf};

use terrarium_core::World;
use terrarium_core::calibrate::{self, Calibration, LabelledError, LabelledSet};

use crate::worlds::{LoadError, load_world};

/// Why a labelled set could not be calibrated.
#[derive(Debug, thiserror::Error)]
pub enum CalibrateError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(transparent)]
    Labelled(#[from] LabelledError),
    #[error("{path}: its world: {source}")]
    World {
        path: String,
        #[source]
        source: LoadError,
    },
}

/// The labelled sets named by `path`: one `.ron` file, or every `.ron` file in a
/// folder, sorted.
pub fn find_labelled(path: &Path) -> Result<Vec<PathBuf>, CalibrateError> {
    let io = |message: String| CalibrateError::Io { path: path.display().to_string(), message };
    let meta = std::fs::metadata(path).map_err(|e| io(format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| io(format!("cannot list: {e}")))? {
        let p = entry.map_err(|e| io(format!("cannot list: {e}")))?.path();
        if p.is_file() && p.extension().is_some_and(|x| x == "ron") {
            found.push(p);
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(io("no labelled set (.ron file) here".into()));
    }
    Ok(found)
}

/// Read one labelled set, load its world (named relative to the set's file) and run
/// every case.
pub fn calibrate_file(path: &Path) -> Result<Calibration, CalibrateError> {
    let (world, set) = load_set(path)?;
    Ok(calibrate::calibrate(&path.display().to_string(), &world, &set)?)
}

/// Read one labelled set and load its world (named relative to the set's file).
pub fn load_set(path: &Path) -> Result<(World, LabelledSet), CalibrateError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CalibrateError::Io { path: shown.clone(), message: format!("cannot read: {e}") })?;
    let set = calibrate::parse(&shown, &text)?;
    let mut world_path = path.parent().unwrap_or(Path::new("")).join(&set.world);
    if world_path.is_dir() {
        world_path = world_path.join("world.ron");
    }
    let world = load_world(&world_path).map_err(|source| CalibrateError::World { path: shown.clone(), source })?;
    calibrate::check_set(&shown, &world, &set)?;
    Ok((world, set))
}
