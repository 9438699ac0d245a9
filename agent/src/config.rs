//! The agent's configuration: `/etc/rabble/agent.toml`, every setting also a flag
//! (flags win). `Config::resolve` is the one path from file + flags to a checked config.

use crate::driver::{DEFAULT_DOCKER_SOCKET, DEFAULT_PODMAN_SOCKET, DriverConfig};
use crate::facts::Identity;
use rabble_shared::NodeId;
use rabble_shared::support::duration::GoDuration;
use rabble_shared::support::mqtt::BrokerAddr;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(unix)]
pub const DEFAULT_CONFIG: &str = "/etc/rabble/agent.toml";
#[cfg(unix)]
pub const DEFAULT_SERVICES_DIR: &str = "/etc/rabble/services.d";
#[cfg(unix)]
pub const DEFAULT_SOCKET: &str = "/run/rabble/agent.sock";
// Windows: everything under ProgramData; the socket is the named pipe \\.\pipe\agent.sock.
#[cfg(windows)]
pub const DEFAULT_CONFIG: &str = r"C:\ProgramData\rabble\agent.toml";
#[cfg(windows)]
pub const DEFAULT_SERVICES_DIR: &str = r"C:\ProgramData\rabble\services.d";
#[cfg(windows)]
pub const DEFAULT_SOCKET: &str = r"C:\ProgramData\rabble\agent.sock";
/// A heartbeat a second (~0.4 KB of JSON, QoS 0) lets the hub notice a silent node in
/// under 5 s; a 3 s keepalive makes the broker fire the Will within 4.5 s of silence.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(3);
/// Node metrics every 10 s (~0.4 KB more on one heartbeat in ten), as a Prometheus scrape.
pub const DEFAULT_METRICS_INTERVAL: Duration = Duration::from_secs(10);
/// On /run (a tmpfs): allocation directories never touch the SD card.
#[cfg(unix)]
pub const DEFAULT_ALLOC_DIR: &str = "/run/rabble/alloc";
#[cfg(windows)]
pub const DEFAULT_ALLOC_DIR: &str = r"C:\ProgramData\rabble\alloc";
/// Where the agent answers DNS: the port a local Consul agent used, so the seed's Unbound
/// `stub-addr: 127.0.0.1@8600` works unchanged.
pub const DEFAULT_DNS_LISTEN: &str = "127.0.0.1:8600";

pub use rabble_shared::support::config::{ConfigError, read_secret, read_toml};

/// The agent's config file, as written. Unknown keys are an error (a typo in a key
/// should not silently fall back to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// One hub, or every hub of a cluster in order of preference.
    pub hub: Option<HubList>,
    pub name: Option<String>,
    pub datacenter: Option<String>,
    pub node_class: Option<String>,
    pub advertise: Option<IpAddr>,
    pub services_dir: Option<PathBuf>,
    pub enable_script_checks: Option<bool>,
    pub heartbeat_interval: Option<GoDuration>,
    pub metrics_interval: Option<GoDuration>,
    pub keepalive: Option<GoDuration>,
    pub socket: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub join_token_file: Option<PathBuf>,
    pub docker: Option<bool>,
    pub docker_socket: Option<PathBuf>,
    pub podman_socket: Option<PathBuf>,
    pub hub_key: Option<String>,
    pub raw_exec: Option<bool>,
    pub alloc_dir: Option<PathBuf>,
    /// Where to answer DNS (`""`: not at all).
    pub dns_listen: Option<String>,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Directories lent to jobs (`volume "x" { type = "host" source = "x" }`), by name.
    #[serde(default)]
    pub host_volumes: BTreeMap<String, PathBuf>,
    /// `[[lane]]` tables: the HTTP lanes this node serves.
    #[serde(default)]
    pub lane: Vec<crate::proxy::LaneListen>,
}

