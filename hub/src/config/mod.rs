//! The hub's configuration: `/etc/rabble/hub.toml`, every setting also a flag (flags win).

use rabble_shared::support::duration::GoDuration;
use rabble_shared::support::mqtt::BrokerAddr;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = "/etc/rabble/hub.toml";

pub use rabble_shared::support::config::ConfigError;

mod flags;
pub use flags::Flags;

/// A node whose heartbeats (every second by default) stop for this long is down: with
/// the agent's 3 s keepalive, a node that vanishes without a word (power cut, Wi-Fi
/// gone) is down in under 5 s. Nomad takes 20-30 s.
pub const DEFAULT_HEARTBEAT_TTL: Duration = Duration::from_secs(4);
/// After a hub start, nodes get this long to be heard from: an agent's reconnect backoff
/// is at most 10 s (30 s in earlier agents), plus its connect.
pub const DEFAULT_RESTART_GRACE: Duration = Duration::from_secs(35);
/// Nomad's `node_gc_threshold`: a node down for a day is forgotten.
pub const DEFAULT_NODE_GC_THRESHOLD: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub mqtt_listen: Option<SocketAddr>,
    pub mqtts_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub require_credentials: Option<bool>,
    pub broker: Option<String>,
    pub broker_username: Option<String>,
    pub broker_password_file: Option<PathBuf>,
    pub broker_ca: Option<PathBuf>,
    pub http_listen: Option<SocketAddr>,
    pub https_listen: Option<SocketAddr>,
    pub heartbeat_ttl: Option<GoDuration>,
    pub restart_grace: Option<GoDuration>,
    pub node_gc_threshold: Option<GoDuration>,
    #[serde(default)]
    pub dns: DnsFile,
    /// `[[lane]]` tables: the HTTP routing lanes (default: `routing` and `ingress`).
    #[serde(default)]
    pub lane: Vec<crate::routes::table::Lane>,
    /// `[[resolver]]` tables: ACME certificate resolvers for `tls.certresolver`.
    #[serde(default)]
    pub resolver: Vec<crate::acme::config::ResolverFile>,
    #[serde(default)]
    pub kv: KvFile,
    #[serde(default)]
    pub acl: AclFile,
    /// `[cluster]`: hubs that replicate the catalog and take over from each other.
    pub cluster: Option<crate::cluster::config::ClusterFile>,
    #[serde(default)]
    pub alert: crate::alert::config::AlertFile,
    #[serde(default)]
    pub homeassistant: crate::homeassistant::HomeAssistantFile,
}

/// The `[acl]` table of hub.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclFile {
    /// The rules a request without a token gets, in the policies' HCL (default: read the
    /// service catalog). KV values, variables and ACLs are never given anonymously.
    pub anonymous: Option<String>,
}

/// The `[kv]` table of hub.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KvFile {
    /// Key prefixes mirrored retained on `rabble/kv/<key>` (none by default).
    #[serde(default)]
    pub public: Vec<String>,
}

/// The `[dns]` table of hub.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsFile {
    pub listen: Option<SocketAddr>,
    pub domain: Option<String>,
    pub ttl: Option<u32>,
    pub negative_ttl: Option<u32>,
    pub only_passing: Option<bool>,
    pub a_record_limit: Option<usize>,
    #[serde(default)]
    pub recursors: Vec<String>,
}

/// The DNS interface's configuration.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    pub listen: SocketAddr,
    pub settings: crate::dns::DnsSettings,
    pub recursors: Vec<SocketAddr>,
}

/// The anonymous rules unless hub.toml says otherwise: the service catalog, read.
fn default_anonymous() -> rabble_core::acl::Rules {
    rabble_core::acl::Rules::parse("default", rabble_core::acl::policy::ANONYMOUS_DEFAULT).unwrap_or_default()
}

fn missing(field: &'static str, other: &str) -> ConfigError {
    ConfigError::Field { field, message: format!("required with {other}") }
}

/// `ip` or `ip:port` (port 53 by default); IPv6 as `[ip]:port`.
fn parse_recursor(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.trim_matches(|c| c == '[' || c == ']')
        .parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an address (ip or ip:port)"))
}

/// Which broker the hub uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerChoice {
    /// rumqttd inside the hub: plain MQTT on `listen`, MQTT over TLS when `tls` is set,
    /// and every listener refusing clients without node credentials when asked.
    Embedded {
        listen: SocketAddr,
        tls: Option<TlsListener>,
        require_credentials: bool,
    },
    External(BrokerAddr),
}

