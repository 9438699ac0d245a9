//! The alert core against small catalogs and a clock the tests move: rules, `for`,
//! grouping and its pacing, inhibition, silences.

use super::group::{Dispatcher, Matcher, Route, Silence, muted};
use super::rules::{Inputs, Thresholds, conditions};
use super::track::{Change, Tracker};
use super::*;
use crate::catalog::Catalog;
use crate::dns::fixture::add;
use rabble_shared::api::NodeStatus;
use rabble_shared::msg::{DiskUse, Heartbeat, Throttled};
use rabble_shared::{NodeId, Status};
use std::collections::{BTreeSet, HashMap};

fn hb(disk_used: u64, temp: f32, throttled: u32) -> Heartbeat {
    Heartbeat {
        seq: 1,
        uptime_s: 60,
        cpu_percent: 1.0,
        load: [0.0; 3],
        memory_used_bytes: 1,
        memory_total_bytes: 2,
        disks: vec![DiskUse { mount: "/".into(), used_bytes: disk_used, total_bytes: 100 }],
        temperature_c: Some(temp),
        throttled: Some(Throttled::from_raw(throttled)),
        assignments_refused: 0,
        metrics: None,
    }
}

fn names(c: &[rules::Condition]) -> Vec<String> {
    let mut v: Vec<String> =
        c.iter().map(|c| format!("{}@{}", c.labels["alertname"], c.labels.get("node").map_or("", |n| n))).collect();
    v.sort();
    v
}

#[test]
fn the_built_in_rules_name_what_is_wrong() {
    let mut c = Catalog::default();
    add(&mut c, "pi1", "192.168.1.11", "web", &[], None, Status::Passing);
    add(&mut c, "pi2", "192.168.1.12", "db", &[], None, Status::Critical);
    add(&mut c, "pi3", "192.168.1.13", "dns", &[], None, Status::Critical);
    c.nodes.get_mut(&NodeId::new("pi3").unwrap()).unwrap().status = NodeStatus::Down;
    let heartbeats = HashMap::from([
        (NodeId::new("pi1").unwrap(), hb(95, 85.0, 0x50005)),
        (NodeId::new("pi2").unwrap(), hb(10, 40.0, 0)),
    ]);
    let unplaced = BTreeMap::from([(("web".to_owned(), "g".to_owned()), "no node has 4000 MHz".to_owned())]);
    let none = BTreeMap::new();
    let i = Inputs {
        catalog: &c,
        heartbeats: &heartbeats,
        unplaced: &unplaced,
        reverted: &none,
        certs: &[],
        hubs: None,
        now_ms: 1_000_000,
    };
    let got = conditions(&Thresholds::default(), &i);
    assert_eq!(
        names(&got),
        [
            "CheckCritical@pi2",
            "CheckCritical@pi3",
            "DiskFull@pi1",
            "JobUnplaceable@",
            "NodeDown@pi3",
            "PiThrottled@pi1",
            "TemperatureHigh@pi1"
        ],
        "a down node's checks keep their last state (inhibited when sent, not resolved)"
    );
    let check = got.iter().find(|c| c.labels["alertname"] == "CheckCritical").unwrap();
    assert_eq!((check.labels["service"].as_str(), check.for_ms), ("db", 30_000));
    let throttled = got.iter().find(|c| c.labels["alertname"] == "PiThrottled").unwrap();
    assert!(throttled.annotations["summary"].contains("under-voltage"), "{:?}", throttled.annotations);
    // Every rule can be turned off.
    let off = Thresholds {
        node_down: false,
        check_critical_for_ms: None,
        unplaceable: false,
        disk_percent: None,
        temperature_c: None,
        throttled: false,
        ..Default::default()
    };
    assert!(conditions(&off, &i).is_empty());
}

fn cond(name: &str, node: &str, for_ms: u64) -> rules::Condition {
    rules::Condition {
        labels: Labels::from([("alertname".into(), name.into()), ("node".into(), node.into())]),
        annotations: Default::default(),
        for_ms,
        since_ms: None,
    }
}

