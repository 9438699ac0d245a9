//! What each receiver is sent for one notification, as the bytes of an HTTP request:
//! Alertmanager's webhook payload (version "4") and its v2 API, ntfy, Gotify, and
//! Discord- and Slack-compatible webhooks. Pure: the hub's alert task sends them (with
//! retries) and reads the secrets (tokens, URLs) from files before calling these.

use super::Alert;
use super::group::Notification;
use rabble_shared::support::clock::rfc3339;
use serde_json::{Value, json};

/// Where and how a notification goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// ntfy: the topic's URL (`https://ntfy.sh/homelab`), an access token if the topic needs one.
    Ntfy { url: String, token: Option<String> },
    /// Gotify: the server's URL and an application token.
    Gotify { url: String, token: String },
    /// Any URL taking Alertmanager's webhook payload.
    Webhook { url: String },
    /// Discord's webhook URL (`/api/webhooks/...`).
    Discord { url: String },
    /// Slack's (or Mattermost's, Rocket.Chat's) incoming webhook URL.
    Slack { url: String },
    /// An Alertmanager: Rabble as one more alert source (`POST /api/v2/alerts`).
    Alertmanager { url: String },
    /// Email through an SMTP server (`host:port`; its credentials stay with the hub's
    /// mailer, never in the request).
    Email { server: String, from: String, to: Vec<String> },
}

/// One request to make: HTTP, or an email (`method` `SMTP`, `url` `smtp://host:port`, the
/// `From`, `To` and `Subject` headers, the text as the body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The notification's title: `[FIRING:2] NodeDown pi1`, `[RESOLVED] NodeDown pi1`.
pub fn title(n: &Notification) -> String {
    let firing = n.alerts.iter().filter(|a| a.firing()).count();
    let what: Vec<&str> = n.group_labels.values().map(String::as_str).collect();
    if firing > 0 { format!("[FIRING:{firing}] {}", what.join(" ")) } else { format!("[RESOLVED] {}", what.join(" ")) }
}

/// One line per alert: its summary, and `(resolved)` for those that are.
pub fn text(n: &Notification) -> String {
    let line = |a: &Alert| {
        let summary = a.annotations.get("summary").cloned().unwrap_or_else(|| a.name().to_owned());
        if a.firing() { summary } else { format!("{summary} (resolved)") }
    };
    n.alerts.iter().map(line).collect::<Vec<_>>().join("\n")
}

fn severity(n: &Notification) -> &str {
    let firing = n.alerts.iter().filter(|a| a.firing());
    let sev: Vec<&str> = firing.filter_map(|a| a.labels.get("severity").map(String::as_str)).collect();
    if sev.contains(&"critical") {
        "critical"
    } else if sev.contains(&"warning") {
        "warning"
    } else if sev.is_empty() {
        "resolved"
    } else {
        "info"
    }
}

fn json_request(url: &str, body: &Value, headers: Vec<(String, String)>) -> Request {
    let mut h = vec![("Content-Type".to_owned(), "application/json".to_owned())];
    h.extend(headers);
    Request { method: "POST", url: url.to_owned(), headers: h, body: serde_json::to_vec(body).unwrap_or_default() }
}

fn am_alert(a: &Alert, ui: &str) -> Value {
    json!({
        "status": if a.firing() { "firing" } else { "resolved" },
        "labels": a.labels,
        "annotations": a.annotations,
        "startsAt": rfc3339(a.starts_ms),
        "endsAt": a.ends_ms.map_or("0001-01-01T00:00:00Z".to_owned(), rfc3339),
        "generatorURL": ui,
        "fingerprint": a.fingerprint(),
    })
}

