//! rabble-agent: publishes a node's facts, heartbeats, services and checks to the hub over MQTT.

pub mod allocs;
pub mod args;
pub mod assign;
pub mod cgroup;
pub mod checks;
pub mod config;
pub mod control;
pub mod dns;
pub mod driver;
mod engine;
pub mod error;
pub mod facts;
pub mod link;
pub mod logs;
pub mod programs;
pub mod proxy;
pub mod services;
pub mod tls;
pub mod trace;
#[cfg(windows)]
pub mod win32;
#[cfg(windows)]
pub mod winservice;

pub use config::Config;
pub use engine::run;
pub use error::AgentError;
