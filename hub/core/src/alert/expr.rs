//! Custom rules (hub.toml `[[alert.rule]]`): `metric{label="v", ...} > 42` over what
//! `/metrics` says, so any figure Rabble exports can alert, labelled as its series.
//! The expression is one comparison, not PromQL: a metric name, optional matchers
//! (`=`, `!=`, `=~`, `!~`), an operator (`>`, `>=`, `<`, `<=`, `==`, `!=`) and a number.

use super::Labels;
use super::group::Matcher;
use super::rules::Condition;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One series' value, as `/metrics` wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// Reads Prometheus' text format (what `metrics::render` writes).
pub fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = match series.split_once('{') {
            None => (series, Labels::new()),
            Some((name, rest)) => (name, labels(rest.trim_end_matches('}'))),
        };
        out.push(Sample { name: name.to_owned(), labels, value });
    }
    out
}

/// `a="x",b="y\"z"` (the format's escapes undone).
fn labels(text: &str) -> Labels {
    let mut out = Labels::new();
    let mut rest = text;
    while let Some((k, v)) = rest.split_once("=\"") {
        let (mut value, mut chars, mut end) = (String::new(), v.char_indices(), v.len());
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(k.trim_start_matches(',').trim().to_owned(), value);
        rest = &v[end.min(v.len())..];
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// A parsed rule expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    metric: String,
    matchers: Vec<Matcher>,
    op: Op,
    value: f64,
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, String> {
        let t = text.trim();
        let at = t.rfind(['>', '<', '=', '!']).ok_or_else(|| format!("{t:?}: no comparison (>, >=, <, <=, ==, !=)"))?;
        // Two-character operators end at `at`.
        let start = if at > 0 && matches!(&t[at - 1..=at], ">=" | "<=" | "==" | "!=") { at - 1 } else { at };
        let (lhs, op, rhs) = (t[..start].trim(), &t[start..=at], t[at + 1..].trim());
        let op = match op {
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            "<=" => Op::Le,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            other => return Err(format!("{t:?}: {other:?} is not a comparison")),
        };
        let value = rhs.parse::<f64>().map_err(|_| format!("{t:?}: {rhs:?} is not a number"))?;
        let (metric, matchers) = match lhs.split_once('{') {
            None => (lhs, Vec::new()),
            Some((m, rest)) => {
                let inner = rest.strip_suffix('}').ok_or_else(|| format!("{t:?}: unclosed {{"))?;
                let ms =
                    inner.split(',').filter(|s| !s.trim().is_empty()).map(Matcher::parse).collect::<Result<_, _>>()?;
                (m.trim(), ms)
            }
        };
        if metric.is_empty() || !metric.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            return Err(format!("{t:?}: {metric:?} is not a metric name"));
        }
        Ok(Expr { metric: metric.to_owned(), matchers, op, value })
    }

    /// The samples for which the comparison holds.
    pub fn eval<'s>(&self, samples: &'s [Sample]) -> Vec<&'s Sample> {
        let holds = |v: f64| match self.op {
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
        };
        samples
            .iter()
            .filter(|s| s.name == self.metric && self.matchers.iter().all(|m| m.matches(&s.labels)) && holds(s.value))
            .collect()
    }
}

/// A custom rule as hub.toml has it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    pub name: String,
    pub expr: String,
    #[serde(default = "warning")]
    pub severity: String,
    /// How long it must hold, in milliseconds (the config reads `for = "5m"`).
    #[serde(default)]
    pub for_ms: u64,
    /// Words for the notification; `{{value}}` and `{{<label>}}` are filled in.
    #[serde(default)]
    pub summary: String,
}

fn warning() -> String {
    "warning".into()
}

impl CustomRule {
    /// The rule's conditions over `samples` (the expression already checked by the config).
    pub fn conditions(&self, samples: &[Sample]) -> Vec<Condition> {
        let Ok(e) = Expr::parse(&self.expr) else { return Vec::new() };
        e.eval(samples)
            .into_iter()
            .map(|s| {
                let mut labels = s.labels.clone();
                labels.insert("alertname".into(), self.name.clone());
                labels.insert("severity".into(), self.severity.clone());
                let mut summary = if self.summary.is_empty() {
                    format!("{} = {{{{value}}}}", self.expr)
                } else {
                    self.summary.clone()
                };
                summary = summary.replace("{{value}}", &format!("{}", s.value));
                for (k, v) in &s.labels {
                    summary = summary.replace(&format!("{{{{{k}}}}}"), v);
                }
                Condition {
                    labels,
                    annotations: BTreeMap::from([("summary".into(), summary)]),
                    for_ms: self.for_ms,
                    since_ms: None,
                }
            })
            .collect()
    }
}
