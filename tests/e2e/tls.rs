//! MQTT over TLS with per-node credentials, end to end: `rabble-hub tls init` and
//! `rabble-hub node add|revoke` (the real commands), the hub's TLS listener, and agents
//! that are let in, or refused with a clear error and retried with backoff.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, rabble_hub_cmd, wait_for};
use std::path::Path;
use std::time::Duration;

fn tls_init(dir: &Path) {
    let (ok, _, err) = rabble_hub_cmd(&["tls", "init", "--dir", dir.to_str().unwrap(), "--name", "hub.test"]);
    assert!(ok, "tls init: {err}");
}

/// `rabble-hub node add <name>`; writes the token to `<dir>/<name>.token`.
fn node_add(hub: &Path, dir: &Path, name: &str) -> std::path::PathBuf {
    let (ok, out, err) = rabble_hub_cmd(&["--data-dir", hub.to_str().unwrap(), "node", "add", name]);
    assert!(ok && err.contains("token_file"), "node add {name}: {err}");
    let p = dir.join(format!("{name}.token"));
    std::fs::write(&p, out).unwrap();
    p
}

/// The `retry_in=` delays an agent logged, in seconds.
fn retry_delays(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| l.split("retry_in=").nth(1))
        .filter_map(|rest| {
            let d = rest.split_whitespace().next()?;
            match d.strip_suffix("ms") {
                Some(ms) => ms.parse::<f64>().ok().map(|v| v / 1000.0),
                None => d.strip_suffix('s')?.parse().ok(),
            }
        })
        .collect()
}

/// Waits until the agent has been refused `n` times with `needle` in the reason, then
/// checks the waits between tries grew (0.25-0.5 s, then 0.5-1 s, then 1-2 s, ...).
fn assert_refused_with_backoff(agent: &Agent, needle: &str) {
    let log = wait_for(&format!("{} to be refused 3 times", agent.name), Duration::from_secs(20), || {
        let log = agent.proc.log();
        let n = log.lines().filter(|l| l.contains("the hub refused the connection") && l.contains(needle)).count();
        if n >= 3 { Ok(log) } else { Err(format!("{n} refusals so far")) }
    });
    let d = retry_delays(&log);
    assert!(d.len() >= 3 && d[2] > d[0], "{} backoff did not grow: {d:?}", agent.name);
}

