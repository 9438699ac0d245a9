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
use crate::template::source::{CatalogSource, GRANT_META};
use crate::template::{RenderError, Template};
use rabble_shared::alloc::ClientStatus;
use rabble_shared::assign::{Assignment, Signed};
use rabble_shared::job::{Task, TemplateSpec, env};
use rabble_shared::rendered::{AllocTemplates, MAX_RENDERED, RenderedFile, RenderedMessage};
use rabble_shared::support::seal::SealKey;
use rabble_shared::{AllocId, NodeId, msg, topic};
use rumqttc::{AsyncClient, QoS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
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
    pub data_dir: PathBuf,
    pub connects: watch::Receiver<u64>,
    pub writer: crate::WriterTx,
    /// What each waiting allocation's templates wait for (`rabble alloc status`).
    pub waits: watch::Sender<Waits>,
}

/// Allocations whose templates wait for data, and what for.
pub type Waits = Arc<BTreeMap<AllocId, String>>;

impl Renderer {
    pub async fn run(mut self, stop: CancellationToken) -> Result<(), &'static str> {
        let mut sent: BTreeMap<(NodeId, AllocId), Vec<u8>> = BTreeMap::new();
        let mut waiting: BTreeMap<AllocId, String> = BTreeMap::new();
        let mut failed: BTreeSet<AllocId> = BTreeSet::new();
        let mut quiet: BTreeMap<(NodeId, AllocId), Quiet> = BTreeMap::new();
        loop {
            let mut next_wake: Option<tokio::time::Instant> = None;
            let c = self.snapshot.borrow_and_update().clone();
            let mut live = BTreeSet::new();
            let mut creds: Option<crate::auth::Credentials> = None;
            for node in c.nodes.keys() {
                for a in crate::dispatch::assignments(&c, node)
                    .iter()
                    .filter(|a| a.tasks.iter().any(|t| !t.templates.is_empty()))
                {
                    let key = (node.clone(), a.alloc.clone());
                    live.insert(key.clone());
                    match render_alloc(&c, &self.seal, node, a) {
                        Ok(tasks) => {
                            waiting.remove(&a.alloc);
                            let plain = serde_json::to_vec(&tasks).unwrap_or_default();
                            if sent.get(&key) == Some(&plain) {
                                quiet.remove(&key);
                                continue;
                            }
                            // A re-render waits for quiet (the templates' `wait`): at least
                            // `min` since the last change, at most `max` since the first.
                            let now = tokio::time::Instant::now();
                            if let Some(w) = quiescence(a).filter(|_| sent.contains_key(&key)) {
                                let q = quiet.entry(key.clone()).or_insert_with(|| Quiet {
                                    first: now,
                                    last: now,
                                    plain: vec![],
                                });
                                if q.plain != plain {
                                    q.plain = plain.clone();
                                    q.last = now;
                                }
                                let at = not_before(q.first, q.last, w);
                                if at > now {
                                    next_wake = Some(next_wake.map_or(at, |n: tokio::time::Instant| n.min(at)));
                                    continue;
                                }
                            }
                            quiet.remove(&key);
                            let creds = creds.get_or_insert_with(|| {
                                crate::auth::Credentials::load(&crate::auth::Credentials::path(&self.data_dir))
                                    .unwrap_or_default()
                            });
                            let body = AllocTemplates { alloc: a.alloc.clone(), index: c.index, tasks };
                            let t = topic::templates(node, &a.alloc);
                            let Some(m) = message(&t, &body, creds.seal_key(node)) else { continue };
                            let body = String::from_utf8(msg::encode(&m)).unwrap_or_default();
                            let signed = Signed { sig: self.key.sign(body.as_bytes()), body };
                            if self.client.publish(t, QoS::AtLeastOnce, true, msg::encode(&signed)).await.is_err() {
                                return Err("the MQTT client is gone");
                            }
                            tracing::info!(alloc = %a.alloc, node = %node, index = c.index, "templates rendered and sent");
                            sent.insert(key, plain);
                        }
                        Err(RenderError::Missing(what)) => {
                            if waiting.get(&a.alloc) != Some(&what) {
                                tracing::info!(alloc = %a.alloc, "templates wait for {what}");
                                waiting.insert(a.alloc.clone(), what);
                            }
                        }
                        Err(RenderError::Failed(e)) => {
                            if failed.insert(a.alloc.clone()) {
                                tracing::warn!(alloc = %a.alloc, "template failed: {e}");
                                let update = AllocUpdate::Client {
                                    status: ClientStatus::Failed,
                                    reason: e.to_string(),
                                    at_ms: rabble_shared::support::clock::now_ms(),
                                    node: None,
                                };
                                let input = Input {
                                    source: "hub".into(),
                                    update: Some(Update::Alloc(a.alloc.clone(), update)),
                                    done: Done::Nothing,
                                };
                                if self.writer.send(input).await.is_err() {
                                    return Ok(());
                                }
                            }
                        }
                    }
                }
            }
            let gone: Vec<_> = sent.keys().filter(|k| !live.contains(*k)).cloned().collect();
            for (node, alloc) in gone {
                if self
                    .client
                    .publish(topic::templates(&node, &alloc), QoS::AtLeastOnce, true, Vec::new())
                    .await
                    .is_err()
                {
                    return Err("the MQTT client is gone");
                }
                sent.remove(&(node, alloc));
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
            let wake = async {
                match next_wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = wake => {}
                r = self.snapshot.changed() => if r.is_err() { return Ok(()) },
                r = self.connects.changed() => {
                    if r.is_err() { return Ok(()) }
                    sent.clear();
                }
            }
        }
    }
}

/// A re-render held back by the templates' `wait`.
struct Quiet {
    first: tokio::time::Instant,
    last: tokio::time::Instant,
    plain: Vec<u8>,
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

/// The message for a node: sealed with its key when it has one.
fn message(topic: &str, body: &AllocTemplates, key: Option<SealKey>) -> Option<RenderedMessage> {
    let Some(key) = key else { return Some(RenderedMessage { sealed: None, plain: Some(body.clone()) }) };
    let sealed = rabble_shared::support::seal::seal_b64(&key, topic, &body.to_bytes()).ok()?;
    Some(RenderedMessage { sealed: Some(sealed), plain: None })
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
