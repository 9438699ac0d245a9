//! Lane tables from a catalog: health, merging instances, conflicts and references.

use super::*;
use crate::dns::fixture::add;
use rabble_shared::Status;

fn routing() -> Lane {
    Lane { name: "routing".into(), prefix: "routing".into() }
}

#[test]
fn healthy_enabled_instances_make_the_lane_and_servers_gather() {
    let mut c = Catalog::default();
    let tags = ["routing.enable=true", "routing.http.routers.web.rule=Host(`web.lan`)"];
    add(&mut c, "n0", "192.168.1.1", "web", &tags, None, Status::Passing);
    add(&mut c, "n1", "192.168.1.2", "web", &tags, None, Status::Warning);
    add(&mut c, "n2", "192.168.1.3", "web", &tags, None, Status::Critical);
    add(&mut c, "n3", "192.168.1.4", "db", &["ingress.enable=true"], None, Status::Passing);
    let tables = build(&c, &Lane::defaults(), "rabble");
    let (r, i) = (&tables[0], &tables[1]);
    assert_eq!((r.lane.as_str(), i.lane.as_str()), ("routing", "ingress"));
    assert_eq!(r.routers.keys().collect::<Vec<_>>(), vec!["web"]);
    let urls: Vec<&str> = r.services["web"].servers.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, vec!["http://192.168.1.1:8080", "http://192.168.1.2:8080"], "the critical one is out");
    assert_eq!(i.routers["db"].rule, "Host(`db.service.rabble`)");
    assert_eq!(r.index, c.index);
    assert!(r.problems.is_empty() && i.problems.is_empty());
}

#[test]
fn conflicts_and_dangling_references_leave_out_only_what_is_broken() {
    let mut c = Catalog::default();
    add(
        &mut c,
        "n0",
        "10.0.0.1",
        "a",
        &["routing.enable=true", "routing.http.routers.shared.rule=Host(`a`)"],
        None,
        Status::Passing,
    );
    add(
        &mut c,
        "n1",
        "10.0.0.2",
        "b",
        &["routing.enable=true", "routing.http.routers.shared.rule=Host(`b`)"],
        None,
        Status::Passing,
    );
    add(
        &mut c,
        "n2",
        "10.0.0.3",
        "c",
        &[
            "routing.enable=true",
            "routing.http.routers.c.middlewares=nowhere",
            "routing.http.routers.ok.rule=Host(`ok`)",
            "routing.http.routers.ok.service=c",
            "routing.http.middlewares.loop.chain.middlewares=loop",
        ],
        None,
        Status::Passing,
    );
    let t = &build(&c, &[routing()], "rabble")[0];
    assert_eq!(t.routers.keys().collect::<Vec<_>>(), vec!["ok"], "{:?}", t.problems);
    let all: Vec<String> = t.problems.iter().map(|p| format!("{}: {}", p.tag, p.reason)).collect();
    let all = all.join("\n");
    for want in [
        "router shared: instances define it differently; left out",
        "router c: its middleware \"nowhere\" is not defined in this lane; left out",
        "middleware loop: chain names \"loop\"",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    // The services stay: other routers (or Traefik's) may use them.
    assert!(t.services.contains_key("a") && t.services.contains_key("b"));
}

#[test]
fn the_table_is_stable_json() {
    let mut c = Catalog::default();
    add(&mut c, "n1", "10.0.0.2", "b", &["routing.enable=true"], None, Status::Passing);
    add(&mut c, "n0", "10.0.0.1", "a", &["routing.enable=true"], None, Status::Passing);
    let one = serde_json::to_string(&build(&c, &[routing()], "rabble")).unwrap();
    let two = serde_json::to_string(&build(&c, &[routing()], "rabble")).unwrap();
    assert_eq!(one, two);
    assert!(one.find("\"a\"").unwrap() < one.find("\"b\"").unwrap(), "sorted by name: {one}");
}
