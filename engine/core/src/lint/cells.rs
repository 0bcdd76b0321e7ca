//! Which cells the search explores. Cells that differ only in factors that change what
//! the target reads (see [`crate::world::inert_for_search`]) have the same dynamics:
//! the search explores one of them. Every cell is still started and rendered (see
//! [`crate::world::seed_plan`] for the seeds).

use super::*;
pub use crate::world::{inert_for_search, presentational};

/// One cell per class of cells that differ only in factors inert for the search: the
/// world's default cell where it is in the class, else the first.
pub fn representatives(world: &World) -> Vec<&Cell> {
    let shown = inert_for_search(&world.file);
    // Class key → (the index of its chosen cell, the cell).
    let mut classes: BTreeMap<Vec<(String, String)>, (usize, &Cell)> = BTreeMap::new();
    for (i, cell) in world.cells.iter().enumerate() {
        let key = cell.pairs_where(|f| !shown.contains(f));
        let slot = classes.entry(key).or_insert((i, cell));
        if cell == &world.default_cell {
            *slot = (i, cell);
        }
    }
    let mut cells: Vec<(usize, &Cell)> = classes.into_values().collect();
    cells.sort_by_key(|(i, _)| *i);
    cells.into_iter().map(|(_, c)| c).collect()
}
