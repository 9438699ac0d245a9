//! The `templates` task: renders every running allocation's `template` blocks where
//! the data is, after every commit, and hands each allocation's files to its node
//! retained on `rabble/node/<node>/templates/<alloc>` — signed with the assignment key,
//! sealed for the node (files may hold secrets) — only when they changed. A template
//! waiting for data (a key not there yet) holds its allocation's tasks on the node, as
//! Nomad does; one that fails (`error_on_missing_key`, a function's error, too big)
//! fails the allocation with the template's name, line and reason.

use crate::catalog::writer::{Done, Input};
use crate::catalog::{AllocUpdate, Catalog, Update};
use crate::dispatch::sign::SigningKey;
use crate::retained::{self, Keys, Payload, Retained, Secret, Want};
use crate::template::RenderError;
use crate::template::alloc::{not_before, quiescence, render_alloc};
use rabble_shared::alloc::ClientStatus;
use rabble_shared::assign::Signed;
use rabble_shared::rendered::{AllocTemplates, RenderedMessage};
use rabble_shared::support::seal::SealKey;
use rabble_shared::{AllocId, NodeId, msg, topic};
use rumqttc::AsyncClient;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The task.
pub struct Renderer {
    pub snapshot: watch::Receiver<Arc<Catalog>>,
    pub client: AsyncClient,
    pub key: Arc<SigningKey>,
    pub seal: Arc<SealKey>,
    /// The nodes' keys: rendered files are sealed for their node (or withheld).
    pub keys: Arc<dyn Keys>,
    pub connects: watch::Receiver<u64>,
    pub writer: crate::WriterTx,
    /// What each waiting allocation's templates wait for (`rabble alloc status`).
    pub waits: watch::Sender<Waits>,
}

/// Allocations whose templates wait for data (or whose delivery is withheld), and what for.
pub type Waits = Arc<BTreeMap<AllocId, String>>;

impl Renderer {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut out =
            Retained::with_keys(self.client.clone(), rabble_shared::assign::MAX_ASSIGNMENTS, self.keys.clone());
        let mut waiting: BTreeMap<AllocId, String> = BTreeMap::new();
        let mut failed: BTreeSet<AllocId> = BTreeSet::new();
        let mut quiet: BTreeMap<(NodeId, AllocId), Quiet> = BTreeMap::new();
        loop {
            let mut next_wake: Option<tokio::time::Instant> = None;
            let c = self.snapshot.borrow_and_update().clone();
            let mut live = BTreeSet::new();
            let mut want = Vec::new();
            for node in c.nodes.keys() {
                for a in crate::dispatch::assignments(&c, node)
                    .iter()
                    .filter(|a| a.tasks.iter().any(|t| !t.templates.is_empty()))
                {
                    let key = (node.clone(), a.alloc.clone());
                    live.insert(key.clone());
                    let t = topic::templates(node, &a.alloc);
                    let tasks = match render_alloc(&c, &self.seal, node, a) {
                        Ok(tasks) => tasks,
                        Err(RenderError::Missing(what)) => {
                            if waiting.get(&a.alloc) != Some(&what) {
                                tracing::info!(alloc = %a.alloc, "templates wait for {what}");
                                waiting.insert(a.alloc.clone(), what);
                            }
                            want.push((t, Want::Keep));
                            continue;
                        }
                        Err(RenderError::Failed(e)) => {
                            want.push((t, Want::Keep));
                            if failed.insert(a.alloc.clone()) && !self.fail(&a.alloc, e).await {
                                return Ok(());
                            }
                            continue;
                        }
                    };
                    waiting.remove(&a.alloc);
                    let fingerprint = retained::fingerprint(&serde_json::to_vec(&tasks).unwrap_or_default());
                    let held = out.held(&t);
                    if held == Some(fingerprint) {
                        quiet.remove(&key);
                        want.push((t, Want::Keep));
                        continue;
                    }
                    // A re-render waits for quiet (the templates' `wait`): at least `min`
                    // since the last change, at most `max` since the first.
                    let now = tokio::time::Instant::now();
                    if let Some(w) = quiescence(a).filter(|_| held.is_some()) {
                        let q =
                            quiet.entry(key.clone()).or_insert_with(|| Quiet { first: now, last: now, fingerprint });
                        if q.fingerprint != fingerprint {
                            q.fingerprint = fingerprint;
                            q.last = now;
                        }
                        let at = not_before(q.first, q.last, w);
                        if at > now {
                            next_wake = Some(next_wake.map_or(at, |n: tokio::time::Instant| n.min(at)));
                            want.push((t, Want::Keep));
                            continue;
                        }
                    }
                    quiet.remove(&key);
                    let body = AllocTemplates { alloc: a.alloc.clone(), index: c.index, tasks };
                    let (signer, node, index) = (self.key.clone(), node.clone(), c.index);
                    let make = move || {
                        tracing::info!(alloc = %body.alloc, node = %node, index, "templates rendered for the node");
                        Payload::Secret(Secret {
                            clear: body.to_bytes(),
                            wrap: Box::new(move |sealed| wrap(&signer, body, sealed)),
                        })
                    };
                    want.push((t, Want::Publish { fingerprint, make }));
                }
            }
            out.sync(want).await;
            // Delivery withheld (a node without a usable key): `alloc status` says why.
            for (t, e) in out.problems() {
                if let Ok(topic::Topic::Templates(_, alloc)) = topic::Topic::parse(t) {
                    waiting.insert(alloc, format!("delivery to the node: {e}"));
                }
            }
            waiting.retain(|a, _| live.iter().any(|(_, x)| x == a));
            self.waits.send_if_modified(|w| {
                let changed = **w != waiting;
                if changed {
                    *w = Arc::new(waiting.clone());
                }
                changed
            });
            failed.retain(|a| c.work.allocs.contains_key(a));
            quiet.retain(|k, _| live.contains(k));
            let wake = [next_wake, out.retry_at()].into_iter().flatten().min();
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = retained::retry(wake) => {}
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                r = self.connects.changed() => {
                    if r.is_err() { return Ok(()) }
                    out.reconnected();
                }
            }
        }
    }

    /// Fails an allocation whose templates cannot render; false when the writer is gone.
    async fn fail(&self, alloc: &AllocId, e: crate::template::TemplateError) -> bool {
        tracing::warn!(alloc = %alloc, "template failed: {e}");
        let update = AllocUpdate::Client {
            status: ClientStatus::Failed,
            reason: e.to_string(),
            at_ms: rabble_shared::support::clock::now_ms(),
            node: None,
            tasks: Default::default(),
        };
        let input =
            Input { source: "hub".into(), update: Some(Update::Alloc(alloc.clone(), update)), done: Done::Nothing };
        self.writer.send(input).await.is_ok()
    }
}

/// The wire message: the rendered files sealed for the node (`sealed`), or in clear for
/// a node without credentials, signed with the assignment key.
fn wrap(key: &SigningKey, body: AllocTemplates, sealed: Option<String>) -> Vec<u8> {
    let m = match sealed {
        Some(s) => RenderedMessage { sealed: Some(s), plain: None },
        None => RenderedMessage { sealed: None, plain: Some(body) },
    };
    let body = String::from_utf8(msg::encode(&m)).unwrap_or_default();
    msg::encode(&Signed { sig: key.sign(body.as_bytes()), body })
}

/// A re-render held back by the templates' `wait`.
struct Quiet {
    first: tokio::time::Instant,
    last: tokio::time::Instant,
    fingerprint: u64,
}
