//! `job`, `group` and the blocks they share (constraints, restart, reschedule,
//! update, periodic, network, volumes) into a [`JobSpec`], with Nomad's defaults.

use super::body::{Child, Reader};
use super::task;
use rabble_shared::job::{
    Constraint, DEFAULT_PRIORITY, Group, JobSpec, JobType, Network, Operator, Periodic, Port, ReschedulePolicy,
    RestartMode, RestartPolicy, UpdateStrategy, Volume,
};
use std::collections::{BTreeMap, BTreeSet};

pub fn job(mut b: Child<'_, '_>) -> Option<JobSpec> {
    let id = b.label("the job's id, as in job \"plex\"")?;
    let r = &mut b.reader;
    let kind = match r.string("type").as_deref() {
        None | Some("service") => JobType::Service,
        Some("batch") => JobType::Batch,
        Some("system") => JobType::System,
        Some("sysbatch") => JobType::Sysbatch,
        Some(other) => {
            r.error(None, format!("type: {other:?} is not a job type (service, batch, system, sysbatch)"));
            JobType::Service
        }
    };
    let priority = match r.u64("priority") {
        Some(p) if (1..=100).contains(&p) => p as u8,
        Some(p) => {
            r.error(None, format!("priority: {p} is outside 1..100"));
            DEFAULT_PRIORITY
        }
        None => DEFAULT_PRIORITY,
    };
    let defaults = Defaults {
        kind,
        update: r.block("update").map(|u| update(u, UpdateStrategy::default())),
        restart: r.block("restart").map(|x| restart(x, RestartPolicy::default_for(kind))),
        reschedule: r.block("reschedule").map(|x| reschedule(x, ReschedulePolicy::default_for(kind))),
    };
    let periodic = r.block("periodic").map(periodic);
    let parameterized = r.block("parameterized").map(super::extra::parameterized);
    if parameterized.is_some() && !matches!(kind, JobType::Batch | JobType::Sysbatch) {
        r.error(None, format!("parameterized: a {} job cannot be dispatched (use batch or sysbatch)", kind.as_str()));
    }
    if parameterized.is_some() && periodic.is_some() {
        r.error(None, "a job is either periodic or parameterized, not both");
    }
    let vault = super::extra::vault(r);
    if periodic.is_some() && matches!(kind, JobType::System | JobType::Service) {
        r.error(None, format!("periodic: a {} job cannot be periodic (use batch or sysbatch)", kind.as_str()));
    }
    let spec = JobSpec {
        name: r.string("name").unwrap_or_else(|| id.clone()),
        id,
        kind,
        priority,
        region: r.string("region").unwrap_or_else(|| "global".into()),
        datacenters: r.strings("datacenters").unwrap_or_else(|| vec!["*".into()]),
        meta: r.string_map("meta"),
        constraints: constraints(r),
        periodic,
        parameterized,
        groups: {
            let mut groups = Vec::new();
            for g in r.blocks("group") {
                groups.extend(group(g, &defaults));
            }
            groups
        },
        ignored: vec![],
    };
    let mut spec = spec;
    if let Some(v) = vault {
        super::extra::grant(r, v, spec.groups.iter_mut().flat_map(|g| g.tasks.iter_mut()));
    }
    if spec.groups.is_empty() && r.ctx.errors.borrow().is_empty() {
        r.error(None, "a job needs at least one `group` with a `task`");
    }
    unique(r, spec.groups.iter().map(|g| g.name.as_str()), "group");
    b.reader.finish();
    Some(spec)
}

/// What the job level sets for every group.
struct Defaults {
    kind: JobType,
    update: Option<UpdateStrategy>,
    restart: Option<RestartPolicy>,
    reschedule: Option<ReschedulePolicy>,
}

