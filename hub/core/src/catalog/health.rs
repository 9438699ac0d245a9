//! The one rule for an instance's health and address, used by every reader of the
//! catalog (API views, the DNS zone, and later routes and placement): an instance's
//! checks are its own plus its node's node-level checks, aggregated Consul's way
//! (maintenance > critical > warning > passing), and a down node makes all of its
//! instances critical.

use super::node::Node;
use rabble_shared::Status;
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::{CheckState, ServiceRegistration};

/// The checks that count for `reg` on `node`: those bound to the service and the
/// node-level ones (no `service_id`).
pub fn checks<'a>(node: &'a Node, reg: &'a ServiceRegistration) -> impl Iterator<Item = &'a CheckState> + 'a {
    node.checks.values().filter(|c| c.service_id.is_none() || c.service_id.as_deref() == Some(reg.id.as_str()))
}

/// The instance's aggregate status; critical at least when its node is down.
pub fn status(node: &Node, reg: &ServiceRegistration) -> Status {
    let status = Status::aggregate(checks(node, reg).map(|c| c.status));
    if node.status == NodeStatus::Down { status.max(Status::Critical) } else { status }
}

/// Whether an instance with `status` is served (DNS answers, routes): passing always,
/// warning unless `only_passing`, never critical or maintenance.
pub fn serves(status: Status, only_passing: bool) -> bool {
    match status {
        Status::Passing => true,
        Status::Warning => !only_passing,
        Status::Critical | Status::Maintenance => false,
    }
}

/// The address an instance is reached at: its own, or its node's advertised address.
pub fn address<'a>(node: &'a Node, reg: &'a ServiceRegistration) -> Option<&'a str> {
    reg.address.as_deref().or_else(|| node.facts.as_ref().map(|f| f.advertise.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rabble_shared::msg::CheckKind;

    fn check(id: &str, service: Option<&str>, status: Status) -> CheckState {
        CheckState {
            id: id.into(),
            name: id.into(),
            service_id: service.map(Into::into),
            kind: CheckKind::Http,
            status,
            output: String::new(),
            since_ms: 0,
        }
    }

    fn web() -> ServiceRegistration {
        ServiceRegistration {
            id: "web".into(),
            name: "web".into(),
            tags: vec![],
            address: None,
            port: None,
            meta: Default::default(),
            source: String::new(),
        }
    }

    #[test]
    fn own_and_node_checks_count_others_do_not() {
        let mut node = Node::new();
        let key = |s: &str| rabble_shared::TopicId::new(s).unwrap();
        node.checks.insert(key("a"), check("a", Some("web"), Status::Passing));
        node.checks.insert(key("b"), check("b", Some("db"), Status::Critical));
        assert_eq!(status(&node, &web()), Status::Passing, "another service's check does not count");
        node.checks.insert(key("m"), check("m", None, Status::Warning));
        assert_eq!(status(&node, &web()), Status::Warning, "a node-level check counts");
        assert_eq!(checks(&node, &web()).count(), 2);
        node.status = NodeStatus::Down;
        assert_eq!(status(&node, &web()), Status::Critical, "a down node's instances are critical");
    }

    #[test]
    fn which_statuses_are_served() {
        assert!(serves(Status::Passing, true) && serves(Status::Warning, false));
        assert!(!serves(Status::Warning, true) && !serves(Status::Critical, false));
        assert!(!serves(Status::Maintenance, false));
    }
}
