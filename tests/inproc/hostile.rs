//! Hostile clients at the API's door — slowloris, connection floods of blocking queries,
//! huge bodies — from other loopback addresses, while an ordinary client on 127.0.0.1
//! keeps being answered quickly. Prints the ordinary client's slowest answer.

use rabble_shared::api::ApiError;
use rabble_tests::inproc::InProcHub;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

async fn connect_from(src: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((src, 0)))?;
    s.connect(to).await
}

/// What the server says first on `s`, within `within` (empty: closed or nothing).
async fn first_words(s: &mut TcpStream, within: Duration) -> String {
    let mut buf = vec![0u8; 512];
    match tokio::time::timeout(within, s.read(&mut buf)).await {
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        _ => String::new(),
    }
}

/// The ordinary client's slowest of `n` health checks.
async fn slowest(hub: &InProcHub, n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..n {
        let t0 = tokio::time::Instant::now();
        let a = hub.must("GET", "/api/v1/health", None, "").await;
        assert_eq!(a.status, 200, "{a:?}");
        worst = worst.max(t0.elapsed());
    }
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_neither_stall_nor_starve_the_api() {
    let hub = InProcHub::start().await;
    let index = hub.get::<rabble_shared::api::HubHealth>("/api/v1/health").await.index;

    // Slowloris from 127.0.0.2: heads that never end. 128 are let in, the rest refused.
    let mut slow = Vec::new();
    let mut refused = 0;
    for _ in 0..160 {
        let mut s = connect_from([127, 0, 0, 2], hub.http).await.unwrap();
        s.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: hub\r\nX-Slow: ").await.unwrap();
        slow.push(s);
    }
    for s in &mut slow {
        let said = first_words(s, Duration::from_millis(20)).await;
        if said.starts_with("HTTP/1.1 429") {
            refused += 1;
            let body = said.split("\r\n\r\n").nth(1).unwrap_or_default();
            assert!(serde_json::from_str::<ApiError>(body).is_ok(), "{said}");
        }
    }
    assert_eq!(refused, 160 - 128, "connections over the per-client cap are refused");

    // A flood of blocking queries from 127.0.0.3: one per connection, capped the same way.
    let mut waiting = Vec::new();
    for _ in 0..300 {
        let Ok(mut s) = connect_from([127, 0, 0, 3], hub.http).await else { continue };
        let q = format!("GET /v1/kv/x?index={index}&wait=60s HTTP/1.1\r\nHost: hub\r\n\r\n");
        let _ = s.write_all(q.as_bytes()).await;
        waiting.push(s);
    }

    // Huge bodies are refused by size, in the error shape, and the client reads that answer
    // (the refused body's rest is drained before the close, else a reset would eat it).
    for _ in 0..8 {
        let huge = vec![b'a'; 3 * 1024 * 1024];
        let a = hub.must("POST", "/api/v1/jobs", Some("text/plain"), huge).await;
        assert_eq!(a.status, 413, "{}", &a.body[..a.body.len().min(200)]);
        assert!(serde_json::from_str::<ApiError>(&a.body).is_ok(), "{}", a.body);
    }
    let a = hub.must("PUT", "/v1/kv/big", None, vec![b'v'; 600 * 1024]).await;
    assert_eq!(a.status, 413);

    // Meanwhile the ordinary client on 127.0.0.1.
    let worst = slowest(&hub, 50).await;
    println!("API under attack: the ordinary client's slowest of 50 answers {worst:?}");
    assert!(worst < Duration::from_millis(100), "the API stalled: {worst:?}");

    // The slow heads are cut after the header deadline.
    let t0 = tokio::time::Instant::now();
    let said = first_words(&mut slow[0], Duration::from_secs(15)).await;
    assert!(t0.elapsed() < Duration::from_secs(12), "a slow head was kept {:?}: {said:?}", t0.elapsed());
    drop((slow, waiting));
    hub.stop().await.unwrap();
}
