//! Per-node MQTT credentials: `<data_dir>/credentials.json`, written by
//! `rabble-hub node add|revoke` and read by the running hub's broker on every CONNECT.
//!
//! A node's username is its node id; its password is a 256-bit random token shown once
//! by `node add`. The file keeps only the token's SHA-256 (a token is random, so a plain
//! hash is enough: there is nothing to brute-force). Revoked nodes stay in the file, so a
//! refusal can say "revoked" and `node list` shows when. Writes are atomic (temp file +
//! rename): the hub never reads half a file. Changes are made under the file's lock
//! (`Credentials::lock`), by the hub and the CLI alike.

use rabble_shared::NodeId;
use rabble_shared::support::{join, seal};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub const FILE_NAME: &str = "credentials.json";
/// The hub's own MQTT username on its embedded broker; no node may take it.
pub const HUB_USER: &str = "rabble-hub";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0:?} has no character usable as a node id ([a-z0-9_-])")]
    BadName(String),
    #[error("{0:?} is reserved for the hub itself")]
    Reserved(String),
    #[error("node {0} already has credentials (revoke it first to issue a new token)")]
    Exists(NodeId),
    #[error("node {0} has no credentials")]
    Unknown(String),
    #[error("no secure random numbers: {0}")]
    Random(String),
}

/// The file, read under its lock (`Credentials::lock`); `save` writes it back, dropping
/// it without saving changes nothing. The lock goes with it.
#[derive(Debug)]
pub struct Locked {
    pub creds: Credentials,
    path: PathBuf,
    _file: std::fs::File,
}

impl Locked {
    /// Writes the changed set and releases the lock; returns the set as saved and the
    /// file's stamp taken before the lock went (so the hub's cache matches the file).
    pub fn save(self) -> Result<(Credentials, Option<crate::stamp::Stamp>), CredentialsError> {
        self.creds.save(&self.path)?;
        let stamp = crate::stamp::of(&self.path);
        Ok((self.creds, stamp))
    }
}

/// One node's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCredential {
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// Unix seconds.
    pub added: u64,
    /// Unix seconds; set once revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<u64>,
    /// A read-only watcher (`node add --observer`): subscribes to `rabble/#`, publishes
    /// nothing. Not a node: it cannot register anything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub observer: bool,
    /// A join token (`node add --join`): single use, until `expires`. `sha256` above is
    /// empty until the node joins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub join: Option<JoinToken>,
}

/// A node's join token, hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    pub sha256: String,
    /// Unix seconds.
    pub expires: u64,
    /// Unix seconds; set when the node joined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<u64>,
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub nodes: BTreeMap<NodeId, NodeCredential>,
}

/// What the broker decides about a CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    UnknownNode,
    Revoked,
    WrongToken,
    /// A node's token used under another node's agent client id (`rabble-agent-<other>`),
    /// which would take that node's session over.
    OtherNodesClientId,
    /// A join token that was valid: the node's credential is now recorded (save the file).
    Joined,
    /// A join token already traded for a credential (by another token than this one).
    JoinUsed,
    JoinExpired,
    /// A node that has not joined yet, presenting a plain token.
    NotJoined,
}

/// Unix seconds, as the file keeps times.
pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Hex SHA-256 of a token (what a joining node sends, too).
pub fn hash(token: &str) -> String {
    join::hex(&seal::token_sha256(token))
}

/// A fresh 256-bit token, hex.
pub fn new_token() -> Result<String, CredentialsError> {
    join::new_token().map_err(|e| CredentialsError::Random(e.to_string()))
}