/// Alertmanager's webhook payload, version "4".
pub fn webhook_body(receiver: &str, n: &Notification, ui: &str) -> Value {
    let common = |f: fn(&Alert) -> &std::collections::BTreeMap<String, String>| {
        let mut it = n.alerts.iter().map(f);
        let first = it.next().cloned().unwrap_or_default();
        let rest: Vec<_> = it.collect();
        first
            .into_iter()
            .filter(|(k, v)| rest.iter().all(|m| m.get(k) == Some(v)))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    json!({
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": if n.firing() { "firing" } else { "resolved" },
        "receiver": receiver,
        "groupLabels": n.group_labels,
        "commonLabels": common(|a| &a.labels),
        "commonAnnotations": common(|a| &a.annotations),
        "externalURL": ui,
        "alerts": n.alerts.iter().map(|a| am_alert(a, ui)).collect::<Vec<_>>(),
    })
}

/// How often an Alertmanager hears of every firing alert again, and how long it holds one
/// it has not heard of (Prometheus's 1-minute resend and 4× that): an alert resolves there
/// on its own only when Rabble is gone.
pub const AM_RESEND_MS: u64 = 60_000;
pub const AM_VALID_MS: u64 = 4 * AM_RESEND_MS;

/// Alertmanager's `POST /api/v2/alerts` of `alerts`: a firing one valid until
/// `now_ms + AM_VALID_MS`, a resolved one with its end.
pub fn am_request(url: &str, alerts: &[Alert], ui: &str, now_ms: u64) -> Request {
    let url = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|a| {
            let mut v = am_alert(a, ui);
            let o = v.as_object_mut().expect("an object");
            for k in ["status", "fingerprint"] {
                o.remove(k);
            }
            if a.firing() {
                o.insert("endsAt".into(), rfc3339(now_ms + AM_VALID_MS).into());
            }
            v
        })
        .collect();
    json_request(&url, &Value::Array(alerts), vec![])
}

/// The request that tells `kind` of `n` at `now_ms`; `ui` is the hub's web UI (the click link).
pub fn request(receiver: &str, kind: &Kind, n: &Notification, ui: &str, now_ms: u64) -> Request {
    let sev = severity(n);
    match kind {
        Kind::Ntfy { url, token } => {
            let (priority, tags) = match sev {
                "critical" => ("5", "rotating_light"),
                "warning" => ("4", "warning"),
                "info" => ("3", "information_source"),
                _ => ("3", "white_check_mark"),
            };
            let mut headers = vec![
                ("X-Title".to_owned(), title(n)),
                ("X-Priority".to_owned(), priority.to_owned()),
                ("X-Tags".to_owned(), tags.to_owned()),
                ("Click".to_owned(), ui.to_owned()),
            ];
            if let Some(t) = token {
                headers.push(("Authorization".to_owned(), format!("Bearer {t}")));
            }
            Request { method: "POST", url: url.clone(), headers, body: text(n).into_bytes() }
        }
        Kind::Gotify { url, token } => {
            let priority = match sev {
                "critical" => 8,
                "warning" => 5,
                "info" => 4,
                _ => 2,
            };
            let body = json!({
                "title": title(n),
                "message": text(n),
                "priority": priority,
                "extras": {"client::notification": {"click": {"url": ui}}},
            });
            let url = format!("{}/message", url.trim_end_matches('/'));
            json_request(&url, &body, vec![("X-Gotify-Key".to_owned(), token.clone())])
        }
        Kind::Webhook { url } => json_request(url, &webhook_body(receiver, n, ui), vec![]),
        Kind::Discord { url } => {
            let content = format!("**{}**\n{}\n{ui}", title(n), text(n));
            json_request(url, &json!({ "content": content }), vec![])
        }
        Kind::Slack { url } => {
            json_request(url, &json!({ "text": format!("*{}*\n{}\n{ui}", title(n), text(n)) }), vec![])
        }
        Kind::Alertmanager { url } => am_request(url, &n.alerts, ui, now_ms),
        Kind::Email { server, from, to } => Request {
            method: "SMTP",
            url: format!("smtp://{server}"),
            headers: vec![
                ("From".to_owned(), from.clone()),
                ("To".to_owned(), to.join(", ")),
                ("Subject".to_owned(), title(n)),
            ],
            body: format!("{}\n\n{ui}\n", text(n)).into_bytes(),
        },
    }
}
