//! Alerts from a real hub to receivers on loopback (ntfy's and Alertmanager's webhook
//! shapes, as a real ntfy or Alertmanager would take them: neither server installs
//! here, so a small server records the exact requests): an agent killed with -9 →
//! one NodeDown firing notification per receiver, with the time it took; the agent back
//! → one resolved; the node's own check alerts inhibited meanwhile.

use rabble_shared::api::NodeStatus;
use rabble_tests::receiver::{Got, header, receiver};
use rabble_tests::{Agent, Hub, wait_for};
use std::io::{BufRead, BufReader};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[test]
fn a_node_killed_is_on_the_phone_in_seconds_then_resolved_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, got) = receiver();
    let config = d.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"[alert]
ui_url = "http://hub.lan:8500/ui/"
group_interval = "5s"

[alert.rules]
check_critical_for = "0s"

[[alert.receiver]]
name = "phone"
kind = "ntfy"
url = "{base}/homelab"

[[alert.receiver]]
name = "ops"
kind = "webhook"
url = "{base}/hook"
"#
        ),
    )
    .unwrap();
    let hub = Hub::start(d, &["--config", config.to_str().unwrap()]);
    let mut pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service(
        "web.hcl",
        "services {\n  name = \"web\"\n  port = 9\n  checks = [{ id = \"web\", name = \"web\", ttl = \"1h\", status = \"critical\" }]\n}\n",
    );
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(15));
    // The critical check fires at once (`for = 0s`): the ntfy receiver gets it.
    let check = wait_for("the check's alert", Duration::from_secs(20), || {
        let g = got.lock().unwrap();
        g.iter()
            .find(|r| r.path == "/homelab" && header(r, "x-title").is_some_and(|t| t.contains("CheckCritical")))
            .cloned()
            .ok_or(format!("{g:?}"))
    });
    assert_eq!(header(&check, "x-priority"), Some("5"), "{check:?}");
    assert_eq!(header(&check, "click"), Some("http://hub.lan:8500/ui/"));
    let before = got.lock().unwrap().len();
    // Power cut: kill -9. The broker sees the TCP connection drop (a silent node takes the
    // 4 s heartbeat TTL); the notification follows after group_wait (2 s).
    let killed = Instant::now();
    pi1.proc.stop("KILL");
    let fired = wait_for("NodeDown on both receivers", Duration::from_secs(20), || {
        let g = got.lock().unwrap();
        let down: Vec<Got> = g[before..]
            .iter()
            .filter(|r| r.body.contains("NodeDown") || header(r, "x-title").is_some_and(|t| t.contains("NodeDown")))
            .cloned()
            .collect();
        if down.len() >= 2 { Ok(down) } else { Err(format!("{:?}", &g[before..])) }
    });
    let took = fired.iter().map(|r| r.at.duration_since(killed)).max().unwrap();
    println!("BENCH node killed → NodeDown at the receivers in {:.1} s (goal ≤ 10 s)", took.as_secs_f64());
    assert!(took < Duration::from_secs(10), "{took:?}");
    let ntfy = fired.iter().find(|r| r.path == "/homelab").unwrap();
    assert_eq!(header(ntfy, "x-title"), Some("[FIRING:1] NodeDown pi1"));
    let hook = fired.iter().find(|r| r.path == "/hook").unwrap();
    let v: serde_json::Value = serde_json::from_str(&hook.body).unwrap();
    assert_eq!(
        (v["version"].as_str(), v["status"].as_str(), v["receiver"].as_str()),
        (Some("4"), Some("firing"), Some("ops"))
    );
    assert_eq!(v["alerts"][0]["labels"]["node"], "pi1");
    // Inhibited: nothing about the down node's check while it is down.
    std::thread::sleep(Duration::from_secs(3));
    let noisy: Vec<Got> =
        got.lock().unwrap()[before..].iter().filter(|r| r.body.contains("CheckCritical")).cloned().collect();
    assert!(noisy.is_empty(), "{noisy:?}");
    // Back: one resolved message per receiver (the check fires again as a new alert).
    let mark = got.lock().unwrap().len();
    let _pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(15));
    let resolved = wait_for("NodeDown resolved", Duration::from_secs(60), || {
        let g = got.lock().unwrap();
        let r: Vec<Got> = g[mark..]
            .iter()
            .filter(|r| {
                header(r, "x-title") == Some("[RESOLVED] NodeDown pi1") || r.body.contains("\"status\":\"resolved\"")
            })
            .cloned()
            .collect();
        if r.len() >= 2 { Ok(r) } else { Err(format!("{:?}", &g[mark..])) }
    });
    assert_eq!(resolved.len(), 2, "{resolved:?}");
    std::thread::sleep(Duration::from_secs(2));
    let again =
        got.lock().unwrap()[mark..].iter().filter(|r| header(r, "x-title") == Some("[RESOLVED] NodeDown pi1")).count();
    assert_eq!(again, 1, "resolved once");
}

