//! ACME on the hub, for the lanes' `tls.certresolver` routers: certificates from Let's
//! Encrypt (or any ACME CA) by DNS-01 through Cloudflare, obtained once here and handed
//! to every node that serves the lane over TLS. `plan` is the pure core (what is wanted,
//! when to renew, a certificate's dates), `issue` one order, `cloudflare` the DNS API,
//! `store` the sealed account and certificates, `deliver` each node's bundle; [`Acme`]
//! is the task ("acme") that runs them.

pub mod cloudflare;
pub mod config;
pub mod issue;
pub mod store;
pub use rabble_core::acme::{deliver, plan};

use crate::catalog::Catalog;
use crate::retained::{Payload, Retained, Secret, Want};
use crate::routes::Tables;
use config::Resolver;
use plan::{CertKey, Wanted};
use rabble_shared::assign::MAX_ASSIGNMENTS;
use rabble_shared::topic;
use rumqttc::AsyncClient;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How often renewals are looked at when nothing else happens.
const CHECK_EVERY: Duration = Duration::from_secs(3600);
/// A failed order is tried again after this, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);

/// What the API shows (`GET /api/v1/certs`): never a key.
pub use rabble_shared::api::{CertStatus, CertsView as Status};

/// A failed order: why, and when to try again.
struct Failure {
    error: String,
    retry_at: u64,
    backoff: Duration,
}

/// The task.
pub struct Acme {
    pub resolvers: Vec<Resolver>,
    pub data_dir: PathBuf,
    /// The data dir's sealing key (the store is sealed with it).
    pub seal: Arc<rabble_shared::support::seal::SealKey>,
    pub tables: watch::Receiver<Tables>,
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub connects: watch::Receiver<u64>,
    pub status: watch::Sender<Status>,
    /// The nodes' keys: certificates are sealed for their node (or withheld).
    pub keys: Arc<dyn crate::retained::Keys>,
}

fn now() -> u64 {
    rabble_shared::support::clock::now_ms() / 1000
}

