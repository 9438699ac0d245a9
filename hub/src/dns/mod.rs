//! The DNS interface: `<service>.service.<domain>` and friends, answered from the
//! live catalog over UDP and TCP, with everything else relayed to recursors.

pub mod answer;
pub mod fast;
pub mod fixture;
pub mod server;
pub mod stats;
pub mod zone;

pub use server::{DnsServer, serve};
pub use zone::{DnsSettings, Zone};
