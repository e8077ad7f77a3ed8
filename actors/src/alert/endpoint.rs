//! Where alerts may go: `https://` anywhere, plain `http://` only to a
//! loopback address (a local relay, a test server).
//!
//! Messages never repeat the URL: for Slack and webhooks it is a secret.

use std::net::IpAddr;

use url::{Host, Url};

/// Why a URL is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointProblem {
    #[error("not a valid absolute URL")]
    NotAUrl,
    #[error("only https:// URLs are accepted (http:// to a loopback address)")]
    Scheme,
    #[error("plain http:// is accepted only to a loopback address (127.0.0.0/8, ::1, localhost); use https://")]
    Insecure,
    #[error("the URL has no host")]
    NoHost,
}

/// Parses `text` and checks it may receive alerts.
pub fn check(text: &str) -> Result<Url, EndpointProblem> {
    let url = Url::parse(text.trim()).map_err(|_| EndpointProblem::NotAUrl)?;
    let host = url.host().ok_or(EndpointProblem::NoHost)?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(EndpointProblem::Insecure),
        _ => Err(EndpointProblem::Scheme),
    }
}

/// 127.0.0.0/8, ::1 (and IPv4-mapped loopback), or `localhost`.
pub fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => {
            IpAddr::V6(*ip).is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_http_only_to_loopback() {
        for ok in [
            "https://hooks.slack.com/services/T/B/X",
            "https://events.pagerduty.com/v2/enqueue",
            "http://127.0.0.1:8080/hook",
            "http://127.1.2.3/hook",
            "http://[::1]:9/x",
            "http://localhost/x",
            "http://LOCALHOST:1/x",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            check("http://example.com/hook"),
            Err(EndpointProblem::Insecure)
        );
        assert_eq!(check("http://10.0.0.1/"), Err(EndpointProblem::Insecure));
        assert_eq!(
            check("http://localhost.evil.example/"),
            Err(EndpointProblem::Insecure)
        );
        assert_eq!(check("ftp://127.0.0.1/x"), Err(EndpointProblem::Scheme));
        assert_eq!(check("ORCA_SLACK_WEBHOOK"), Err(EndpointProblem::NotAUrl));
        assert_eq!(check(""), Err(EndpointProblem::NotAUrl));
    }

    #[test]
    fn problems_never_repeat_the_url() {
        let secret_url = "http://example.com/services/T0/B0/s3cr3tpath";
        let e = check(secret_url).unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"));
        assert!(!format!("{e:?}").contains("s3cr3t"));
    }
}