/// A TLS listener (the embedded broker's MQTT, the API's HTTPS): where, and the hub's
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListener {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub broker: BrokerChoice,
    /// Username and password for an external broker.
    pub broker_login: Option<(String, String)>,
    /// CA file for an external mqtts:// broker.
    pub broker_ca: Option<PathBuf>,
    pub http_listen: SocketAddr,
    /// The API over HTTPS, with the hub's certificate.
    pub https: Option<TlsListener>,
    pub heartbeat_ttl: Duration,
    /// The heartbeat TTL of nodes not heard from since the hub started (at least `heartbeat_ttl`).
    pub restart_grace: Duration,
    /// A node down this long is forgotten (`None`: never).
    pub node_gc_threshold: Option<Duration>,
    pub dns: DnsConfig,
    /// The HTTP routing lanes.
    pub lanes: Vec<crate::routes::table::Lane>,
    pub resolvers: Vec<crate::acme::config::Resolver>,
    /// KV prefixes mirrored on MQTT.
    pub kv_public: Vec<String>,
    /// What a request without an ACL token may do once the ACLs are bootstrapped.
    pub anonymous: rabble_core::acl::Rules,
    /// The hub cluster this hub is a member of, when it is one.
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// `[alert]`: rules, grouping, receivers.
    pub alert: crate::alert::config::AlertConfig,
    /// `[homeassistant]`: every node a Home Assistant device (off: `None`).
    pub homeassistant: Option<crate::homeassistant::HomeAssistant>,
}

impl Config {
    /// One machine, nothing to configure (`rabble dev`, the in-process tests): the
    /// embedded broker without credentials on `mqtt`, DNS for `rabble` with TTL 0 (answers
    /// change as the catalog does), the default lanes, no ACME, no public KV.
    pub fn local(data_dir: PathBuf, http: SocketAddr, dns: SocketAddr, mqtt: SocketAddr) -> Config {
        Config {
            data_dir,
            broker: BrokerChoice::Embedded { listen: mqtt, tls: None, require_credentials: false },
            broker_login: None,
            broker_ca: None,
            http_listen: http,
            https: None,
            heartbeat_ttl: DEFAULT_HEARTBEAT_TTL,
            restart_grace: DEFAULT_RESTART_GRACE,
            node_gc_threshold: Some(DEFAULT_NODE_GC_THRESHOLD),
            dns: DnsConfig {
                listen: dns,
                settings: crate::dns::DnsSettings {
                    domain: vec!["rabble".into()],
                    ttl: 0,
                    negative_ttl: 0,
                    only_passing: false,
                    a_record_limit: 0,
                },
                recursors: vec![],
            },
            lanes: crate::routes::table::Lane::defaults(),
            resolvers: Vec::new(),
            kv_public: Vec::new(),
            anonymous: default_anonymous(),
            alert: crate::alert::config::AlertConfig::defaults(http.port()),
            homeassistant: None,
            cluster: None,
        }
    }

