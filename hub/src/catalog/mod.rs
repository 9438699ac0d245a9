//! The catalog in the hub: the state and its rules are `rabble_core::catalog` (re-exported
//! here); this module adds what does IO — `store` (redb) and `writer`, the one task that
//! changes the catalog.

pub use rabble_core::catalog::*;
pub mod apply;
pub mod store;
pub mod writer;
pub use store::{Store, StoreError};
