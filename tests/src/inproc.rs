//! The hub in this test's process: `rabble_hub::run` on listeners bound here (HTTP and
//! DNS on port 0, the embedded broker on a reserved port), as mini-redis's server tests
//! run its server. For what the API and the catalog writer do, without processes; the
//! e2e suite keeps what crosses processes (agents, brokers, DNS clients, Traefik).

use crate::free_port;
use rabble_hub::config::Config;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running in-process hub; stopped (and awaited) by [`InProcHub::stop`], or told to
/// stop when dropped.
pub struct InProcHub {
    pub http: SocketAddr,
    pub dns: SocketAddr,
    pub mqtt_port: u16,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    done: Option<JoinHandle<Result<(), rabble_hub::HubError>>>,
}

/// An HTTP answer: status, content type and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Answer {
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{} {:?} is not the expected JSON: {e}", self.status, self.body))
    }
}

/// A raw_exec batch job file named `name` (runs `/bin/true`), for tests that need any job.
pub fn batch_job(name: &str) -> String {
    format!(
        "job \"{name}\" {{\n  type = \"batch\"\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      \
         config {{\n        command = \"/bin/true\"\n      }}\n    }}\n  }}\n}}\n"
    )
}

/// DNS on one port for UDP and TCP, both bound here (port 0 picks the UDP one).
async fn dns_sockets() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind DNS/UDP");
        let addr = udp.local_addr().expect("DNS/UDP address");
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no port free for DNS on both UDP and TCP after 50 tries");
}

impl InProcHub {
    /// A hub on a new, empty data dir.
    pub async fn start() -> InProcHub {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut hub = InProcHub::start_in(dir.path().join("hub-data")).await;
        hub._dir = Some(dir);
        hub
    }

    /// A hub on `data_dir` (an earlier hub's, to test what survives a restart).
    pub async fn start_in(data_dir: PathBuf) -> InProcHub {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let (dns_udp, dns_tcp) = dns_sockets().await;
        let (http_addr, dns_addr) = (http.local_addr().unwrap(), dns_udp.local_addr().unwrap());
        let mqtt_port = free_port();
        let cfg = Config::local(data_dir.clone(), http_addr, dns_addr, ([127, 0, 0, 1], mqtt_port).into());
        let listeners = rabble_hub::Listeners { http, dns_udp, dns_tcp, mqtts: None, https: None };
        let (stop, stopped) = oneshot::channel::<()>();
        let done = tokio::spawn(rabble_hub::run(cfg, listeners, async move {
            let _ = stopped.await;
        }));
        let hub = InProcHub {
            http: http_addr,
            dns: dns_addr,
            mqtt_port,
            data_dir,
            _dir: None,
            stop: Some(stop),
            done: Some(done),
        };
        // Up when the API answers from the loaded catalog.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match hub.call("GET", "/api/v1/health", None, "").await {
                Ok(a) if a.status == 200 => return hub,
                other if tokio::time::Instant::now() > deadline => panic!("in-process hub did not come up: {other:?}"),
                _ => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    /// Stops the hub and waits for it: its error if it ended with one.
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.done.take() {
            Some(d) => d.await.map_err(|e| e.to_string())?.map_err(|e| format!("{e:#}")),
            None => Ok(()),
        }
    }

    /// One request; `Err` only when no HTTP answer came.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<Vec<u8>>,
    ) -> Result<Answer, String> {
        let headers: Vec<(&str, &str)> = content_type.map(|ct| ("content-type", ct)).into_iter().collect();
        self.request(method, path, &headers, body.into()).await
    }

    /// One request with these headers, which must answer.
    pub async fn call_with(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        self.request(method, path, headers, body.as_bytes().to_vec()).await.unwrap_or_else(|e| panic!("{e}"))
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Answer, String> {
        let url = format!("http://{}{path}", self.http);
        let method = method.to_owned();
        let headers: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
            let mut req = ureq::http::Request::builder().method(method.as_str()).uri(&url);
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let req = req.body(body).map_err(|e| e.to_string())?;
            let mut resp = agent.run(req).map_err(|e| format!("{method} {url}: {e}"))?;
            let content_type =
                resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
            let body = resp.body_mut().read_to_string().map_err(|e| format!("{method} {url}: body: {e}"))?;
            Ok(Answer { status: resp.status().as_u16(), content_type, body })
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// A request that must answer: panics with what it got otherwise.
    pub async fn must(&self, method: &str, path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> Answer {
        self.call(method, path, content_type, body).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// `GET path` as `T`, which must be a 200.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        let a = self.must("GET", path, None, "").await;
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        a.json()
    }
}

impl Drop for InProcHub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