/// `amtool` (Alertmanager's own CLI) against `url`: (success, stdout + stderr).
fn amtool(url: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(rabble_tests::tool("amtool"))
        .arg(format!("--alertmanager.url={url}"))
        .args(args)
        .output()
        .unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// What `rabble/alerts/+` holds retained now (`topic payload` lines), as mosquitto_sub sees it.
fn mqtt_alerts(port: u16) -> String {
    // Bounded as a whole: `-W` counts from the CONNACK (see homeassistant.rs).
    let out = std::process::Command::new(rabble_tests::tool("timeout"))
        .args(["-s", "KILL", "10"])
        .arg(rabble_tests::tool("mosquitto_sub"))
        .args(["-i", "rabble-test-alerts", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "rabble/alerts/+"])
        .args(["-v", "--retained-only", "-W", "2"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ntfy_titles(got: &Mutex<Vec<Got>>, from: usize, what: &str) -> Vec<String> {
    let g = got.lock().unwrap();
    g[from..].iter().filter_map(|r| header(r, "x-title")).filter(|t| t.contains(what)).map(str::to_owned).collect()
}

const PASSING: &str = "services {\n  name = \"web\"\n  port = 9\n  checks = [{ id = \"web\", name = \"web\", ttl = \"1h\", status = \"passing\" }]\n}\n";

/// A real Alertmanager (Debian's) as a receiver, its `amtool` silencing alerts on the hub
/// (the hub serves Alertmanager's v2 API), a silence that holds and then expires, and a
/// hub restart while an alert fires: the alert is still firing after it, and nobody is
/// told twice.
#[test]
fn alertmanager_and_amtool_silences_and_a_restart_that_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, got) = receiver();
    // The real Alertmanager, alone (no gossip), holding what it is sent.
    let am_port = rabble_tests::free_port();
    let am_url = format!("http://127.0.0.1:{am_port}");
    std::fs::write(d.join("am.yml"), "route:\n  receiver: hold\nreceivers:\n  - name: hold\n").unwrap();
    let mut am_cmd = std::process::Command::new(rabble_tests::tool("prometheus-alertmanager"));
    am_cmd.arg(format!("--config.file={}", d.join("am.yml").display()));
    am_cmd.arg(format!("--storage.path={}", d.join("am-data").display()));
    am_cmd.args([&format!("--web.listen-address=127.0.0.1:{am_port}"), "--cluster.listen-address="]);
    let _am = rabble_tests::Proc::spawn("alertmanager", &mut am_cmd, d);
    let config = d.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[alert]\ngroup_interval = \"2s\"\n\n[alert.rules]\ncheck_critical_for = \"0s\"\n\n\
             [[alert.receiver]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"{base}/phone\"\n\n\
             [[alert.receiver]]\nname = \"am\"\nkind = \"alertmanager\"\nurl = \"{am_url}\"\n\n\
             [[alert.receiver]]\nname = \"bus\"\nkind = \"mqtt\"\n"
        ),
    )
    .unwrap();
    let mut hub = Hub::start(d, &["--config", config.to_str().unwrap()]);
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service("web.hcl", PASSING);
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(15));
    hub.wait_check("web", rabble_shared::Status::Passing, Duration::from_secs(15));

    // amtool silences on the hub, for 8 s, before anything fires.
    let (ok, id) = amtool(
        &hub.http,
        &[
            "silence",
            "add",
            "alertname=CheckCritical",
            "node=pi1",
            "--duration=8s",
            "--comment=new SD card",
            "-a",
            "tester",
        ],
    );
    assert!(ok, "{id}");
    let id = id.trim().to_owned();
    let silenced_at = Instant::now();
    let (ok, listed) = amtool(&hub.http, &["silence", "query", "-o", "json"]);
    assert!(ok && listed.contains(&id) && listed.contains("new SD card"), "{listed}");
    let (ok, out, err) = hub.cli(&["alert", "silences"]);
    assert!(
        ok && out.contains(&id) && out.contains("alertname=\"CheckCritical\"") && out.contains("active"),
        "{out}{err}"
    );

    // The check goes critical: the alert fires, held back by the silence.
    pi1.write_service("web.hcl", &PASSING.replace("passing", "critical"));
    hub.wait_check("web", rabble_shared::Status::Critical, Duration::from_secs(15));
    wait_for("the alert, silenced", Duration::from_secs(10), || {
        let (_, out, _) = hub.cli(&["alert", "list"]);
        if out.contains("CheckCritical") && out.contains("silenced") { Ok(()) } else { Err(out) }
    });
    let (ok, q) = amtool(&hub.http, &["alert", "query", "--silenced", "-o", "json"]);
    assert!(ok && q.contains(&id), "amtool reads the hub's alerts: {q}");
    assert!(ntfy_titles(&got, 0, "CheckCritical").is_empty(), "sent while silenced");

    // The silence ends: the alert reaches the phone and the real Alertmanager.
    let sent = wait_for("the alert after the silence", Duration::from_secs(30), || {
        let t = ntfy_titles(&got, 0, "CheckCritical");
        if t.is_empty() { Err(format!("{:?}", got.lock().unwrap())) } else { Ok(Instant::now()) }
    });
    let held = sent.duration_since(silenced_at);
    println!("BENCH a silence of 8 s held the alert back {:.1} s", held.as_secs_f64());
    assert!(held >= Duration::from_secs(8), "{held:?}");
    let in_am = wait_for("the alert in Alertmanager", Duration::from_secs(15), || {
        let (ok, out) = amtool(&am_url, &["alert", "query", "-o", "json", "alertname=CheckCritical"]);
        if ok && out.contains("\"node\":\"pi1\"") { Ok(out) } else { Err(out) }
    });
    let am_alert: serde_json::Value = serde_json::from_str::<serde_json::Value>(&in_am).unwrap()[0].clone();
    assert_eq!(am_alert["status"]["state"], "active", "{am_alert}");
    // And it is retained on MQTT while it fires.
    let retained = wait_for("rabble/alerts/<fingerprint>", Duration::from_secs(10), || {
        let out = mqtt_alerts(hub.mqtt_port);
        if out.contains("CheckCritical") { Ok(out) } else { Err(out) }
    });
    let (topic, json) = retained.trim().split_once(' ').unwrap();
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(topic, format!("rabble/alerts/{}", v["fingerprint"].as_str().unwrap()));
    assert_eq!((v["labels"]["node"].as_str(), v["status"]["state"].as_str()), (Some("pi1"), Some("active")));
    let (ok, out, _) = hub.cli(&["alert", "silences", "--expired"]);
    assert!(ok && out.contains(&id) && out.contains("expired"), "{out}");

    // A hub restart while it fires: still firing after it, since the same time, and not
    // sent again.
    let before: Vec<serde_json::Value> = hub.get("/api/v2/alerts").unwrap();
    let mark = got.lock().unwrap().len();
    hub.restart("TERM");
    hub.wait_node("pi1", NodeStatus::Up, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(8));
    let after: Vec<serde_json::Value> = hub.get("/api/v2/alerts").unwrap();
    let firing = |v: &[serde_json::Value]| -> Vec<(String, String)> {
        v.iter().map(|a| (a["fingerprint"].as_str().unwrap().into(), a["startsAt"].as_str().unwrap().into())).collect()
    };
    assert_eq!(firing(&after), firing(&before), "the restarted hub still knows what fires, since when");
    let again: Vec<Got> = got.lock().unwrap()[mark..].to_vec();
    assert!(again.is_empty(), "a restart must not notify again: {again:?}");

    // Resolved: the phone hears it once, the Alertmanager holds it no more.
    pi1.write_service("web.hcl", PASSING);
    wait_for("resolved on the phone", Duration::from_secs(20), || {
        let t = ntfy_titles(&got, mark, "[RESOLVED] CheckCritical");
        if t.len() == 1 { Ok(()) } else { Err(format!("{t:?}")) }
    });
    wait_for("resolved in Alertmanager", Duration::from_secs(15), || {
        let (ok, out) = amtool(&am_url, &["alert", "query", "-o", "json", "alertname=CheckCritical"]);
        if ok && !out.contains("pi1") { Ok(()) } else { Err(out) }
    });
    wait_for("its retained topic cleared", Duration::from_secs(10), || {
        let out = mqtt_alerts(hub.mqtt_port);
        if out.trim().is_empty() { Ok(()) } else { Err(out) }
    });
    // `rabble alert silence` and `expire`, the CLI's own way.
    let (ok, sid, err) = hub.cli(&["alert", "silence", "node=pi1", "--for", "2h", "--comment", "rewiring"]);
    assert!(ok, "{err}");
    let (ok, out, err) = hub.cli(&["alert", "expire", sid.trim()]);
    assert!(ok && out.contains("expired"), "{out}{err}");
    let (ok, out, _) = hub.cli(&["alert", "silence", "node=~\".*\""]);
    assert!(!ok, "a silence of everything is refused: {out}");
}

