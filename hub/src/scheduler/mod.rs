//! The scheduler: which node runs each allocation of each job. The rules are pure
//! (`constraint`: node attributes and constraint checks; `plan`: feasibility, ranking
//! and placement with reasons); the task that applies them reads the catalog and
//! writes placements back through the catalog writer.

pub mod constraint;
pub mod eval;
#[cfg(test)]
mod fixture;
pub mod periodic;
pub mod plan;
pub mod preview;
pub mod reconcile;
pub mod task;