#[test]
fn agents_join_over_tls_with_their_credentials_and_others_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tls_init(&d.join("tls"));
    tls_init(&d.join("other-ca"));
    let hub_data = d.join("hub-data");
    let good = node_add(&hub_data, d, "pi-good");
    let revoked = node_add(&hub_data, d, "pi-revoked");
    let (ok, _, err) = rabble_hub_cmd(&["--data-dir", hub_data.to_str().unwrap(), "node", "revoke", "pi-revoked"]);
    assert!(ok, "revoke: {err}");
    let (_, list, _) = rabble_hub_cmd(&["--data-dir", hub_data.to_str().unwrap(), "node", "list"]);
    assert!(
        list.contains("pi-good") && list.lines().any(|l| l.contains("pi-revoked") && l.contains("revoked")),
        "{list}"
    );

    let (hub, mqtts) = Hub::start_tls(d, &[]);
    let (tls_port, url, ca, tls) = (mqtts.port, mqtts.url(), mqtts.ca.clone(), d.join("tls"));
    let agent = |name: &str, ca: &Path, token: Option<&Path>| {
        let mut extra = vec!["--ca", ca.to_str().unwrap()];
        if let Some(t) = token {
            extra.extend(["--token-file", t.to_str().unwrap()]);
        }
        let cmd = std::process::Command::new(rabble_tests::bin("rabble-agent"));
        Agent::spawn(cmd, d, name, &url, d.join(format!("{name}-services")), &extra)
    };

    // Hostile or broken clients first: silent TCP connections that never start a handshake
    // (rumqttd's own TLS listener would wait on the first of them forever), and plain
    // MQTT / HTTP bytes sent to the TLS port. None of them may keep a node out.
    use std::io::Write;
    let mut hostile = Vec::new();
    for junk in [&b""[..], b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0a\x00\x00", b"GET / HTTP/1.1\r\n\r\n"] {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", tls_port)).unwrap();
        s.write_all(junk).unwrap();
        hostile.push(s);
    }

    // The right CA and its own token: in, and its service registered.
    let a = agent("pi-good", &ca, Some(&good));
    a.write_service("web.toml", "[service]\nname = \"web\"\nport = 8080\n");
    hub.wait_node("pi-good", NodeStatus::Up, Duration::from_secs(15));
    wait_for("web registered over TLS", Duration::from_secs(10), || {
        if hub.instances("web").is_empty() { Err("not yet".into()) } else { Ok(()) }
    });

    // A hub certificate this agent's CA did not sign.
    let wrong_ca = agent("pi-wrong-ca", &d.join("other-ca/ca.pem"), Some(&good));
    // A token the hub never issued, and one it revoked.
    let bogus = d.join("bogus.token");
    std::fs::write(&bogus, "00".repeat(32)).unwrap();
    let unknown = agent("pi-unknown", &ca, Some(&bogus));
    let gone = agent("pi-revoked", &ca, Some(&revoked));
    // Right node name, wrong token (someone copied the name but not the secret).
    let thief = {
        let cmd = std::process::Command::new(rabble_tests::bin("rabble-agent"));
        let extra = ["--ca", ca.to_str().unwrap(), "--token-file", bogus.to_str().unwrap()];
        Agent::spawn(cmd, d, "pi-good", &url, d.join("thief-services"), &extra)
    };
    // No token at all, on the plain listener: credentials are required there too.
    let anonymous = {
        let cmd = std::process::Command::new(rabble_tests::bin("rabble-agent"));
        Agent::spawn(cmd, d, "pi-anon", &format!("mqtt://127.0.0.1:{}", hub.mqtt_port), d.join("anon"), &[])
    };

    assert_refused_with_backoff(&wrong_ca, "TLS handshake with the hub failed");
    assert_refused_with_backoff(&unknown, "refused this node's credentials");
    assert_refused_with_backoff(&gone, "refused this node's credentials");
    assert_refused_with_backoff(&thief, "refused this node's credentials");
    assert_refused_with_backoff(&anonymous, "give this node a token_file");
    let hub_log = hub.proc.log();
    for (user, verdict) in [("pi-unknown", "UnknownNode"), ("pi-revoked", "Revoked"), ("pi-good", "WrongToken")] {
        assert!(
            hub_log
                .lines()
                .any(|l| l.contains("refused an MQTT connection") && l.contains(user) && l.contains(verdict)),
            "the hub did not log refusing {user} ({verdict})"
        );
    }
    let names: Vec<String> = hub.nodes().into_iter().map(|n| n.id.to_string()).collect();
    assert_eq!(names, ["pi-good"], "only the node with credentials is in the catalog");
    assert_eq!(hub.node_status("pi-good"), Some(NodeStatus::Up), "the thief did not knock the real node off");

    // A renewed certificate is picked up by the next connection, without a restart: swap
    // in one from another CA; a node trusting that CA now gets in, and the node already
    // connected keeps its session.
    let rotated = node_add(&hub_data, d, "pi-rotated");
    let install = |from: &Path| {
        for f in ["hub.pem", "hub.key"] {
            let tmp = tls.join(format!("{f}.new"));
            std::fs::copy(from.join(f), &tmp).unwrap();
            std::fs::rename(&tmp, tls.join(f)).unwrap();
        }
    };
    std::fs::create_dir(d.join("orig")).unwrap();
    for f in ["hub.pem", "hub.key"] {
        std::fs::copy(tls.join(f), d.join("orig").join(f)).unwrap();
    }
    install(&d.join("other-ca"));
    let r = agent("pi-rotated", &d.join("other-ca/ca.pem"), Some(&rotated));
    hub.wait_node("pi-rotated", NodeStatus::Up, Duration::from_secs(15));
    assert_eq!(hub.node_status("pi-good"), Some(NodeStatus::Up));
    drop(r);
    install(&d.join("orig")); // and back, for the nodes that trust the first CA

    // A valid token may not borrow another node's agent client id (rumqttd would drop
    // that node's session for it): mosquitto_pub as pi-rotated, claiming pi-good's id.
    let token = std::fs::read_to_string(&rotated).unwrap();
    let out = std::process::Command::new(rabble_tests::tool("mosquitto_pub"))
        .args(["-h", "localhost", "-p", &tls_port.to_string(), "--cafile", ca.to_str().unwrap()])
        .args(["-i", "rabble-agent-pi-good", "-u", "pi-rotated", "-P", token.trim(), "-t", "x", "-m", "y"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "mosquitto_pub took over pi-good's client id");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(hub.node_status("pi-good"), Some(NodeStatus::Up));
    assert!(hub.proc.log().contains("OtherNodesClientId"), "the hub names the refusal");

    // Revoking a connected node shuts it out at once: the hub closes its session, marks
    // it down, and its reconnects are refused.
    let (ok, _, err) = rabble_hub_cmd(&["--data-dir", hub_data.to_str().unwrap(), "node", "revoke", "pi-good"]);
    assert!(ok, "{err}");
    hub.wait_node("pi-good", NodeStatus::Down, Duration::from_secs(10));
    assert_refused_with_backoff(&a, "refused this node's credentials");
    assert!(hub.proc.log().contains("closed the node's MQTT session"), "the hub says what it did");
    assert!(hub.proc.log().contains("MQTT/TLS handshake failed"), "the hub logs a failed handshake with the peer");
    drop(hostile);
}

