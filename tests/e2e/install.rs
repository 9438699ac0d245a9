//! `rabble-hub install --root DIR` (no user, no systemd: what can run here): the files a
//! hub LXC gets, a hub started from exactly those files answering DNS and HTTP, and a
//! re-run that upgrades the binary and keeps the config, the certificates and the state.
//! The unit itself is checked by `systemd-analyze verify`; hub_ct.rs runs the whole install,
//! systemctl and all, in containers with systemd as PID 1.

use rabble_tests::{bin, dig, free_port, tool, wait_for};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn install(root: &Path) -> String {
    let out = Command::new(bin("rabble-hub"))
        .args(["install", "--root", root.to_str().unwrap(), "--name", "hub.lan"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

#[test]
fn install_lays_out_a_hub_that_serves_and_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ct");
    let first = install(&root);
    assert!(first.contains("installed") && first.contains("wrote") && first.contains("hub.lan"), "{first}");
    let f = |p: &str| root.join(p);
    assert_eq!(std::fs::read(f("usr/local/bin/rabble-hub")).unwrap(), std::fs::read(bin("rabble-hub")).unwrap());
    for p in ["etc/rabble/hub.toml", "etc/rabble/tls/ca.pem", "etc/rabble/tls/hub.pem", "etc/rabble/tls/hub.key"] {
        assert!(f(p).exists(), "{p}");
    }
    assert!(!f("etc/systemd/system/rabble-hub.service.d/10-sandbox.conf").exists(), "no sandbox without systemd");

    // The unit parses (systemd-analyze verify: only the binary's absence on this host).
    let v =
        Command::new(tool("systemd-analyze")).arg("verify").arg(f("etc/systemd/system/rabble-hub.service")).output();
    let v = v.unwrap();
    let text = String::from_utf8_lossy(&v.stderr).into_owned();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        assert!(l.contains("/usr/local/bin/rabble-hub is not executable"), "systemd-analyze verify: {l}");
    }

    // A hub from exactly these files (ports moved to free ones; flags win over the file).
    let (http, dns, mqtts, mqtt, https) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let mut hub = Command::new(f("usr/local/bin/rabble-hub"))
        .arg("--config")
        .arg(f("etc/rabble/hub.toml"))
        .arg("--data-dir")
        .arg(f("var/lib/rabble"))
        .arg("--tls-cert")
        .arg(f("etc/rabble/tls/hub.pem"))
        .arg("--tls-key")
        .arg(f("etc/rabble/tls/hub.key"))
        .args(["--http-listen", &format!("127.0.0.1:{http}"), "--dns-listen", &format!("127.0.0.1:{dns}")])
        .args(["--mqtts-listen", &format!("127.0.0.1:{mqtts}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
        .args(["--https-listen", &format!("127.0.0.1:{https}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health = wait_for("the installed hub's API", Duration::from_secs(15), || {
        ureq::get(&format!("http://127.0.0.1:{http}/api/v1/health"))
            .call()
            .map_err(|e| e.to_string())
            .map(|r| r.into_body().read_to_string().unwrap_or_default())
    });
    assert!(health.contains("mqtt_connected"), "{health}");
    // The LAN's HTTPS listener from the same config, with the certificate install made.
    let ca = f("etc/rabble/tls/ca.pem");
    let o = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert", ca.to_str().unwrap()])
        .arg(format!("https://localhost:{https}/api/v1/health"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("mqtt_connected"), "HTTPS: {o:?}");
    let answer = dig(dns, "rabble-hub.service.rabble", "SRV", &[]);
    assert_eq!(answer.status, "NXDOMAIN", "the hub's DNS answers for its domain: {answer:?}");
    let _ = hub.kill();
    let _ = hub.wait();
    assert!(f("var/lib/rabble/catalog.redb").exists());

    // Again, with a changed config, the state and an older binary: upgraded, the rest kept.
    let mut cfg = std::fs::read_to_string(f("etc/rabble/hub.toml")).unwrap();
    cfg.push_str("# edited by hand\n");
    std::fs::write(f("etc/rabble/hub.toml"), &cfg).unwrap();
    let ca = std::fs::read(f("etc/rabble/tls/ca.pem")).unwrap();
    std::fs::write(f("usr/local/bin/rabble-hub"), b"an older build").unwrap();
    let second = install(&root);
    assert!(second.contains("upgraded") && second.contains("kept") && !second.contains("created a CA"), "{second}");
    assert_eq!(std::fs::read_to_string(f("etc/rabble/hub.toml")).unwrap(), cfg);
    assert_eq!(std::fs::read(f("etc/rabble/tls/ca.pem")).unwrap(), ca);
    assert!(f("var/lib/rabble/catalog.redb").exists(), "the state is kept");
    assert!(install(&root).contains("is this version already"));
}