/// `hub = "mqtts://hub.lan"` or `hub = ["mqtts://hub1.lan", "mqtts://hub2.lan"]` (read
/// by hand: serde's untagged enums cost the agent 4 KB).
#[derive(Debug, Clone, Default)]
pub struct HubList(pub Vec<String>);

impl<'de> Deserialize<'de> for HubList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<HubList, D::Error> {
        struct Hubs;
        impl<'de> serde::de::Visitor<'de> for Hubs {
            type Value = HubList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a hub's URL, or a list of them")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<HubList, E> {
                Ok(HubList(vec![s.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<HubList, A::Error> {
                let mut hubs = Vec::new();
                while let Some(h) = seq.next_element::<String>()? {
                    hubs.push(h);
                }
                Ok(HubList(hubs))
            }
        }
        d.deserialize_any(Hubs)
    }
}

/// Settings given as flags (`crate::args` parses them); `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Flags {
    /// Config file (TOML); missing is fine when it is the default path.
    pub config: Option<PathBuf>,
    /// The hub's MQTT broker, e.g. mqtt://hub.lan:1883; repeated: every hub, in order.
    pub hub: Vec<String>,
    /// The node's name (default: the hostname).
    pub name: Option<String>,
    pub datacenter: Option<String>,
    pub node_class: Option<String>,
    /// The address DNS and other nodes use for this node (default: detected).
    pub advertise: Option<IpAddr>,
    /// Directory of service files (*.toml, *.hcl, *.json).
    pub services_dir: Option<PathBuf>,
    /// Allow `args` (script) checks.
    pub enable_script_checks: bool,
    /// How often to publish a heartbeat, e.g. 5s.
    pub heartbeat_interval: Option<GoDuration>,
    /// MQTT keepalive; the broker declares the agent gone after 1.5x this.
    pub keepalive: Option<GoDuration>,
    /// The local control socket (`rabble-agent check ...` talks to it).
    pub socket: Option<PathBuf>,
    /// PEM file of the CA that signed the hub's certificate (for an mqtts:// hub);
    /// without it the system's trust store is used.
    pub ca: Option<PathBuf>,
    /// File holding this node's token from `rabble-hub node add <name>`.
    pub token_file: Option<PathBuf>,
    /// A join token (`rabble-hub node add <name> --join`): traded at the first connect
    /// for the node's own token, then kept in token_file.
    pub join_token_file: Option<PathBuf>,
    /// The Docker engine's socket (default /var/run/docker.sock).
    pub docker_socket: Option<PathBuf>,
    /// Do not use Docker on this node.
    pub no_docker: bool,
    /// Podman's socket (default /run/podman/podman.sock, used where it exists).
    pub podman_socket: Option<PathBuf>,
    /// Node metadata, key=value (repeatable).
    pub meta: Vec<(String, String)>,
    /// The hub's public key (`rabble-hub key`): the agent runs only work signed with it.
    pub hub_key: Option<String>,
    /// Do not run raw_exec or exec tasks on this node.
    pub no_exec: bool,
    /// Where allocations' working directories go (a tmpfs: nothing reaches the SD card).
    pub alloc_dir: Option<PathBuf>,
    /// HTTP lanes to serve, `name=address` (added to the file's).
    pub lanes: Vec<crate::proxy::LaneListen>,
    /// Where to answer DNS (`""`: not at all).
    pub dns_listen: Option<String>,
}

/// A node joining with a join token: the password that trades it, and where its new
/// token moves once the hub accepted it.
#[derive(Debug, Clone)]
pub struct Join {
    pub password: String,
    /// `<token_file>.joining`: the new token, kept until the hub accepted it (a retry
    /// after a lost CONNACK presents the same one).
    pub pending: PathBuf,
    pub token_file: PathBuf,
}

/// The node's own token for a join, made once and kept in `pending` (0600).
fn pending_token(pending: &Path) -> Result<String, ConfigError> {
    if pending.exists() {
        return read_secret(pending);
    }
    let err = |message: String| ConfigError::File { path: pending.to_owned(), message };
    let token = rabble_shared::support::join::new_token().map_err(|e| err(e.to_string()))?;
    use std::io::Write;
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut f = open.open(pending).map_err(|e| err(format!("cannot create: {e}")))?;
    f.write_all(token.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| err(format!("cannot write: {e}")))?;
    Ok(token)
}

/// The resolved configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The hub first tried; the others of `hubs` are tried in turn when it cannot be reached.
    pub hub: BrokerAddr,
    /// Every hub, `hub` first (one entry for a single hub).
    pub hubs: Vec<BrokerAddr>,
    pub node: NodeId,
    pub identity: Identity,
    pub services_dir: PathBuf,
    pub enable_script_checks: bool,
    pub heartbeat_interval: Duration,
    /// How often a heartbeat carries the node's metrics (`/metrics`); zero: never.
    pub metrics_interval: Duration,
    pub keepalive: Duration,
    pub socket: Option<PathBuf>,
    /// CA file for an mqtts:// hub (None: the system trust store).
    pub ca: Option<PathBuf>,
    /// MQTT username (the node id) and password (its token), when a token file is set.
    pub credentials: Option<(String, String)>,
    /// Joining: the node's token is not recorded by the hub yet.
    pub join: Option<Join>,
    pub drivers: DriverConfig,
    /// The hub's ed25519 public key; without one the agent runs no work.
    pub hub_key: Option<Vec<u8>>,
    pub alloc_dir: PathBuf,
    pub host_volumes: BTreeMap<String, PathBuf>,
    /// The HTTP lanes this node serves.
    pub lanes: Vec<crate::proxy::LaneListen>,
    /// Where this node answers DNS from the hub's zone; `None`: it does not.
    pub dns_listen: Option<std::net::SocketAddr>,
}

