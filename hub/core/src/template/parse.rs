//! Tokens → the template's tree: text, actions (pipelines of commands), `if`/`else if`/
//! `else`, `range` (with `$i, $e :=` and `else`), `with` (and `else with`), variables
//! (`$x := ...`, `$x = ...`). `define`, `template` and `block` are refused by name.

use super::TemplateError;
use super::lex::{Spanned, Tok};
use super::value::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Text(String),
    Action { line: usize, pipe: Pipe },
    If { line: usize, branches: Vec<(Pipe, Vec<Node>)>, otherwise: Vec<Node> },
    With { line: usize, branches: Vec<(Pipe, Vec<Node>)>, otherwise: Vec<Node> },
    Range { line: usize, pipe: Pipe, body: Vec<Node>, otherwise: Vec<Node> },
}

/// `$a, $b := cmd | cmd`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipe {
    pub vars: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    /// A parenthesised pipeline and the fields read off its value.
    Sub(Pipe, Vec<String>),
}

/// The most nesting the parser follows (a hostile template cannot blow the stack).
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    name: &'a str,
    toks: &'a [Spanned],
    at: usize,
    depth: usize,
}

/// What ended a list of nodes.
enum Stop {
    Eof,
    End,
    /// `else`, and what followed it in the action (`if ...`/`with ...` or nothing).
    Else(Option<(String, Pipe)>),
}

pub fn parse(name: &str, toks: &[Spanned]) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser { name, toks, at: 0, depth: 0 };
    let (nodes, end) = p.list()?;
    match end {
        Stop::Eof => Ok(nodes),
        Stop::End => Err(p.err("unexpected {{end}}")),
        Stop::Else(_) => Err(p.err("unexpected {{else}}")),
    }
}

