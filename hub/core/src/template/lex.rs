//! Go template text → tokens: text between actions, and inside an action its words.
//! The delimiters are configurable (Nomad's `left_delimiter`/`right_delimiter`);
//! `{{- ` and ` -}}` trim the neighbouring text's white space; `{{/* */}}` is a comment.
//! Every token carries its line, for errors that name it.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Text(String),
    /// The start of an action (the left delimiter).
    Open,
    /// Its end.
    Close,
    Ident(String),
    /// `.Foo.Bar` (`Field(["Foo","Bar"])`), or `.` alone (`Field([])`).
    Field(Vec<String>),
    /// `$x.Foo` → (`x`, `["Foo"]`); `$` alone is `("", [])`.
    Var(String, Vec<String>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    /// `)`, and the fields read off the parenthesised value (`(node "x").Address`).
    RParen(Vec<String>),
    /// `:=`
    Declare,
    /// `=`
    Assign,
    Comma,
}

/// A token and the line it starts on.
pub type Spanned = (Tok, usize);

pub fn lex(name: &str, src: &str, left: &str, right: &str) -> Result<Vec<Spanned>, TemplateError> {
    let err = |line: usize, reason: String| TemplateError { template: name.to_owned(), line, reason };
    let mut out: Vec<Spanned> = Vec::new();
    let mut rest = src;
    let mut line = 1usize;
    while !rest.is_empty() {
        let Some(i) = rest.find(left) else {
            out.push((Tok::Text(rest.to_owned()), line));
            break;
        };
        let mut text = &rest[..i];
        let after = &rest[i + left.len()..];
        let trim_left = after.starts_with("- ") || after.starts_with("-\t") || after.starts_with("-\n");
        if trim_left {
            text = text.trim_end();
        }
        if !text.is_empty() {
            out.push((Tok::Text(text.to_owned()), line));
        }
        line += rest[..i].matches('\n').count();
        let mut body = if trim_left { &after[1..] } else { after };
        // A comment: {{/* ... */}}
        let trimmed = body.trim_start();
        if let Some(c) = trimmed.strip_prefix("/*") {
            let end = c.find("*/").ok_or_else(|| err(line, "unclosed comment".into()))?;
            let tail = c[end + 2..].trim_start();
            let (tail, trim_right) = match tail.strip_prefix('-') {
                Some(t) if t.starts_with(right) => (t, true),
                _ => (tail, false),
            };
            let t = tail
                .strip_prefix(right)
                .ok_or_else(|| err(line, "comment not followed by the right delimiter".into()))?;
            line += c[..end].matches('\n').count();
            rest = if trim_right { t.trim_start() } else { t };
            continue;
        }
        out.push((Tok::Open, line));
        loop {
            let b = body.trim_start_matches([' ', '\t', '\r']);
            if let Some(nl) = b.strip_prefix('\n') {
                line += 1;
                body = nl;
                continue;
            }
            body = b;
            if body.is_empty() {
                return Err(err(line, format!("unclosed action (no {right:?})")));
            }
            if let Some(t) = body.strip_prefix(right) {
                out.push((Tok::Close, line));
                rest = t;
                break;
            }
            if body.starts_with('-') && body[1..].starts_with(right) && out.last().is_some_and(|(t, _)| *t != Tok::Open)
            {
                out.push((Tok::Close, line));
                rest = body[1 + right.len()..].trim_start();
                break;
            }
            let (tok, used) = word(body).map_err(|r| err(line, r))?;
            out.push((tok, line));
            body = &body[used..];
        }
    }
    Ok(out)
}

fn ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// A chain of `.Name` after a field or variable: the names and the bytes used.
fn chain(s: &str) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut at = 0;
    while s[at..].starts_with('.') {
        let n: usize = s[at + 1..].chars().take_while(|c| ident_char(*c)).map(char::len_utf8).sum();
        if n == 0 {
            break;
        }
        names.push(s[at + 1..at + 1 + n].to_owned());
        at += 1 + n;
    }
    (names, at)
}

/// One token at the start of `s` (inside an action), and how many bytes it took.
fn word(s: &str) -> Result<(Tok, usize), String> {
    let c = s.chars().next().unwrap_or(' ');
    Ok(match c {
        '|' => (Tok::Pipe, 1),
        '(' => (Tok::LParen, 1),
        ')' => {
            let (names, n) = chain(&s[1..]);
            (Tok::RParen(names), 1 + n)
        }
        ',' => (Tok::Comma, 1),
        ':' if s.starts_with(":=") => (Tok::Declare, 2),
        '=' => (Tok::Assign, 1),
        '"' => {
            let mut out = String::new();
            let mut it = s.char_indices().skip(1);
            while let Some((i, ch)) = it.next() {
                match ch {
                    '"' => return Ok((Tok::Str(out), i + 1)),
                    '\\' => match it.next().map(|(_, e)| e) {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some('r') => out.push('\r'),
                        Some('\\') => out.push('\\'),
                        Some('"') => out.push('"'),
                        Some(o) => return Err(format!("unknown escape \\{o} in a string")),
                        None => break,
                    },
                    '\n' => return Err("newline in a string".into()),
                    ch => out.push(ch),
                }
            }
            return Err("unterminated string".into());
        }
        '`' => {
            let end = s[1..].find('`').ok_or("unterminated raw string")?;
            (Tok::Str(s[1..1 + end].to_owned()), end + 2)
        }
        '.' => {
            let (names, n) = chain(s);
            if names.is_empty() { (Tok::Field(vec![]), 1) } else { (Tok::Field(names), n) }
        }
        '$' => {
            let n: usize = s[1..].chars().take_while(|c| ident_char(*c)).map(char::len_utf8).sum();
            let (names, m) = chain(&s[1 + n..]);
            (Tok::Var(s[1..1 + n].to_owned(), names), 1 + n + m)
        }
        c if c.is_ascii_digit() || (c == '-' && s[1..].starts_with(|d: char| d.is_ascii_digit())) => {
            let n = 1 + s[1..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_').count();
            let lit = s[..n].replace('_', "");
            if let Ok(i) = lit.parse::<i64>() {
                (Tok::Int(i), n)
            } else if let Some(h) = lit.strip_prefix("0x").and_then(|h| i64::from_str_radix(h, 16).ok()) {
                (Tok::Int(h), n)
            } else if let Ok(f) = lit.parse::<f64>() {
                (Tok::Float(f), n)
            } else {
                return Err(format!("bad number {:?}", &s[..n]));
            }
        }
        c if ident_char(c) => {
            let n: usize = s.chars().take_while(|c| ident_char(*c)).map(char::len_utf8).sum();
            let w = &s[..n];
            let tok = match w {
                "true" => Tok::Bool(true),
                "false" => Tok::Bool(false),
                "nil" => Tok::Nil,
                _ => Tok::Ident(w.to_owned()),
            };
            (tok, n)
        }
        other => return Err(format!("unexpected {other:?} in an action")),
    })
}
