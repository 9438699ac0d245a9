//! `rabble alloc logs` asked of a follower: only the leader talks to nodes, so the follower
//! passes the request to it over the cluster's mutual TLS and reads the chunks back as
//! they come (one JSON chunk per line); the reader going away closes the connection, and
//! with it the leader's session.

use super::{Cluster, server::Ctx};
use crate::alloc_logs::LogHub;
use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use rabble_shared::logs::{LogChunk, LogsRequest};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

/// The leader's log sessions, set once the hub has made them (after the cluster formed).
pub type Slot = Arc<OnceLock<Arc<LogHub>>>;

/// Chunks queued between the leader's stream and the reader.
const QUEUE: usize = 64;
/// The longest line (one chunk) taken from the leader.
const MAX_LINE: usize = 1024 * 1024;
/// How long the leader has to answer the request (the node's own wait comes after).
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// On a follower: the allocation's output through the leader, as a session's chunks.
pub async fn forward(c: &Cluster, req: &LogsRequest) -> Result<mpsc::Receiver<LogChunk>, String> {
    let Some((id, leader)) = c.leader().filter(|(id, _)| *id != c.id) else {
        return Err("no leader to ask the node through (the hub cluster is electing one)".into());
    };
    let client = c.peers.client(Some(id), &leader.addr);
    let mut streamed =
        client.stream("/cluster/logs", req, OPEN_WAIT).await.map_err(|e| format!("through the leader: {e}"))?;
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(async move {
        let mut buf: Vec<u8> = Vec::new();
        let mut next = 0u64;
        loop {
            let frame = tokio::select! {
                () = tx.closed() => return,
                f = streamed.body.frame() => f,
            };
            let data = match frame {
                Some(Ok(f)) => match f.into_data() {
                    Ok(d) => d,
                    Err(_) => continue,
                },
                Some(Err(e)) => {
                    let _ = tx.send(ended(next, format!("the leader's stream broke: {e}"))).await;
                    return;
                }
                None => {
                    let _ = tx.send(ended(next, "the leader ended the stream early".into())).await;
                    return;
                }
            };
            buf.extend_from_slice(&data);
            while let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=at).collect();
                match serde_json::from_slice::<LogChunk>(&line) {
                    Ok(chunk) => {
                        let eof = chunk.eof;
                        next = chunk.seq + 1;
                        if tx.send(chunk).await.is_err() || eof {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ =
                            tx.send(ended(next, format!("the leader sent a chunk this hub cannot read: {e}"))).await;
                        return;
                    }
                }
            }
            if buf.len() > MAX_LINE {
                let _ = tx.send(ended(next, "the leader sent a chunk over 1 MB".into())).await;
                return;
            }
        }
    });
    Ok(rx)
}

/// A last chunk (number `seq`) that says why the output stopped.
fn ended(seq: u64, why: String) -> LogChunk {
    LogChunk { session: String::new(), seq, data: String::new(), skipped: 0, eof: true, error: Some(why) }
}

/// `POST /cluster/logs` on the leader: opens the session with the node and streams its
/// chunks, one JSON line each, until the last or until the follower hangs up.
pub(super) async fn serve(State(ctx): State<Ctx>, axum::Json(req): axum::Json<LogsRequest>) -> Response {
    if !ctx.cluster.gate().leading() {
        return (StatusCode::CONFLICT, "not the leader").into_response();
    }
    let Some(logs) = ctx.cluster.logs.get().cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "the leader is starting").into_response();
    };
    let session = match logs.open(req).await {
        Ok(s) => s,
        Err(e) => return (StatusCode::BAD_GATEWAY, e).into_response(),
    };
    let stream = futures_util::stream::unfold((session, false), |(mut session, done)| async move {
        if done {
            return None;
        }
        let chunk = session.rx.recv().await?;
        let mut line = serde_json::to_vec(&chunk).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, std::convert::Infallible>(line), (session, chunk.eof)))
    });
    ([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream)).into_response()
}
