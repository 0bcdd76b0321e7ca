//! Which cells the search explores. Cells that differ only in factors that change what
//! the target reads (see [`crate::world::inert_for_search`]) have the same dynamics:
//! the search explores one of them. Every cell is still started at every start seed
//! and rendered.

use super::*;
pub use crate::world::{inert_for_search, presentational};

/// One cell per class of cells that differ only in factors inert for the search: the
/// world's default cell where it is in the class, else the first.
pub fn representatives(world: &World) -> Vec<&Condition> {
    let shown = inert_for_search(&world.file);
    let mut classes: BTreeMap<Vec<(String, String)>, &Condition> = BTreeMap::new();
    for cell in &world.cells {
        let key: Vec<(String, String)> = cell.0.iter().filter(|(f, _)| !shown.contains(f)).cloned().collect();
        let slot = classes.entry(key).or_insert(cell);
        if cell == &world.default_cell {
            *slot = cell;
        }
    }
    let mut cells: Vec<&Condition> = classes.into_values().collect();
    cells.sort_by_key(|c| world.cells.iter().position(|x| x == *c));
    cells
}
