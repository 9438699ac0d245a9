//! The retained publisher against rumqttc's request queue (what it would send), with real
//! credentials files for the keys.

use super::*;
use crate::auth::{Authenticator, Credentials};
use rumqttc::Request;

struct Harness {
    rx: flume::Receiver<Request>,
    _dir: tempfile::TempDir,
    auth: Arc<Authenticator>,
    /// pi1's token (pi1 has credentials; pi2 has none; pi3 is revoked).
    token: String,
}

fn harness(cap: usize) -> (Harness, AsyncClient) {
    let dir = tempfile::tempdir().unwrap();
    let path = Credentials::path(dir.path());
    let mut c = Credentials::default();
    let (_, token) = c.add("pi1").unwrap();
    c.add("pi3").unwrap();
    c.revoke("pi3").unwrap();
    c.save(&path).unwrap();
    let auth = Arc::new(Authenticator::new(path).unwrap());
    let (tx, rx) = flume::bounded(cap);
    (Harness { rx, _dir: dir, auth, token }, AsyncClient::from_senders(tx))
}

/// What was queued since the last look: (topic, payload).
fn sent(h: &Harness) -> Vec<(String, String)> {
    h.rx.try_iter()
        .filter_map(|r| match r {
            Request::Publish(p) => {
                assert!(p.retain);
                Some((p.topic, String::from_utf8_lossy(&p.payload).into_owned()))
            }
            _ => None,
        })
        .collect()
}

fn open_want(items: &[(&str, &str)]) -> Vec<(String, Want<impl FnOnce() -> Payload>)> {
    items
        .iter()
        .map(|(t, body)| {
            let body = body.to_string();
            let fingerprint = fingerprint(body.as_bytes());
            ((*t).to_owned(), Want::Publish { fingerprint, make: move || Payload::Open(body.into_bytes()) })
        })
        .collect()
}

const A: &str = "rabble/hub/routes/a";
const B: &str = "rabble/hub/routes/b";

#[tokio::test(start_paused = true)]
async fn changes_are_sent_once_gone_topics_cleared_and_all_again_after_a_reconnect() {
    let (h, client) = harness(64);
    let mut r = Retained::new(client, 1024);
    r.sync(open_want(&[(A, "1"), (B, "1")])).await;
    assert_eq!(sent(&h), [(A.into(), "1".into()), (B.into(), "1".into())]);
    r.sync(open_want(&[(A, "1"), (B, "2")])).await;
    assert_eq!(sent(&h), [(B.into(), "2".into())], "only what changed");
    r.sync(open_want(&[(A, "1")])).await;
    assert_eq!(sent(&h), [(B.into(), String::new())], "a topic no longer wanted is cleared");
    r.sync(open_want(&[(A, "1")])).await;
    assert!(sent(&h).is_empty());
    r.sync(open_want(&[(A, "1"), (B, "3")])).await;
    sent(&h);
    r.reconnected();
    assert_eq!(r.held(A), None);
    r.sync(open_want(&[(A, "1")])).await;
    assert_eq!(sent(&h), [(A.into(), "1".into()), (B.into(), String::new())], "all again, and B still cleared");
    assert!(r.held(A).is_some() && r.retry_at().is_none());
}

#[tokio::test(start_paused = true)]
async fn keep_leaves_a_topic_alone() {
    let (h, client) = harness(64);
    let mut r = Retained::new(client, 1024);
    r.sync(open_want(&[(A, "1"), (B, "1")])).await;
    sent(&h);
    let mut want = open_want(&[(A, "2")]);
    want.push((B.to_owned(), Want::Keep));
    r.sync(want).await;
    assert_eq!(sent(&h), [(A.into(), "2".into())], "B neither sent nor cleared");
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_is_retried_on_a_timer_with_backoff() {
    let (h, client) = harness(1);
    let mut r = Retained::new(client, 1024);
    r.sync(open_want(&[(A, "1"), (B, "1")])).await;
    assert_eq!(sent(&h).len(), 1, "the queue had room for one");
    assert_eq!(r.problems().get(B), Some(&PublishError::Queue));
    let first = r.retry_at().expect("a retry is due");
    assert_eq!(first - Instant::now(), Duration::from_secs(1));
    tokio::time::sleep_until(first).await;
    r.sync(open_want(&[(A, "1"), (B, "1")])).await;
    assert_eq!(sent(&h), [(B.into(), "1".into())]);
    assert!(r.problems().is_empty() && r.retry_at().is_none());
}

#[tokio::test(start_paused = true)]
async fn content_over_the_limit_is_not_sent_and_not_retried() {
    let (h, client) = harness(64);
    let mut r = Retained::new(client, 4);
    r.sync(open_want(&[(A, "12345")])).await;
    assert!(sent(&h).is_empty());
    assert_eq!(r.problems().get(A), Some(&PublishError::TooLarge { bytes: 5, limit: 4 }));
    assert!(r.retry_at().is_none(), "only a change can fix it");
}

fn secret_want(node: &str) -> (String, Want<impl FnOnce() -> Payload>) {
    let topic = format!("rabble/node/{node}/certs/ingress");
    let make = || {
        Payload::Secret(Secret {
            clear: b"the private key".to_vec(),
            wrap: Box::new(|sealed| match sealed {
                Some(s) => format!("sealed:{s}").into_bytes(),
                None => b"plain:the private key".to_vec(),
            }),
        })
    };
    (topic, Want::Publish { fingerprint: 7, make })
}

#[tokio::test(start_paused = true)]
async fn secrets_are_sealed_for_their_node_clear_only_without_credentials_and_otherwise_withheld() {
    let (h, client) = harness(64);
    let mut r = Retained::with_keys(client, 4096, h.auth.clone());
    r.sync([secret_want("pi1"), secret_want("pi2"), secret_want("pi3")]).await;
    let out = sent(&h);
    assert_eq!(out.len(), 2, "{out:?}");
    let (t, sealed) = &out[0];
    assert_eq!(t, "rabble/node/pi1/certs/ingress");
    let b64 = sealed.strip_prefix("sealed:").expect("pi1 has credentials: sealed");
    let opened = rabble_shared::support::seal::open_b64(&h.token, "pi1", t, b64).unwrap();
    assert_eq!(opened, b"the private key");
    assert_eq!(out[1], ("rabble/node/pi2/certs/ingress".into(), "plain:the private key".into()), "no entry at all");
    let why = r.problems().get("rabble/node/pi3/certs/ingress").unwrap().to_string();
    assert!(why.contains("revoked"), "{why}");
    assert!(r.retry_at().is_some(), "credentials may change: withheld is retried");
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_credentials_file_sends_no_secret_in_clear() {
    let (h, client) = harness(64);
    let mut r = Retained::with_keys(client, 4096, h.auth.clone());
    std::fs::write(Credentials::path(h._dir.path()), "{ broken").unwrap();
    r.sync([secret_want("pi1"), secret_want("pi2")]).await;
    let out = sent(&h);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].1.starts_with("sealed:"), "pi1's key is known from the last good read");
    let why = r.problems().get("rabble/node/pi2/certs/ingress").unwrap().to_string();
    assert!(why.contains("unreadable") && why.contains("credentials.json"), "{why}");
}
