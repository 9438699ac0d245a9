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
use crate::template::source::{CatalogSource, GRANT_META};
use crate::template::{RenderError, Template};
use rabble_shared::alloc::ClientStatus;
use rabble_shared::assign::{Assignment, Signed};
use rabble_shared::job::{Task, TemplateSpec, env};
use rabble_shared::rendered::{AllocTemplates, MAX_RENDERED, RenderedFile, RenderedMessage};
use rabble_shared::support::seal::SealKey;
use rabble_shared::{AllocId, NodeId, msg, topic};
use rumqttc::AsyncClient;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The task's environment as the node will set it (`NOMAD_PORT_http`, `NOMAD_TASK_DIR`,
/// its own `env`): the agent's own rules (`job::env`) over the node's facts.
fn task_env(c: &Catalog, node: &NodeId, a: &Assignment, t: &Task) -> BTreeMap<String, String> {
    let Some(facts) = c.nodes.get(node).and_then(|n| n.facts.as_ref()) else { return t.env.clone() };
    let alloc_dir = std::path::Path::new(&facts.alloc_dir).join(a.alloc.as_str());
    let dirs = env::Dirs { alloc: &alloc_dir.join("alloc"), task: &alloc_dir.join(&t.name) };
    env::build(a, t, node, facts, &dirs)
}

/// One allocation's files, by task; or why there are none yet.
pub fn render_alloc(
    c: &Catalog,
    seal: &SealKey,
    node: &NodeId,
    a: &Assignment,
) -> Result<BTreeMap<String, Vec<RenderedFile>>, RenderError> {
    let job = c.work.jobs.get(&a.job_id);
    let job_meta = job.and_then(|j| j.spec.meta.get(GRANT_META));
    let group_meta =
        job.and_then(|j| j.spec.groups.iter().find(|g| g.name == a.group)).and_then(|g| g.meta.get(GRANT_META));
    let mut out = BTreeMap::new();
    let mut total = 0usize;
    for t in a.tasks.iter().filter(|t| !t.templates.is_empty()) {
        let grants: Vec<&str> =
            [job_meta, group_meta, t.meta.get(GRANT_META)].into_iter().flatten().map(String::as_str).collect();
        let mut src = CatalogSource::new(c, seal, &a.job_id, &a.group, &t.name, &grants);
        src.node = Some(node.clone());
        src.env = task_env(c, node, a, t);
        let mut files = Vec::new();
        for spec in &t.templates {
            let contents = render_one(spec, &src)?;
            total += contents.len();
            if total > MAX_RENDERED {
                return Err(fail(spec, format!("task {:?}'s templates render to over {MAX_RENDERED} bytes", t.name)));
            }
            files.push(RenderedFile {
                destination: spec.destination.clone(),
                contents,
                env: spec.env,
                perms: u32::from_str_radix(&spec.perms, 8).unwrap_or(0o644),
                uid: spec.uid,
                gid: spec.gid,
                change_mode: spec.change_mode,
                change_signal: spec.change_signal.clone(),
                splay_ms: spec.splay_ms,
            });
        }
        out.insert(t.name.clone(), files);
    }
    Ok(out)
}

fn fail(spec: &TemplateSpec, reason: String) -> RenderError {
    RenderError::Failed(crate::template::TemplateError { template: spec.destination.clone(), line: spec.line, reason })
}

fn render_one(spec: &TemplateSpec, src: &CatalogSource<'_>) -> Result<String, RenderError> {
    let mut t = Template::parse(&spec.destination, &spec.data, &spec.left_delimiter, &spec.right_delimiter)
        .map_err(RenderError::Failed)?;
    t.strict = spec.error_on_missing_key;
    t.render(src).map_err(|e| match e {
        // Lines in the job file, not in the template text.
        RenderError::Failed(mut te) => {
            te.line = spec.line + te.line.saturating_sub(1);
            RenderError::Failed(te)
        }
        missing => missing,
    })
}

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
                        tracing::info!(alloc = %body.alloc, node = %node, index, "templates rendered and sent");
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
                if let Ok(rabble_shared::topic::Topic::Templates(_, alloc)) = rabble_shared::topic::Topic::parse(t) {
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

/// The longest `wait` (min, max) among an allocation's templates, if any sets one.
fn quiescence(a: &Assignment) -> Option<(std::time::Duration, std::time::Duration)> {
    let ms = |x: u64| std::time::Duration::from_millis(x);
    a.tasks.iter().flat_map(|t| &t.templates).filter_map(|t| t.wait_ms).map(|(min, max)| (ms(min), ms(max))).max()
}

/// When a held re-render may go: `min` after the last change, but no later than `max`
/// after the first.
pub fn not_before(
    first: tokio::time::Instant,
    last: tokio::time::Instant,
    (min, max): (std::time::Duration, std::time::Duration),
) -> tokio::time::Instant {
    (last + min).min(first + max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn quiet_waits_min_after_the_last_change_and_at_most_max_after_the_first() {
        let t0 = tokio::time::Instant::now();
        let s = Duration::from_secs;
        assert_eq!(not_before(t0, t0, (s(2), s(10))), t0 + s(2));
        assert_eq!(not_before(t0, t0 + s(5), (s(2), s(10))), t0 + s(7));
        assert_eq!(not_before(t0, t0 + s(9), (s(2), s(10))), t0 + s(10), "max bounds the wait");
        assert_eq!(not_before(t0, t0, (s(3), s(1))), t0 + s(3), "max below min acts as min");
    }
}
