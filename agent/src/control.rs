//! The local control socket: `rabble-agent check pass <id>` and `rabble-agent reload`
//! talk to the running agent through it. One JSON line in, one JSON line out. A Unix
//! socket (owner-only) on Unix; on Windows a named pipe, `\\.\pipe\<the path's file name>`.

use rabble_shared::control::{Reply, Request};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// Requests longer than this are refused.
const MAX_LINE: usize = 4096;

/// A request waiting for the engine's answer.
pub type Command = (Request, oneshot::Sender<Reply>);

#[cfg(unix)]
pub type Listener = tokio::net::UnixListener;

/// Windows: the pipe's name, and its next instance waiting for a client.
#[cfg(windows)]
pub struct Listener {
    name: String,
    next: tokio::net::windows::named_pipe::NamedPipeServer,
}

/// The named pipe a socket path stands for on Windows.
#[cfg(windows)]
pub fn pipe_name(path: &Path) -> String {
    let file = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_else(|| "rabble-agent".into());
    format!(r"\\.\pipe\{file}")
}

/// Binds the socket (replacing a stale one) with owner-only permissions.
#[cfg(unix)]
pub fn bind(path: &Path) -> std::io::Result<Listener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let l = Listener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(l)
}

/// Creates the pipe (its first instance; refused if another agent holds the name).
#[cfg(windows)]
pub fn bind(path: &Path) -> std::io::Result<Listener> {
    let name = pipe_name(path);
    let next = tokio::net::windows::named_pipe::ServerOptions::new().first_pipe_instance(true).create(&name)?;
    Ok(Listener { name, next })
}

/// Serves connections until the engine goes away. Each connection gets 5 s.
pub async fn serve(mut listener: Listener, tx: mpsc::Sender<Command>) {
    loop {
        let Some(stream) = accept(&mut listener).await else { continue };
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(5), handle(stream, tx)).await;
        });
    }
}

#[cfg(unix)]
async fn accept(l: &mut Listener) -> Option<tokio::net::UnixStream> {
    l.accept().await.ok().map(|(s, _)| s)
}

#[cfg(windows)]
async fn accept(l: &mut Listener) -> Option<tokio::net::windows::named_pipe::NamedPipeServer> {
    use tokio::net::windows::named_pipe::ServerOptions;
    if l.next.connect().await.is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
        return None;
    }
    // The connected instance serves this client; a new one waits for the next.
    let next = ServerOptions::new().create(&l.name).ok()?;
    Some(std::mem::replace(&mut l.next, next))
}

async fn handle(stream: impl AsyncRead + AsyncWrite, tx: mpsc::Sender<Command>) {
    let (r, mut w) = tokio::io::split(stream);
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
    let _ = w.flush().await;
}

/// Client side, for the CLI: sends one request and waits for the reply.
pub fn send(path: &Path, req: &Request) -> Result<Reply, String> {
    let unreachable = |e: std::io::Error| {
        format!("cannot reach the agent at {}: {e} (is rabble-agent running? see --socket)", path.display())
    };
    #[cfg(unix)]
    let mut s = {
        let s = std::os::unix::net::UnixStream::connect(path).map_err(unreachable)?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        s
    };
    #[cfg(windows)]
    let mut s = std::fs::OpenOptions::new().read(true).write(true).open(pipe_name(path)).map_err(unreachable)?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| format!("write: {e}"))?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply).map_err(|e| format!("read: {e}"))?;
    serde_json::from_str(reply.trim()).map_err(|e| format!("bad reply {reply:?}: {e}"))
}