#[test]
fn a_condition_fires_after_its_for_once_and_resolves_when_it_stops() {
    let mut t = Tracker::default();
    assert!(t.step(vec![cond("CheckCritical", "pi1", 30_000)], 1_000).is_empty(), "pending");
    assert!(t.step(vec![cond("CheckCritical", "pi1", 30_000)], 20_000).is_empty(), "still pending");
    let fired = t.step(vec![cond("CheckCritical", "pi1", 30_000)], 31_000);
    assert!(matches!(fired.as_slice(), [Change::Fired(a)] if a.starts_ms == 31_000), "{fired:?}");
    assert!(t.step(vec![cond("CheckCritical", "pi1", 30_000)], 40_000).is_empty(), "fires once");
    assert_eq!(t.firing().len(), 1);
    let resolved = t.step(vec![], 50_000);
    assert!(matches!(resolved.as_slice(), [Change::Resolved(a)] if a.ends_ms == Some(50_000)), "{resolved:?}");
    // A pending condition that stops says nothing.
    assert!(t.step(vec![cond("DiskFull", "pi1", 60_000)], 60_000).is_empty());
    assert!(t.step(vec![], 61_000).is_empty());
    // `since` from the catalog: a check critical for 40 s when first seen fires at once.
    let mut c = cond("CheckCritical", "pi2", 30_000);
    c.since_ms = Some(20_000);
    assert!(matches!(t.step(vec![c], 60_000).as_slice(), [Change::Fired(_)]));
    // The tracker survives a restart as data.
    let back: Tracker = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
    assert_eq!(back, t);
}

fn alert(name: &str, node: &str, starts: u64) -> Alert {
    let mut a = Alert {
        labels: Labels::from([("alertname".into(), name.into()), ("node".into(), node.into())]),
        annotations: Default::default(),
        starts_ms: starts,
        ends_ms: None,
    };
    a.labels.insert("severity".into(), "critical".into());
    a
}

fn step(d: &mut Dispatcher, firing: &[Alert], now: u64) -> Vec<(String, Vec<(String, bool)>)> {
    let route = Route::default();
    d.step(&route, firing, &BTreeSet::new(), now)
        .into_iter()
        .map(|n| {
            (
                n.group_labels["alertname"].clone(),
                n.alerts.iter().map(|a| (a.labels["node"].clone(), a.firing())).collect(),
            )
        })
        .collect()
}

#[test]
fn groups_wait_then_send_changes_at_their_interval_repeat_and_resolve_once() {
    let mut d = Dispatcher::default();
    let down = alert("NodeDown", "pi1", 0);
    assert!(step(&mut d, std::slice::from_ref(&down), 0).is_empty(), "group_wait");
    assert_eq!(
        step(&mut d, std::slice::from_ref(&down), 2_000),
        [("NodeDown".to_owned(), vec![("pi1".to_owned(), true)])]
    );
    assert!(step(&mut d, std::slice::from_ref(&down), 40_000).is_empty(), "nothing changed");
    // Another node goes down: its own group (grouped by alertname and node).
    let other = alert("NodeDown", "pi2", 41_000);
    assert!(step(&mut d, &[down.clone(), other.clone()], 41_000).is_empty());
    assert_eq!(step(&mut d, &[down.clone(), other.clone()], 43_000).len(), 1);
    // pi1 comes back: resolved once, in its group's next message.
    assert_eq!(
        step(&mut d, std::slice::from_ref(&other), 50_000),
        [("NodeDown".to_owned(), vec![("pi1".to_owned(), false)])]
    );
    assert!(step(&mut d, std::slice::from_ref(&other), 90_000).is_empty(), "resolved once");
    // pi2 stays down: sent again after repeat_interval.
    assert!(step(&mut d, std::slice::from_ref(&other), 3 * 3_600_000).is_empty());
    assert_eq!(step(&mut d, std::slice::from_ref(&other), 43_000 + 3 * 3_600_000).len(), 1);
    // A flap inside group_wait says nothing at all.
    let mut d2 = Dispatcher::default();
    assert!(step(&mut d2, &[alert("CheckCritical", "pi1", 0)], 0).is_empty());
    assert!(step(&mut d2, &[], 1_000).is_empty());
    assert!(step(&mut d2, &[], 5_000).is_empty());
    assert!(d2.groups.is_empty());
    // The dispatcher survives a restart as data: no duplicate after it.
    let back: Dispatcher = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
}

