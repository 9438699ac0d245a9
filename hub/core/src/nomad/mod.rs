//! Nomad's JSON job form (`api.Job`), both ways, for the hub's Nomad-compatible API:
//! `to_json` writes a job as Nomad's tools expect it back (`/v1/jobs/parse`,
//! `/v1/job/<id>`), `from_json` reads one they send (`/v1/jobs`, `/v1/job/<id>/plan`) by
//! writing it out as the job file it stands for (`hcl`, `task`) and parsing that: one
//! parser, one set of defaults and checks, whichever form a job arrives in. Pure.

mod encode;
mod hcl;
mod task;

pub use encode::job as to_json;

use crate::jobspec::{self, Diagnostic, JobFileError, Options, Parsed};
use serde_json::Value;

/// What a JSON job is called in its diagnostics (it has no lines to point at).
pub const FILE: &str = "job JSON";

/// Reads Nomad JSON job `v` (the object inside `{"Job": ...}`).
pub fn from_json(v: &Value, opts: &Options) -> Result<Parsed, JobFileError> {
    let mut w = hcl::Writer::new();
    hcl::job(&mut w, v);
    if !w.problems.is_empty() {
        let diagnostics = w.problems.into_iter().map(|(path, message)| Diagnostic {
            file: FILE.into(),
            line: 0,
            column: 0,
            path,
            message,
        });
        return Err(JobFileError(diagnostics.collect()));
    }
    // Lines and columns would point into the written-out file, which nobody sees.
    let placeless = |mut d: Diagnostic| {
        (d.line, d.column) = (0, 0);
        d
    };
    let mut parsed =
        jobspec::parse(FILE, &w.out, opts).map_err(|e| JobFileError(e.0.into_iter().map(placeless).collect()))?;
    parsed.warnings = parsed.warnings.into_iter().map(placeless).collect();
    for t in parsed.job.groups.iter_mut().flat_map(|g| g.tasks.iter_mut()) {
        for tpl in &mut t.templates {
            tpl.line = 0;
        }
    }
    Ok(parsed)
}

/// The job in a request body: its `Job` field, in any case (`{"job": ...}` from
/// python-nomad, `{"Job": ...}` from Nomad's CLI).
pub fn job_field(body: &Value) -> Option<&Value> {
    body.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case("job")).map(|(_, v)| v)
}

#[cfg(test)]
mod tests;
