//! The HTTP routing table: for each configured lane (a name and a tag prefix), the
//! routers, services and middlewares Traefik would build from the tags of healthy
//! instances. Pure core (`rabble_core::routes`, re-exported): `tags` (one instance's
//! tags) and `table` (the catalog → a table per lane). [`RouteTable`] is a writer observer like the DNS zone, so a table
//! is never older than the catalog; [`Publisher`] puts each lane's table, when it
//! changes, retained on `rabble/hub/routes/<lane>` (nodes keep routing while the hub
//! is away).

pub use rabble_core::routes::{table, tags};

use crate::catalog::Catalog;
use crate::catalog::writer::Observer;
use crate::retained::{self, Retained, Want};
use rabble_shared::routes::{LaneTable, MAX_TABLE};
use rabble_shared::topic;
use rumqttc::AsyncClient;
use std::sync::Arc;
use table::Lane;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Every lane's current table.
pub type Tables = Arc<Vec<LaneTable>>;

/// The observer: rebuilds the tables at every commit; a table whose content changed
/// takes the commit's index (an unchanged one keeps its index, so watchers — the
/// publisher, blocking API readers — wake only on real changes).
pub struct RouteTable {
    lanes: Vec<Lane>,
    domain: String,
    tables: watch::Sender<Tables>,
}

impl RouteTable {
    pub fn new(lanes: Vec<Lane>, domain: String, catalog: &Catalog) -> (Arc<RouteTable>, watch::Receiver<Tables>) {
        let (tx, rx) = watch::channel(Arc::new(table::build(catalog, &lanes, &domain)));
        (Arc::new(RouteTable { lanes, domain, tables: tx }), rx)
    }
}

/// Whether two tables say the same (their index aside).
fn same(a: &LaneTable, b: &LaneTable) -> bool {
    a.routers == b.routers && a.services == b.services && a.middlewares == b.middlewares && a.problems == b.problems
}

impl Observer for RouteTable {
    fn committed(&self, catalog: &Arc<Catalog>) {
        let mut fresh = table::build(catalog, &self.lanes, &self.domain);
        self.tables.send_if_modified(|current| {
            let mut changed = false;
            for (new, old) in fresh.iter_mut().zip(current.iter()) {
                if same(new, old) {
                    new.index = old.index;
                } else {
                    changed = true;
                }
            }
            if changed {
                *current = Arc::new(std::mem::take(&mut fresh));
            }
            changed
        });
    }
}

impl std::fmt::Debug for RouteTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouteTable").field("lanes", &self.lanes).finish()
    }
}

/// The task that publishes each lane's table when it changes, and everything again
/// after a reconnect (a restarted broker may have lost its retained messages).
pub struct Publisher {
    pub tables: watch::Receiver<Tables>,
    pub client: AsyncClient,
    pub connects: watch::Receiver<u64>,
}

impl Publisher {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut out = Retained::new(self.client.clone(), MAX_TABLE);
        loop {
            let tables = self.tables.borrow_and_update().clone();
            // A table keeps its index until its content changes: the index is the fingerprint.
            let want = tables.iter().map(|t| {
                let fingerprint = retained::fingerprint(format!("{} {}", t.lane, t.index).as_bytes());
                let make = || {
                    tracing::info!(lane = %t.lane, routers = t.routers.len(), index = t.index, "the lane's table changed");
                    retained::open(t)
                };
                (topic::routes(&t.lane), Want::Publish { fingerprint, make })
            });
            out.sync(want).await;
            let retry = out.retry_at();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.tables.changed() => if r.is_err() { return Ok(()) },
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