#[test]
fn a_grouped_resolve_is_not_followed_by_a_repeat_of_the_rest() {
    let route = Route { group_by: vec!["alertname".into()], ..Default::default() };
    let mut d = Dispatcher::default();
    let (a, b) = (alert("DiskFull", "pi1", 0), alert("DiskFull", "pi2", 0));
    let none = BTreeSet::new();
    assert!(d.step(&route, &[a.clone(), b.clone()], &none, 0).is_empty());
    assert_eq!(d.step(&route, &[a.clone(), b.clone()], &none, 2_000)[0].alerts.len(), 2);
    let n = d.step(&route, std::slice::from_ref(&a), &none, 40_000);
    assert_eq!(n[0].alerts.iter().filter(|x| !x.firing()).count(), 1, "{n:?}");
    assert!(d.step(&route, std::slice::from_ref(&a), &none, 80_000).is_empty(), "no message for what did not change");
}

#[test]
fn a_down_node_inhibits_its_other_alerts_and_silences_mute_until_they_end() {
    let down = alert("NodeDown", "pi1", 0);
    let check = alert("CheckCritical", "pi1", 0);
    let elsewhere = alert("CheckCritical", "pi2", 0);
    let firing = [down.clone(), check.clone(), elsewhere.clone()];
    assert!(muted(&check, &firing, &[], 0));
    assert!(!muted(&down, &firing, &[], 0) && !muted(&elsewhere, &firing, &[], 0));
    let s = Silence {
        id: "s1".into(),
        matchers: vec![Matcher::parse("node=~\"pi[23]\"").unwrap(), Matcher::parse("alertname!=NodeDown").unwrap()],
        starts_ms: 0,
        ends_ms: 7_200_000,
        created_by: "token 1234".into(),
        comment: "re-cabling".into(),
        updated_ms: 0,
    };
    assert!(muted(&elsewhere, &firing, std::slice::from_ref(&s), 1_000));
    assert!(!muted(&elsewhere, &firing, std::slice::from_ref(&s), 7_200_000), "expired");
    // A muted alert is neither sent nor resolved; unmuted, it is sent.
    let mut d = Dispatcher::default();
    let route = Route::default();
    let quiet = BTreeSet::from([elsewhere.key()]);
    assert!(d.step(&route, std::slice::from_ref(&elsewhere), &quiet, 0).is_empty());
    assert!(d.step(&route, std::slice::from_ref(&elsewhere), &quiet, 5_000).is_empty());
    assert_eq!(d.step(&route, std::slice::from_ref(&elsewhere), &BTreeSet::new(), 6_000).len(), 0, "a new group waits");
    assert_eq!(d.step(&route, std::slice::from_ref(&elsewhere), &BTreeSet::new(), 8_000).len(), 1);
}

#[test]
fn matchers_read_as_alertmanager_writes_them() {
    let m = |t: &str| Matcher::parse(t).unwrap();
    let labels = Labels::from([("node".into(), "pi3".into()), ("alertname".into(), "DiskFull".into())]);
    assert!(m("node=pi3").matches(&labels));
    assert!(!m("node!=pi3").matches(&labels));
    assert!(m("alertname=~Disk.*").matches(&labels));
    assert!(!m("alertname=~Disk").matches(&labels), "anchored, as Alertmanager's");
    assert!(m("node!~\"pi[12]\"").matches(&labels));
    assert!(m("service=").matches(&labels), "an absent label is empty");
    assert_eq!(m("node=~\"pi.*\"").to_string(), "node=~\"pi.*\"");
    for bad in ["pi3", "=x", "no de=x", "node=~(", ""] {
        assert!(Matcher::parse(bad).is_err(), "{bad:?}");
    }
}

fn notification(resolved: bool) -> group::Notification {
    let mut a = alert("NodeDown", "pi1", 1_796_000_000_000);
    a.annotations.insert("summary".into(), "pi1 is down: no heartbeat for 4 s".into());
    if resolved {
        a.ends_ms = Some(1_796_000_060_000);
    }
    group::Notification {
        group_key: "alertname=\"NodeDown\",node=\"pi1\"".into(),
        group_labels: Labels::from([("alertname".into(), "NodeDown".into()), ("node".into(), "pi1".into())]),
        alerts: vec![a],
    }
}

