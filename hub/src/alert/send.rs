//! Sends a receiver's request: HTTP(S) through hyper with rustls, a 10 s deadline, and
//! retries with backoff (1, 2, 4, 8 s) while the receiver fails or answers 5xx/429. The
//! error names the receiver and what it said, never the URL's secret or a token.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use rabble_core::alert::payload::Request;
use std::time::Duration;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

const TIMEOUT: Duration = Duration::from_secs(10);
const RETRIES: u32 = 4;

#[derive(Clone)]
pub struct Sender {
    http: Client<Https, Full<Bytes>>,
}

impl Sender {
    pub fn new() -> Sender {
        let tls = rabble_shared::support::tls::verifying().map(|c| (*c).clone()).unwrap_or_else(|_| {
            // No trust store: plain http receivers still work; https ones fail and say so.
            rustls::ClientConfig::builder_with_provider(rabble_shared::support::tls::provider())
                .with_safe_default_protocol_versions()
                .map(|b| b.with_root_certificates(rustls::RootCertStore::empty()).with_no_client_auth())
                .expect("ring supports the default protocol versions")
        });
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        Sender { http: Client::builder(hyper_util::rt::TokioExecutor::new()).build(https) }
    }

    /// One attempt: Ok, or why not (and whether trying again may help).
    async fn once(&self, r: &Request) -> Result<(), (String, bool)> {
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
    pub async fn send(&self, r: &Request) -> Result<u32, String> {
        let mut wait = Duration::from_secs(1);
        for attempt in 0..=RETRIES {
            match self.once(r).await {
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
