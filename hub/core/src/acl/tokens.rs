//! ACL state in the catalog: policies, tokens (each kept as its secret's SHA-256, never
//! the secret), and whether the ACLs have been bootstrapped. Changed only by the writer
//! applying [`AclUpdate`]s; read by the API to decide each request.

use super::policy::{Policy, Rules};
use super::{Authorizer, Need};
use crate::catalog::state::{Applied, Dirty};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// One token. `secret_sha256` is hex; the secret itself is shown once, when made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Token {
    /// Public: shown in lists, logs and events.
    pub accessor: String,
    pub secret_sha256: String,
    pub description: String,
    /// Policy names; a name with no policy (deleted since) grants nothing.
    pub policies: Vec<String>,
    /// Everything, every policy aside.
    pub management: bool,
    pub create_ms: u64,
    pub expires_ms: Option<u64>,
}

impl Token {
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms.is_some_and(|e| now_ms >= e)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acl {
    pub policies: Arc<BTreeMap<String, Arc<Policy>>>,
    pub tokens: Arc<BTreeMap<String, Arc<Token>>>,
    /// The secret's SHA-256 (bytes, not hex: nothing to encode per request) → accessor,
    /// for the door's one lookup per request (kept by [`Acl::new`] and [`Acl::apply`]).
    by_secret: Arc<HashMap<[u8; 32], String>>,
    /// The catalog index the ACLs were bootstrapped at; `None`: not yet (the API is open
    /// on loopback only, as before ACLs existed).
    pub bootstrapped: Option<u64>,
}

/// The 32 bytes of a SHA-256 written in hex (64 digits); `None` for anything else (a
/// token stored with such a hash can never be presented).
fn digest(hex: &str) -> Option<[u8; 32]> {
    let b = hex.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nib(b[2 * i])? << 4 | nib(b[2 * i + 1])?;
    }
    Some(out)
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AclUpdate {
    /// The first management token. Refused once bootstrapped, unless `reset` names the
    /// index it was bootstrapped at (the data dir's reset file, as Consul's).
    Bootstrap {
        token: Token,
        reset: Option<u64>,
    },
    PutPolicy(Policy),
    DeletePolicy(String),
    PutToken(Token),
    DeleteToken(String),
}

/// Why a request's token was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("ACL token not found (deleted, or never made)")]
    NotFound,
    #[error("ACL token {0} has expired")]
    Expired(String),
}

impl Acl {
    /// The ACL state as stored: policies and tokens by name and accessor.
    pub fn new(
        policies: BTreeMap<String, Arc<Policy>>,
        tokens: BTreeMap<String, Arc<Token>>,
        bootstrapped: Option<u64>,
    ) -> Acl {
        let by_secret = tokens.values().filter_map(|t| Some((digest(&t.secret_sha256)?, t.accessor.clone()))).collect();
        Acl { policies: Arc::new(policies), tokens: Arc::new(tokens), by_secret: Arc::new(by_secret), bootstrapped }
    }

    fn insert_token(&mut self, t: Token) {
        if let Some(d) = digest(&t.secret_sha256) {
            Arc::make_mut(&mut self.by_secret).insert(d, t.accessor.clone());
        }
        Arc::make_mut(&mut self.tokens).insert(t.accessor.clone(), Arc::new(t));
    }

    /// Whether requests must carry tokens (once bootstrapped).
    pub fn enforcing(&self) -> bool {
        self.bootstrapped.is_some()
    }

    /// The token whose secret hashes to `sha256` (hex), if live at `now_ms`.
    pub fn token(&self, sha256: &str, now_ms: u64) -> Result<&Arc<Token>, TokenError> {
        self.token_by_digest(&digest(sha256).ok_or(TokenError::NotFound)?, now_ms)
    }

    /// The token whose secret hashes to `sha256`, if live at `now_ms`.
    pub fn token_by_digest(&self, sha256: &[u8; 32], now_ms: u64) -> Result<&Arc<Token>, TokenError> {
        let t = self.by_secret.get(sha256).and_then(|a| self.tokens.get(a)).ok_or(TokenError::NotFound)?;
        if t.expired(now_ms) {
            return Err(TokenError::Expired(t.accessor.clone()));
        }
        Ok(t)
    }

    /// What a token may do.
    pub fn authorizer(&self, t: &Token) -> Authorizer {
        if t.management {
            return Authorizer::Management;
        }
        let mut policies = t.policies.iter().filter_map(|p| self.policies.get(p));
        match (policies.next(), policies.next()) {
            (None, _) => Authorizer::Rules(Arc::default()),
            (Some(one), None) => Authorizer::Rules(one.rules.clone()),
            (Some(a), Some(b)) => Authorizer::Rules(Arc::new(Rules::merged(
                [&*a.rules, &*b.rules].into_iter().chain(policies.map(|p| &*p.rules)),
            ))),
        }
    }

    /// Whether the token with `accessor` still allows `need` at `now_ms` (a stream or a
    /// blocking query asks again after each catalog change).
    pub fn still_allows(&self, accessor: &str, need: &Need, now_ms: u64) -> bool {
        self.tokens.get(accessor).is_some_and(|t| !t.expired(now_ms) && self.authorizer(t).allows(need))
    }

    pub fn apply(&mut self, u: AclUpdate, next: u64) -> Applied {
        let mut out = Applied::default();
        match u {
            AclUpdate::Bootstrap { token, reset } => {
                if self.bootstrapped.is_some() && reset != self.bootstrapped {
                    return out;
                }
                out.summaries.push(format!("ACL bootstrapped: management token {}", token.accessor));
                out.dirty.push(Dirty::AclBootstrap);
                out.dirty.push(Dirty::AclToken(token.accessor.clone()));
                self.bootstrapped = Some(next);
                self.insert_token(token);
            }
            AclUpdate::PutPolicy(p) => {
                if self.policies.get(&p.name).is_some_and(|cur| **cur == p) {
                    return out;
                }
                out.summaries.push(format!("ACL policy {} written", p.name));
                out.dirty.push(Dirty::AclPolicy(p.name.clone()));
                Arc::make_mut(&mut self.policies).insert(p.name.clone(), Arc::new(p));
            }
            AclUpdate::DeletePolicy(name) => {
                if Arc::make_mut(&mut self.policies).remove(&name).is_some() {
                    out.summaries.push(format!("ACL policy {name} deleted"));
                    out.dirty.push(Dirty::AclPolicy(name));
                }
            }
            AclUpdate::PutToken(t) => {
                if self.tokens.contains_key(&t.accessor) {
                    return out; // accessors are drawn at random: a clash is refused, not overwritten
                }
                out.summaries.push(format!("ACL token {} created", t.accessor));
                out.dirty.push(Dirty::AclToken(t.accessor.clone()));
                self.insert_token(t);
            }
            AclUpdate::DeleteToken(accessor) => {
                if let Some(t) = Arc::make_mut(&mut self.tokens).remove(&accessor) {
                    if let Some(d) = digest(&t.secret_sha256) {
                        Arc::make_mut(&mut self.by_secret).remove(&d);
                    }
                    out.summaries.push(format!("ACL token {accessor} deleted"));
                    out.dirty.push(Dirty::AclToken(accessor));
                }
            }
        }
        out
    }
}
