//! The [`Source`] templates read on the hub: a catalog snapshot (KV, services with the
//! one health rule, nodes) and the sealed variables, opened only where the task may read
//! them — Nomad's rule (`nomad/jobs`, `nomad/jobs/<job>`, `.../<group>`, `.../<task>`)
//! plus the prefixes the job grants in its `meta` (`rabble_variables = "shared/,db/"`,
//! on the job, group or task) and the `secret` paths a `vault` block grants.

use super::{Source, Value};
use crate::catalog::{Catalog, health};
use rabble_shared::support::seal::SealKey;
use std::collections::{BTreeMap, BTreeSet};

/// The meta key that grants a job's tasks more variable paths.
pub const GRANT_META: &str = "rabble_variables";

pub struct CatalogSource<'a> {
    pub catalog: &'a Catalog,
    pub seal: &'a SealKey,
    /// The paths this task may read: exact ones, and prefixes (ending in `/`).
    pub readable: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// The node the task runs on (`None` for `job plan`).
    pub node: Option<rabble_shared::NodeId>,
}

impl<'a> CatalogSource<'a> {
    /// For task `task` of group `group` of job `job`, with the grants from its metas.
    pub fn new(catalog: &'a Catalog, seal: &'a SealKey, job: &str, group: &str, task: &str, grants: &[&str]) -> Self {
        let mut readable: Vec<String> = vec![
            "nomad/jobs".into(),
            format!("nomad/jobs/{job}"),
            format!("nomad/jobs/{job}/{group}"),
            format!("nomad/jobs/{job}/{group}/{task}"),
        ];
        for g in grants {
            readable.extend(g.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned));
        }
        CatalogSource { catalog, seal, readable, env: BTreeMap::new(), node: None }
    }

    fn may_read(&self, path: &str) -> bool {
        self.readable.iter().any(|r| r == path || (r.ends_with('/') && path.starts_with(r.as_str())))
    }
}

