//! The blocks that change how a job's work starts rather than what runs: `parameterized`
//! (a job only dispatched), a task's `dispatch_payload`, and `vault` (Rabble has no
//! Vault: the block grants the task the variable paths its templates' `secret` calls
//! name, and `job validate` says so).

use super::body::{Child, Reader};
use rabble_shared::job::{DispatchPayload, Parameterized, PayloadRule, Task, TemplateSpec};
use std::ops::Range;

pub fn parameterized(mut b: Child<'_, '_>) -> Parameterized {
    let r = &mut b.reader;
    let payload = match r.string("payload") {
        None => PayloadRule::Optional,
        Some(p) => PayloadRule::parse(&p).unwrap_or_else(|| {
            r.error(None, format!("payload: {p:?} is not optional, required or forbidden"));
            PayloadRule::Optional
        }),
    };
    let p = Parameterized {
        payload,
        meta_required: r.strings("meta_required").unwrap_or_default(),
        meta_optional: r.strings("meta_optional").unwrap_or_default(),
    };
    if let Some(k) = p.meta_required.iter().find(|k| p.meta_optional.contains(k)) {
        r.error(None, format!("meta {k:?} is both required and optional"));
    }
    b.reader.finish();
    p
}

pub fn dispatch_payload(mut b: Child<'_, '_>) -> Option<DispatchPayload> {
    let r = &mut b.reader;
    let file = r.string("file");
    let out = match file {
        Some(f) if f.is_empty() || f.starts_with('/') || f.split('/').any(|c| c == "..") => {
            r.error(None, format!("file {f:?}: the payload is written under the task's local/ directory"));
            None
        }
        Some(file) => Some(DispatchPayload { file, data: String::new() }),
        None => {
            r.error(None, "dispatch_payload needs `file`");
            None
        }
    };
    b.reader.finish();
    out
}

/// A `vault` block that was read: where it is, for the note about it.
pub struct Vault(Option<Range<usize>>);

/// Reads a `vault` block (every argument accepted: Rabble has no Vault to ask); the
/// caller grants its tasks their `secret` paths with [`grant`].
pub fn vault(r: &mut Reader<'_, '_>) -> Option<Vault> {
    let mut v = r.block("vault")?;
    v.reader.take_object();
    Some(Vault(v.reader.span.clone()))
}

/// Grants `tasks` the variable paths their templates' `secret` calls name, and tells
/// `job validate` what that means for this file.
pub fn grant<'t>(r: &Reader<'_, '_>, v: Vault, tasks: impl IntoIterator<Item = &'t mut Task>) {
    let mut named = Vec::new();
    for t in tasks {
        t.secret_paths = secret_paths(&t.templates);
        named.extend(t.secret_paths.iter().cloned());
    }
    named.sort();
    named.dedup();
    let note = if named.is_empty() {
        "vault: Rabble has no Vault; no template here reads a literal `secret` path, so the block grants nothing \
         (templates read Rabble variables with `secret` or `nomadVar`)"
            .to_owned()
    } else {
        format!(
            "vault: Rabble has no Vault; `secret` reads Rabble variables at the same paths, granted to the tasks that read them: \
             {} (store them with `rabble var put <path> key=value`)",
            named.join(", ")
        )
    };
    r.ctx.warn(v.0.or_else(|| r.span.clone()), &format!("{} > vault", r.path), note);
}

/// The literal paths of `secret "..."` calls in templates, in order, without repeats.
pub fn secret_paths(templates: &[TemplateSpec]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in templates {
        let text = t.data.as_str();
        let mut from = 0;
        while let Some(i) = text[from..].find("secret") {
            let at = from + i;
            from = at + "secret".len();
            let before_ok = text[..at].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            let rest = text[from..].trim_start();
            let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '`') else { continue };
            if !before_ok {
                continue;
            }
            if let Some(end) = rest[1..].find(q) {
                let path = &rest[1..1 + end];
                if !path.is_empty() && !out.iter().any(|p| p == path) {
                    out.push(path.to_owned());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tpl(data: &str) -> TemplateSpec {
        TemplateSpec {
            data: data.into(),
            destination: "local/x".into(),
            env: false,
            change_mode: rabble_shared::job::ChangeMode::Restart,
            change_signal: None,
            perms: "0644".into(),
            uid: None,
            gid: None,
            left_delimiter: "{{".into(),
            right_delimiter: "}}".into(),
            splay_ms: 0,
            wait_ms: None,
            error_on_missing_key: false,
            line: 1,
        }
    }

    #[test]
    fn secret_paths_are_the_literal_ones() {
        let t = tpl(
            "{{ with secret \"kv/data/app\" }}{{ .Data.data.pw }}{{ end }}\n{{ with secret `db/creds` }}x{{ end }}\n\
             {{ with secret \"kv/data/app\" }}again{{ end }}{{ $x := mysecret \"no\" }}{{ secret (printf \"a/%s\" .y) }}\
             {{ secret\"tight\" }}",
        );
        assert_eq!(secret_paths(&[t]), ["kv/data/app", "db/creds", "tight"]);
    }
}