#[test]
fn each_receiver_gets_its_own_request() {
    use payload::{Kind, request};
    let ui = "http://hub.lan:8500/ui/";
    let n = notification(false);
    let header = |r: &payload::Request, k: &str| r.headers.iter().find(|(h, _)| h == k).map(|(_, v)| v.clone());
    let ntfy = request(
        "phone",
        &Kind::Ntfy { url: "https://ntfy.sh/lab".into(), token: Some("tk_x".into()) },
        &n,
        ui,
        1_796_000_000_000,
    );
    assert_eq!((ntfy.method, ntfy.url.as_str()), ("POST", "https://ntfy.sh/lab"));
    assert_eq!(header(&ntfy, "X-Title").as_deref(), Some("[FIRING:1] NodeDown pi1"));
    assert_eq!(header(&ntfy, "X-Priority").as_deref(), Some("5"));
    assert_eq!(header(&ntfy, "Click").as_deref(), Some(ui));
    assert_eq!(header(&ntfy, "Authorization").as_deref(), Some("Bearer tk_x"));
    assert_eq!(String::from_utf8(ntfy.body).unwrap(), "pi1 is down: no heartbeat for 4 s");
    let resolved = request(
        "phone",
        &Kind::Ntfy { url: "https://ntfy.sh/lab".into(), token: None },
        &notification(true),
        ui,
        1_796_000_000_000,
    );
    assert_eq!(header(&resolved, "X-Title").as_deref(), Some("[RESOLVED] NodeDown pi1"));
    assert_eq!(header(&resolved, "X-Tags").as_deref(), Some("white_check_mark"));
    let gotify = request(
        "g",
        &Kind::Gotify { url: "http://gotify.lan/".into(), token: "AbC".into() },
        &n,
        ui,
        1_796_000_000_000,
    );
    assert_eq!(gotify.url, "http://gotify.lan/message");
    assert_eq!(header(&gotify, "X-Gotify-Key").as_deref(), Some("AbC"));
    let body: serde_json::Value = serde_json::from_slice(&gotify.body).unwrap();
    assert_eq!((body["priority"].as_u64(), body["title"].as_str()), (Some(8), Some("[FIRING:1] NodeDown pi1")));
    let hook =
        request("ops", &Kind::Webhook { url: "http://x/hook".into() }, &notification(true), ui, 1_796_000_000_000);
    let body: serde_json::Value = serde_json::from_slice(&hook.body).unwrap();
    assert_eq!(
        (body["version"].as_str(), body["status"].as_str(), body["receiver"].as_str()),
        (Some("4"), Some("resolved"), Some("ops"))
    );
    assert_eq!(body["alerts"][0]["endsAt"], "2026-11-30T00:54:20.000Z");
    assert_eq!(body["commonLabels"]["node"], "pi1");
    let am = request("am", &Kind::Alertmanager { url: "http://am:9093".into() }, &n, ui, 1_796_000_000_000);
    assert_eq!(am.url, "http://am:9093/api/v2/alerts");
    let body: serde_json::Value = serde_json::from_slice(&am.body).unwrap();
    assert_eq!(body[0]["labels"]["alertname"], "NodeDown");
    // Valid for four minutes (resent every minute while it fires), as Prometheus sends.
    assert_eq!(body[0]["endsAt"], "2026-11-30T00:57:20.000Z", "{body}");
    assert_eq!(body[0]["startsAt"], "2026-11-30T00:53:20.000Z", "{body}");
    let discord =
        request("d", &Kind::Discord { url: "https://discord.com/api/webhooks/1/x".into() }, &n, ui, 1_796_000_000_000);
    let body: serde_json::Value = serde_json::from_slice(&discord.body).unwrap();
    assert!(body["content"].as_str().unwrap().starts_with("**[FIRING:1] NodeDown pi1**"), "{body}");
}

