//! Which cells the search explores. Cells that differ only in factors that change what
//! the target reads (see [`crate::world::inert_for_search`]) have the same dynamics:
//! the search explores one of them. Every cell is still started and rendered (see
//! [`crate::world::seed_plan`] for the seeds).

use super::*;
pub use crate::world::{inert_for_search, presentational};

/// One cell per class of cells that differ only in factors inert for the search: the
/// world's default cell where it is in the class, else the first; in the world's order.
pub fn representatives(world: &World) -> Vec<&Cell> {
    let inert = inert_for_search(&world.file);
    let mut heads: Vec<(usize, &Cell)> =
        crate::world::classes_apart_from(world, &world.cells, &inert).into_iter().map(|class| class[0]).collect();
    heads.sort_by_key(|(i, _)| *i);
    heads.into_iter().map(|(_, c)| c).collect()
}
