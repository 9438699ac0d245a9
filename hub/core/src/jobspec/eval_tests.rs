//! Evaluation: variables resolved, runtime references kept byte for byte, HCL's typing.

use super::*;
use serde_json::json;

fn scope() -> Scope {
    let mut s = Scope::default();
    s.vars.insert("image".into(), json!("plex:1.40"));
    s.vars.insert("replicas".into(), json!(3));
    s.vars.insert("ports".into(), json!([32400, 8080]));
    s.vars.insert("labels".into(), json!({"tier": "media"}));
    s.locals.insert("prefix".into(), json!("home"));
    s
}

/// Evaluates the value of `x = <expr>`.
fn ev(expr: &str) -> Result<Value, EvalError> {
    let src = format!("x = {expr}\n");
    let body = hcl_edit::parser::parse_body(&src).unwrap();
    let attr = body.iter().next().unwrap().as_attribute().unwrap().clone();
    eval(&attr.value, &scope(), &src)
}

#[test]
fn variables_and_locals_resolve() {
    assert_eq!(ev("var.image").unwrap(), json!("plex:1.40"));
    assert_eq!(ev("\"${var.replicas}\"").unwrap(), json!(3), "a lone interpolation keeps its type");
    assert_eq!(ev("\"${local.prefix}-${var.image}\"").unwrap(), json!("home-plex:1.40"));
    assert_eq!(ev("var.ports[1]").unwrap(), json!(8080));
    assert_eq!(ev("var.labels.tier").unwrap(), json!("media"));
    assert_eq!(ev("var.replicas * 2").unwrap(), json!(6));
    assert_eq!(ev("var.replicas > 2 ? \"many\" : \"few\"").unwrap(), json!("many"));
    assert_eq!(ev("upper(local.prefix)").unwrap(), json!("HOME"));
    assert_eq!(ev("join(\",\", [\"a\", \"b\"])").unwrap(), json!("a,b"));
    assert_eq!(ev("format(\"%s-%d\", \"web\", 2)").unwrap(), json!("web-2"));
}

#[test]
fn runtime_references_stay_as_written() {
    assert_eq!(ev("\"${attr.cpu.arch}\"").unwrap(), json!("${attr.cpu.arch}"));
    assert_eq!(ev("\"${NOMAD_PORT_http}\"").unwrap(), json!("${NOMAD_PORT_http}"));
    assert_eq!(
        ev("\"${var.image}@${node.unique.name}:${NOMAD_ADDR_http}\"").unwrap(),
        json!("plex:1.40@${node.unique.name}:${NOMAD_ADDR_http}")
    );
    assert_eq!(ev("\"${meta.rack}\"").unwrap(), json!("${meta.rack}"));
    assert_eq!(ev("attr.kernel.name").unwrap(), json!("${attr.kernel.name}"), "bare traversal too");
    // `$${` is HCL's escape: a literal `${` for run time.
    assert_eq!(ev("\"$${NOMAD_TASK_DIR}/x\"").unwrap(), json!("${NOMAD_TASK_DIR}/x"));
}

#[test]
fn heredocs_keep_their_text_and_indented_ones_are_dedented() {
    let src = "x = <<EOH\nport = ${var.replicas}\n{{ key \"a\" }} ${NOMAD_PORT_http}\nEOH\n";
    let body = hcl_edit::parser::parse_body(src).unwrap();
    let attr = body.iter().next().unwrap().as_attribute().unwrap().clone();
    assert_eq!(eval(&attr.value, &scope(), src).unwrap(), json!("port = 3\n{{ key \"a\" }} ${NOMAD_PORT_http}\n"));
    let src = "x = <<-EOH\n    a\n      b\n    EOH\n";
    let body = hcl_edit::parser::parse_body(src).unwrap();
    let attr = body.iter().next().unwrap().as_attribute().unwrap().clone();
    assert_eq!(eval(&attr.value, &scope(), src).unwrap(), json!("a\n  b\n"));
}

#[test]
fn mistakes_are_explained() {
    let e = ev("var.nope").unwrap_err();
    assert!(e.message.contains("no variable \"nope\""), "{}", e.message);
    assert!(e.span.is_some());
    assert!(ev("local.nope").unwrap_err().message.contains("no local"));
    assert!(ev("nosuch(1)").unwrap_err().message.contains("not supported"));
    assert!(ev("1 / 0").unwrap_err().message.contains("division by zero"));
    assert!(ev("[for x in var.ports : x]").unwrap_err().message.contains("`for`"));
}
