//! The scheduler in the hub: its rules are `rabble_core::scheduler` (re-exported here);
//! `task` is the loop that applies them to each new catalog and sends its decisions through
//! the writer.

pub use rabble_core::scheduler::*;
pub mod task;
