//! A tiny HTTP server for workload tests: listens on `$NOMAD_PORT_http` (or the first
//! argument), answers every request `200 <name>` where name is `$NOMAD_ALLOC_NAME`,
//! then ` $GREETING` when set, `/health` with `ok` — or 500 while the file named by
//! `$FAIL_FILE` exists — and `/file/<path>` with that file's contents (what a template
//! wrote into the task's directory).
//! Static and std-only, so it runs as a raw_exec command and in a `FROM scratch` image.

#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() {
    let port =
        std::env::args().nth(1).or_else(|| std::env::var("NOMAD_PORT_http").ok()).unwrap_or_else(|| "8080".into());
    let name = std::env::var("NOMAD_ALLOC_NAME").unwrap_or_else(|_| "tiny-http".into());
    let name = match std::env::var("GREETING") {
        Ok(g) => format!("{name} {g}"),
        Err(_) => name,
    };
    let fail_file = std::env::var("FAIL_FILE").ok();
    let listener = TcpListener::bind(format!("0.0.0.0:{port}")).unwrap_or_else(|e| {
        eprintln!("tiny-http: cannot listen on port {port}: {e}");
        std::process::exit(1);
    });
    eprintln!("tiny-http: {name} listening on {port}");
    for conn in listener.incoming() {
        let Ok(mut s) = conn else { continue };
        let mut buf = [0u8; 2048];
        let n = s.read(&mut buf).unwrap_or(0);
        let req = String::from_utf8_lossy(&buf[..n]);
        let path = req.split_whitespace().nth(1).unwrap_or("/");
        let failing = fail_file.as_ref().is_some_and(|f| std::path::Path::new(f).exists());
        let (code, body) = match (path, failing) {
            ("/health", true) => ("500 Internal Server Error", "failing\n".to_owned()),
            ("/health", false) => ("200 OK", "ok\n".to_owned()),
            (p, _) if p.starts_with("/file/") => match std::fs::read_to_string(&p[5..]) {
                Ok(text) => ("200 OK", text),
                Err(e) => ("404 Not Found", format!("{e}\n")),
            },
            _ => ("200 OK", format!("{name}\n")),
        };
        let resp = format!("HTTP/1.1 {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        let _ = s.write_all(resp.as_bytes());
    }
}
