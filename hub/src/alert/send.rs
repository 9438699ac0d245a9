//! Sends a receiver's request: HTTP(S) through hyper with rustls, a 10 s deadline, and
//! retries with backoff (1, 2, 4, 8 s) while the receiver fails or answers 5xx/429. The
//! error names the receiver and what it said, never the URL's secret or a token.
//!
//! [`Outbox`] paces it: each receiver gets at most [`BURST`] messages at once and one more
//! every [`REFILL`] (a flood of groups reaches a phone spread out, not all at once; what
//! waits longer than [`MAX_WAIT`] is dropped and logged), at most 8 are in flight, and each
//! receiver's consecutive failures are counted so one that keeps failing raises an alert
//! on the others.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rabble_core::alert::payload::Request;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

const TIMEOUT: Duration = Duration::from_secs(10);
const RETRIES: u32 = 4;

#[derive(Clone)]
pub struct Sender {
    http: Client<Https, Full<Bytes>>,
    /// Each email receiver's mailer, by receiver name.
    mailers: Arc<HashMap<String, super::email::Mailer>>,
}

impl Sender {
    pub fn new(mailers: HashMap<String, super::email::Mailer>) -> Sender {
        let tls = rabble_shared::support::tls::verifying().map(|c| (*c).clone()).unwrap_or_else(|_| {
            // No trust store: plain http receivers still work; https ones fail and say so.
            rustls::ClientConfig::builder_with_provider(rabble_shared::support::tls::provider())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth())
                .expect("ring supports the default protocol versions")
        });
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Sender { http: Client::builder(hyper_util::rt::TokioExecutor::new()).build(https), mailers: Arc::new(mailers) }
    }

    /// One attempt: Ok, or why not (and whether trying again may help).
    async fn once(&self, receiver: &str, r: &Request) -> Result<(), (String, bool)> {
        if r.method == "SMTP" {
            let mailer = self.mailers.get(receiver).ok_or_else(|| ("no mailer for this receiver".to_owned(), false))?;
            // lettre's own timeout is per command: the whole exchange gets one too.
            return match tokio::time::timeout(3 * TIMEOUT, mailer.send(r)).await {
                Ok(r) => r,
                Err(_) => Err((format!("the SMTP exchange took over {} s", 3 * TIMEOUT.as_secs()), true)),
            };
        }
        let mut b = hyper::Request::builder().method(r.method).uri(&r.url);
        for (k, v) in &r.headers {
            b = b.header(k, v);
        }
        let req = b.body(Full::new(Bytes::from(r.body.clone()))).map_err(|e| (e.to_string(), false))?;
        let rsp = match tokio::time::timeout(TIMEOUT, self.http.request(req)).await {
            Err(_) => return Err((format!("no answer in {} s", TIMEOUT.as_secs()), true)),
            Ok(Err(e)) => return Err((format!("cannot connect: {e}"), true)),
            Ok(Ok(rsp)) => rsp,
        };
        let status = rsp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = tokio::time::timeout(TIMEOUT, rsp.into_body().collect()).await;
        let text = body.ok().and_then(|b| b.ok()).map(|b| b.to_bytes()).unwrap_or_default();
        let said = String::from_utf8_lossy(&text[..text.len().min(200)]).trim().to_owned();
        Err((format!("HTTP {status}: {said}"), status.is_server_error() || status.as_u16() == 429))
    }

    /// Sends `r`, retrying what may pass later; the last error if it never did.
    pub async fn send(&self, receiver: &str, r: &Request) -> Result<u32, String> {
        let mut wait = Duration::from_secs(1);
        for attempt in 0..=RETRIES {
            match self.once(receiver, r).await {
                Ok(()) => return Ok(attempt + 1),
                Err((e, again)) if again && attempt < RETRIES => {
                    tracing::debug!(error = %e, "receiver failed; trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err((e, _)) => return Err(e),
            }
        }
        Err("gave up".into())
    }
}

/// Messages a receiver may get at once, and the time to earn one more.
pub const BURST: u32 = 20;
pub const REFILL: Duration = Duration::from_secs(3);
/// The longest a message waits for its receiver's turn before it is dropped.
pub const MAX_WAIT: Duration = Duration::from_secs(120);
/// The most notifications in flight at once.
const IN_FLIGHT: usize = 8;

/// A receiver's pacing and record.
#[derive(Debug)]
struct Lane {
    tokens: f64,
    at: Instant,
    /// Deliveries that failed in a row (each after its retries), and the last error.
    failures: u32,
    error: String,
}

#[derive(Clone)]
pub struct Outbox {
    sender: Sender,
    slots: Arc<Semaphore>,
    lanes: Arc<Mutex<HashMap<String, Lane>>>,
}

impl Outbox {
    pub fn new(mailers: HashMap<String, super::email::Mailer>) -> Outbox {
        Outbox { sender: Sender::new(mailers), slots: Arc::new(Semaphore::new(IN_FLIGHT)), lanes: Default::default() }
    }

    /// How long until `receiver` may get one more message (and takes its turn if now).
    fn turn(&self, receiver: &str) -> Option<Duration> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let lane = lanes.entry(receiver.to_owned()).or_insert(Lane {
            tokens: f64::from(BURST),
            at: now,
            failures: 0,
            error: String::new(),
        });
        let earned = now.duration_since(lane.at).as_secs_f64() / REFILL.as_secs_f64();
        lane.tokens = (lane.tokens + earned).min(f64::from(BURST));
        lane.at = now;
        if lane.tokens >= 1.0 {
            lane.tokens -= 1.0;
            None
        } else {
            Some(REFILL.mul_f64(1.0 - lane.tokens))
        }
    }

    fn record(&self, receiver: &str, result: &Result<u32, String>) {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lane) = lanes.get_mut(receiver) {
            match result {
                Ok(_) => lane.failures = 0,
                Err(e) => {
                    lane.failures += 1;
                    lane.error.clone_from(e);
                }
            }
        }
    }

    /// Sends `req` to `receiver` in the background, in its turn.
    pub fn post(&self, receiver: &str, req: Request, title: String) {
        let (me, name) = (self.clone(), receiver.to_owned());
        tokio::spawn(async move {
            let since = Instant::now();
            while let Some(wait) = me.turn(&name) {
                if since.elapsed() + wait > MAX_WAIT {
                    tracing::warn!(receiver = %name, "dropped {title}: over the receiver's rate ({BURST} at once, one per {REFILL:?})");
                    return;
                }
                tokio::time::sleep(wait).await;
            }
            let Ok(_slot) = me.slots.clone().acquire_owned().await else { return };
            let result = me.sender.send(&name, &req).await;
            match &result {
                Ok(tries) => tracing::info!(receiver = %name, tries, "sent {title}"),
                Err(e) => tracing::warn!(receiver = %name, "could not send {title}: {e}"),
            }
            me.record(&name, &result);
        });
    }

    /// Receivers whose last `at_least` deliveries all failed, with the last error.
    pub fn failing(&self, at_least: u32) -> Vec<(String, String)> {
        let lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes.iter().filter(|(_, l)| l.failures >= at_least).map(|(n, l)| (n.clone(), l.error.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_receiver_gets_a_burst_then_one_per_refill() {
        let out = Outbox::new(HashMap::new());
        for _ in 0..BURST {
            assert_eq!(out.turn("phone"), None);
        }
        let wait = out.turn("phone").expect("over the burst");
        assert!(wait <= REFILL && wait > REFILL / 2, "{wait:?}");
        assert_eq!(out.turn("other"), None, "each receiver has its own");
        tokio::time::advance(REFILL).await;
        assert_eq!(out.turn("phone"), None, "earned one");
        assert!(out.turn("phone").is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_receiver_failing_twice_in_a_row_is_reported_until_it_works() {
        // Nothing listens there: each delivery fails at once, and is retried 4 times.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let req = Request { method: "POST", url: format!("http://127.0.0.1:{port}/x"), headers: vec![], body: vec![] };
        let out = Outbox::new(HashMap::new());
        out.post("gone", req.clone(), "one".into());
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(out.failing(2).is_empty(), "one failure is not yet a pattern");
        assert_eq!(out.failing(1).len(), 1);
        out.post("gone", req, "two".into());
        tokio::time::sleep(Duration::from_secs(60)).await;
        let failing = out.failing(2);
        assert_eq!(failing.len(), 1);
        assert!(failing[0].1.contains("cannot connect") && !failing[0].1.contains("/x"), "{failing:?}");
        out.record("gone", &Ok(1));
        assert!(out.failing(1).is_empty(), "a delivery clears it");
    }
}
