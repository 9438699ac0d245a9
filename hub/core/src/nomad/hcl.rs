//! Nomad's JSON job (`api.Job`) written out as the job file it stands for, so a job
//! that arrives as JSON is read, defaulted and checked by the same parser as a file.
//! Keys are matched without regard to case (as Go's JSON decoder does); fields Nomad's
//! server fills in, and fields that change nothing in Rabble, are passed over; any
//! other field that is set is an error naming its JSON path.

use serde_json::Value;

/// One problem with the JSON: where (`Job.TaskGroups[0].Tasks[1]`) and what.
pub type Problem = (String, String);

/// An object being read: its fields by lower-case name, and which were taken.
pub(super) struct Obj<'v> {
    path: String,
    fields: Vec<(String, &'v Value, bool)>,
}

impl<'v> Obj<'v> {
    fn new(path: String, v: &'v Value, problems: &mut Vec<Problem>) -> Option<Obj<'v>> {
        match v {
            Value::Object(m) => {
                let fields = m.iter().map(|(k, v)| (k.to_ascii_lowercase(), v, false)).collect();
                Some(Obj { path, fields })
            }
            Value::Null => None,
            other => {
                problems.push((path, format!("expected an object, got {}", kind(other))));
                None
            }
        }
    }

    /// The field `name` (any case), marked as read; null counts as absent.
    pub(super) fn take(&mut self, name: &str) -> Option<&'v Value> {
        let lower = name.to_ascii_lowercase();
        let f = self.fields.iter_mut().find(|(k, _, _)| *k == lower)?;
        f.2 = true;
        (!f.1.is_null()).then_some(f.1)
    }

    /// The field `name` (any case), not marked as read.
    pub(super) fn peek(&self, name: &str) -> Option<&'v Value> {
        let lower = name.to_ascii_lowercase();
        self.fields.iter().find(|(k, _, _)| *k == lower).map(|f| f.1).filter(|v| !v.is_null())
    }

    pub(super) fn at(&self, name: &str) -> String {
        format!("{}.{name}", self.path)
    }

    /// The fields nobody read that are set: an error unless Nomad's server or a field
    /// with no effect in Rabble (`passed`).
    pub(super) fn finish(self, passed: &[&str], problems: &mut Vec<Problem>) {
        for (k, v, read) in self.fields {
            if !read && !empty(v) && !passed.contains(&k.as_str()) {
                problems.push((format!("{}.{k}", self.path), "is not a field Rabble reads".into()));
            }
        }
    }
}