#[test]
fn custom_rules_compare_any_exported_series() {
    use expr::{CustomRule, Expr, samples};
    let text = "# HELP node_load1 Load.\n# TYPE node_load1 gauge\nnode_load1{node=\"pi1\"} 4.5\nnode_load1{node=\"pi2\"} 0.5\n\
                node_thermal_zone_temp{node=\"pi1\",zone=\"0\",type=\"cpu \\\"x\\\"\"} 71\nrabble_jobs 3\n";
    let s = samples(text);
    assert_eq!(s.len(), 4);
    assert_eq!(s[2].labels["type"], "cpu \"x\"");
    let hit = |e: &str| {
        Expr::parse(e)
            .unwrap()
            .eval(&s)
            .iter()
            .map(|x| x.labels.get("node").cloned().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(hit("node_load1 > 4"), ["pi1"]);
    assert_eq!(hit("node_load1 <= 4"), ["pi2"]);
    assert_eq!(hit("node_load1{node!=\"pi1\"} >= 0"), ["pi2"]);
    assert_eq!(hit("node_thermal_zone_temp{node=~\"pi.*\"} > 70"), ["pi1"]);
    assert_eq!(hit("rabble_jobs == 3"), [""]);
    assert_eq!(hit("rabble_jobs != 3"), Vec::<String>::new());
    for bad in ["node_load1", "node_load1 > x", "node load > 1", "node_load1{node=pi1 > 1", "{a=b} > 1"] {
        assert!(Expr::parse(bad).is_err(), "{bad:?}");
    }
    let rule = CustomRule {
        name: "HighLoad".into(),
        expr: "node_load1 > 4".into(),
        severity: "warning".into(),
        for_ms: 300_000,
        summary: "{{node}} has load {{value}}".into(),
    };
    let c = rule.conditions(&s);
    assert_eq!(c.len(), 1);
    assert_eq!(
        (c[0].labels["alertname"].as_str(), c[0].labels["node"].as_str(), c[0].for_ms),
        ("HighLoad", "pi1", 300_000)
    );
    assert_eq!(c[0].annotations["summary"], "pi1 has load 4.5");
}

#[test]
fn silences_are_checked_as_alertmanager_checks_them_and_kept_through_the_book() {
    use super::book::{AlertBook, AlertUpdate, SILENCE_RETENTION_MS, silence_from, silence_view};
    use rabble_shared::alerts::{ApiMatcher, PostableSilence};
    let now = 1_796_000_000_000;
    let m = |name: &str, value: &str, is_regex, is_equal| ApiMatcher {
        name: name.into(),
        value: value.into(),
        is_regex,
        is_equal,
    };
    let post = |matchers: Vec<ApiMatcher>, starts: &str, ends: &str| PostableSilence {
        id: None,
        matchers,
        starts_at: starts.into(),
        ends_at: ends.into(),
        created_by: "admin".into(),
        comment: "new SD card".into(),
    };
    let (start, end) = ("2026-11-30T00:00:00Z", "2026-11-30T02:53:20Z");
    let s = silence_from(post(vec![m("node", "pi3", false, true)], start, end), "s1".into(), now).unwrap();
    assert_eq!((s.starts_ms, s.ends_ms), (now, now + 7_200_000), "a start in the past starts now");
    for (bad, why) in [
        (post(vec![], start, end), "at least one matcher"),
        (post(vec![m("node", "", false, true)], start, end), "empty label"),
        (post(vec![m("node", "pi[", true, true)], start, end), "pi["),
        (post(vec![m("no de", "x", false, true)], start, end), "label name"),
        (post(vec![m("node", "pi3", false, true)], start, "2026-11-29T00:00:00Z"), "in the past"),
        (post(vec![m("node", "pi3", false, true)], "2026-11-30T03:00:00Z", end), "after startsAt"),
        (post(vec![m("node", "pi3", false, true)], start, "tomorrow"), "endsAt: \"tomorrow\""),
    ] {
        let e = silence_from(bad, "x".into(), now).unwrap_err();
        assert!(e.contains(why), "{e}");
    }
    let mut book = AlertBook::default();
    let added = book.apply(AlertUpdate::Silence(s.clone()));
    assert_eq!(added.dirty.len(), 1);
    assert!(added.summaries[0].contains("node=\"pi3\""), "{:?}", added.summaries);
    assert!(book.apply(AlertUpdate::Silence(s.clone())).dirty.is_empty(), "the same silence again changes nothing");
    assert_eq!(silence_view(&s, now).status.state, "active");
    assert_eq!(book.live_silences(now).len(), 1);
    book.apply(AlertUpdate::Expire { id: "s1".into(), at_ms: now + 60_000 });
    assert!(book.live_silences(now + 60_000).is_empty());
    assert_eq!(silence_view(&book.silences["s1"], now + 60_000).status.state, "expired");
    assert!(book.apply(AlertUpdate::Expire { id: "s1".into(), at_ms: now + 90_000 }).dirty.is_empty());
    assert!(book.stale_silences(now + 60_000 + SILENCE_RETENTION_MS).is_empty());
    let stale = book.stale_silences(now + 60_001 + SILENCE_RETENTION_MS);
    assert_eq!(stale, ["s1"]);
    assert_eq!(book.apply(AlertUpdate::Forget(stale)).dirty.len(), 1);
    assert!(book.silences.is_empty());
}
