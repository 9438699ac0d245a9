//! The local control socket: `rabble-agent check pass <id>` and `rabble-agent reload`
//! talk to the running agent through it. One JSON line in, one JSON line out.

use rabble_shared::control::{Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// Requests longer than this are refused.
const MAX_LINE: usize = 4096;

/// A request waiting for the engine's answer.
pub type Command = (Request, oneshot::Sender<Reply>);

/// Binds the socket (replacing a stale one) with owner-only permissions.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Serves connections until the engine goes away. Each connection gets 5 s.
pub async fn serve(listener: UnixListener, tx: mpsc::Sender<Command>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle(stream, tx)).await;
        });
    }
}

async fn handle(stream: tokio::net::UnixStream, tx: mpsc::Sender<Command>) {
    let (r, mut w) = stream.into_split();
    let mut line = String::new();
    let mut r = tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(r, MAX_LINE as u64));
    let reply = match r.read_line(&mut line).await {
        Err(e) => Reply::err(format!("read: {e}")),
        Ok(_) => match serde_json::from_str::<Request>(line.trim()) {
            Err(e) => Reply::err(format!("bad request: {e}")),
            Ok(req) => {
                let (rtx, rrx) = oneshot::channel();
                if tx.send((req, rtx)).await.is_err() {
                    Reply::err("the agent is shutting down")
                } else {
                    rrx.await.unwrap_or_else(|_| Reply::err("the agent dropped the request"))
                }
            }
        },
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    let _ = w.write_all(&out).await;
}

/// Client side, for the CLI: sends one request and waits for the reply.
pub fn send(path: &Path, req: &Request) -> Result<Reply, String> {
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!("cannot reach the agent at {}: {e} (is rabble-agent running? see --socket)", path.display())
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| format!("write: {e}"))?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).map_err(|e| format!("read: {e}"))?;
    serde_json::from_str(reply.trim()).map_err(|e| format!("bad reply {reply:?}: {e}"))
}