impl Config {
    /// On which heartbeats the metrics ride: every n-th (0: never).
    pub fn metrics_every(&self) -> u64 {
        if self.metrics_interval.is_zero() {
            return 0;
        }
        let n = self.metrics_interval.as_secs_f64() / self.heartbeat_interval.as_secs_f64();
        (n.round() as u64).max(1)
    }

    /// Reads the config file (if any) and applies the flags over it.
    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let file: FileConfig = read_toml(flags.config.as_deref(), DEFAULT_CONFIG)?;
        let given = match (flags.hub.is_empty(), file.hub) {
            (false, _) => flags.hub,
            (true, Some(HubList(hubs))) => hubs,
            (true, None) => vec!["mqtt://127.0.0.1:1883".into()],
        };
        let hubs = given
            .iter()
            .map(|h| BrokerAddr::parse(h).map_err(|message| ConfigError::Field { field: "hub", message }))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(hub) = hubs.first().cloned() else {
            return Err(ConfigError::Field { field: "hub", message: "an empty list: name at least one hub".into() });
        };
        if hubs.iter().any(|h| h.tls != hub.tls) {
            return Err(ConfigError::Field {
                field: "hub",
                message: "mixes mqtt:// and mqtts:// hubs: every hub of a cluster speaks the same".into(),
            });
        }
        let name = flags
            .name
            .or(file.name)
            .or_else(|| Some(crate::facts::hostname()).filter(|h| !h.is_empty()))
            .unwrap_or_else(|| "node".into());
        let node = NodeId::from_name(&name).ok_or_else(|| ConfigError::Field {
            field: "name",
            message: format!("{name:?} has no character usable as a node id ([a-z0-9_-])"),
        })?;
        let mut meta = file.meta;
        meta.extend(flags.meta);
        if meta.len() > 64 {
            return Err(ConfigError::Field { field: "meta", message: "more than 64 pairs".into() });
        }
        let heartbeat_interval =
            flags.heartbeat_interval.or(file.heartbeat_interval).map_or(DEFAULT_HEARTBEAT_INTERVAL, |d| d.0);
        let keepalive = flags.keepalive.or(file.keepalive).map_or(DEFAULT_KEEPALIVE, |d| d.0);
        if heartbeat_interval < Duration::from_millis(100) {
            return Err(ConfigError::Field { field: "heartbeat_interval", message: "must be at least 100ms".into() });
        }
        if keepalive < Duration::from_secs(1) || keepalive > Duration::from_secs(65535) {
            return Err(ConfigError::Field { field: "keepalive", message: "must be between 1s and 65535s".into() });
        }
        let ca = flags.ca.or(file.ca);
        if ca.is_some() && !hub.tls {
            return Err(ConfigError::Field {
                field: "ca",
                message: format!("is set but hub {hub} is not mqtts:// (the CA would be ignored)"),
            });
        }
        let (credentials, join) =
            match (flags.token_file.or(file.token_file), flags.join_token_file.or(file.join_token_file)) {
                (None, Some(_)) => {
                    return Err(ConfigError::Field {
                        field: "join_token_file",
                        message: "needs token_file: where the node keeps the token it trades the join token for".into(),
                    });
                }
                (Some(token_file), Some(j)) if !token_file.exists() => {
                    let pending = PathBuf::from(format!("{}.joining", token_file.display()));
                    let token = pending_token(&pending)?;
                    let password = rabble_shared::support::join::password(&read_secret(&j)?, &token);
                    (Some((node.as_str().to_owned(), token)), Some(Join { password, pending, token_file }))
                }
                (Some(path), _) => (Some((node.as_str().to_owned(), read_secret(&path)?)), None),
                (None, None) => (None, None),
            };
        let docker_socket = flags.docker_socket.or(file.docker_socket);
        // A socket set by hand on a build without Docker is reported as such in the facts.
        let docker_on = !flags.no_docker && file.docker.unwrap_or(cfg!(feature = "docker") || docker_socket.is_some());
        let drivers = DriverConfig {
            docker_socket: docker_on.then(|| docker_socket.unwrap_or_else(|| DEFAULT_DOCKER_SOCKET.into())),
            exec: !flags.no_exec && file.raw_exec.unwrap_or(true),
            podman_socket: Some(
                flags.podman_socket.or(file.podman_socket).unwrap_or_else(|| DEFAULT_PODMAN_SOCKET.into()),
            ),
        };
        let hub_key = match flags.hub_key.or(file.hub_key) {
            Some(k) => {
                Some(crate::assign::parse_key(&k).map_err(|message| ConfigError::Field { field: "hub_key", message })?)
            }
            None => None,
        };
        let mut lanes = file.lane;
        lanes.extend(flags.lanes);
        for (i, l) in lanes.iter().enumerate() {
            if !rabble_shared::routes::valid_lane(&l.name) {
                return Err(ConfigError::Field {
                    field: "lane",
                    message: format!("name {:?}: use [a-z0-9-], 1 to 32 characters", l.name),
                });
            }
            if lanes[..i].iter().any(|o| o.name == l.name || o.listen == l.listen) {
                return Err(ConfigError::Field {
                    field: "lane",
                    message: format!("lane {:?} ({}) is given twice", l.name, l.listen),
                });
            }
        }
        // The default is off where the hub is on this host: the hub answers DNS there itself.
        let dns_listen = match flags.dns_listen.or(file.dns_listen) {
            Some(s) if s.trim().is_empty() => None,
            Some(s) => Some(s.trim().parse().map_err(|e| ConfigError::Field {
                field: "dns_listen",
                message: format!("{s:?} is not an address:port ({e}); \"\" turns DNS off"),
            })?),
            None if hub_is_local(&hub) => None,
            None => DEFAULT_DNS_LISTEN.parse().ok(),
        };
        Ok(Config {
            hubs,
            dns_listen,
            lanes,
            ca,
            credentials,
            join,
            drivers,
            hub,
            node,
            identity: Identity {
                name,
                datacenter: flags.datacenter.or(file.datacenter).unwrap_or_else(|| "dc1".into()),
                node_class: flags.node_class.or(file.node_class).unwrap_or_default(),
                advertise: flags.advertise.or(file.advertise),
                meta,
            },
            services_dir: flags.services_dir.or(file.services_dir).unwrap_or_else(|| DEFAULT_SERVICES_DIR.into()),
            enable_script_checks: flags.enable_script_checks || file.enable_script_checks.unwrap_or(false),
            heartbeat_interval,
            metrics_interval: file.metrics_interval.map_or(DEFAULT_METRICS_INTERVAL, |d| d.0),
            keepalive,
            socket: Some(flags.socket.or(file.socket).unwrap_or_else(|| DEFAULT_SOCKET.into())),
            hub_key,
            alloc_dir: flags.alloc_dir.or(file.alloc_dir).unwrap_or_else(|| DEFAULT_ALLOC_DIR.into()),
            host_volumes: file.host_volumes,
        })
    }
}

