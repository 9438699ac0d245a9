//! DNS for `<service>.service.<domain>` and friends, pure: `zone` (the catalog precomputed
//! for DNS), `fast` (the fast path for plain A/AAAA queries), `answer` (request bytes → an
//! answer, Consul's semantics), `stats` (counters on the request path), `fixture` (a small
//! zone for the fuzz target and the randomized test), `publish` (the zone as the agents
//! get it, to answer on every node). The hub serves them over UDP and TCP.

pub mod answer;
pub mod fast;
pub mod fixture;
pub mod publish;
pub mod stats;
pub mod zone;

pub use zone::{DnsSettings, Zone};
