//! Reading one HCL block body into typed fields. A [`Reader`] remembers what it took,
//! so whatever is left at [`Reader::finish`] is a typo or a block Rabble does not know,
//! reported with the file, line, column and block path. Values are coerced the way
//! HCL's type conversion does: `"8081"` is a number, `"true"` a boolean.

use super::Diagnostic;
use super::eval::{self, Scope};
use hcl_edit::Span;
use hcl_edit::structure::{Block, BlockLabel, Body, Structure};
use rabble_shared::support::duration;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Range;

/// The file being read and everything found wrong in it so far.
pub struct Ctx<'a> {
    pub file: &'a str,
    pub src: &'a str,
    pub scope: Scope,
    line_starts: Vec<usize>,
    pub errors: RefCell<Vec<Diagnostic>>,
    pub unsupported: RefCell<Vec<Diagnostic>>,
    pub warnings: RefCell<Vec<Diagnostic>>,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a str, src: &'a str) -> Ctx<'a> {
        let line_starts = std::iter::once(0).chain(src.match_indices('\n').map(|(i, _)| i + 1)).collect();
        Ctx {
            file,
            src,
            scope: Scope::default(),
            line_starts,
            errors: Default::default(),
            unsupported: Default::default(),
            warnings: Default::default(),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let col = self.src.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        (line, col)
    }

    pub fn diagnostic(&self, span: Option<Range<usize>>, path: &str, message: impl Into<String>) -> Diagnostic {
        let (line, column) = span.map_or((0, 0), |r| self.position(r.start));
        Diagnostic { file: self.file.to_owned(), line, column, path: path.to_owned(), message: message.into() }
    }

    pub fn error(&self, span: Option<Range<usize>>, path: &str, message: impl Into<String>) {
        self.errors.borrow_mut().push(self.diagnostic(span, path, message));
    }

    pub fn warn(&self, span: Option<Range<usize>>, path: &str, message: impl Into<String>) {
        self.warnings.borrow_mut().push(self.diagnostic(span, path, message));
    }
}

/// One block body being read.
pub struct Reader<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    /// `job "plex" > group "media" > task "server"`.
    pub path: String,
    pub span: Option<Range<usize>>,
    body: &'c Body,
    used: Vec<bool>,
}

/// Blocks the issue and real homelab files name that Rabble does not run (yet): refused
/// unless the user passes `-ignore-unsupported`.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("connect", "the Consul Connect service mesh is not available"),
    ("artifact", "artifacts are not downloaded; bake the file into the image"),
    ("device", "devices (GPUs and the like) are not scheduled"),
    ("affinity", "affinities are not weighed; use a constraint"),
    ("spread", "spread is not weighed; use distinct_hosts or distinct_property"),
    ("multiregion", "Rabble has one region"),
    ("scaling", "autoscaling policies are not evaluated"),
    ("csi_plugin", "CSI plugins are not available"),
    ("identity", "workload identities are not issued"),
    ("consul", "Rabble is its own catalog"),
];

/// Blocks and arguments Nomad has that change nothing in Rabble: read and let be.
const NO_EFFECT: &[&str] = &[
    "namespace",
    "node_pool",
    "all_at_once",
    "vault_token",
    "consul_token",
    "logs",
    "ephemeral_disk",
    "migrate",
    "shutdown_delay",
    "leader",
    "stop_after_client_disconnect",
    "max_client_disconnect",
    "prevent_reschedule_on_lost",
    "canary_tags",
    "enable_tag_override",
    "on_update",
    "kind",
];

impl<'c, 'a> Reader<'c, 'a> {
    pub fn new(ctx: &'c Ctx<'a>, body: &'c Body, path: String, span: Option<Range<usize>>) -> Self {
        Reader { ctx, path, span, body, used: vec![false; body.len()] }
    }

