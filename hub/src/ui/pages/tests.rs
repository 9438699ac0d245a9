//! The pages as pure renders: what a token may not do is not offered, every value from
//! the catalog is escaped, problems come first.

use super::nodes::render_detail;
use super::overview::{Overview, render};
use super::stores::{render_kv, service_table};
use rabble_shared::api::{InstanceView, NodeStatus, NodeView, ServiceView};
use rabble_shared::{NodeId, Status, TopicId};

fn node(id: &str, status: NodeStatus) -> NodeView {
    NodeView {
        id: NodeId::new(id).unwrap(),
        status,
        reason: "heartbeat-timeout".into(),
        facts: None,
        heartbeat: None,
        last_seen_ago_ms: None,
        services: 0,
        eligible: true,
        drain_deadline_ms: None,
    }
}

#[test]
fn drain_and_eligibility_are_offered_only_to_a_token_that_may_write_the_node() {
    let n = node("pi1", NodeStatus::Up);
    let writer = render_detail(&n, &[], &[], true).into_string();
    assert!(writer.contains(r#"data-api="/api/v1/nodes/pi1/drain""#), "{writer}");
    assert!(writer.contains("Mark ineligible"));
    let reader = render_detail(&n, &[], &[], false).into_string();
    assert!(!reader.contains("data-api"), "a reader is offered an action: {reader}");
    assert!(!reader.contains("Drain"));
    assert!(!writer.contains("/forget"), "an up node is not offered Forget");
    let down = render_detail(&node("pi2", NodeStatus::Down), &[], &[], true).into_string();
    assert!(down.contains(r#"data-api="/api/v1/nodes/pi2/forget""#), "{down}");
}

#[test]
fn what_a_node_says_is_escaped_never_markup() {
    let i = InstanceView {
        node: NodeId::new("pi1").unwrap(),
        node_status: NodeStatus::Up,
        key: TopicId::new("web").unwrap(),
        id: "web".into(),
        name: "web".into(),
        tags: vec!["<script>alert(1)</script>".into()],
        address: "10.0.0.1\"><img src=x>".into(),
        port: Some(80),
        meta: Default::default(),
        status: Status::Passing,
        checks: vec![],
    };
    let html = service_table(&[ServiceView { name: "web".into(), instances: vec![i] }]).into_string();
    assert!(!html.contains("<script>") && !html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;") && html.contains("&quot;&gt;&lt;img"));
}

#[test]
fn the_overview_puts_a_down_node_first_and_says_so_in_words() {
    let o = Overview {
        nodes: vec![node("pi1", NodeStatus::Up), node("pi2", NodeStatus::Down)],
        services: vec![],
        jobs: vec![],
        lanes: vec![],
        problems: vec!["job web group g: cannot place: no node has docker".into()],
        alerts: vec![],
        silences: vec![],
        may_silence: false,
    };
    let html = render(&o).into_string();
    let problems = html.find("Problems").unwrap();
    let down = html.find(r#"<span class="s bad">down</span> node <a href="/ui/nodes/pi2">"#).expect(&html);
    let nodes = html.find("<h2>Nodes</h2>").unwrap();
    assert!(problems < down && down < nodes, "{html}");
    assert!(html.contains("cannot place: no node has docker"));
    let calm = render(&Overview { nodes: vec![node("pi1", NodeStatus::Up)], problems: vec![], ..o }).into_string();
    assert!(calm.contains("all good") && !calm.contains("Alerts"));
}

#[test]
fn the_overview_lists_alerts_and_offers_a_silence_only_to_an_operator() {
    use rabble_shared::alerts::{AlertStatus, GettableAlert};
    let alert = |silenced: bool| GettableAlert {
        labels: [("alertname", "DiskFull"), ("node", "pi1"), ("mount", "/"), ("severity", "warning")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into(),
        annotations: [("summary".to_owned(), "/ on pi1 is 95 % full".to_owned())].into(),
        starts_at: "2026-11-30T00:53:20.000Z".into(),
        ends_at: "0001-01-01T00:00:00.000Z".into(),
        updated_at: "2026-11-30T00:53:20.000Z".into(),
        fingerprint: "0123456789abcdef".into(),
        receivers: vec![],
        status: AlertStatus {
            state: if silenced { "suppressed" } else { "active" }.into(),
            silenced_by: if silenced { vec!["s1".into()] } else { vec![] },
            inhibited_by: vec![],
        },
        generator_url: String::new(),
    };
    let o = Overview {
        nodes: vec![],
        services: vec![],
        jobs: vec![],
        lanes: vec![],
        problems: vec![],
        alerts: vec![alert(false), alert(true)],
        silences: vec![],
        may_silence: true,
    };
    let html = render(&o).into_string();
    assert!(html.contains("/ on pi1 is 95 % full") && html.contains("mount=/ node=pi1"), "{html}");
    assert_eq!(html.matches("Silence 2 h").count(), 1, "only the sent one: {html}");
    assert!(html.contains(r#"<span class="s warn">silenced</span>"#));
    assert!(html.contains("&quot;name&quot;:&quot;alertname&quot;"), "the alert's own labels as matchers: {html}");
    let reader = render(&Overview { may_silence: false, ..o }).into_string();
    assert!(!reader.contains("Silence 2 h"));
}

#[test]
fn a_kv_edit_is_saved_only_at_the_index_it_was_read_at() {
    let open = ("app/greeting".to_owned(), Some("hello".to_owned()), 42);
    let html = render_kv("app/", &[("app/greeting".into(), false)], Some(&open), true).into_string();
    assert!(html.contains(r#"data-api="/v1/kv/app/greeting?cas=42""#), "{html}");
    let read_only = render_kv("app/", &[], Some(&open), false).into_string();
    assert!(!read_only.contains("data-api") && read_only.contains("<pre>hello</pre>"), "{read_only}");
}
