//! The lane proxy against Traefik 3 and nginx, in one run, in front of the same backend
//! (nginx answering `ok`), each with one worker thread (the agent's runtime is one
//! thread; Traefik with GOMAXPROCS=1; nginx with one worker): wrk's requests/s and
//! p50/p99 latency, and each proxy's peak memory. Then: how long a new service's route
//! takes to be live on a lane node (registered through the hub's API → served by the
//! agent). Prints figures; fails under `RABBLE_BENCH_MIN_RATIO` × Traefik's throughput
//! or when the agent's memory is not under Traefik's. Usage: bash tests/bench-proxy.sh

#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a synchronous driver: std time is right here

use rabble_tests::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const SECONDS: u32 = 5;
const CONNECTIONS: u32 = 32;

/// Every process in `pid`'s tree (nginx's master and workers).
fn tree(pid: u32) -> Vec<u32> {
    let mut out = vec![pid];
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
        out.extend(tree(c));
    }
    out
}

/// nginx in one process (`master_process off`): the harness kills what it started with
/// SIGKILL, which would leave a master's workers running (and skewing later benchmarks).
fn nginx_conf(dir: &Path, body: &str) -> std::path::PathBuf {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
             scgi_temp_path {d}/scgi;\n{body}\n}}\n"
        ),
    )
    .unwrap();
    conf
}

fn nginx(dir: &Path, name: &str, body: &str) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let conf = nginx_conf(dir, body);
    Proc::spawn(name, Command::new(tool("nginx")).arg("-c").arg(conf).arg("-p").arg(dir), dir)
}

struct Figures {
    rps: f64,
    p50: String,
    p99: String,
}

fn wrk(port: u16) -> Figures {
    let out = Command::new(tool("wrk"))
        .args(["-t1", &format!("-c{CONNECTIONS}"), &format!("-d{SECONDS}s"), "--latency", "-H", "Host: bench.lan"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|r| r.split_whitespace().next().unwrap_or("").to_owned())
    };
    let non2xx = text.lines().find(|l| l.contains("Non-2xx"));
    assert!(non2xx.is_none(), "wrk saw errors on port {port}:\n{text}");
    Figures {
        rps: field("Requests/sec:").and_then(|v| v.parse().ok()).unwrap_or(0.0),
        p50: field("50%").unwrap_or_default(),
        p99: field("99%").unwrap_or_default(),
    }
}