fn group(mut b: Child<'_, '_>, d: &Defaults) -> Option<Group> {
    let name = b.label("the group's name, as in group \"web\"")?;
    let r = &mut b.reader;
    let restart = match r.block("restart") {
        Some(x) => restart(x, d.restart.unwrap_or(RestartPolicy::default_for(d.kind))),
        None => d.restart.unwrap_or(RestartPolicy::default_for(d.kind)),
    };
    let base_reschedule = d.reschedule.clone().unwrap_or_else(|| ReschedulePolicy::default_for(d.kind));
    let reschedule = match r.block("reschedule") {
        Some(x) => reschedule(x, base_reschedule),
        None => base_reschedule,
    };
    let base_update = d.update.clone().unwrap_or_default();
    let update = r.block("update").map(|u| update(u, base_update.clone())).or(Some(base_update));
    // Rolling updates are for long-running jobs; Nomad ignores `update` on batch jobs.
    let update = if matches!(d.kind, JobType::Service | JobType::System) { update } else { None };
    let count = match r.u32("count") {
        Some(c) if matches!(d.kind, JobType::System | JobType::Sysbatch) && c > 1 => {
            r.error(None, format!("count: a {} job runs once per node; count {c} is not allowed", d.kind.as_str()));
            1
        }
        Some(c) if c > super::MAX_COUNT => {
            r.error(None, format!("count: {c} is over {}", super::MAX_COUNT));
            c
        }
        Some(c) => c,
        None => 1,
    };
    let network = r.block("network").map(network).unwrap_or_else(|| Network { mode: "host".into(), ports: vec![] });
    let volumes = volumes(r);
    let services: Vec<_> = r.blocks("service").into_iter().filter_map(|s| task::service(s, None)).collect();
    let constraints = constraints(r);
    let meta = r.string_map("meta");
    let mut tasks: Vec<_> = r.blocks("task").into_iter().filter_map(|t| task::task(t, restart)).collect();
    if let Some(v) = super::extra::vault(r) {
        super::extra::grant(r, v, tasks.iter_mut());
    }
    if tasks.is_empty() {
        r.error(None, format!("group {name:?} has no `task`"));
    }
    unique(r, tasks.iter().map(|t| t.name.as_str()), "task");
    let g = Group { name, count, constraints, network, services, tasks, reschedule, update, volumes, meta };
    task::check_references(r, &g);
    b.reader.finish();
    Some(g)
}

fn unique<'x>(r: &Reader<'_, '_>, names: impl Iterator<Item = &'x str>, what: &str) {
    let mut seen = BTreeSet::new();
    for n in names {
        if !seen.insert(n) {
            r.error(None, format!("two {what}s are named {n:?}"));
        }
    }
}

/// Every `constraint` block of a body. Nomad's shorthands (`distinct_hosts = true`,
/// `version = ">= 1.2"`, ...) are accepted too.
pub fn constraints(r: &mut Reader<'_, '_>) -> Vec<Constraint> {
    let mut out = Vec::new();
    for mut c in r.blocks("constraint") {
        let cr = &mut c.reader;
        let attribute = cr.string("attribute").unwrap_or_default();
        let mut operator = cr.string("operator");
        let mut value = cr.string("value").unwrap_or_default();
        for short in ["version", "semver", "regexp", "set_contains", "set_contains_any"] {
            if let Some(v) = cr.string(short) {
                operator = Some(short.into());
                value = v;
            }
        }
        if cr.bool("distinct_hosts") == Some(true) {
            operator = Some("distinct_hosts".into());
            value = "true".into();
        }
        let mut attribute = attribute;
        if let Some(p) = cr.string("distinct_property") {
            operator = Some("distinct_property".into());
            attribute = p;
        }
        let op_text = operator.unwrap_or_else(|| "=".into());
        let Some(op) = Operator::parse(&op_text) else {
            cr.error(None, format!("operator: {op_text:?} is not a constraint operator"));
            continue;
        };
        let needs_attribute = !matches!(op, Operator::DistinctHosts);
        if needs_attribute && attribute.is_empty() {
            cr.error(None, format!("a `{}` constraint needs an `attribute`", op.as_str()));
        }
        if op == Operator::Regexp
            && let Err(e) = regex_lite::Regex::new(&value)
        {
            cr.error(None, format!("value: {value:?} is not a regular expression: {e}"));
        }
        c.reader.finish();
        out.push(Constraint { attribute, operator: op, value });
    }
    out
}

