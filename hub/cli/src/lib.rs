//! The operator CLI: `rabble dev`, `rabble nodes`, `rabble services`, `rabble routes`, `rabble watch`,
//! `rabble kv`, `rabble var`.

pub mod acl;
pub mod alert;
pub mod alloc;
pub mod dev;
pub mod image;
pub mod job;
pub mod kv;
pub mod node;
mod table;
pub mod vars;
pub mod volume;

use rabble_shared::api::{Event, NodeView, ServiceView};
use serde::de::DeserializeOwned;
use std::io::BufRead;

/// Errors talking to the hub's API.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot reach the hub at {addr}: {error} (is rabble-hub running? set --addr or RABBLE_ADDR)")]
    Unreachable { addr: String, error: ureq::Error },
    #[error("bad answer from {url}: {message}")]
    BadAnswer { url: String, message: String },
    /// The hub answered with an error (a bad job file, an unknown node, ...).
    #[error("{0}")]
    Refused(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    /// An argument that does not read (a matcher, a duration).
    #[error("{0}")]
    Usage(String),
}

/// What `rabble alloc logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub task: Option<String>,
    pub stderr: bool,
    pub follow: bool,
    pub lines: Option<u32>,
    pub bytes: Option<u32>,
}

/// A client for the hub's HTTP API.
#[derive(Clone)]
pub struct Client {
    addr: String,
    /// The ACL token's secret (`RABBLE_TOKEN`), sent as `Authorization: Bearer`.
    token: Option<String>,
    /// Every request goes through it: error statuses are answers, TLS trusts `--ca` when
    /// given (else Mozilla's roots).
    agent: ureq::Agent,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Client").field("addr", &self.addr).field("token", &self.token.as_ref().map(|_| "…")).finish()
    }
}

impl Client {
    /// A client for the hub at `addr`, with the token `acl::find_token` finds, if any.
    pub fn new(addr: &str) -> Client {
        Client { addr: addr.trim_end_matches('/').to_owned(), token: acl::find_token(), agent: agent(None) }
    }

    /// The same hub, its HTTPS certificate checked against the CA in `pem` (a file's path).
    pub fn with_ca(mut self, pem: &std::path::Path) -> Result<Client, CliError> {
        let bad = |message: String| CliError::BadAnswer { url: pem.display().to_string(), message };
        let bytes = std::fs::read(pem).map_err(|e| bad(e.to_string()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&bytes)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it (expected PEM)".into()));
        }
        self.agent = agent(Some(ureq::tls::RootCerts::new_with_certs(&certs)));
        Ok(self)
    }

    /// The same hub with this token.
    pub fn with_token(mut self, secret: &str) -> Client {
        self.token = Some(secret.trim().to_owned());
        self
    }

