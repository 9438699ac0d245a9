//! Authenticated encryption for secrets at rest and in transit: ChaCha20-Poly1305 (ring)
//! with a random nonce in front of the ciphertext. Keys are 32 random bytes, or derived
//! with HKDF-SHA256 from secret material both ends hold (a node's token, whose SHA-256
//! the hub keeps) and a context naming the use, so one secret never keys two uses.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Why sealing or opening failed (deliberately vague about which part was wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("does not open with this key (wrong key, altered, or meant for another place)")]
    Open,
    #[error("no secure random numbers")]
    Random,
}

/// A sealing key.
pub struct SealKey(LessSafeKey);

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(..)")
    }
}

struct Len32;
impl ring::hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl SealKey {
    pub fn from_bytes(key: &[u8; 32]) -> SealKey {
        // A 32-byte key is always a valid ChaCha20-Poly1305 key.
        SealKey(LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte key")))
    }

    /// 32 fresh random bytes (for a key file).
    pub fn random_bytes() -> Result<[u8; 32], SealError> {
        let mut k = [0u8; 32];
        SystemRandom::new().fill(&mut k).map_err(|_| SealError::Random)?;
        Ok(k)
    }

    /// HKDF-SHA256 of `secret`, with `context` naming the use (and whose it is).
    pub fn derive(secret: &[u8], context: &[u8]) -> SealKey {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"rabble seal v1");
        let prk = salt.extract(secret);
        let info = [context];
        let mut k = [0u8; 32];
        // Expanding to 32 bytes of SHA-256 output cannot fail.
        prk.expand(&info, Len32).and_then(|okm| okm.fill(&mut k)).expect("hkdf of 32 bytes");
        SealKey::from_bytes(&k)
    }

    /// `nonce || ciphertext || tag`; `aad` must be given again to open.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plain);
        let mut body = out.split_off(NONCE_LEN);
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .map_err(|_| SealError::Open)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Open)?;
        let mut body = body.to_vec();
        let plain = self.0.open_in_place(nonce, Aad::from(aad), &mut body).map_err(|_| SealError::Open)?;
        let n = plain.len();
        body.truncate(n);
        Ok(body)
    }
}

/// The key that seals what the hub sends one node: derived from the SHA-256 of the
/// node's token (the node hashes its token; the hub keeps only the hash).
pub fn node_key(token_sha256: &[u8], node: &str) -> SealKey {
    let mut context = b"node certs ".to_vec();
    context.extend_from_slice(node.as_bytes());
    SealKey::derive(token_sha256, &context)
}

/// What the hub sends one node sealed (certificates, rendered templates): `plain`
/// sealed with the node's key, the topic as associated data, in base64.
pub fn seal_b64(key: &SealKey, topic: &str, plain: &[u8]) -> Result<String, SealError> {
    use base64::Engine;
    Ok(base64::engine::general_purpose::STANDARD.encode(key.seal(topic.as_bytes(), plain)?))
}

/// The node's side of [`seal_b64`]: opened with the node's token.
pub fn open_b64(token: &str, node: &str, topic: &str, b64: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| e.to_string())?;
    node_key(&token_sha256(token), node).open(topic.as_bytes(), &bytes).map_err(|e| e.to_string())
}

/// The SHA-256 of a token, as `credentials.json` keeps it (raw bytes).
pub fn token_sha256(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_tampering_is_refused() {
        let k = SealKey::from_bytes(&[7; 32]);
        let s = k.seal(b"topic/a", b"private key").unwrap();
        assert_eq!(k.open(b"topic/a", &s).unwrap(), b"private key");
        assert!(!s.windows(11).any(|w| w == b"private key"), "sealed text shows the clear text");
        assert_eq!(k.open(b"topic/b", &s), Err(SealError::Open), "other associated data");
        assert_eq!(SealKey::from_bytes(&[8; 32]).open(b"topic/a", &s), Err(SealError::Open), "other key");
        for i in 0..s.len() {
            let mut t = s.clone();
            t[i] ^= 1;
            assert_eq!(k.open(b"topic/a", &t), Err(SealError::Open), "byte {i} flipped");
        }
        assert_eq!(k.open(b"", &s[..5]), Err(SealError::Open));
        assert_ne!(k.seal(b"", b"x").unwrap(), k.seal(b"", b"x").unwrap(), "nonces repeat");
    }

    #[test]
    fn node_keys_differ_by_node_and_token() {
        let h = token_sha256("secret-token");
        let s = node_key(&h, "pi-1").seal(b"", b"x").unwrap();
        assert!(node_key(&h, "pi-1").open(b"", &s).is_ok());
        assert!(node_key(&h, "pi-2").open(b"", &s).is_err());
        assert!(node_key(&token_sha256("other"), "pi-1").open(b"", &s).is_err());
    }
}