impl Acme {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), String> {
        let mut store = store::Store::open(&self.data_dir, self.seal.clone()).map_err(|e| e.to_string())?;
        let mut accounts: BTreeMap<String, instant_acme::Account> = BTreeMap::new();
        let mut failures: BTreeMap<CertKey, Failure> = BTreeMap::new();
        let mut out = Retained::with_keys(self.client.clone(), MAX_ASSIGNMENTS, self.keys.clone());
        loop {
            let tables = self.tables.borrow_and_update().clone();
            let mut problems = Vec::new();
            let wanted = plan::wanted(&tables, &mut problems);
            let t = now();
            // Orders, one at a time (each may take a minute: the DNS record must show).
            for key in wanted.keys() {
                let Some(r) = self.resolvers.iter().find(|r| r.name == key.resolver) else { continue };
                let due = store.cert(key).is_none_or(|c| t >= plan::renew_at(c.not_before, c.not_after));
                if !due || failures.get(key).is_some_and(|f| t < f.retry_at) {
                    continue;
                }
                tracing::info!(resolver = %r.name, domains = ?key.domains, "ordering a certificate");
                let outcome = tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    o = self.order(r, &mut store, &mut accounts, key) => o,
                };
                match outcome {
                    Ok(c) => {
                        tracing::info!(resolver = %r.name, domains = ?key.domains, not_after = c.not_after, "certificate issued");
                        failures.remove(key);
                        if let Err(e) = store.put(c) {
                            tracing::error!("the certificate could not be kept: {e}");
                        }
                    }
                    Err(e) => {
                        let backoff = failures.get(key).map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
                        tracing::warn!(resolver = %r.name, domains = ?key.domains, retry_in = ?backoff, "certificate not issued: {e}");
                        failures
                            .insert(key.clone(), Failure { error: e, retry_at: now() + backoff.as_secs(), backoff });
                    }
                }
            }
            for key in wanted.keys().filter(|k| !self.resolvers.iter().any(|r| r.name == k.resolver)) {
                problems.push(format!(
                    "{:?} asks for certresolver {:?}, which hub.toml does not define ([[resolver]])",
                    key.domains, key.resolver
                ));
            }
            failures.retain(|k, _| wanted.contains_key(k));
            if let Err(e) = store.prune(&wanted, now()) {
                tracing::warn!("the ACME store could not be pruned: {e}");
            }
            let catalog = self.snapshot.borrow_and_update().clone();
            self.deliver(&catalog, &wanted, &store, &mut out).await;
            problems.extend(out.problems().iter().map(|(t, e)| format!("{t}: {e}")));
            self.publish_status(&wanted, &store, &failures, problems);
            let next_retry = failures.values().map(|f| f.retry_at.saturating_sub(now())).min();
            let wait = next_retry.map_or(CHECK_EVERY, |s| Duration::from_secs(s.max(1)).min(CHECK_EVERY));
            let retry = out.retry_at();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = self.tables.changed() => if r.is_err() { return Ok(()) },
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                r = self.connects.changed() => {
                    if r.is_err() { return Ok(()) }
                    out.reconnected();
                }
                _ = tokio::time::sleep(wait) => {}
                _ = crate::retained::retry(retry) => {}
            }
        }
    }

    async fn order(
        &self,
        r: &Resolver,
        store: &mut store::Store,
        accounts: &mut BTreeMap<String, instant_acme::Account>,
        key: &CertKey,
    ) -> Result<store::Stored, String> {
        let id = format!("{} {}", r.name, r.directory);
        if !accounts.contains_key(&id) {
            let builder = match &r.ca_root {
                Some(root) => instant_acme::Account::builder_with_root(root),
                None => instant_acme::Account::builder(),
            }
            .map_err(|e| format!("ACME client: {e}"))?;
            let account = match store.account(&id) {
                Some(creds) => {
                    let creds =
                        serde_json::from_value(creds.clone()).map_err(|e| format!("stored ACME account: {e}"))?;
                    builder.from_credentials(creds).await.map_err(|e| format!("ACME directory {}: {e}", r.directory))?
                }
                None => {
                    let contact: Vec<String> = r.email.iter().map(|e| format!("mailto:{e}")).collect();
                    let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                    let new = instant_acme::NewAccount {
                        contact: &contact,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    };
                    let (account, creds) = builder
                        .create(&new, r.directory.clone(), None)
                        .await
                        .map_err(|e| format!("ACME account at {}: {e}", r.directory))?;
                    let creds = serde_json::to_value(&creds).map_err(|e| e.to_string())?;
                    store.set_account(&id, creds).map_err(|e| e.to_string())?;
                    tracing::info!(resolver = %r.name, directory = %r.directory, "ACME account created");
                    account
                }
            };
            accounts.insert(id.clone(), account);
        }
        let account = &accounts[&id];
        let tls = rabble_shared::support::tls::verifying().map_err(|e| format!("Cloudflare API: {e}"))?;
        let dns = cloudflare::Cloudflare::new(&r.cloudflare_api, r.token.clone(), (*tls).clone());
        issue::issue(r, account, &dns, key).await.map_err(|e| e.to_string())
    }

    fn publish_status(
        &self,
        wanted: &Wanted,
        store: &store::Store,
        failures: &BTreeMap<CertKey, Failure>,
        problems: Vec<String>,
    ) {
        let certs = wanted
            .iter()
            .map(|(k, lanes)| {
                let held = store.cert(k);
                let f = failures.get(k);
                CertStatus {
                    resolver: k.resolver.clone(),
                    domains: k.domains.clone(),
                    lanes: lanes.iter().cloned().collect(),
                    not_after: held.map(|c| c.not_after),
                    renew_at: held.map(|c| plan::renew_at(c.not_before, c.not_after)),
                    error: f.map(|f| f.error.clone()),
                    retry_at: f.map(|f| f.retry_at),
                }
            })
            .collect();
        let resolvers = self.resolvers.iter().map(|r| r.name.clone()).collect();
        self.status.send_replace(Status { resolvers, certs, problems });
    }

    /// Keeps each node's bundles on its topics (sealed for it, or withheld: the reason
    /// goes to `/api/v1/certs`), and clears those no longer wanted.
    async fn deliver(&self, catalog: &Catalog, wanted: &Wanted, store: &store::Store, out: &mut Retained) {
        let bundles = deliver::bundles(catalog, wanted, store.certs());
        let want = bundles.into_iter().map(|((node, lane), bundle)| {
            let t = topic::certs(&node, &lane);
            let clear = bundle.to_bytes();
            let fingerprint = crate::retained::fingerprint(&clear);
            let make = move || {
                tracing::info!(node = %node, lane = %lane, certs = bundle.certs.len(), "certificates bundled for the node");
                Payload::Secret(Secret { clear, wrap: Box::new(move |sealed| deliver::wrap(bundle, sealed)) })
            };
            (t, Want::Publish { fingerprint, make })
        });
        out.sync(want).await;
    }
}
