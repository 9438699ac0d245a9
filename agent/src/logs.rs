//! `rabble alloc logs`, the node's side: checks the hub's signed request, then streams
//! one task's output as [`LogChunk`]s (QoS 0) on `rabble/node/<node>/logs/<session>`.
//! A follow session lives while the hub renews its lease; at most
//! [`MAX_SESSIONS`] at once; every buffer is bounded; nothing is written to disk.

use crate::allocs::output::Source;
use crate::assign::{Refusal, open};
use rabble_shared::logs::{
    LEASE_MS, LogChunk, LogsRequest, MAX_CHUNK, MAX_SESSIONS, MAX_SKEW_MS, SignedRequest, last_lines, take_text,
};
use rabble_shared::{NodeId, msg, topic};
use rumqttc::{AsyncClient, QoS};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// How often a follow session looks for new process output.
const POLL: Duration = Duration::from_millis(200);
#[cfg(feature = "docker")]
/// The most a one-shot answer from the Docker engine's log keeps (the last bytes).
const ONE_SHOT_MAX: usize = 256 * 1024;
/// Session ids remembered after they end: a replayed request does not restart one.
const REMEMBER: usize = 64;

/// Checks a request: signed with the hub's key, for this node, issued recently.
pub fn verify(payload: &[u8], key: Option<&[u8]>, me: &NodeId, now_ms: u64) -> Result<LogsRequest, Refusal> {
    let key = key.ok_or(Refusal::NoKey)?;
    let signed: SignedRequest = msg::decode(payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let req: LogsRequest = open(&signed.body, &signed.sig, key)?;
    if &req.node != me {
        return Err(Refusal::OtherNode(req.node.to_string()));
    }
    if !rabble_shared::logs::valid_session(&req.session) {
        return Err(Refusal::Malformed(format!("session {:?}", req.session)));
    }
    if req.issued_ms.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(Refusal::Stale { issued_ms: req.issued_ms, now_ms });
    }
    Ok(req)
}

/// The node's log sessions: each one's lease deadline (dropping the sender ends it).
#[derive(Default)]
pub struct Sessions {
    live: HashMap<String, watch::Sender<Instant>>,
    ended: VecDeque<String>,
}

impl Sessions {
    /// Starts, renews or cancels the request's session.
    pub fn handle(&mut self, req: LogsRequest, source: Result<Source, String>, client: &AsyncClient, node: &NodeId) {
        self.live.retain(|id, tx| {
            let gone = tx.is_closed();
            if gone {
                self.ended.push_back(id.clone());
            }
            !gone
        });
        while self.ended.len() > REMEMBER {
            self.ended.pop_front();
        }
        let lease = Instant::now() + Duration::from_millis(LEASE_MS);
        if req.cancel {
            if self.live.remove(&req.session).is_some() {
                self.ended.push_back(req.session);
            }
            return;
        }
        if let Some(tx) = self.live.get(&req.session) {
            tx.send_replace(lease);
            return;
        }
        if self.ended.contains(&req.session) {
            return; // a repeat of a session that is over
        }
        let mut out = Publisher::new(client.clone(), node, &req.session);
        let source = match source {
            Ok(_) if self.live.len() >= MAX_SESSIONS => {
                Err(format!("this node serves at most {MAX_SESSIONS} log sessions at once; try again shortly"))
            }
            s => s,
        };
        match source {
            Err(e) => {
                self.ended.push_back(req.session);
                tokio::spawn(async move { out.finish(Some(e)).await });
            }
            Ok(src) => {
                let (tx, rx) = watch::channel(lease);
                self.live.insert(req.session.clone(), tx);
                tracing::debug!(session = %req.session, alloc = %req.alloc, task = %req.task, "log session");
                tokio::spawn(async move {
                    let end = stream(src, &req, &mut out, rx).await;
                    out.finish(end.err()).await;
                });
            }
        }
    }
}

