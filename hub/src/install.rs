//! `rabble-hub install`: makes this machine (a fresh Debian 12/13 container or VM, as
//! root) a hub: the `rabble` system user, `/etc/rabble` and `/var/lib/rabble`, the binary
//! in `/usr/local/bin`, `hub.toml` (MQTT over TLS for nodes, plain MQTT on loopback),
//! `tls init`, the unit (images/rabble-hub.service) and — only where systemd can set up
//! mount namespaces — its sandbox drop-in; then enables and (re)starts it and prints the
//! hub's addresses and the next commands. Idempotent: a re-run upgrades the binary and the
//! unit and keeps the config, the certificates and the state. `--root DIR` installs the
//! files under DIR without touching users or systemd (what the tests use).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The unit and its drop-in, as shipped.
pub const UNIT: &str = include_str!("../../images/rabble-hub.service");
pub const SANDBOX: &str = include_str!("../../images/rabble-hub.service.d/10-sandbox.conf");
/// The service's user and group.
pub const USER: &str = "rabble";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("`{0}` failed: {1}")]
    Command(String, String),
    #[error("run it as root (it creates a system user and a systemd unit), or with --root DIR")]
    NotRoot,
    #[error(transparent)]
    Pki(#[from] crate::auth::pki::PkiError),
}

/// What to install, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// `/` for a real install.
    pub root: PathBuf,
    /// The binary to install (this one).
    pub binary: PathBuf,
    /// Extra names for the hub's certificate (the container's DNS name).
    pub names: Vec<String>,
}

/// What happened to each piece.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<String>,
    pub sandbox: Option<bool>,
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> InstallError + '_ {
    move |e| InstallError::Io(p.to_owned(), e)
}

/// `path` under the install root.
fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Writes `bytes` unless the file already holds them (atomic: temp file + rename, so a
/// running binary is replaced, not overwritten). Returns whether it wrote.
fn put(path: &Path, bytes: &[u8], mode: u32) -> Result<bool, InstallError> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("rabble-new");
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(true)
}

/// Where `rabble-hub install` leaves the management token (root only), and where the
/// `rabble` CLI on the hub looks for a token last.
pub const MANAGEMENT_TOKEN: &str = "/etc/rabble/management.token";

