//! The alert API's shapes, Alertmanager's v2 (`/api/v2/alerts`, `/api/v2/silences`), so
//! `amtool`, Grafana's Alertmanager data source and the `rabble alert` commands read the
//! hub alike. Times are RFC 3339 strings, as Alertmanager writes them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One label matcher: `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    #[serde(rename = "isRegex")]
    pub is_regex: bool,
    /// Absent in older clients' requests: `=`.
    #[serde(rename = "isEqual", default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// A silence as a client sends it (`id` set: replace that silence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostableSilence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub matchers: Vec<ApiMatcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// `POST /api/v2/silences`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceCreated {
    #[serde(rename = "silenceID")]
    pub silence_id: String,
}

/// `pending` (starts later), `active`, `expired`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    pub state: String,
}

/// A silence as the hub tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GettableSilence {
    pub id: String,
    pub status: SilenceStatus,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    pub matchers: Vec<ApiMatcher>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "createdBy")]
    pub created_by: String,
    pub comment: String,
}

/// Whether an alert is sent (`active`) or held back (`suppressed`: silenced or inhibited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertStatus {
    pub state: String,
    #[serde(rename = "silencedBy")]
    pub silenced_by: Vec<String>,
    /// The fingerprints of the alerts that inhibit it (a down node's).
    #[serde(rename = "inhibitedBy")]
    pub inhibited_by: Vec<String>,
}

/// A receiver an alert goes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverName {
    pub name: String,
}

/// A firing alert as the hub tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GettableAlert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// A firing alert's is zero time, as Alertmanager's with no end.
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "updatedAt")]
    pub updated_at: String,
    pub fingerprint: String,
    pub receivers: Vec<ReceiverName>,
    pub status: AlertStatus,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
}
