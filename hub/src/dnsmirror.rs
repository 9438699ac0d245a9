//! The DNS zone handed to every node (`rabble_shared::dns`), so each agent answers
//! `<service>.service.<domain>` on its own host and keeps answering while the hub is
//! gone. After each commit that changed the zone (the DNS server's zone is replaced
//! before the commit is visible: [`crate::dns::server::DnsServer`]), the task keeps the
//! retained topics under `rabble/hub/dns/` through [`crate::retained`]: one per service
//! and node, re-sent only when its records changed (the catalog index they carry aside),
//! and the zone's settings with the names it holds. Pure core:
//! [`rabble_core::dns::publish`].

use crate::dns::server::DnsServer;
use crate::retained::{self, Payload, Retained, Want, fingerprint};
use rabble_core::catalog::Catalog;
use rabble_core::dns::publish::published;
use rabble_shared::{msg, topic};
use rumqttc::AsyncClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Commits closer together than this are published together (a burst of check flips
/// or a node's re-publish is one update of the zone, not dozens).
const COALESCE: Duration = Duration::from_millis(100);
/// At most this many changed topics are sent per round, a round every [`PACE`]: a new
/// zone of 1,000 services reaches the broker in half a second without queueing the
/// hub's own session behind it (its pings went unanswered when it all went at once).
const BURST: usize = 200;
const PACE: Duration = Duration::from_millis(100);

pub struct DnsMirror {
    pub dns: Arc<DnsServer>,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub connects: watch::Receiver<u64>,
}

/// A retained message whose fingerprint leaves out `index` (re-sent when the records
/// change, not at every commit).
fn want<T: msg::Payload + Send + 'static>(v: T, index_free: &[u8]) -> (u64, Want<Make>) {
    let fp = fingerprint(index_free);
    (fp, Want::Publish { fingerprint: fp, make: Box::new(move || retained::open(&v)) })
}

type Make = Box<dyn FnOnce() -> Payload + Send>;

impl DnsMirror {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut out = Retained::new(self.client.clone(), msg::MAX_PAYLOAD);
        let mut last: Option<Arc<rabble_core::dns::Zone>> = None;
        // Some changed topics are still to send (this many rounds so far).
        let mut pending = false;
        loop {
            let zone = self.dns.zone();
            if last.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &zone)) || out.retry_at().is_some() || pending {
                let p = published(&zone, self.dns.settings());
                let mut meta_free = p.meta.clone();
                meta_free.index = 0;
                let meta = (topic::DNS_ZONE.to_owned(), want(p.meta, &msg::encode(&meta_free)));
                let services = p.services.into_iter().map(|(name, s)| {
                    let free = serde_json::to_vec(&s.targets).unwrap_or_default();
                    (topic::dns_service(&name), want(s, &free))
                });
                let nodes = p.nodes.into_iter().map(|(name, n)| {
                    let free = serde_json::to_vec(&(&n.ips, &n.txt)).unwrap_or_default();
                    (topic::dns_node(&name), want(n, &free))
                });
                // Records first, then the settings that list them; at most BURST sent.
                let mut budget = BURST;
                pending = false;
                let paced: Vec<(String, Want<Make>)> = services
                    .chain(nodes)
                    .chain([meta])
                    .map(|(t, (fp, w))| {
                        if out.holds(&t, fp) {
                            (t, w)
                        } else if budget > 0 {
                            budget -= 1;
                            (t, w)
                        } else {
                            pending = true;
                            (t, Want::Keep)
                        }
                    })
                    .collect();
                out.sync(paced).await;
                last = Some(zone);
            }
            if pending {
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(PACE) => continue,
                }
            }
            let retry = out.retry_at();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.snapshot.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    tokio::time::sleep(COALESCE).await;
                    self.snapshot.borrow_and_update();
                }
                r = self.connects.changed() => {
                    if r.is_err() {
                        return Ok(());
                    }
                    out.reconnected();
                    last = None;
                }
                _ = retained::retry(retry) => {}
            }
        }
    }
}
