//! The hub's configuration: `/etc/rabble/hub.toml`, every setting also a flag (flags win).

use rabble_agent::duration::GoDuration;
use rabble_agent::mqtt::BrokerAddr;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/rabble/hub.toml";

pub use rabble_agent::config::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub mqtt_listen: Option<SocketAddr>,
    pub broker: Option<String>,
    pub http_listen: Option<SocketAddr>,
    pub heartbeat_ttl: Option<GoDuration>,
}

#[derive(Debug, Default, Clone, clap::Args)]
pub struct Flags {
    /// Config file (TOML); missing is fine when it is the default path.
    #[arg(long, env = "RABBLE_HUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the catalog lives (default /var/lib/rabble).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// The embedded MQTT broker's listen address (default 0.0.0.0:1883).
    #[arg(long)]
    pub mqtt_listen: Option<SocketAddr>,
    /// Use this external broker (e.g. mqtt://mosquitto:1883) instead of the embedded one.
    #[arg(long)]
    pub broker: Option<String>,
    /// The HTTP API's listen address (default 127.0.0.1:8500).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// A node whose heartbeats stop for this long is down (default 15s).
    #[arg(long)]
    pub heartbeat_ttl: Option<GoDuration>,
}

/// Which broker the hub uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChoice {
    Embedded { listen: SocketAddr },
    External(BrokerAddr),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub broker: BrokerChoice,
    pub http_listen: SocketAddr,
    pub heartbeat_ttl: Duration,
}

impl Config {
    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let file: FileConfig = rabble_agent::config::read_toml(flags.config.as_deref(), DEFAULT_CONFIG)?;
        let broker = match flags.broker.or(file.broker) {
            Some(b) => BrokerChoice::External(
                BrokerAddr::parse(&b).map_err(|message| ConfigError::Field { field: "broker", message })?,
            ),
            None => BrokerChoice::Embedded {
                listen: flags.mqtt_listen.or(file.mqtt_listen).unwrap_or_else(|| ([0, 0, 0, 0], 1883).into()),
            },
        };
        let heartbeat_ttl = flags.heartbeat_ttl.or(file.heartbeat_ttl).map_or(Duration::from_secs(15), |d| d.0);
        if heartbeat_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Field { field: "heartbeat_ttl", message: "must be at least 1s".into() });
        }
        Ok(Config {
            data_dir: flags.data_dir.or(file.data_dir).unwrap_or_else(|| "/var/lib/rabble".into()),
            broker,
            http_listen: flags.http_listen.or(file.http_listen).unwrap_or_else(|| ([127, 0, 0, 1], 8500).into()),
            heartbeat_ttl,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_shipped_sample_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/etc/hub.toml");
        let c = Config::resolve(Flags { config: Some(p), ..Default::default() }).unwrap();
        assert_eq!(c.broker, BrokerChoice::Embedded { listen: ([0, 0, 0, 0], 1883).into() });
        assert_eq!(c.heartbeat_ttl, Duration::from_secs(15));
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::resolve(Flags { broker: Some("http://x".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("broker:"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hub.toml");
        std::fs::write(&p, "http_listen = \"nope\"\n").unwrap();
        let e = Config::resolve(Flags { config: Some(p), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("hub.toml") && e.contains("line 1"), "{e}");
    }
}
