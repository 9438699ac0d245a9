//! The hub's command-line flags: every setting of hub.toml, which they override.

use rabble_shared::support::duration::GoDuration;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Default, Clone, clap::Args)]
pub struct Flags {
    /// Config file (TOML); missing is fine when it is the default path.
    #[arg(long, env = "RABBLE_HUB_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Where the catalog lives (default /var/lib/rabble).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// The embedded MQTT broker's listen address (default 0.0.0.0:1883).
    #[arg(long)]
    pub mqtt_listen: Option<SocketAddr>,
    /// The embedded broker's MQTT-over-TLS listen address (default 0.0.0.0:8883; on when
    /// --tls-cert and --tls-key are given).
    #[arg(long)]
    pub mqtts_listen: Option<SocketAddr>,
    /// The hub's certificate (PEM), e.g. from `rabble-hub tls init`.
    #[arg(long)]
    pub tls_cert: Option<PathBuf>,
    /// The hub certificate's private key (PEM).
    #[arg(long)]
    pub tls_key: Option<PathBuf>,
    /// Refuse MQTT clients without credentials from `rabble-hub node add`
    /// (default: on when TLS is on).
    #[arg(long)]
    pub require_credentials: Option<bool>,
    /// The username the hub logs in to an external broker with.
    #[arg(long)]
    pub broker_username: Option<String>,
    /// File holding the password for --broker-username.
    #[arg(long)]
    pub broker_password_file: Option<PathBuf>,
    /// CA file for an external mqtts:// broker (default: the system trust store).
    #[arg(long)]
    pub broker_ca: Option<PathBuf>,
    /// Use this external broker (e.g. mqtt://mosquitto:1883) instead of the embedded one.
    #[arg(long)]
    pub broker: Option<String>,
    /// The HTTP API's listen address (default 127.0.0.1:8500).
    #[arg(long)]
    pub http_listen: Option<SocketAddr>,
    /// The API over HTTPS with the hub's certificate (--tls-cert/--tls-key), for the LAN
    /// (e.g. 0.0.0.0:8501; default: off).
    #[arg(long)]
    pub https_listen: Option<SocketAddr>,
    /// A node whose heartbeats stop for this long is down (default 4s).
    #[arg(long)]
    pub heartbeat_ttl: Option<GoDuration>,
    /// After the hub starts, how long a node it knows as up has to be heard from before it
    /// is down (default 35s: more than an agent's longest reconnect backoff).
    #[arg(long)]
    pub restart_grace: Option<GoDuration>,
    /// A node down this long is forgotten, with its services (Nomad's node_gc_threshold;
    /// default 24h; 0s: never).
    #[arg(long)]
    pub node_gc_threshold: Option<GoDuration>,
    /// DNS listen address, UDP and TCP (default 0.0.0.0:8600).
    #[arg(long)]
    pub dns_listen: Option<SocketAddr>,
    /// The DNS domain (default `rabble`; `consul` for a drop-in migration).
    #[arg(long)]
    pub domain: Option<String>,
    /// TTL of DNS answers, seconds (default 0).
    #[arg(long)]
    pub dns_ttl: Option<u32>,
    /// TTL of negative answers (the SOA minimum), seconds (default 0).
    #[arg(long)]
    pub dns_negative_ttl: Option<u32>,
    /// Serve only passing instances (default: passing and warning).
    #[arg(long)]
    pub dns_only_passing: bool,
    /// At most this many address records per answer (default: no limit).
    #[arg(long)]
    pub dns_a_record_limit: Option<usize>,
    /// Upstream DNS server for names outside the domain, ip[:port] (repeatable).
    #[arg(long = "recursor")]
    pub recursors: Vec<String>,
    /// A KV prefix to mirror retained on `rabble/kv/<key>` (repeatable; default none:
    /// values may be secrets).
    #[arg(long = "kv-public")]
    pub kv_public: Vec<String>,
    /// Send alerts here too (repeatable): `ntfy:https://ntfy.sh/homelab`, `gotify:URL`
    /// (the token in $RABBLE_GOTIFY_TOKEN), `webhook:URL`, `discord:URL`, `slack:URL`,
    /// `alertmanager:URL`, `mqtt`; a bare URL is Discord's or Slack's by its host, else ntfy.
    #[arg(long = "notify")]
    pub notify: Vec<String>,
    #[command(flatten)]
    pub cluster: crate::cluster::config::ClusterFlags,
}