/// Whether the hub runs on this host (a loopback address or `localhost`).
fn hub_is_local(hub: &BrokerAddr) -> bool {
    hub.host == "localhost" || hub.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn metrics_ride_on_every_nth_heartbeat_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        let every = |text: &str| {
            std::fs::write(&p, format!("hub = \"mqtt://hub.lan\"\n{text}")).unwrap();
            Config::resolve(Flags { config: Some(p.clone()), name: Some("pi".into()), ..Default::default() })
                .unwrap()
                .metrics_every()
        };
        assert_eq!(every(""), 10, "10 s over 1 s heartbeats");
        assert_eq!(every("metrics_interval = \"0s\"\n"), 0, "never");
        assert_eq!(every("metrics_interval = \"30s\"\nheartbeat_interval = \"2s\"\n"), 15);
        assert_eq!(every("metrics_interval = \"100ms\"\n"), 1, "at most on every heartbeat");
    }

    #[test]
    fn one_hub_or_a_list_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        let resolve = |text: &str, flags: Vec<String>| {
            std::fs::write(&p, text).unwrap();
            Config::resolve(Flags {
                config: Some(p.clone()),
                hub: flags,
                name: Some("pi".into()),
                ..Default::default()
            })
        };
        let c = resolve("hub = [\"mqtts://hub1.lan\", \"mqtts://hub2.lan:9883\"]\n", vec![]).unwrap();
        let hubs: Vec<String> = c.hubs.iter().map(ToString::to_string).collect();
        assert_eq!(hubs, ["mqtts://hub1.lan:8883", "mqtts://hub2.lan:9883"]);
        assert_eq!(c.hub, c.hubs[0]);
        let c = resolve("hub = \"mqtt://hub.lan\"\n", vec!["mqtt://a:1".into(), "mqtt://b:2".into()]).unwrap();
        assert_eq!(c.hubs.len(), 2, "the flags win, all of them");
        for (bad, why) in [
            ("hub = []\n", "empty list"),
            ("hub = [\"mqtt://a\", \"mqtts://b\"]\n", "mixes"),
            ("hub = [\"mqtt://a\", 3]\n", "hub"),
            ("hub = 3\n", "a hub's URL, or a list of them"),
        ] {
            let e = resolve(bad, vec![]).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn dns_is_on_by_default_except_beside_the_hub() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("agent.toml");
        std::fs::write(&empty, "").unwrap();
        let resolve = |hub: &str, listen: Option<&str>| {
            let flags = Flags {
                config: Some(empty.clone()),
                hub: vec![hub.into()],
                name: Some("pi1".into()),
                dns_listen: listen.map(str::to_owned),
                ..Default::default()
            };
            Config::resolve(flags).map(|c| c.dns_listen.map(|a| a.to_string()))
        };
        assert_eq!(resolve("mqtts://hub.lan:8883", None).unwrap().as_deref(), Some("127.0.0.1:8600"));
        assert_eq!(resolve("mqtt://127.0.0.1:1883", None).unwrap(), None, "the hub answers on its own host");
        assert_eq!(
            resolve("mqtt://localhost:1883", Some("127.0.0.1:5353")).unwrap().as_deref(),
            Some("127.0.0.1:5353")
        );
        assert_eq!(resolve("mqtt://hub.lan:1883", Some("")).unwrap(), None);
        let e = resolve("mqtt://hub.lan:1883", Some("8600")).unwrap_err().to_string();
        assert!(e.contains("dns_listen") && e.contains("address:port"), "{e}");
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(
            &p,
            "hub = \"mqtt://hub.lan:1999\"\nname = \"Pi3.lan\"\nheartbeat_interval = \"2s\"\n[meta]\nrack = \"a\"\n",
        )
        .unwrap();
        let c = Config::resolve(Flags { config: Some(p.clone()), ..Default::default() }).unwrap();
        assert_eq!((c.hub.host.as_str(), c.hub.port), ("hub.lan", 1999));
        assert_eq!(c.node.as_str(), "pi3-lan");
        assert_eq!(c.heartbeat_interval, Duration::from_secs(2));
        let c = Config::resolve(Flags {
            config: Some(p),
            name: Some("other".into()),
            meta: vec![("rack".into(), "b".into())],
            ..Default::default()
        })
        .unwrap();
        assert_eq!((c.node.as_str(), c.identity.meta["rack"].as_str()), ("other", "b"));
    }

    #[test]
    fn the_shipped_sample_config_is_valid() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/etc/agent.toml");
        let c = Config::resolve(Flags { config: Some(p), ..Default::default() }).unwrap();
        assert_eq!((c.hub.host.as_str(), c.identity.datacenter.as_str()), ("hub.lan", "home"));
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("agent.toml");
        std::fs::write(&p, "hub = \"mqtt://h\"\nheartbeet = \"5s\"\n").unwrap();
        let e = Config::resolve(Flags { config: Some(p.clone()), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("agent.toml") && e.contains("line 2") && e.contains("heartbeet"), "{e}");
        let e = Config::resolve(Flags { hub: vec!["http://x".into()], ..Default::default() }).unwrap_err().to_string();
        assert!(e.starts_with("hub:"), "{e}");
        let ca = Some(dir.path().join("ca.pem"));
        let e = Config::resolve(Flags { hub: vec!["mqtt://h".into()], ca: ca.clone(), ..Default::default() })
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ca:") && e.contains("not mqtts://"), "{e}");
        let token = dir.path().join("token");
        let with_token =
            |t: &Path| Flags { token_file: Some(t.to_owned()), name: Some("Pi3".into()), ..Default::default() };
        let e = Config::resolve(with_token(&token)).unwrap_err().to_string();
        assert!(e.contains("token") && e.contains("cannot read"), "{e}");
        std::fs::write(&token, "two words\n").unwrap();
        let e = Config::resolve(with_token(&token)).unwrap_err().to_string();
        assert!(e.contains("rabble-hub node add"), "{e}");
        std::fs::write(&token, "abc123\n").unwrap();
        let c = Config::resolve(with_token(&token)).unwrap();
        assert_eq!(c.credentials, Some(("pi3".to_owned(), "abc123".to_owned())));
    }

    /// The config file as users edit it, mutated: a configuration or an error naming the field,
    /// never a panic.
    #[test]
    fn config_files_take_any_mutation_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let seeds = [
            "hub = \"mqtts://hub.lan:8883\"\nca = \"/etc/rabble/ca.pem\"\ntoken_file = \"/etc/rabble/token\"\nname = \"pi3\"\n[meta]\nroom = \"den\"\n[[lane]]\nname = \"routing\"\nlisten = \"0.0.0.0:80\"\n",
        ];
        rabble_shared::support::mutate::mutations(
            &seeds,
            b"[]{}\"=.,:_ \n0123456789abcdeilmnoprstuvy",
            2_000,
            3086,
            |b| {
                std::fs::write(&path, b).unwrap();
                let _ = Config::resolve(Flags { config: Some(path.clone()), ..Default::default() });
            },
        );
    }
}