impl Credentials {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE_NAME)
    }

    /// Reads the file; a missing file is an empty set. Errors name the file and line.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let err = |message: String| CredentialsError::File { path: path.to_owned(), message };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Credentials::default()),
            Err(e) => Err(err(format!("cannot read: {e}"))),
        }
    }

    /// Writes the file atomically, readable by its owner only.
    pub fn save(&self, path: &Path) -> Result<(), CredentialsError> {
        let err = |message: String| CredentialsError::File { path: path.to_owned(), message };
        let dir = super::dir_of(path);
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| err(e.to_string()))?;
        bytes.push(b'\n');
        super::write_private(path, &bytes).map_err(|e| err(format!("cannot write: {e}")))
    }

    /// Takes the file's lock (an exclusive `flock` on `<file>.lock`, waiting for it) and
    /// reads the file as it is now: the running hub (joins, minted join tokens) and
    /// `rabble-hub node add|revoke` in another process change it one at a time, none losing
    /// another's change.
    pub fn lock(path: &Path) -> Result<Locked, CredentialsError> {
        let err = |message: String| CredentialsError::File { path: path.to_owned(), message };
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let dir = super::dir_of(path);
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        // Made by root (`node add`) for the hub's user too.
        let file = super::open_private(&lock_path, false)
            .map_err(|e| err(format!("cannot open {}: {e}", lock_path.display())))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| err(format!("cannot lock {}: {e}", lock_path.display())))?;
        Ok(Locked { creds: Credentials::load(path)?, path: path.to_owned(), _file: file })
    }

    /// Issues a token for `name`; returns the node id and the token (shown once).
    pub fn add(&mut self, name: &str) -> Result<(NodeId, String), CredentialsError> {
        self.add_with(name, false)
    }

    /// Issues a token; `observer` makes it a read-only watcher's.
    pub fn add_with(&mut self, name: &str, observer: bool) -> Result<(NodeId, String), CredentialsError> {
        let id = NodeId::from_name(name).ok_or_else(|| CredentialsError::BadName(name.to_owned()))?;
        if id.as_str() == HUB_USER {
            return Err(CredentialsError::Reserved(name.to_owned()));
        }
        if self.nodes.get(&id).is_some_and(|c| c.revoked.is_none()) {
            return Err(CredentialsError::Exists(id));
        }
        let token = new_token()?;
        self.nodes.insert(
            id.clone(),
            NodeCredential { sha256: hash(&token), added: now(), revoked: None, observer, join: None },
        );
        Ok((id, token))
    }

    /// Issues a join token for `name`, valid `ttl_secs` and once: the node trades it for
    /// its own credential at its first connect (`rabble image` puts it on the card).
    /// Replaces an unused join token; a node that has joined must be revoked first.
    pub fn add_join(&mut self, name: &str, ttl_secs: u64) -> Result<(NodeId, String), CredentialsError> {
        let id = NodeId::from_name(name).ok_or_else(|| CredentialsError::BadName(name.to_owned()))?;
        if id.as_str() == HUB_USER {
            return Err(CredentialsError::Reserved(name.to_owned()));
        }
        if self.nodes.get(&id).is_some_and(|c| c.revoked.is_none() && !c.sha256.is_empty()) {
            return Err(CredentialsError::Exists(id));
        }
        let token = new_token()?;
        let join = JoinToken { sha256: hash(&token), expires: now().saturating_add(ttl_secs), used: None };
        let c =
            NodeCredential { sha256: String::new(), added: now(), revoked: None, observer: false, join: Some(join) };
        self.nodes.insert(id.clone(), c);
        Ok((id, token))
    }

    /// Decides a join password (`rabble_shared::support::join`) at unix time `now`; on
    /// [`Verdict::Joined`] the node's credential is recorded here (the caller saves).
    pub fn join(&mut self, user: &str, join_token: &str, token_hash: &str, now: u64) -> Verdict {
        let Some(c) = NodeId::new(user).ok().and_then(|id| self.nodes.get_mut(&id)) else {
            return Verdict::UnknownNode;
        };
        if c.revoked.is_some() {
            return Verdict::Revoked;
        }
        let Some(j) = c.join.as_mut().filter(|j| same_hash(&j.sha256, &hash(join_token))) else {
            return Verdict::WrongToken;
        };
        match j.used {
            // The node retrying after its CONNACK was lost: the same hash, accepted.
            Some(_) if same_hash(&c.sha256, token_hash) => Verdict::Accepted,
            Some(_) => Verdict::JoinUsed,
            None if now > j.expires => Verdict::JoinExpired,
            None => {
                j.used = Some(now);
                c.sha256 = token_hash.to_owned();
                Verdict::Joined
            }
        }
    }

    /// Revokes `name`'s token; the broker refuses it from the next CONNECT on.
    pub fn revoke(&mut self, name: &str) -> Result<NodeId, CredentialsError> {
        let id = NodeId::from_name(name).ok_or_else(|| CredentialsError::BadName(name.to_owned()))?;
        let c = self.nodes.get_mut(&id).ok_or_else(|| CredentialsError::Unknown(name.to_owned()))?;
        c.revoked.get_or_insert_with(now);
        Ok(id)
    }

    /// The nodes whose tokens are revoked.
    pub fn revoked(&self) -> std::collections::BTreeSet<NodeId> {
        self.nodes.iter().filter(|(_, c)| c.revoked.is_some()).map(|(id, _)| id.clone()).collect()
    }

    pub fn verify(&self, user: &str, token: &str) -> Verdict {
        let Some(c) = NodeId::new(user).ok().and_then(|id| self.nodes.get(&id)) else { return Verdict::UnknownNode };
        if c.revoked.is_some() {
            Verdict::Revoked
        } else if c.sha256.is_empty() {
            Verdict::NotJoined
        } else if same_hash(&c.sha256, &hash(token)) {
            Verdict::Accepted
        } else {
            Verdict::WrongToken
        }
    }
}