/// Email through a real SMTP server (PyPI aiosmtpd, which requires STARTTLS and AUTH):
/// a check going critical arrives as a mail over TLS, authenticated, with the alert in its
/// subject; with a wrong password the receiver fails (refused for good: no retries), and
/// `ReceiverFailing` reaches the phone.
#[test]
fn email_goes_over_starttls_with_auth_and_a_failing_mailer_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, got) = receiver();
    let pki = d.join("pki");
    let (ok, _, err) =
        rabble_tests::rabble_hub_cmd(&["tls", "init", "--dir", pki.to_str().unwrap(), "--name", "mail.test"]);
    assert!(ok, "{err}");
    let smtp_port = rabble_tests::free_port();
    let mailbox = d.join("mailbox.jsonl");
    let mut smtpd = std::process::Command::new("python3")
        .arg(format!("{}/mail/smtpd.py", env!("CARGO_MANIFEST_DIR")))
        .args([pki.join("hub.pem"), pki.join("hub.key")])
        .args([&smtp_port.to_string(), "rabble@lab", "s3cret"])
        .arg(&mailbox)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(smtpd.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "ready", "aiosmtpd (bash .ci/test installs it)");
    let good = rabble_tests::secret_file(d, "smtp.pass", "s3cret");
    let bad = rabble_tests::secret_file(d, "wrong.pass", "guess");
    let mail = |name: &str, pass: &std::path::Path| {
        format!(
            "[[alert.receiver]]\nname = \"{name}\"\nkind = \"email\"\nsmtp = \"127.0.0.1:{smtp_port}\"\n\
             from = \"Rabble <rabble@lab.example>\"\nto = [\"me@lab.example\"]\nusername = \"rabble@lab\"\n\
             password_file = \"{}\"\nca_file = \"{}\"\n\n",
            pass.display(),
            pki.join("ca.pem").display()
        )
    };
    let config = d.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[alert]\ngroup_interval = \"2s\"\n\n[alert.rules]\ncheck_critical_for = \"0s\"\n\n{}{}\
             [[alert.receiver]]\nname = \"phone\"\nkind = \"ntfy\"\nurl = \"{base}/phone\"\n",
            mail("mail", &good),
            mail("typo", &bad)
        ),
    )
    .unwrap();
    let hub = Hub::start(d, &["--config", config.to_str().unwrap()]);
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service("web.hcl", PASSING);
    hub.wait_check("web", rabble_shared::Status::Passing, Duration::from_secs(15));
    // The check goes critical (`for = "0s"`): timed from the moment the agent is told.
    let t0 = Instant::now();
    pi1.ctl(&["check", "fail", "web", "--note", "HTTP 502"]);
    let phone = wait_for("the alert on the phone", Duration::from_secs(20), || {
        let g = got.lock().unwrap();
        g.iter()
            .find(|r| header(r, "x-title").is_some_and(|t| t.contains("CheckCritical")))
            .map(|r| r.at)
            .ok_or_else(|| format!("{g:?}"))
    });
    let took = phone.duration_since(t0);
    println!("BENCH check critical (for = 0s) → ntfy receiver in {:.2} s (goal ≤ 2 s)", took.as_secs_f64());
    assert!(took < Duration::from_secs(4), "{took:?}");
    let sent = wait_for("the alert by email", Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&mailbox).unwrap_or_default();
        text.lines().next().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).ok_or(text)
    });
    println!(
        "BENCH check critical (for = 0s) → email accepted by the SMTP server in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!((sent["tls"].as_bool(), sent["auth"].as_bool()), (Some(true), Some(true)), "{sent}");
    assert_eq!(sent["to"], serde_json::json!(["me@lab.example"]));
    let data = sent["data"].as_str().unwrap();
    assert!(data.contains("Subject: [FIRING:1] CheckCritical pi1"), "{data}");
    assert!(data.contains("service web is critical on pi1: HTTP 502"), "{data}");
    // The wrong password: refused for good (no retries) → ReceiverFailing on the others.
    let failing = wait_for("ReceiverFailing for typo", Duration::from_secs(90), || {
        ntfy_titles(&got, 0, "ReceiverFailing").first().cloned().ok_or_else(|| format!("{:?}", got.lock().unwrap()))
    });
    assert_eq!(failing, "[FIRING:1] ReceiverFailing");
    let text = got.lock().unwrap().iter().map(|g| g.body.clone()).collect::<Vec<_>>().join("\n");
    assert!(text.contains("alerts cannot reach receiver typo") && !text.contains("guess"), "{text}");
    drop(smtpd.stdin.take());
    let _ = smtpd.wait();
}
