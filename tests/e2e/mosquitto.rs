//! The same flow through a real Mosquitto as the external broker, watched with
//! `mosquitto_sub -t 'rabble/#'` as a homelab user would.

use rabble_shared::api::NodeStatus;
use rabble_tests::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

#[test]
fn hub_and_agents_through_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mq = Mosquitto::start(d);
    let sub = Subscriber::start(d, mq.port);
    let hub = Hub::start_external(d, mq.port, &[]);
    assert!(hub.health().unwrap().broker.starts_with("external"));
    let mut a = Agent::start(d, "pi-a", mq.port, &["--keepalive", "2s"]);
    let b = Agent::start(d, "pi-b", mq.port, &[]);
    for ag in [&a, &b] {
        ag.write_service(
            "web.toml",
            "[[service]]\nname = \"web\"\nport = 80\n[[service.checks]]\nttl = \"5m\"\nstatus = \"passing\"\n",
        );
    }
    hub.wait_node("pi-a", NodeStatus::Up, T);
    hub.wait_node("pi-b", NodeStatus::Up, T);
    wait_for("both web instances", T, || {
        let i = hub.instances("web");
        if i == ["pi-a/web", "pi-b/web"] { Ok(()) } else { Err(format!("{i:?}")) }
    });
    sub.wait_line("rabble/hub/status online", T);
    sub.wait_line("rabble/node/pi-a/status online", T);
    let reg = sub.wait_line("rabble/node/pi-b/service/web {", T);
    assert!(reg.contains("\"name\":\"web\""), "{reg}");
    sub.wait_line("rabble/node/pi-a/check/service-web {", T);

    // SIGTERM: offline and deregistered, on the wire and in the catalog.
    a.proc.stop("TERM");
    sub.wait_line("rabble/node/pi-a/service/web (null)", T);
    sub.wait_line("rabble/node/pi-a/status offline", T);
    hub.wait_node("pi-a", NodeStatus::Down, T);
    wait_for("pi-a deregistered", T, || {
        let i = hub.instances("web");
        if i == ["pi-b/web"] { Ok(()) } else { Err(format!("{i:?}")) }
    });

    // kill -9: the broker publishes the Will.
    let mut b = b;
    b.proc.stop("KILL");
    hub.wait_node("pi-b", NodeStatus::Down, T);
    let offline = sub.lines().iter().filter(|l| l.starts_with("rabble/node/pi-b/status offline")).count();
    assert_eq!(offline, 1, "the Will reached mosquitto_sub");

    // Mosquitto has no payload limit of its own: the hub refuses the oversized message.
    mosquitto_pub(mq.port, "rabble/node/pi-b/facts", &vec![b'{'; 100 * 1024]).unwrap();
    wait_for("the oversized payload to be counted", T, || {
        let h = hub.health()?;
        if h.ingest.rejected_by_reason.get("too-large") == Some(&1) { Ok(()) } else { Err(format!("{:?}", h.ingest)) }
    });
    assert!(hub.health().unwrap().mqtt_connected);

    // A restarted agent comes back through the same broker.
    let a2 = Agent::start_with(d, "pi-a", mq.port, a.services_dir.clone(), &[]);
    hub.wait_node("pi-a", NodeStatus::Up, T);
    wait_for("pi-a back", T, || {
        let i = hub.instances("web");
        if i == ["pi-a/web", "pi-b/web"] { Ok(()) } else { Err(format!("{i:?}")) }
    });
    drop(a2);
}

/// A Mosquitto with a password file and no anonymous access: the hub logs in with
/// `--broker-username` / `--broker-password-file`, agents with their `--token-file`
/// (the password), and an agent without one is refused and told why.
#[test]
fn an_authenticated_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mq = Mosquitto::start_with_passwords(d, &[("rabble-hub", "hub-secret"), ("pi-a", "pi-a-secret")]);
    let secret = |name: &str, text: &str| {
        let p = d.join(name);
        std::fs::write(&p, format!("{text}\n")).unwrap();
        p
    };
    let hub_pass = secret("hub.pass", "hub-secret");
    let pi_pass = secret("pi-a.pass", "pi-a-secret");
    let hub = Hub::start_external(
        d,
        mq.port,
        &["--broker-username", "rabble-hub", "--broker-password-file", hub_pass.to_str().unwrap()],
    );
    let a = Agent::start(d, "pi-a", mq.port, &["--token-file", pi_pass.to_str().unwrap()]);
    a.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    hub.wait_node("pi-a", NodeStatus::Up, T);
    wait_for("web", T, || if hub.instances("web") == ["pi-a/web"] { Ok(()) } else { Err("not yet".into()) });
    let anon = Agent::start(d, "pi-anon", mq.port, &[]);
    wait_for("pi-anon to be told it needs credentials", T, || {
        let n = anon.proc.log().matches("the broker requires credentials: give this node a token_file").count();
        if n >= 2 { Ok(()) } else { Err(format!("{n} times")) }
    });
    let wrong = secret("wrong.pass", "guess");
    let thief = Agent::start(d, "pi-b", mq.port, &["--token-file", wrong.to_str().unwrap()]);
    wait_for("pi-b's wrong password to be refused", T, || {
        let n = thief.proc.log().matches("refused this node's credentials").count();
        if n >= 2 { Ok(()) } else { Err(format!("{n} times")) }
    });
    let ids: Vec<String> = hub.nodes().into_iter().map(|n| n.id.to_string()).collect();
    assert_eq!(ids, ["pi-a"]);
}