/// Null, false, zero, "", [] and {} (and objects of only those): what Nomad's
/// canonical form fills unset fields with.
fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(empty),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// An HCL quoted string: escapes, and `${`/`%{` doubled so JSON's text stays literal
/// (a runtime `${NOMAD_PORT_http}` is kept as written either way).
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Any JSON value as an HCL expression.
pub(super) fn expr(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(a) => format!("[{}]", a.iter().map(expr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => {
            let fields: Vec<String> = o.iter().map(|(k, v)| format!("{} = {}", quote(k), expr(v))).collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}

/// The job file being written, and what was wrong.
pub struct Writer {
    pub out: String,
    depth: usize,
    pub problems: Vec<Problem>,
}

impl Writer {
    pub fn new() -> Writer {
        Writer { out: String::new(), depth: 0, problems: Vec::new() }
    }

    pub(super) fn line(&mut self, text: &str) {
        for _ in 0..self.depth {
            self.out.push_str("  ");
        }
        self.out.push_str(text);
        self.out.push('\n');
    }

    pub(super) fn open(&mut self, ident: &str, label: Option<&str>) {
        match label {
            Some(l) => self.line(&format!("{ident} {} {{", quote(l))),
            None => self.line(&format!("{ident} {{")),
        }
        self.depth += 1;
    }

    pub(super) fn close(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.line("}");
    }

    /// `key = <the JSON value>` if the field is there.
    pub(super) fn copy(&mut self, o: &mut Obj<'_>, field: &str, key: &str) {
        // Go's zero string is Nomad's "not set".
        if let Some(v) = o.take(field).filter(|v| v.as_str() != Some("")) {
            self.line(&format!("{key} = {}", expr(v)));
        }
    }

    /// A duration field (nanoseconds, or a Go duration string) as `key = "<n>ms"`.
    pub(super) fn duration(&mut self, o: &mut Obj<'_>, field: &str, key: &str) {
        match o.take(field) {
            None => {}
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x >= 0.0 => self.line(&format!("{key} = \"{}ms\"", (x / 1e6).round() as u64)),
                _ => self.problems.push((o.at(field), format!("{n} is not a duration in nanoseconds"))),
            },
            Some(Value::String(s)) => self.line(&format!("{key} = {}", quote(s))),
            Some(other) => self.problems.push((o.at(field), format!("expected nanoseconds, got {}", kind(other)))),
        }
    }

    /// Each element of a list field, read by `each` as an object.
    pub(super) fn each<'v>(&mut self, o: &mut Obj<'v>, field: &str, mut each: impl FnMut(&mut Writer, Obj<'v>)) {
        let path = o.at(field);
        match o.take(field) {
            None => {}
            Some(Value::Array(a)) => {
                for (i, v) in a.iter().enumerate() {
                    if let Some(x) = Obj::new(format!("{path}[{i}]"), v, &mut self.problems) {
                        each(self, x);
                    }
                }
            }
            Some(other) => self.problems.push((path, format!("expected a list, got {}", kind(other)))),
        }
    }

    /// An object field, read by `f`.
    pub(super) fn object<'v>(&mut self, o: &mut Obj<'v>, field: &str, f: impl FnOnce(&mut Writer, Obj<'v>)) {
        let path = o.at(field);
        if let Some(v) = o.take(field)
            && let Some(x) = Obj::new(path, v, &mut self.problems)
        {
            f(self, x);
        }
    }

    /// A field Rabble refuses (an `affinity`) or reads nothing of (`vault`): written as
    /// its empty block when set, so the parser says why, as it does for a job file.
    pub(super) fn refused(&mut self, o: &mut Obj<'_>, field: &str, block: &str) {
        if o.take(field).is_some_and(|v| !empty(v)) {
            self.line(&format!("{block} {{}}"));
        }
    }
}

/// The job file of Nomad JSON job `v` (the object inside `{"Job": ...}`).
pub fn job(w: &mut Writer, v: &Value) {
    let Some(mut o) = Obj::new("Job".into(), v, &mut w.problems) else {
        w.problems.push(("Job".into(), "is missing".into()));
        return;
    };
    let id = o.take("ID").or_else(|| o.take("Name")).and_then(Value::as_str).unwrap_or_default().to_owned();
    if id.is_empty() {
        w.problems.push(("Job.ID".into(), "is missing".into()));
    }
    w.open("job", Some(&id));
    for (field, key) in [("Name", "name"), ("Type", "type"), ("Priority", "priority"), ("Region", "region")] {
        w.copy(&mut o, field, key);
    }
    w.copy(&mut o, "Datacenters", "datacenters");
    w.copy(&mut o, "Meta", "meta");
    constraints(w, &mut o);
    w.object(&mut o, "Periodic", periodic);
    w.object(&mut o, "ParameterizedJob", |w, mut p| {
        w.open("parameterized", None);
        for (field, key) in
            [("Payload", "payload"), ("MetaRequired", "meta_required"), ("MetaOptional", "meta_optional")]
        {
            w.copy(&mut p, field, key);
        }
        w.close();
        p.finish(&[], &mut w.problems);
    });
    w.object(&mut o, "Update", update);
    w.object(&mut o, "Reschedule", reschedule);
    for (field, block) in
        [("Affinities", "affinity"), ("Spreads", "spread"), ("Multiregion", "multiregion"), ("Vault", "vault")]
    {
        w.refused(&mut o, field, block);
    }
    w.each(&mut o, "TaskGroups", group);
    w.close();
    const PASSED: &[&str] = &[
        "namespace",
        "status",
        "statusdescription",
        "stop",
        "stable",
        "version",
        "submittime",
        "createindex",
        "modifyindex",
        "jobmodifyindex",
        "parentid",
        "dispatched",
        "dispatchidempotencytoken",
        "payload",
        "nomadtokenid",
        "vaulttoken",
        "vaultnamespace",
        "consultoken",
        "consulnamespace",
        "nodepool",
        "allatonce",
        "ui",
        "versiontag",
        "migrate",
    ];
    o.finish(PASSED, &mut w.problems);
}

pub(super) fn constraints(w: &mut Writer, o: &mut Obj<'_>) {
    w.each(o, "Constraints", |w, mut c| {
        w.open("constraint", None);
        for (field, key) in [("LTarget", "attribute"), ("Operand", "operator"), ("RTarget", "value")] {
            w.copy(&mut c, field, key);
        }
        w.close();
        c.finish(&[], &mut w.problems);
    });
}

fn periodic(w: &mut Writer, mut p: Obj<'_>) {
    w.open("periodic", None);
    match (p.take("Specs"), p.take("Spec")) {
        (Some(specs), _) => w.line(&format!("crons = {}", expr(specs))),
        (None, Some(spec)) => w.line(&format!("cron = {}", expr(spec))),
        (None, None) => {}
    }
    if let Some(t) = p.take("SpecType").and_then(Value::as_str)
        && t != "cron"
    {
        w.problems.push((p.at("SpecType"), format!("{t:?}: only cron schedules")));
    }
    for (field, key) in [("Enabled", "enabled"), ("ProhibitOverlap", "prohibit_overlap"), ("TimeZone", "time_zone")] {
        w.copy(&mut p, field, key);
    }
    w.close();
    p.finish(&[], &mut w.problems);
}

fn update(w: &mut Writer, mut u: Obj<'_>) {
    // Nomad's canonical form has zeros where nothing was set: only what is set is written,
    // and no block at all when nothing is.
    let mark = w.out.len();
    w.open("update", None);
    let opened = w.out.len();
    for (field, key) in [("MaxParallel", "max_parallel"), ("HealthCheck", "health_check"), ("Canary", "canary")] {
        if let Some(v) = u.take(field).filter(|v| !empty(v)) {
            w.line(&format!("{key} = {}", expr(v)));
        }
    }
    w.copy(&mut u, "AutoRevert", "auto_revert");
    let durations = [
        ("MinHealthyTime", "min_healthy_time"),
        ("HealthyDeadline", "healthy_deadline"),
        ("ProgressDeadline", "progress_deadline"),
        ("Stagger", "stagger"),
    ];
    for (field, key) in durations {
        if u.peek(field).is_some_and(|v| !empty(v)) {
            w.duration(&mut u, field, key);
        } else {
            u.take(field);
        }
    }
    if w.out.len() == opened {
        w.out.truncate(mark);
        w.depth -= 1;
    } else {
        w.close();
    }
    u.finish(&["autopromote"], &mut w.problems);
}

fn reschedule(w: &mut Writer, mut r: Obj<'_>) {
    w.open("reschedule", None);
    w.copy(&mut r, "Attempts", "attempts");
    w.duration(&mut r, "Interval", "interval");
    w.duration(&mut r, "Delay", "delay");
    w.copy(&mut r, "DelayFunction", "delay_function");
    w.duration(&mut r, "MaxDelay", "max_delay");
    w.copy(&mut r, "Unlimited", "unlimited");
    w.close();
    r.finish(&[], &mut w.problems);
}

pub(super) fn restart(w: &mut Writer, mut r: Obj<'_>) {
    w.open("restart", None);
    w.copy(&mut r, "Attempts", "attempts");
    w.duration(&mut r, "Interval", "interval");
    w.duration(&mut r, "Delay", "delay");
    w.copy(&mut r, "Mode", "mode");
    w.close();
    r.finish(&["rendertemplates"], &mut w.problems);
}

fn group(w: &mut Writer, mut g: Obj<'_>) {
    let name = g.take("Name").and_then(Value::as_str).unwrap_or_default().to_owned();
    w.open("group", Some(&name));
    w.copy(&mut g, "Count", "count");
    w.copy(&mut g, "Meta", "meta");
    constraints(w, &mut g);
    w.object(&mut g, "RestartPolicy", restart);
    w.object(&mut g, "ReschedulePolicy", reschedule);
    w.object(&mut g, "Update", update);
    w.each(&mut g, "Networks", network);
    w.object(&mut g, "Volumes", |w, vols| {
        for (name, v, _) in vols.fields.iter() {
            let Some(mut v) = Obj::new(format!("{}.{name}", vols.path), v, &mut w.problems) else { continue };
            let label = v.take("Name").and_then(Value::as_str).unwrap_or(name).to_owned();
            w.open("volume", Some(&label));
            for (field, key) in [("Type", "type"), ("Source", "source"), ("ReadOnly", "read_only")] {
                w.copy(&mut v, field, key);
            }
            w.close();
            v.finish(
                &["accessmode", "attachmentmode", "perall", "perallloc", "peralloc", "mountoptions"],
                &mut w.problems,
            );
        }
    });
    w.each(&mut g, "Services", super::task::service);
    for (field, block) in
        [("Affinities", "affinity"), ("Spreads", "spread"), ("Scaling", "scaling"), ("Consul", "consul")]
    {
        w.refused(&mut g, field, block);
    }
    w.each(&mut g, "Tasks", super::task::task);
    w.close();
    const PASSED: &[&str] = &[
        "ephemeraldisk",
        "migrate",
        "shutdowndelay",
        "stopafterclientdisconnect",
        "maxclientdisconnect",
        "preventrescheduleonlost",
        "disconnect",
    ];
    g.finish(PASSED, &mut w.problems);
}

fn network(w: &mut Writer, mut n: Obj<'_>) {
    w.open("network", None);
    w.copy(&mut n, "Mode", "mode");
    for field in ["ReservedPorts", "DynamicPorts"] {
        w.each(&mut n, field, |w, mut p| {
            let label = p.take("Label").and_then(Value::as_str).unwrap_or_default().to_owned();
            w.open("port", Some(&label));
            // A dynamic port's Value is what the last placement drew: not part of the job.
            if field == "ReservedPorts" {
                w.copy(&mut p, "Value", "static");
            } else {
                p.take("Value");
            }
            if let Some(to) = p.take("To").and_then(Value::as_i64).filter(|t| *t > 0) {
                w.line(&format!("to = {to}"));
            }
            w.copy(&mut p, "HostNetwork", "host_network");
            w.close();
            p.finish(&[], &mut w.problems);
        });
    }
    w.close();
    n.finish(&["dns", "mbits", "device", "cidr", "ip", "hostname"], &mut w.problems);
}
