//! The cluster as one member sees it, in the API's words (`shared::api::ClusterStatus`):
//! members, roles, the leader, how far each is (the leader knows), and why writes cannot
//! be made when they cannot.

use super::{Cluster, TypeConfig};
use openraft::async_runtime::WatchReceiver as _;
use openraft::{Instant as _, RaftMetrics, ServerState};
use rabble_shared::api::{ClusterMember, ClusterStatus};

/// One line on the quorum, for errors: how many voters this member can count on.
pub fn quorum_summary(m: &RaftMetrics<TypeConfig>) -> String {
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let need = voters.len() / 2 + 1;
    format!("{} voters, {need} needed to elect a leader; this member is {:?}", voters.len(), m.state)
}

pub fn of(c: &Cluster) -> ClusterStatus {
    let m = c.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let leader = c.leader().map(|(id, _)| id);
    let members = membership
        .nodes()
        .map(|(id, n)| {
            let voter = voters.contains(id);
            let role = if Some(*id) == leader {
                "leader"
            } else if !voter {
                "learner"
            } else if n.witness {
                "witness"
            } else {
                "follower"
            };
            ClusterMember {
                id: *id,
                name: n.name.clone(),
                addr: n.addr.clone(),
                role: role.into(),
                voter,
                matched: m.replication.as_ref().and_then(|r| r.get(id).cloned().flatten()).map(|l| l.index),
                last_contact_ms: m
                    .heartbeat
                    .as_ref()
                    .and_then(|h| h.get(id).cloned().flatten())
                    .map(|at| at.elapsed().as_millis() as u64),
            }
        })
        .collect();
    let problem = match (m.state, leader) {
        (_, Some(_)) => None,
        (ServerState::Learner, None) => Some("this hub is not yet a voting member".into()),
        _ => Some(format!(
            "no leader{}: {} (writes are refused until a majority of voters is back)",
            c.last_contact().map_or(String::new(), |ago| format!(" (the last one heard from {}s ago)", ago.as_secs())),
            quorum_summary(&m)
        )),
    };
    ClusterStatus {
        clustered: true,
        this: c.id,
        leader,
        term: m.current_term,
        applied: m.last_applied.map(|l| l.index),
        catalog_index: c.snapshot.borrow().index,
        members,
        problem,
    }
}