pub(super) fn restart(mut b: Child<'_, '_>, base: RestartPolicy) -> RestartPolicy {
    let r = &mut b.reader;
    let mut p = base;
    p.attempts = r.u32("attempts").unwrap_or(p.attempts);
    p.interval_ms = r.duration_ms("interval").unwrap_or(p.interval_ms);
    p.delay_ms = r.duration_ms("delay").unwrap_or(p.delay_ms);
    match r.string("mode").as_deref() {
        None => {}
        Some("fail") => p.mode = RestartMode::Fail,
        Some("delay") => p.mode = RestartMode::Delay,
        Some(m) => r.error(None, format!("mode: {m:?} is not a restart mode (fail, delay)")),
    }
    r.bool("render_templates");
    b.reader.finish();
    p
}

fn reschedule(mut b: Child<'_, '_>, base: ReschedulePolicy) -> ReschedulePolicy {
    let r = &mut b.reader;
    let mut p = base;
    p.attempts = r.u32("attempts").unwrap_or(p.attempts);
    p.interval_ms = r.duration_ms("interval").unwrap_or(p.interval_ms);
    p.delay_ms = r.duration_ms("delay").unwrap_or(p.delay_ms);
    p.max_delay_ms = r.duration_ms("max_delay").unwrap_or(p.max_delay_ms);
    p.unlimited = r.bool("unlimited").unwrap_or(p.unlimited);
    if let Some(f) = r.string("delay_function") {
        if ["constant", "exponential", "fibonacci"].contains(&f.as_str()) {
            p.delay_function = f;
        } else {
            r.error(None, format!("delay_function: {f:?} is not one of constant, exponential, fibonacci"));
        }
    }
    b.reader.finish();
    p
}

fn update(mut b: Child<'_, '_>, base: UpdateStrategy) -> UpdateStrategy {
    let r = &mut b.reader;
    let mut u = base;
    u.max_parallel = r.u32("max_parallel").unwrap_or(u.max_parallel);
    u.health_check = r.string("health_check").unwrap_or(u.health_check);
    if !["checks", "task_states", "manual"].contains(&u.health_check.as_str()) {
        r.error(None, format!("health_check: {:?} is not one of checks, task_states, manual", u.health_check));
    }
    u.min_healthy_time_ms = r.duration_ms("min_healthy_time").unwrap_or(u.min_healthy_time_ms);
    u.healthy_deadline_ms = r.duration_ms("healthy_deadline").unwrap_or(u.healthy_deadline_ms);
    u.progress_deadline_ms = r.duration_ms("progress_deadline").unwrap_or(u.progress_deadline_ms);
    u.auto_revert = r.bool("auto_revert").unwrap_or(u.auto_revert);
    u.canary = r.u32("canary").unwrap_or(u.canary);
    u.stagger_ms = r.duration_ms("stagger").unwrap_or(u.stagger_ms);
    r.bool("auto_promote");
    b.reader.finish();
    u
}

fn periodic(mut b: Child<'_, '_>) -> Periodic {
    let r = &mut b.reader;
    let mut crons = r.strings("crons").unwrap_or_default();
    crons.extend(r.string("cron"));
    if crons.is_empty() {
        r.error(None, "periodic needs `cron` or `crons`");
    }
    for c in &crons {
        if let Err(e) = super::cron::Schedule::parse(c) {
            r.error(None, format!("cron {c:?}: {e}"));
        }
    }
    let time_zone = r.string("time_zone").unwrap_or_else(|| "UTC".into());
    if time_zone != "UTC" && time_zone != "Local" {
        r.ctx.warn(
            r.span.clone(),
            &r.path,
            format!("time_zone {time_zone:?}: schedules run in UTC until time zones land"),
        );
    }
    let p = Periodic {
        crons,
        time_zone,
        prohibit_overlap: r.bool("prohibit_overlap").unwrap_or(false),
        enabled: r.bool("enabled").unwrap_or(true),
    };
    b.reader.finish();
    p
}

