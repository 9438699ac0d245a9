//! Runs a parsed template over a [`Source`]: dot and `$` variables, pipelines (the
//! previous command's value is the next one's last argument), `if`/`with`/`range`, and
//! functions by name (`funcs`). Bounded: output size and work steps, so a hostile
//! template cannot hang or exhaust the hub.

use super::parse::{Arg, Node, Pipe};
use super::value::Value;
use super::{RenderError, Source, TemplateError};

/// The most a template may write, and the most steps it may take.
pub const MAX_OUTPUT: usize = 4 * 1024 * 1024;
const MAX_STEPS: u64 = 2_000_000;

pub struct Exec<'a> {
    pub name: &'a str,
    pub source: &'a dyn Source,
    pub out: String,
    vars: Vec<(String, Value)>,
    steps: u64,
    line: usize,
    /// Nomad's `error_on_missing_key`: a missing map key fails instead of printing `<no value>`.
    pub strict: bool,
}

impl<'a> Exec<'a> {
    pub fn new(name: &'a str, source: &'a dyn Source, root: Value, strict: bool) -> Exec<'a> {
        Exec { name, source, out: String::new(), vars: vec![(String::new(), root)], steps: 0, line: 1, strict }
    }

    pub fn fail(&self, reason: impl Into<String>) -> RenderError {
        RenderError::Failed(TemplateError { template: self.name.to_owned(), line: self.line, reason: reason.into() })
    }

    fn step(&mut self) -> Result<(), RenderError> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(self.fail(format!("over {MAX_STEPS} steps (a runaway range?)")));
        }
        if self.out.len() > MAX_OUTPUT {
            return Err(self.fail(format!("output over {MAX_OUTPUT} bytes")));
        }
        Ok(())
    }

    pub fn nodes(&mut self, nodes: &[Node], dot: &Value) -> Result<(), RenderError> {
        for n in nodes {
            self.step()?;
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action { line, pipe } => {
                    self.line = *line;
                    let v = self.pipe(pipe, dot)?;
                    if pipe.vars.is_empty() {
                        use std::fmt::Write;
                        let _ = write!(self.out, "{v}");
                    }
                }
                Node::If { line, branches, otherwise } | Node::With { line, branches, otherwise } => {
                    self.line = *line;
                    let with = matches!(n, Node::With { .. });
                    let mark = self.vars.len();
                    let mut taken = false;
                    for (pipe, body) in branches {
                        let v = self.pipe(pipe, dot)?;
                        if v.truth() {
                            let d = if with { v } else { dot.clone() };
                            self.nodes(body, &d)?;
                            taken = true;
                            break;
                        }
                    }
                    if !taken {
                        self.nodes(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range { line, pipe, body, otherwise } => {
                    self.line = *line;
                    let mark = self.vars.len();
                    let decl = Pipe { vars: vec![], assign: false, cmds: pipe.cmds.clone() };
                    let v = self.pipe(&decl, dot)?;
                    let items: Vec<(Value, Value)> = match v {
                        Value::List(l) => l.into_iter().enumerate().map(|(i, v)| (Value::Int(i as i64), v)).collect(),
                        Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
                        Value::Int(n) if n as u64 > MAX_STEPS => {
                            return Err(self.fail(format!("range over {n}: over the {MAX_STEPS}-step limit")));
                        }
                        Value::Int(n) if n >= 0 => (0..n).map(|i| (Value::Int(i), Value::Int(i))).collect(),
                        Value::Nil => vec![],
                        other => return Err(self.fail(format!("range over a {}", other.kind()))),
                    };
                    if items.is_empty() {
                        self.nodes(otherwise, dot)?;
                    }
                    for (k, v) in items {
                        match pipe.vars.as_slice() {
                            [] => {}
                            [e] => self.vars.push((e.clone(), v.clone())),
                            [i, e, ..] => {
                                self.vars.push((i.clone(), k));
                                self.vars.push((e.clone(), v.clone()));
                            }
                        }
                        self.nodes(body, &v)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        Ok(())
    }

    fn var(&self, name: &str) -> Result<Value, RenderError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.fail(format!("undefined variable ${name}")))
    }

    fn fields(&self, mut v: Value, names: &[String]) -> Result<Value, RenderError> {
        for n in names {
            v = match &v {
                Value::Map(m) => match m.get(n) {
                    Some(x) => x.clone(),
                    None if self.strict => return Err(self.fail(format!("map has no entry for key {n:?}"))),
                    None => Value::Nil,
                },
                Value::Nil => Value::Nil,
                other => return Err(self.fail(format!("can't read field {n} of a {}", other.kind()))),
            };
        }
        Ok(v)
    }

    pub fn pipe(&mut self, p: &Pipe, dot: &Value) -> Result<Value, RenderError> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            self.step()?;
            prev = Some(self.command(cmd, dot, prev)?);
        }
        let v = prev.unwrap_or_default();
        match (p.vars.as_slice(), p.assign) {
            ([], _) => {}
            ([name], false) => self.vars.push((name.clone(), v.clone())),
            ([name], true) => match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v.clone(),
                None => return Err(self.fail(format!("undefined variable ${name}"))),
            },
            _ => return Err(self.fail("only range declares two variables")),
        }
        Ok(v)
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, RenderError> {
        match a {
            Arg::Field(f) => self.fields(dot.clone(), f),
            Arg::Var(name, f) => {
                let v = self.var(name)?;
                self.fields(v, f)
            }
            Arg::Lit(v) => Ok(v.clone()),
            Arg::Sub(p, f) => {
                let v = self.pipe(p, dot)?;
                self.fields(v, f)
            }
            Arg::Func(name) => self.call(name, vec![]),
        }
    }

    fn command(&mut self, cmd: &[Arg], dot: &Value, prev: Option<Value>) -> Result<Value, RenderError> {
        match cmd {
            [Arg::Func(name), rest @ ..] => {
                if name == "and" || name == "or" {
                    // Go stops at the first deciding argument.
                    let want = name == "or";
                    let mut last = Value::Nil;
                    for a in rest {
                        last = self.arg(a, dot)?;
                        if last.truth() == want {
                            return Ok(last);
                        }
                    }
                    if let Some(p) = prev {
                        last = p;
                    }
                    return Ok(last);
                }
                let mut args = Vec::with_capacity(rest.len() + 1);
                for a in rest {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(prev);
                self.call(name, args)
            }
            [single] if prev.is_none() => self.arg(single, dot),
            [_] => Err(self.fail("can't give an argument to a non-function")),
            _ => Err(self.fail("arguments to a non-function")),
        }
    }

    fn call(&mut self, name: &str, args: Vec<Value>) -> Result<Value, RenderError> {
        super::funcs::call(self, name, args)
    }
}