fn run(cmd: &mut Command) -> Result<String, InstallError> {
    let what = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|e| InstallError::Command(what.clone(), e.to_string()))?;
    if !out.status.success() {
        return Err(InstallError::Command(what, String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The hub's config for a fresh install: TLS for nodes, plain MQTT and the API on loopback.
pub fn default_config() -> String {
    "# /etc/rabble/hub.toml — written by `rabble-hub install` (kept on re-runs); see docs/hub.md.\n\
     data_dir = \"/var/lib/rabble\"\n\
     # Nodes connect over TLS with their credentials; plain MQTT stays on loopback (mosquitto_sub here).\n\
     mqtts_listen = \"0.0.0.0:8883\"\n\
     tls_cert = \"/etc/rabble/tls/hub.pem\"\n\
     tls_key = \"/etc/rabble/tls/hub.key\"\n\
     mqtt_listen = \"127.0.0.1:1883\"\n\
     # The API: plain HTTP on loopback (the CLI here), HTTPS with the hub's certificate for the LAN.\n\
     # Requests carry ACL tokens (the management token: /etc/rabble/management.token); see docs/security.md.\n\
     http_listen = \"127.0.0.1:8500\"\n\
     https_listen = \"0.0.0.0:8501\"\n\
     \n\
     [dns]\n\
     listen = \"0.0.0.0:8600\"\n\
     domain = \"rabble\"\n\
     # recursors = [\"192.168.1.1\"]\n"
        .to_owned()
}

/// Whether systemd gives a service a mount namespace of its own here: a transient unit with
/// the sandbox's directives prints its mount namespace, which must differ from PID 1's.
/// Where none can be made (an unprivileged LXC without nesting), systemd either fails the
/// unit (226/NAMESPACE) or runs it in PID 1's namespace with those directives skipped
/// ("assuming containerized execution"): both mean the drop-in would protect nothing.
fn namespaces_work() -> bool {
    let Ok(init) = std::fs::read_link("/proc/1/ns/mnt") else { return false };
    let out = Command::new("systemd-run")
        .args(["--wait", "--quiet", "--collect", "--pipe", "-p", "ProtectSystem=strict", "-p", "PrivateTmp=yes"])
        .args(["-p", "PrivateDevices=yes", "-p", "ProtectKernelTunables=yes", "readlink", "/proc/self/ns/mnt"])
        .stdin(std::process::Stdio::null())
        .output();
    let Ok(out) = out else { return false };
    let unit = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    out.status.success() && !unit.is_empty() && Path::new(&unit) != init
}

/// The non-loopback addresses of this machine, for the certificate and the summary.
fn addresses() -> Vec<String> {
    let Ok(nets) = sysinfo::Networks::new_with_refreshed_list() else { return Vec::new() };
    let mut out: Vec<String> = (&nets)
        .into_iter()
        .filter(|(name, _)| !["docker", "br-", "veth"].iter().any(|p| name.to_string_lossy().starts_with(p)))
        .flat_map(|(_, n)| n.ip_networks().iter().map(|i| i.addr))
        .filter(|a| !a.is_loopback() && !matches!(a, std::net::IpAddr::V6(v) if v.is_unicast_link_local()))
        .map(|a| a.to_string())
        .collect();
    out.sort();
    out.dedup();
    out
}

pub fn install(o: &Options, out: &mut impl Write) -> Result<Report, InstallError> {
    let real = o.root == Path::new("/");
    if real && !rustix::process::geteuid().is_root() {
        return Err(InstallError::NotRoot);
    }
    let mut r = Report::default();
    let root = &o.root;
    if real && Command::new("getent").args(["passwd", USER]).output().is_ok_and(|o| !o.status.success()) {
        run(Command::new("useradd").args(["--system", "--user-group", "--home-dir", "/var/lib/rabble"]).args([
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            USER,
        ]))?;
        r.lines.push(format!("created the system user {USER}"));
    }
    for (dir, mode) in [("/etc/rabble", 0o755), ("/etc/rabble/tls", 0o750), ("/var/lib/rabble", 0o750)] {
        let p = at(root, dir);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(io(&p))?;
    }
    let bin = std::fs::read(&o.binary).map_err(io(&o.binary))?;
    let bin_path = at(root, "/usr/local/bin/rabble-hub");
    let existed = bin_path.exists();
    r.lines.push(match put(&bin_path, &bin, 0o755)? {
        true if existed => format!("upgraded {}", bin_path.display()),
        true => format!("installed {}", bin_path.display()),
        false => format!("{} is this version already", bin_path.display()),
    });
    let cfg = at(root, "/etc/rabble/hub.toml");
    if cfg.exists() {
        r.lines.push(format!("kept {}", cfg.display()));
    } else {
        put(&cfg, default_config().as_bytes(), 0o644)?;
        r.lines.push(format!("wrote {}", cfg.display()));
    }
    let tls = at(root, "/etc/rabble/tls");
    if tls.join("hub.pem").exists() {
        r.lines.push(format!("kept the certificates in {}", tls.display()));
    } else {
        let mut names = o.names.clone();
        names.extend(crate::auth::pki::default_names());
        names.extend(addresses());
        names.dedup();
        crate::auth::pki::init(&tls, &names)?;
        r.lines.push(format!("created a CA and a hub certificate for {names:?} in {}", tls.display()));
    }
    if real {
        // The hub reads its key as the rabble group; the CA's key stays root's.
        run(Command::new("chown").args(["root:rabble", "/etc/rabble/tls", "/etc/rabble/tls/hub.key"]))?;
        run(Command::new("chmod").args(["0640", "/etc/rabble/tls/hub.key"]))?;
        run(Command::new("chown").args(["-R", "rabble:rabble", "/var/lib/rabble"]))?;
    }
    let unit = at(root, "/etc/systemd/system/rabble-hub.service");
    if put(&unit, UNIT.as_bytes(), 0o644)? {
        r.lines.push(format!("wrote {}", unit.display()));
    }
    let drop_in = at(root, "/etc/systemd/system/rabble-hub.service.d/10-sandbox.conf");
    if real {
        let ok = namespaces_work();
        r.sandbox = Some(ok);
        if ok {
            put(&drop_in, SANDBOX.as_bytes(), 0o644)?;
            r.lines.push("systemd can sandbox the hub here: added the mount-namespace hardening".into());
        } else {
            let _ = std::fs::remove_file(&drop_in);
            r.lines.push(
                "no mount namespaces here (an unprivileged LXC without nesting?): the unit runs with its \
                 seccomp and capability hardening only"
                    .into(),
            );
        }
        run(Command::new("systemctl").arg("daemon-reload"))?;
        run(Command::new("systemctl").args(["enable", "rabble-hub.service"]))?;
        run(Command::new("systemctl").args(["restart", "rabble-hub.service"]))?;
        r.lines.push("enabled and (re)started rabble-hub.service".into());
        // The API's ACLs: bootstrapped once, the management token root-only where the CLI
        // on this machine finds it. A re-run keeps the token it made.
        let token_file = Path::new(MANAGEMENT_TOKEN);
        if !token_file.exists() {
            let http = crate::config::Config::resolve(crate::config::Flags {
                config: Some(at(root, "/etc/rabble/hub.toml")),
                ..Default::default()
            })
            .map(|c| c.http_listen)
            .unwrap_or_else(|_| ([127, 0, 0, 1], 8500).into());
            let mut line = Vec::new();
            match crate::admin::acl_bootstrap(http, Some(token_file), std::time::Duration::from_secs(30), &mut line) {
                Ok(_) => r.lines.push(String::from_utf8_lossy(&line).trim().to_owned()),
                Err(e) => r.lines.push(format!("ACLs not bootstrapped ({e}): run `rabble-hub acl bootstrap`")),
            }
        }
    }
    for l in &r.lines {
        writeln!(out, "{l}").map_err(io(Path::new("stdout")))?;
    }
    let addrs = addresses();
    let host = addrs.iter().find(|a| !a.contains(':')).cloned().unwrap_or_else(|| "<this host>".into());
    let cluster = crate::config::Config::resolve(crate::config::Flags {
        config: Some(at(root, "/etc/rabble/hub.toml")),
        ..Default::default()
    })
    .ok()
    .and_then(|c| c.cluster);
    let hubs = agent_hubs(&host, cluster.as_ref());
    writeln!(
        out,
        "\nThe hub: mqtts://{host}:8883 (nodes), DNS {host}:8600, API https://{host}:8501 (the LAN) and \
         http://127.0.0.1:8500 (here; the CLI here uses the management token in {MANAGEMENT_TOKEN}), CA {}\nNext:\n  rabble-hub node add <name> --join > <name>.join   # a join token for a Pi's card\n  \
         rabble image <pi-os.img.xz> --name <name> {hubs} --ca ca.pem --join-token-file \
         <name>.join --hub-key <the output of `rabble-hub key`>\n  journalctl -u rabble-hub -f",
        tls.join("ca.pem").display()
    )
    .map_err(io(Path::new("stdout")))?;
    Ok(r)
}

/// The `--hub` flags a node's card needs: this hub, and every hub of its cluster (from
/// `retry_join`), so agents fail over between them.
fn agent_hubs(host: &str, cluster: Option<&crate::cluster::ClusterConfig>) -> String {
    let mut hosts = vec![host.to_owned()];
    for h in cluster.map(|c| c.retry_join.as_slice()).unwrap_or_default() {
        let name = h.rsplit_once(':').map_or(h.as_str(), |(n, _)| n).to_owned();
        if !hosts.contains(&name) {
            hosts.push(name);
        }
    }
    hosts.iter().map(|h| format!("--hub mqtts://{h}:8883")).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_card_is_given_every_hub_of_the_cluster() {
        assert_eq!(agent_hubs("10.0.0.1", None), "--hub mqtts://10.0.0.1:8883");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k");
        std::fs::write(&key, crate::cluster::tls::ClusterKey::generate().unwrap()).unwrap();
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let file = crate::cluster::config::ClusterFile {
            retry_join: vec!["10.0.0.1:8301".into(), "hub2.lan".into(), "hub3.lan:9301".into()],
            cluster_key_file: Some(key),
            ..Default::default()
        };
        let c = crate::cluster::config::resolve(Some(file), Default::default(), dir.path()).unwrap().unwrap();
        assert_eq!(
            agent_hubs("10.0.0.1", Some(&c)),
            "--hub mqtts://10.0.0.1:8883 --hub mqtts://hub2.lan:8883 --hub mqtts://hub3.lan:8883"
        );
    }

    #[test]
    fn the_default_config_is_valid_and_the_unit_needs_no_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("hub.toml");
        std::fs::write(&p, default_config()).unwrap();
        let c = crate::config::Config::resolve(crate::config::Flags { config: Some(p), ..Default::default() }).unwrap();
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8500");
        for bad in ["DynamicUser", "LoadCredential", "ProtectSystem", "PrivateTmp", "PrivateDevices", "ProtectHome"] {
            assert!(!UNIT.lines().any(|l| l.starts_with(bad)), "{bad} in the unit: it fails in an unprivileged CT");
        }
        assert!(SANDBOX.contains("ProtectSystem=strict") && UNIT.contains("User=rabble"));
    }
}