/// Sends output on a session's topic, cut into chunks on character boundaries.
struct Publisher {
    client: AsyncClient,
    topic: String,
    session: String,
    seq: u64,
    carry: Vec<u8>,
}

impl Publisher {
    fn new(client: AsyncClient, node: &NodeId, session: &str) -> Publisher {
        Publisher { client, topic: topic::logs(node, session), session: session.to_owned(), seq: 0, carry: Vec::new() }
    }

    async fn publish(&mut self, data: String, skipped: u64, eof: bool, error: Option<String>) -> Result<(), String> {
        let chunk = LogChunk { session: self.session.clone(), seq: self.seq, data, skipped, eof, error };
        self.seq += 1;
        self.client
            .publish(self.topic.clone(), QoS::AtMostOnce, false, msg::encode(&chunk))
            .await
            .map_err(|e| format!("cannot publish: {e}"))
    }

    async fn send(&mut self, bytes: &[u8], mut skipped: u64) -> Result<(), String> {
        self.carry.extend_from_slice(bytes);
        while !self.carry.is_empty() || skipped > 0 {
            let n = self.carry.len().min(MAX_CHUNK - 4);
            let (text, used) = take_text(&self.carry[..n]);
            if used == 0 && skipped == 0 {
                break; // only the start of a character: wait for the rest
            }
            self.carry.drain(..used);
            self.publish(text, skipped, false, None).await?;
            skipped = 0;
        }
        Ok(())
    }

    async fn finish(&mut self, error: Option<String>) {
        let rest = String::from_utf8_lossy(&std::mem::take(&mut self.carry)).into_owned();
        let _ = self.publish(rest, 0, true, error).await;
    }
}

/// What is there already, cut to the request's `lines` / `bytes`.
fn initial<'a>(req: &LogsRequest, mut text: &'a [u8]) -> &'a [u8] {
    if let Some(n) = req.lines {
        text = last_lines(text, n);
    }
    if let Some(n) = req.bytes {
        text = &text[text.len().saturating_sub(n as usize)..];
    }
    text
}

/// Streams until the output ends (one-shot) or the lease ends or is cancelled (follow).
async fn stream(
    src: Source,
    req: &LogsRequest,
    out: &mut Publisher,
    mut lease: watch::Receiver<Instant>,
) -> Result<(), String> {
    match src {
        Source::Ended(tail) => {
            let now = {
                let t = tail.lock().map_err(|_| "output buffer poisoned")?;
                let all: Vec<u8> = t.bytes.iter().copied().collect();
                initial(req, &all).to_vec()
            };
            out.send(&now, 0).await
        }
        Source::Tail(tail) => {
            let (now, mut offset) = {
                let t = tail.lock().map_err(|_| "output buffer poisoned")?;
                let all: Vec<u8> = t.bytes.iter().copied().collect();
                (initial(req, &all).to_vec(), t.total)
            };
            out.send(&now, 0).await?;
            if !req.follow {
                return Ok(());
            }
            let mut poll = tokio::time::interval(POLL);
            loop {
                let until = *lease.borrow();
                tokio::select! {
                    r = lease.changed() => if r.is_err() { return Ok(()) },
                    _ = tokio::time::sleep_until(until) => return Err("the reader went away".into()),
                    _ = poll.tick() => {
                        let (new, skipped, at) = tail.lock().map_err(|_| "output buffer poisoned")?.since(offset);
                        offset = at;
                        if !new.is_empty() || skipped > 0 {
                            out.send(&new, skipped).await?;
                        }
                    }
                }
            }
        }
        #[cfg(feature = "docker")]
        Source::Docker { docker, container } => docker_log(&docker, &container, req, out, lease).await,
    }
}

