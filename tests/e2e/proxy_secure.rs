//! The built-in proxy's guarded and encrypted routers: forwardAuth and basicAuth in
//! front of a backend, and TLS on a lane with certificates chosen by SNI.

use super::proxy::{curl, echo_backend, service};
use rabble_tests::{Agent, Hub, free_port, wait_for};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(15);

/// An auth server for forwardAuth: 200 with `X-Auth-User: alice` when the request
/// carries `Cookie: session=ok` (and says which URI it was asked about), else a 302 to
/// a login page.
fn auth_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                head.push_str(&line.to_ascii_lowercase());
                line.clear();
            }
            let mut s = s;
            let uri = head.lines().find_map(|l| l.strip_prefix("x-forwarded-uri: ")).unwrap_or("?").trim().to_owned();
            if head.contains("cookie: session=ok") && head.starts_with("get /verify ") {
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Asked: {uri}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            } else {
                let _ = write!(
                    s,
                    "HTTP/1.1 302 Found\r\nLocation: http://login.lan/\r\nContent-Length: 5\r\nConnection: close\r\n\r\nlogin"
                );
            }
        }
    });
    port
}

#[test]
fn forward_auth_and_basic_auth_guard_their_routers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let backend = echo_backend("private");
    let auth = auth_server();
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    let fa = format!("routing.http.middlewares.sso.forwardauth.address=http://127.0.0.1:{auth}/verify");
    pi1.write_service(
        "private.hcl",
        &service(
            "private",
            backend,
            &[
                "routing.enable=true",
                "routing.http.routers.private.rule=Host(`private.lan`)",
                "routing.http.routers.private.middlewares=sso",
                &fa,
                "routing.http.middlewares.sso.forwardauth.authResponseHeaders=X-Auth-User",
            ],
            None,
        ),
    );
    // htpasswd -s: {SHA} + base64(sha1("pw")).
    pi1.write_service(
        "admin.hcl",
        &service(
            "admin",
            backend,
            &[
                "routing.enable=true",
                "routing.http.routers.admin.rule=Host(`admin.lan`)",
                "routing.http.routers.admin.middlewares=login",
                "routing.http.middlewares.login.basicauth.users=me:{SHA}GpHWL3ymc5liWkNopqtdSjuqYHM=",
            ],
            None,
        ),
    );
    let lane = free_port();
    let _edge = Agent::start(d, "edge", hub.mqtt_port, &["--lane", &format!("routing=127.0.0.1:{lane}")]);
    let get = |host: &str, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-i", "-m", "5", "-H", &format!("Host: {host}")])
            .args(extra)
            .arg(format!("http://127.0.0.1:{lane}/page?x=1"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_ascii_lowercase()
    };
    // Without a session: the auth server's redirect is the answer.
    let text = wait_for("the private router", T, || {
        let t = get("private.lan", &[]);
        if t.starts_with("http/1.1 302") { Ok(t) } else { Err(t) }
    });
    assert!(text.contains("location: http://login.lan/"), "{text}");
    // With one: through, with the auth server's user header, and the URI it was asked about.
    let text = get("private.lan", &["-H", "Cookie: session=ok"]);
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("x-auth-user: alice"), "the backend sees the user: {text}");
    // Basic auth: challenged, refused, then let in.
    let text = wait_for("the admin router", T, || {
        let t = get("admin.lan", &[]);
        if t.starts_with("http/1.1 401") { Ok(t) } else { Err(t) }
    });
    assert!(text.contains("www-authenticate: basic realm=\"traefik\""), "{text}");
    assert!(get("admin.lan", &["-u", "me:wrong"]).starts_with("http/1.1 401"));
    let text = get("admin.lan", &["-u", "me:pw"]);
    assert!(text.starts_with("http/1.1 200") && text.contains("\r\n\r\nprivate\n"), "{text}");
}