impl Parser<'_> {
    fn line(&self) -> usize {
        self.toks.get(self.at.min(self.toks.len().saturating_sub(1))).map_or(1, |t| t.1)
    }
    fn err(&self, reason: &str) -> TemplateError {
        TemplateError { template: self.name.to_owned(), line: self.line(), reason: reason.to_owned() }
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.0)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).map(|t| t.0.clone());
        self.at += 1;
        t
    }
    fn expect_close(&mut self) -> Result<(), TemplateError> {
        match self.next() {
            Some(Tok::Close) => Ok(()),
            _ => Err(self.err("expected the end of the action")),
        }
    }

    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        let mut out = Vec::new();
        let end = loop {
            let Some(tok) = self.next() else { break Stop::Eof };
            match tok {
                Tok::Text(t) => out.push(Node::Text(t)),
                Tok::Open => {
                    let line = self.line();
                    match self.peek().cloned() {
                        Some(Tok::Ident(k)) if k == "end" => {
                            self.at += 1;
                            self.expect_close()?;
                            break Stop::End;
                        }
                        Some(Tok::Ident(k)) if k == "else" => {
                            self.at += 1;
                            let chained = match self.peek().cloned() {
                                Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                                    self.at += 1;
                                    Some((k, self.pipe()?))
                                }
                                _ => None,
                            };
                            self.expect_close()?;
                            break Stop::Else(chained);
                        }
                        Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                            self.at += 1;
                            out.push(self.branching(&k, line)?);
                        }
                        Some(Tok::Ident(k)) if k == "range" => {
                            self.at += 1;
                            let pipe = self.pipe()?;
                            self.expect_close()?;
                            let (body, end) = self.list()?;
                            let otherwise = match end {
                                Stop::End => vec![],
                                Stop::Else(None) => self.until_end()?,
                                Stop::Else(Some(_)) => return Err(self.err("range: {{else if}} is not allowed")),
                                Stop::Eof => return Err(self.err("range without {{end}}")),
                            };
                            out.push(Node::Range { line, pipe, body, otherwise });
                        }
                        Some(Tok::Ident(k))
                            if ["define", "template", "block", "break", "continue"].contains(&k.as_str()) =>
                        {
                            return Err(self.err(&format!("{{{{{k}}}}} is not supported")));
                        }
                        _ => {
                            let pipe = self.pipe()?;
                            self.expect_close()?;
                            out.push(Node::Action { line, pipe });
                        }
                    }
                }
                _ => return Err(self.err("unexpected token outside an action")),
            }
        };
        self.depth -= 1;
        Ok((out, end))
    }

    fn until_end(&mut self) -> Result<Vec<Node>, TemplateError> {
        match self.list()? {
            (nodes, Stop::End) => Ok(nodes),
            (_, Stop::Else(_)) => Err(self.err("a second {{else}}")),
            (_, Stop::Eof) => Err(self.err("missing {{end}}")),
        }
    }

    /// `if`/`with` after its keyword, through `else if`/`else with` chains to `end`.
    fn branching(&mut self, kind: &str, line: usize) -> Result<Node, TemplateError> {
        let mut branches = Vec::new();
        let mut pipe = self.pipe()?;
        self.expect_close()?;
        let otherwise = loop {
            let (body, end) = self.list()?;
            branches.push((pipe, body));
            match end {
                Stop::End => break vec![],
                Stop::Else(None) => break self.until_end()?,
                Stop::Else(Some((k, p))) if k == kind => pipe = p,
                Stop::Else(Some((k, _))) => return Err(self.err(&format!("{{{{else {k}}}}} inside {{{{{kind}}}}}"))),
                Stop::Eof => return Err(self.err(&format!("{kind} without {{{{end}}}}"))),
            }
        };
        Ok(if kind == "if" { Node::If { line, branches, otherwise } } else { Node::With { line, branches, otherwise } })
    }

    /// A pipeline, up to (not including) `)` or the end of the action.
    fn pipe(&mut self) -> Result<Pipe, TemplateError> {
        let mut p = Pipe::default();
        // Declarations: `$x :=`, `$i, $e :=`, `$x =`.
        let save = self.at;
        let mut vars = Vec::new();
        while let Some(Tok::Var(v, f)) = self.peek().cloned() {
            if !f.is_empty() {
                break;
            }
            self.at += 1;
            vars.push(v);
            match self.peek() {
                Some(Tok::Comma) => self.at += 1,
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    p.assign = self.peek() == Some(&Tok::Assign);
                    self.at += 1;
                    p.vars = std::mem::take(&mut vars);
                    break;
                }
                _ => break,
            }
        }
        if p.vars.is_empty() {
            self.at = save;
        }
        let mut cmd = Vec::new();
        loop {
            match self.peek().cloned() {
                None | Some(Tok::Close) | Some(Tok::RParen(_)) => break,
                Some(Tok::Pipe) => {
                    self.at += 1;
                    if cmd.is_empty() {
                        return Err(self.err("missing command before |"));
                    }
                    p.cmds.push(std::mem::take(&mut cmd));
                }
                Some(t) => {
                    self.at += 1;
                    cmd.push(match t {
                        Tok::Field(f) => Arg::Field(f),
                        Tok::Var(v, f) => Arg::Var(v, f),
                        Tok::Ident(i) => Arg::Func(i),
                        Tok::Str(s) => Arg::Lit(Value::Str(s)),
                        Tok::Int(i) => Arg::Lit(Value::Int(i)),
                        Tok::Float(f) => Arg::Lit(Value::Float(f)),
                        Tok::Bool(b) => Arg::Lit(Value::Bool(b)),
                        Tok::Nil => Arg::Lit(Value::Nil),
                        Tok::LParen => {
                            self.depth += 1;
                            if self.depth > MAX_DEPTH {
                                return Err(self.err("nested too deeply"));
                            }
                            let sub = self.pipe()?;
                            self.depth -= 1;
                            match self.next() {
                                Some(Tok::RParen(fields)) => Arg::Sub(sub, fields),
                                _ => return Err(self.err("missing )")),
                            }
                        }
                        other => return Err(self.err(&format!("unexpected {other:?}"))),
                    });
                }
            }
        }
        if cmd.is_empty() {
            return Err(self.err(if p.cmds.is_empty() { "empty action" } else { "missing command after |" }));
        }
        p.cmds.push(cmd);
        Ok(p)
    }
}
