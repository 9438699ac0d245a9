//! The functions a template can call: Go's builtins (`and or not len index print
//! printf println eq ne lt le gt ge`) and consul-template's that homelab jobs use —
//! data (`key keyOrDefault keyExists ls tree service services node nodes nomadVar
//! nomadVarList nomadVarExists secret env`) through the [`Source`], and text (`toJSON
//! toJSONPretty parseJSON split join toLower toUpper toTitle trimSpace replaceAll
//! regexReplaceAll regexMatch contains in base64Encode base64Decode parseInt parseBool
//! parseFloat byTag`) and `sockaddr` over the node's addresses. A data function whose answer does not exist yet *blocks* the
//! render ([`RenderError::Missing`]) as consul-template does.

use super::exec::Exec;
use super::value::Value;
use super::{RenderError, Source};
use base64::Engine;
use std::collections::BTreeMap;

fn s(v: &Value) -> String {
    match v {
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

fn want(e: &Exec<'_>, name: &str, args: &[Value], n: usize) -> Result<(), RenderError> {
    if args.len() == n {
        Ok(())
    } else {
        Err(e.fail(format!("{name} takes {n} argument{}, got {}", if n == 1 { "" } else { "s" }, args.len())))
    }
}

fn missing(what: String) -> RenderError {
    RenderError::Missing(what)
}

pub fn call(e: &mut Exec<'_>, name: &str, a: Vec<Value>) -> Result<Value, RenderError> {
    let src: &dyn Source = e.source;
    Ok(match name {
        // Go's builtins.
        "not" => {
            want(e, name, &a, 1)?;
            Value::Bool(!a[0].truth())
        }
        "len" => {
            want(e, name, &a, 1)?;
            Value::Int(match &a[0] {
                Value::Str(x) => x.len(),
                Value::List(l) => l.len(),
                Value::Map(m) => m.len(),
                Value::Nil => 0,
                o => return Err(e.fail(format!("len of a {}", o.kind()))),
            } as i64)
        }
        "index" => {
            let Some((first, keys)) = a.split_first() else { return Err(e.fail("index needs a collection")) };
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (Value::List(l), Value::Int(i)) => {
                        l.get(*i as usize).cloned().ok_or_else(|| e.fail(format!("index {i} out of range")))?
                    }
                    (Value::Map(m), Value::Str(k)) => m.get(k).cloned().unwrap_or_default(),
                    (Value::Nil, _) => Value::Nil,
                    (c, k) => return Err(e.fail(format!("can't index a {} with a {}", c.kind(), k.kind()))),
                };
            }
            v
        }
        "print" => Value::Str(a.iter().map(s).collect::<Vec<_>>().join("")),
        "println" => Value::Str(a.iter().map(s).collect::<Vec<_>>().join(" ") + "\n"),
        "printf" => {
            let Some((Value::Str(f), rest)) = a.split_first() else {
                return Err(e.fail("printf needs a format string"));
            };
            Value::Str(printf(f, rest))
        }
        "eq" => {
            let Some((first, rest)) = a.split_first() else { return Err(e.fail("eq needs arguments")) };
            Value::Bool(rest.iter().any(|o| first.compare(o) == Some(std::cmp::Ordering::Equal)))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want(e, name, &a, 2)?;
            use std::cmp::Ordering::*;
            let o = a[0].compare(&a[1]);
            if o.is_none() && name != "ne" {
                return Err(e.fail(format!("{name}: can't compare a {} with a {}", a[0].kind(), a[1].kind())));
            }
            Value::Bool(match name {
                "ne" => o != Some(Equal),
                "lt" => o == Some(Less),
                "le" => o != Some(Greater),
                "gt" => o == Some(Greater),
                _ => o != Some(Less),
            })
        }
        // Data.
        "env" => {
            want(e, name, &a, 1)?;
            Value::Str(src.env(&s(&a[0])).unwrap_or_default())
        }
        "key" => {
            want(e, name, &a, 1)?;
            let k = s(&a[0]);
            Value::Str(src.kv_get(&k).ok_or_else(|| missing(format!("key {k:?}")))?)
        }
        "keyOrDefault" => {
            want(e, name, &a, 2)?;
            Value::Str(src.kv_get(&s(&a[0])).unwrap_or_else(|| s(&a[1])))
        }
        "keyExists" => {
            want(e, name, &a, 1)?;
            Value::Bool(src.kv_get(&s(&a[0])).is_some())
        }
        "ls" | "tree" => {
            want(e, name, &a, 1)?;
            let prefix = s(&a[0]);
            let base = if prefix.is_empty() || prefix.ends_with('/') { prefix.clone() } else { format!("{prefix}/") };
            let pairs = src.kv_list(&base);
            Value::List(
                pairs
                    .into_iter()
                    .filter_map(|(k, v)| {
                        let rel = k.strip_prefix(&base)?.to_owned();
                        let keep = !rel.is_empty() && !rel.ends_with('/') && (name == "tree" || !rel.contains('/'));
                        keep.then(|| Value::map([("Key", Value::Str(rel)), ("Value", Value::Str(v))]))
                    })
                    .collect(),
            )
        }
        "service" => {
            if a.is_empty() || a.len() > 2 {
                return Err(e.fail("service takes \"[tag.]name[|health,...]\" (and an optional health filter)"));
            }
            let q = s(&a[0]);
            let (q, health) = match q.split_once('|') {
                Some((q, h)) => (q.to_owned(), Some(h.to_owned())),
                None => (q, a.get(1).map(s)),
            };
            let (tag, svc) = match q.rsplit_once('.') {
                Some((t, n)) => (Some(t.to_owned()), n.to_owned()),
                None => (None, q),
            };
            let health = health.unwrap_or_else(|| "passing".into());
            let statuses: Vec<&str> = health.split(',').map(str::trim).collect();
            Value::List(src.service(&svc, tag.as_deref(), &statuses))
        }
        "services" => Value::List(
            src.services()
                .into_iter()
                .map(|(n, tags)| {
                    Value::map([
                        ("Name", Value::Str(n)),
                        ("Tags", Value::List(tags.into_iter().map(Value::Str).collect())),
                    ])
                })
                .collect(),
        ),
        "nodes" => Value::List(src.nodes()),
        "node" => {
            want(e, name, &a, 1)?;
            let n = s(&a[0]);
            src.nodes()
                .into_iter()
                .find(|v| v.field("Node").is_some_and(|x| s(x) == n))
                .ok_or_else(|| missing(format!("node {n:?}")))?
        }
        "nomadVar" | "secret" => {
            want(e, name, &a, 1)?;
            let path = s(&a[0]);
            let items = src
                .var(&path)
                .map_err(|r| e.fail(format!("{name} {path:?}: {r}")))?
                .ok_or_else(|| missing(format!("variable {path:?}")))?;
            let items = Value::Map(items.into_iter().map(|(k, v)| (k, Value::Str(v))).collect());
            if name == "nomadVar" {
                items
            } else if path.contains("/data/") {
                // Vault KV v2's shape: .Data.data.<key>
                Value::map([("Data", Value::map([("data", items), ("metadata", Value::Map(BTreeMap::new()))]))])
            } else {
                Value::map([("Data", items)])
            }
        }
        "nomadVarExists" => {
            want(e, name, &a, 1)?;
            let path = s(&a[0]);
            Value::Bool(src.var(&path).map_err(|r| e.fail(format!("{name} {path:?}: {r}")))?.is_some())
        }
        "nomadVarList" => {
            let prefix = a.first().map(s).unwrap_or_default();
            let paths = src.var_list(&prefix).map_err(|r| e.fail(format!("{name} {prefix:?}: {r}")))?;
            Value::List(paths.into_iter().map(|p| Value::map([("Path", Value::Str(p))])).collect())
        }
        "sockaddr" => {
            want(e, name, &a, 1)?;
            let addrs = src.node_addrs().ok_or_else(|| missing("the allocation's node (sockaddr)".into()))?;
            Value::Str(super::sockaddr::eval(&s(&a[0]), &addrs).map_err(|r| e.fail(r))?)
        }
        // Text.
        "toJSON" | "toJSONPretty" => {
            want(e, name, &a, 1)?;
            let j = a[0].to_json();
            Value::Str(if name == "toJSON" {
                j.to_string()
            } else {
                serde_json::to_string_pretty(&j).unwrap_or_default()
            })
        }
        "parseJSON" => {
            want(e, name, &a, 1)?;
            let j: serde_json::Value =
                serde_json::from_str(&s(&a[0])).map_err(|x| e.fail(format!("parseJSON: {x}")))?;
            Value::from_json(j)
        }
        "split" => {
            want(e, name, &a, 2)?;
            let (sep, text) = (s(&a[0]), s(&a[1]));
            if text.is_empty() {
                Value::List(vec![])
            } else {
                Value::List(text.split(sep.as_str()).map(Value::str).collect())
            }
        }
        "join" => {
            want(e, name, &a, 2)?;
            let Value::List(l) = &a[1] else { return Err(e.fail(format!("join: a list, not a {}", a[1].kind()))) };
            Value::Str(l.iter().map(s).collect::<Vec<_>>().join(&s(&a[0])))
        }
        "toLower" | "toUpper" | "trimSpace" | "toTitle" | "base64Encode" => {
            want(e, name, &a, 1)?;
            let x = s(&a[0]);
            Value::Str(match name {
                "toLower" => x.to_lowercase(),
                "toUpper" => x.to_uppercase(),
                "trimSpace" => x.trim().to_owned(),
                "toTitle" => x.split(' ').map(title).collect::<Vec<_>>().join(" "),
                _ => base64::engine::general_purpose::STANDARD.encode(x),
            })
        }
        "base64Decode" => {
            want(e, name, &a, 1)?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s(&a[0]).trim())
                .map_err(|x| e.fail(format!("base64Decode: {x}")))?;
            Value::Str(String::from_utf8_lossy(&b).into_owned())
        }
        "replaceAll" => {
            want(e, name, &a, 3)?;
            Value::Str(s(&a[2]).replace(&s(&a[0]), &s(&a[1])))
        }
        "regexReplaceAll" | "regexMatch" => {
            want(e, name, &a, if name == "regexMatch" { 2 } else { 3 })?;
            let re = regex_lite::Regex::new(&s(&a[0])).map_err(|x| e.fail(format!("{name}: {x}")))?;
            if name == "regexMatch" {
                Value::Bool(re.is_match(&s(&a[1])))
            } else {
                Value::Str(re.replace_all(&s(&a[2]), s(&a[1]).as_str()).into_owned())
            }
        }
        "contains" => {
            // consul-template: `contains needle haystack` (a string or a list).
            want(e, name, &a, 2)?;
            Value::Bool(match &a[1] {
                Value::List(l) => l.contains(&a[0]),
                other => s(other).contains(&s(&a[0])),
            })
        }
        "in" => {
            want(e, name, &a, 2)?;
            Value::Bool(match &a[0] {
                Value::List(l) => l.contains(&a[1]),
                other => s(other).contains(&s(&a[1])),
            })
        }
        "parseInt" => {
            want(e, name, &a, 1)?;
            Value::Int(s(&a[0]).trim().parse().map_err(|x| e.fail(format!("parseInt: {x}")))?)
        }
        "parseFloat" => {
            want(e, name, &a, 1)?;
            Value::Float(s(&a[0]).trim().parse().map_err(|x| e.fail(format!("parseFloat: {x}")))?)
        }
        "parseBool" => {
            want(e, name, &a, 1)?;
            Value::Bool(match s(&a[0]).trim() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
                "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => false,
                o => return Err(e.fail(format!("parseBool: {o:?}"))),
            })
        }
        "byTag" => {
            want(e, name, &a, 1)?;
            let Value::List(l) = &a[0] else { return Err(e.fail("byTag: a list of services")) };
            let mut out: BTreeMap<String, Value> = BTreeMap::new();
            for svc in l {
                if let Some(Value::List(tags)) = svc.field("Tags") {
                    for t in tags {
                        if let Value::List(v) = out.entry(s(t)).or_insert_with(|| Value::List(vec![])) {
                            v.push(svc.clone());
                        }
                    }
                }
            }
            Value::Map(out)
        }
        other => return Err(e.fail(format!("function {other:?} not defined"))),
    })
}

