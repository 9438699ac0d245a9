//! Plain-text tables for the CLI (no colours, aligned columns, one row per thing).

use rabble_shared::api::{NodeStatus, NodeView, ServiceView};

/// Renders rows as left-aligned columns separated by two spaces.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "K", "M", "G", "T"];
    let (mut v, mut i) = (n as f64, 0);
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 { format!("{n}B") } else { format!("{v:.1}{}", U[i]) }
}

pub fn ago(ms: Option<u64>) -> String {
    match ms {
        None => "-".into(),
        Some(ms) if ms < 60_000 => format!("{}s ago", ms / 1000),
        Some(ms) if ms < 3_600_000 => format!("{}m ago", ms / 60_000),
        Some(ms) => format!("{}h ago", ms / 3_600_000),
    }
}

/// `HH:MM:SS` (UTC) of a unix-milliseconds time.
pub fn clock(ts_ms: u64) -> String {
    let s = ts_ms / 1000 % 86_400;
    format!("{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

pub fn nodes(nodes: &[NodeView]) -> String {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let f = n.facts.as_ref();
            let hb = n.heartbeat.as_ref();
            let status = match n.status {
                NodeStatus::Up => "up".to_owned(),
                NodeStatus::Down => format!("down ({})", n.reason),
                NodeStatus::Unknown => "unknown (not heard from since the hub started)".to_owned(),
            };
            // Nomad's words: eligible / ineligible, and whether a drain is under way.
            let elig = if n.eligible { "eligible" } else { "ineligible" };
            let drain = if n.drain_deadline_ms.is_some() { "draining" } else { "-" };
            vec![
                n.id.to_string(),
                status,
                elig.to_owned(),
                drain.to_owned(),
                f.map_or("-".into(), |f| f.advertise.clone()),
                f.map_or("-".into(), |f| f.arch.clone()),
                f.map_or("-".into(), |f| format!("{} {}", f.os.name, f.os.version).trim().to_owned()),
                hb.map_or("-".into(), |h| format!("{:.0}%", h.cpu_percent)),
                hb.map_or("-".into(), |h| format!("{}/{}", bytes(h.memory_used_bytes), bytes(h.memory_total_bytes))),
                hb.map_or("-".into(), |h| format!("{:.2}", h.load[0])),
                hb.and_then(|h| h.temperature_c).map_or("-".into(), |t| format!("{t:.0}°C")),
                n.services.to_string(),
                f.and_then(|f| f.drivers.get("docker")).map_or("-".into(), |d| match d.healthy {
                    true => d.version.clone(),
                    false => "down".into(),
                }),
                ago(n.last_seen_ago_ms),
            ]
        })
        .collect();
    render(
        &[
            "NODE",
            "STATUS",
            "ELIGIBILITY",
            "DRAIN",
            "ADDRESS",
            "ARCH",
            "OS",
            "CPU",
            "MEM",
            "LOAD",
            "TEMP",
            "SERVICES",
            "DOCKER",
            "SEEN",
        ],
        &rows,
    )
}

pub fn services(services: &[ServiceView]) -> String {
    let mut rows = Vec::new();
    for s in services {
        for i in &s.instances {
            let addr = match i.port {
                Some(p) => format!("{}:{p}", i.address),
                None => i.address.clone(),
            };
            let checks = i.checks.iter().filter(|c| c.status == rabble_shared::Status::Passing).count();
            rows.push(vec![
                s.name.clone(),
                i.node.to_string(),
                addr,
                i.status.to_string(),
                format!("{checks}/{} passing", i.checks.len()),
                i.tags.join(","),
            ]);
        }
    }
    render(&["SERVICE", "NODE", "ADDRESS", "STATUS", "CHECKS", "TAGS"], &rows)
}

/// `rabble routes`: one row per router, then the problems of each lane.
pub fn routes(tables: &[rabble_shared::routes::LaneTable]) -> String {
    let mut rows = Vec::new();
    for t in tables {
        for (name, r) in &t.routers {
            let servers = t
                .services
                .get(&r.service)
                .map(|s| s.servers.iter().map(|x| x.url.as_str()).collect::<Vec<_>>().join(" "));
            let tls = match &r.tls {
                Some(tls) => tls.cert_resolver.clone().map_or("tls".to_owned(), |c| format!("tls:{c}")),
                None => "-".to_owned(),
            };
            rows.push(vec![
                t.lane.clone(),
                name.clone(),
                r.rule.clone(),
                r.priority.to_string(),
                tls,
                if r.middlewares.is_empty() { "-".into() } else { r.middlewares.join(",") },
                format!("{} -> {}", r.service, servers.unwrap_or_default()),
            ]);
        }
    }
    let mut out = render(&["LANE", "ROUTER", "RULE", "PRIORITY", "TLS", "MIDDLEWARES", "SERVICE"], &rows);
    for t in tables {
        for p in &t.problems {
            let whose = if p.instance.is_empty() { String::new() } else { format!("{} ", p.instance) };
            out.push_str(&format!("{}: {whose}{}: {}\n", t.lane, p.tag, p.reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let t = render(&["A", "LONGER"], &[vec!["xxxx".into(), "1".into()], vec!["y".into(), "2".into()]]);
        assert_eq!(t, "A     LONGER\nxxxx  1\ny     2\n");
        assert_eq!(bytes(1536), "1.5K");
        assert_eq!(clock(3_723_000), "01:02:03Z");
    }
}
