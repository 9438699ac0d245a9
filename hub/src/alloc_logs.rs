//! `rabble alloc logs`, the hub's side: a request from the API becomes a signed
//! [`LogsRequest`] to the allocation's node, and the node's [`LogChunk`]s (routed here
//! by ingest, never through the catalog) come back on a bounded channel. A follow
//! session is renewed every [`RENEW_MS`] while its reader holds the [`Session`], and
//! cancelled when it drops it.

use crate::dispatch::sign::SigningKey;
use rabble_shared::logs::{LogChunk, LogsRequest, RENEW_MS, SignedRequest};
use rabble_shared::support::clock::now_ms;
use rabble_shared::{NodeId, msg, topic};
use rumqttc::{AsyncClient, QoS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Chunks queued per session before the slowest reader loses some (counted as skipped).
const QUEUE: usize = 64;

/// The open sessions, by id.
pub struct LogHub {
    client: AsyncClient,
    key: Arc<SigningKey>,
    open: Mutex<HashMap<String, (NodeId, mpsc::Sender<LogChunk>)>>,
}

/// One reader's session: chunks arrive on `rx`; dropping it ends the session.
pub struct Session {
    pub rx: mpsc::Receiver<LogChunk>,
    id: String,
    hub: Arc<LogHub>,
    req: LogsRequest,
    renew: CancellationToken,
}

impl LogHub {
    pub fn new(client: AsyncClient, key: Arc<SigningKey>) -> Arc<LogHub> {
        Arc::new(LogHub { client, key, open: Mutex::new(HashMap::new()) })
    }

    /// Asks `req.node` for the output; `req.session` and `issued_ms` are set here.
    pub async fn open(self: &Arc<Self>, mut req: LogsRequest) -> Result<Session, String> {
        req.session = format!("{:016x}", fastrand::u64(..));
        let (tx, rx) = mpsc::channel(QUEUE);
        self.sessions().insert(req.session.clone(), (req.node.clone(), tx));
        let session = Session {
            rx,
            id: req.session.clone(),
            hub: self.clone(),
            req: req.clone(),
            renew: CancellationToken::new(),
        };
        self.send(&mut req).await?;
        if req.follow {
            let (hub, stop, mut req) = (self.clone(), session.renew.clone(), req);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(RENEW_MS)) => {
                            let _ = hub.send(&mut req).await;
                        }
                    }
                }
            });
        }
        Ok(session)
    }

    /// A chunk from `node`: to its session's reader, if it is still there and the
    /// session is that node's.
    pub fn deliver(&self, node: &NodeId, payload: &[u8]) -> Result<(), String> {
        let chunk: LogChunk = msg::decode(payload).map_err(|e| e.to_string())?;
        let sessions = self.sessions();
        match sessions.get(&chunk.session) {
            Some((n, tx)) if n == node => {
                let _ = tx.try_send(chunk); // a full queue: the reader sees the gap in seq
                Ok(())
            }
            Some(_) => Err(format!("session {} is not node {node}'s", chunk.session)),
            None => Ok(()), // a session that ended
        }
    }

    async fn send(&self, req: &mut LogsRequest) -> Result<(), String> {
        req.issued_ms = now_ms();
        let body = serde_json::to_string(&req).map_err(|e| e.to_string())?;
        let signed = SignedRequest { sig: self.key.sign(body.as_bytes()), body };
        self.client
            .publish(topic::logs_request(&req.node), QoS::AtLeastOnce, false, msg::encode(&signed))
            .await
            .map_err(|e| format!("cannot reach the broker: {e}"))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, (NodeId, mpsc::Sender<LogChunk>)>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.renew.cancel();
        self.hub.sessions().remove(&self.id);
        if self.req.follow {
            let mut req = LogsRequest { cancel: true, ..self.req.clone() };
            let hub = self.hub.clone();
            tokio::spawn(async move { hub.send(&mut req).await });
        }
    }
}
