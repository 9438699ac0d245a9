//! Consul's HTTP API shapes, as Traefik's consulCatalog provider, Prometheus'
//! consul_sd, py-consul and Ansible read them (field names and casing are Consul's).
//! The hub serves them from its catalog on `/v1/...`; golden-tested like every wire.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A node, in `/v1/health/service/<s>` entries and `/v1/catalog/nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A service instance (`AgentService` in Consul's Go API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    #[serde(rename = "ID")]
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    pub meta: BTreeMap<String, String>,
    pub enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A check, in health entries, `/v1/health/state/<state>` and `/v1/health/checks/<s>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Check {
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    pub name: String,
    /// `passing`, `warning` or `critical`.
    pub status: String,
    pub notes: String,
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    #[serde(rename = "Type")]
    pub kind: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// One entry of `/v1/health/service/<s>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthEntry {
    pub node: Node,
    pub service: Service,
    pub checks: Vec<Check>,
}

/// One entry of `/v1/catalog/service/<s>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CatalogService {
    #[serde(rename = "ID")]
    pub id: String,
    pub node: String,
    pub address: String,
    pub datacenter: String,
    pub tagged_addresses: BTreeMap<String, String>,
    pub node_meta: BTreeMap<String, String>,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    pub service_name: String,
    pub service_tags: Vec<String>,
    pub service_address: String,
    pub service_port: u16,
    pub service_meta: BTreeMap<String, String>,
    pub service_enable_tag_override: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `/v1/catalog/node/<n>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeServices {
    pub node: Node,
    pub services: BTreeMap<String, Service>,
}

/// `PUT /v1/catalog/register`, as Consul takes it (the fields Rabble uses; others are
/// accepted and ignored, as Consul ignores unknown ones).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Register {
    pub node: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub datacenter: Option<String>,
    #[serde(default)]
    pub node_meta: BTreeMap<String, String>,
    #[serde(default)]
    pub service: Option<RegisterService>,
    #[serde(default)]
    pub check: Option<RegisterCheck>,
    #[serde(default)]
    pub checks: Vec<RegisterCheck>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterService {
    #[serde(rename = "ID", default)]
    pub id: Option<String>,
    pub service: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterCheck {
    #[serde(rename = "CheckID", default)]
    pub check_id: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub output: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: Option<String>,
}

/// `PUT /v1/catalog/deregister`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Deregister {
    pub node: String,
    #[serde(rename = "ServiceID", default)]
    pub service_id: Option<String>,
    #[serde(rename = "CheckID", default)]
    pub check_id: Option<String>,
}

/// One entry of `GET /v1/kv/<key>` (and of a transaction's results): the value is
/// base64, absent for an empty value (and for `?keys`-less metadata in a transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KvPair {
    pub lock_index: u64,
    pub key: String,
    pub flags: u64,
    pub value: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}
