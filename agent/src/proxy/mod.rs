//! The built-in proxy: the node serves the HTTP lanes its config names (`[[lane]] name,
//! listen`), routing with the table the hub publishes retained on
//! `rabble/hub/routes/<lane>` — "Traefik on every node" without Traefik. The table is
//! kept in memory, so a node keeps routing while the hub is away. A node without a
//! lane starts nothing and pays nothing. `table` is the pure core; `serve` the IO.

pub mod serve;
pub mod steps;
pub mod table;
pub mod tls;
pub mod upstream;

use rabble_shared::msg;
use rabble_shared::routes::LaneTable;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use table::Lane;
use tokio::sync::watch;

/// A lane this node serves, as configured.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneListen {
    pub name: String,
    pub listen: SocketAddr,
    /// HTTPS for the lane's `tls` routers, with `[[lane.cert]]` certificates.
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    #[serde(default, rename = "cert")]
    pub certs: Vec<tls::CertFiles>,
    /// How the lane talks to its `https` servers.
    #[serde(default)]
    pub servers_transport: upstream::ServersTransport,
}

/// The running lanes: each one's table, updated from the hub's messages, its routers'
/// counters, and (served over TLS) the certificates the hub handed it.
#[derive(Default)]
pub struct Lanes {
    tables: BTreeMap<String, Running>,
}

/// One lane's table (sender), counters, and hub certificates (served over TLS only).
type Running = (watch::Sender<Arc<Lane>>, Arc<table::Counters>, Option<Arc<tls::Pushed>>);

impl Lanes {
    /// Binds every lane's listener (naming the one that fails) and starts serving.
    pub async fn start(
        lanes: &[LaneListen],
    ) -> Result<(Lanes, Vec<tokio::task::JoinHandle<()>>), crate::error::AgentError> {
        let mut out = Lanes::default();
        let mut tasks = Vec::new();
        for l in lanes {
            let listener = tokio::net::TcpListener::bind(l.listen).await.map_err(|error| {
                crate::error::AgentError::Bind { what: format!("lane {}", l.name), addr: l.listen, error }
            })?;
            let counters = Arc::new(table::Counters::default());
            let empty = LaneTable { lane: l.name.clone(), ..Default::default() };
            let (tx, rx) = watch::channel(Arc::new(Lane::compile(&empty, &counters).0));
            tracing::info!(lane = %l.name, listen = %l.listen, "serving the lane");
            let upstream_tls = Arc::new(upstream::client_config(&l.servers_transport));
            if let Err(e) = upstream_tls.as_ref() {
                tracing::warn!(lane = %l.name, "the lane's https servers will get 502s: {e}");
            }
            let mut pushed = None;
            if let Some(addr) = l.tls_listen {
                let from_hub = Arc::new(tls::Pushed::default());
                pushed = Some(from_hub.clone());
                let acceptor = tls::acceptor(&l.certs, from_hub)
                    .map_err(|e| crate::error::AgentError::LaneTls(format!("lane {}: {e}", l.name)))?;
                let tls_listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
                    crate::error::AgentError::Bind { what: format!("lane {} (TLS)", l.name), addr, error }
                })?;
                tracing::info!(lane = %l.name, listen = %addr, cert_files = l.certs.len(), "serving the lane over TLS (and with the hub's ACME certificates)");
                tasks.push(tokio::spawn(serve::serve(
                    l.name.clone(),
                    tls_listener,
                    rx.clone(),
                    Some(acceptor),
                    upstream_tls.clone(),
                )));
            }
            tasks.push(tokio::spawn(serve::serve(l.name.clone(), listener, rx, None, upstream_tls)));
            out.tables.insert(l.name.clone(), (tx, counters, pushed));
        }
        Ok((out, tasks))
    }

    /// Every router's counters, for `rabble/node/<node>/proxy`.
    pub fn stats(&self) -> rabble_shared::routes::ProxyStats {
        let lanes = self
            .tables
            .iter()
            .map(|(name, (_, counters, _))| {
                let c = counters.lock().unwrap_or_else(|e| e.into_inner());
                let routers = c.iter().map(|(r, s)| (r.clone(), s.snapshot())).filter(|(_, s)| s.count > 0).collect();
                (name.clone(), routers)
            })
            .collect();
        rabble_shared::routes::ProxyStats { lanes }
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tables.keys().map(String::as_str)
    }

    /// A message on `rabble/hub/routes/<lane>`: the lane's new table (empty: none).
    pub fn update(&self, lane: &str, payload: &[u8]) {
        let Some((tx, counters, _)) = self.tables.get(lane) else { return };
        let table = if payload.is_empty() {
            LaneTable { lane: lane.to_owned(), ..Default::default() }
        } else {
            match msg::decode::<LaneTable>(payload) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(lane, "refused a routing table (keeping the last one): {e}");
                    return;
                }
            }
        };
        let (compiled, skipped) = Lane::compile(&table, counters);
        for s in &skipped {
            tracing::warn!(lane, "{s}");
        }
        tracing::info!(lane, routers = compiled.routes.len(), index = compiled.index, "routing table updated");
        tx.send_replace(Arc::new(compiled));
    }

    /// A message on `rabble/node/<node>/certs/<lane>`: the lane's ACME certificates
    /// (sealed with a key from this node's token; empty: none). Kept in memory only.
    pub fn certs(&self, node: &rabble_shared::NodeId, lane: &str, payload: &[u8], token: Option<&str>) {
        let Some((_, _, Some(pushed))) = self.tables.get(lane) else { return };
        let bundle = if payload.is_empty() { Ok(Default::default()) } else { certs::open(node, lane, payload, token) };
        match bundle {
            Ok(b) => {
                let mut keys = Vec::new();
                for c in &b.certs {
                    match tls::from_pem(c.chain_pem.as_bytes(), c.key_pem.as_bytes(), &c.domains.join(","), "its key") {
                        Ok(k) => keys.push(k),
                        Err(e) => tracing::warn!(lane, "a certificate from the hub is unusable: {e}"),
                    }
                }
                tracing::info!(lane, certs = keys.len(), "lane certificates from the hub");
                pushed.set(keys);
            }
            Err(e) => tracing::warn!(lane, "refused certificates from the hub (keeping those in use): {e}"),
        }
    }
}

mod certs {
    //! Opening a certificate message.
    use rabble_shared::certs::{CertBundle, CertMessage};
    use rabble_shared::support::seal;

    pub fn open(
        node: &rabble_shared::NodeId,
        lane: &str,
        payload: &[u8],
        token: Option<&str>,
    ) -> Result<CertBundle, String> {
        let m = rabble_shared::msg::decode::<CertMessage>(payload).map_err(|e| e.to_string())?;
        match (m.sealed, m.plain, token) {
            (_, Some(plain), _) => Ok(plain),
            (Some(_), None, None) => Err("they are sealed and this node has no token (token_file)".into()),
            (Some(b64), None, Some(token)) => {
                let plain = seal::open_b64(token, node.as_str(), &rabble_shared::topic::certs(node, lane), &b64)?;
                CertBundle::from_bytes(&plain).map_err(|e| e.to_string())
            }
            (None, None, _) => Err("empty certificate message".into()),
        }
    }
}
