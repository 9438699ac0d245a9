//! Periodic jobs, pure: when each launches next, and the job a launch submits (Nomad's
//! `<id>/periodic-<unix seconds>` child, a copy without `periodic`).

use crate::catalog::Catalog;
use crate::jobspec::cron::Schedule;
use rabble_shared::job::JobSpec;

/// The child job a launch at `at_s` (Unix seconds) submits.
pub fn child(parent: &JobSpec, at_s: i64) -> JobSpec {
    let mut c = parent.clone();
    c.id = format!("{}/periodic-{at_s}", parent.id);
    c.name = c.id.clone();
    c.periodic = None;
    c
}

/// The next launch of an enabled periodic job strictly after `after_s`.
pub fn next_launch(spec: &JobSpec, after_s: i64) -> Option<i64> {
    let p = spec.periodic.as_ref().filter(|p| p.enabled)?;
    p.crons.iter().filter_map(|c| Schedule::parse(c).ok()?.next_after(after_s)).min()
}

/// Whether an earlier launch of `parent` still runs (for `prohibit_overlap`).
pub fn still_running(catalog: &Catalog, parent: &str) -> bool {
    let prefix = format!("{parent}/periodic-");
    catalog.work.allocs.values().any(|a| a.job_id.starts_with(&prefix) && a.holds_resources())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_follow_the_schedule() {
        let src = "job \"clean\" {\n type = \"batch\"\n periodic {\n crons = [\"*/5 * * * *\", \"0 3 * * *\"]\n }\n group \"g\" {\n task \"t\" {\n driver = \"raw_exec\"\n config { command = \"x\" }\n }\n }\n}\n";
        let spec = crate::jobspec::parse("c.hcl", src, &Default::default()).unwrap().job;
        assert_eq!(next_launch(&spec, 1_000), Some(1_200));
        let c = child(&spec, 1_200);
        assert_eq!((c.id.as_str(), c.periodic.is_none()), ("clean/periodic-1200", true));
        let mut off = spec.clone();
        off.periodic.as_mut().unwrap().enabled = false;
        assert_eq!(next_launch(&off, 1_000), None);
    }
}