impl Credentials {
    /// How content meant for `node` alone may leave the hub: sealed with the key both ends
    /// derive from its token; in clear only when the file has no entry for it at all (a
    /// hub without node credentials: `rabble dev`, plain MQTT on a trusted LAN); withheld
    /// for an entry without a usable key (revoked, not joined yet, an observer).
    pub fn sealing(&self, node: &NodeId) -> Sealing {
        let Some(c) = self.nodes.get(node) else { return Sealing::Clear };
        if c.revoked.is_some() {
            return Sealing::Withheld(format!("node {node}'s credentials are revoked"));
        }
        if c.observer {
            return Sealing::Withheld(format!("{node} is an observer"));
        }
        let hex = &c.sha256;
        let bytes: Option<Vec<u8>> = (hex.len() % 2 == 0 && !hex.is_empty())
            .then(|| (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect())
            .flatten();
        match bytes {
            Some(b) => Sealing::Sealed(Box::new(seal::node_key(&b, node.as_str()))),
            None if c.join.is_some() => Sealing::Withheld(format!("node {node} has not joined yet")),
            None => Sealing::Withheld(format!("node {node}'s credential in credentials.json is not a SHA-256")),
        }
    }
}

/// How content meant for one node may leave the hub ([`Credentials::sealing`]).
pub enum Sealing {
    Sealed(Box<seal::SealKey>),
    Clear,
    /// Not at all, for this reason.
    Withheld(String),
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealing::Sealed(_) => f.write_str("Sealed(..)"),
            Sealing::Clear => f.write_str("Clear"),
            Sealing::Withheld(why) => write!(f, "Withheld({why:?})"),
        }
    }
}

