//! Nomad job files (HCL2) into [`JobSpec`]s: what `rabble job validate|plan|run` and
//! the jobs API read. Pure: file name and text in, a job (with Nomad's defaults) or
//! every problem found out, each naming the file, line, column and block path.
//!
//! `eval` evaluates expressions (variables resolved, runtime `${...}` kept as
//! written), `body` reads a block's fields and notices what nobody read (typos,
//! unsupported blocks), `decode` and `task` build the job, `extra` reads
//! `parameterized`, `dispatch_payload` and `vault`, `vars` reads `variable`
//! and `locals`, `cron` parses and runs `periodic` schedules.

pub(crate) mod body;
pub mod cron;
mod decode;
pub mod diff;
pub mod eval;
mod extra;
mod task;
mod template;
mod vars;

pub use vars::Given;

use body::{Ctx, Reader};
use rabble_shared::job::JobSpec;
use std::fmt;

/// One problem in a job file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file (a `-var` flag).
    pub line: usize,
    pub column: usize,
    /// The block path, as in `job "plex" > group "media" > task "server"`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Everything wrong with a job file, one problem per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JobFileError(pub Vec<Diagnostic>);

impl fmt::Display for JobFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// How to read a job file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub given: Given,
    /// Accept blocks Rabble does not implement (they are listed in `JobSpec::ignored`).
    pub ignore_unsupported: bool,
}

/// A job read from a file, with what was worth saying about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub job: JobSpec,
    pub warnings: Vec<Diagnostic>,
}

/// Reads one job file.
pub fn parse(file: &str, src: &str, opts: &Options) -> Result<Parsed, JobFileError> {
    if let Err(e) = rabble_shared::support::hcl::check_nesting(src) {
        return Err(JobFileError(vec![Diagnostic {
            file: file.to_owned(),
            line: e.line,
            column: e.column,
            path: String::new(),
            message: e.message,
        }]));
    }
    let body = hcl_edit::parser::parse_body(src).map_err(|e| {
        JobFileError(vec![Diagnostic {
            file: file.to_owned(),
            line: e.location().line(),
            column: e.location().column(),
            path: String::new(),
            message: format!("{} (in: {})", e.message(), e.line().trim()),
        }])
    })?;
    let mut ctx = Ctx::new(file, src);
    {
        let mut top = Reader::new(&ctx, &body, String::new(), None);
        let scope = vars::scope(&mut top, &opts.given);
        drop(top);
        ctx.scope = scope;
    }
    let mut top = Reader::new(&ctx, &body, String::new(), None);
    // Already read into the scope; marked as read here.
    for b in top.blocks("variable").into_iter().chain(top.blocks("locals")) {
        b.reader.finish_ignored();
    }
    let jobs = top.blocks("job");
    if jobs.len() != 1 {
        top.error(None, format!("a job file holds exactly one `job` block; this one has {}", jobs.len()));
    }
    let mut job = jobs.into_iter().next().and_then(decode::job);
    top.finish();
    let mut errors = ctx.errors.take();
    let unsupported = ctx.unsupported.take();
    if !opts.ignore_unsupported && !unsupported.is_empty() {
        let hint = Diagnostic {
            file: file.to_owned(),
            line: 0,
            column: 0,
            path: String::new(),
            message: "Rabble does not run the blocks above yet; `-ignore-unsupported` runs the job without them".into(),
        };
        errors.extend(unsupported.iter().cloned().chain([hint]));
    }
    match job.as_mut() {
        Some(job) if errors.is_empty() => {
            task::default_service_names(job);
            job.ignored = unsupported.iter().map(|d| d.to_string()).collect();
            Ok(Parsed { job: job.clone(), warnings: ctx.warnings.take() })
        }
        _ => {
            errors.sort_by_key(|d| (d.file != file, d.line == 0, d.line, d.column));
            Err(JobFileError(errors))
        }
    }
}

/// The most allocations one group may ask for (a typo of `count = 30000` should not
/// fill the catalog).
pub const MAX_COUNT: u32 = 1000;

/// Checks a job that arrives as JSON (not through [`parse`]) for what the parser would
/// have refused: names, at least one group with a task, known drivers, sane counts.
pub fn check_spec(j: &JobSpec) -> Result<(), String> {
    let name_ok = |s: &str| !s.is_empty() && s.len() <= 128 && !s.chars().any(char::is_control);
    if !name_ok(&j.id) {
        return Err("the id must be 1 to 128 printable characters".into());
    }
    if !(1..=100).contains(&j.priority) {
        return Err(format!("priority {} is outside 1..100", j.priority));
    }
    if j.groups.is_empty() {
        return Err("a job needs at least one group".into());
    }
    let mut seen = std::collections::BTreeSet::new();
    for g in &j.groups {
        if !name_ok(&g.name) || !seen.insert(&g.name) {
            return Err(format!("group {:?}: names must be unique and printable", g.name));
        }
        if g.count > MAX_COUNT {
            return Err(format!("group {:?}: count {} is over {MAX_COUNT}", g.name, g.count));
        }
        if g.tasks.is_empty() {
            return Err(format!("group {:?} has no task", g.name));
        }
        for t in &g.tasks {
            if !task::DRIVERS.iter().any(|(d, _)| *d == t.driver) {
                return Err(format!("task {:?}: driver {:?} is not available", t.name, t.driver));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
