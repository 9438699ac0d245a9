//! The catalog: nodes, services and checks, kept in redb behind a single writer.

pub mod state;
pub mod store;
pub mod writer;
pub use state::{Catalog, Update};
pub use store::{Store, StoreError};
