//! The API over HTTPS with the hub's own CA, and ACL tokens over it, as the real clients
//! send them: curl, the `rabble` CLI (`--ca-cert`, `RABBLE_TOKEN`), Traefik 3's
//! consulCatalog (`endpoint.tls.ca`, `endpoint.token`) and Prometheus (http_sd and a scrape
//! of `/metrics`, each with `tls_config.ca_file` and a Bearer token; Debian's Prometheus is
//! built without consul_sd). The anonymous rules are
//! emptied, so a client whose token did not arrive sees nothing.

use rabble_tests::{Hub, Proc, bin, free_port, tool, wait_for};
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn curl(args: &[&str]) -> (bool, String) {
    let o = Command::new("curl").args(["-sS", "--max-time", "5"]).args(args).output().unwrap();
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn the_api_over_https_with_tokens_for_the_cli_traefik_and_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let config = d.join("hub.toml");
    std::fs::write(&config, "[acl]\nanonymous = \"\"\n").unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let (hub, tls) = Hub::start_tls(d, &["--config", config.to_str().unwrap(), "--https-listen", &listen]);
    let (ca, base) = (tls.ca.to_str().unwrap().to_owned(), format!("https://localhost:{port}"));

    // TLS with the hub's CA; without it, curl refuses the certificate.
    let (ok, out) = curl(&["--cacert", &ca, &format!("{base}/api/v1/health")]);
    assert!(ok && out.contains("\"index\""), "{out}");
    let (ok, out) = curl(&[&format!("{base}/api/v1/health")]);
    assert!(!ok && out.contains("certificate"), "{out}");
    // A client that connects and says nothing holds up no one.
    let _silent = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let t0 = std::time::Instant::now();
    assert!(curl(&["--cacert", &ca, &format!("{base}/api/v1/health")]).0);
    assert!(t0.elapsed() < Duration::from_secs(2), "a silent connection stalled the API: {:?}", t0.elapsed());

    // The CLI over HTTPS: bootstrap, then nothing without the token.
    let rabble = |args: &[&str], token: Option<&str>| {
        let mut cmd = Command::new(bin("rabble"));
        cmd.args(["--addr", &base, "--ca-cert", &ca]).args(args);
        cmd.env_remove("RABBLE_TOKEN").env_remove("RABBLE_TOKEN_FILE").env("XDG_CONFIG_HOME", d.join("cfg"));
        if let Some(t) = token {
            cmd.env("RABBLE_TOKEN", t);
        }
        let o = cmd.output().unwrap();
        (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr))
    };
    let secret = |out: &str| out.lines().find_map(|l| l.strip_prefix("SecretID:")).map(|s| s.trim().to_owned());
    let (ok, out) = rabble(&["acl", "bootstrap"], None);
    assert!(ok, "{out}");
    let root = secret(&out).expect(&out);
    let (ok, out) = rabble(&["services"], None);
    assert!(!ok && out.contains("needs service:read"), "{out}");
    assert!(rabble(&["services"], Some(&root)).0);
    // The web UI over HTTPS: the session cookie is `Secure` (never sent in clear), and
    // `HttpOnly` (never readable by a script).
    let (ok, head) =
        curl(&["--cacert", &ca, "-i", "--data-urlencode", &format!("token={root}"), &format!("{base}/ui/login")]);
    let cookie = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or_default();
    assert!(ok && cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{head}");
    let (ok, out) = rabble(
        &["acl", "policy", "create", "--name", "readers", "--rules", "service \"\" { policy = \"read\" }"],
        Some(&root),
    );
    assert!(ok, "{out}");
    let (ok, out) =
        rabble(&["acl", "token", "create", "--policy", "readers", "--description", "traefik+prometheus"], Some(&root));
    assert!(ok, "{out}");
    let reader = secret(&out).expect(&out);

    // A backend registered as Consul's clients do, over HTTPS with the management token.
    let backend_port = free_port();
    let mut cmd = Command::new(bin("tiny-http"));
    cmd.arg(backend_port.to_string()).env("NOMAD_ALLOC_NAME", "filebot");
    let _backend = Proc::spawn("filebot", &mut cmd, d);
    let body = format!(
        r#"{{"Node": "nas", "Address": "127.0.0.1", "Service": {{"Service": "filebot", "Port": {backend_port},
        "Tags": ["routing.enable=true", "routing.http.routers.filebot.rule=Host(`filebot.lan`)", "prometheus.scrape=true"]}},
        "Check": {{"CheckID": "filebot", "Name": "up", "Status": "passing", "ServiceID": "filebot"}}}}"#
    );
    let auth = format!("X-Consul-Token: {root}");
    let (ok, out) =
        curl(&["--cacert", &ca, "-X", "PUT", "-H", &auth, "--data", &body, &format!("{base}/v1/catalog/register")]);
    assert!(ok && out.trim() == "true", "{out}");

    // Traefik 3, consulCatalog over HTTPS with the CA and the reader's token.
    let web = free_port();
    let mut cmd = Command::new(tool("traefik"));
    cmd.args([
        &format!("--entrypoints.web.address=127.0.0.1:{web}"),
        "--providers.consulcatalog.prefix=routing",
        "--providers.consulcatalog.exposedbydefault=false",
        "--providers.consulcatalog.watch=true",
        &format!("--providers.consulcatalog.endpoint.address=localhost:{port}"),
        "--providers.consulcatalog.endpoint.scheme=https",
        &format!("--providers.consulcatalog.endpoint.tls.ca={ca}"),
        &format!("--providers.consulcatalog.endpoint.token={reader}"),
        "--log.level=INFO",
        "--global.checknewversion=false",
        "--global.sendanonymoususage=false",
    ]);
    let traefik = Proc::spawn("traefik", &mut cmd, d);
    wait_for("Traefik to route filebot from the hub over HTTPS", T, || {
        match rabble_tests::curl_host(web, "filebot.lan", "/") {
            (200, b) if b.trim() == "filebot" => Ok(()),
            other => Err(format!("{other:?}\n{}", traefik.log())),
        }
    });

    // Prometheus: http_sd and the hub's /metrics over HTTPS, each with the reader's token.
    let prom_web = free_port();
    let prom_config = d.join("prometheus.yml");
    std::fs::write(
        &prom_config,
        format!(
            r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: hub
    scheme: https
    tls_config: {{ ca_file: "{ca}" }}
    authorization: {{ type: Bearer, credentials: "{reader}" }}
    static_configs:
      - targets: ["localhost:{port}"]
  - job_name: http
    http_sd_configs:
      - url: "https://localhost:{port}/api/v1/prometheus/targets"
        refresh_interval: 1s
        authorization: {{ type: Bearer, credentials: "{reader}" }}
        tls_config: {{ ca_file: "{ca}" }}
"#
        ),
    )
    .unwrap();
    let mut cmd = Command::new(tool("prometheus"));
    cmd.arg(format!("--config.file={}", prom_config.display()))
        .arg(format!("--storage.tsdb.path={}", d.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_web}"));
    let prom = Proc::spawn("prometheus", &mut cmd, d);
    wait_for("Prometheus to scrape the hub and discover filebot over HTTPS", T, || {
        let url = format!("http://127.0.0.1:{prom_web}/api/v1/targets");
        let v: serde_json::Value =
            ureq::get(&url).call().map_err(|e| e.to_string())?.body_mut().read_json().map_err(|e| e.to_string())?;
        let active = v["data"]["activeTargets"].as_array().cloned().unwrap_or_default();
        let hub_up = active.iter().any(|t| t["labels"]["job"] == "hub" && t["health"] == "up");
        let found = active
            .iter()
            .any(|t| t["labels"]["job"] == "http" && t["labels"]["instance"] == format!("127.0.0.1:{backend_port}"));
        if hub_up && found { Ok(()) } else { Err(format!("{active:?}\n{}", prom.log())) }
    });

    // Nothing secret in the hub's log.
    let log = hub.proc.log();
    for s in [&root, &reader] {
        assert!(!log.contains(s.as_str()), "a token's secret in the hub's log");
    }
}
