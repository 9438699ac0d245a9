//! The built-in proxy: an agent serving the `routing` lane from the hub's retained
//! table, in front of real backends, driven with curl and raw sockets.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, FlipServer, Hub, free_port, hwm_kb, wait_for};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// A backend that answers `<name>` and the request head it got (so headers can be
/// checked), or, asked to upgrade, switches protocols and echoes bytes.
pub(crate) fn echo_backend(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut line = String::new();
                while r.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                    head.push_str(&line);
                    line.clear();
                }
                let mut s = s;
                if head.to_ascii_lowercase().contains("upgrade: echo") {
                    let _ = s
                        .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = r.read(&mut buf) {
                        if n == 0 || s.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                    return;
                }
                let body = format!("{name}\n{head}");
                let _ =
                    write!(s, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            });
        }
    });
    port
}

pub(crate) fn curl(lane_port: u16, host: &str, path: &str) -> (u16, String) {
    rabble_tests::curl_host(lane_port, host, path)
}

/// One request on an open keep-alive connection: the status code (the body is read
/// and dropped).
fn exchange(s: &mut BufReader<TcpStream>, host: &str) -> u16 {
    write!(s.get_mut(), "GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
    let mut status = String::new();
    s.read_line(&mut status).unwrap();
    let (mut line, mut len) = (String::new(), 0usize);
    while s.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        line.clear();
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    status.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

pub(crate) fn service(name: &str, port: u16, tags: &[&str], check: Option<&str>) -> String {
    let tags: Vec<String> = tags.iter().map(|t| format!("{t:?}")).collect();
    let check = check
        .map(|url| format!("checks = [{{ http = \"{url}\", interval = \"1s\", timeout = \"1s\" }}]"))
        .unwrap_or_default();
    format!(
        "services {{\n  id = \"{name}-{port}\"\n  name = \"{name}\"\n  port = {port}\n  tags = [{}]\n  {check}\n}}\n",
        tags.join(", ")
    )
}

#[test]
fn the_routing_lane_serves_round_robin_follows_health_tunnels_upgrades_and_outlives_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut hub = Hub::start(d, &[]);
    let (one, two) = (echo_backend("one"), echo_backend("two"));
    let health_one = FlipServer::start();
    let dead = free_port(); // registered and passing, but nothing listens: connects fail
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    let web = &["routing.enable=true", "routing.http.routers.web.rule=Host(`web.lan`)"];
    pi1.write_service("one.hcl", &service("web", one, web, Some(&health_one.url)));
    pi1.write_service("two.hcl", &service("web", two, web, None));
    pi1.write_service("dead.hcl", &service("web", dead, web, None));
    pi1.write_service(
        "api.hcl",
        &service(
            "api",
            two,
            &[
                "routing.enable=true",
                "routing.http.routers.api.rule=Host(`web.lan`) && PathPrefix(`/api`)",
                "routing.http.routers.api.middlewares=strip,stamp",
                "routing.http.middlewares.strip.stripprefix.prefixes=/api",
                "routing.http.middlewares.stamp.headers.customrequestheaders.X-Lane-Test=yes",
                "routing.http.middlewares.stamp.headers.customresponseheaders.X-Served-By=rabble",
            ],
            None,
        ),
    );
    let lane = free_port();
    let _edge = Agent::start(d, "edge", hub.mqtt_port, &["--lane", &format!("routing=127.0.0.1:{lane}")]);
    hub.wait_node("edge", NodeStatus::Up, T);

    // Round robin over the three instances; the dead one's failed connect is retried
    // on another, so every request is answered.
    // `one` joins once its check passes: wait for all three in the hub's table, then
    // for the node to route to both live ones.
    wait_for("three web servers in the routing lane", T, || {
        let t: Vec<rabble_shared::routes::LaneTable> = hub.get("/api/v1/routes?lane=routing")?;
        let n = t[0].services.get("web").map_or(0, |s| s.servers.len());
        if n == 3 { Ok(()) } else { Err(format!("{n} servers")) }
    });
    wait_for("the lane to route web.lan to one and two", T, || {
        let seen: Vec<String> =
            (0..6).map(|_| curl(lane, "web.lan", "/").1.lines().next().unwrap_or("").to_owned()).collect();
        if seen.contains(&"one".to_owned()) && seen.contains(&"two".to_owned()) {
            Ok(())
        } else {
            Err(format!("{seen:?}"))
        }
    });
    let mut seen = Vec::new();
    for _ in 0..9 {
        let (code, body) = curl(lane, "web.lan", "/x?y=1");
        assert_eq!(code, 200, "{body}");
        seen.push(body.lines().next().unwrap_or_default().to_owned());
    }
    assert!(seen.contains(&"one".to_owned()) && seen.contains(&"two".to_owned()), "{seen:?}");
    let (_, body) = curl(lane, "web.lan", "/x?y=1");
    let head = body.to_ascii_lowercase();
    assert!(head.contains("get /x?y=1 http/1.1"), "{body}");
    assert!(head.contains("x-forwarded-for: 127.0.0.1") && head.contains("x-forwarded-host: web.lan"), "{body}");
    assert!(head.contains("x-forwarded-proto: http") && head.contains("host: web.lan"), "{body}");

    // A table change applies to the next request of a connection that stays open.
    let ka = TcpStream::connect(("127.0.0.1", lane)).unwrap();
    ka.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut ka = BufReader::new(ka);
    assert_eq!(exchange(&mut ka, "new.lan"), 404);
    pi1.write_service(
        "new.hcl",
        &service("new", one, &["routing.enable=true", "routing.http.routers.new.rule=Host(`new.lan`)"], None),
    );
    wait_for("new.lan routed", T, || match curl(lane, "new.lan", "/") {
        (200, _) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(exchange(&mut ka, "new.lan"), 200, "the same connection, the new table");
    assert_eq!(exchange(&mut ka, "web.lan"), 200);

    // The longer rule wins, with its middlewares.
    let out = Command::new("curl")
        .args(["-s", "-i", "-H", "Host: web.lan", &format!("http://127.0.0.1:{lane}/api/v1/things")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.contains("x-served-by: rabble") && text.contains("\r\n\r\ntwo\n"), "{text}");
    assert!(text.contains("get /v1/things http/1.1") && text.contains("x-lane-test: yes"), "{text}");
    assert!(text.contains("x-forwarded-prefix: /api"), "{text}");

    // Nothing matches: a page that names the lane.
    let (code, body) = curl(lane, "nope.lan", "/");
    assert_eq!(code, 404);
    assert!(body.contains("rabble lane routing: no router matches nope.lan/"), "{body}");

    // An upgrade (what WebSocket does) is tunnelled both ways.
    let mut s = TcpStream::connect(("127.0.0.1", lane)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /chat HTTP/1.1\r\nHost: web.lan\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    let mut line = String::new();
    while r.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    for msg in ["ping", "pong and more"] {
        s.write_all(msg.as_bytes()).unwrap();
        let mut buf = vec![0u8; msg.len()];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(String::from_utf8_lossy(&buf), msg);
    }

    // A failing check takes `one` out of rotation.
    health_one.set(500);
    wait_for("only two (and the dead one) left for web.lan", T, || {
        let seen: Vec<String> =
            (0..6).map(|_| curl(lane, "web.lan", "/").1.lines().next().unwrap_or("").to_owned()).collect();
        if seen.iter().all(|s| s == "two") { Ok(()) } else { Err(format!("{seen:?}")) }
    });

    // The lane's counters reach the hub's /metrics, by node, lane and router.
    wait_for("the edge's proxy counters in /metrics", T, || {
        let text = ureq::get(&format!("{}/metrics", hub.http))
            .call()
            .map_err(|e| e.to_string())?
            .into_body()
            .read_to_string()
            .map_err(|e| e.to_string())?;
        let line = text.lines().find(|l| {
            l.starts_with("rabble_proxy_requests_total{node=\"edge\",lane=\"routing\",router=\"web\",code=\"2xx\"}")
        });
        let n: f64 = line.and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0.0);
        let misses =
            text.contains("rabble_proxy_requests_total{node=\"edge\",lane=\"routing\",router=\"-\",code=\"4xx\"}");
        if n >= 9.0 && misses { Ok(()) } else { Err(format!("{line:?}")) }
    });

    // The hub goes away: the node keeps routing with the table it has.
    hub.proc.stop("KILL");
    std::thread::sleep(Duration::from_secs(1));
    let (code, body) = curl(lane, "web.lan", "/");
    assert_eq!((code, body.lines().next()), (200, Some("two")), "{body}");
}

#[test]
fn hostile_clients_and_a_silent_backend_do_not_stall_the_lane() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let ok = echo_backend("ok");
    // A backend that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming() {
            held.push(s);
        }
    });
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service(
        "ok.hcl",
        &service("ok", ok, &["routing.enable=true", "routing.http.routers.ok.rule=Host(`ok.lan`)"], None),
    );
    pi1.write_service(
        "silent.hcl",
        &service(
            "silent",
            silent_port,
            &["routing.enable=true", "routing.http.routers.silent.rule=Host(`silent.lan`)"],
            None,
        ),
    );
    let lane = free_port();
    let edge = Agent::start(d, "edge", hub.mqtt_port, &["--lane", &format!("routing=127.0.0.1:{lane}")]);
    wait_for("ok.lan routed", T, || match curl(lane, "ok.lan", "/") {
        (200, _) => Ok(()),
        other => Err(format!("{other:?}")),
    });
    let before = hwm_kb(edge.proc.pid());

    // Slowloris: 200 connections that never finish their request head.
    let slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", lane)).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: ok.lan\r\nX-Slow: ").unwrap();
            s
        })
        .collect();
    // Requests to the silent backend, left waiting.
    let waiting: Vec<std::process::Child> = (0..20)
        .map(|_| {
            Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-m",
                    "30",
                    "-H",
                    "Host: silent.lan",
                    &format!("http://127.0.0.1:{lane}/"),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    // An oversized request head is refused, and the connection closed.
    let mut big = TcpStream::connect(("127.0.0.1", lane)).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let huge = format!("GET / HTTP/1.1\r\nHost: ok.lan\r\nX-Big: {}\r\n\r\n", "a".repeat(200 * 1024));
    let _ = big.write_all(huge.as_bytes());
    let mut answer = String::new();
    let _ = BufReader::new(&big).read_line(&mut answer);
    assert!(answer.is_empty() || answer.contains(" 431 "), "{answer:?}");
    // Absurd rules and garbage requests on other connections.
    for junk in [&b"\x00\x01\x02garbage\r\n\r\n"[..], b"GET http://[::1 HTTP/1.1\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n"] {
        let mut s = TcpStream::connect(("127.0.0.1", lane)).unwrap();
        let _ = s.write_all(junk);
    }
    // Meanwhile, ordinary requests are served at once.
    let start = std::time::Instant::now();
    for _ in 0..20 {
        assert_eq!(curl(lane, "ok.lan", "/").0, 200);
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "20 requests took {took:?} under load");
    let after = hwm_kb(edge.proc.pid());
    println!("edge agent VmHWM: {before} kB before, {after} kB with 200 slow clients, 20 waiting requests and junk");
    assert!(after < before + 16 * 1024, "memory grew from {before} to {after} kB");
    drop(slow);
    for mut c in waiting {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(curl(lane, "ok.lan", "/").0, 200);
}
