//! The template language and consul-template's functions, over a fixture source.

use super::*;

struct Fixture {
    kv: BTreeMap<String, String>,
    vars: BTreeMap<String, BTreeMap<String, String>>,
}

impl Fixture {
    fn new() -> Fixture {
        let kv = [("app/db", "postgres://db"), ("app/conf/a", "1"), ("app/conf/b", "2"), ("app/conf/deep/c", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut vars = BTreeMap::new();
        vars.insert("nomad/jobs/web".to_owned(), [("user".to_owned(), "app".to_owned())].into());
        vars.insert("secret/data/db".to_owned(), [("password".to_owned(), "pw".to_owned())].into());
        Fixture { kv, vars }
    }
}

fn inst(addr: &str, port: i64, tags: &[&str], status: &str) -> Value {
    Value::map([
        ("Name", Value::str("web")),
        ("Address", Value::str(addr)),
        ("Port", Value::Int(port)),
        ("Tags", Value::List(tags.iter().map(|t| Value::str(*t)).collect())),
        ("Status", Value::str(status)),
    ])
}

impl Source for Fixture {
    fn env(&self, name: &str) -> Option<String> {
        (name == "NOMAD_ALLOC_ID").then(|| "a1b2".to_owned())
    }
    fn kv_get(&self, key: &str) -> Option<String> {
        self.kv.get(key).cloned()
    }
    fn kv_list(&self, prefix: &str) -> Vec<(String, String)> {
        self.kv.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }
    fn services(&self) -> Vec<(String, Vec<String>)> {
        vec![("web".into(), vec!["blue".into(), "green".into()]), ("db".into(), vec![])]
    }
    fn service(&self, name: &str, tag: Option<&str>, statuses: &[&str]) -> Vec<Value> {
        if name != "web" {
            return vec![];
        }
        [inst("10.0.0.1", 8080, &["blue"], "passing"), inst("10.0.0.2", 8081, &["green"], "critical")]
            .into_iter()
            .filter(|i| {
                statuses.contains(&"any") || statuses.iter().any(|s| i.field("Status") == Some(&Value::str(*s)))
            })
            .filter(|i| {
                tag.is_none_or(|t| matches!(i.field("Tags"), Some(Value::List(l)) if l.contains(&Value::str(t))))
            })
            .collect()
    }
    fn nodes(&self) -> Vec<Value> {
        vec![Value::map([("Node", Value::str("pi1")), ("Address", Value::str("10.0.0.1"))])]
    }
    fn var(&self, path: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        if path.starts_with("other/") {
            return Err("this job may not read it".into());
        }
        Ok(self.vars.get(path).cloned())
    }
    fn var_list(&self, prefix: &str) -> Result<Vec<String>, String> {
        Ok(self.vars.keys().filter(|k| k.starts_with(prefix)).cloned().collect())
    }
    fn node_addrs(&self) -> Option<Vec<(String, std::net::IpAddr)>> {
        Some(vec![("eth0".into(), "192.168.1.20".parse().unwrap())])
    }
}

fn render(text: &str) -> Result<String, RenderError> {
    Template::parse("t", text, "{{", "}}").map_err(RenderError::Failed)?.render(&Fixture::new())
}

fn ok(text: &str) -> String {
    render(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn failed(text: &str) -> TemplateError {
    match render(text) {
        Err(RenderError::Failed(e)) => e,
        other => panic!("{text:?}: {other:?}"),
    }
}

#[test]
fn an_nginx_upstream_from_the_catalog() {
    let t = "upstream web {\n{{- range service \"web\" }}\n  server {{ .Address }}:{{ .Port }};\n{{- end }}\n}\n";
    assert_eq!(ok(t), "upstream web {\n  server 10.0.0.1:8080;\n}\n");
    let t = "{{ range service \"web|any\" }}{{ .Address }} {{ end }}";
    assert_eq!(ok(t), "10.0.0.1 10.0.0.2 ");
    assert_eq!(ok("{{ range service \"green.web|passing,critical\" }}{{ .Port }}{{ end }}"), "8081");
    assert_eq!(ok("{{ range services }}{{ .Name }}:{{ join \",\" .Tags }};{{ end }}"), "web:blue,green;db:;");
    assert_eq!(
        ok("{{ $s := service \"web|any\" | byTag }}{{ len $s.blue }}{{ range $tag, $x := $s }} {{ $tag }}{{ end }}"),
        "1 blue green"
    );
}

#[test]
fn control_flow_variables_and_pipelines() {
    assert_eq!(ok("{{ if eq 1 2 }}a{{ else if eq 2 2 }}b{{ else }}c{{ end }}"), "b");
    assert_eq!(ok("{{ with key \"app/db\" }}[{{ . }}]{{ else }}none{{ end }}"), "[postgres://db]");
    assert_eq!(ok("{{ with keyOrDefault \"nope\" \"\" }}x{{ else }}empty{{ end }}"), "empty");
    assert_eq!(ok("{{ range $i, $e := split \",\" \"a,b,c\" }}{{ $i }}={{ $e }} {{ end }}"), "0=a 1=b 2=c ");
    assert_eq!(ok("{{ range split \",\" \"\" }}x{{ else }}nothing{{ end }}"), "nothing");
    assert_eq!(ok("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"), "2");
    assert_eq!(ok("{{ \"Hello\" | toUpper | printf \"%s!\" }}"), "HELLO!");
    assert_eq!(ok("{{ printf \"%-5s|%05d|%.2f|%q|%v\" \"ab\" 42 3.14159 \"x\" true }}"), "ab   |00042|3.14|\"x\"|true");
    assert_eq!(ok("{{ and 1 0 }} {{ or 0 \"\" \"z\" }} {{ not false }}"), "0 z true");
    assert_eq!(ok("{{ (parseJSON `{\"a\":[1,2]}`).a }} {{ index (parseJSON `{\"a\":[1,2]}`).a 1 }}"), "[1 2] 2");
    assert_eq!(ok("{{ toJSON (parseJSON `{\"b\":1,\"a\":\"x\"}`) }}"), r#"{"a":"x","b":1}"#);
    assert_eq!(
        ok(
            "{{ \"a-b-c\" | replaceAll \"-\" \"_\" }} {{ \"  t \" | trimSpace }} {{ base64Decode (base64Encode \"hi\") }}"
        ),
        "a_b_c t hi"
    );
    assert_eq!(
        ok("{{ if \"prod\" | contains \"pro\" }}y{{ end }}{{ if in (split \",\" \"a,b\") \"b\" }}z{{ end }}"),
        "yz"
    );
    assert_eq!(ok("{{ regexReplaceAll \"[0-9]+\" \"N\" \"a1b22\" }} {{ parseInt \"42\" | printf \"%d\" }}"), "aNbN 42");
    assert_eq!(ok("{{ env \"NOMAD_ALLOC_ID\" }}{{ env \"NOPE\" }}"), "a1b2");
    assert_eq!(ok("{{/* a comment */}}a  {{- \" b \" -}}  c"), "a b c");
    assert_eq!(ok("{{ .Missing }}"), "<no value>");
}

#[test]
fn kv_listings_and_variables() {
    assert_eq!(ok("{{ range ls \"app/conf\" }}{{ .Key }}={{ .Value }} {{ end }}"), "a=1 b=2 ");
    assert_eq!(ok("{{ range tree \"app/conf/\" }}{{ .Key }} {{ end }}"), "a b deep/c ");
    assert_eq!(ok("{{ with nomadVar \"nomad/jobs/web\" }}{{ .user }}{{ end }}"), "app");
    assert_eq!(ok("{{ with secret \"secret/data/db\" }}{{ .Data.data.password }}{{ end }}"), "pw");
    assert_eq!(ok("{{ nomadVarExists \"nomad/jobs/web\" }} {{ nomadVarExists \"nomad/jobs/x\" }}"), "true false");
    assert_eq!(ok("{{ range nomadVarList \"nomad/\" }}{{ .Path }}{{ end }}"), "nomad/jobs/web");
    let e = failed("{{ nomadVar \"other/secret\" }}");
    assert!(e.reason.contains("may not read"), "{e}");
    assert_eq!(ok("{{ (node \"pi1\").Address }}"), "10.0.0.1");
}

#[test]
fn missing_data_blocks_and_everything_else_fails_with_the_line() {
    assert_eq!(render("{{ key \"app/none\" }}"), Err(RenderError::Missing("key \"app/none\"".into())));
    assert_eq!(
        render("{{ nomadVar \"nomad/jobs/none\" }}"),
        Err(RenderError::Missing("variable \"nomad/jobs/none\"".into()))
    );
    for (text, line, why) in [
        ("a\nb\n{{ nope 1 }}", 3, "function \"nope\" not defined"),
        ("x\n{{ if true }}", 2, "without {{end}}"),
        ("{{ end }}", 1, "unexpected {{end}}"),
        ("line1\n\n{{ .A", 3, "unclosed action"),
        ("{{ \"unterminated }}", 1, "unterminated string"),
        ("{{ template \"x\" }}", 1, "not supported"),
        ("{{ len 1 2 }}", 1, "len takes 1 argument"),
        ("{{ $x }}", 1, "undefined variable $x"),
        ("{{ range 1.5 }}{{ end }}", 1, "range over a float"),
        ("{{ (1) 2 }}", 1, "non-function"),
        ("{{ }}", 1, "empty action"),
    ] {
        let e = Template::parse("web.conf", text, "{{", "}}")
            .map_err(RenderError::Failed)
            .and_then(|t| t.render(&Fixture::new()))
            .unwrap_err();
        let RenderError::Failed(e) = e else { panic!("{text:?}: {e:?}") };
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(e.reason.contains(why) && e.to_string().contains("web.conf"), "{text:?}: {e}");
    }
}

#[test]
fn custom_delimiters_as_nomad_jobs_use_them() {
    let t = Template::parse("t", "[[ key \"app/db\" ]] {{ not touched }}", "[[", "]]").unwrap();
    assert_eq!(t.render(&Fixture::new()).unwrap(), "postgres://db {{ not touched }}");
}

#[test]
fn hostile_templates_are_bounded_and_never_panic() {
    let e = failed("{{ range 100000000 }}x{{ end }}");
    assert!(e.reason.contains("step limit"), "{e}");
    let e = failed("{{ range 1000000 }}{{ range 1000 }}x{{ end }}{{ end }}");
    assert!(e.reason.contains("steps") || e.reason.contains("output"), "{e}");
    let deep = "{{ if true }}".repeat(200) + &"{{ end }}".repeat(200);
    assert!(failed(&deep).reason.contains("nested too deeply"));
    let deep = format!("{{{{ {}1{} }}}}", "(".repeat(200), ")".repeat(200));
    assert!(failed(&deep).reason.contains("nested too deeply"));
    // Random bytes and mangled real templates: an error or a render, never a panic.
    let seeds = [
        "upstream {{ range service \"web\" }}{{ .Address }}:{{ .Port }}{{ end }}",
        "{{ with $x := key \"app/db\" }}{{ $x | toUpper }}{{ else }}{{ printf \"%d\" 1 }}{{ end }}",
        "{{- range $i, $e := tree \"app\" -}}{{ $i }}{{ $e.Key }}{{ end -}}",
    ];
    let alphabet: Vec<char> = "{}()|$.\"`-,:= abcdefgirnu01\n%".chars().collect();
    let mut rng = fastrand::Rng::with_seed(11);
    for round in 0..5_000 {
        let mut t: Vec<char> = seeds[round % seeds.len()].chars().collect();
        for _ in 0..rng.usize(1..6) {
            let i = rng.usize(..=t.len());
            match rng.u8(..3) {
                0 if i < t.len() => {
                    t.remove(i);
                }
                _ => t.insert(i, alphabet[rng.usize(..alphabet.len())]),
            }
        }
        let text: String = t.into_iter().collect();
        let _ = render(&text);
    }
}

#[test]
fn the_catalog_source_serves_health_kv_and_only_the_tasks_variables() {
    use crate::catalog::kv::KvUpdate;
    use crate::catalog::vars::VarUpdate;
    use crate::catalog::{Catalog, Update};
    use crate::dns::fixture::add;
    use rabble_shared::Status;
    use rabble_shared::support::seal::SealKey;
    let mut c = Catalog::default();
    add(&mut c, "n0", "192.168.1.1", "web", &["primary"], None, Status::Passing);
    add(&mut c, "n1", "192.168.1.2", "web", &[], None, Status::Critical);
    c.apply(Update::Kv(KvUpdate::Set { key: "app/motd".into(), value: b"hi".to_vec(), flags: 0, cas: None }));
    let seal = SealKey::from_bytes(&[3; 32]);
    for (path, item) in [("nomad/jobs/web", "mine"), ("nomad/jobs/other", "theirs"), ("shared/db", "granted")] {
        let sealed = seal.seal(path.as_bytes(), format!("{{\"v\":\"{item}\"}}").as_bytes()).unwrap();
        c.apply(Update::Var(VarUpdate::Put { path: path.into(), sealed, cas: None, at_ns: 1 }));
    }
    let src = source::CatalogSource::new(&c, &seal, "web", "g", "t", &["shared/"]);
    let r = |t: &str| Template::parse("t", t, "{{", "}}").unwrap().render(&src);
    assert_eq!(r("{{ range service \"web\" }}{{ .Address }} {{ .Node }}{{ end }}").unwrap(), "192.168.1.1 n0");
    assert_eq!(
        r("{{ len (service \"web|any\") }} {{ range service \"primary.web\" }}{{ .Status }}{{ end }}").unwrap(),
        "2 passing"
    );
    assert_eq!(r("{{ key \"app/motd\" }}").unwrap(), "hi");
    assert_eq!(
        r("{{ with nomadVar \"nomad/jobs/web\" }}{{ .v }}{{ end }} {{ (nomadVar \"shared/db\").v }}").unwrap(),
        "mine granted"
    );
    let e = r("{{ nomadVar \"nomad/jobs/other\" }}").unwrap_err().to_string();
    assert!(e.contains("may read") && !e.contains("theirs"), "{e}");
    assert_eq!(r("{{ range nomadVarList \"\" }}{{ .Path }} {{ end }}").unwrap(), "nomad/jobs/web shared/db ");
    // sockaddr answers from the task's node's facts, and waits while there is none.
    assert!(matches!(r("{{ sockaddr \"GetPrivateIP\" }}"), Err(RenderError::Missing(_))));
    let mut src = source::CatalogSource::new(&c, &seal, "web", "g", "t", &[]);
    src.node = Some(rabble_shared::NodeId::new("n1").unwrap());
    let t = Template::parse("t", "{{ sockaddr \"GetPrivateIP\" }}", "{{", "}}").unwrap();
    assert_eq!(t.render(&src).unwrap(), "192.168.1.2");
}

#[test]
fn sockaddr_in_a_template() {
    assert_eq!(ok("bind {{ sockaddr `GetInterfaceIP \"eth0\"` }}"), "bind 192.168.1.20");
    assert_eq!(ok("{{ sockaddr \"GetInterfaceIP \\\"eth0\\\"\" }}"), "192.168.1.20");
    assert!(failed("{{ sockaddr \"GetAllInterfaces\" }}").to_string().contains("not supported"));
}
