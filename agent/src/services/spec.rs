//! The serde model of a service file: Consul's service definition (`service {}` /
//! `services {}`, HCL or JSON, snake_case or Consul's CamelCase keys) and Rabble's
//! TOML, which is the same model written in TOML (`[[service]]`).

use rabble_shared::support::duration::GoDuration;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// One value or a list of them (`service {}` once, or several `service {}` blocks).
/// Deserialised by hand, not `untagged`, so the inner error (field, line) survives.
#[derive(Debug, Clone)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t],
            OneOrMany::Many(v) => v,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a block/table or a list of them")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut v = Vec::new();
                while let Some(t) = seq.next_element()? {
                    v.push(t);
                }
                Ok(OneOrMany::Many(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(OneOrMany::One)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

/// A whole service file.
#[derive(Debug, Default, Deserialize)]
pub struct FileSpec {
    #[serde(default, alias = "Service")]
    pub service: OneOrMany<ServiceSpec>,
    #[serde(default, alias = "Services")]
    pub services: OneOrMany<ServiceSpec>,
    /// Node-level checks (not bound to a service), as Consul allows.
    #[serde(default, alias = "Check")]
    pub check: OneOrMany<CheckSpec>,
    #[serde(default, alias = "Checks")]
    pub checks: OneOrMany<CheckSpec>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServiceSpec {
    #[serde(alias = "Name")]
    pub name: String,
    #[serde(default, alias = "ID", alias = "Id")]
    pub id: Option<String>,
    #[serde(default, alias = "Tags")]
    pub tags: Vec<String>,
    #[serde(default, alias = "Address")]
    pub address: Option<String>,
    #[serde(default, alias = "Port")]
    pub port: Option<u16>,
    #[serde(default, alias = "Meta")]
    pub meta: BTreeMap<String, String>,
    #[serde(default, alias = "Check")]
    pub check: OneOrMany<CheckSpec>,
    #[serde(default, alias = "Checks")]
    pub checks: OneOrMany<CheckSpec>,
    /// Accepted for compatibility; Rabble has no tag override.
    #[serde(default, alias = "EnableTagOverride")]
    pub enable_tag_override: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckSpec {
    #[serde(default, alias = "ID", alias = "Id", alias = "CheckID", alias = "check_id")]
    pub id: Option<String>,
    #[serde(default, alias = "Name")]
    pub name: Option<String>,
    #[serde(default, alias = "Notes")]
    pub notes: Option<String>,
    #[serde(default, alias = "ServiceID", alias = "service_id")]
    pub service_id: Option<String>,
    #[serde(default, alias = "HTTP")]
    pub http: Option<String>,
    #[serde(default, alias = "TCP")]
    pub tcp: Option<String>,
    #[serde(default, alias = "Args", alias = "ScriptArgs", alias = "script_args")]
    pub args: Option<Vec<String>>,
    #[serde(default, alias = "TTL")]
    pub ttl: Option<GoDuration>,
    #[serde(default, alias = "Interval")]
    pub interval: Option<GoDuration>,
    #[serde(default, alias = "Timeout")]
    pub timeout: Option<GoDuration>,
    #[serde(default, alias = "Status")]
    pub status: Option<String>,
    #[serde(default, alias = "Method")]
    pub method: Option<String>,
    #[serde(default, alias = "Header")]
    pub header: HashMap<String, Vec<String>>,
    #[serde(default, alias = "Body")]
    pub body: Option<String>,
    #[serde(default, alias = "TLSSkipVerify")]
    pub tls_skip_verify: bool,
    #[serde(default, alias = "TLSServerName")]
    pub tls_server_name: Option<String>,
    #[serde(default, alias = "DeregisterCriticalServiceAfter")]
    pub deregister_critical_service_after: Option<GoDuration>,
    #[serde(default, alias = "SuccessBeforePassing")]
    pub success_before_passing: u32,
    #[serde(default, alias = "FailuresBeforeCritical")]
    pub failures_before_critical: u32,
}
