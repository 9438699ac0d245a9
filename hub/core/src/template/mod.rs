//! Nomad's `template` blocks, rendered where the data is (the hub): Go's text/template
//! language — written here, because no maintained crate offers Nomad's configurable
//! delimiters, bounded execution and line-numbered errors (gtmpl is passively
//! maintained, fixed to `{{ }}`, and panics on some inputs) — with consul-template's
//! functions over a [`Source`] (KV, the catalog, variables). Pure: `lex` (text → tokens),
//! `parse` (tokens → [`parse::Node`]s), `exec` (nodes × source → text, bounded),
//! `funcs` (the functions), `value` (Go's values). A data function whose answer does not
//! exist yet blocks the render ([`RenderError::Missing`]), as consul-template does;
//! everything else that fails names the template, the line and the reason.

pub mod alloc;
pub mod exec;
pub mod funcs;
pub mod lex;
pub mod parse;
pub mod sockaddr;
pub mod source;
pub mod value;

use std::collections::BTreeMap;
pub use value::Value;

/// Why a template cannot be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template:?}, line {line}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Waiting for data that does not exist yet (a key, a variable, a node).
    #[error("waiting for {0}")]
    Missing(String),
    #[error(transparent)]
    Failed(TemplateError),
}

/// The data templates read. The hub implements it over a catalog snapshot; tests over
/// fixtures.
pub trait Source {
    /// The task's environment (`env "NOMAD_ALLOC_ID"`).
    fn env(&self, name: &str) -> Option<String>;
    fn kv_get(&self, key: &str) -> Option<String>;
    /// Every (key, value) under `prefix`, in key order.
    fn kv_list(&self, prefix: &str) -> Vec<(String, String)>;
    /// Service names and the union of their tags.
    fn services(&self) -> Vec<(String, Vec<String>)>;
    /// The instances of `name` (with `tag`) whose status is in `statuses` (`any`: all),
    /// as consul-template's entries: `Node`, `NodeAddress`, `Address`, `Port`, `ID`,
    /// `Name`, `Tags`, `ServiceMeta`, `Status`.
    fn service(&self, name: &str, tag: Option<&str>, statuses: &[&str]) -> Vec<Value>;
    /// Every node: `Node`, `Address`, `Datacenter`, `Meta`.
    fn nodes(&self) -> Vec<Value>;
    /// A variable's items, if the job may read it (`Err`: it may not).
    fn var(&self, path: &str) -> Result<Option<BTreeMap<String, String>>, String>;
    fn var_list(&self, prefix: &str) -> Result<Vec<String>, String>;
    /// The addresses of the node the task runs on, by interface (`sockaddr`); `None`
    /// while there is no node (`job plan`).
    fn node_addrs(&self) -> Option<Vec<(String, std::net::IpAddr)>>;
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    nodes: Vec<parse::Node>,
    /// `error_on_missing_key`.
    pub strict: bool,
}

/// The largest template source accepted.
pub const MAX_SOURCE: usize = 1024 * 1024;

impl Template {
    /// Parses `text` with the given delimiters (Nomad's default `{{` `}}`).
    pub fn parse(name: &str, text: &str, left: &str, right: &str) -> Result<Template, TemplateError> {
        let err = |reason: String| TemplateError { template: name.to_owned(), line: 1, reason };
        if text.len() > MAX_SOURCE {
            return Err(err(format!("{} bytes, over {MAX_SOURCE}", text.len())));
        }
        if left.is_empty() || right.is_empty() {
            return Err(err("delimiters must not be empty".into()));
        }
        let toks = lex::lex(name, text, left, right)?;
        let nodes = parse::parse(name, &toks)?;
        Ok(Template { name: name.to_owned(), nodes, strict: false })
    }

    pub fn render(&self, source: &dyn Source) -> Result<String, RenderError> {
        let mut e = exec::Exec::new(&self.name, source, Value::Nil, self.strict);
        e.nodes(&self.nodes, &Value::Nil)?;
        Ok(e.out)
    }
}

#[cfg(test)]
mod tests;