/// A self-signed certificate for `name`: (cert PEM path, key PEM path).
fn self_signed(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn tls_on_a_lane_picks_the_certificate_by_sni_and_serves_tls_routers_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hub = Hub::start(d, &[]);
    let backend = echo_backend("secure");
    let pi1 = Agent::start(d, "pi1", hub.mqtt_port, &[]);
    pi1.write_service(
        "secure.hcl",
        &service(
            "secure",
            backend,
            &[
                "routing.enable=true",
                "routing.http.routers.secure.rule=Host(`secure.lan`) || Host(`other.lan`)",
                "routing.http.routers.secure.tls=true",
            ],
            None,
        ),
    );
    let (a_cert, a_key) = self_signed(d, "secure.lan");
    let (b_cert, b_key) = self_signed(d, "other.lan");
    let (plain, tls) = (free_port(), free_port());
    let config = d.join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "[[lane]]\nname = \"routing\"\nlisten = \"127.0.0.1:{plain}\"\ntls_listen = \"127.0.0.1:{tls}\"\n\
             [[lane.cert]]\ncert = \"{}\"\nkey = \"{}\"\n[[lane.cert]]\ncert = \"{}\"\nkey = \"{}\"\n",
            a_cert.display(),
            a_key.display(),
            b_cert.display(),
            b_key.display()
        ),
    )
    .unwrap();
    let _edge = Agent::start(d, "edge", hub.mqtt_port, &["--config", &config.display().to_string()]);
    let https = |name: &str, ca: &std::path::Path| {
        let out = Command::new("curl")
            .args(["-s", "-m", "5", "-w", "\n%{http_code}", "--cacert"])
            .arg(ca)
            .args(["--resolve", &format!("{name}:{tls}:127.0.0.1")])
            .arg(format!("https://{name}:{tls}/"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Each name gets its own certificate (curl verifies it against that one alone).
    let body = wait_for("secure.lan over TLS", T, || {
        let b = https("secure.lan", &a_cert);
        if b.ends_with("\n200") { Ok(b) } else { Err(b) }
    });
    assert!(body.to_ascii_lowercase().contains("x-forwarded-proto: https"), "{body}");
    assert!(https("other.lan", &b_cert).ends_with("\n200"), "SNI picks other.lan's certificate");
    assert!(!https("other.lan", &a_cert).ends_with("\n200"), "not secure.lan's");
    // A tls router does not answer plain HTTP.
    assert_eq!(curl(plain, "secure.lan", "/").0, 404);

    // A renewal (new key and certificate, swapped in by rename as certbot does) is served
    // without a restart.
    let renewed = d.join("renewed");
    std::fs::create_dir_all(&renewed).unwrap();
    let (new_cert, new_key) = self_signed(&renewed, "secure.lan");
    std::fs::copy(&new_key, d.join("swap.key")).unwrap();
    std::fs::copy(&new_cert, d.join("swap.pem")).unwrap();
    std::fs::rename(d.join("swap.key"), &a_key).unwrap();
    std::fs::rename(d.join("swap.pem"), &a_cert).unwrap();
    wait_for("the renewed certificate", T, || {
        let b = https("secure.lan", &new_cert);
        if b.ends_with("\n200") { Ok(()) } else { Err(b) }
    });
}

/// An HTTPS server (Python's, with `cert`/`key`) answering `pve over tls`.
fn https_backend(d: &std::path::Path, cert: &str, key: &str) -> (u16, rabble_tests::Proc) {
    let port = free_port();
    let script = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"pve over tls\n"
        self.send_response(200)
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
"#;
    let p = rabble_tests::Proc::spawn(
        "https-backend",
        Command::new(rabble_tests::tool("python3")).args(["-c", script, &port.to_string(), cert, key]),
        d,
    );
    (port, p)
}

#[test]
fn https_servers_behind_a_lane_are_verified_by_the_lanes_servers_transport() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pki = d.join("pki");
    let (ok, _, err) =
        rabble_tests::rabble_hub_cmd(&["tls", "init", "--dir", pki.to_str().unwrap(), "--name", "127.0.0.1"]);
    assert!(ok, "{err}");
    let pem = |f: &str| pki.join(f).to_str().unwrap().to_owned();
    // A self-signed appliance (the Proxmox UI): its certificate comes from a private CA.
    let (backend, _py) = https_backend(d, &pem("hub.pem"), &pem("hub.key"));
    let hub_toml = d.join("hub.toml");
    std::fs::write(
        &hub_toml,
        "[[lane]]\nname = \"verified\"\nprefix = \"verified\"\n[[lane]]\nname = \"skip\"\nprefix = \"skip\"\n\
         [[lane]]\nname = \"system\"\nprefix = \"system\"\n",
    )
    .unwrap();
    let hub = Hub::start(d, &["--config", hub_toml.to_str().unwrap()]);
    let (verified, skip, system) = (free_port(), free_port(), free_port());
    let edge_toml = d.join("edge.toml");
    std::fs::write(
        &edge_toml,
        format!(
            "[[lane]]\nname = \"verified\"\nlisten = \"127.0.0.1:{verified}\"\n[lane.servers_transport]\nroot_cas = [\"{}\"]\n\
             [[lane]]\nname = \"skip\"\nlisten = \"127.0.0.1:{skip}\"\n[lane.servers_transport]\ninsecure_skip_verify = true\n\
             [[lane]]\nname = \"system\"\nlisten = \"127.0.0.1:{system}\"\n",
            pem("ca.pem")
        ),
    )
    .unwrap();
    let edge = Agent::start(d, "edge", hub.mqtt_port, &["--config", edge_toml.to_str().unwrap()]);
    let mut tags = Vec::new();
    for lane in ["verified", "skip", "system"] {
        tags.push(format!("{lane}.enable=true"));
        tags.push(format!("{lane}.http.routers.pve.rule=Host(`pve.lan`)"));
        tags.push(format!("{lane}.http.services.pve.loadbalancer.server.scheme=https"));
    }
    // forwardAuth to an https auth server goes through the lane's transport too.
    tags.push(format!("skip.http.middlewares.sso.forwardauth.address=https://127.0.0.1:{backend}/verify"));
    tags.push("skip.http.routers.guarded.rule=Host(`guarded.lan`)".into());
    tags.push("skip.http.routers.guarded.middlewares=sso".into());
    tags.push("skip.http.routers.guarded.service=pve".into());
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    edge.write_service("pve.hcl", &service("pve", backend, &tags, None));
    for port in [verified, skip] {
        let (code, body) = wait_for("the https server through the lane", T, || {
            let (c, b) = curl(port, "pve.lan", "/");
            if c == 200 { Ok((c, b)) } else { Err(format!("{c} {b}")) }
        });
        assert_eq!((code, body.as_str()), (200, "pve over tls\n"));
    }
    let (code, body) = wait_for("the guarded router", T, || {
        let (c, b) = curl(skip, "guarded.lan", "/");
        if c == 200 { Ok((c, b)) } else { Err(format!("{c} {b}")) }
    });
    assert_eq!((code, body.as_str()), (200, "pve over tls\n"));
    // Verified against the system's roots, a private CA's certificate is refused, saying so.
    let (code, body) = curl(system, "pve.lan", "/");
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("TLS") && body.contains("system"), "{body}");
}