/// A join token (`node add --join`) is traded at the first connect for the node's own
/// token, kept 0600 in its token_file; the node is then let in with that token across
/// restarts; a replay of the join token (another agent with a copy of the card) is refused
/// and says why, as is an expired one.
#[test]
fn a_join_token_is_traded_once_for_the_nodes_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tls_init(&d.join("tls"));
    let hub_data = d.join("hub-data");
    let join = |name: &str, ttl: &str| {
        let args = ["--data-dir", hub_data.to_str().unwrap(), "node", "add", name, "--join", "--ttl", ttl];
        let (ok, out, err) = rabble_hub_cmd(&args);
        assert!(ok && err.contains("rabble image"), "node add --join: {err}");
        let p = d.join(format!("{name}.join"));
        std::fs::write(&p, out).unwrap();
        p
    };
    let kitchen = join("pi-kitchen", "24h");
    let expired = join("pi-late", "0s");
    let (_, list, _) = rabble_hub_cmd(&["--data-dir", hub_data.to_str().unwrap(), "node", "list"]);
    assert!(list.lines().any(|l| l.contains("pi-kitchen") && l.contains("joining")), "{list}");

    let (hub, mqtts) = Hub::start_tls(d, &[]);
    let (url, ca) = (mqtts.url(), mqtts.ca.clone());
    let agent = |name: &str, state: &Path, join: &Path| {
        std::fs::create_dir_all(state).unwrap();
        let token = state.join("token");
        let extra = ["--ca", ca.to_str().unwrap(), "--token-file", token.to_str().unwrap(), "--join-token-file"];
        let mut extra: Vec<&str> = extra.to_vec();
        extra.push(join.to_str().unwrap());
        // Each in its own directory (log, socket): a thief runs under the same name.
        let cmd = std::process::Command::new(rabble_tests::bin("rabble-agent"));
        Agent::spawn(cmd, state, name, &url, state.join("services"), &extra)
    };

    let state = d.join("kitchen-state");
    let mut a = agent("pi-kitchen", &state, &kitchen);
    hub.wait_node("pi-kitchen", NodeStatus::Up, Duration::from_secs(15));
    let token_file = state.join("token");
    wait_for("the node's token kept", Duration::from_secs(10), || {
        if token_file.exists() { Ok(()) } else { Err("not yet".into()) }
    });
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(!state.join("token.joining").exists());
    let mine = std::fs::read_to_string(&token_file).unwrap();
    let creds = std::fs::read_to_string(hub_data.join("credentials.json")).unwrap();
    assert!(!creds.contains(mine.trim()) && !creds.contains(std::fs::read_to_string(&kitchen).unwrap().trim()));
    assert!(hub.proc.log().contains("node joined"), "{}", hub.proc.log());

    // Restarted, it logs in with its own token (the join token is spent).
    a.proc.stop("TERM");
    hub.wait_node("pi-kitchen", NodeStatus::Down, Duration::from_secs(15));
    let a2 = agent("pi-kitchen", &state, &kitchen);
    hub.wait_node("pi-kitchen", NodeStatus::Up, Duration::from_secs(15));

    // A copy of the card (the same join token, another agent's own new token): refused, and
    // the hub says it was used; the node keeps running.
    let thief = agent("pi-kitchen", &d.join("thief-state"), &kitchen);
    assert_refused_with_backoff(&thief, "join token");
    assert!(hub.proc.log().contains("refused a join token: it was already used"), "{}", hub.proc.log());
    assert!(!d.join("thief-state/token").exists());
    drop(thief);
    // An expired join token: refused, and the hub says so.
    let late = agent("pi-late", &d.join("late-state"), &expired);
    assert_refused_with_backoff(&late, "join token");
    assert!(hub.proc.log().contains("refused a join token: it expired"), "{}", hub.proc.log());
    assert_eq!(hub.node_status("pi-kitchen"), Some(NodeStatus::Up));
    drop(a2);
}