impl Source for CatalogSource<'_> {
    fn env(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn kv_get(&self, key: &str) -> Option<String> {
        self.catalog.kv.entries.get(key).map(|e| String::from_utf8_lossy(&e.value).into_owned())
    }

    fn kv_list(&self, prefix: &str) -> Vec<(String, String)> {
        self.catalog
            .kv
            .prefix(prefix)
            .map(|(k, e)| (k.clone(), String::from_utf8_lossy(&e.value).into_owned()))
            .collect()
    }

    fn services(&self) -> Vec<(String, Vec<String>)> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for n in self.catalog.nodes.values() {
            for r in n.services.values() {
                out.entry(r.name.clone()).or_default().extend(r.tags.iter().cloned());
            }
        }
        out.into_iter().map(|(k, v)| (k, v.into_iter().collect())).collect()
    }

    fn service(&self, name: &str, tag: Option<&str>, statuses: &[&str]) -> Vec<Value> {
        let any = statuses.contains(&"any");
        let mut out = Vec::new();
        for (id, n) in &self.catalog.nodes {
            for r in n.services.values().filter(|r| r.name == name) {
                if tag.is_some_and(|t| !r.tags.iter().any(|x| x == t)) {
                    continue;
                }
                let status = health::status(n, r);
                if !any && !statuses.contains(&status.to_string().as_str()) {
                    continue;
                }
                let node_addr = n.facts.as_ref().map(|f| f.advertise.clone()).unwrap_or_default();
                out.push(Value::map([
                    ("ID", Value::str(r.id.clone())),
                    ("Name", Value::str(r.name.clone())),
                    ("Node", Value::str(id.as_str())),
                    ("NodeAddress", Value::str(node_addr)),
                    ("Address", Value::str(health::address(n, r).unwrap_or_default())),
                    ("Port", Value::Int(r.port.map_or(0, i64::from))),
                    ("Tags", Value::List(r.tags.iter().map(|t| Value::str(t.clone())).collect())),
                    (
                        "ServiceMeta",
                        Value::Map(r.meta.iter().map(|(k, v)| (k.clone(), Value::str(v.clone()))).collect()),
                    ),
                    ("Status", Value::str(status.to_string())),
                ]));
            }
        }
        out
    }

    fn nodes(&self) -> Vec<Value> {
        self.catalog
            .nodes
            .iter()
            .map(|(id, n)| {
                let f = n.facts.as_ref();
                Value::map([
                    ("Node", Value::str(id.as_str())),
                    ("Address", Value::str(f.map(|f| f.advertise.clone()).unwrap_or_default())),
                    ("Datacenter", Value::str(f.map(|f| f.datacenter.clone()).unwrap_or_default())),
                    (
                        "Meta",
                        Value::Map(
                            f.map(|f| f.meta.iter().map(|(k, v)| (k.clone(), Value::str(v.clone()))).collect())
                                .unwrap_or_default(),
                        ),
                    ),
                ])
            })
            .collect()
    }

    fn var(&self, path: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        if !self.may_read(path) {
            return Err(format!(
                "this task may read nomad/jobs/<its job>[/<group>[/<task>]], what `meta {{ {GRANT_META} = \"...\" }}` grants and, with a `vault` block, the paths its `secret` calls name"
            ));
        }
        let Some(v) = self.catalog.vars.entries.get(path) else { return Ok(None) };
        v.open(self.seal, path).map(Some)
    }

    fn var_list(&self, prefix: &str) -> Result<Vec<String>, String> {
        Ok(self
            .catalog
            .vars
            .entries
            .range(prefix.to_owned()..)
            .take_while(|(p, _)| p.starts_with(prefix))
            .map(|(p, _)| p.clone())
            .filter(|p| self.may_read(p))
            .collect())
    }

    /// By interface from the facts; without names (an older agent), the bare addresses;
    /// without those (a node registered through the API), its advertised address.
    fn node_addrs(&self) -> Option<Vec<(String, std::net::IpAddr)>> {
        let facts = self.catalog.nodes.get(self.node.as_ref()?)?.facts.as_ref()?;
        let parse = |n: &str, a: &String| a.parse().ok().map(|ip| (n.to_owned(), ip));
        Some(if facts.interfaces.is_empty() {
            let bare =
                if facts.addresses.is_empty() { std::slice::from_ref(&facts.advertise) } else { &facts.addresses };
            bare.iter().filter_map(|a| parse("", a)).collect()
        } else {
            facts.interfaces.iter().flat_map(|(n, l)| l.iter().filter_map(move |a| parse(n, a))).collect()
        })
    }
}

/// Every template of a job, rendered against `catalog` as a new allocation would see it:
/// (group, task, destination, outcome). For `job plan`, which shows whether each
/// renders, waits for data, or fails (never the rendered text: it may hold secrets).
pub fn preview(
    catalog: &Catalog,
    seal: &SealKey,
    job: &rabble_shared::job::JobSpec,
) -> Vec<(String, String, String, Result<usize, super::RenderError>)> {
    let mut out = Vec::new();
    for g in &job.groups {
        for t in &g.tasks {
            let metas = [job.meta.get(GRANT_META), g.meta.get(GRANT_META), t.meta.get(GRANT_META)];
            let grants: Vec<&str> = metas.into_iter().flatten().chain(&t.secret_paths).map(String::as_str).collect();
            let mut src = CatalogSource::new(catalog, seal, &job.id, &g.name, &t.name, &grants);
            src.env = t.env.clone();
            for (k, v) in
                [("NOMAD_JOB_NAME", job.id.as_str()), ("NOMAD_GROUP_NAME", &g.name), ("NOMAD_TASK_NAME", &t.name)]
            {
                src.env.insert(k.into(), v.into());
            }
            for spec in &t.templates {
                let outcome =
                    super::Template::parse(&spec.destination, &spec.data, &spec.left_delimiter, &spec.right_delimiter)
                        .map_err(super::RenderError::Failed)
                        .and_then(|mut tpl| {
                            tpl.strict = spec.error_on_missing_key;
                            tpl.render(&src)
                        })
                        .map(|text| text.len());
                out.push((g.name.clone(), t.name.clone(), spec.destination.clone(), outcome));
            }
        }
    }
    out
}