fn title(w: &str) -> String {
    let mut c = w.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %f %x %t %%`, with
/// width, `-` and precision.
pub fn printf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = f.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&fl) = it.peek().filter(|c| **c == '-' || **c == '0' || **c == '+' || **c == ' ') {
            left |= fl == '-';
            zero |= fl == '0';
            it.next();
        }
        let mut width = String::new();
        while let Some(&d) = it.peek().filter(|c| c.is_ascii_digit()) {
            width.push(d);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            let mut p = String::new();
            while let Some(&d) = it.peek().filter(|c| c.is_ascii_digit()) {
                p.push(d);
                it.next();
            }
            prec = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(v) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let text = match (verb, v) {
            ('d', Value::Int(i)) => i.to_string(),
            ('d', Value::Float(x)) => format!("%!d(float64={x})"),
            ('f' | 'F', Value::Float(x)) => format!("{x:.*}", prec.unwrap_or(6)),
            ('f' | 'F', Value::Int(i)) => format!("{:.*}", prec.unwrap_or(6), *i as f64),
            ('x', Value::Int(i)) => format!("{i:x}"),
            ('x', other) => s(other).bytes().map(|b| format!("{b:02x}")).collect(),
            ('q', other) => format!("{:?}", s(other)),
            ('t', Value::Bool(b)) => b.to_string(),
            ('s' | 'v', other) => {
                let t = s(other);
                match prec {
                    Some(p) if verb == 's' => t.chars().take(p).collect(),
                    _ => t,
                }
            }
            (verb, other) => format!("%!{verb}({}={})", other.kind(), s(other)),
        };
        let w: usize = width.parse().unwrap_or(0);
        let pad = w.saturating_sub(text.chars().count());
        if left {
            out.push_str(&text);
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.extend(std::iter::repeat_n(if zero { '0' } else { ' ' }, pad));
            out.push_str(&text);
        }
    }
    if next.next().is_some() {
        out.push_str("%!(EXTRA)");
    }
    out
}