/// `rabble-hub node add` in many processes at once beside a hub minting join tokens through
/// its API: every change lands (the file's lock), the file stays whole.
#[test]
fn node_adds_and_minted_join_tokens_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &["--require-credentials", "true"]);
    let data = hub.data_dir.to_str().unwrap().to_owned();
    let adds: Vec<std::process::Child> = (0..12)
        .map(|i| {
            std::process::Command::new(rabble_tests::bin("rabble-hub"))
                .args(["--data-dir", &data, "node", "add", &format!("cli-{i}")])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::scope(|s| {
        for i in 0..12 {
            let hub = &hub;
            s.spawn(move || {
                let r: Result<serde_json::Value, String> =
                    hub.post(&format!("/api/v1/nodes/api-{i}/join"), &serde_json::json!({"ttl": "1h"}));
                assert!(r.is_ok(), "{r:?}");
            });
        }
    });
    for mut c in adds {
        assert!(c.wait().unwrap().success());
    }
    let (ok, list, err) = rabble_hub_cmd(&["--data-dir", &data, "node", "list"]);
    assert!(ok, "{err}");
    for i in 0..12 {
        assert!(list.contains(&format!("cli-{i} ")), "cli-{i} lost:\n{list}");
        assert!(list.contains(&format!("api-{i} ")), "api-{i} lost:\n{list}");
    }
}

/// `rabble-hub key` prints an existing hub's key only: on a machine that is not the hub it
/// names the data dir it looked in, fails, and creates nothing; global flags work after the
/// subcommand too.
#[test]
fn rabble_hub_key_prints_only_an_existing_hubs_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let laptop = d.join("not-a-hub");
    let (ok, out, err) = rabble_hub_cmd(&["key", "--data-dir", laptop.to_str().unwrap()]);
    assert!(!ok, "printed a key on a machine without one: {out}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(&format!("no hub key in the data dir {}", laptop.display())), "{err}");
    assert!(!laptop.exists(), "rabble-hub key created {}", laptop.display());

    let hub = Hub::start(d, &[]);
    let data = hub.data_dir.to_str().unwrap();
    let (ok, before, err) = rabble_hub_cmd(&["--data-dir", data, "key"]);
    assert!(ok, "{err}");
    assert!(err.contains("assign.key"), "{err}");
    let (ok, after, err) = rabble_hub_cmd(&["key", "--data-dir", data]);
    assert!(ok, "{err}");
    assert_eq!(before, after);
    assert_eq!(before.trim().len(), 44, "base64 of an ed25519 public key: {before}");
}
