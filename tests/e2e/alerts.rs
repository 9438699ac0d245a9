//! Alerts from a real hub to receivers on loopback (ntfy's and Alertmanager's webhook
//! shapes, as a real ntfy or Alertmanager would take them: neither server installs
//! here, so a small server records the exact requests): an agent killed with -9 →
//! one NodeDown firing notification per receiver, with the time it took; the agent back
//! → one resolved; the node's own check alerts inhibited meanwhile.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, wait_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Got {
    at: Instant,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A loopback HTTP server that answers 200 and keeps every request.
fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap_or(0);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize =
                headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap_or(());
            keep.lock().unwrap().push(Got {
                at: Instant::now(),
                path,
                headers,
                body: String::from_utf8_lossy(&body).into(),
            });
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (base, got)
}

fn header<'g>(g: &'g Got, name: &str) -> Option<&'g str> {
    g.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

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