    /// Adds the token to a request, when there is one.
    fn auth<B>(&self, r: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(t) => r.header("authorization", &format!("Bearer {t}")),
            None => r,
        }
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = format!("{}{path}", self.addr);
        let resp = self.auth(self.agent.get(&url)).call();
        self.answer(url, resp)
    }

    /// POSTs `body` as JSON.
    pub fn post<T: DeserializeOwned>(&self, path: &str, body: &impl serde::Serialize) -> Result<T, CliError> {
        let url = format!("{}{path}", self.addr);
        let resp = self.auth(self.agent.post(&url)).send_json(body);
        self.answer(url, resp)
    }

    /// PUTs `body` as JSON.
    pub fn put<T: DeserializeOwned>(&self, path: &str, body: &impl serde::Serialize) -> Result<T, CliError> {
        let url = format!("{}{path}", self.addr);
        let resp = self.auth(self.agent.put(&url)).send_json(body);
        self.answer(url, resp)
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T, CliError> {
        let url = format!("{}{path}", self.addr);
        let resp = self.auth(self.agent.delete(&url)).call();
        self.answer(url, resp)
    }

    /// A 2xx body as `T`; an error status as the hub's own words.
    fn answer<T: DeserializeOwned>(
        &self,
        url: String,
        resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, CliError> {
        let mut resp = resp.map_err(|source| CliError::Unreachable { addr: self.addr.clone(), error: source })?;
        if !resp.status().is_success() {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let msg = serde_json::from_str::<rabble_shared::api::ApiError>(&text).map_or(text, |e| e.error);
            return Err(CliError::Refused(msg));
        }
        resp.body_mut().read_json().map_err(|e| CliError::BadAnswer { url, message: e.to_string() })
    }

    pub fn nodes(&self) -> Result<Vec<NodeView>, CliError> {
        self.get("/api/v1/nodes")
    }

    pub fn services(&self) -> Result<Vec<ServiceView>, CliError> {
        self.get("/api/v1/services")
    }

    /// Copies a task's output to `out` as it arrives (`rabble alloc logs`).
    pub fn logs(&self, alloc: &str, q: &LogsQuery, out: &mut impl std::io::Write) -> Result<(), CliError> {
        let mut url = format!(
            "{}/api/v1/allocations/{alloc}/logs?type={}",
            self.addr,
            if q.stderr { "stderr" } else { "stdout" }
        );
        if let Some(t) = &q.task {
            url.push_str(&format!("&task={}", t.replace('%', "%25").replace('&', "%26").replace('#', "%23")));
        }
        if q.follow {
            url.push_str("&follow=true");
        }
        for (k, v) in [("lines", q.lines), ("bytes", q.bytes)] {
            if let Some(v) = v {
                url.push_str(&format!("&{k}={v}"));
            }
        }
        let resp = self.auth(self.agent.get(&url)).call();
        let mut resp = resp.map_err(|source| CliError::Unreachable { addr: self.addr.clone(), error: source })?;
        if !resp.status().is_success() {
            return self.answer::<()>(url, Ok(resp));
        }
        let mut body = resp.body_mut().as_reader();
        let mut buf = [0u8; 8192];
        loop {
            let n = std::io::Read::read(&mut body, &mut buf)?;
            if n == 0 {
                return Ok(());
            }
            out.write_all(&buf[..n])?;
            out.flush()?;
        }
    }

    /// Calls `each` for every event until the stream ends.
    pub fn watch(&self, mut each: impl FnMut(Event) -> std::io::Result<()>) -> Result<(), CliError> {
        let url = format!("{}/api/v1/events", self.addr);
        let resp = self.auth(self.agent.get(&url)).call();
        let resp = resp.map_err(|source| CliError::Unreachable { addr: self.addr.clone(), error: source })?;
        if !resp.status().is_success() {
            return self.answer::<()>(url, Ok(resp));
        }
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let line = line?;
            match serde_json::from_str::<Event>(&line) {
                Ok(ev) => each(ev)?,
                Err(_) => eprintln!("{line}"),
            }
        }
        Ok(())
    }
}

/// An agent that answers error statuses (the hub's words are in them), with these roots.
fn agent(roots: Option<ureq::tls::RootCerts>) -> ureq::Agent {
    let mut b = ureq::Agent::config_builder().http_status_as_error(false);
    if let Some(r) = roots {
        b = b.tls_config(ureq::tls::TlsConfig::builder().root_certs(r).build());
    }
    b.build().new_agent()
}

pub fn print_nodes(client: &Client, json: bool) -> Result<(), CliError> {
    let nodes = client.nodes()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&nodes).unwrap_or_default());
    } else {
        print!("{}", table::nodes(&nodes));
    }
    Ok(())
}

pub fn print_services(client: &Client, json: bool) -> Result<(), CliError> {
    let services = client.services()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&services).unwrap_or_default());
    } else {
        print!("{}", table::services(&services));
    }
    Ok(())
}

/// `rabble routes [--lane L] [--json]`.
pub fn print_routes(client: &Client, lane: Option<&str>, json: bool) -> Result<(), CliError> {
    let path = match lane {
        Some(l) => format!("/api/v1/routes?lane={l}"),
        None => "/api/v1/routes".to_owned(),
    };
    let tables: Vec<rabble_shared::routes::LaneTable> = client.get(&path)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&tables).unwrap_or_default());
    } else {
        print!("{}", table::routes(&tables));
    }
    Ok(())
}

pub fn watch(client: &Client, json: bool) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    client.watch(|ev| {
        if json {
            writeln!(out, "{}", serde_json::to_string(&ev).unwrap_or_default())?;
        } else {
            writeln!(out, "{}  {:<40}  {}", table::clock(ev.ts_ms), ev.topic, ev.summary)?;
        }
        out.flush()
    })
}
