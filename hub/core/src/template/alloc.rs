//! One allocation's templates, rendered: each task's `template` blocks over the catalog
//! (KV, services, variables the task may read, the node's addresses) with the task's
//! environment as its node will set it; and when a re-render held by the templates'
//! `wait` may go. The hub's `templates` task delivers the result.

use crate::catalog::Catalog;
use crate::template::source::{CatalogSource, GRANT_META};
use crate::template::{RenderError, Template};
use rabble_shared::NodeId;
use rabble_shared::assign::Assignment;
use rabble_shared::job::{Task, TemplateSpec, env};
use rabble_shared::rendered::{MAX_RENDERED, RenderedFile};
use rabble_shared::support::seal::SealKey;
use std::collections::BTreeMap;
use std::time::Duration;

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
        let grants: Vec<&str> = [job_meta, group_meta, t.meta.get(GRANT_META)]
            .into_iter()
            .flatten()
            .chain(&t.secret_paths)
            .map(String::as_str)
            .collect();
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

/// The longest `wait` (min, max) among an allocation's templates, if any sets one.
pub fn quiescence(a: &Assignment) -> Option<(Duration, Duration)> {
    let ms = |x: u64| Duration::from_millis(x);
    a.tasks.iter().flat_map(|t| &t.templates).filter_map(|t| t.wait_ms).map(|(min, max)| (ms(min), ms(max))).max()
}

/// When a held re-render may go: `min` after the last change, but no later than `max`
/// after the first (on whatever clock the caller keeps its instants).
pub fn not_before<I: Copy + Ord + std::ops::Add<Duration, Output = I>>(
    first: I,
    last: I,
    (min, max): (Duration, Duration),
) -> I {
    (last + min).min(first + max.max(min))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_waits_min_after_the_last_change_and_at_most_max_after_the_first() {
        let t0 = Duration::from_secs(1000);
        let s = Duration::from_secs;
        assert_eq!(not_before(t0, t0, (s(2), s(10))), t0 + s(2));
        assert_eq!(not_before(t0, t0 + s(5), (s(2), s(10))), t0 + s(7));
        assert_eq!(not_before(t0, t0 + s(9), (s(2), s(10))), t0 + s(10), "max bounds the wait");
        assert_eq!(not_before(t0, t0, (s(3), s(1))), t0 + s(3), "max below min acts as min");
    }
}
