//! HCL2 expressions of a job file, evaluated the way Nomad's jobspec2 does: `var.*`
//! and `local.*` are resolved, and every other reference (`${attr.cpu.arch}`,
//! `${NOMAD_PORT_http}`, `${meta.rack}`, `${node.unique.name}`) is kept exactly as
//! written, for placement or the node to resolve at run time. `$${` is HCL's escape
//! for a literal `${`. Pure: source text and values in, a JSON value out.

use hcl_edit::expr::{BinaryOperator, Expression, ObjectKey, TraversalOperator, UnaryOperator};
use hcl_edit::template::{Element, Template};
use hcl_edit::{Ident, Span};
use serde_json::{Map, Number, Value};
use std::ops::Range;

/// An evaluation problem, with the byte span it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub span: Option<Range<usize>>,
    pub message: String,
}

fn err<T>(span: Option<Range<usize>>, message: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError { span, message: message.into() })
}

/// What `var.*` and `local.*` resolve to.
#[derive(Debug, Default, Clone)]
pub struct Scope {
    pub vars: Map<String, Value>,
    pub locals: Map<String, Value>,
}

/// Evaluates `expr`; `src` is the file the expression was parsed from (runtime
/// references are copied from it byte for byte).
pub fn eval(expr: &Expression, scope: &Scope, src: &str) -> Result<Value, EvalError> {
    Eval { scope, src }.expr(expr)
}

/// Whether a reference with this root is left for run time (anything but `var` and
/// `local`: `attr`, `node`, `meta`, `NOMAD_*`, ...).
pub fn is_runtime_root(name: &str) -> bool {
    name != "var" && name != "local"
}

struct Eval<'a> {
    scope: &'a Scope,
    src: &'a str,
}

