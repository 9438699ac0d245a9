//! The HTTP routing table on the wire: one [`LaneTable`] per lane, built by the hub
//! from the Traefik-style tags of healthy instances and published retained on
//! `rabble/hub/routes/<lane>` (nodes keep routing while the hub is away). Its
//! `routers` / `services` / `middlewares` have the shape of Traefik's dynamic
//! configuration, so the same JSON feeds Traefik's HTTP provider.

pub mod rule;

use crate::msg::{DecodeError, Payload};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A lane's table can be large (many services): nodes accept this much (the
/// broker's packet limit, as for assignments).
pub const MAX_TABLE: usize = crate::assign::MAX_ASSIGNMENTS;

/// Whether `s` can be a lane name (and so a topic level).
pub fn valid_lane(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// One lane's routers, services and middlewares at a catalog index.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LaneTable {
    pub lane: String,
    /// The tag prefix the lane reads (`routing` reads `routing.http.routers...`).
    pub prefix: String,
    /// The catalog index the table was built at.
    pub index: u64,
    pub routers: BTreeMap<String, Router>,
    pub services: BTreeMap<String, LbService>,
    pub middlewares: BTreeMap<String, Middleware>,
    /// Tags that could not be used, per instance, with the reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

impl Payload for LaneTable {
    const WHAT: &'static str = "lane table";
    const MAX_SIZE: usize = MAX_TABLE;
    fn validate(&self) -> Result<(), DecodeError> {
        if !valid_lane(&self.lane) {
            return Err(DecodeError::Invalid(format!("lane {:?} is not [a-z0-9-]{{1,32}}", self.lane)));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Router {
    pub rule: String,
    pub service: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_points: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middlewares: Vec<String>,
    /// Given, or Traefik's default: the rule's length.
    pub priority: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<RouterTls>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterTls {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_resolver: Option<String>,
    /// `tls.domains[n].main|sans`: the names the resolver gets certificates for
    /// (default: the rule's `Host`s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<TlsDomain>,
}

/// One certificate's names, as Traefik's `tls.domains`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TlsDomain {
    pub main: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LbService {
    pub servers: Vec<Server>,
    pub pass_host_header: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Server {
    /// `http://10.0.0.5:8080`
    pub url: String,
}

/// The middlewares homelabs use, in Traefik's JSON form (`{"redirectScheme": {...}}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Middleware {
    RedirectScheme(RedirectScheme),
    StripPrefix(StripPrefix),
    AddPrefix(AddPrefix),
    Headers(Headers),
    BasicAuth(BasicAuth),
    IpAllowList(IpAllowList),
    RateLimit(RateLimit),
    ForwardAuth(ForwardAuth),
    Compress(Compress),
    Chain(Chain),
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedirectScheme {
    pub scheme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default)]
    pub permanent: bool,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StripPrefix {
    pub prefixes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddPrefix {
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Headers {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_request_headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_response_headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// `user:hash` (htpasswd: bcrypt, SHA1 or MD5-crypt), as Traefik takes them.
    pub users: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAllowList {
    pub source_range: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Requests per second, on average.
    pub average: u64,
    pub burst: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardAuth {
    pub address: String,
    #[serde(default)]
    pub trust_forward_header: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth_response_headers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Compress {}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Chain {
    pub middlewares: Vec<String>,
}

/// A tag (or a router built from tags) that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    pub service: String,
    /// The instance (`<node>/<service id>`), or empty for a lane-wide conflict.
    pub instance: String,
    pub tag: String,
    pub reason: String,
}

/// A node's lane proxy counters, cumulative since the agent started, published every
/// few seconds while they change on `rabble/node/<node>/proxy` (QoS 0, not retained);
/// the hub serves them on `/metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProxyStats {
    /// lane → router (`-` for requests no router matched) → counters.
    pub lanes: BTreeMap<String, BTreeMap<String, RouterStats>>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RouterStats {
    /// Responses by class: `1xx` … `5xx`.
    pub responses: BTreeMap<String, u64>,
    /// Seconds spent answering, summed over `count` requests.
    pub seconds_sum: f64,
    pub count: u64,
}

impl Payload for ProxyStats {
    const WHAT: &'static str = "proxy stats";
}
