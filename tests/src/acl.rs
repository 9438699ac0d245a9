//! ACL tokens for the e2e tests: bootstrap a hub's ACLs, and make a token with one policy.

use crate::Hub;
use rabble_shared::api::{AclPolicyRequest, AclTokenRequest, AclTokenView};

impl Hub {
    /// Bootstraps the hub's ACLs (from loopback): the management token's secret.
    pub fn bootstrap_acl(&self) -> String {
        let t: AclTokenView = self.post("/api/v1/acl/bootstrap", &serde_json::Value::Null).expect("bootstrap");
        t.secret.expect("the secret, once")
    }

    /// A token whose one policy, `name`, has `rules`; made with the management token `root`.
    pub fn token_with(&self, root: &str, name: &str, rules: &str) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let policy = AclPolicyRequest { description: String::new(), rules: rules.into() };
        let url = format!("{}/api/v1/acl/policies/{name}", self.http);
        let r = agent.put(&url).header("x-consul-token", root).send_json(&policy).unwrap();
        assert_eq!(r.status(), 200, "policy {name}: {:?}", r.into_body().read_to_string());
        let req = AclTokenRequest { description: name.into(), policies: vec![name.into()], ..Default::default() };
        let url = format!("{}/api/v1/acl/tokens", self.http);
        let mut r = agent.post(&url).header("x-consul-token", root).send_json(&req).unwrap();
        let t: AclTokenView = r.body_mut().read_json().unwrap();
        t.secret.expect("the secret, once")
    }
}
