//! Check runners against real local servers and real processes.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-response-per-connection HTTP server answering `status` with `body`.
async fn http_server(status: &'static str, body: &'static str) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let resp = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    format!("http://{addr}/health")
}

fn http(url: String) -> Probe {
    Probe::Http { url, method: "GET".into(), headers: vec![], body: String::new(), tls_skip_verify: false }
}

#[tokio::test]
async fn http_status_mapping_follows_consul() {
    let t = Duration::from_secs(2);
    for (status, want) in [
        ("200 OK", Status::Passing),
        ("204 No Content", Status::Passing),
        ("429 Too Many Requests", Status::Warning),
        ("503 Service Unavailable", Status::Critical),
        ("301 Moved", Status::Critical),
    ] {
        let o = run_once(&http(http_server(status, "hello").await), t, false).await;
        assert_eq!(o.status, want, "{status}: {}", o.output);
    }
    let o = run_once(&http(http_server("200 OK", "all good").await), t, false).await;
    assert!(o.output.contains("200 OK Output: all good"), "{}", o.output);
}

#[tokio::test]
async fn http_refused_and_garbage_are_critical() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let o = run_once(&http(format!("http://{addr}/")), Duration::from_secs(2), false).await;
    assert_eq!(o.status, Status::Critical);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(b"SSH-2.0-OpenSSH\r\n\r\n").await.unwrap();
    });
    let o = run_once(&http(format!("http://{addr}/")), Duration::from_secs(2), false).await;
    assert_eq!(o.status, Status::Critical);
    assert!(o.output.contains("not an HTTP response"), "{}", o.output);
}

#[tokio::test]
async fn http_timeout_is_critical() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (_s, _) = l.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let o = run_once(&http(format!("http://{addr}/")), Duration::from_millis(200), false).await;
    assert_eq!(o.status, Status::Critical);
    assert!(o.output.contains("timed out"), "{}", o.output);
}

#[tokio::test]
async fn tcp_check() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let p = Probe::Tcp { addr: addr.clone() };
    assert_eq!(run_once(&p, Duration::from_secs(1), false).await.status, Status::Passing);
    drop(l);
    assert_eq!(run_once(&p, Duration::from_secs(1), false).await.status, Status::Critical);
}

#[tokio::test]
async fn script_exit_codes_output_cap_and_timeout() {
    let sh = |s: &str| Probe::Script { args: vec!["/bin/sh".into(), "-c".into(), s.into()] };
    let t = Duration::from_secs(5);
    assert_eq!(run_once(&sh("echo ok"), t, true).await, Outcome::new(Status::Passing, "ok\n"));
    assert_eq!(run_once(&sh("exit 1"), t, true).await.status, Status::Warning);
    assert_eq!(run_once(&sh("echo bad >&2; exit 2"), t, true).await, Outcome::new(Status::Critical, "bad\n"));
    let big = run_once(&sh("head -c 100000 /dev/zero | tr '\\0' x"), t, true).await;
    assert_eq!((big.status, big.output.len()), (Status::Passing, MAX_CHECK_OUTPUT));
    let slow = run_once(&sh("sleep 10"), Duration::from_millis(200), true).await;
    assert_eq!(slow.status, Status::Critical);
    assert!(slow.output.contains("Timed out"), "{}", slow.output);
    let missing = run_once(&Probe::Script { args: vec!["/nonexistent/x".into()] }, t, true).await;
    assert_eq!(missing.status, Status::Critical);
}

#[tokio::test]
async fn scripts_refused_unless_enabled() {
    let p = Probe::Script { args: vec!["/bin/true".into()] };
    let o = run_once(&p, Duration::from_secs(1), false).await;
    assert_eq!(o.status, Status::Critical);
    assert!(o.output.contains("--enable-script-checks"));
}
