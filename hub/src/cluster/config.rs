//! `[cluster]` in hub.toml and its flags, in Consul's and Nomad's words: `bootstrap_expect`,
//! `retry_join`, `cluster_listen` (Consul's serf/raft port idea, one port here), and the
//! shared `cluster_key` from `rabble-hub cluster keygen` (Consul's `encrypt`).

use super::ClusterConfig;
use super::tls::ClusterKey;
use rabble_shared::support::config::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_PORT: u16 = 8301;
/// Snapshot every 5,000 entries, keep 1,000 behind it: a snapshot of a homelab's catalog
/// is small (a few hundred KB), so taking one often costs little.
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 5_000;
pub const DEFAULT_TRAILING_LOGS: u64 = 1_000;

/// The `[cluster]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub bootstrap_expect: Option<usize>,
    #[serde(default)]
    pub retry_join: Vec<String>,
    pub cluster_listen: Option<SocketAddr>,
    pub advertise: Option<String>,
    pub cluster_key: Option<String>,
    pub cluster_key_file: Option<PathBuf>,
    pub name: Option<String>,
    pub witness: Option<bool>,
    pub snapshot_threshold: Option<u64>,
    pub trailing_logs: Option<u64>,
}

#[derive(Debug, Default, Clone, clap::Args)]
pub struct ClusterFlags {
    /// Start a new hub cluster once this many hubs (this one included) find each other;
    /// 1 makes this hub a cluster of one that others join (default: 1 without
    /// --retry-join; with it, join only).
    #[arg(long)]
    pub bootstrap_expect: Option<usize>,
    /// A hub (host:port of its cluster listener) to find the cluster through (repeatable).
    #[arg(long = "retry-join")]
    pub retry_join: Vec<String>,
    /// Where this hub listens for other hubs (default 0.0.0.0:8301).
    #[arg(long)]
    pub cluster_listen: Option<SocketAddr>,
    /// How other hubs reach this one, host:port (default: cluster_listen, or this host's
    /// name when that is a wildcard address).
    #[arg(long)]
    pub cluster_advertise: Option<String>,
    /// File holding the cluster key from `rabble-hub cluster keygen`.
    #[arg(long, env = "RABBLE_CLUSTER_KEY_FILE")]
    pub cluster_key_file: Option<PathBuf>,
    /// A voter that keeps the log and runs nothing else (no broker, DNS or API): the
    /// third vote beside two hubs, small enough for a Pi.
    #[arg(long)]
    pub witness: bool,
    /// Entries between snapshots of the catalog (Consul's raft_snapshot_threshold;
    /// default 5000).
    #[arg(long)]
    pub snapshot_threshold: Option<u64>,
    /// Entries kept in the log behind a snapshot (Consul's raft_trailing_logs; default 1000).
    #[arg(long)]
    pub trailing_logs: Option<u64>,
}

fn field(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Field { field, message: message.into() }
}

/// `None` when neither the table nor a flag asks for a cluster.
pub fn resolve(
    file: Option<ClusterFile>,
    flags: ClusterFlags,
    data_dir: &Path,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let asked = file.is_some()
        || flags.bootstrap_expect.is_some()
        || !flags.retry_join.is_empty()
        || flags.cluster_listen.is_some()
        || flags.witness;
    if !asked {
        return Ok(None);
    }
    let file = file.unwrap_or_default();
    let key_text = match (flags.cluster_key_file.or(file.cluster_key_file), file.cluster_key) {
        (Some(path), _) => rabble_shared::support::config::read_secret(&path)?,
        (None, Some(k)) => k,
        (None, None) => {
            return Err(field(
                "cluster_key",
                "a hub cluster needs the shared key: `rabble-hub cluster keygen`, then cluster_key_file on every hub",
            ));
        }
    };
    let key = ClusterKey::parse(&key_text).map_err(|e| field("cluster_key", e.to_string()))?;
    let retry_join = if flags.retry_join.is_empty() { file.retry_join } else { flags.retry_join };
    let retry_join: Vec<String> = retry_join
        .into_iter()
        .map(|a| {
            if a.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                a
            } else {
                format!("{a}:{DEFAULT_PORT}")
            }
        })
        .collect();
    let bootstrap_expect =
        flags.bootstrap_expect.or(file.bootstrap_expect).unwrap_or(if retry_join.is_empty() { 1 } else { usize::MAX });
    if bootstrap_expect == 0 {
        return Err(field("bootstrap_expect", "must be at least 1"));
    }
    let listen = flags.cluster_listen.or(file.cluster_listen).unwrap_or_else(|| ([0, 0, 0, 0], DEFAULT_PORT).into());
    let host = hostname();
    let advertise = match flags.cluster_advertise.or(file.advertise) {
        Some(a) => a,
        None if listen.ip().is_unspecified() => format!("{host}:{}", listen.port()),
        None => listen.to_string(),
    };
    let snapshot_threshold = flags.snapshot_threshold.or(file.snapshot_threshold).unwrap_or(DEFAULT_SNAPSHOT_THRESHOLD);
    if snapshot_threshold == 0 {
        return Err(field("snapshot_threshold", "must be at least 1"));
    }
    let trailing_logs = flags.trailing_logs.or(file.trailing_logs).unwrap_or(DEFAULT_TRAILING_LOGS);
    Ok(Some(ClusterConfig {
        key,
        listen,
        advertise,
        retry_join,
        bootstrap_expect,
        name: file.name.unwrap_or(host),
        witness: flags.witness || file.witness.unwrap_or(false),
        snapshot_threshold,
        trailing_logs,
        data_dir: data_dir.to_owned(),
        api: String::new(),
    }))
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rabble-hub".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_unless_asked_and_a_key_is_required() {
        let dir = Path::new("/tmp");
        assert!(resolve(None, ClusterFlags::default(), dir).unwrap().is_none());
        let flags = ClusterFlags { bootstrap_expect: Some(3), ..Default::default() };
        let e = resolve(None, flags, dir).unwrap_err().to_string();
        assert!(e.contains("cluster keygen"), "{e}");
    }

    #[test]
    fn defaults_follow_consul() {
        let key = ClusterKey::generate().unwrap();
        let file = ClusterFile {
            cluster_key: Some(key.clone()),
            retry_join: vec!["hub2.lan".into(), "10.0.0.3:9301".into()],
            cluster_listen: Some("10.0.0.1:8301".parse().unwrap()),
            ..Default::default()
        };
        let c = resolve(Some(file), ClusterFlags::default(), Path::new("/d")).unwrap().unwrap();
        assert_eq!(c.retry_join, ["hub2.lan:8301", "10.0.0.3:9301"]);
        assert_eq!(c.bootstrap_expect, usize::MAX, "with retry_join and no bootstrap_expect: join only");
        assert_eq!(c.advertise, "10.0.0.1:8301");
        let file = ClusterFile { cluster_key: Some(key), ..Default::default() };
        let c = resolve(Some(file), ClusterFlags::default(), Path::new("/d")).unwrap().unwrap();
        assert_eq!(c.bootstrap_expect, 1, "alone: a cluster of one others join");
        assert!(c.advertise.ends_with(":8301"));
        let bad = ClusterFile { cluster_key: Some("short".into()), ..Default::default() };
        assert!(resolve(Some(bad), ClusterFlags::default(), Path::new("/d")).is_err());
    }
}
