//! The ACL endpoints: `POST /api/v1/acl/bootstrap` (the first management token, once;
//! again only with the data dir's reset file), `GET /api/v1/acl/token/self`, tokens
//! (`GET|POST /api/v1/acl/tokens`, `GET|DELETE /api/v1/acl/tokens/{accessor}`) and
//! policies (`GET /api/v1/acl/policies`, `GET|PUT|DELETE /api/v1/acl/policies/{name}`).
//! A token's secret is answered once, when it is made; the catalog keeps its SHA-256.

// Helpers return the refusal itself; it is built once per refused request.
#![allow(clippy::result_large_err)]

use super::AppState;
use super::door::{Who, caller};
use super::error::{error, not_found};
use crate::catalog::Update;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rabble_core::acl::{AclUpdate, Policy, Token};
use rabble_shared::api::{AclPolicyRequest, AclPolicyView, AclTokenRequest, AclTokenView, Deleted};
use rabble_shared::support::clock::now_ms;
use rabble_shared::support::duration::GoDuration;
use rabble_shared::support::join;

/// The file whose content (the bootstrap's index) allows one more bootstrap.
pub const RESET_FILE: &str = "acl-bootstrap-reset";

fn view(t: &Token, secret: Option<String>) -> AclTokenView {
    AclTokenView {
        accessor: t.accessor.clone(),
        secret,
        description: t.description.clone(),
        policies: t.policies.clone(),
        management: t.management,
        create_ms: t.create_ms,
        expires_ms: t.expires_ms,
    }
}

/// A new token and its secret (shown once).
fn mint(
    description: String,
    policies: Vec<String>,
    management: bool,
    expires_ms: Option<u64>,
) -> Result<(Token, String), Response> {
    let fail = |e: rabble_shared::support::seal::SealError| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let secret = join::new_token().map_err(fail)?;
    let a = join::new_token().map_err(fail)?;
    let accessor = format!("{}-{}-{}-{}-{}", &a[0..8], &a[8..12], &a[12..16], &a[16..20], &a[20..32]);
    let secret_sha256 = join::hex(&rabble_shared::support::seal::token_sha256(&secret));
    let token = Token { accessor, secret_sha256, description, policies, management, create_ms: now_ms(), expires_ms };
    Ok((token, secret))
}

pub async fn bootstrap(State(s): State<AppState>) -> Response {
    let reset_path = s.data_dir.join(RESET_FILE);
    let reset = std::fs::read_to_string(&reset_path).ok().and_then(|t| t.trim().parse::<u64>().ok());
    if let Some(at) = s.catalog().acl.bootstrapped
        && reset != Some(at)
    {
        return error(
            StatusCode::CONFLICT,
            format!(
                "the ACLs were bootstrapped already (at index {at}); to bootstrap again, write {at} to {} on the hub",
                reset_path.display()
            ),
        );
    }
    let (token, secret) = match mint("bootstrap management token".into(), vec![], true, None) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let accessor = token.accessor.clone();
    match s.commit(Update::Acl(AclUpdate::Bootstrap { token, reset })).await {
        Ok(c) if c.changed => {
            let _ = std::fs::remove_file(&reset_path);
            let c = s.catalog();
            match c.acl.tokens.get(&accessor) {
                Some(t) => Json(view(t, Some(secret))).into_response(),
                None => error(StatusCode::INTERNAL_SERVER_ERROR, "bootstrapped, but the token is not in the catalog"),
            }
        }
        Ok(_) => error(StatusCode::CONFLICT, "the ACLs were bootstrapped already"),
        Err(e) => e.into_response(),
    }
}

pub async fn token_self(State(s): State<AppState>) -> Response {
    match caller().who {
        Who::Token(a) => match s.catalog().acl.tokens.get(&a) {
            Some(t) => Json(view(t, None)).into_response(),
            None => not_found("the token is gone"),
        },
        Who::Anonymous => error(StatusCode::FORBIDDEN, "no ACL token in the request"),
        Who::Local => error(StatusCode::NOT_FOUND, "the ACLs are not bootstrapped: no token is needed on loopback"),
    }
}

pub async fn tokens(State(s): State<AppState>) -> Json<Vec<AclTokenView>> {
    Json(s.catalog().acl.tokens.values().map(|t| view(t, None)).collect())
}

pub async fn token(State(s): State<AppState>, Path(accessor): Path<String>) -> Response {
    match s.catalog().acl.tokens.get(&accessor) {
        Some(t) => Json(view(t, None)).into_response(),
        None => not_found(&format!("no ACL token {accessor:?}")),
    }
}

pub async fn create_token(State(s): State<AppState>, Json(r): Json<AclTokenRequest>) -> Response {
    let c = s.catalog();
    if let Some(p) = r.policies.iter().find(|p| !c.acl.policies.contains_key(*p)) {
        return error(StatusCode::BAD_REQUEST, format!("no ACL policy {p:?}"));
    }
    if r.policies.is_empty() && !r.management {
        return error(StatusCode::BAD_REQUEST, "a token needs at least one policy (or management)");
    }
    let expires_ms = match r.ttl.as_deref().map(str::parse::<GoDuration>) {
        None => None,
        Some(Ok(d)) => Some(now_ms() + d.0.as_millis() as u64),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, format!("ttl: {e}")),
    };
    let (token, secret) = match mint(r.description, r.policies, r.management, expires_ms) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let v = view(&token, Some(secret));
    match s.commit(Update::Acl(AclUpdate::PutToken(token))).await {
        Ok(c) if c.changed => Json(v).into_response(),
        Ok(_) => error(StatusCode::CONFLICT, "an accessor clash: try again"),
        Err(e) => e.into_response(),
    }
}

pub async fn delete_token(State(s): State<AppState>, Path(accessor): Path<String>) -> Response {
    if !s.catalog().acl.tokens.contains_key(&accessor) {
        return not_found(&format!("no ACL token {accessor:?}"));
    }
    match s.commit(Update::Acl(AclUpdate::DeleteToken(accessor.clone()))).await {
        Ok(_) => Json(Deleted { deleted: accessor }).into_response(),
        Err(e) => e.into_response(),
    }
}

fn policy_view(p: &Policy) -> AclPolicyView {
    AclPolicyView { name: p.name.clone(), description: p.description.clone(), rules: p.text.clone() }
}

pub async fn policies(State(s): State<AppState>) -> Json<Vec<AclPolicyView>> {
    Json(s.catalog().acl.policies.values().map(|p| policy_view(p)).collect())
}

pub async fn policy(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    match s.catalog().acl.policies.get(&name) {
        Some(p) => Json(policy_view(p)).into_response(),
        None => not_found(&format!("no ACL policy {name:?}")),
    }
}

pub async fn put_policy(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Json(r): Json<AclPolicyRequest>,
) -> Response {
    let p = match Policy::new(&name, &r.description, &r.rules) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let v = policy_view(&p);
    match s.commit(Update::Acl(AclUpdate::PutPolicy(p))).await {
        Ok(_) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn delete_policy(State(s): State<AppState>, Path(name): Path<String>) -> Response {
    if !s.catalog().acl.policies.contains_key(&name) {
        return not_found(&format!("no ACL policy {name:?}"));
    }
    match s.commit(Update::Acl(AclUpdate::DeletePolicy(name.clone()))).await {
        Ok(_) => Json(Deleted { deleted: name }).into_response(),
        Err(e) => e.into_response(),
    }
}
