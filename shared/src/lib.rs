//! Rabble's wire contract: MQTT topic names, versioned payloads, HTTP API and control-socket shapes.
//!
//! Invariant: the wire modules do no IO (`support`, behind its cargo feature, holds the
//! helpers that do). Everything that crosses a process boundary is
//! defined here and nowhere else, with golden tests of its encoded form.

pub mod alerts;
pub mod alloc;
pub mod api;
pub mod assign;
pub mod attr;
pub mod certs;
pub mod consul;
pub mod control;
pub mod dns;
pub mod health;
pub mod id;
pub mod job;
pub mod logs;
pub mod msg;
pub mod rendered;
pub mod routes;
pub mod summary;
#[cfg(feature = "support")]
pub mod support;
pub mod topic;
pub mod volume;

pub use health::Status;
pub use id::{AllocId, IdError, NodeId, TopicId};
pub use msg::{DecodeError, WIRE_VERSION};
