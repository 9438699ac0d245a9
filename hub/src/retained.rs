//! The one way the hub keeps retained MQTT topics: "these topics hold exactly this".
//!
//! A task (dispatch, lanes, KV mirror, templates, certificates) says, each time it looks,
//! what every topic of its own should hold — a [`Want`] per topic, with a fingerprint of
//! the content so unchanged content is not built or sent again — and [`Retained::sync`]
//! publishes what changed, clears (an empty retained message) what is no longer wanted,
//! and remembers what failed: a full request queue, content over the size limit, a secret
//! that may not leave. Failures are retried on a timer ([`Retained::retry_at`]), not on
//! the next unrelated change, and everything is sent again after a reconnect
//! ([`Retained::reconnected`]: a restarted broker may have lost its retained messages).
//!
//! **Invariant:** a node's secrets never leave in clear where the node has credentials:
//! [`Payload::Secret`] is sealed here, with the key from [`Keys`], for the node the topic
//! names; when there is no usable key it is withheld, with the reason in [`Retained::problems`].

use crate::auth::Sealing;
use rabble_shared::topic::{Publisher as By, Topic};
use rabble_shared::{NodeId, msg};
use rumqttc::{AsyncClient, QoS};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where the sealing keys come from (the hub: its `Authenticator`, the one reader of
/// credentials.json).
pub trait Keys: Send + Sync + 'static {
    /// Re-reads what changed (blocking IO: called on a blocking thread).
    fn refresh(&self);
    /// How content for `node` alone may leave (no IO).
    fn sealing(&self, node: &NodeId) -> Sealing;
}

impl Keys for crate::auth::Authenticator {
    fn refresh(&self) {
        if let Err(e) = crate::auth::Authenticator::refresh(self) {
            tracing::warn!(error = %e, "credentials file unreadable; secrets go only to nodes it had keys for");
        }
    }
    fn sealing(&self, node: &NodeId) -> Sealing {
        crate::auth::Authenticator::sealing(self, node)
    }
}

/// What a topic carries.
pub enum Payload {
    /// Whoever may read the topic may read this (the topic policy says who).
    Open(Vec<u8>),
    /// Only the node the topic names may read this.
    Secret(Secret),
}

/// A secret for the node a topic names: `clear` is sealed with the node's key (the topic
/// as associated data), and `wrap` makes the wire payload around the sealed text (base64),
/// or around nothing (`None`) when the node has no credentials at all and gets it in clear.
pub struct Secret {
    pub clear: Vec<u8>,
    pub wrap: Box<dyn FnOnce(Option<String>) -> Vec<u8> + Send>,
}

/// What one topic should hold.
pub enum Want<F> {
    /// This content, built by `make` only if `fingerprint` differs from what was sent.
    Publish { fingerprint: u64, make: F },
    /// Whatever it holds now: neither sent nor cleared (content held back, or not ready).
    Keep,
}

/// Why a topic does not hold what was wanted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("{bytes} bytes, over the limit of {limit}")]
    TooLarge { bytes: usize, limit: usize },
    #[error("withheld: {0}")]
    Withheld(String),
    #[error("the MQTT client's queue is full")]
    Queue,
    #[error("{0}")]
    Seal(String),
}

/// Not sent yet: sent again on a reconnect or a retry.
const UNSENT: u64 = 0;
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// One task's retained topics.
pub struct Retained {
    client: AsyncClient,
    keys: Option<Arc<dyn Keys>>,
    limit: usize,
    /// What the broker holds, as far as we know: topic → fingerprint (`UNSENT`: nothing
    /// we know of, but the name is kept so a topic no longer wanted is still cleared).
    sent: BTreeMap<String, u64>,
    problems: BTreeMap<String, PublishError>,
    retry: Option<(Instant, Duration)>,
    /// Under this prefix, topics that are not Rabble's but the hub keeps for another
    /// program (Home Assistant's discovery): QoS 1, open payloads.
    foreign: Option<String>,
}

impl Retained {
    /// Topics with open payloads only, each at most `limit` bytes.
    pub fn new(client: AsyncClient, limit: usize) -> Retained {
        Retained {
            client,
            keys: None,
            limit,
            sent: BTreeMap::new(),
            problems: BTreeMap::new(),
            retry: None,
            foreign: None,
        }
    }

    /// Topics under `prefix` that are another program's (Home Assistant's discovery prefix).
    pub fn foreign(client: AsyncClient, limit: usize, prefix: &str) -> Retained {
        Retained { foreign: Some(format!("{prefix}/")), ..Retained::new(client, limit) }
    }

    /// Topics that may carry secrets, sealed with these keys.
    pub fn with_keys(client: AsyncClient, limit: usize, keys: Arc<dyn Keys>) -> Retained {
        Retained { keys: Some(keys), ..Retained::new(client, limit) }
    }

