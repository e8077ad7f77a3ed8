//! A webhook subscription's requests: Standard Webhooks headers checked
//! against the subscription's secret (HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{body}`) and its timestamp tolerance,
//! before anything is journaled. Pure: the secret and the clock are given.

use crate::alert::secret::Secret;
use crate::alert::sign::SigningKey;
use crate::model::Timestamp;

/// Why a webhook request is refused (each is a 401).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefusal {
    #[error("missing the webhook-id, webhook-timestamp or webhook-signature header")]
    MissingHeaders,
    #[error("the webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("the webhook-timestamp is outside the tolerance ({0} s)")]
    Stale(u64),
    #[error("the signature does not match")]
    BadSignature,
    #[error("the subscription's secret is not set in orca's environment ({0})")]
    NoSecret(String),
}

/// The three Standard Webhooks headers, as received (absent = `None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhookHeaders<'a> {
    pub id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
}

/// Verifies one request; answers its `webhook-id`.
pub fn verify(
    headers: WebhookHeaders<'_>,
    body: &[u8],
    secret: Option<&Secret>,
    secret_env: &str,
    tolerance_ms: u64,
    now: Timestamp,
) -> Result<String, WebhookRefusal> {
    let (Some(id), Some(ts), Some(sig)) = (headers.id, headers.timestamp, headers.signature) else {
        return Err(WebhookRefusal::MissingHeaders);
    };
    let ts: i64 = ts
        .trim()
        .parse()
        .map_err(|_| WebhookRefusal::BadTimestamp)?;
    let now_s = now.nanos().div_euclid(1_000_000_000);
    if now_s.abs_diff(ts).saturating_mul(1000) > tolerance_ms {
        return Err(WebhookRefusal::Stale(tolerance_ms / 1000));
    }
    let secret = secret.ok_or_else(|| WebhookRefusal::NoSecret(secret_env.to_string()))?;
    let key = SigningKey::from_secret(secret)
        .map_err(|_| WebhookRefusal::NoSecret(secret_env.to_string()))?;
    if !key.verify(id, ts, body, sig) {
        return Err(WebhookRefusal::BadSignature);
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_passes_and_others_are_refused() {
        let secret = Secret::new("HOOK_SECRET", "whsec_c2VjcmV0LWJ5dGVzLTAxMjM0NTY3ODk=");
        let key = SigningKey::from_secret(&secret).unwrap();
        let now = Timestamp(1_800_000_000_000_000_000);
        let ts = now.nanos() / 1_000_000_000;
        let body = br#"{"ok":true}"#;
        let sig = key.sign("msg_1", ts, body);
        let v = |id, t: String, s: &str, b: &[u8]| {
            verify(
                WebhookHeaders {
                    id: Some(id),
                    timestamp: Some(&t),
                    signature: Some(s),
                },
                b,
                Some(&secret),
                "HOOK_SECRET",
                300_000,
                now,
            )
        };
        assert_eq!(v("msg_1", ts.to_string(), &sig, body), Ok("msg_1".into()));
        assert_eq!(
            v("msg_1", ts.to_string(), &sig, b"{}"),
            Err(WebhookRefusal::BadSignature)
        );
        assert_eq!(
            v("msg_2", ts.to_string(), &sig, body),
            Err(WebhookRefusal::BadSignature)
        );
        assert_eq!(
            v("msg_1", (ts - 600).to_string(), &sig, body),
            Err(WebhookRefusal::Stale(300))
        );
        assert_eq!(
            verify(
                WebhookHeaders::default(),
                body,
                Some(&secret),
                "X",
                300_000,
                now
            ),
            Err(WebhookRefusal::MissingHeaders)
        );
        assert!(matches!(
            verify(
                WebhookHeaders {
                    id: Some("a"),
                    timestamp: Some(&ts.to_string()),
                    signature: Some(&sig),
                },
                body,
                None,
                "HOOK_SECRET",
                300_000,
                now
            ),
            Err(WebhookRefusal::NoSecret(_))
        ));
    }
}
