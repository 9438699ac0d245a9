//! Which certificates each node gets: for every node that serves a lane over TLS (its
//! facts' `tls_lanes`), the lane's current certificates, and the wire message around
//! them. Pure: `crate::retained` seals them for the node (from the SHA-256 of its
//! token, which is all `credentials.json` keeps) or withholds them.

use super::Stored;
use super::plan::Wanted;
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

/// The wire message around a bundle: `sealed` for the node (base64, made by
/// `crate::retained`), or the bundle in clear for a node without credentials.
pub fn wrap(bundle: CertBundle, sealed: Option<String>) -> Vec<u8> {
    let m = match sealed {
        Some(s) => CertMessage::sealed(s),
        None => CertMessage::plain(bundle),
    };
    rabble_shared::msg::encode(&m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_message_carries_either_the_sealed_text_or_the_bundle() {
        let bundle = CertBundle { lane: "ingress".into(), certs: vec![] };
        let sealed: CertMessage = rabble_shared::msg::decode(&wrap(bundle.clone(), Some("c2VhbGVk".into()))).unwrap();
        assert_eq!(sealed, CertMessage::sealed("c2VhbGVk".into()));
        let plain: CertMessage = rabble_shared::msg::decode(&wrap(bundle.clone(), None)).unwrap();
        assert_eq!(plain, CertMessage::plain(bundle));
    }
}
