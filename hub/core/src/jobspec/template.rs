//! A task's `template` blocks → [`TemplateSpec`]s, checked at parse time: the template
//! text is parsed (a syntax error names the job file's own line), the destination must
//! stay inside the task's directory, and what Nomad has that Rabble cannot do
//! (`source` files on the node, `change_mode = "script"`) is refused by name.

use super::body::Reader;
use rabble_shared::job::{ChangeMode, TemplateSpec};

/// Nomad's default splay.
const DEFAULT_SPLAY_MS: u64 = 5_000;

pub fn templates(r: &mut Reader<'_, '_>) -> Vec<TemplateSpec> {
    let mut out = Vec::new();
    for mut b in r.blocks("template") {
        let tr = &mut b.reader;
        if tr.string("source").is_some() {
            tr.error(
                None,
                "template: `source` is a file on the node, and templates render on the hub: put the text in `data` \
                 (a heredoc)",
            );
        }
        let data = tr.value("data");
        let destination = tr.string("destination");
        let (left, right) =
            (tr.string("left_delimiter").unwrap_or("{{".into()), tr.string("right_delimiter").unwrap_or("}}".into()));
        let env = tr.bool("env").unwrap_or(false);
        let change_mode = match tr.string("change_mode").as_deref() {
            None | Some("restart") => ChangeMode::Restart,
            Some("signal") => ChangeMode::Signal,
            Some("noop") => ChangeMode::Noop,
            Some("script") => {
                tr.error(None, "template: change_mode = \"script\" is not supported (restart, signal or noop)");
                ChangeMode::Noop
            }
            Some(o) => {
                tr.error(None, format!("template: change_mode {o:?} is not restart, signal, noop"));
                ChangeMode::Restart
            }
        };
        let change_signal = tr.string("change_signal");
        if change_mode == ChangeMode::Signal && change_signal.is_none() {
            tr.error(None, "template: change_mode = \"signal\" needs change_signal (e.g. SIGHUP)");
        }
        let perms = tr.string("perms").unwrap_or_else(|| "0644".into());
        if u32::from_str_radix(&perms, 8).map_or(true, |p| p > 0o7777) {
            tr.error(None, format!("template: perms {perms:?} is not an octal mode like \"0640\""));
        }
        let (uid, gid) = (tr.u32("uid"), tr.u32("gid"));
        let splay_ms = tr.duration_ms("splay").unwrap_or(DEFAULT_SPLAY_MS);
        let error_on_missing_key = tr.bool("error_on_missing_key").unwrap_or(false);
        let wait_ms = tr.block("wait").map(|mut w| {
            let min = w.reader.duration_ms("min").unwrap_or(5_000);
            let max = w.reader.duration_ms("max").unwrap_or(min.max(240_000));
            w.reader.finish();
            (min, max)
        });
        for no_effect in ["vault_grace", "once", "change_script"] {
            if tr.value(no_effect).is_some() {
                tr.ctx.warn(tr.span.clone(), &tr.path, format!("template: {no_effect} has no effect in Rabble"));
            }
        }
        let Some((data, span)) = data else {
            tr.error(None, "template: `data` (the template text) is required");
            b.reader.finish();
            continue;
        };
        let data = super::eval::as_string(&data).unwrap_or_default();
        // The text's first line in the job file: the next one for a heredoc.
        let line = span.as_ref().map_or(0, |s| {
            let (l, _) = tr.ctx.position(s.start);
            let heredoc = tr.ctx.src.get(s.clone()).is_some_and(|t| t.contains("<<"));
            l + usize::from(heredoc)
        });
        let Some(destination) = destination else {
            tr.error(None, "template: `destination` is required");
            b.reader.finish();
            continue;
        };
        let rel = destination.trim_start_matches("./");
        let runtime = ["${NOMAD_TASK_DIR}/", "${NOMAD_SECRETS_DIR}/", "${NOMAD_ALLOC_DIR}/"];
        if destination.starts_with('/') || rel.split('/').any(|p| p == "..") {
            tr.error(None, format!("template: destination {destination:?} must stay inside the task's directory"));
        } else if !["local/", "secrets/", "alloc/"].iter().chain(&runtime).any(|p| rel.starts_with(p)) {
            tr.error(None, format!("template: destination {destination:?}: put it under local/, secrets/ or alloc/"));
        }
        if let Err(e) = crate::template::Template::parse(&destination, &data, &left, &right) {
            tr.error(span.clone(), format!("template {destination:?} line {}: {}", line + e.line - 1, e.reason));
        }
        out.push(TemplateSpec {
            data,
            destination,
            env,
            change_mode,
            change_signal,
            perms,
            uid,
            gid,
            left_delimiter: left,
            right_delimiter: right,
            splay_ms,
            wait_ms,
            error_on_missing_key,
            line,
        });
        b.reader.finish();
    }
    out
}
