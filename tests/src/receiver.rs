//! A receiver of alerts for the tests: a loopback HTTP server that answers 200 and keeps
//! every request (path, headers, body, when), as ntfy, Gotify, a webhook or an
//! Alertmanager would get it — none of those servers installs here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Got {
    pub at: Instant,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A loopback HTTP server that answers 200 and keeps every request.
pub fn receiver() -> (String, Arc<Mutex<Vec<Got>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap_or(0);
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) <= 2 {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
            }
            let len: usize =
                headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap_or(());
            keep.lock().unwrap().push(Got {
                at: Instant::now(),
                path,
                headers,
                body: String::from_utf8_lossy(&body).into(),
            });
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (base, got)
}

pub fn header<'g>(g: &'g Got, name: &str) -> Option<&'g str> {
    g.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