fn ready(port: u16) {
    wait_for(&format!("port {port} to answer bench.lan"), Duration::from_secs(30), || {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: bench.lan"])
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()
            .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        if code == "200" { Ok(()) } else { Err(code) }
    });
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let backend_port = free_port();
    let _backend = nginx(
        &d.join("backend"),
        "backend",
        &format!("  server {{ listen 127.0.0.1:{backend_port}; location / {{ return 200 \"ok\\n\"; }} }}"),
    );
    let hub = Hub::start(d, &[]);
    let api = hub.http.trim_start_matches("http://").to_owned();
    let lane = free_port();
    let services = d.join("services");
    std::fs::create_dir_all(&services).unwrap();
    std::fs::write(
        services.join("bench.hcl"),
        format!(
            "services {{\n  name = \"bench\"\n  port = {backend_port}\n  tags = [\"routing.enable=true\", \
             \"routing.http.routers.bench.rule=Host(`bench.lan`)\"]\n}}\n"
        ),
    )
    .unwrap();
    let agent = Agent::spawn(
        Command::new(release_agent("x86_64-unknown-linux-musl")),
        d,
        "edge",
        &format!("mqtt://127.0.0.1:{}", hub.mqtt_port),
        services,
        &["--lane", &format!("routing=127.0.0.1:{lane}")],
    );
    let traefik_port = free_port();
    let mut cmd = Command::new(tool("traefik"));
    cmd.env("GOMAXPROCS", "1").args([
        &format!("--entrypoints.web.address=127.0.0.1:{traefik_port}"),
        &format!("--providers.http.endpoint=http://{api}/v1/traefik/routing"),
        "--providers.http.pollinterval=1s",
        "--log.level=ERROR",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
    ]);
    let traefik = Proc::spawn("traefik", &mut cmd, d);
    let nginx_port = free_port();
    let nginx_proxy = nginx(
        &d.join("proxy"),
        "nginx-proxy",
        &format!(
            "  upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 64; }}\n  server {{ listen 127.0.0.1:{nginx_port}; \
             location / {{ proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}"
        ),
    );
    for p in [lane, traefik_port, nginx_port, backend_port] {
        ready(p);
    }

    println!(
        "== {SECONDS} s of wrk, 1 thread, {CONNECTIONS} connections, through each proxy to the same nginx backend =="
    );
    println!("{:<22} {:>11} {:>9} {:>9} {:>13}", "proxy", "requests/s", "p50", "p99", "peak RSS");
    let mut results = Vec::new();
    for (name, port, pids) in [
        ("rabble-agent (lane)", lane, vec![agent.proc.pid()]),
        ("traefik 3", traefik_port, vec![traefik.pid()]),
        ("nginx", nginx_port, tree(nginx_proxy.pid())),
    ] {
        let f = wrk(port);
        let kb: u64 = pids.iter().map(|p| hwm_kb(*p)).sum();
        println!("{name:<22} {:>11.0} {:>9} {:>9} {:>10} kB", f.rps, f.p50, f.p99, kb);
        results.push((f.rps, kb));
    }
    let direct = wrk(backend_port);
    println!("{:<22} {:>11.0} {:>9} {:>9}", "(backend, direct)", direct.rps, direct.p50, direct.p99);
    let (rabble, traefik_r, nginx_r) = (results[0], results[1], results[2]);
    println!(
        "rabble / traefik: {:.2}x throughput, {:.2}x memory;  rabble / nginx: {:.2}x throughput",
        rabble.0 / traefik_r.0,
        rabble.1 as f64 / traefik_r.1 as f64,
        rabble.0 / nginx_r.0
    );

    // A new service's route, live on the lane node: registered through the hub's API.
    let new = free_port();
    let _second = nginx(
        &d.join("second"),
        "second",
        &format!("  server {{ listen 127.0.0.1:{new}; location / {{ return 200 \"new\\n\"; }} }}"),
    );
    ready_plain(new);
    let body = format!(
        r#"{{"Node": "ext", "Address": "127.0.0.1", "Service": {{"Service": "fresh", "Port": {new},
           "Tags": ["routing.enable=true", "routing.http.routers.fresh.rule=Host(`fresh.lan`)"]}}}}"#
    );
    let start = Instant::now();
    let resp =
        ureq::put(&format!("{}/v1/catalog/register", hub.http)).content_type("application/json").send(body.as_str());
    assert!(resp.is_ok(), "{resp:?}");
    let live = loop {
        let r = ureq::get(&format!("http://127.0.0.1:{lane}/")).header("Host", "fresh.lan").call();
        if r.is_ok() {
            break start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the route never went live");
        std::thread::sleep(Duration::from_millis(1));
    };
    println!("new service registered -> its route live on the lane node: {:.1} ms", live.as_secs_f64() * 1000.0);

    let min_ratio: f64 = std::env::var("RABBLE_BENCH_MIN_RATIO").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let mut over = Vec::new();
    if rabble.0 < min_ratio * traefik_r.0 {
        over.push(format!("the lane served {:.0} req/s, under {min_ratio} x Traefik's {:.0}", rabble.0, traefik_r.0));
    }
    if rabble.1 >= traefik_r.1 {
        over.push(format!("the agent peaked at {} kB, not under Traefik's {} kB", rabble.1, traefik_r.1));
    }
    if !over.is_empty() {
        for o in over {
            println!("OVER BUDGET: {o}");
        }
        std::process::exit(1);
    }
}

fn ready_plain(port: u16) {
    wait_for(&format!("port {port}"), Duration::from_secs(10), || {
        ureq::get(&format!("http://127.0.0.1:{port}/")).call().map(|_| ()).map_err(|e| e.to_string())
    });
}
