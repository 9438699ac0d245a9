//! The DNS-01 records, through Cloudflare's API (v4, a scoped API token, as lego and
//! Traefik use it): find the zone for a name, add a TXT record, delete it afterwards.
//! Errors carry Cloudflare's own messages, never the token.

use super::config::Secret;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::time::Duration;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Debug, thiserror::Error)]
#[error("Cloudflare {what}: {message}")]
pub struct DnsError {
    pub what: String,
    pub message: String,
}

pub struct Cloudflare {
    api: String,
    token: Secret,
    http: Client<Https, Full<Bytes>>,
}

const TIMEOUT: Duration = Duration::from_secs(30);

impl Cloudflare {
    pub fn new(api: &str, token: Secret, tls: rustls::ClientConfig) -> Cloudflare {
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        let http = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Cloudflare { api: api.to_owned(), token, http }
    }

    async fn call(
        &self,
        what: &str,
        method: hyper::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, DnsError> {
        let err = |message: String| DnsError { what: what.to_owned(), message };
        let req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.api))
            .header("authorization", format!("Bearer {}", self.token.0))
            .header("content-type", "application/json")
            .body(Full::new(body.map(|b| Bytes::from(b.to_string())).unwrap_or_default()))
            .map_err(|e| err(e.to_string()))?;
        let rsp = tokio::time::timeout(TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| err(format!("no answer in {}s", TIMEOUT.as_secs())))?
            .map_err(|e| err(anyhow_like(&e)))?;
        let status = rsp.status();
        let bytes = tokio::time::timeout(TIMEOUT, rsp.into_body().collect())
            .await
            .map_err(|_| err("the answer did not finish".into()))?
            .map_err(|e| err(e.to_string()))?
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| {
            err(format!("HTTP {status}, not JSON: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(200)])))
        })?;
        if v["success"] != json!(true) {
            let msgs: Vec<String> = v["errors"]
                .as_array()
                .map(|a| {
                    a.iter().map(|e| format!("{} ({})", e["message"].as_str().unwrap_or("?"), e["code"])).collect()
                })
                .unwrap_or_default();
            return Err(err(format!(
                "HTTP {status}: {}",
                if msgs.is_empty() { "no reason given".into() } else { msgs.join("; ") }
            )));
        }
        Ok(v)
    }

    /// The zone holding `name`: the longest parent Cloudflare has.
    pub async fn zone_for(&self, name: &str) -> Result<String, DnsError> {
        let labels: Vec<&str> = name.trim_end_matches('.').split('.').collect();
        for i in 0..labels.len().saturating_sub(1) {
            let candidate = labels[i..].join(".");
            let v = self.call("zone lookup", hyper::Method::GET, &format!("/zones?name={candidate}"), None).await?;
            if let Some(id) = v["result"].as_array().and_then(|a| a.first()).and_then(|z| z["id"].as_str()) {
                return Ok(id.to_owned());
            }
        }
        Err(DnsError { what: "zone lookup".into(), message: format!("no zone in this account holds {name}") })
    }

    /// Adds `name TXT content`; the record's id.
    pub async fn add_txt(&self, zone: &str, name: &str, content: &str) -> Result<String, DnsError> {
        let body = json!({ "type": "TXT", "name": name, "content": content, "ttl": 120 });
        let v = self.call("add TXT", hyper::Method::POST, &format!("/zones/{zone}/dns_records"), Some(body)).await?;
        v["result"]["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| DnsError { what: "add TXT".into(), message: "no record id in the answer".into() })
    }

    pub async fn delete(&self, zone: &str, id: &str) -> Result<(), DnsError> {
        self.call("delete TXT", hyper::Method::DELETE, &format!("/zones/{zone}/dns_records/{id}"), None).await.map(drop)
    }
}

/// A client error with its sources, one line.
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
