//! Signed visitor identities. A web app that knows a site's `token_secret` mints
//! `<expires_unix>.<hex HMAC-SHA256(secret, "<visitor>_<site>|<expires_unix>")>` and the widget
//! sends it as the MUC join `<password>`; frontdesk checks it, so nobody can enter another
//! visitor's room by guessing its id. A token may also carry what the web app knows of its
//! visitor (name, email, its own user id), signed with the rest:
//! `<expires>.<details>.<hex HMAC(secret, "<visitor>_<site>|<expires>|<details>")>`, where
//! `<details>` is unpadded base64url of a JSON object. docs/web-integration.md has the recipe
//! and test vectors for both forms.

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

/// What a web app signs about its visitor in a token; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The web app's own id for the visitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

/// Longest `<details>` part, in bytes.
pub const DETAILS_BYTES: usize = 2_048;
/// Longest name, email and user id, in characters.
pub const NAME_CHARS: usize = 100;
pub const EMAIL_CHARS: usize = 254;
pub const USER_ID_CHARS: usize = 128;

impl Details {
    fn check(&self) -> Result<(), TokenError> {
        let fits = |v: &Option<String>, n: usize| v.as_ref().is_none_or(|s| s.chars().count() <= n);
        if fits(&self.name, NAME_CHARS)
            && fits(&self.email, EMAIL_CHARS)
            && fits(&self.user_id, USER_ID_CHARS)
        {
            Ok(())
        } else {
            Err(TokenError::Details)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.email.is_none() && self.user_id.is_none()
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
    #[error("the visitor details in the token are not a JSON object of short strings")]
    Details,
}

/// The signed message: the room's local part, the expiry, and the details part if any.
fn message(visitor: &str, site: &str, expires: i64, details: Option<&str>) -> String {
    match details {
        None => format!("{visitor}_{site}|{expires}"),
        Some(d) => format!("{visitor}_{site}|{expires}|{d}"),
    }
}

fn mac(secret: &TokenSecret) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    match Hmac::<Sha256>::new_from_slice(&secret.0) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

fn sign(secret: &TokenSecret, message: &str) -> String {
    let mut m = mac(secret);
    m.update(message.as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Mints a token for `visitor` on `site`, valid until `expires` (Unix seconds).
pub fn mint(secret: &TokenSecret, visitor: &str, site: &str, expires: i64) -> String {
    format!(
        "{expires}.{}",
        sign(secret, &message(visitor, site, expires, None))
    )
}

/// Mints a token that also carries `details` (the short form when there are none).
pub fn mint_with(
    secret: &TokenSecret,
    visitor: &str,
    site: &str,
    expires: i64,
    details: &Details,
) -> String {
    if details.is_empty() {
        return mint(secret, visitor, site, expires);
    }
    use base64::Engine;
    let json = serde_json::to_string(details).unwrap_or_default();
    let part = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let sig = sign(secret, &message(visitor, site, expires, Some(&part)));
    format!("{expires}.{part}.{sig}")
}

/// Checks `token` for `visitor` on `site` at `now` (Unix seconds), and returns the details it
/// carries (empty for the short form). The signature is compared in constant time, before
/// the details are decoded.
pub fn verify(
    secret: &TokenSecret,
    visitor: &str,
    site: &str,
    token: Option<&str>,
    now: i64,
) -> Result<Details, TokenError> {
    let token = token
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Missing)?;
    let (expires, rest) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let (details, hex) = match rest.split_once('.') {
        Some((d, hex)) => (Some(d), hex),
        None => (None, rest),
    };
    if expires.is_empty() || !expires.bytes().all(|b| b.is_ascii_digit()) || expires.len() > 12 {
        return Err(TokenError::Malformed);
    }
    if details.is_some_and(|d| d.is_empty() || d.len() > DETAILS_BYTES) {
        return Err(TokenError::Malformed);
    }
    let expires: i64 = expires.parse().map_err(|_| TokenError::Malformed)?;
    let sig = decode_hex(hex).ok_or(TokenError::Malformed)?;
    let mut m = mac(secret);
    m.update(message(visitor, site, expires, details).as_bytes());
    m.verify_slice(&sig).map_err(|_| TokenError::BadSignature)?;
    if expires <= now {
        return Err(TokenError::Expired);
    }
    details.map_or(Ok(Details::default()), decode_details)
}

/// The details part: base64url (no padding) of a JSON object with short string fields.
fn decode_details(part: &str) -> Result<Details, TokenError> {
    use base64::Engine;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Details)?;
    let d: Details = serde_json::from_slice(&json).map_err(|_| TokenError::Details)?;
    d.check()?;
    Ok(d)
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
        #[serde(default)]
        details: Option<Details>,
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
            let minted = match &v.details {
                None => mint(&secret, &v.visitor, &v.site, v.expires),
                Some(d) => mint_with(&secret, &v.visitor, &v.site, v.expires, d),
            };
            assert_eq!(minted, v.token);
            assert_eq!(
                verify(&secret, &v.visitor, &v.site, Some(&v.token), v.expires - 1)
                    .map(|d| d == v.details.clone().unwrap_or_default()),
                Ok(true)
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
        assert!(verify(&s, "v1", "acme", Some(&upper), 1_000).is_ok());
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
        assert!(verify(&s, "v1", "acme", Some(&format!("{e}.{good}")), 1_000).is_ok());
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

    #[test]
    fn details_are_signed_with_the_rest() {
        use base64::Engine;
        let s = TokenSecret::new(b"k".to_vec());
        let d = Details {
            name: Some("Ann".into()),
            email: Some("ann@example.com".into()),
            user_id: None,
        };
        let t = mint_with(&s, "v1", "acme", 2_000, &d);
        assert_eq!(t.split('.').count(), 3);
        assert_eq!(verify(&s, "v1", "acme", Some(&t), 1_000), Ok(d.clone()));
        // The short form carries none, and empty details mint the short form.
        assert_eq!(
            verify(
                &s,
                "v1",
                "acme",
                Some(&mint(&s, "v1", "acme", 2_000)),
                1_000
            ),
            Ok(Details::default())
        );
        assert_eq!(
            mint_with(&s, "v1", "acme", 2_000, &Details::default()),
            mint(&s, "v1", "acme", 2_000)
        );
        // Other details under the same signature: refused.
        let parts: Vec<&str> = t.split('.').collect();
        let evil = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"name":"Admin"}"#);
        let forged = format!("{}.{evil}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&s, "v1", "acme", Some(&forged), 1_000),
            Err(TokenError::BadSignature)
        );
        // Dropping the details part does not keep the signature valid either.
        let dropped = format!("{}.{}", parts[0], parts[2]);
        assert_eq!(
            verify(&s, "v1", "acme", Some(&dropped), 1_000),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify(
                &s,
                "v1",
                "acme",
                Some(&format!("{}..{}", parts[0], parts[2])),
                1_000
            ),
            Err(TokenError::Malformed)
        );
        let huge = "A".repeat(DETAILS_BYTES + 1);
        assert_eq!(
            verify(
                &s,
                "v1",
                "acme",
                Some(&format!("2000.{huge}.{}", parts[2])),
                1_000
            ),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn signed_details_that_are_not_short_strings_are_refused() {
        use base64::Engine;
        let s = TokenSecret::new(b"k".to_vec());
        let sign_raw = |json: &str| {
            let part = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
            let sig = sign(&s, &message("v1", "acme", 2_000, Some(&part)));
            format!("2000.{part}.{sig}")
        };
        for bad in [
            "not json",
            "[1,2]",
            r#"{"name":5}"#,
            &format!(r#"{{"name":"{}"}}"#, "x".repeat(NAME_CHARS + 1)),
            &format!(r#"{{"email":"{}"}}"#, "x".repeat(EMAIL_CHARS + 1)),
        ] {
            assert_eq!(
                verify(&s, "v1", "acme", Some(&sign_raw(bad)), 1_000),
                Err(TokenError::Details),
                "{bad}"
            );
        }
        // Unknown keys are ignored (a newer web app), control characters kept for safe rendering.
        let ok = verify(
            &s,
            "v1",
            "acme",
            Some(&sign_raw(r#"{"name":"A\u202eB","plan":"gold"}"#)),
            1_000,
        );
        assert_eq!(ok.map(|d| d.name), Ok(Some("A\u{202e}B".to_string())));
        // Bad base64 in a signed part.
        let sig = sign(&s, &message("v1", "acme", 2_000, Some("!!")));
        assert_eq!(
            verify(&s, "v1", "acme", Some(&format!("2000.!!.{sig}")), 1_000),
            Err(TokenError::Details)
        );
    }
}
