//! The catalog: nodes, services and checks, jobs, the KV store, variables and volumes — the state
//! and the rules that change it.
//!
//! `state` (the whole catalog, `Update`, `Dirty`) and `node` (a node's rules) are pure;
//! `health` is the one rule for an instance's status and address; `views` builds the
//! API's views. The hub keeps the catalog in redb behind a single writer.

pub mod health;
pub mod jobs;
pub mod kv;
pub mod kv_txn;
pub mod log;
pub mod node;
pub mod record;
pub mod state;
pub mod vars;
mod views;
pub mod volumes;
pub use jobs::{AllocUpdate, JobUpdate};
pub use node::NodeUpdate;
pub use state::{Catalog, Update};
