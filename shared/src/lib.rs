//! Rabble's wire contract: MQTT topic names, versioned payloads, HTTP API and control-socket shapes.
//!
//! Invariant: this crate does no IO. Everything that crosses a process boundary is
//! defined here and nowhere else, with golden tests of its encoded form.

pub mod api;
pub mod control;
pub mod health;
pub mod id;
pub mod msg;
pub mod topic;

pub use health::Status;
pub use id::{IdError, NodeId, TopicId};
pub use msg::{DecodeError, WIRE_VERSION};
