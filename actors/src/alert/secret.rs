//! Secrets read at send time: webhook URLs, routing keys, signing secrets.
//!
//! Specs and configs hold env var *names*; the values are read from the
//! environment of the process that sends ([`EnvLookup`], injectable for
//! tests) into a [`Secret`], whose `Debug` and `Display` print
//! `<redacted:env:NAME>` and which has no `Serialize`, so it cannot reach
//! the journal, a log line or an API response by accident. [`scrub`]
//! removes secret values and URLs from error text (reqwest's errors print
//! the URL they were sending to).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::LazyLock;

use crate::spec::{AlertAdapter, PAGER_DUTY_EVENTS_URL};

/// A secret value and the env var it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    env: String,
    value: String,
}

impl Secret {
    pub fn new(env: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            env: env.into(),
            value: value.into(),
        }
    }

    /// A stand-in whose value is its own placeholder, `<redacted:env:NAME>`:
    /// what `orca alert dry-run` puts where the secret would go.
    pub fn redacted(env: impl Into<String>) -> Self {
        let env = env.into();
        let value = placeholder(&env);
        Self { env, value }
    }

    /// The env var's name.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The value, for the one place that needs it (a request being built).
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// `<redacted:env:NAME>`.
    pub fn placeholder(&self) -> String {
        placeholder(&self.env)
    }
}

/// `<redacted:env:NAME>`.
pub fn placeholder(env: &str) -> String {
    format!("<redacted:env:{env}>")
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.placeholder())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.placeholder())
    }
}

/// Where env var values come from.
pub trait EnvLookup: Send + Sync {
    /// The value of `name`, `None` when unset.
    fn var(&self, name: &str) -> Option<String>;
}

/// This process's environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessEnv;

impl EnvLookup for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// Every name resolves to its own placeholder (dry runs: the exact
/// payload, no secret).
#[derive(Clone, Copy, Debug, Default)]
pub struct RedactedEnv;

impl EnvLookup for RedactedEnv {
    fn var(&self, name: &str) -> Option<String> {
        Some(placeholder(name))
    }
}

impl EnvLookup for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl EnvLookup for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// A secret that could not be read. Names the adapter, the field and the
/// env var; never a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("adapter `{adapter}`: environment variable {env} ({field}) is not set")]
    Missing {
        adapter: String,
        field: &'static str,
        env: String,
    },
    #[error("adapter `{adapter}`: environment variable {env} ({field}) is empty")]
    Empty {
        adapter: String,
        field: &'static str,
        env: String,
    },
}

/// Reads `name` for `adapter`'s `field`.
pub fn resolve(
    env: &dyn EnvLookup,
    adapter: &str,
    field: &'static str,
    name: &str,
) -> Result<Secret, SecretError> {
    match env.var(name) {
        None => Err(SecretError::Missing {
            adapter: adapter.to_string(),
            field,
            env: name.to_string(),
        }),
        Some(v) if v.trim().is_empty() => Err(SecretError::Empty {
            adapter: adapter.to_string(),
            field,
            env: name.to_string(),
        }),
        Some(v) => Ok(Secret::new(name, v.trim().to_string())),
    }
}

/// What one adapter needs at send time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    Slack {
        url: Secret,
    },
    Webhook {
        url: Secret,
        /// Absent when the adapter has no `secret_env` (unsigned).
        signing: Option<Secret>,
    },
    PagerDuty {
        routing_key: Secret,
        /// The Events API URL (not a secret).
        endpoint: String,
    },
}

impl Credentials {
    /// Reads every secret `adapter` needs; every missing one is reported.
    pub fn resolve(
        name: &str,
        adapter: &AlertAdapter,
        env: &dyn EnvLookup,
    ) -> Result<Self, Vec<SecretError>> {
        let mut errors = Vec::new();
        let mut get = |field: &'static str, var: &str| match resolve(env, name, field, var) {
            Ok(s) => Some(s),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let creds = match adapter {
            AlertAdapter::Slack(a) => {
                get("webhook_env", &a.webhook_env).map(|url| Credentials::Slack { url })
            }
            AlertAdapter::Webhook(a) => {
                let url = get("url_env", &a.url_env);
                let signing = a.secret_env.as_deref().map(|s| get("secret_env", s));
                match (url, signing) {
                    (Some(url), None) => Some(Credentials::Webhook { url, signing: None }),
                    (Some(url), Some(Some(s))) => Some(Credentials::Webhook {
                        url,
                        signing: Some(s),
                    }),
                    _ => None,
                }
            }
            AlertAdapter::PagerDuty(a) => {
                get("routing_key_env", &a.routing_key_env).map(|routing_key| {
                    Credentials::PagerDuty {
                        routing_key,
                        endpoint: a
                            .endpoint
                            .clone()
                            .unwrap_or_else(|| PAGER_DUTY_EVENTS_URL.to_string()),
                    }
                })
            }
        };
        match creds {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }

    /// Every secret held, for [`scrub`].
    pub fn secrets(&self) -> Vec<&Secret> {
        match self {
            Credentials::Slack { url } => vec![url],
            Credentials::Webhook { url, signing } => std::iter::once(url).chain(signing).collect(),
            Credentials::PagerDuty { routing_key, .. } => vec![routing_key],
        }
    }

    /// The URL the request goes to: the secret URL, or PagerDuty's endpoint.
    pub fn target(&self) -> Target<'_> {
        match self {
            Credentials::Slack { url } | Credentials::Webhook { url, .. } => Target::Secret(url),
            Credentials::PagerDuty { endpoint, .. } => Target::Public(endpoint),
        }
    }
}

