//! ACL: who may do what through the hub's API. Pure: tokens and policies are catalog
//! state changed only through [`AclUpdate`]s the writer applies; deciding a request is
//! a function of that state, the request's secret and the time the caller read.
//!
//! A policy grants capabilities on a resource by name prefix (`policy.rs`); a token
//! carries policies, or is a management token (everything). A request without a token
//! gets the anonymous rules, minus every secret: KV values, variables and ACLs are never
//! readable anonymously, whatever the configuration. `route.rs` says what each API
//! endpoint needs, in one table.

pub mod policy;
pub mod route;
pub mod tokens;

pub use policy::{Policy, PolicyError, Rule, Rules};
pub use tokens::{Acl, AclUpdate, Token};

use std::fmt;

/// What a rule is about. Job, alloc (by its job's name), node, service, KV (by key),
/// variable (by path) are named; ACL and operator are one each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Job,
    Alloc,
    Node,
    Service,
    Kv,
    Var,
    Acl,
    Operator,
}

/// One thing a rule may allow on its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cap {
    Read,
    Write,
    Submit,
    Stop,
    Dispatch,
    Logs,
    Register,
}

impl Resource {
    pub const ALL: [Resource; 8] = [
        Resource::Job,
        Resource::Alloc,
        Resource::Node,
        Resource::Service,
        Resource::Kv,
        Resource::Var,
        Resource::Acl,
        Resource::Operator,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Job => "job",
            Resource::Alloc => "alloc",
            Resource::Node => "node",
            Resource::Service => "service",
            Resource::Kv => "kv",
            Resource::Var => "var",
            Resource::Acl => "acl",
            Resource::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether rules name things (`job "web-" {...}`) or cover the whole resource (`acl = "write"`).
    pub fn is_named(self) -> bool {
        !matches!(self, Resource::Acl | Resource::Operator)
    }

    /// Every capability the resource has: what `policy = "write"` grants.
    pub fn caps(self) -> &'static [Cap] {
        match self {
            Resource::Job => &[Cap::Read, Cap::Submit, Cap::Stop, Cap::Dispatch],
            Resource::Alloc => &[Cap::Read, Cap::Logs],
            Resource::Service => &[Cap::Read, Cap::Register],
            Resource::Node | Resource::Kv | Resource::Var | Resource::Acl | Resource::Operator => {
                &[Cap::Read, Cap::Write]
            }
        }
    }
}

impl Cap {
    pub fn as_str(self) -> &'static str {
        match self {
            Cap::Read => "read",
            Cap::Write => "write",
            Cap::Submit => "submit",
            Cap::Stop => "stop",
            Cap::Dispatch => "dispatch",
            Cap::Logs => "logs",
            Cap::Register => "register",
        }
    }

    pub fn parse(s: &str) -> Option<Cap> {
        [Cap::Read, Cap::Write, Cap::Submit, Cap::Stop, Cap::Dispatch, Cap::Logs, Cap::Register]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// What a request needs: a capability on a resource, for a name (`""` for the whole
/// resource, as a list of everything needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub resource: Resource,
    pub cap: Cap,
    pub name: String,
    /// Everything under `name` too (a recursive KV read or delete, a variables list):
    /// a narrower rule that does not allow it refuses the whole request.
    pub subtree: bool,
}

impl Need {
    pub fn new(resource: Resource, cap: Cap, name: impl Into<String>) -> Need {
        Need { resource, cap, name: name.into(), subtree: false }
    }
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.resource.is_named(), self.name.is_empty()) {
            (false, _) => write!(f, "{}:{}", self.resource.as_str(), self.cap.as_str()),
            (true, true) => write!(f, "{}:{} on every name", self.resource.as_str(), self.cap.as_str()),
            (true, false) => write!(f, "{}:{} on {:?}", self.resource.as_str(), self.cap.as_str(), self.name),
        }?;
        if self.subtree && !self.name.is_empty() {
            write!(f, " and everything under it")?;
        }
        Ok(())
    }
}

/// What a request may do: everything (a management token, or a hub whose ACLs are not
/// bootstrapped, on loopback), or what its rules allow.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorizer {
    Management,
    /// Shared: a token's one policy's rules, or the anonymous rules, are not copied per request.
    Rules(std::sync::Arc<Rules>),
}

impl Authorizer {
    pub fn allows(&self, need: &Need) -> bool {
        match self {
            Authorizer::Management => true,
            Authorizer::Rules(r) => r.allows(need),
        }
    }

    pub fn allows_some(&self, resource: Resource, cap: Cap) -> bool {
        match self {
            Authorizer::Management => true,
            Authorizer::Rules(r) => r.allows_some(resource, cap),
        }
    }

    /// The rules a request without a token gets: `anonymous` minus every secret.
    pub fn anonymous(anonymous: &Rules) -> Authorizer {
        Authorizer::Rules(std::sync::Arc::new(anonymous.without_secrets()))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
