//! The page around every page: header with the navigation, who is logged in, the live
//! indicator; and the small pieces pages share (status badges that say their status in
//! words and a symbol, not colour alone; usage bars; times as "3m ago").

use super::assets;
use crate::api::door::{Who, caller};
use axum::http::HeaderMap;
use maud::{DOCTYPE, Markup, html};

/// The navigation's entries: (page, label, path under /ui/).
pub const NAV: [(Nav, &str, &str); 8] = [
    (Nav::Overview, "Overview", ""),
    (Nav::Nodes, "Nodes", "nodes"),
    (Nav::Jobs, "Jobs", "jobs"),
    (Nav::Services, "Services", "services"),
    (Nav::Routing, "Routing", "routing"),
    (Nav::Kv, "KV", "kv"),
    (Nav::Vars, "Variables", "vars"),
    (Nav::Acl, "ACL", "acl"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Nodes,
    Jobs,
    Services,
    Routing,
    Kv,
    Vars,
    Acl,
    None,
}

/// Whether the request asked for `<main>`'s inside only (a live refresh).
pub fn fragment(headers: &HeaderMap) -> bool {
    headers.get("x-rabble-fragment").is_some()
}

/// A whole page, or its `<main>` only for a live refresh.
pub fn page(headers: &HeaderMap, title: &str, nav: Nav, body: Markup) -> axum::response::Response {
    let markup = if fragment(headers) { body } else { shell(title, nav, body, true) };
    let gzip = headers
        .get(axum::http::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    if gzip { super::html_gzip(markup) } else { super::html(markup) }
}

/// The document: head, header (when `chrome`), main.
pub fn shell(title: &str, nav: Nav, body: Markup, chrome: bool) -> Markup {
    let who = caller().who;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="dark light";
                title { (title) " · Rabble" }
                link rel="stylesheet" href=(assets::css());
                script src=(assets::js()) defer {}
            }
            body {
                @if chrome {
                    header {
                        a.brand href="/ui/" { "rabble" }
                        nav aria-label="Pages" {
                            @for (n, label, path) in NAV {
                                a href={ "/ui/" (path) } aria-current=[(n == nav).then_some("page")] { (label) }
                            }
                        }
                        span #live.off role="status" { "connecting" }
                        span.who {
                            @match &who {
                                Who::Token(accessor) => {
                                    "token " span.mono { (&accessor[..accessor.len().min(8)]) } " "
                                    form.inline method="post" action="/ui/logout" { button type="submit" { "Log out" } }
                                }
                                Who::Anonymous => { a href="/ui/login" { "Log in" } " (anonymous)" }
                                Who::Local => { "local (ACLs not bootstrapped)" }
                            }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A status in words with a symbol and a colour: `ok`, `warn`, `bad` or `off`.
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class={ "s " (kind) } { (text) } }
}

/// A usage bar with its percentage in words.
pub fn bar(pct: f64, label: &str) -> Markup {
    let p = pct.clamp(0.0, 100.0);
    let level = if p >= 90.0 {
        "bar high"
    } else if p >= 75.0 {
        "bar mid"
    } else {
        "bar"
    };
    html! {
        div class=(level) title=(label) role="meter" aria-valuenow=(format!("{p:.0}")) aria-valuemin="0" aria-valuemax="100" aria-label=(label) {
            i style={ "width:" (format!("{p:.0}")) "%" } {}
            span { (format!("{p:.0}%")) }
        }
    }
}

/// A duration in milliseconds as "4s", "3m", "2h", "5d".
pub fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM` (UTC).
pub fn date(ms: u64) -> String {
    rabble_shared::support::clock::date(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_write_them() {
        assert_eq!(ago(4_200), "4s");
        assert_eq!(ago(185_000), "3m");
        assert_eq!(ago(7_300_000), "2h");
        assert_eq!(ago(5 * 86_400_000), "5d");
    }

    #[test]
    fn a_badge_says_its_status_in_words_and_escapes_them() {
        let b = badge("bad", "down <x>").into_string();
        assert_eq!(b, r#"<span class="s bad">down &lt;x&gt;</span>"#);
        assert!(bar(93.0, "memory").into_string().contains("bar high"));
    }
}
