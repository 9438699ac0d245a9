//! End-to-end tests: real hub and agent processes on loopback, real brokers
//! (embedded rumqttd, and Mosquitto), real mosquitto_sub / mosquitto_pub as peers.

// The harness is synchronous (it drives processes, not futures): std time is right here.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

mod acl;
mod acme;
mod agent_ct;
mod alerts;
mod cli;
mod cluster;
mod consul_api;
mod dispatch;
mod dns;
mod dns_nodes;
mod docker;
mod docker_jobs;
mod drivers;
mod failover;
mod firstboot;
mod forget;
mod homeassistant;
mod https;
mod hub_alerts;
mod hub_ct;
mod hubs;
mod image;
mod install;
mod jobs;
mod kinds;
mod kv;
mod lifecycle;
mod liveness;
mod logs;
mod malformed;
mod mosquitto;
mod nfs;
mod nomad_api;
mod policy;
mod prometheus;
mod proxmox;
mod proxy;
mod proxy_secure;
mod qemu;
mod restart;
mod routes;
mod silent;
mod templates;
mod tls;
mod ui;
mod volumes;
mod windows;

use std::path::PathBuf;

/// The seed's two Consul service files, unchanged.
pub fn seed(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/seed").join(name)
}
