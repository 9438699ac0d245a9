//! `rabble-hub install` in a real systemd container: a Debian root (tests/vm/build-ct.sh,
//! debootstrap) booted by systemd-nspawn with systemd as PID 1, unprivileged (a user
//! namespace: the container's root is an unmapped uid outside, as in a Proxmox
//! unprivileged LXC) and with a network of its own. On Debian 12 and 13, each twice:
//! - nesting on (images/proxmox/rabble-hub-lxc.sh's default): systemd can make mount
//!   namespaces, install adds the sandbox drop-in and the hub runs in a namespace of its own;
//! - nesting off. No Proxmox here, so a stand-in for its AppArmor profile (which denies
//!   the mounts a unit's namespace needs): a seccomp filter denies unshare(2) to everything
//!   in the container (`Container::boot`). For systemd it is the same: a `DynamicUser=` unit fails with
//!   226/NAMESPACE (checked: the failure the old unit had), install leaves the drop-in out
//!   and says why, and the hub runs all the same.
//!
//! Each time the unit is active as the `rabble` user, the hub answers HTTP and DNS inside
//! the container, `node add --join` (as root) and the hub's API (as `rabble`) both mint
//! join tokens on the same credentials file, and a
//! re-run of install with a newer binary upgrades in place: restarted, with the config,
//! the CA and the catalog kept.

use rabble_tests::bin;
use rabble_tests::ct::{Container, text};

#[test]
fn the_hub_installs_and_upgrades_in_a_bookworm_container() {
    install_in("bookworm");
}

/// Debian 13 is what the Proxmox script picks today (the newest standard template).
#[test]
fn the_hub_installs_and_upgrades_in_a_trixie_container() {
    install_in("trixie");
}

fn install_in(suite: &str) {
    for nesting in [true, false] {
        let ct = Container::boot(suite, nesting);
        check(&ct, nesting);
    }
}

fn check(ct: &Container, nesting: bool) {
    let dyn_user = ct.exec(&["systemd-run", "--wait", "--quiet", "--collect", "-p", "DynamicUser=yes", "true"]);
    let failed = text(&dyn_user);
    if nesting {
        assert!(dyn_user.status.success(), "with nesting a DynamicUser= unit runs: {failed}");
    } else {
        assert!(!dyn_user.status.success(), "the stand-in for no nesting must fail DynamicUser= units");
        // journald may write the unit's end a moment after systemd-run returns (seen under load).
        let mut why = String::new();
        for _ in 0..50 {
            why = ct.sh("journalctl --no-pager -o cat | grep -c 'status=226/NAMESPACE' || true");
            if why.trim() != "0" {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        assert!(why.trim() != "0", "226/NAMESPACE in the journal, as in an LXC without nesting: {failed}");
    }

    ct.put("/root/rabble-hub", &bin("rabble-hub"));
    let first = ct.install_hub();
    assert!(first.contains("created the system user rabble") && first.contains("enabled and (re)started"), "{first}");
    let drop_in = ct.root.join("etc/systemd/system/rabble-hub.service.d/10-sandbox.conf");
    if nesting {
        assert!(first.contains("added the mount-namespace hardening") && drop_in.exists(), "{first}");
    } else {
        assert!(first.contains("no mount namespaces here") && !drop_in.exists(), "{first}");
    }

    let health = ct.hub_health();
    assert!(health.contains("\"mqtt_connected\":true"), "{health}");
    assert_eq!(ct.sh("systemctl is-active rabble-hub").trim(), "active");
    let pid = ct.main_pid("rabble-hub");
    assert_eq!(ct.sh(&format!("stat -c %U /proc/{pid}")).trim(), "rabble", "the hub runs as its own user");
    let ns = ct.sh(&format!("readlink /proc/{pid}/ns/mnt /proc/1/ns/mnt"));
    let ns: Vec<&str> = ns.lines().collect();
    assert_eq!(ns[0] != ns[1], nesting, "the hub has a mount namespace of its own iff the sandbox applies: {ns:?}");

    // The API's ACLs were bootstrapped by install: the management token root-only, where the
    // CLI on the hub finds it; without it even loopback may not write.
    assert!(first.contains("ACL bootstrapped: management token"), "{first}");
    assert_eq!(ct.sh("stat -c '%U %a' /etc/rabble/management.token").trim(), "root 600");
    let root = ct.sh("cat /etc/rabble/management.token").trim().to_owned();
    let auth = format!("X-Consul-Token: {root}");
    // A service in the catalog, answered by the hub's DNS (real dig, in the container's network).
    let body = r#"{"Node": "nas", "Address": "192.168.1.20", "Service": {"Service": "web", "Port": 80}}"#;
    let register = "http://127.0.0.1:8500/v1/catalog/register";
    let anonymous = ct.curl(&["-X", "PUT", "--data", body, register]);
    assert!(anonymous.as_ref().is_err_and(|e| e.contains("needs service:register")), "{anonymous:?}");
    ct.curl(&["-X", "PUT", "-H", &auth, "--data", body, register]).unwrap();
    let dig = || ct.dig("web.service.rabble", "A");
    assert_eq!(dig(), "192.168.1.20");

    // The operator's next step, beside the running hub, on the files it uses.
    let token = ct.sh("rabble-hub node add pi1 --join --ttl 1h");
    assert_eq!(token.trim().len(), 64, "a join token on stdout: {token}");
    assert!(ct.sh("rabble-hub node list").contains("joining"));
    for f in ["credentials.json", "credentials.json.lock"] {
        assert_eq!(ct.sh(&format!("stat -c %U /var/lib/rabble/{f}")).trim(), "rabble", "{f}: the hub's own");
    }
    // The hub (as rabble) takes the same file's lock after root's `node add` made it.
    let join = "http://127.0.0.1:8500/api/v1/nodes/pi2/join";
    let minted = ct.curl(&["-X", "POST", "-H", &auth, "--data", r#"{"ttl": "1h"}"#, join]);
    assert!(minted.as_ref().is_ok_and(|m| m.contains("hub_key")), "{minted:?}");

    // Install again with a newer binary: upgraded in place, restarted, everything kept.
    let ca = ct.sh("sha256sum /etc/rabble/tls/ca.pem");
    ct.sh("echo '# edited by hand' >> /etc/rabble/hub.toml");
    let mut newer = std::fs::read(bin("rabble-hub")).unwrap();
    newer.extend_from_slice(b"a newer build");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rabble-hub"), newer).unwrap();
    ct.put("/root/rabble-hub", &dir.path().join("rabble-hub"));
    let second = ct.install_hub();
    assert!(second.contains("upgraded") && second.contains("kept") && !second.contains("created"), "{second}");
    assert!(!second.contains("ACL bootstrapped"), "a re-run keeps the ACLs: {second}");
    assert_eq!(ct.sh("cat /etc/rabble/management.token").trim(), root);
    ct.hub_health();
    assert_ne!(ct.main_pid("rabble-hub"), pid, "the upgraded hub was restarted");
    assert_eq!(ct.sh("sha256sum /etc/rabble/tls/ca.pem"), ca);
    assert!(ct.sh("cat /etc/rabble/hub.toml").contains("# edited by hand"));
    assert_eq!(dig(), "192.168.1.20", "the catalog is kept");
    assert!(ct.sh("rabble-hub node list").contains("pi1"));
    assert_eq!(ct.sh("systemctl is-enabled rabble-hub").trim(), "enabled");
}
