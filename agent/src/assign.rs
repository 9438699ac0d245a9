//! Checking the hub's assignments, pure: a message in, the assignments out only when
//! they are signed with the configured hub key, addressed to this node, and not older
//! than what the agent already runs. Everything else is refused with the reason.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rabble_shared::NodeId;
use rabble_shared::assign::{Assignments, Signed};
use rabble_shared::msg;

/// Why an assignment message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no hub_key is configured: this agent runs no work until it has the hub's public key")]
    NoKey,
    #[error("not a signed assignment message: {0}")]
    Malformed(String),
    #[error("the signature does not match the hub's key")]
    BadSignature,
    #[error("addressed to node {0}, not this one")]
    OtherNode(String),
    #[error("older than what this node runs (seq {got} < {have}): a replay")]
    Replayed { got: u64, have: u64 },
    #[error("issued at {issued_ms} ms, too far from this node's clock ({now_ms} ms): a replay, or a clock to set")]
    Stale { issued_ms: u64, now_ms: u64 },
}

/// A hub key as configured: base64 of the 32-byte ed25519 public key.
pub fn parse_key(b64: &str) -> Result<Vec<u8>, String> {
    let key = STANDARD.decode(b64.trim()).map_err(|e| format!("not base64: {e} (use `rabble-hub key`)"))?;
    if key.len() != 32 {
        return Err(format!("{} bytes; an ed25519 public key has 32 (use `rabble-hub key`)", key.len()));
    }
    Ok(key)
}

/// Accepts `payload` if it is a set for `me`, signed with `key`, and at least as new as
/// `have` (the seq of the set the agent runs, if any).
pub fn verify(payload: &[u8], key: Option<&[u8]>, me: &NodeId, have: Option<u64>) -> Result<Assignments, Refusal> {
    let key = key.ok_or(Refusal::NoKey)?;
    let signed: Signed = msg::decode(payload).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let body: Assignments = open(&signed.body, &signed.sig, key)?;
    if &body.node != me {
        return Err(Refusal::OtherNode(body.node.to_string()));
    }
    if let Some(have) = have
        && body.seq < have
    {
        return Err(Refusal::Replayed { got: body.seq, have });
    }
    Ok(body)
}

/// The body of a signed message, parsed, if `sig` is `key`'s signature of it.
pub fn open<T: serde::de::DeserializeOwned>(body: &str, sig: &str, key: &[u8]) -> Result<T, Refusal> {
    let sig = STANDARD.decode(sig).map_err(|_| Refusal::BadSignature)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(body.as_bytes(), &sig)
        .map_err(|_| Refusal::BadSignature)?;
    serde_json::from_str(body).map_err(|e| Refusal::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pair() -> Ed25519KeyPair {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
    }

    fn message(k: &Ed25519KeyPair, node: &str, seq: u64) -> Vec<u8> {
        let body =
            serde_json::to_string(&Assignments { node: NodeId::new(node).unwrap(), seq, issued_ms: 1, allocs: vec![] })
                .unwrap();
        msg::encode(&Signed { sig: STANDARD.encode(k.sign(body.as_bytes()).as_ref()), body })
    }

    #[test]
    fn only_the_hubs_signature_for_this_node_and_not_older() {
        let (hub, other) = (pair(), pair());
        let key = hub.public_key().as_ref().to_vec();
        let me = NodeId::new("pi").unwrap();
        assert_eq!(verify(&message(&hub, "pi", 5), Some(&key), &me, Some(5)).unwrap().seq, 5);
        assert_eq!(verify(&message(&hub, "pi", 5), None, &me, None), Err(Refusal::NoKey));
        assert_eq!(verify(&message(&other, "pi", 9), Some(&key), &me, None), Err(Refusal::BadSignature));
        assert_eq!(verify(&message(&hub, "pi2", 9), Some(&key), &me, None), Err(Refusal::OtherNode("pi2".into())));
        assert_eq!(
            verify(&message(&hub, "pi", 4), Some(&key), &me, Some(5)),
            Err(Refusal::Replayed { got: 4, have: 5 })
        );
        // A body changed after signing.
        let mut tampered: serde_json::Value = serde_json::from_slice(&message(&hub, "pi", 6)).unwrap();
        tampered["body"] = tampered["body"].as_str().unwrap().replace("\"seq\":6", "\"seq\":60").into();
        let bytes = serde_json::to_vec(&tampered).unwrap();
        assert_eq!(verify(&bytes, Some(&key), &me, None), Err(Refusal::BadSignature));
        assert!(matches!(verify(b"{\"v\":1}", Some(&key), &me, None), Err(Refusal::Malformed(_))));
        assert!(parse_key("AAAA").unwrap_err().contains("32"));
    }
}
