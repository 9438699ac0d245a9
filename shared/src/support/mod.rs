//! Helpers both processes need that are not the wire: broker addresses and reconnect
//! backoff, Go-style durations, config and secret files, the TLS client config for the
//! MQTT link, the wall clock, file change stamps, sealing secrets. Behind the `support` cargo feature, so the wire modules
//! stay pure (this module reads files and the clock; the wire modules never do).

pub mod clock;
pub mod config;
pub mod duration;
pub mod hcl;
pub mod join;
pub mod mqtt;
pub mod mutate;
pub mod seal;
pub mod stamp;
pub mod tls;
