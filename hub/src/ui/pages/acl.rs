//! ACL tokens and policies: listed for a token that may read the ACLs; made, changed and
//! deleted (each an API request, as `rabble acl` makes them) for one that may write them.
//! A new token's secret is shown once, in the answer, and never again.

use super::super::layout::{Nav, badge, page};
use super::{Cap, may};
use crate::api::AppState;
use crate::api::door::may_read;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use rabble_core::acl::Resource;

pub async fn show(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let c = s.catalog();
    let tokens: Vec<(String, String, Vec<String>)> =
        c.acl.tokens.values().map(|t| (t.accessor.clone(), t.description.clone(), t.policies.clone())).collect();
    let policies: Vec<(String, String)> = c.acl.policies.iter().map(|(n, p)| (n.clone(), p.text.clone())).collect();
    let body = render(
        c.acl.bootstrapped.is_some(),
        may_read(Resource::Acl, ""),
        may(Resource::Acl, Cap::Write, ""),
        &tokens,
        &policies,
    );
    page(&headers, "ACL", Nav::Acl, body)
}

/// `tokens`: (accessor, description, policies); `policies`: (name, rules).
pub fn render(
    bootstrapped: bool,
    read: bool,
    write: bool,
    tokens: &[(String, String, Vec<String>)],
    policies: &[(String, String)],
) -> Markup {
    html! {
        h1 { "ACL" }
        @if !bootstrapped {
            p { (badge("warn", "not bootstrapped")) " Anyone on the hub's own machine may do everything; others get the anonymous rules. "
                code { "rabble acl bootstrap" } " makes the first management token." }
        }
        @if !read { p.dim { "This token may not read the ACLs." } }
        @else {
            h2 { "Tokens" }
            div.scroll { table #tokens {
                thead { tr { th { "accessor" } th { "description" } th { "policies" } @if write { th {} } } }
                tbody { @for (accessor, description, pols) in tokens {
                    tr {
                        td.mono { (accessor) } td { (description) } td { (pols.join(", ")) }
                        @if write { td { form data-api={ "/api/v1/acl/tokens/" (accessor) } data-method="DELETE"
                            data-confirm="Delete this token? Whatever uses it is refused from now on." { button.danger type="submit" { "Delete" } } } }
                    }
                } }
            } }
            @if write {
                form #new-token data-api="/api/v1/acl/tokens" data-body="json" data-stay="1" {
                    h2 { "New token" }
                    div.toolbar {
                        input name="description" placeholder="description" aria-label="Description";
                        input name="policies" data-type="list" placeholder="policies, comma-separated" aria-label="Policies";
                        label { input type="checkbox" name="management"; " management" }
                        button type="submit" { "Create" }
                    }
                    p.dim { "The secret is shown once, below; keep it." }
                    pre.result aria-live="polite" {}
                }
            }
            h2 { "Policies" }
            @for (name, rules) in policies {
                details {
                    summary { (name) }
                    @if write {
                        form data-api={ "/api/v1/acl/policies/" (name) } data-method="PUT" data-body="json" data-live="off" {
                            textarea name="rules" spellcheck="false" style="min-height:8rem" { (rules) }
                            div.toolbar {
                                button type="submit" { "Save" }
                                output.result {}
                            }
                        }
                        form data-api={ "/api/v1/acl/policies/" (name) } data-method="DELETE" data-confirm="Delete this policy?" {
                            button.danger type="submit" { "Delete policy" }
                        }
                    } @else {
                        pre { (rules) }
                    }
                }
            }
            @if write {
                form #new-policy data-api="/api/v1/acl/policies/" data-path-field="name" data-method="PUT" data-body="json" data-live="off" {
                    h2 { "New policy" }
                    input name="name" placeholder="name" aria-label="Policy name" required;
                    textarea name="rules" spellcheck="false" style="min-height:6rem" placeholder="job \"\" { policy = \"read\" }" {}
                    div.toolbar { button type="submit" { "Save" } output.result {} }
                }
            }
        }
    }
}