fn network(mut b: Child<'_, '_>) -> Network {
    let r = &mut b.reader;
    let mode = r.string("mode").unwrap_or_else(|| "host".into());
    if !["host", "bridge", "none"].contains(&mode.as_str()) {
        r.error(None, format!("mode: {mode:?} is not available (host, bridge, none)"));
    }
    let mut ports = Vec::new();
    for mut p in r.blocks("port") {
        let Some(label) = p.label("the port's label, as in port \"http\"") else { continue };
        let pr = &mut p.reader;
        let port = |pr: &mut Reader<'_, '_>, name: &str| match pr.u64(name) {
            Some(n) if (1..=65535).contains(&n) => Some(n as u16),
            Some(0) if name == "static" => None,
            Some(n) => {
                pr.error(None, format!("{name}: {n} is not a port number"));
                None
            }
            None => None,
        };
        let static_port = port(pr, "static");
        let to = port(pr, "to");
        let host_network = pr.string("host_network");
        p.reader.finish();
        ports.push(Port { label, static_port, to, host_network });
    }
    for dns in r.blocks("dns") {
        dns.reader.finish_ignored();
    }
    unique(r, ports.iter().map(|p| p.label.as_str()), "port");
    b.reader.finish();
    Network { mode, ports }
}

fn volumes(r: &mut Reader<'_, '_>) -> BTreeMap<String, Volume> {
    let mut out = BTreeMap::new();
    for mut v in r.blocks("volume") {
        let Some(name) = v.label("the volume's name, as in volume \"media\"") else { continue };
        let vr = &mut v.reader;
        let kind = vr.string("type").unwrap_or_else(|| "host".into());
        let source = vr.string("source").unwrap_or_else(|| name.clone());
        let read_only = vr.bool("read_only").unwrap_or(false);
        let access_mode = vr.string("access_mode").unwrap_or_default();
        let attachment = vr.string("attachment_mode").unwrap_or_default();
        vr.value("per_alloc");
        let path = vr.path.clone();
        match kind.as_str() {
            "host" | "csi" => {
                if let Err(why) = volume_modes(&access_mode, &attachment, read_only) {
                    vr.ctx.error(vr.span.clone(), &path, why);
                }
            }
            other => vr.ctx.unsupported.borrow_mut().push(vr.ctx.diagnostic(
                vr.span.clone(),
                &path,
                format!("volume type {other:?} is not supported: host, or csi for a Rabble volume"),
            )),
        }
        if let Some(m) = vr.block("mount_options") {
            m.reader.finish_ignored();
        }
        v.reader.finish();
        out.insert(name, Volume { source, read_only, kind, access_mode });
    }
    out
}

/// CSI's access and attachment modes as Nomad takes them: a filesystem attachment, a
/// known access mode, and read-only use of a read-only mode.
fn volume_modes(access: &str, attachment: &str, read_only: bool) -> Result<(), String> {
    if !matches!(attachment, "" | "file-system") {
        return Err(format!("attachment_mode {attachment:?}: Rabble volumes attach as \"file-system\""));
    }
    match access {
        "" | "single-node-writer" | "multi-node-single-writer" | "multi-node-multi-writer" => Ok(()),
        "single-node-reader-only" | "multi-node-reader-only" if read_only => Ok(()),
        "single-node-reader-only" | "multi-node-reader-only" => {
            Err(format!("access_mode {access:?} needs read_only = true"))
        }
        other => Err(format!(
            "access_mode {other:?}: single-node-reader-only, single-node-writer, multi-node-reader-only, \
             multi-node-single-writer or multi-node-multi-writer"
        )),
    }
}
