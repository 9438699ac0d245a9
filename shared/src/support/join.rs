//! Join tokens: how a node trades a short-lived, single-use token (put on its SD card
//! by `rabble image`) for its long-lived credential without that credential ever
//! crossing the card. At its first CONNECT the agent makes its own token `T`, keeps it
//! in `<token_file>.joining` (0600), and logs in with the password
//! `rbj1:<join token>:<hex SHA-256 of T>`; the hub checks the join token (known, bound
//! to this node's name, not expired, not used) and records the hash as the node's
//! credential. From then on the node logs in with `T`. The same password again is
//! accepted only while it names the hash already recorded (the node retrying after a
//! lost CONNACK); anyone else's is refused as used.

/// The password's prefix (`1`: this scheme's version).
pub const PREFIX: &str = "rbj1:";

/// Hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    // On every request that carries an ACL token: no formatting machinery per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// The password a joining node logs in with.
pub fn password(join_token: &str, token: &str) -> String {
    format!("{PREFIX}{}:{}", join_token.trim(), hex(&super::seal::token_sha256(token)))
}

/// A join password's (join token, hex SHA-256 of the node's new token); `None` for any
/// other password.
pub fn parse(pass: &str) -> Option<(&str, &str)> {
    let (join, hash) = pass.strip_prefix(PREFIX)?.split_once(':')?;
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    (!join.is_empty() && hex64(hash)).then_some((join, hash))
}

/// A new random token (256 bits, hex), like the hub's.
pub fn new_token() -> Result<String, super::seal::SealError> {
    Ok(hex(&super::seal::SealKey::random_bytes()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip() {
        let p = password("abc\n", "tok");
        let (j, h) = parse(&p).unwrap();
        assert_eq!(j, "abc");
        assert_eq!(h, hex(&crate::support::seal::token_sha256("tok")));
        assert_eq!(parse("plain-token"), None);
        assert_eq!(parse("rbj1:abc:short"), None);
        assert_eq!(parse(&format!("rbj1::{h}")), None);
        assert_eq!(new_token().unwrap().len(), 64);
    }
}
