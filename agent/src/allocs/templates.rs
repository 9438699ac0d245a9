//! Rendered templates on the node: a message on `rabble/node/<node>/templates/<alloc>`
//! is verified (signed with the hub's key) and opened (sealed with this node's token),
//! its files are written into the task's directory (a tmpfs) before the task starts —
//! a task with templates waits for them — and a changed file applies its
//! `change_mode` after a random splay: restart the task (not counted against its
//! restart policy), send the signal, or nothing. `env = true` files become the task's
//! environment.

use super::{Allocs, Handle, Phase, Settings};
use rabble_shared::assign::Signed;
use rabble_shared::job::{ChangeMode, Task};
use rabble_shared::rendered::{AllocTemplates, RenderedFile, RenderedMessage};
use rabble_shared::support::seal;
use rabble_shared::{AllocId, NodeId, msg, topic};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;

/// Verifies and opens a message for `alloc`.
pub fn verify(
    payload: &[u8],
    key: Option<&[u8]>,
    me: &NodeId,
    alloc: &AllocId,
    token: Option<&str>,
) -> Result<AllocTemplates, String> {
    let key = key.ok_or("no hub_key configured")?;
    let signed: Signed = msg::decode(payload).map_err(|e| e.to_string())?;
    let _: serde_json::Value = crate::assign::open(&signed.body, &signed.sig, key).map_err(|e| e.to_string())?;
    let m: RenderedMessage = msg::decode(signed.body.as_bytes()).map_err(|e| e.to_string())?;
    let t = match (m.sealed, m.plain, token) {
        (_, Some(p), _) => p,
        (Some(_), None, None) => return Err("they are sealed and this node has no token (token_file)".into()),
        (Some(b64), None, Some(token)) => {
            let plain = seal::open_b64(token, me.as_str(), &topic::templates(me, alloc), &b64)?;
            AllocTemplates::from_bytes(&plain).map_err(|e| e.to_string())?
        }
        (None, None, _) => return Err("empty message".into()),
    };
    if &t.alloc != alloc {
        return Err(format!("for allocation {}, on {alloc}'s topic", t.alloc));
    }
    Ok(t)
}

/// Whether `task` of `alloc` may start: it has no templates, or they arrived.
pub fn ready(have: &BTreeMap<AllocId, AllocTemplates>, alloc: &AllocId, task: &Task) -> bool {
    task.templates.is_empty() || have.get(alloc).is_some_and(|t| t.tasks.contains_key(&task.name))
}

/// Where a destination lands: the task's `local/`, `secrets/`, or the group's `alloc/`.
fn path_for(cfg: &Settings, alloc: &AllocId, task: &str, dest: &str) -> Result<PathBuf, String> {
    let rel = dest
        .replace("${NOMAD_TASK_DIR}", "local")
        .replace("${NOMAD_SECRETS_DIR}", "secrets")
        .replace("${NOMAD_ALLOC_DIR}", "alloc");
    let rel = rel.trim_start_matches("./");
    if rel.starts_with('/') || rel.split('/').any(|p| p == ".." || p.is_empty()) {
        return Err(format!("destination {dest:?} leaves the task's directory"));
    }
    let alloc_dir = cfg.alloc_dir.join(alloc.as_str());
    match rel.split_once('/') {
        Some(("local" | "secrets", _)) => Ok(alloc_dir.join(task).join(rel)),
        Some(("alloc", _)) => Ok(alloc_dir.join(rel)),
        _ => Err(format!("destination {dest:?} is not under local/, secrets/ or alloc/")),
    }
}

fn write(path: &PathBuf, f: &RenderedFile) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("rabble-tmp");
    std::fs::write(&tmp, &f.contents).map_err(err)?;
    // Windows: the file is the agent's, with its directory's permissions (no modes, no owners).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(f.perms & 0o7777)).map_err(err)?;
        if f.uid.is_some() || f.gid.is_some() {
            std::os::unix::fs::chown(&tmp, f.uid, f.gid).map_err(err)?;
        }
    }
    std::fs::rename(&tmp, path).map_err(err)
}

/// `KEY=value` lines (blank lines and `#` comments skipped; `export ` and quotes allowed).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.trim_start_matches("export ").split_once('=')?;
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect()
}

/// Writes `task`'s files and returns its spec with the `env = true` files' variables.
pub fn prepare(
    cfg: &Settings,
    have: &BTreeMap<AllocId, AllocTemplates>,
    alloc: &AllocId,
    task: &Task,
) -> Result<Task, String> {
    let mut spec = task.clone();
    let Some(files) = have.get(alloc).and_then(|t| t.tasks.get(&task.name)) else { return Ok(spec) };
    for f in files {
        write(&path_for(cfg, alloc, &task.name, &f.destination)?, f)?;
        if f.env {
            spec.env.extend(parse_env(&f.contents));
        }
    }
    Ok(spec)
}