    pub fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) {
        self.ctx.error(span.or_else(|| self.span.clone()), &self.path, message);
    }

    /// The raw body (for `locals`, evaluated in passes).
    pub fn body(&self) -> &'c Body {
        self.body
    }

    /// The evaluated value of attribute `name`, with its span.
    pub fn value(&mut self, name: &str) -> Option<(Value, Option<Range<usize>>)> {
        let (i, attr) = self.body.iter().enumerate().find_map(|(i, s)| match s {
            Structure::Attribute(a) if a.key.value().as_str() == name => Some((i, a)),
            _ => None,
        })?;
        self.used[i] = true;
        let span = attr.span();
        match eval::eval(&attr.value, &self.ctx.scope, self.ctx.src) {
            Ok(v) => Some((v, span)),
            Err(e) => {
                self.ctx.error(e.span.or(span), &self.path, format!("{name}: {}", e.message));
                None
            }
        }
    }

    fn typed<T>(&mut self, name: &str, what: &str, conv: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
        let (v, span) = self.value(name)?;
        let out = conv(&v);
        if out.is_none() {
            self.error(span, format!("{name}: expected {what}, got {v}"));
        }
        out
    }

    pub fn string(&mut self, name: &str) -> Option<String> {
        self.typed(name, "a string", eval::as_string)
    }

    pub fn u64(&mut self, name: &str) -> Option<u64> {
        self.typed(name, "a whole number", |v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    pub fn u32(&mut self, name: &str) -> Option<u32> {
        let span = self.span.clone();
        let n = self.u64(name)?;
        u32::try_from(n).map_err(|_| self.error(span, format!("{name}: {n} is too large"))).ok()
    }

    pub fn bool(&mut self, name: &str) -> Option<bool> {
        self.typed(name, "true or false", |v| match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            _ => None,
        })
    }

    /// A Go-style duration (`30s`, `1m30s`), in milliseconds.
    pub fn duration_ms(&mut self, name: &str) -> Option<u64> {
        let (v, span) = self.value(name)?;
        let text = eval::as_string(&v).unwrap_or_default();
        match duration::parse(&text) {
            Ok(d) => Some(d.as_millis() as u64),
            Err(e) => {
                self.error(span, format!("{name}: {e}"));
                None
            }
        }
    }

    pub fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        self.typed(name, "a list of strings", |v| match v {
            Value::Array(a) => a.iter().map(eval::as_string).collect(),
            _ => None,
        })
    }

    /// A map of strings given as an attribute (`meta = { a = "b" }`) or a block
    /// (`meta { a = "b" }`), the two forms Nomad accepts.
    pub fn string_map(&mut self, name: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let obj = match self.value(name) {
            Some((Value::Object(m), _)) => Some(m),
            Some((v, span)) => {
                self.error(span, format!("{name}: expected a map, got {v}"));
                None
            }
            None => None,
        };
        let mut pairs: Vec<(String, Value, Option<Range<usize>>)> =
            obj.into_iter().flatten().map(|(k, v)| (k, v, None)).collect();
        for mut b in self.blocks(name) {
            pairs.extend(b.reader.take_all_values());
        }
        for (k, v, span) in pairs {
            match eval::as_string(&v) {
                Some(s) => {
                    out.insert(k, s);
                }
                None => self.error(span, format!("{name}.{k}: expected a string, got {v}")),
            }
        }
        out
    }

    /// Every attribute of this body, evaluated (for `env`, `meta` and driver `config`).
    pub fn take_all_values(&mut self) -> Vec<(String, Value, Option<Range<usize>>)> {
        let names: Vec<String> =
            self.body.iter().filter_map(|s| s.as_attribute().map(|a| a.key.value().as_str().to_owned())).collect();
        names.into_iter().filter_map(|n| self.value(&n).map(|(v, s)| (n, v, s))).collect()
    }

    /// The whole body as a JSON object: attributes as values, nested blocks as lists
    /// of objects under their name (how Nomad decodes a driver's `config`).
    pub fn take_object(&mut self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for (k, v, _) in self.take_all_values() {
            out.insert(k, v);
        }
        let idents: Vec<String> =
            self.body.iter().filter_map(|s| s.as_block().map(|b| b.ident.value().as_str().to_owned())).collect();
        for ident in idents {
            for mut b in self.blocks(&ident) {
                let obj = Value::Object(b.reader.take_object());
                match out.entry(ident.clone()).or_insert_with(|| Value::Array(vec![])) {
                    Value::Array(a) => a.push(obj),
                    _ => self.error(b.reader.span.clone(), format!("{ident} is both an argument and a block")),
                }
            }
        }
        out
    }

    /// Every block named `ident`, with its labels, marked as read.
    pub fn blocks(&mut self, ident: &str) -> Vec<Child<'c, 'a>> {
        let mut out = Vec::new();
        for (i, s) in self.body.iter().enumerate() {
            if let Structure::Block(b) = s
                && b.ident.value().as_str() == ident
            {
                self.used[i] = true;
                out.push(self.child(b));
            }
        }
        out
    }

    /// At most one block named `ident` (a second is an error).
    pub fn block(&mut self, ident: &str) -> Option<Child<'c, 'a>> {
        let mut all = self.blocks(ident).into_iter();
        let first = all.next();
        for extra in all {
            self.error(extra.reader.span.clone(), format!("only one `{ident}` block is allowed here"));
        }
        first
    }

    fn child(&self, b: &'c Block) -> Child<'c, 'a> {
        let labels: Vec<String> = b
            .labels
            .iter()
            .map(|l| match l {
                BlockLabel::Ident(i) => i.value().as_str().to_owned(),
                BlockLabel::String(s) => s.value().clone(),
            })
            .collect();
        let mut path = format!("{} > {}", self.path, b.ident.value().as_str());
        for l in &labels {
            path.push_str(&format!(" {l:?}"));
        }
        let path = path.trim_start_matches(" > ").to_owned();
        Child { labels, reader: Reader::new(self.ctx, &b.body, path, b.span()) }
    }

    /// Lets the rest of this body be: for blocks whose content changes nothing here.
    pub fn finish_ignored(self) {}

    /// Reports what nobody read: unsupported blocks (collected apart, so
    /// `-ignore-unsupported` can let them through), Nomad's no-op settings (ignored)
    /// and everything else (an error: most likely a typo).
    pub fn finish(self) {
        for (i, s) in self.body.iter().enumerate() {
            if self.used[i] {
                continue;
            }
            let (name, kind, span) = match s {
                Structure::Attribute(a) => (a.key.value().as_str(), "argument", a.span()),
                Structure::Block(b) => (b.ident.value().as_str(), "block", b.span()),
            };
            if NO_EFFECT.contains(&name) {
                continue;
            }
            if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == name) {
                let path = format!("{} > {name}", self.path);
                self.ctx.unsupported.borrow_mut().push(self.ctx.diagnostic(
                    span,
                    &path,
                    format!("`{name}` is not supported: {why}"),
                ));
                continue;
            }
            self.ctx.error(span, &self.path, format!("unknown {kind} `{name}`"));
        }
    }
}

/// A nested block: its labels and a reader for its body.
pub struct Child<'c, 'a> {
    pub labels: Vec<String>,
    pub reader: Reader<'c, 'a>,
}

impl Child<'_, '_> {
    /// The block's one label (`group "web"`), or an error.
    pub fn label(&self, what: &str) -> Option<String> {
        match self.labels.as_slice() {
            [one] if !one.is_empty() => Some(one.clone()),
            _ => {
                self.reader.error(None, format!("expected one label: {what}"));
                None
            }
        }
    }
}
