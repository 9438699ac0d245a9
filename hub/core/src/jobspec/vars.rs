//! HCL2 `variable` blocks with their values from `-var name=value`, `-var-file` and
//! `default` (in that order of precedence, as Nomad), and `locals` blocks.

use super::body::{Ctx, Reader};
use super::eval::{self, Scope};
use hcl_edit::Span;
use hcl_edit::structure::Structure;
use serde_json::Value;
use std::collections::BTreeMap;

/// Values given on the command line or in var files.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// `-var name=value`, in order.
    pub vars: Vec<String>,
    /// `-var-file`: (file name, text); `.json` files are JSON objects, others HCL.
    pub var_files: Vec<(String, String)>,
}

/// Reads the `variable` and `locals` blocks of the top-level body into a scope.
pub fn scope(top: &mut Reader<'_, '_>, given: &Given) -> Scope {
    let ctx = top.ctx;
    let mut from_files: BTreeMap<String, Value> = BTreeMap::new();
    for (name, text) in &given.var_files {
        match read_var_file(name, text) {
            Ok(m) => from_files.extend(m),
            Err(e) => ctx.errors.borrow_mut().push(super::Diagnostic {
                file: name.clone(),
                line: e.1.0,
                column: e.1.1,
                path: String::new(),
                message: e.0,
            }),
        }
    }
    let mut from_flags: BTreeMap<String, String> = BTreeMap::new();
    for v in &given.vars {
        match v.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => {
                from_flags.insert(k.trim().to_owned(), val.to_owned());
            }
            _ => ctx.error(None, "-var", format!("{v:?}: expected name=value")),
        }
    }
    let mut scope = Scope::default();
    for mut b in top.blocks("variable") {
        let Some(name) = b.label("the variable's name, as in variable \"image\"") else { continue };
        let r = &mut b.reader;
        let kind = r.value("type").map(|(v, _)| type_name(&v)).unwrap_or_default();
        let default = r.value("default").map(|(v, _)| v);
        r.string("description");
        r.bool("sensitive");
        r.bool("nullable");
        for v in r.blocks("validation") {
            v.reader.finish_ignored();
        }
        let value = if let Some(text) = from_flags.remove(&name) {
            flag_value(&text, &kind).map_err(|e| r.error(None, format!("-var {name}: {e}"))).ok()
        } else {
            from_files.remove(&name).or(default)
        };
        match value {
            Some(v) => match coerce(v, &kind) {
                Ok(v) => {
                    scope.vars.insert(name, v);
                }
                Err(e) => r.error(None, format!("variable {name:?}: {e}")),
            },
            None => r.error(None, format!("variable {name:?} has no value: give it a default, or -var {name}=...")),
        }
        b.reader.finish();
    }
    for name in from_flags.keys() {
        ctx.error(
            None,
            "-var",
            format!("{name:?} is not declared in the job file (add a `variable \"{name}\"` block)"),
        );
    }
    locals(top, ctx, &mut scope);
    scope
}

/// Locals may use variables and each other, in any order: evaluated in passes.
fn locals(top: &mut Reader<'_, '_>, ctx: &Ctx<'_>, scope: &mut Scope) {
    let mut pending = Vec::new();
    for b in top.blocks("locals") {
        let body = b.reader.body();
        for s in body.iter() {
            match s {
                Structure::Attribute(a) => pending.push((a.key.value().as_str().to_owned(), a)),
                Structure::Block(blk) => ctx.error(blk.span(), "locals", "locals holds attributes only"),
            }
        }
    }
    while !pending.is_empty() {
        let before = pending.len();
        let mut still = Vec::new();
        let mut last_errors = Vec::new();
        for (name, attr) in pending {
            match eval::eval(&attr.value, scope, ctx.src) {
                Ok(v) => {
                    scope.locals.insert(name, v);
                }
                Err(e) => {
                    last_errors.push((e, attr.span()));
                    still.push((name, attr));
                }
            }
        }
        if still.len() == before {
            for (e, span) in last_errors {
                ctx.error(e.span.or(span), "locals", e.message);
            }
            return;
        }
        pending = still;
    }
}

fn type_name(v: &Value) -> String {
    // `type = string` is a bare word: it evaluates as a runtime reference `${string}`.
    eval::as_string(v).unwrap_or_default().trim_start_matches("${").trim_end_matches('}').to_owned()
}

/// A `-var` value: a string for string (and untyped) variables, an HCL expression
/// for the others (`-var 'ports=[80, 443]'`).
fn flag_value(text: &str, kind: &str) -> Result<Value, String> {
    if kind.is_empty() || kind == "string" || kind == "any" {
        return Ok(Value::String(text.to_owned()));
    }
    let src = format!("v = {text}\n");
    rabble_shared::support::hcl::check_nesting(&src).map_err(|e| e.message)?;
    let body = hcl_edit::parser::parse_body(&src).map_err(|e| format!("not a valid value: {}", e.message()))?;
    let Some(Structure::Attribute(a)) = body.iter().next() else { return Err("not a valid value".into()) };
    eval::eval(&a.value, &Scope::default(), &src).map_err(|e| e.message)
}

fn coerce(v: Value, kind: &str) -> Result<Value, String> {
    let base = kind.split('(').next().unwrap_or("");
    Ok(match (base, v) {
        ("number", Value::String(s)) => {
            let n: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
            serde_json::to_value(n).map_err(|e| e.to_string())?
        }
        ("bool", Value::String(s)) => match s.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(format!("{s:?} is not true or false")),
        },
        ("string", v @ (Value::Number(_) | Value::Bool(_))) => Value::String(eval::as_string(&v).unwrap_or_default()),
        ("list" | "set" | "tuple", v) if !v.is_array() => return Err(format!("expected a list, got {v}")),
        ("map" | "object", v) if !v.is_object() => return Err(format!("expected a map, got {v}")),
        (_, v) => v,
    })
}

/// A var file: `name = value` lines (HCL), or a JSON object for `.json` files. The
/// error carries a (line, column).
fn read_var_file(name: &str, text: &str) -> Result<BTreeMap<String, Value>, (String, (usize, usize))> {
    if name.ends_with(".json") {
        let v: BTreeMap<String, Value> =
            serde_json::from_str(text).map_err(|e| (format!("not a JSON object: {e}"), (e.line(), e.column())))?;
        return Ok(v);
    }
    rabble_shared::support::hcl::check_nesting(text).map_err(|e| (e.message, (e.line, e.column)))?;
    let body = hcl_edit::parser::parse_body(text)
        .map_err(|e| (e.message().to_owned(), (e.location().line(), e.location().column())))?;
    let ctx = Ctx::new(name, text);
    let mut out = BTreeMap::new();
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let v = eval::eval(&a.value, &Scope::default(), text).map_err(|e| {
                    let pos = e.span.map_or((0, 0), |r| ctx.position(r.start));
                    (e.message, pos)
                })?;
                out.insert(a.key.value().as_str().to_owned(), v);
            }
            Structure::Block(b) => {
                let pos = b.span().map_or((0, 0), |r| ctx.position(r.start));
                return Err(("a var file holds `name = value` lines only".into(), pos));
            }
        }
    }
    Ok(out)
}