impl Eval<'_> {
    fn raw(&self, span: Option<Range<usize>>) -> Result<&str, EvalError> {
        match span.clone().and_then(|r| self.src.get(r)) {
            Some(s) => Ok(s),
            None => err(span, "cannot locate this expression in the file"),
        }
    }

    fn expr(&self, e: &Expression) -> Result<Value, EvalError> {
        Ok(match e {
            Expression::Null(_) => Value::Null,
            Expression::Bool(b) => Value::Bool(*b.value()),
            Expression::Number(n) => {
                number(n.value()).ok_or(EvalError { span: e.span(), message: "bad number".into() })?
            }
            Expression::String(s) => Value::String(s.value().clone()),
            Expression::Array(a) => Value::Array(a.iter().map(|x| self.expr(x)).collect::<Result<_, _>>()?),
            Expression::Object(o) => {
                let mut m = Map::new();
                for (k, v) in o.iter() {
                    let key = match k {
                        ObjectKey::Ident(i) => i.value().as_str().to_owned(),
                        ObjectKey::Expression(x) => as_string(&self.expr(x)?)
                            .ok_or(EvalError { span: x.span(), message: "object keys must be strings".into() })?,
                    };
                    m.insert(key, self.expr(v.expr())?);
                }
                Value::Object(m)
            }
            Expression::StringTemplate(t) => self.template(t)?,
            Expression::HeredocTemplate(h) => self.template(&h.template)?,
            Expression::Parenthesis(p) => self.expr(p.inner())?,
            Expression::Variable(v) => self.variable(v.value(), e.span())?,
            Expression::Traversal(t) => self.traversal(t, e.span())?,
            Expression::Conditional(c) => match self.expr(&c.cond_expr)? {
                Value::Bool(true) => self.expr(&c.true_expr)?,
                Value::Bool(false) => self.expr(&c.false_expr)?,
                _ => return err(c.cond_expr.span(), "a condition must be true or false"),
            },
            Expression::UnaryOp(u) => {
                let v = self.expr(&u.expr)?;
                match (u.operator.value(), &v) {
                    (UnaryOperator::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnaryOperator::Neg, Value::Number(n)) => n
                        .as_f64()
                        .and_then(|f| number_f64(-f))
                        .ok_or(EvalError { span: e.span(), message: "bad number".into() })?,
                    _ => return err(e.span(), format!("cannot apply {:?} to {v}", u.operator.value())),
                }
            }
            Expression::BinaryOp(b) => self.binary(b.operator.value(), &b.lhs_expr, &b.rhs_expr, e.span())?,
            Expression::FuncCall(f) => {
                let name = f.name.name.value().as_str();
                let args: Vec<Value> = f.args.iter().map(|a| self.expr(a)).collect::<Result<_, _>>()?;
                call(name, &args).map_err(|m| EvalError { span: e.span(), message: m })?
            }
            Expression::ForExpr(_) => return err(e.span(), "`for` expressions are not supported in job files"),
        })
    }

    /// A template: a lone interpolation keeps its value's type (HCL's rule); otherwise
    /// the parts are joined as text, runtime references copied as written.
    fn template(&self, t: &Template) -> Result<Value, EvalError> {
        let elements: Vec<&Element> = t.iter().collect();
        if let [Element::Interpolation(i)] = elements.as_slice()
            && !self.is_runtime(&i.expr)
        {
            return self.expr(&i.expr);
        }
        let mut out = String::new();
        for el in elements {
            match el {
                Element::Literal(l) => out.push_str(l.value()),
                Element::Interpolation(i) if self.is_runtime(&i.expr) => out.push_str(self.raw(i.span())?),
                Element::Interpolation(i) => {
                    let v = self.expr(&i.expr)?;
                    match as_string(&v) {
                        Some(s) => out.push_str(&s),
                        None => return err(i.span(), format!("cannot put {v} into a string")),
                    }
                }
                Element::Directive(d) => {
                    return err(d.span(), "template directives (%{ }) are not supported in job files");
                }
            }
        }
        Ok(Value::String(out))
    }

    /// Whether an expression reads anything but `var` and `local` (then it is left
    /// for run time).
    fn is_runtime(&self, e: &Expression) -> bool {
        match e {
            Expression::Variable(v) => is_runtime_root(v.value().as_str()),
            Expression::Traversal(t) => self.is_runtime(&t.expr),
            _ => false,
        }
    }

    fn variable(&self, name: &Ident, span: Option<Range<usize>>) -> Result<Value, EvalError> {
        match name.as_str() {
            "var" | "local" => err(span, format!("`{}` needs a name: {}.<name>", name.as_str(), name.as_str())),
            _ => Ok(Value::String(format!("${{{}}}", self.raw(span)?))),
        }
    }

    fn traversal(&self, t: &hcl_edit::expr::Traversal, span: Option<Range<usize>>) -> Result<Value, EvalError> {
        if self.is_runtime(&t.expr) {
            return Ok(Value::String(format!("${{{}}}", self.raw(span)?)));
        }
        let mut ops = t.operators.iter();
        let mut value = match &t.expr {
            Expression::Variable(v) => {
                let root = v.value().as_str();
                let table = if root == "var" { &self.scope.vars } else { &self.scope.locals };
                let Some(TraversalOperator::GetAttr(name)) = ops.next().map(|o| o.value()) else {
                    return err(span, format!("`{root}` needs a name: {root}.<name>"));
                };
                match table.get(name.value().as_str()) {
                    Some(v) => v.clone(),
                    None if root == "var" => {
                        return err(
                            span,
                            format!("no variable {:?} is declared (add a `variable` block)", name.as_str()),
                        );
                    }
                    None => return err(span, format!("no local {:?} is defined", name.as_str())),
                }
            }
            other => self.expr(other)?,
        };
        for op in ops {
            value = match op.value() {
                TraversalOperator::GetAttr(name) => match value.get(name.value().as_str()) {
                    Some(v) => v.clone(),
                    None => return err(span, format!("no attribute {:?}", name.as_str())),
                },
                TraversalOperator::Index(i) => {
                    let key = self.expr(i)?;
                    let found = match (&value, &key) {
                        (Value::Array(a), Value::Number(n)) => n.as_u64().and_then(|n| a.get(n as usize)),
                        (Value::Object(o), Value::String(k)) => o.get(k),
                        _ => None,
                    };
                    found.cloned().ok_or(EvalError { span: span.clone(), message: format!("no element {key}") })?
                }
                TraversalOperator::LegacyIndex(n) => value
                    .get(*n.value() as usize)
                    .cloned()
                    .ok_or(EvalError { span: span.clone(), message: format!("no element {}", n.value()) })?,
                _ => return err(span, "splat expressions are not supported in job files"),
            };
        }
        Ok(value)
    }

    fn binary(
        &self,
        op: &BinaryOperator,
        l: &Expression,
        r: &Expression,
        span: Option<Range<usize>>,
    ) -> Result<Value, EvalError> {
        use BinaryOperator as B;
        let (a, b) = (self.expr(l)?, self.expr(r)?);
        let num = |v: &Value| v.as_f64().or_else(|| v.as_str().and_then(|s| s.parse().ok()));
        Ok(match op {
            B::Eq => Value::Bool(a == b),
            B::NotEq => Value::Bool(a != b),
            B::And | B::Or => match (a.as_bool(), b.as_bool()) {
                (Some(x), Some(y)) => Value::Bool(if matches!(op, B::And) { x && y } else { x || y }),
                _ => return err(span, "`&&` and `||` take true or false"),
            },
            _ => {
                let (Some(x), Some(y)) = (num(&a), num(&b)) else {
                    return err(span, format!("{a} and {b} are not both numbers"));
                };
                match op {
                    B::Less => Value::Bool(x < y),
                    B::LessEq => Value::Bool(x <= y),
                    B::Greater => Value::Bool(x > y),
                    B::GreaterEq => Value::Bool(x >= y),
                    B::Plus => number_f64(x + y).unwrap_or(Value::Null),
                    B::Minus => number_f64(x - y).unwrap_or(Value::Null),
                    B::Mul => number_f64(x * y).unwrap_or(Value::Null),
                    B::Div if y == 0.0 => return err(span, "division by zero"),
                    B::Div => number_f64(x / y).unwrap_or(Value::Null),
                    B::Mod if y == 0.0 => return err(span, "division by zero"),
                    B::Mod => number_f64(x % y).unwrap_or(Value::Null),
                    _ => unreachable!("handled above"),
                }
            }
        })
    }
}