impl Allocs {
    /// A verified message: kept (also for an allocation not assigned yet); files of
    /// started tasks rewritten, and their change modes applied.
    pub fn templates(&mut self, t: AllocTemplates, now: Instant) {
        let id = t.alloc.clone();
        if self.templates.get(&id).is_some_and(|old| old.index > t.index) {
            return;
        }
        let old = self.templates.insert(id.clone(), t);
        let (Some(old), Some(rt)) = (old, self.allocs.get_mut(&id)) else { return };
        let new = &self.templates[&id];
        for (name, files) in &new.tasks {
            let Some(task) = rt.tasks.get_mut(name) else { continue };
            let changed: Vec<&RenderedFile> =
                files.iter().filter(|f| old.tasks.get(name).is_none_or(|o| !o.contains(f))).collect();
            if changed.is_empty() || !matches!(task.phase, Phase::Running { .. }) {
                continue;
            }
            for f in &changed {
                match path_for(&self.cfg, &id, name, &f.destination).and_then(|p| write(&p, f)) {
                    Ok(()) => tracing::info!(alloc = %id, task = %name, file = %f.destination, "template re-rendered"),
                    Err(e) => tracing::warn!(alloc = %id, task = %name, "template not written: {e}"),
                }
            }
            let splay = changed.iter().map(|f| f.splay_ms).max().unwrap_or(0);
            let at = now + Duration::from_millis(if splay == 0 { 0 } else { fastrand::u64(0..=splay) });
            if changed.iter().any(|f| f.change_mode == ChangeMode::Restart || f.env) {
                task.restart_at = Some(at);
            } else if let Some(f) = changed.iter().find(|f| f.change_mode == ChangeMode::Signal) {
                task.signal_at = Some((at, f.change_signal.clone().unwrap_or_else(|| "SIGHUP".into())));
            }
        }
    }

    /// A cleared topic: the allocation has no templates any more.
    pub fn drop_templates(&mut self, alloc: &AllocId) {
        self.templates.remove(alloc);
    }

    /// Restarts and signals whose splay is over.
    pub(super) fn template_actions(&mut self, now: Instant) {
        for (id, rt) in self.allocs.iter_mut() {
            for (name, t) in rt.tasks.iter_mut() {
                if let Some((at, sig)) = t.signal_at.clone().filter(|(at, _)| *at <= now) {
                    let _ = at;
                    t.signal_at = None;
                    match &t.phase {
                        Phase::Running { run: Handle::Proc(p), .. } => match super::process::parse_signal(Some(&sig)) {
                            Ok(s) => super::process::signal(p.pid, s),
                            Err(e) => tracing::warn!(alloc = %id, task = %name, "{e}"),
                        },
                        #[cfg(feature = "docker")]
                        Phase::Running { run: Handle::Container(c), .. } => {
                            if let Some(d) = self.docker.get(&t.spec.driver) {
                                super::docker::signal(d.clone(), c.name.clone(), sig.clone());
                            }
                        }
                        _ => {}
                    }
                    tracing::info!(alloc = %id, task = %name, signal = %sig, "template changed: signalled");
                    t.event = format!("template changed: sent {sig}");
                }
                if t.restart_at.is_some_and(|at| at <= now) {
                    t.restart_at = None;
                    if matches!(t.phase, Phase::Running { .. }) {
                        tracing::info!(alloc = %id, task = %name, "template changed: restarting the task");
                        t.restart_why = Some("a template changed".into());
                        super::driver::stop_task(t, now, &self.docker);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files_and_destinations() {
        let env = parse_env("# c\nA=1\nexport B=\"two words\"\n\nbad line\nC = x=y\n");
        assert_eq!(env, vec![("A".into(), "1".into()), ("B".into(), "two words".into()), ("C".into(), "x=y".into())]);
        let cfg = Settings {
            node: NodeId::new("n").unwrap(),
            alloc_dir: "/run/rabble/alloc".into(),
            cgroups: false,
            host_volumes: Default::default(),
        };
        let a = AllocId::new("00aa").unwrap();
        assert_eq!(
            path_for(&cfg, &a, "web", "local/x.conf").unwrap(),
            PathBuf::from("/run/rabble/alloc/00aa/web/local/x.conf")
        );
        assert_eq!(
            path_for(&cfg, &a, "web", "${NOMAD_SECRETS_DIR}/env").unwrap(),
            PathBuf::from("/run/rabble/alloc/00aa/web/secrets/env")
        );
        assert_eq!(
            path_for(&cfg, &a, "web", "alloc/shared").unwrap(),
            PathBuf::from("/run/rabble/alloc/00aa/alloc/shared")
        );
        for bad in ["/etc/passwd", "local/../../x", "other/x", "local//x"] {
            assert!(path_for(&cfg, &a, "web", bad).is_err(), "{bad}");
        }
    }
}