    /// Makes the topics hold what `want` says: publishes what changed, clears every topic
    /// it sent before that `want` does not name.
    pub async fn sync<F: FnOnce() -> Payload>(&mut self, want: impl IntoIterator<Item = (String, Want<F>)>) {
        // Collected first: the caller's iterator may borrow what its task holds, and this
        // future awaits below (the keys' refresh), so it must not keep the iterator alive.
        let want: Vec<(String, Want<F>)> = want.into_iter().collect();
        let mut named: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        let mut failed = false;
        let mut refreshed = false;
        for (topic, w) in want {
            named.insert(topic.clone());
            let Want::Publish { fingerprint, make } = w else { continue };
            let fingerprint = fingerprint.max(UNSENT + 1);
            if self.sent.get(&topic) == Some(&fingerprint) {
                continue;
            }
            let payload = make();
            // The keys are read again before the first secret a sync seals, and only then
            // (a blocking task on every sync grew the runtime's blocking pool for nothing).
            if let (Payload::Secret(_), Some(keys), false) = (&payload, &self.keys, refreshed) {
                let keys = keys.clone();
                let _ = tokio::task::spawn_blocking(move || keys.refresh()).await;
                refreshed = true;
            }
            let outcome = self.payload(&topic, payload).and_then(|p| self.publish(&topic, p));
            failed |= self.record(&topic, fingerprint, outcome);
        }
        let gone: Vec<String> = self.sent.keys().filter(|t| !named.contains(*t)).cloned().collect();
        for topic in gone {
            match self.publish(&topic, Vec::new()) {
                Ok(()) => {
                    self.sent.remove(&topic);
                }
                Err(_) => failed = true,
            }
        }
        self.problems.retain(|t, _| named.contains(t));
        self.retry = match (failed, self.retry) {
            (false, _) => None,
            (true, None) => Some((Instant::now() + FIRST_RETRY, FIRST_RETRY)),
            (true, Some((at, _))) if at > Instant::now() => self.retry,
            (true, Some((_, last))) => {
                let next = (last * 2).min(MAX_RETRY);
                Some((Instant::now() + next, next))
            }
        };
    }

    /// When `sync` should run again to retry what failed (even if nothing changed).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry.map(|(at, _)| at)
    }

    /// A reconnect: everything is sent again at the next `sync`.
    pub fn reconnected(&mut self) {
        self.sent.values_mut().for_each(|f| *f = UNSENT);
    }

    /// The fingerprint of what the broker holds on this topic, if we sent it since the
    /// last reconnect.
    pub fn held(&self, topic: &str) -> Option<u64> {
        self.sent.get(topic).copied().filter(|f| *f != UNSENT)
    }

    /// Whether the broker holds content of this fingerprint on `topic` (sent since the
    /// last reconnect): a `sync` with it would send nothing.
    pub fn holds(&self, topic: &str, fingerprint: u64) -> bool {
        self.held(topic) == Some(fingerprint.max(UNSENT + 1))
    }

    /// The topics whose wanted content is not there, and why.
    pub fn problems(&self) -> &BTreeMap<String, PublishError> {
        &self.problems
    }

    /// Turns a payload into bytes for the wire: an open one as it is, a secret sealed for
    /// the node the topic names (or withheld).
    fn payload(&self, topic: &str, p: Payload) -> Result<Vec<u8>, PublishError> {
        let bytes = match p {
            Payload::Open(b) => b,
            Payload::Secret(s) => {
                let node = Topic::parse(topic).ok().and_then(|t| t.node().cloned());
                let (Some(node), Some(keys)) = (node, &self.keys) else {
                    return Err(PublishError::Withheld(format!("{topic} names no node, or this task has no keys")));
                };
                match keys.sealing(&node) {
                    Sealing::Sealed(key) => {
                        let sealed = rabble_shared::support::seal::seal_b64(&key, topic, &s.clear)
                            .map_err(|e| PublishError::Seal(e.to_string()))?;
                        (s.wrap)(Some(sealed))
                    }
                    Sealing::Clear => (s.wrap)(None),
                    Sealing::Withheld(why) => return Err(PublishError::Withheld(why)),
                }
            }
        };
        if bytes.len() > self.limit {
            return Err(PublishError::TooLarge { bytes: bytes.len(), limit: self.limit });
        }
        Ok(bytes)
    }

    fn publish(&self, topic: &str, payload: Vec<u8>) -> Result<(), PublishError> {
        let policy = rabble_shared::topic::policy::kind_of(topic).map(|k| k.policy());
        let foreign = self.foreign.as_ref().is_some_and(|p| topic.starts_with(p.as_str()));
        debug_assert!(
            foreign || policy.is_some_and(|p| p.retained && p.publisher == By::Hub),
            "{topic} is not the hub's to retain"
        );
        let qos = if policy.is_some_and(|p| p.qos == 0) { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        self.client.try_publish(topic, qos, true, payload).map_err(|_| PublishError::Queue)
    }

    /// Keeps the outcome; says whether it is worth a retry.
    fn record(&mut self, topic: &str, fingerprint: u64, outcome: Result<(), PublishError>) -> bool {
        match outcome {
            Ok(()) => {
                tracing::debug!(topic, "published");
                self.sent.insert(topic.to_owned(), fingerprint);
                if self.problems.remove(topic).is_some() {
                    tracing::info!(topic, "published after all");
                }
                false
            }
            Err(e) => {
                if self.problems.get(topic) != Some(&e) {
                    tracing::warn!(topic, "not published: {e}");
                }
                let retry = !matches!(e, PublishError::TooLarge { .. });
                self.problems.insert(topic.to_owned(), e);
                retry
            }
        }
    }
}

/// A fingerprint of content (or of what it is made from) for [`Want::Publish`].
pub fn fingerprint(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(bytes)
}

/// Sleeps until `at` (a [`Retained::retry_at`]), forever when there is none: a branch of a
/// task's `select!`.
pub async fn retry(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A payload that is a wire message, open to the topic's readers.
pub fn open<T: msg::Payload>(m: &T) -> Payload {
    Payload::Open(msg::encode(m))
}

#[cfg(test)]
#[path = "retained_tests.rs"]
mod tests;
