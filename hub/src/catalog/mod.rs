//! The catalog: nodes, services and checks, jobs, the KV store and variables, kept in redb behind a
//! single writer.
//!
//! `state` (the whole catalog, `Update`, `Dirty`) and `node` (a node's rules) are pure;
//! `health` is the one rule for an instance's status and address; `views` builds the
//! API's views; `store` is redb; `writer` is the one task that changes any of it.

pub mod health;
pub mod jobs;
pub mod kv;
pub mod kv_txn;
pub mod node;
pub mod state;
pub mod store;
pub mod vars;
mod views;
pub mod writer;
pub use jobs::{AllocUpdate, JobUpdate};
pub use node::NodeUpdate;
pub use state::{Catalog, Update};
pub use store::{Store, StoreError};
