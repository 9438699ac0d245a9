//! HTTP checks: a minimal HTTP/1.1 client (one request, `Connection: close`), enough
//! to read a status code and the first 4 KB of a body without a general HTTP stack in
//! the agent. 2xx is passing, 429 warning, anything else critical (Consul's rule).

use super::Outcome;
use rabble_shared::Status;
use rabble_shared::msg::MAX_CHECK_OUTPUT;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Headers larger than this are refused (a health endpoint has no business sending more).
const MAX_HEAD: usize = 16 * 1024;

/// A parsed `http://` or `https://` URL.
#[derive(Debug, PartialEq)]
pub(crate) struct Url<'a> {
    pub tls: bool,
    pub host: &'a str,
    pub port: u16,
    /// Host header value (host, or host:port when the port is not the default).
    pub authority: &'a str,
    pub path: &'a str,
}

pub(crate) fn parse_url(url: &str) -> Result<Url<'_>, String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(format!("{url:?} is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (host, port) = rabble_shared::support::mqtt::split_host_port(authority).map_err(|e| format!("{url:?}: {e}"))?;
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port in {url:?}"))?,
        None if tls => 443,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok(Url { tls, host, port, authority, path })
}

pub async fn check(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &str,
    tls_skip_verify: bool,
    timeout: Duration,
) -> Outcome {
    let what = format!("HTTP {method} {url}");
    match tokio::time::timeout(timeout, request(url, method, headers, body, tls_skip_verify)).await {
        Err(_) => Outcome::new(Status::Critical, format!("{what}: timed out after {timeout:?}")),
        Ok(Err(e)) => Outcome::new(Status::Critical, format!("{what}: {e}")),
        Ok(Ok((code, reason, body))) => {
            let status = match code {
                200..=299 => Status::Passing,
                429 => Status::Warning,
                _ => Status::Critical,
            };
            Outcome::new(status, format!("{what}: {code} {reason} Output: {body}"))
        }
    }
}

async fn request(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &str,
    tls_skip_verify: bool,
) -> Result<(u16, String, String), String> {
    let u = parse_url(url)?;
    let tcp = TcpStream::connect((u.host, u.port)).await.map_err(|e| format!("connect {}:{}: {e}", u.host, u.port))?;
    let mut head = format!("{method} {} HTTP/1.1\r\nHost: {}\r\n", u.path, u.authority);
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("user-agent") {
        head.push_str(concat!("User-Agent: rabble-agent/", env!("CARGO_PKG_VERSION"), "\r\n"));
    }
    if !has("accept") {
        head.push_str("Accept: text/plain, text/*, */*\r\n");
    }
    for (k, v) in headers {
        if k.contains(['\r', '\n']) || v.contains(['\r', '\n']) {
            return Err(format!("header {k:?} contains a line break"));
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    head.push_str(body);
    if u.tls {
        let stream = crate::tls::connect_for_check(tcp, u.host, tls_skip_verify).await?;
        exchange(stream, head.as_bytes()).await
    } else {
        exchange(tcp, head.as_bytes()).await
    }
}

async fn exchange(mut s: impl AsyncRead + AsyncWrite + Unpin, req: &[u8]) -> Result<(u16, String, String), String> {
    s.write_all(req).await.map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(format!("response headers exceed {MAX_HEAD} bytes"));
        }
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before a complete response".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if !version.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: {:?}", &status_line[..status_line.len().min(64)]));
    }
    let code: u16 = code.parse().map_err(|_| format!("bad status line {status_line:?}"))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut body = buf[head_end..].to_vec();
    while body.len() < MAX_CHECK_OUTPUT {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    body.truncate(MAX_CHECK_OUTPUT);
    Ok((code, reason, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_url("https://localhost:8006").unwrap();
        assert_eq!((u.tls, u.host, u.port, u.path, u.authority), (true, "localhost", 8006, "/", "localhost:8006"));
        let u = parse_url("http://[::1]:81/health?x=1").unwrap();
        assert_eq!((u.host, u.port, u.path), ("::1", 81, "/health?x=1"));
        assert_eq!(parse_url("http://a").unwrap().port, 80);
        assert_eq!(parse_url("https://a/").unwrap().port, 443);
        assert!(parse_url("ftp://a").is_err());
        assert!(parse_url("http://a:notaport/").is_err());
        assert!(parse_url("http:///x").is_err());
    }
}
