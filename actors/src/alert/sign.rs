//! Standard Webhooks 1.0 signatures (<https://www.standardwebhooks.com/>).
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`; the
//! `webhook-signature` header is `v1,` + base64(HMAC-SHA256(key, content)),
//! several space-separated when keys rotate. The key is the secret's
//! `whsec_`-prefixed base64 form decoded, or — for a secret without the
//! prefix — its text as bytes.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secret::Secret;

/// The prefix of a Standard Webhooks secret.
pub const SECRET_PREFIX: &str = "whsec_";

type HmacSha256 = Hmac<Sha256>;

/// A signing key. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

/// Why a secret cannot sign. Names the env var only.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("{env}: a `whsec_` secret must be base64 after the prefix")]
    BadBase64 { env: String },
    #[error("{env}: the signing secret is empty")]
    Empty { env: String },
}

impl SigningKey {
    /// From a secret: `whsec_<base64>` is decoded; anything else is used
    /// as plain-text bytes.
    pub fn from_secret(secret: &Secret) -> Result<Self, SignError> {
        let text = secret.expose();
        let key = match text.strip_prefix(SECRET_PREFIX) {
            Some(b64) => STANDARD.decode(b64).map_err(|_| SignError::BadBase64 {
                env: secret.env().to_string(),
            })?,
            None => text.as_bytes().to_vec(),
        };
        if key.is_empty() {
            return Err(SignError::Empty {
                env: secret.env().to_string(),
            });
        }
        Ok(Self(key))
    }

    /// From raw key bytes.
    pub fn from_bytes(key: Vec<u8>) -> Self {
        Self(key)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        HmacSha256::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }

    /// Whether one of the `v1,` entries of a `webhook-signature` header is
    /// this key's signature (compared in constant time, as receivers must).
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let mut ok = false;
        for entry in header.split(' ') {
            let Some(("v1", sig)) = entry.split_once(',') else {
                continue;
            };
            let Ok(bytes) = STANDARD.decode(sig) else {
                continue;
            };
            let mut mac = self.mac();
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            ok |= mac.verify_slice(&bytes).is_ok();
        }
        ok
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    /// The Standard Webhooks reference libraries' own test vector
    /// (standard-webhooks/standard-webhooks, libraries/rust `test_sign`).
    const VECTOR_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const VECTOR_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const VECTOR_TS: i64 = 1_649_367_553;
    const VECTOR_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const VECTOR_SIG: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    /// HMAC-SHA256 written out from RFC 2104 on plain SHA-256, independent
    /// of the `hmac` crate.
    fn independent_hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
        let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
        let inner = Sha256::digest([ipad.as_slice(), msg].concat());
        Sha256::digest([opad.as_slice(), inner.as_slice()].concat()).into()
    }

    /// A receiver's check, as the spec describes it, on the independent HMAC.
    fn independent_verify(secret: &str, id: &str, ts: i64, body: &[u8], header: &str) -> bool {
        let key = match secret.strip_prefix("whsec_") {
            Some(b) => STANDARD.decode(b).unwrap(),
            None => secret.as_bytes().to_vec(),
        };
        let content = [format!("{id}.{ts}.").as_bytes(), body].concat();
        let expected = STANDARD.encode(independent_hmac(&key, &content));
        header
            .split(' ')
            .filter_map(|e| e.strip_prefix("v1,"))
            .any(|sig| sig == expected)
    }

    #[test]
    fn matches_the_published_test_vector() {
        let key = SigningKey::from_secret(&Secret::new("S", VECTOR_SECRET)).unwrap();
        assert_eq!(key.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_SIG);
        assert!(key.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, VECTOR_SIG));
        assert!(independent_verify(
            VECTOR_SECRET,
            VECTOR_ID,
            VECTOR_TS,
            VECTOR_BODY,
            VECTOR_SIG
        ));
    }

    #[test]
    fn independent_verifier_agrees_for_both_secret_forms() {
        for secret in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "plain text secret",
        ] {
            let key = SigningKey::from_secret(&Secret::new("S", secret)).unwrap();
            let body = br#"{"type":"alert.triggered","data":{}}"#;
            let sig = key.sign("a-1:1", 1_700_000_000, body);
            assert!(independent_verify(
                secret,
                "a-1:1",
                1_700_000_000,
                body,
                &sig
            ));
            // Any change to id, timestamp or body breaks it.
            assert!(!independent_verify(
                secret,
                "a-1:2",
                1_700_000_000,
                body,
                &sig
            ));
            assert!(!independent_verify(
                secret,
                "a-1:1",
                1_700_000_001,
                body,
                &sig
            ));
            assert!(!independent_verify(
                secret,
                "a-1:1",
                1_700_000_000,
                b"{}",
                &sig
            ));
        }
    }

    #[test]
    fn verify_accepts_any_listed_signature_only() {
        let key = SigningKey::from_secret(&Secret::new("S", VECTOR_SECRET)).unwrap();
        let header = format!("v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= {VECTOR_SIG}");
        assert!(key.verify(VECTOR_ID, VECTOR_TS, VECTOR_BODY, &header));
        assert!(!key.verify(
            VECTOR_ID,
            VECTOR_TS,
            VECTOR_BODY,
            "v1,Mm7xgUVICxZfQ3bgf0h0Dof65L/IFx+PnZvnDWPCX6Q= v2,x"
        ));
    }

    #[test]
    fn bad_secrets_name_the_env_only() {
        let e = SigningKey::from_secret(&Secret::new("ORCA_WEBHOOK_SECRET", "whsec_%%%notbase64"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "ORCA_WEBHOOK_SECRET: a `whsec_` secret must be base64 after the prefix"
        );
        assert!(SigningKey::from_secret(&Secret::new("S", "whsec_")).is_err());
        let key = SigningKey::from_secret(&Secret::new("S", "topsecretvalue")).unwrap();
        assert!(!format!("{key:?}").contains("topsecret"));
    }
}
