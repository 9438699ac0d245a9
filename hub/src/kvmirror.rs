//! KV keys the operator marked public (`[kv] public = ["public/"]` in hub.toml, never
//! by default: values may be secrets), mirrored retained on `rabble/kv/<key>` with the
//! raw value, so `mosquitto_sub -t 'rabble/kv/#'` (or Home Assistant) watches them. A
//! deleted key gets an empty retained message (MQTT's way to clear it). Pure core:
//! [`mirrored`] (the catalog's public keys); the task keeps the topics through
//! [`crate::retained`].

use crate::catalog::Catalog;
use crate::catalog::kv::{Entry, Kv};
use crate::retained::{self, Payload, Retained, Want};
use rabble_shared::topic;
use rumqttc::AsyncClient;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The largest value mirrored (the broker's limit on the hub's messages); a larger
/// one clears its topic rather than leave a stale value there.
pub const MAX_MIRRORED: usize = rabble_shared::assign::MAX_ASSIGNMENTS;

/// Why a public prefix is refused (config time).
pub fn check_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("an empty prefix would publish every key (values may be secrets): name the prefixes".into());
    }
    if let Some(c) = p.chars().find(|c| matches!(c, '+' | '#') || c.is_control()) {
        return Err(format!("prefix {p:?}: {c:?} cannot be in an MQTT topic"));
    }
    Ok(())
}

/// A key's topic, or `None` when the key cannot be a topic name (MQTT wildcards).
fn topic_of(key: &str) -> Option<String> {
    (!key.contains(['+', '#', '\0'])).then(|| topic::kv(key))
}

/// The mirrored topics: every key under a public prefix that can be a topic name, with
/// its entry (a new ModifyIndex publishes again, even with the same value: Consul's
/// watchers fire then too).
pub fn mirrored<'a>(kv: &'a Kv, public: &'a [String]) -> BTreeMap<String, &'a Entry> {
    let mut out = BTreeMap::new();
    for p in public {
        for (k, e) in kv.prefix(p) {
            if let Some(t) = topic_of(k) {
                out.insert(t, &**e);
            }
        }
    }
    out
}

/// The task: publishes after every commit that changed a public key, and everything
/// again after a reconnect (a restarted broker may have lost its retained messages).
pub struct KvMirror {
    pub public: Vec<String>,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub connects: watch::Receiver<u64>,
}

impl KvMirror {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut out = Retained::new(self.client.clone(), MAX_MIRRORED);
        loop {
            let catalog = self.snapshot.borrow_and_update().clone();
            let want = mirrored(&catalog.kv, &self.public).into_iter().map(|(t, e)| {
                let fingerprint = e.modify_index;
                let name = t.clone();
                let make = move || {
                    if e.value.len() > MAX_MIRRORED {
                        tracing::warn!(
                            topic = %name,
                            bytes = e.value.len(),
                            limit = MAX_MIRRORED,
                            "a public KV value is over the MQTT limit; its topic is cleared instead"
                        );
                        return Payload::Open(Vec::new());
                    }
                    Payload::Open(e.value.clone())
                };
                (t, Want::Publish { fingerprint, make })
            });
            out.sync(want).await;
            let retry = out.retry_at();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                r = self.connects.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    out.reconnected();
                }
                _ = retained::retry(retry) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::kv::KvUpdate;

    fn set(kv: &mut Kv, key: &str, v: &str, at: u64) {
        kv.apply(KvUpdate::Set { key: key.into(), value: v.into(), flags: 0, cas: None }, at);
    }

    #[test]
    fn only_public_keys_that_can_be_topics_with_their_modify_index() {
        let mut kv = Kv::default();
        set(&mut kv, "public/motd", "hi", 1);
        set(&mut kv, "secret/db", "pw", 2);
        set(&mut kv, "public/a+b", "x", 3);
        let public = vec!["public/".to_owned(), "public/m".to_owned()];
        let m: Vec<(String, u64, Vec<u8>)> =
            mirrored(&kv, &public).into_iter().map(|(t, e)| (t, e.modify_index, e.value.clone())).collect();
        assert_eq!(m, [("rabble/kv/public/motd".to_owned(), 1, b"hi".to_vec())], "once, under two prefixes");
        set(&mut kv, "public/motd", "hi", 4);
        assert_eq!(mirrored(&kv, &public)["rabble/kv/public/motd"].modify_index, 4, "same value, new index");
        kv.apply(KvUpdate::Delete { key: "public/".into(), recurse: true, cas: None }, 5);
        assert!(mirrored(&kv, &public).is_empty());
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("").unwrap_err().contains("every key"));
        assert!(check_prefix("a/#").unwrap_err().contains("'#'"));
        assert!(check_prefix("public/").is_ok());
    }
}