#[cfg(feature = "docker")]
async fn docker_log(
    docker: &bollard::Docker,
    container: &str,
    req: &LogsRequest,
    out: &mut Publisher,
    mut lease: watch::Receiver<Instant>,
) -> Result<(), String> {
    use futures_util::StreamExt;
    use rabble_shared::logs::LogStream;
    let opts = bollard::query_parameters::LogsOptions {
        follow: req.follow,
        stdout: req.stream == LogStream::Stdout,
        stderr: req.stream == LogStream::Stderr,
        tail: req.lines.map_or_else(|| "all".to_owned(), |n| n.to_string()),
        ..Default::default()
    };
    let mut logs = docker.logs(container, Some(opts));
    if !req.follow {
        // The last bytes only, then cut as asked.
        let (mut kept, mut skipped) = (VecDeque::new(), 0u64);
        while let Some(item) = logs.next().await {
            kept.extend(item.map_err(|e| format!("Docker engine: {e}"))?.as_ref());
            let extra = kept.len().saturating_sub(ONE_SHOT_MAX);
            kept.drain(..extra);
            skipped += extra as u64;
        }
        let all: Vec<u8> = kept.into_iter().collect();
        return out.send(initial(req, &all), skipped).await;
    }
    let mut buf = Vec::new();
    let mut flush = tokio::time::interval(POLL);
    loop {
        let until = *lease.borrow();
        tokio::select! {
            r = lease.changed() => if r.is_err() { return Ok(()) },
            _ = tokio::time::sleep_until(until) => return Err("the reader went away".into()),
            item = logs.next() => match item {
                Some(Ok(o)) => {
                    buf.extend_from_slice(o.as_ref());
                    if buf.len() >= MAX_CHUNK {
                        out.send(&std::mem::take(&mut buf), 0).await?;
                    }
                }
                Some(Err(e)) => return Err(format!("Docker engine: {e}")),
                None => return out.send(&buf, 0).await,
            },
            _ = flush.tick() => if !buf.is_empty() {
                out.send(&std::mem::take(&mut buf), 0).await?;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn request(k: &Ed25519KeyPair, node: &str, issued_ms: u64) -> Vec<u8> {
        let req = LogsRequest {
            node: NodeId::new(node).unwrap(),
            session: "ab12".into(),
            alloc: rabble_shared::AllocId::new("00ff").unwrap(),
            task: "web".into(),
            stream: Default::default(),
            follow: false,
            lines: None,
            bytes: None,
            issued_ms,
            cancel: false,
        };
        let body = serde_json::to_string(&req).unwrap();
        let sig = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, k.sign(body.as_bytes()).as_ref());
        msg::encode(&SignedRequest { body, sig })
    }

    #[test]
    fn only_recent_requests_signed_by_the_hub_for_this_node() {
        let pair = |_| {
            let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
            Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
        };
        let (hub, other) = (pair(0), pair(1));
        let key = hub.public_key().as_ref().to_vec();
        let me = NodeId::new("pi").unwrap();
        let now = 10_000_000;
        assert_eq!(verify(&request(&hub, "pi", now), Some(&key), &me, now).unwrap().task, "web");
        assert_eq!(verify(&request(&other, "pi", now), Some(&key), &me, now), Err(Refusal::BadSignature));
        assert_eq!(verify(&request(&hub, "pi2", now), Some(&key), &me, now), Err(Refusal::OtherNode("pi2".into())));
        let old = now - MAX_SKEW_MS - 1;
        assert_eq!(
            verify(&request(&hub, "pi", old), Some(&key), &me, now),
            Err(Refusal::Stale { issued_ms: old, now_ms: now })
        );
        assert_eq!(verify(&request(&hub, "pi", now), None, &me, now), Err(Refusal::NoKey));
    }

    #[test]
    fn follow_offsets_report_what_was_dropped() {
        let mut t = crate::allocs::process::Tail::default();
        t.push(b"hello ");
        let (_, _, at) = t.since(0);
        t.push(&vec![b'x'; crate::allocs::process::TAIL_BYTES + 10]);
        let (new, skipped, at2) = t.since(at);
        assert_eq!((new.len(), skipped), (crate::allocs::process::TAIL_BYTES, 10));
        assert_eq!(t.since(at2).0.len(), 0);
    }
}
