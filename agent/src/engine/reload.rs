//! Reading the services directory and applying it: the one path for startup, a
//! directory change, SIGHUP and `rabble-agent reload`. A check whose definition did not
//! change keeps running; changed and new ones get a new generation.

use super::Engine;
use super::check_state::CheckRt;
use crate::services::{CheckDef, Definitions, Probe, ServiceDef};
use rabble_shared::TopicId;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::SystemTime;

pub(super) type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl Engine {
    /// Reads the services directory and applies it: the one path for startup and reload.
    /// Returns the problems found (already logged).
    pub(super) fn reload(&mut self, why: &str, explicit: bool) -> Vec<String> {
        self.fingerprint = fingerprint(&self.cfg.services_dir);
        let (defs, errors) = self.loader.load(&self.cfg.services_dir);
        for e in &errors {
            tracing::error!("{e}");
        }
        if explicit {
            self.reaped.clear();
        }
        self.refresh_facts();
        self.file_defs = defs;
        self.apply_all();
        tracing::info!(
            why,
            services = self.services.len(),
            checks = self.checks.len(),
            errors = errors.len(),
            "loaded services"
        );
        errors.iter().map(|e| e.to_string()).collect()
    }

    /// The files' services and the running allocations' services, together.
    pub(super) fn apply_all(&mut self) {
        let mut defs = self.file_defs.clone();
        defs.services.extend(self.job_services.iter().cloned());
        self.apply(defs);
    }

    pub(super) fn apply(&mut self, defs: Definitions) {
        let node_checks = defs.node_checks;
        let mut next: BTreeMap<TopicId, ServiceDef> = BTreeMap::new();
        for s in defs.services {
            match self.reaped.get(&s.key) {
                Some(old) if *old == s => continue,
                Some(_) => {
                    self.reaped.remove(&s.key);
                }
                None => {}
            }
            next.insert(s.key.clone(), s);
        }
        let old = std::mem::replace(&mut self.services, next);
        let mut dirty_services: Vec<TopicId> =
            old.keys().filter(|k| !self.services.contains_key(*k)).cloned().collect();
        dirty_services.extend(self.services.iter().filter(|(k, s)| old.get(*k) != Some(s)).map(|(k, _)| k.clone()));

        let wanted: Vec<CheckDef> =
            self.services.values().flat_map(|s| s.checks.iter().cloned()).chain(node_checks).collect();
        let mut dirty_checks: Vec<TopicId> = Vec::new();
        let mut next_checks = BTreeMap::new();
        for def in wanted {
            let key = def.key.clone();
            match self.checks.remove(&key) {
                Some(rt) if rt.def == def => {
                    next_checks.insert(key, rt);
                }
                _ => {
                    self.generation += 1;
                    let mut rt = CheckRt::new(def, self.generation);
                    rt.task = crate::checks::spawn(
                        &rt.def,
                        self.generation,
                        self.cfg.enable_script_checks,
                        self.check_tx.clone(),
                    );
                    if matches!(rt.def.probe, Probe::Script { .. }) && !self.cfg.enable_script_checks {
                        tracing::error!(check = %rt.def.id, "script checks are disabled on this agent; the check stays critical (--enable-script-checks)");
                    }
                    dirty_checks.push(key.clone());
                    next_checks.insert(key, rt);
                }
            }
        }
        // Whatever is left was removed.
        dirty_checks.extend(std::mem::replace(&mut self.checks, next_checks).into_keys());
        for k in &dirty_services {
            self.put_service(k);
        }
        for k in &dirty_checks {
            self.put_check(k);
        }
        if !dirty_services.is_empty() || !dirty_checks.is_empty() {
            self.put_manifest();
        }
    }
}

pub(super) fn fingerprint(dir: &std::path::Path) -> Fingerprint {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut v: Fingerprint = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((e.path(), m.len(), m.modified().ok()))
        })
        .collect();
    v.sort();
    v
}
