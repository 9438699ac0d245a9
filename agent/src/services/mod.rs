//! Service definitions from a directory of files: Rabble TOML (`*.toml`) and Consul's
//! HCL (`*.hcl`) and JSON (`*.json`) service definitions.
//!
//! A broken file is reported with its path (and line, where the format gives one) and
//! the rest load as usual; a file that breaks on reload keeps its last good
//! definitions, so a typo never deregisters a running service.

mod parse;
pub mod spec;

pub use parse::{parse_file, parse_text};

use rabble_shared::msg::{CheckKind, ServiceRegistration};
use rabble_shared::support::duration::GoDuration;
use rabble_shared::{Status, TopicId};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// At most this many services (and twice as many checks) per node: memory is bounded.
pub const MAX_SERVICES: usize = 256;
pub const MAX_CHECKS: usize = 512;
/// Service files larger than this are refused.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Consul's defaults.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_SCRIPT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A service file that could not be (fully) used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct LoadError {
    pub path: PathBuf,
    pub message: String,
}

/// One service instance ready to publish, with its checks.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDef {
    pub key: TopicId,
    pub reg: ServiceRegistration,
    pub checks: Vec<CheckDef>,
}

/// What a check does.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    Http { url: String, method: String, headers: Vec<(String, String)>, body: String, tls_skip_verify: bool },
    Tcp { addr: String },
    Script { args: Vec<String> },
    Ttl { ttl: Duration },
}

impl Probe {
    pub fn kind(&self) -> CheckKind {
        match self {
            Probe::Http { .. } => CheckKind::Http,
            Probe::Tcp { .. } => CheckKind::Tcp,
            Probe::Script { .. } => CheckKind::Script,
            Probe::Ttl { .. } => CheckKind::Ttl,
        }
    }
}

/// One health check, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckDef {
    pub key: TopicId,
    pub id: String,
    pub name: String,
    pub service_id: Option<String>,
    pub probe: Probe,
    /// Zero for TTL checks.
    pub interval: Duration,
    pub timeout: Duration,
    pub initial: Status,
    pub deregister_critical_after: Option<Duration>,
    pub success_before_passing: u32,
    pub failures_before_critical: u32,
}

/// Everything one directory defines.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Definitions {
    pub services: Vec<ServiceDef>,
    /// Checks not bound to a service.
    pub node_checks: Vec<CheckDef>,
}

impl Definitions {
    pub fn all_checks(&self) -> impl Iterator<Item = &CheckDef> {
        self.services.iter().flat_map(|s| s.checks.iter()).chain(self.node_checks.iter())
    }
}

/// Reads a directory, remembering each file's last good definitions.
#[derive(Debug, Default)]
pub struct Loader {
    last_good: HashMap<PathBuf, Definitions>,
}

impl Loader {
    /// Loads every `*.toml`, `*.hcl` and `*.json` in `dir` (sorted by name). Returns the
    /// merged definitions and one error per problem; the definitions are always usable.
    pub fn load(&mut self, dir: &Path) -> (Definitions, Vec<LoadError>) {
        let mut errors = Vec::new();
        let files = match list_files(dir) {
            Ok(f) => f,
            Err(e) => {
                errors.push(LoadError { path: dir.to_owned(), message: format!("cannot read directory: {e}") });
                Vec::new()
            }
        };
        let mut next = HashMap::new();
        for path in &files {
            match parse_file(path) {
                Ok(defs) => {
                    next.insert(path.clone(), defs);
                }
                Err(e) => {
                    if let Some(old) = self.last_good.remove(path) {
                        errors.push(LoadError {
                            path: path.clone(),
                            message: format!("{} (keeping its last good definitions)", e.message),
                        });
                        next.insert(path.clone(), old);
                    } else {
                        errors.push(e);
                    }
                }
            }
        }
        self.last_good = next;
        let merged = merge(&files, &self.last_good, &mut errors);
        (merged, errors)
    }
}

fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "toml" | "hcl" | "json") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Merges per-file definitions in file order; a later file that reuses a service or
/// check id is refused with an error naming both files.
fn merge(files: &[PathBuf], per_file: &HashMap<PathBuf, Definitions>, errors: &mut Vec<LoadError>) -> Definitions {
    let mut out = Definitions::default();
    let mut owners: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut checks = 0usize;
    for path in files {
        let Some(defs) = per_file.get(path) else { continue };
        let mut claim = |what: &str, key: &TopicId, errors: &mut Vec<LoadError>| -> bool {
            let k = format!("{what}/{key}");
            if let Some(first) = owners.get(&k) {
                errors.push(LoadError {
                    path: path.clone(),
                    message: format!("{what} id {key:?} is already defined in {}; skipped", first.display()),
                });
                return false;
            }
            owners.insert(k, path.clone());
            true
        };
        for svc in &defs.services {
            if out.services.len() >= MAX_SERVICES || checks + svc.checks.len() > MAX_CHECKS {
                errors.push(LoadError {
                    path: path.clone(),
                    message: format!(
                        "more than {MAX_SERVICES} services or {MAX_CHECKS} checks on this node; {:?} skipped",
                        svc.reg.id
                    ),
                });
                continue;
            }
            if !claim("service", &svc.key, errors) {
                continue;
            }
            let mut svc = svc.clone();
            svc.checks.retain(|c| claim("check", &c.key, errors));
            checks += svc.checks.len();
            out.services.push(svc);
        }
        for c in &defs.node_checks {
            if checks < MAX_CHECKS && claim("check", &c.key, errors) {
                checks += 1;
                out.node_checks.push(c.clone());
            }
        }
    }
    out
}

pub(crate) fn default_timeout(probe: &Probe) -> Duration {
    match probe {
        Probe::Script { .. } => DEFAULT_SCRIPT_TIMEOUT,
        _ => DEFAULT_TIMEOUT,
    }
}

pub(crate) fn dur(d: Option<GoDuration>) -> Option<Duration> {
    d.map(|d| d.0)
}

#[cfg(test)]
mod tests;
