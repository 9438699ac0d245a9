//! `GET /api/v1/allocations/{id}/logs?task=&type=stdout|stderr&follow=true&lines=N&bytes=N`:
//! one task's output, fetched from its node over MQTT (`crate::alloc_logs`) and streamed
//! as plain text. Errors before the first byte are JSON with a status; a gap or an
//! error later is a `rabble:` line in the text.

use super::AppState;
use super::error::{bad_request, error, not_found};
use crate::catalog::Catalog;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use rabble_shared::NodeId;
use rabble_shared::alloc::Allocation;
use rabble_shared::api::NodeStatus;
use rabble_shared::logs::{LogChunk, LogStream, LogsRequest};
use std::time::Duration;

/// How long the node has to start answering.
const FIRST_CHUNK: Duration = Duration::from_secs(5);

#[derive(Debug, serde::Deserialize)]
pub struct LogsQuery {
    task: Option<String>,
    #[serde(rename = "type")]
    stream: Option<String>,
    #[serde(default)]
    follow: bool,
    lines: Option<u32>,
    bytes: Option<u32>,
}

/// The allocation's task names.
pub(crate) fn tasks(c: &Catalog, a: &Allocation) -> Vec<String> {
    let spec =
        c.work.history.get(&(a.job_id.clone(), a.job_version)).or_else(|| c.work.jobs.get(&a.job_id).map(|j| &j.spec));
    spec.and_then(|s| s.groups.iter().find(|g| g.name == a.group))
        .map(|g| g.tasks.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default()
}

/// What to ask the node for, or the response that says why not.
fn request(c: &Catalog, id: &str, q: LogsQuery) -> Result<LogsRequest, Box<Response>> {
    let a = super::jobs::find_alloc(c, id).map_err(|e| Box::new(not_found(&e)))?;
    let names = tasks(c, a);
    let task = match (q.task, names.as_slice()) {
        (Some(t), _) if names.contains(&t) => t,
        (Some(t), _) => {
            let msg = format!("allocation {} has no task {t:?} (its tasks: {})", a.id, names.join(", "));
            return Err(Box::new(not_found(&msg)));
        }
        (None, [one]) => one.clone(),
        (None, _) => {
            let msg =
                format!("allocation {} has several tasks; name one with task= (-task): {}", a.id, names.join(", "));
            return Err(Box::new(bad_request(&msg)));
        }
    };
    let stream = match q.stream.as_deref() {
        None | Some("stdout") => LogStream::Stdout,
        Some("stderr") => LogStream::Stderr,
        Some(other) => return Err(Box::new(bad_request(&format!("type={other:?}: stdout or stderr")))),
    };
    match c.nodes.get(&a.node).map(|n| n.status) {
        Some(NodeStatus::Up) => {}
        _ => {
            let msg = format!("node {} (allocation {}) is not up: its output cannot be read now", a.node, a.id);
            return Err(Box::new(error(StatusCode::SERVICE_UNAVAILABLE, &msg)));
        }
    }
    Ok(LogsRequest {
        node: a.node.clone(),
        session: String::new(),
        alloc: a.id.clone(),
        task,
        stream,
        follow: q.follow,
        lines: q.lines,
        bytes: q.bytes,
        issued_ms: 0,
        cancel: false,
    })
}

/// Where the chunks come from: a session with the node (on the leader), or the leader.
enum Opened {
    Here(crate::alloc_logs::Session),
    Leader(tokio::sync::mpsc::Receiver<LogChunk>),
}

impl Opened {
    async fn recv(&mut self) -> Option<LogChunk> {
        match self {
            Opened::Here(s) => s.rx.recv().await,
            Opened::Leader(rx) => rx.recv().await,
        }
    }
}

/// A chunk as text for the reader: gaps and errors said in a `rabble:` line.
fn text(chunk: &LogChunk, expected_seq: u64) -> String {
    let mut out = String::new();
    if chunk.seq > expected_seq {
        out.push_str(&format!("\nrabble: {} chunk(s) of output lost on the way\n", chunk.seq - expected_seq));
    }
    if chunk.skipped > 0 {
        out.push_str(&format!("\nrabble: {} bytes skipped (the node keeps the last few kB)\n", chunk.skipped));
    }
    out.push_str(&chunk.data);
    if let Some(e) = &chunk.error {
        out.push_str(&format!("\nrabble: {e}\n"));
    }
    out
}

pub async fn logs(State(s): State<AppState>, Path(id): Path<String>, Query(q): Query<LogsQuery>) -> Response {
    let req = match request(&s.catalog(), &id, q) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let node: NodeId = req.node.clone();
    let opened = match &s.cluster {
        // Only the leader talks to nodes: a follower asks through it.
        Some(c) if !c.gate().leading() => crate::cluster::logs::forward(c, &req).await.map(Opened::Leader),
        _ => s.logs.open(req).await.map(Opened::Here),
    };
    let mut session = match opened {
        Ok(session) => session,
        Err(e) => return error(StatusCode::BAD_GATEWAY, &e),
    };
    let first = match tokio::time::timeout(FIRST_CHUNK, session.recv()).await {
        Ok(Some(c)) => c,
        _ => {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                format!("node {node} did not answer within {FIRST_CHUNK:?} (is its agent older than the hub?)"),
            );
        }
    };
    if first.seq == 0
        && first.eof
        && first.data.is_empty()
        && let Some(e) = &first.error
    {
        return error(StatusCode::NOT_FOUND, format!("node {node}: {e}"));
    }
    let stop = s.stop.clone();
    let stream = futures_util::stream::unfold(
        (Some(first), session, 0u64, false),
        move |(pending, mut session, seq, done)| async move {
            if done {
                return None;
            }
            let chunk = match pending {
                Some(c) => c,
                None => session.recv().await?,
            };
            let out = text(&chunk, seq);
            Some((Ok::<_, std::convert::Infallible>(out), (None, session, chunk.seq + 1, chunk.eof)))
        },
    );
    let stream = futures_util::StreamExt::take_until(stream, stop.cancelled_owned());
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(stream)).into_response()
}