/// Compares two hashes without an early exit.
fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_verify_revoke_and_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = Credentials::path(dir.path());
        let mut c = Credentials::load(&path).unwrap();
        let (id, token) = c.add("Pi3.lan").unwrap();
        assert_eq!((id.as_str(), token.len()), ("pi3-lan", 64));
        assert!(matches!(c.add("pi3-lan"), Err(CredentialsError::Exists(_))));
        assert!(matches!(c.add("rabble-hub"), Err(CredentialsError::Reserved(_))));
        c.save(&path).unwrap();
        let c2 = Credentials::load(&path).unwrap();
        assert_eq!(c2, c);
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token), "the token itself is never stored");
        assert_eq!(c2.verify("pi3-lan", &token), Verdict::Accepted);
        assert_eq!(c2.verify("pi3-lan", "nope"), Verdict::WrongToken);
        assert_eq!(c2.verify("pi4", &token), Verdict::UnknownNode);
        assert_eq!(c2.verify("", ""), Verdict::UnknownNode);
        let mut c3 = c2.clone();
        c3.revoke("pi3-lan").unwrap();
        assert_eq!(c3.verify("pi3-lan", &token), Verdict::Revoked);
        // A revoked node can be issued a new token; the old one stays dead.
        let (_, fresh) = c3.add("pi3-lan").unwrap();
        assert_eq!(
            (c3.verify("pi3-lan", &fresh), c3.verify("pi3-lan", &token)),
            (Verdict::Accepted, Verdict::WrongToken)
        );
        assert!(matches!(c3.revoke("ghost"), Err(CredentialsError::Unknown(_))));
    }

    #[test]
    fn join_tokens_are_single_use_short_lived_and_bound_to_the_name() {
        use rabble_shared::support::join;
        let mut c = Credentials::default();
        let (id, j) = c.add_join("Pi-Kitchen", 3600).unwrap();
        assert_eq!(id.as_str(), "pi-kitchen");
        let t0 = c.nodes[&id].join.as_ref().unwrap().expires - 3600;
        assert_eq!(c.verify("pi-kitchen", "anything"), Verdict::NotJoined);
        assert!(matches!(c.sealing(&id), Sealing::Withheld(w) if w.contains("not joined")), "no key before it joins");
        assert!(matches!(c.sealing(&NodeId::new("stranger").unwrap()), Sealing::Clear), "no entry: no credentials");
        let mine = join::password(&j, "node-token");
        let (jt, h) = join::parse(&mine).unwrap();
        assert_eq!(c.join("pi-other", jt, h, t0), Verdict::UnknownNode, "bound to its name");
        assert_eq!(c.join("pi-kitchen", "wrong", h, t0), Verdict::WrongToken);
        assert_eq!(c.join("pi-kitchen", jt, h, t0 + 3601), Verdict::JoinExpired);
        assert_eq!(c.join("pi-kitchen", jt, h, t0 + 10), Verdict::Joined);
        assert_eq!(c.verify("pi-kitchen", "node-token"), Verdict::Accepted, "the node's own token from now on");
        assert!(matches!(c.sealing(&id), Sealing::Sealed(_)));
        assert_eq!(c.join("pi-kitchen", jt, h, t0 + 20), Verdict::Accepted, "the same node retrying");
        let (_, other) = join::parse(&join::password(&j, "thief")).map(|(a, b)| (a.to_owned(), b.to_owned())).unwrap();
        assert_eq!(c.join("pi-kitchen", jt, &other, t0 + 20), Verdict::JoinUsed, "a replay is refused");
        assert!(matches!(c.add_join("pi-kitchen", 60), Err(CredentialsError::Exists(_))));
        c.revoke("pi-kitchen").unwrap();
        assert_eq!(c.join("pi-kitchen", jt, h, t0 + 20), Verdict::Revoked);
        assert!(matches!(c.sealing(&id), Sealing::Withheld(w) if w.contains("revoked")), "never in clear");
        assert!(c.add_join("pi-kitchen", 60).is_ok(), "a revoked node can be given a new join token");
    }

    #[test]
    fn a_broken_file_names_itself_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = Credentials::path(dir.path());
        std::fs::write(&path, "{\n \"nodes\": {\n  \"pi\": 3\n}}").unwrap();
        let e = Credentials::load(&path).unwrap_err().to_string();
        assert!(e.contains("credentials.json") && e.contains("line 3"), "{e}");
    }
}