    pub fn resolve(flags: Flags) -> Result<Config, ConfigError> {
        let file: FileConfig = rabble_shared::support::config::read_toml(flags.config.as_deref(), DEFAULT_CONFIG)?;
        let https = match (
            flags.https_listen.or(file.https_listen),
            flags.tls_cert.clone().or_else(|| file.tls_cert.clone()),
            flags.tls_key.clone().or_else(|| file.tls_key.clone()),
        ) {
            (Some(listen), Some(cert), Some(key)) => Some(TlsListener { listen, cert, key }),
            (Some(_), _, _) => return Err(missing("tls_cert and tls_key", "https_listen")),
            (None, _, _) => None,
        };
        let broker = match flags.broker.or(file.broker) {
            Some(b) => BrokerChoice::External(
                BrokerAddr::parse(&b).map_err(|message| ConfigError::Field { field: "broker", message })?,
            ),
            None => {
                let tls = match (flags.tls_cert.or(file.tls_cert), flags.tls_key.or(file.tls_key)) {
                    // The files are read (and a bad one named) when the broker starts: the
                    // admin commands resolve this config too, outside the service, where a
                    // LoadCredential path does not exist.
                    (Some(cert), Some(key)) => {
                        let listen =
                            flags.mqtts_listen.or(file.mqtts_listen).unwrap_or_else(|| ([0, 0, 0, 0], 8883).into());
                        Some(TlsListener { listen, cert, key })
                    }
                    (None, None) => None,
                    (Some(_), None) => return Err(missing("tls_key", "tls_cert")),
                    (None, Some(_)) => return Err(missing("tls_cert", "tls_key")),
                };
                // With TLS on, plain MQTT stays on loopback unless asked: it is for the hub's
                // own client and local `mosquitto_sub`, not for passwords crossing the LAN.
                let plain_default: SocketAddr =
                    if tls.is_some() { ([127, 0, 0, 1], 1883).into() } else { ([0, 0, 0, 0], 1883).into() };
                BrokerChoice::Embedded {
                    listen: flags.mqtt_listen.or(file.mqtt_listen).unwrap_or(plain_default),
                    require_credentials: flags
                        .require_credentials
                        .or(file.require_credentials)
                        .unwrap_or(tls.is_some()),
                    tls,
                }
            }
        };
        let external = matches!(broker, BrokerChoice::External(_));
        let only_external = |field: &'static str| ConfigError::Field {
            field,
            message: "only applies to an external broker (`broker = ...`); the embedded one uses node credentials"
                .into(),
        };
        let broker_login = match (
            flags.broker_username.or(file.broker_username),
            flags.broker_password_file.or(file.broker_password_file),
        ) {
            (None, None) => None,
            _ if !external => return Err(only_external("broker_username")),
            (Some(user), Some(pass)) => Some((user, rabble_shared::support::config::read_secret(&pass)?)),
            (Some(_), None) => return Err(missing("broker_password_file", "broker_username")),
            (None, Some(_)) => return Err(missing("broker_username", "broker_password_file")),
        };
        let broker_ca = flags.broker_ca.or(file.broker_ca);
        match &broker {
            BrokerChoice::External(a) if broker_ca.is_some() && !a.tls => {
                return Err(ConfigError::Field {
                    field: "broker_ca",
                    message: format!("is set but broker {a} is not mqtts://"),
                });
            }
            BrokerChoice::Embedded { .. } if broker_ca.is_some() => return Err(only_external("broker_ca")),
            _ => {}
        }
        let heartbeat_ttl = flags.heartbeat_ttl.or(file.heartbeat_ttl).map_or(DEFAULT_HEARTBEAT_TTL, |d| d.0);
        if heartbeat_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Field { field: "heartbeat_ttl", message: "must be at least 1s".into() });
        }
        let restart_grace =
            flags.restart_grace.or(file.restart_grace).map_or(DEFAULT_RESTART_GRACE, |d| d.0).max(heartbeat_ttl);
        let node_gc_threshold =
            Some(flags.node_gc_threshold.or(file.node_gc_threshold).map_or(DEFAULT_NODE_GC_THRESHOLD, |d| d.0))
                .filter(|d| !d.is_zero());
        let dns_file = file.dns;
        let domain = flags.domain.or(dns_file.domain).unwrap_or_else(|| "rabble".into());
        let domain = crate::dns::DnsSettings::domain_labels(&domain)
            .map_err(|message| ConfigError::Field { field: "domain", message })?;
        let recursor_text = if flags.recursors.is_empty() { dns_file.recursors } else { flags.recursors };
        let recursors = recursor_text
            .iter()
            .map(|r| parse_recursor(r))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::Field { field: "recursors", message })?;
        let dns = DnsConfig {
            listen: flags.dns_listen.or(dns_file.listen).unwrap_or_else(|| ([0, 0, 0, 0], 8600).into()),
            settings: crate::dns::DnsSettings {
                domain,
                ttl: flags.dns_ttl.or(dns_file.ttl).unwrap_or(0),
                negative_ttl: flags.dns_negative_ttl.or(dns_file.negative_ttl).unwrap_or(0),
                only_passing: flags.dns_only_passing || dns_file.only_passing.unwrap_or(false),
                a_record_limit: flags.dns_a_record_limit.or(dns_file.a_record_limit).unwrap_or(0),
            },
            recursors,
        };
        let lanes = if file.lane.is_empty() { crate::routes::table::Lane::defaults() } else { file.lane };
        for (i, l) in lanes.iter().enumerate() {
            let field = "lane";
            if !rabble_shared::routes::valid_lane(&l.name) {
                return Err(ConfigError::Field {
                    field,
                    message: format!("name {:?}: use [a-z0-9-], 1 to 32 characters", l.name),
                });
            }
            if l.prefix.is_empty() || l.prefix.contains(['=', ' ']) {
                return Err(ConfigError::Field {
                    field,
                    message: format!("lane {:?}: prefix {:?} is not a tag prefix", l.name, l.prefix),
                });
            }
            if lanes[..i].iter().any(|o| o.name == l.name) {
                return Err(ConfigError::Field { field, message: format!("lane {:?} is defined twice", l.name) });
            }
        }
        let env = |k: &str| std::env::var(k).ok();
        let mut resolvers: Vec<crate::acme::config::Resolver> = Vec::new();
        for r in file.resolver {
            let r = r.resolve(&env)?;
            if resolvers.iter().any(|o| o.name == r.name) {
                return Err(ConfigError::Field {
                    field: "resolver",
                    message: format!("{:?} is defined twice", r.name),
                });
            }
            resolvers.push(r);
        }
        let kv_public = if flags.kv_public.is_empty() { file.kv.public } else { flags.kv_public };
        for p in &kv_public {
            crate::kvmirror::check_prefix(p).map_err(|message| ConfigError::Field { field: "kv.public", message })?;
        }
        let anonymous = match file.acl.anonymous {
            Some(text) => rabble_core::acl::Rules::parse("hub.toml [acl] anonymous", &text)
                .map_err(|e| ConfigError::Field { field: "acl.anonymous", message: e.to_string() })?,
            None => default_anonymous(),
        };
        let data_dir = flags.data_dir.or(file.data_dir).unwrap_or_else(|| "/var/lib/rabble".into());
        let http_listen = flags.http_listen.or(file.http_listen).unwrap_or_else(|| ([127, 0, 0, 1], 8500).into());
        let mut alert = crate::alert::config::AlertConfig::resolve(file.alert, http_listen.port())?;
        for n in &flags.notify {
            alert.notify(n)?;
        }
        let homeassistant = file.homeassistant.resolve()?;
        let mut cluster = crate::cluster::config::resolve(file.cluster, flags.cluster, &data_dir)?;
        if let Some(c) = &mut cluster {
            c.api = http_listen.to_string();
        }
        Ok(Config {
            cluster,
            anonymous,
            kv_public,
            lanes,
            resolvers,
            broker_login,
            broker_ca,
            dns,
            data_dir,
            broker,
            http_listen,
            https,
            heartbeat_ttl,
            restart_grace,
            node_gc_threshold,
            alert,
            homeassistant,
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
        assert_eq!(
            c.broker,
            BrokerChoice::Embedded { listen: ([0, 0, 0, 0], 1883).into(), tls: None, require_credentials: false }
        );
        assert_eq!(c.heartbeat_ttl, DEFAULT_HEARTBEAT_TTL);
        assert_eq!(c.dns.settings.domain, ["rabble"]);
        assert_eq!(c.dns.recursors, vec!["192.168.1.1:53".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::resolve(Flags { broker: Some("http://x".into()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("broker:"), "{e}");
        let user = Some("hub".to_owned());
        let e = Config::resolve(Flags { broker_username: user.clone(), ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("broker_username: only applies to an external broker"), "{e}");
        let ext = Some("mqtt://mosquitto.lan".to_owned());
        let e =
            Config::resolve(Flags { broker: ext.clone(), broker_username: user, ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("broker_password_file: required with broker_username"), "{e}");
        let ca = Some(PathBuf::from("/etc/rabble/ca.pem"));
        let e = Config::resolve(Flags { broker: ext, broker_ca: ca, ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("broker_ca: is set but broker mqtt://"), "{e}");
        let e = Config::resolve(Flags { recursors: vec!["dns.google".into()], ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("recursors:"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hub.toml");
        let e = Config::resolve(Flags { tls_cert: Some(p.clone()), ..Default::default() }).unwrap_err();
        assert!(e.to_string().starts_with("tls_key: required with tls_cert"), "{e}");
        let c = Config::resolve(Flags { tls_cert: Some(p.clone()), tls_key: Some(p.clone()), ..Default::default() })
            .unwrap();
        let BrokerChoice::Embedded { listen, tls: Some(tls), require_credentials: true } = c.broker else {
            panic!("TLS on should require credentials: {:?}", c.broker)
        };
        assert_eq!((listen.to_string(), tls.listen.to_string()), ("127.0.0.1:1883".into(), "0.0.0.0:8883".into()));
        std::fs::write(&p, "http_listen = \"nope\"\n").unwrap();
        let e = Config::resolve(Flags { config: Some(p), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("hub.toml") && e.contains("line 1"), "{e}");
    }

    /// The config file as users edit it, mutated: a configuration or an error naming the field,
    /// never a panic.
    #[test]
    fn config_files_take_any_mutation_without_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let default = crate::install::default_config();
        let seeds = [
            default.as_str(),
            "[acl]\nanonymous = \"service \\\"\\\" { policy = \\\"read\\\" }\"\n[kv]\npublic = [\"public/\"]\n[[lane]]\nname = \"edge\"\nprefix = \"edge\"\n",
        ];
        rabble_shared::support::mutate::mutations(
            &seeds,
            b"[]{}\"=.,:_ \n0123456789abcdeilmnoprstuvy",
            2_000,
            3087,
            |b| {
                std::fs::write(&path, b).unwrap();
                let _ = Config::resolve(Flags { config: Some(path.clone()), ..Default::default() });
            },
        );
    }
}
