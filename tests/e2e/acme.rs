//! ACME for a lane's `tls.certresolver` router, end to end: the hub orders the
//! certificate from pebble (Let's Encrypt's own test CA, Debian's `pebble`) by DNS-01,
//! through a stand-in for Cloudflare's API (Cloudflare cannot be reached here:
//! tests/fixtures/cloudflare-standin.py speaks its API and puts the records into
//! pebble-challtestsrv's DNS, which pebble and the hub query), keeps it sealed, and
//! hands it — sealed for the node — to the node serving the lane over TLS, which
//! serves it. The hub's client code path is the one that talks to Let's Encrypt.

use rabble_shared::api::NodeStatus;
use rabble_tests::{Agent, Hub, Proc, free_port, rabble_hub_cmd, tool, wait_for};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "cf-token-4f1d2c";
const HOST: &str = "home.example.org";

struct Pebble {
    _chall: Proc,
    _pebble: Proc,
    _cf: Proc,
    dir_url: String,
    mgmt: u16,
    dns: u16,
    cf: u16,
    cf_log: PathBuf,
}

fn pebble(d: &Path, pki: &Path) -> Pebble {
    let (dns, chall_mgmt, port, mgmt, cf) = (free_port(), free_port(), free_port(), free_port(), free_port());
    let chall = Proc::spawn(
        "challtestsrv",
        Command::new(tool("pebble-challtestsrv"))
            .args(["-dns01", &format!("127.0.0.1:{dns}"), "-management", &format!("127.0.0.1:{chall_mgmt}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv6", ""]),
        d,
    );
    let config = d.join("pebble.json");
    let json = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt}"),
        "certificate": pki.join("hub.pem"),
        "privateKey": pki.join("hub.key"),
        "httpPort": free_port(),
        "tlsPort": free_port(),
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(&config, json.to_string()).unwrap();
    let pebble = Proc::spawn(
        "pebble",
        Command::new(tool("pebble"))
            .arg("-config")
            .arg(&config)
            .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
            // No random sleeps before validating, no random nonce rejections.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0"),
        d,
    );
    let cf_log = d.join("cloudflare.log");
    let cf_proc = Proc::spawn(
        "cloudflare-standin",
        Command::new(tool("python3")).arg(fixture("cloudflare-standin.py")).args([
            &cf.to_string(),
            TOKEN,
            "example.org",
            &format!("http://127.0.0.1:{chall_mgmt}"),
            cf_log.to_str().unwrap(),
        ]),
        d,
    );
    let ca = pki.join("ca.pem");
    wait_for("pebble", Duration::from_secs(15), || {
        let ok =
            curl(&["--cacert", ca.to_str().unwrap(), &format!("https://127.0.0.1:{port}/dir")]).contains("newOrder");
        if ok { Ok(()) } else { Err("no directory yet".to_owned()) }
    });
    Pebble {
        _chall: chall,
        _pebble: pebble,
        _cf: cf_proc,
        dir_url: format!("https://127.0.0.1:{port}/dir"),
        mgmt,
        dns,
        cf,
        cf_log,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").args(["-s", "-m", "5"]).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn a_certresolver_router_gets_a_certificate_by_dns01_and_the_lane_node_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = d.join("pki");
    let (ok, _, err) =
        rabble_hub_cmd(&["tls", "init", "--dir", pki.to_str().unwrap(), "--name", "127.0.0.1", "--name", "localhost"]);
    assert!(ok, "{err}");
    let p = pebble(d, &pki);
    let hub_data = d.join("hub-data");
    let edge_token = rabble_tests::node_token(&hub_data, "edge", &[]);
    let watcher = rabble_tests::node_token(&hub_data, "watcher", &["--observer"]);
    let cf_token = d.join("cf.token");
    std::fs::write(&cf_token, TOKEN).unwrap();
    let hub_toml = d.join("hub.toml");
    std::fs::write(
        &hub_toml,
        format!(
            "[[resolver]]\nname = \"le\"\nemail = \"admin@example.org\"\nca_server = \"{}\"\nca_root = \"{}\"\n\
             dns_resolvers = [\"127.0.0.1:{}\"]\npropagation_timeout = \"20s\"\n\
             cloudflare_api = \"http://127.0.0.1:{}/client/v4\"\ntoken_file = \"{}\"\n",
            p.dir_url,
            pki.join("ca.pem").display(),
            p.dns,
            p.cf,
            cf_token.display()
        ),
    )
    .unwrap();
    let mqtts = free_port();
    let pem = |f: &str| pki.join(f).to_str().unwrap().to_owned();
    let (hub_pem, hub_key) = (pem("hub.pem"), pem("hub.key"));
    let hub_args = [
        "--config",
        hub_toml.to_str().unwrap(),
        "--tls-cert",
        &hub_pem,
        "--tls-key",
        &hub_key,
        "--mqtts-listen",
        &format!("127.0.0.1:{mqtts}"),
    ];
    let mut hub = Hub::start(d, &hub_args);

    // A node serving the ingress lane over TLS, with no certificate files of its own,
    // and a node hosting the service.
    let backend = super::proxy::echo_backend("acme");
    let (plain, tls) = (free_port(), free_port());
    let edge_toml = d.join("edge.toml");
    std::fs::write(
        &edge_toml,
        format!("[[lane]]\nname = \"ingress\"\nlisten = \"127.0.0.1:{plain}\"\ntls_listen = \"127.0.0.1:{tls}\"\n"),
    )
    .unwrap();
    let token_file = d.join("edge.token");
    std::fs::write(&token_file, &edge_token).unwrap();
    let ca = pem("ca.pem");
    let edge_args =
        ["--config", edge_toml.to_str().unwrap(), "--ca", &ca, "--token-file", token_file.to_str().unwrap()];
    let hub_url = format!("mqtts://localhost:{mqtts}");
    let edge = Agent::spawn(
        Command::new(rabble_tests::bin("rabble-agent")),
        d,
        "edge",
        &hub_url,
        d.join("edge-services"),
        &edge_args,
    );
    edge.write_service(
        "web.hcl",
        &super::proxy::service(
            "web",
            backend,
            &[
                "ingress.enable=true",
                &format!("ingress.http.routers.web.rule=Host(`{HOST}`)"),
                "ingress.http.routers.web.tls.certresolver=le",
            ],
            None,
        ),
    );
    hub.wait_node("edge", NodeStatus::Up, Duration::from_secs(15));

    // pebble's root for this run (it makes a new one at every start).
    let root = d.join("pebble-root.pem");
    std::fs::write(&root, curl(&["--cacert", &ca, &format!("https://127.0.0.1:{}/roots/0", p.mgmt)])).unwrap();
    let https = || {
        curl(&[
            "-w",
            "\n%{http_code}",
            "--cacert",
            root.to_str().unwrap(),
            "--resolve",
            &format!("{HOST}:{tls}:127.0.0.1"),
            &format!("https://{HOST}:{tls}/"),
        ])
    };
    let body = wait_for("the ACME certificate served on the lane", Duration::from_secs(90), || {
        let b = https();
        if b.ends_with("\n200") {
            Ok(b)
        } else {
            Err(format!("{b:?}; hub certs: {:?}", hub.get::<serde_json::Value>("/api/v1/certs")))
        }
    });
    assert!(body.starts_with("acme"), "{body}");

    // The API says what was issued, never the key.
    let certs: serde_json::Value = hub.get("/api/v1/certs").unwrap();
    let c = &certs["certs"][0];
    assert_eq!(
        (c["resolver"].as_str(), c["domains"][0].as_str(), c["lanes"][0].as_str()),
        (Some("le"), Some(HOST), Some("ingress"))
    );
    assert!(c["not_after"].as_u64().unwrap() > c["renew_at"].as_u64().unwrap(), "{certs}");
    assert!(!certs.to_string().contains("PRIVATE KEY"), "{certs}");

    // One record added and removed, with the token; the token is in no log.
    let log = std::fs::read_to_string(&p.cf_log).unwrap();
    let count = |call: &str| log.lines().filter(|l| l.contains(&format!("\"call\": \"{call}\""))).count();
    assert_eq!((count("add"), count("delete"), count("refused")), (1, 1, 0), "{log}");
    assert!(!hub.proc.log().contains(TOKEN), "the Cloudflare token is in the hub's log");

    // Nothing in clear on disk, nor on the wire: an observer sees the certificates
    // sealed for the node.
    for (path, bytes) in rabble_tests::files_under(&hub_data) {
        assert!(!contains(&bytes, "PRIVATE KEY"), "{} holds a private key in clear", path.display());
    }
    let sub = Command::new(tool("mosquitto_sub"))
        .args(["-h", "localhost", "-p", &mqtts.to_string(), "--cafile", &ca, "-u", "watcher", "-P", &watcher])
        .args(["-t", "rabble/node/edge/certs/ingress", "-C", "1", "-W", "5"])
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&sub.stdout);
    assert!(seen.contains("\"sealed\"") && !seen.contains("PRIVATE KEY") && !seen.contains("\"plain\""), "{seen}");

    // A restarted hub keeps the certificate (no new order); a restarted node gets it back
    // from the retained message (it kept nothing on disk).
    hub.restart("TERM");
    drop(edge);
    let edge = Agent::spawn(
        Command::new(rabble_tests::bin("rabble-agent")),
        d,
        "edge",
        &hub_url,
        d.join("edge-services"),
        &edge_args,
    );
    hub.wait_node("edge", NodeStatus::Up, Duration::from_secs(15));
    wait_for("the certificate after restarts", Duration::from_secs(30), || {
        let b = https();
        if b.ends_with("\n200") { Ok(()) } else { Err(b) }
    });
    let log = std::fs::read_to_string(&p.cf_log).unwrap();
    assert_eq!(log.lines().filter(|l| l.contains("\"call\": \"add\"")).count(), 1, "ordered again: {log}");
    drop(edge);
}
