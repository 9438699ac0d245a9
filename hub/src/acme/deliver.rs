//! Which certificates each node gets: for every node that serves a lane over TLS (its
//! facts' `tls_lanes`), the lane's current certificates, sealed for the node when it
//! has credentials (`support::seal::node_key`: from the SHA-256 of its token, which
//! is all `credentials.json` keeps). Pure apart from the sealing's random nonce.

use super::plan::Wanted;
use super::store::Stored;
use crate::auth::Credentials;
use crate::catalog::Catalog;
use rabble_shared::NodeId;
use rabble_shared::certs::{CertBundle, CertMessage, IssuedCert};
use std::collections::BTreeMap;

/// Every (node, lane) that should hold certificates, with the bundle it should hold.
pub fn bundles(catalog: &Catalog, wanted: &Wanted, certs: &[Stored]) -> BTreeMap<(NodeId, String), CertBundle> {
    let mut out = BTreeMap::new();
    for (id, node) in &catalog.nodes {
        let Some(facts) = &node.facts else { continue };
        for lane in &facts.tls_lanes {
            if !rabble_shared::routes::valid_lane(lane) {
                continue;
            }
            let mut held: Vec<IssuedCert> = certs
                .iter()
                .filter(|c| wanted.get(&c.key).is_some_and(|lanes| lanes.contains(lane)))
                .map(|c| IssuedCert {
                    resolver: c.key.resolver.clone(),
                    domains: c.key.domains.clone(),
                    chain_pem: c.chain_pem.clone(),
                    key_pem: c.key_pem.clone(),
                    not_after: c.not_after,
                })
                .collect();
            held.truncate(rabble_shared::certs::MAX_CERTS);
            out.insert((id.clone(), lane.clone()), CertBundle { lane: lane.clone(), certs: held });
        }
    }
    out
}

/// The message for one node: sealed when the node has (unrevoked) credentials.
pub fn message(node: &NodeId, topic: &str, bundle: &CertBundle, creds: &Credentials) -> Option<CertMessage> {
    let Some(key) = creds.seal_key(node) else { return Some(CertMessage::plain(bundle.clone())) };
    rabble_shared::support::seal::seal_b64(&key, topic, &bundle.to_bytes()).ok().map(CertMessage::sealed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credentials::NodeCredential;
    use rabble_shared::support::seal;

    #[test]
    fn sealed_for_a_node_with_credentials_and_opened_with_its_token() {
        let node = NodeId::new("pi-1").unwrap();
        let mut creds = Credentials::default();
        let bundle = CertBundle { lane: "ingress".into(), certs: vec![] };
        assert_eq!(message(&node, "t", &bundle, &creds), Some(CertMessage::plain(bundle.clone())));
        creds.nodes.insert(
            node.clone(),
            NodeCredential {
                sha256: crate::auth::credentials::hash("tok"),
                added: 0,
                revoked: None,
                observer: false,
                join: None,
            },
        );
        let m = message(&node, "rabble/node/pi-1/certs/ingress", &bundle, &creds).unwrap();
        use base64::Engine;
        let sealed = base64::engine::general_purpose::STANDARD.decode(m.sealed.unwrap()).unwrap();
        let key = seal::node_key(&seal::token_sha256("tok"), "pi-1");
        let opened = key.open(b"rabble/node/pi-1/certs/ingress", &sealed).unwrap();
        assert_eq!(CertBundle::from_bytes(&opened).unwrap(), bundle);
        assert!(key.open(b"rabble/node/pi-2/certs/ingress", &sealed).is_err());
    }
}
