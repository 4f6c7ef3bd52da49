//! Signed visitor identities. A web app that knows a site's `token_secret` mints
//! `<expires_unix>.<hex HMAC-SHA256(secret, "<visitor>_<site>|<expires_unix>")>` and the widget
//! sends it as the MUC join `<password>`; frontdesk checks it, so nobody can enter another
//! visitor's room by guessing its id. docs/web-integration.md has the recipe and test vectors.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A site's token secret. Its Debug output never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(Vec<u8>);

impl TokenSecret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> TokenSecret {
        TokenSecret(bytes.into())
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("a token is required to join this site's chats")]
    Missing,
    #[error("the token is not of the form <expires>.<hex signature>")]
    Malformed,
    #[error("the token has expired")]
    Expired,
    #[error("the token does not match this visitor and site")]
    BadSignature,
}

/// The signed message: the room's local part and the expiry.
fn message(visitor: &str, site: &str, expires: i64) -> String {
    format!("{visitor}_{site}|{expires}")
}

fn mac(secret: &TokenSecret) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    match Hmac::<Sha256>::new_from_slice(&secret.0) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// Mints a token for `visitor` on `site`, valid until `expires` (Unix seconds).
pub fn mint(secret: &TokenSecret, visitor: &str, site: &str, expires: i64) -> String {
    let mut m = mac(secret);
    m.update(message(visitor, site, expires).as_bytes());
    let sig = m.finalize().into_bytes();
    let mut hex = String::with_capacity(sig.len() * 2);
    for b in sig {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("{expires}.{hex}")
}

/// Checks `token` for `visitor` on `site` at `now` (Unix seconds). The signature is compared
/// in constant time.
pub fn verify(
    secret: &TokenSecret,
    visitor: &str,
    site: &str,
    token: Option<&str>,
    now: i64,
) -> Result<(), TokenError> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)?;
    let (expires, hex) = token.split_once('.').ok_or(TokenError::Malformed)?;
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) || expires.len() > 12 {
        return Err(TokenError::Malformed);
    }
    let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let sig = decode_hex(hex).ok_or(TokenError::Malformed)?;
    let mut m = mac(secret);
    m.update(message(visitor, site, expires).as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    if expires <= now {
        return Err(TokenError::Expired);
    }
    Ok(())
}

/// Exactly 64 hex digits, either case (docs/web-integration.md). Digit by digit, because
/// `u8::from_str_radix` also takes a sign (`+f`), which would let many spellings of one
/// signature verify.
fn decode_hex(s: &str) -> Option<Vec<u8>> {
    fn digit(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    // Bytes, not chars: a multi-byte character is simply not a digit.
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Vector {
        secret: String,
        site: String,
        visitor: String,
        expires: i64,
        token: String,
    }

    fn vectors() -> Vec<Vector> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/token_vectors.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn the_published_vectors_mint_and_verify() {
        let vs = vectors();
        assert!(vs.len() >= 3);
        for v in &vs {
            let secret = TokenSecret::new(v.secret.as_bytes());
            assert_eq!(mint(&secret, &v.visitor, &v.site, v.expires), v.token);
            assert_eq!(
                verify(&secret, &v.visitor, &v.site, Some(&v.token), v.expires - 1),
                Ok(())
            );
        }
    }

    #[test]
    fn every_way_a_token_can_be_wrong() {
        let s = TokenSecret::new(b"k".to_vec());
        let t = mint(&s, "v1", "acme", 2_000);
        assert_eq!(
            verify(&s, "v1", "acme", None, 1_000),
            Err(TokenError::Missing)
        );
        assert_eq!(
            verify(&s, "v1", "acme", Some(" "), 1_000),
            Err(TokenError::Missing)
        );
        assert_eq!(
            verify(&s, "v1", "acme", Some("nodot"), 1_000),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&s, "v1", "acme", Some("x.ab"), 1_000),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&s, "v1", "acme", Some("-5.ab"), 1_000),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify(&s, "v1", "acme", Some(&t), 2_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify(&s, "v2", "acme", Some(&t), 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(&s, "v1", "globex", Some(&t), 1_000),
            Err(TokenError::BadSignature)
        );
        let other = TokenSecret::new(b"other".to_vec());
        assert_eq!(
            verify(&other, "v1", "acme", Some(&t), 1_000),
            Err(TokenError::BadSignature)
        );
        // A later expiry with the old signature does not verify.
        let forged = format!("9999{}", &t[4..]);
        assert_eq!(
            verify(&s, "v1", "acme", Some(&forged), 1_000),
            Err(TokenError::BadSignature)
        );
        // Upper-case hex is accepted (it is the same signature).
        let upper = format!("2000.{}", t[5..].to_uppercase());
        assert_eq!(verify(&s, "v1", "acme", Some(&upper), 1_000), Ok(()));
        let shown = format!("{:?}", TokenSecret::new(b"zq9".to_vec()));
        assert!(!shown.contains("zq9"), "{shown}");
    }

    #[test]
    fn only_hex_digits_decode() {
        let s = TokenSecret::new(b"k".to_vec());
        let t = mint(&s, "v1", "acme", 2_000);
        let (expires, hex) = t.split_once('.').unwrap();
        // Find a signature byte below 0x10, so that "+x" parses to the same value under a
        // lenient decoder; mint until one has it.
        let mut found = None;
        for e in 2_000..3_000 {
            let t = mint(&s, "v1", "acme", e);
            let hex = t.split_once('.').unwrap().1.to_string();
            if let Some(i) = (0..64).step_by(2).find(|&i| hex.as_bytes()[i] == b'0') {
                found = Some((e, hex, i));
                break;
            }
        }
        let (e, good, i) = found.unwrap();
        let mut plus = good.clone();
        plus.replace_range(i..i + 1, "+");
        assert_eq!(
            verify(&s, "v1", "acme", Some(&format!("{e}.{good}")), 1_000),
            Ok(())
        );
        assert_eq!(
            verify(&s, "v1", "acme", Some(&format!("{e}.{plus}")), 1_000),
            Err(TokenError::Malformed)
        );
        for bad in ["-", " ", "g", "x", "_"] {
            let mut h = hex.to_string();
            h.replace_range(0..1, bad);
            assert_eq!(
                verify(&s, "v1", "acme", Some(&format!("{expires}.{h}")), 1_000),
                Err(TokenError::Malformed),
                "{h}"
            );
        }
        // Multi-byte characters: 64 bytes that are not 64 hex digits, split at odd offsets.
        for bad in [
            format!("é{}", &hex[2..]),
            format!("a€{}", &hex[4..]),
            format!("{}😀", &hex[..60]),
            "é".repeat(32),
        ] {
            assert_eq!(bad.len(), 64, "{bad}");
            assert_eq!(
                verify(&s, "v1", "acme", Some(&format!("{expires}.{bad}")), 1_000),
                Err(TokenError::Malformed),
                "{bad}"
            );
        }
    }
}
