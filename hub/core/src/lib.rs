//! The hub's pure core: everything the hub decides, as functions of their inputs.
//!
//! The catalog and its rules (`catalog`: what an update does to the state), the scheduler
//! (`scheduler`: what runs where), Nomad job files (`jobspec`), the template language
//! (`template`), the lanes' routing tables (`routes`), the DNS zone and answers (`dns`),
//! Prometheus metrics (`metrics`) and ACME planning (`acme`). The hub crate wraps them in
//! tasks that do the IO (redb, MQTT, sockets, clocks).
//!
//! **Invariant:** no IO and no async runtime here: none of tokio, rumqttc, rumqttd, redb,
//! axum or hyper is a dependency (the compiler enforces what a comment cannot), and
//! applying an update to the catalog reads no clock and draws no random number — times
//! and ids are chosen before an update is made, so every hub applying the same updates
//! reaches the same catalog.

pub mod acl;
pub mod acme;
pub mod alert;
pub mod assign;
pub mod catalog;
pub mod dns;
pub mod homeassistant;
pub mod jobspec;
pub mod metrics;
pub mod nomad;
pub mod routes;
pub mod scheduler;
pub mod template;

#[cfg(test)]
mod docs_tests;