fn number(n: &hcl_edit::Number) -> Option<Value> {
    if let Some(u) = n.as_u64() {
        return Some(Value::Number(u.into()));
    }
    if let Some(i) = n.as_i64() {
        return Some(Value::Number(i.into()));
    }
    number_f64(n.as_f64()?)
}

/// Whole numbers stay integers (so `count = 2 * 2` is 4, not 4.0).
fn number_f64(f: f64) -> Option<Value> {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        return Some(Value::Number((f as i64).into()));
    }
    Number::from_f64(f).map(Value::Number)
}

/// HCL's conversion of a primitive to a string.
pub fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The functions real homelab job files call.
fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let s = |i: usize| {
        args.get(i).and_then(as_string).ok_or_else(|| format!("{name}(): argument {} must be a string", i + 1))
    };
    let n_args = |n: usize| {
        if args.len() == n { Ok(()) } else { Err(format!("{name}() takes {n} argument(s), got {}", args.len())) }
    };
    Ok(match name {
        "lower" => {
            n_args(1)?;
            Value::String(s(0)?.to_lowercase())
        }
        "upper" => {
            n_args(1)?;
            Value::String(s(0)?.to_uppercase())
        }
        "trimspace" => {
            n_args(1)?;
            Value::String(s(0)?.trim().to_owned())
        }
        "replace" => {
            n_args(3)?;
            Value::String(s(0)?.replace(&s(1)?, &s(2)?))
        }
        "split" => {
            n_args(2)?;
            Value::Array(s(1)?.split(&s(0)?).map(|p| Value::String(p.to_owned())).collect())
        }
        "join" => {
            n_args(2)?;
            let Some(Value::Array(items)) = args.get(1) else {
                return Err("join(): the second argument must be a list".into());
            };
            let parts: Option<Vec<String>> = items.iter().map(as_string).collect();
            Value::String(parts.ok_or("join(): the list must hold strings")?.join(&s(0)?))
        }
        "concat" => {
            let mut out = Vec::new();
            for a in args {
                match a {
                    Value::Array(items) => out.extend(items.iter().cloned()),
                    _ => return Err("concat(): every argument must be a list".into()),
                }
            }
            Value::Array(out)
        }
        "merge" => {
            let mut out = Map::new();
            for a in args {
                match a {
                    Value::Object(m) => out.extend(m.clone()),
                    _ => return Err("merge(): every argument must be a map".into()),
                }
            }
            Value::Object(out)
        }
        "length" => {
            n_args(1)?;
            let n = match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.chars().count(),
                _ => return Err("length(): takes a list, map or string".into()),
            };
            Value::Number(n.into())
        }
        "format" => {
            let f = s(0)?;
            let mut rest = args[1..].iter();
            let mut out = String::new();
            let mut chars = f.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('s' | 'd' | 'v') => {
                        out.push_str(&rest.next().and_then(as_string).ok_or("format(): too few arguments")?)
                    }
                    other => {
                        return Err(format!(
                            "format(): verb %{} is not supported (use %s, %d, %v)",
                            other.unwrap_or(' ')
                        ));
                    }
                }
            }
            Value::String(out)
        }
        "jsonencode" => {
            n_args(1)?;
            Value::String(args[0].to_string())
        }
        "tostring" => {
            n_args(1)?;
            Value::String(s(0)?)
        }
        "tonumber" => {
            n_args(1)?;
            let v = s(0)?;
            v.parse::<f64>().ok().and_then(number_f64).ok_or(format!("tonumber(): {v:?} is not a number"))?
        }
        _ => return Err(format!("function {name}() is not supported in job files")),
    })
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
