//! MQTT over TLS in tests: a hub with its private CA (`rabble-hub tls init`) and a TLS
//! listener, where nodes need credentials and the hub's relay enforces the topic policy;
//! agents that log in to it with a token; and a hub logged in to a password-protected
//! Mosquitto.

use crate::{Agent, Hub, bin, free_port, rabble_hub_cmd};
use std::path::{Path, PathBuf};

/// Where a TLS hub listens, and the CA its certificate is signed by.
#[derive(Debug, Clone)]
pub struct Tls {
    pub port: u16,
    pub ca: PathBuf,
}

impl Tls {
    pub fn url(&self) -> String {
        format!("mqtts://localhost:{}", self.port)
    }
}

/// Writes a secret (a token, a password) to `<dir>/<name>`, as a node's `token_file`.
pub fn secret_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    p
}

impl Hub {
    /// A hub with MQTT over TLS: `rabble-hub tls init` into `<dir>/tls` (for `hub.test`,
    /// localhost and loopback) unless it is there, and a TLS listener on a free port.
    pub fn start_tls(dir: &Path, extra: &[&str]) -> (Hub, Tls) {
        let pki = dir.join("tls");
        if !pki.join("hub.pem").exists() {
            let (ok, _, err) = rabble_hub_cmd(&["tls", "init", "--dir", pki.to_str().unwrap(), "--name", "hub.test"]);
            assert!(ok, "tls init: {err}");
        }
        let port = free_port();
        let (cert, key) = (pki.join("hub.pem"), pki.join("hub.key"));
        let listen = format!("127.0.0.1:{port}");
        let tls_args =
            ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--mqtts-listen", &listen];
        let hub = Hub::start(dir, &[&tls_args[..], extra].concat());
        (hub, Tls { port, ca: pki.join("ca.pem") })
    }

    /// A hub on an external Mosquitto that lets it in as `rabble-hub` with `password`.
    pub fn start_on_mosquitto(dir: &Path, port: u16, password: &str, extra: &[&str]) -> Hub {
        let pass = secret_file(dir, "hub.pass", password);
        let login = ["--broker-username", "rabble-hub", "--broker-password-file", pass.to_str().unwrap()];
        Hub::start_external(dir, port, &[&login[..], extra].concat())
    }
}

impl Agent {
    /// An agent over TLS to `tls`, logging in with `token` (kept in `<dir>/<name>.token`).
    pub fn start_tls(dir: &Path, name: &str, tls: &Tls, token: &str, extra: &[&str]) -> Agent {
        let token_file = secret_file(dir, &format!("{name}.token"), token);
        let login = ["--ca", tls.ca.to_str().unwrap(), "--token-file", token_file.to_str().unwrap()];
        let cmd = std::process::Command::new(bin("rabble-agent"));
        Agent::spawn(cmd, dir, name, &tls.url(), dir.join(format!("{name}-services")), &[&login[..], extra].concat())
    }
}
