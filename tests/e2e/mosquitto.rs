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
    let secret = |name: &str, text: &str| secret_file(d, name, text);
    let pi_pass = secret("pi-a.pass", "pi-a-secret");
    let hub = Hub::start_on_mosquitto(d, mq.port, "hub-secret", &[]);
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

/// The shipped `acl_file` on a real Mosquitto: a node's password reaches only its own
/// topics, while its agent works as before.
#[test]
fn mosquittos_acl_file_keeps_a_node_to_its_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mq = Mosquitto::start_with_acl(d, &[("rabble-hub", "hub-secret"), ("pi-a", "pi-a-secret")]);
    let pi_pass = secret_file(d, "pi-a.pass", "pi-a-secret");
    let hub = Hub::start_on_mosquitto(d, mq.port, "hub-secret", &[]);
    let a = Agent::start(d, "pi-a", mq.port, &["--token-file", pi_pass.to_str().unwrap()]);
    a.write_service("web.toml", "[[service]]\nname = \"web\"\nport = 80\n");
    hub.wait_node("pi-a", NodeStatus::Up, T);
    wait_for("web", T, || if hub.instances("web") == ["pi-a/web"] { Ok(()) } else { Err("not yet".into()) });
    let as_pi_a = |args: &[&str], tool_name: &str| {
        std::process::Command::new(rabble_tests::tool(tool_name))
            .args(["-h", "127.0.0.1", "-p", &mq.port.to_string(), "-u", "pi-a", "-P", "pi-a-secret"])
            .args(args)
            .output()
            .unwrap()
    };
    // Another node's facts: Mosquitto drops the publish, the hub never sees pi-b. A
    // service pi-a may publish, sent after it, is the barrier: the hub takes messages in
    // order, so once the probe is in the catalog the forged facts would be too.
    as_pi_a(&["-i", "forger", "-q", "1", "-t", "rabble/node/pi-b/facts", "-m", "{}"], "mosquitto_pub");
    let probe = r#"{"v":1,"id":"probe","name":"probe","tags":[],"port":1,"meta":{}}"#;
    as_pi_a(&["-i", "probe", "-q", "1", "-t", "rabble/node/pi-a/service/probe", "-m", probe], "mosquitto_pub");
    wait_for("the probe", T, || if hub.instances("probe").len() == 1 { Ok(()) } else { Err("not yet".into()) });
    assert!(hub.nodes().iter().all(|n| n.id.as_str() != "pi-b"), "pi-a's password wrote pi-b's topics");
    // Reading other nodes' state: nothing is delivered (the hub's status it may read).
    let out = as_pi_a(&["-i", "snoop", "-t", "rabble/node/+/facts", "-C", "1", "-W", "2"], "mosquitto_sub");
    assert!(out.stdout.is_empty(), "pi-a read {:?}", String::from_utf8_lossy(&out.stdout));
    let out = as_pi_a(&["-i", "status", "-t", "rabble/hub/status", "-C", "1", "-W", "5"], "mosquitto_sub");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "online");
    assert_eq!(hub.node_status("pi-a"), Some(NodeStatus::Up));
}

/// Work through Mosquitto with the shipped `acl_file`: a node that logs in with its own
/// password gets its signed assignments and its rendered templates (a task with a
/// template starts only once its file arrived), and its task runs with them.
#[test]
fn a_templated_job_runs_through_mosquittos_acl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mq = Mosquitto::start_with_acl(d, &[("rabble-hub", "hub-secret"), ("pi-a", "pi-a-secret")]);
    let pi_pass = secret_file(d, "pi-a.pass", "pi-a-secret");
    let hub = Hub::start_on_mosquitto(d, mq.port, "hub-secret", &[]);
    let alloc_dir = d.join("pi-a-alloc");
    let key = hub.key();
    let args = ["--token-file", pi_pass.to_str().unwrap(), "--hub-key", &key, "--no-docker"];
    let _a = Agent::start(d, "pi-a", mq.port, &[&args[..], &["--alloc-dir", alloc_dir.to_str().unwrap()]].concat());
    hub.wait_node("pi-a", NodeStatus::Up, T);
    assert!(hub.cli(&["kv", "put", "app/greeting", "hello-through-mosquitto"]).0);
    let job = r#"job "tpl" {
  group "g" {
    task "app" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "cp $NOMAD_TASK_DIR/greeting $NOMAD_ALLOC_DIR/seen; while true; do sleep 0.1; done"]
      }
      template {
        data        = "{{ key \"app/greeting\" }}"
        destination = "local/greeting"
      }
    }
  }
}
"#;
    hub.run_job(&d.join("tpl.hcl"), job);
    let seen = wait_for("the task to start with its rendered template", T, || {
        let j: rabble_shared::api::JobView = hub.get("/api/v1/jobs/tpl")?;
        let a = j.allocations.first().ok_or("no allocation")?;
        let seen = std::fs::read_to_string(alloc_dir.join(a.id.to_string()).join("alloc/seen")).unwrap_or_default();
        if seen.is_empty() { Err(format!("{:?} {}", a.client_status, a.client_reason)) } else { Ok(seen) }
    });
    assert_eq!(seen, "hello-through-mosquitto");
}
