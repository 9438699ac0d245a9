//! The ACL on hand-made MQTT 3.1.1 packets, as agents, observers and attackers send them.

use super::*;

fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn packet(first: u8, body: Vec<u8>) -> Vec<u8> {
    let mut p = vec![first];
    varint(body.len(), &mut p);
    p.extend(body);
    p
}

fn connect(user: &str, will: Option<&str>) -> Vec<u8> {
    let mut b = Vec::new();
    string("MQTT", &mut b);
    b.push(4);
    b.push(0x80 | 0x40 | 0x02 | if will.is_some() { 0x04 | 0x08 | 0x20 } else { 0 });
    b.extend_from_slice(&10u16.to_be_bytes());
    string(&format!("rabble-agent-{user}"), &mut b);
    if let Some(t) = will {
        string(t, &mut b);
        string("offline", &mut b);
    }
    string(user, &mut b);
    string("token", &mut b);
    packet(0x10, b)
}

fn publish(t: &str) -> Vec<u8> {
    let mut b = Vec::new();
    string(t, &mut b);
    b.extend_from_slice(&1u16.to_be_bytes());
    b.extend_from_slice(b"{}");
    packet(0x32, b)
}

fn subscribe(filters: &[&str]) -> Vec<u8> {
    let mut b = 7u16.to_be_bytes().to_vec();
    for f in filters {
        string(f, &mut b);
        b.push(1);
    }
    packet(0x82, b)
}

fn lookup(user: &str) -> Option<Role> {
    match user {
        "watcher" => Some(Role::Observer),
        "nobody" => None,
        n => NodeId::new(n).ok().map(Role::Node),
    }
}

fn session(user: &str) -> Session {
    let mut s = Session::default();
    s.check(&connect(user, Some(&format!("rabble/node/{user}/status"))), lookup).unwrap();
    s
}

#[test]
fn a_node_publishes_and_subscribes_only_its_own() {
    let mut s = session("pi1");
    for ok in [
        "rabble/node/pi1/facts",
        "rabble/node/pi1/service/web",
        "rabble/node/pi1/alloc/00ff",
        "rabble/node/pi1/logs/0a1b",
    ] {
        assert_eq!(s.check(&publish(ok), lookup), Ok(()), "{ok}");
    }
    assert_eq!(s.check(&subscribe(&["rabble/hub/status", "rabble/node/pi1/assignments"]), lookup), Ok(()));
    assert_eq!(s.check(&subscribe(&["rabble/node/pi1/logs"]), lookup), Ok(()));
    assert_eq!(s.check(&subscribe(&["rabble/hub/routes/+", "rabble/hub/routes/ingress"]), lookup), Ok(()));
    assert_eq!(s.check(&subscribe(&["rabble/node/pi1/certs/+", "rabble/node/pi1/certs/ingress"]), lookup), Ok(()));
    assert_eq!(s.check(&subscribe(&["rabble/node/pi1/templates/+"]), lookup), Ok(()));
    assert_eq!(s.check(&[0xc0, 0], lookup), Ok(()), "PINGREQ");
    for bad in [
        "rabble/node/pi2/facts",
        "rabble/node/pi1/assignments",
        "rabble/node/pi1/logs",
        "rabble/node/pi1/certs/ingress",
        "rabble/node/pi1/templates/00ff",
        "rabble/hub/status",
        "rabble/node/pi1",
        "other",
    ] {
        assert_eq!(session("pi1").check(&publish(bad), lookup), Err(Violation::Publish(bad.into())), "{bad}");
    }
    for bad in [
        "rabble/#",
        "rabble/node/pi2/assignments",
        "rabble/node/pi2/logs",
        "#",
        "rabble/node/+/logs",
        "rabble/hub/#",
        "rabble/node/pi2/certs/+",
        "rabble/node/pi2/certs/ingress",
        "rabble/node/+/certs/+",
    ] {
        let got = session("pi1").check(&subscribe(&["rabble/hub/status", bad]), lookup);
        assert_eq!(got, Err(Violation::Subscribe(bad.into())), "{bad}");
    }
}

