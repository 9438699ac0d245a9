//! Login with an ACL token: checked against the catalog's tokens, then kept in a session
//! cookie (gone when the browser closes; never readable by the page's script); logout
//! clears it.

use super::super::layout::{Nav, shell};
use super::super::{COOKIE, html};
use crate::api::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html as markup;
use rabble_shared::support::clock::now_ms;

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

pub async fn form(State(s): State<AppState>) -> Response {
    let open = !s.catalog().acl.enforcing();
    render(if open {
        Some("The ACLs are not bootstrapped: on the hub's own machine no token is needed.")
    } else {
        None
    })
}

fn render(message: Option<&str>) -> Response {
    html(shell(
        "Log in",
        Nav::None,
        markup! {
            div.login {
                h1 { "Rabble" }
                @if let Some(m) = message { p.result { (m) } }
                form method="post" action="/ui/login" {
                    label for="token" { "ACL token (its secret)" }
                    input #token type="password" name="token" autocomplete="current-password" required autofocus;
                    button.primary type="submit" { "Log in" }
                }
                p.dim { "The token is kept for this browser session only. " a href="/ui/" { "Continue without one" } }
            }
        },
        false,
    ))
}

pub async fn login(
    State(s): State<AppState>,
    tls: Option<axum::Extension<crate::api::serve::OverTls>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let secret = f.token.trim();
    let usable = !secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic() && !b";,\"\\".contains(&b));
    let known = usable
        && s.catalog().acl.token_by_digest(&rabble_shared::support::seal::token_sha256(secret), now_ms()).is_ok();
    if !known {
        let mut r = render(Some("That token is not known to this hub (or it expired)."));
        *r.status_mut() = StatusCode::FORBIDDEN;
        return r;
    }
    // Over HTTPS the browser must never send it in clear.
    let secure = if tls.is_some() { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={secret}; Path=/ui; HttpOnly; SameSite=Strict{secure}");
    see_other("/ui/", &cookie)
}

pub async fn logout() -> Response {
    see_other("/ui/login", &format!("{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"))
}

fn see_other(to: &'static str, cookie: &str) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}
