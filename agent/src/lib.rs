//! rabble-agent: publishes a node's facts, heartbeats, services and checks to the hub over MQTT.

pub mod checks;
pub mod duration;
pub mod services;
pub mod tls;