/// Where a request goes.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// A URL that is itself a secret (Slack, webhooks).
    Secret(&'a Secret),
    /// A public URL (PagerDuty's Events API).
    Public(&'a str),
}

impl Target<'_> {
    pub fn url(&self) -> &str {
        match self {
            Target::Secret(s) => s.expose(),
            Target::Public(u) => u,
        }
    }
}

/// Any `scheme://…` run of characters.
static URL_RE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>()\[\]{}]*"#).expect("valid regex")
});

/// Removes secrets from error text: every value of `secrets` (and, for a
/// secret URL, its path and query on their own) becomes its
/// `<redacted:env:NAME>`, then any remaining URL becomes `<redacted:url>`.
pub fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        let value = s.expose();
        if value.len() >= 4 {
            out = out.replace(value, &s.placeholder());
        }
        if let Ok(url) = url::Url::parse(value) {
            let mut tail = url.path().to_string();
            if let Some(q) = url.query() {
                tail.push('?');
                tail.push_str(q);
            }
            if tail.len() >= 8 {
                out = out.replace(&tail, &s.placeholder());
            }
            if let Some(q) = url.query().filter(|q| q.len() >= 8) {
                out = out.replace(q, &s.placeholder());
            }
        }
    }
    URL_RE.replace_all(&out, "<redacted:url>").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{PagerDutyAdapter, SlackAdapter, WebhookAdapter};

    const URL: &str = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX";

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn debug_and_display_are_redacted() {
        let s = Secret::new("ORCA_SLACK_WEBHOOK", URL);
        assert_eq!(format!("{s:?}"), "<redacted:env:ORCA_SLACK_WEBHOOK>");
        assert_eq!(s.to_string(), "<redacted:env:ORCA_SLACK_WEBHOOK>");
        assert_eq!(
            format!("{:?}", Some(&s)),
            "Some(<redacted:env:ORCA_SLACK_WEBHOOK>)"
        );
        assert_eq!(s.expose(), URL);
        assert_eq!(Secret::redacted("X").expose(), "<redacted:env:X>");
    }

    #[test]
    fn resolve_reports_missing_and_empty_by_name() {
        let e = env(&[("EMPTY", "  ")]);
        let err = resolve(&e, "ops", "webhook_env", "NOPE").unwrap_err();
        assert_eq!(
            err.to_string(),
            "adapter `ops`: environment variable NOPE (webhook_env) is not set"
        );
        assert!(matches!(
            resolve(&e, "ops", "webhook_env", "EMPTY"),
            Err(SecretError::Empty { .. })
        ));
    }

    #[test]
    fn credentials_per_kind() {
        let e = env(&[
            ("HOOK", URL),
            ("KEY", "k".repeat(32).as_str()),
            ("SIG", "whsec_abc"),
        ]);
        let slack = AlertAdapter::Slack(SlackAdapter {
            webhook_env: "HOOK".into(),
            ..Default::default()
        });
        let c = Credentials::resolve("s", &slack, &e).unwrap();
        assert_eq!(c.target().url(), URL);
        let hook = AlertAdapter::Webhook(WebhookAdapter {
            url_env: "HOOK".into(),
            secret_env: Some("MISSING_SIG".into()),
            ..Default::default()
        });
        let errs = Credentials::resolve("w", &hook, &e).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].to_string().contains("MISSING_SIG (secret_env)"));
        let pd = AlertAdapter::PagerDuty(PagerDutyAdapter {
            routing_key_env: "KEY".into(),
            ..Default::default()
        });
        let c = Credentials::resolve("p", &pd, &e).unwrap();
        assert_eq!(c.target().url(), PAGER_DUTY_EVENTS_URL);
        assert_eq!(c.secrets().len(), 1);
        let debug = format!("{c:?}");
        assert!(!debug.contains(&"k".repeat(32)), "{debug}");
    }

    #[test]
    fn scrub_removes_secret_values_paths_and_urls() {
        let s = Secret::new("ORCA_SLACK_WEBHOOK", URL);
        let text = format!(
            "error sending request for url ({URL}): connection refused; path /services/T000/B000/XXXXsecretXXXX; other http://10.1.1.1:80/x?token=abc"
        );
        let out = scrub(&text, &[&s]);
        assert!(!out.contains("XXXXsecretXXXX"), "{out}");
        assert!(!out.contains("10.1.1.1"), "{out}");
        assert!(out.contains("<redacted:env:ORCA_SLACK_WEBHOOK>"), "{out}");
        assert!(out.contains("<redacted:url>"), "{out}");
        assert!(out.contains("connection refused"), "{out}");
        let key = Secret::new("PD", "0123456789abcdef0123456789abcdef");
        assert_eq!(
            scrub("bad key 0123456789abcdef0123456789abcdef", &[&key]),
            "bad key <redacted:env:PD>"
        );
    }
}
