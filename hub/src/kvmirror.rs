//! KV keys the operator marked public (`[kv] public = ["public/"]` in hub.toml, never
//! by default: values may be secrets), mirrored retained on `rabble/kv/<key>` with the
//! raw value, so `mosquitto_sub -t 'rabble/kv/#'` (or Home Assistant) watches them. A
//! deleted key gets an empty retained message (MQTT's way to clear it). Pure core:
//! [`changes`] (the catalog's public keys against what was sent); the task does the IO.

use crate::catalog::Catalog;
use crate::catalog::kv::Kv;
use rabble_shared::topic;
use rumqttc::{AsyncClient, QoS};
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

/// What to publish: `(topic, Some(value))` for a public key that is new or changed
/// since `sent` (key → ModifyIndex), `(topic, None)` for one that is gone. Updates
/// `sent` as if every publish succeeded.
pub fn changes(kv: &Kv, public: &[String], sent: &mut BTreeMap<String, u64>) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut now: BTreeMap<String, u64> = BTreeMap::new();
    for p in public {
        for (k, e) in kv.prefix(p) {
            if now.insert(k.clone(), e.modify_index).is_some() {
                continue; // under two overlapping prefixes
            }
            if sent.get(k) != Some(&e.modify_index)
                && let Some(t) = topic_of(k)
            {
                out.push((t, Some(e.value.clone())));
            }
        }
    }
    for k in sent.keys().filter(|k| !now.contains_key(*k)) {
        if let Some(t) = topic_of(k) {
            out.push((t, None));
        }
    }
    *sent = now;
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
        let mut sent: BTreeMap<String, u64> = BTreeMap::new();
        let mut last = 0u64;
        loop {
            let catalog = self.snapshot.borrow_and_update().clone();
            if catalog.kv.index != last {
                last = catalog.kv.index;
                for (t, value) in changes(&catalog.kv, &self.public, &mut sent) {
                    let mut payload = value.unwrap_or_default();
                    if payload.len() > MAX_MIRRORED {
                        tracing::warn!(
                            topic = %t,
                            bytes = payload.len(),
                            limit = MAX_MIRRORED,
                            "a public KV value is over the MQTT limit; its topic is cleared instead"
                        );
                        payload.clear();
                    }
                    if self.client.publish(t, QoS::AtLeastOnce, true, payload).await.is_err() {
                        return Err("the MQTT client is gone");
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                r = self.connects.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    // Send every key again; keep the names so a key deleted while the
                    // broker was away is still cleared.
                    sent.values_mut().for_each(|i| *i = 0);
                    last = 0;
                }
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
    fn only_public_keys_changed_ones_and_deletions() {
        let mut kv = Kv::default();
        set(&mut kv, "public/motd", "hi", 1);
        set(&mut kv, "secret/db", "pw", 2);
        set(&mut kv, "public/a+b", "x", 3);
        let public = vec!["public/".to_owned(), "public/m".to_owned()];
        let mut sent = BTreeMap::new();
        let first = changes(&kv, &public, &mut sent);
        assert_eq!(first, vec![("rabble/kv/public/motd".to_owned(), Some(b"hi".to_vec()))]);
        assert!(changes(&kv, &public, &mut sent).is_empty(), "nothing changed");
        set(&mut kv, "public/motd", "hi", 4); // same value, new ModifyIndex: Consul's watchers fire too
        assert_eq!(changes(&kv, &public, &mut sent).len(), 1);
        kv.apply(KvUpdate::Delete { key: "public/".into(), recurse: true, cas: None }, 5);
        assert_eq!(changes(&kv, &public, &mut sent), vec![("rabble/kv/public/motd".to_owned(), None)]);
        assert!(sent.is_empty());
    }

    #[test]
    fn prefixes_are_checked() {
        assert!(check_prefix("").unwrap_err().contains("every key"));
        assert!(check_prefix("a/#").unwrap_err().contains("'#'"));
        assert!(check_prefix("public/").is_ok());
    }
}
