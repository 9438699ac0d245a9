//! Script (`args`) checks: exit 0 passing, 1 warning, anything else critical.

use super::Outcome;
use rabble_shared::Status;
use rabble_shared::msg::MAX_CHECK_OUTPUT;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

pub async fn check(args: &[String], timeout: Duration) -> Outcome {
    let mut child = match Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::new(Status::Critical, format!("cannot run {:?}: {e}", args[0])),
    };
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return Outcome::new(Status::Critical, "cannot capture the script's output");
    };
    let run = async {
        let (out, err, status) = tokio::join!(capped(out), capped(err), child.wait());
        (out, err, status)
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => {
            // kill_on_drop reaps it; say so plainly.
            Outcome::new(Status::Critical, format!("Timed out ({timeout:?}) running check"))
        }
        Ok((_, _, Err(e))) => Outcome::new(Status::Critical, format!("waiting for {:?}: {e}", args[0])),
        Ok((mut out, err, Ok(status))) => {
            out.extend_from_slice(&err);
            let output = String::from_utf8_lossy(&out).into_owned();
            let st = match status.code() {
                Some(0) => Status::Passing,
                Some(1) => Status::Warning,
                _ => Status::Critical,
            };
            Outcome::new(st, output)
        }
    }
}

/// Reads a stream to its end, keeping only the first [`MAX_CHECK_OUTPUT`] bytes (the
/// rest is drained so the child never blocks on a full pipe).
async fn capped(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_CHECK_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}
