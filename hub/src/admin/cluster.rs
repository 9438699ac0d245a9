//! `rabble-hub cluster keygen|status|leave|remove-peer`: a key for a new cluster (offline),
//! and the rest through the running hub's API (`/api/v1/cluster`), with `RABBLE_TOKEN` once
//! the ACLs are bootstrapped.

use super::AdminError;
use rabble_shared::api::{ApiError, ClusterStatus};
use std::io::Write;
use std::net::SocketAddr;

pub fn keygen(out: &mut impl Write) -> Result<(), AdminError> {
    let key = crate::cluster::tls::ClusterKey::generate().map_err(|e| AdminError::Api(e.to_string()))?;
    writeln!(out, "{key}")?;
    Ok(())
}

fn call(http: SocketAddr, method: &str, path: &str, body: Option<String>) -> Result<String, AdminError> {
    let url = format!("http://{}{path}", crate::broker::local_addr(http));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let token = std::env::var("RABBLE_TOKEN").unwrap_or_default();
    let sent = match method {
        "GET" => agent.get(&url).header("authorization", &format!("Bearer {token}")).call(),
        _ => agent
            .post(&url)
            .header("authorization", &format!("Bearer {token}"))
            .header("content-type", "application/json")
            .send(body.unwrap_or_default()),
    };
    let mut resp = sent.map_err(|e| AdminError::Api(format!("{url}: {e} (is the hub running?)")))?;
    let text = resp.body_mut().read_to_string().map_err(|e| AdminError::Api(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(AdminError::Api(serde_json::from_str::<ApiError>(&text).map_or(text, |e| e.error)));
    }
    Ok(text)
}

pub fn status(http: SocketAddr, out: &mut impl Write) -> Result<(), AdminError> {
    let text = call(http, "GET", "/api/v1/cluster", None)?;
    let s: ClusterStatus = serde_json::from_str(&text).map_err(|e| AdminError::Api(e.to_string()))?;
    write!(out, "{}", render(&s))?;
    Ok(())
}

/// The table `cluster status` prints.
pub fn render(s: &ClusterStatus) -> String {
    if !s.clustered {
        return "not clustered: this hub runs alone (see docs/operations.md, \"Several hubs\")\n".into();
    }
    let mut t = format!(
        "{:<20} {:<18} {:<24} {:<9} {:>8} {:>12}\n",
        "ID", "NAME", "ADDRESS", "ROLE", "MATCHED", "LAST CONTACT"
    );
    for m in &s.members {
        let me = if m.id == s.this { " *" } else { "" };
        t.push_str(&format!(
            "{:<20} {:<18} {:<24} {:<9} {:>8} {:>12}\n",
            format!("{}{me}", m.id),
            m.name,
            m.addr,
            m.role,
            m.matched.map_or("-".into(), |i| i.to_string()),
            m.last_contact_ms.map_or("-".into(), |ms| format!("{ms}ms")),
        ));
    }
    t.push_str(&format!(
        "term {}, applied {}, catalog index {}{}\n",
        s.term,
        s.applied.map_or("-".into(), |a| a.to_string()),
        s.catalog_index,
        s.problem.as_ref().map_or(String::new(), |p| format!("\nproblem: {p}"))
    ));
    t
}

/// Removes `member` (an id or a name), or this hub when `None`.
pub fn remove(http: SocketAddr, member: Option<&str>, out: &mut impl Write) -> Result<(), AdminError> {
    let body = serde_json::json!({ "member": member }).to_string();
    let text = call(http, "POST", "/api/v1/cluster/remove", Some(body))?;
    writeln!(out, "{}", text.trim().trim_matches('"'))?;
    Ok(())
}

/// `cluster reset`: the old log set aside, the next start a cluster of one.
pub fn reset(data_dir: &std::path::Path, out: &mut impl Write) -> Result<(), AdminError> {
    let aside = crate::cluster::reset(data_dir).map_err(|e| AdminError::Api(e.to_string()))?;
    writeln!(
        out,
        "The old cluster's log is set aside in {}.\n\
         Start this hub: it becomes a cluster of one with its catalog. Then, on every other hub of the old\n\
         cluster, stop it, remove its data dir and start it: it joins this one and receives a copy of\n\
         everything. Never start another hub of the old cluster with its old data dir.",
        aside.display()
    )?;
    Ok(())
}