#[test]
fn wills_unknown_users_and_garbage_are_refused() {
    let mut s = Session::default();
    let got = s.check(&connect("pi1", Some("rabble/node/pi2/status")), lookup);
    assert_eq!(
        got,
        Err(Violation::Publish("rabble/node/pi2/status".into())),
        "a Will that says another node is offline"
    );
    let mut s = Session::default();
    let will = Some("rabble/node/nobody/status");
    assert_eq!(s.check(&connect("nobody", will), lookup), Ok(()), "the broker refuses it, and says why");
    assert_eq!(
        s.check(&publish("rabble/node/nobody/facts"), lookup),
        Err(Violation::Publish("rabble/node/nobody/facts".into()))
    );
    assert!(matches!(Session::default().check(&publish("rabble/node/pi1/facts"), lookup), Err(Violation::Protocol(_))));
    let mut s = session("pi1");
    assert!(matches!(s.check(&connect("pi1", None), lookup), Err(Violation::Protocol(_))), "a second CONNECT");
    assert!(matches!(s.check(&[0x30, 1, 0], lookup), Err(Violation::Protocol(_))), "a PUBLISH cut short");
    let mut v5 = connect("pi1", None);
    v5[8] = 5;
    assert!(matches!(Session::default().check(&v5, lookup), Err(Violation::Protocol(_))));
}

#[test]
fn observers_read_everything_and_write_only_home_assistants_status() {
    let mut s = Session::default();
    // Home Assistant's Will is its status; any other Will is refused.
    s.check(&connect("watcher", Some("homeassistant/status")), lookup).unwrap();
    assert_eq!(s.check(&subscribe(&["rabble/#", "homeassistant/#"]), lookup), Ok(()));
    assert_eq!(s.check(&publish("homeassistant/status"), lookup), Ok(()));
    assert_eq!(
        s.check(&publish("rabble/node/pi1/facts"), lookup),
        Err(Violation::Publish("rabble/node/pi1/facts".into()))
    );
    assert_eq!(
        s.check(&publish("homeassistant/device/x/config"), lookup),
        Err(Violation::Publish("homeassistant/device/x/config".into()))
    );
    assert_eq!(s.check(&subscribe(&["#"]), lookup), Err(Violation::Subscribe("#".into())));
    let will = Session::default().check(&connect("watcher", Some("rabble/hub/status")), lookup);
    assert_eq!(will, Err(Violation::Publish("rabble/hub/status".into())));
}

/// With `[homeassistant] discovery_prefix = "ha"`, Home Assistant lives under `ha/`: there, and
/// no longer under the default prefix.
#[test]
fn observers_follow_a_custom_discovery_prefix() {
    let mut s = Session::new("ha".into());
    s.check(&connect("watcher", Some("ha/status")), lookup).unwrap();
    assert_eq!(s.check(&subscribe(&["rabble/#", "ha/#"]), lookup), Ok(()));
    assert_eq!(s.check(&publish("ha/status"), lookup), Ok(()));
    for bad in ["homeassistant/status", "hastatus", "ha/status/x", "ha/device/x/config"] {
        assert_eq!(s.check(&publish(bad), lookup), Err(Violation::Publish(bad.into())));
    }
    assert_eq!(s.check(&subscribe(&["homeassistant/#"]), lookup), Err(Violation::Subscribe("homeassistant/#".into())));
    assert_eq!(s.check(&subscribe(&["hax/#"]), lookup), Err(Violation::Subscribe("hax/#".into())));
    let will = Session::new("ha".into()).check(&connect("watcher", Some("homeassistant/status")), lookup);
    assert_eq!(will, Err(Violation::Publish("homeassistant/status".into())));
}

#[test]
fn packets_are_framed_across_reads_and_bounded() {
    let p = publish("rabble/node/pi1/facts");
    assert_eq!(packet_len(&p[..1], 1000), Ok(None));
    assert_eq!(packet_len(&p[..p.len() - 1], 1000), Ok(None));
    assert_eq!(packet_len(&p, 1000), Ok(Some(p.len())));
    let mut two = p.clone();
    two.extend(&p);
    assert_eq!(packet_len(&two, 1000), Ok(Some(p.len())));
    assert_eq!(packet_len(&[0x30, 0xff, 0xff, 0xff, 0x7f], 1 << 20), Err(Violation::TooLarge(268_435_460)));
    assert!(matches!(packet_len(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], usize::MAX), Err(Violation::Protocol(_))));
}
