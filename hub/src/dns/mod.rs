//! The DNS interface: `<service>.service.<domain>` and friends, answered from the
//! live catalog over UDP and TCP, with everything else relayed to recursors. The zone
//! and the answers are `rabble_core::dns` (re-exported); `server` does the IO.

pub use rabble_core::dns::{answer, fast, fixture, stats, zone};
pub mod server;

pub use server::{DnsServer, serve};
pub use zone::{DnsSettings, Zone};
