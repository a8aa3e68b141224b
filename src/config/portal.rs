//! `[portal]`: the sign-in pages for people (`/auth/login`, `/auth/logout`), off until
//! `portal.url` is set.

use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

/// `[portal]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalSettings {
    /// The public base URL of the pages, such as `https://auth.example.org`; unset: no pages.
    pub url: Option<String>,
    /// The cookie the session token is kept in.
    pub cookie_name: String,
    /// The cookie's `Domain`; unset: a host-only cookie.
    pub cookie_domain: Option<String>,
    /// Whether the cookies are marked `Secure`.
    pub cookie_secure: bool,
    /// How long a session lasts (the session token's lifetime).
    #[serde(with = "humantime_serde")]
    pub session_duration: Duration,
    /// Hosts a `rd` target may name besides `cookie_domain` and its subdomains.
    pub allowed_redirect_hosts: Vec<String>,
}

impl Default for PortalSettings {
    fn default() -> Self {
        PortalSettings {
            url: None,
            cookie_name: "latchkey_session".into(),
            cookie_domain: None,
            cookie_secure: true,
            session_duration: Duration::from_secs(12 * 3600),
            allowed_redirect_hosts: Vec::new(),
        }
    }
}

/// Validated `[portal]`, present when the pages are on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalConfig {
    /// `scheme://host[:port]`, without path.
    pub url: Url,
    pub cookie_name: String,
    /// Lowercase, without a leading dot.
    pub cookie_domain: Option<String>,
    pub cookie_secure: bool,
    /// Seconds.
    pub session_duration: u64,
    /// Lowercase hosts (names or IP addresses as the `url` crate writes them).
    pub allowed_redirect_hosts: Vec<String>,
}

impl PortalConfig {
    /// Whether the pages are served over `http://` (only allowed on a loopback address).
    pub fn is_plain_http(&self) -> bool {
        self.url.scheme() == "http"
    }
}

/// Whether `name` may name a cookie (an RFC 9110 token).
pub(super) fn is_cookie_name(name: &str) -> bool {
    let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    !name.is_empty() && name.chars().all(token_char)
}

/// A DNS host name: dot-separated labels of letters, digits and '-', none starting or ending
/// with '-', at most 253 characters.
fn is_dns_name(name: &str) -> bool {
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(ip) => ip.is_loopback(),
        Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// `url` as a base URL: http or https, a host, an optional port, no user, path, query or
/// fragment.
pub(super) fn base_url(url: &str) -> Option<Url> {
    Url::parse(url).ok().filter(|parsed| {
        matches!(parsed.scheme(), "https" | "http")
            && parsed.host().is_some()
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.path() == "/"
            && parsed.query().is_none()
            && parsed.fragment().is_none()
    })
}

/// Whether `url`'s host is a loopback address (or `localhost`).
pub(super) fn is_loopback_url(url: &Url) -> bool {
    url.host().is_some_and(|h| is_loopback(&h))
}

pub(super) fn validate_portal(
    p: &PortalSettings,
    max_duration: u64,
    problems: &mut Vec<String>,
) -> Option<PortalConfig> {
    let before = problems.len();
    let url = p.url.as_deref()?;
    let url = base_url(url);
    if url.is_none() {
        problems.push(format!(
            "portal.url = {url:?} is not a base URL such as \"https://auth.example.org\" (http or https, a host, an optional port, no path)",
            url = p.url.as_deref().unwrap_or_default()
        ));
    }
    let loopback_http = url
        .as_ref()
        .is_some_and(|u| u.scheme() == "http" && is_loopback_url(u));
    if let Some(u) = &url {
        if u.scheme() == "http" && !loopback_http {
            problems.push(format!(
                "portal.url = {:?} is http:// on a host that is not loopback; passwords would cross the network in clear: use https://",
                u.as_str()
            ));
        }
    }
    if !p.cookie_secure && !loopback_http {
        problems.push(
            "portal.cookie_secure = false is only allowed when portal.url is http:// on a loopback address (a demo)"
                .into(),
        );
    }
    if !is_cookie_name(&p.cookie_name) {
        problems.push(format!(
            "portal.cookie_name = {:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)",
            p.cookie_name
        ));
    }
    let session = p.session_duration.as_secs();
    if session == 0 || session > max_duration {
        problems.push(format!(
            "portal.session_duration = {} must be from 1s to tokens.max_duration ({max_duration} seconds)",
            humantime::format_duration(p.session_duration)
        ));
    }
    let cookie_domain = p.cookie_domain.as_deref().map(str::to_ascii_lowercase);
    if let Some(domain) = &cookie_domain {
        let ip = domain.parse::<std::net::IpAddr>().is_ok();
        if ip || !is_dns_name(domain) || !domain.contains('.') {
            problems.push(format!(
                "portal.cookie_domain = {domain:?} is not a host name with a dot, such as \"example.org\" (no leading dot, no scheme, no port)"
            ));
        } else if let Some(Host::Domain(host)) = url.as_ref().and_then(Url::host) {
            if host != domain && !host.ends_with(&format!(".{domain}")) {
                problems.push(format!(
                    "portal.cookie_domain = {domain:?} does not contain portal.url's host {host:?}; browsers would refuse the cookie"
                ));
            }
        }
    }
    let mut allowed_redirect_hosts = Vec::new();
    for host in &p.allowed_redirect_hosts {
        match Host::parse(host) {
            Ok(Host::Domain(d)) if is_dns_name(&d) => allowed_redirect_hosts.push(d),
            Ok(ip @ (Host::Ipv4(_) | Host::Ipv6(_))) => allowed_redirect_hosts.push(ip.to_string()),
            _ => problems.push(format!(
                "portal.allowed_redirect_hosts: {host:?} is not a host name or IP address (no scheme, port or path)"
            )),
        }
    }
    let url = url?;
    if problems.len() > before {
        return None;
    }
    Some(PortalConfig {
        url,
        cookie_name: p.cookie_name.clone(),
        cookie_domain,
        cookie_secure: p.cookie_secure,
        session_duration: session,
        allowed_redirect_hosts,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::config::testing::{parse, problems, GOOD};

    fn with(portal: &str) -> String {
        format!("{GOOD}\n[portal]\n{portal}")
    }

    #[test]
    fn the_portal_is_off_until_it_has_a_url() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.portal, None);
        let c = parse(&with("cookie_name = \"x\"")).unwrap();
        assert_eq!(c.portal, None);
    }

    #[test]
    fn defaults() {
        let c = parse(&with("url = \"https://Auth.Example.org\"")).unwrap();
        let p = c.portal.unwrap();
        assert_eq!(p.url.as_str(), "https://auth.example.org/");
        assert_eq!(p.cookie_name, "latchkey_session");
        assert_eq!(p.cookie_domain, None);
        assert!(p.cookie_secure);
        assert_eq!(p.session_duration, 12 * 3600);
        assert!(p.allowed_redirect_hosts.is_empty());
        assert!(!p.is_plain_http());
    }

    #[test]
    fn hosts_are_kept_lowercase() {
        let c = parse(&with(
            "url = \"https://auth.example.org:8443\"\ncookie_domain = \"Example.ORG\"\nallowed_redirect_hosts = [\"Grafana.Other.net\", \"192.0.2.7\"]\nsession_duration = \"8h\"",
        ))
        .unwrap();
        let p = c.portal.unwrap();
        assert_eq!(p.cookie_domain.as_deref(), Some("example.org"));
        assert_eq!(p.allowed_redirect_hosts, ["grafana.other.net", "192.0.2.7"]);
        assert_eq!(p.session_duration, 8 * 3600);
    }

    #[test]
    fn plain_http_and_insecure_cookies_only_on_loopback() {
        for url in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]",
        ] {
            let c = parse(&with(&format!("url = \"{url}\"\ncookie_secure = false"))).unwrap();
            assert!(c.portal.unwrap().is_plain_http(), "{url}");
        }
        assert_eq!(
            problems(&with("url = \"http://auth.example.org\"\ncookie_secure = false")),
            [
                "portal.url = \"http://auth.example.org/\" is http:// on a host that is not loopback; passwords would cross the network in clear: use https://",
                "portal.cookie_secure = false is only allowed when portal.url is http:// on a loopback address (a demo)",
            ]
        );
        assert_eq!(
            problems(&with("url = \"https://127.0.0.1\"\ncookie_secure = false")),
            ["portal.cookie_secure = false is only allowed when portal.url is http:// on a loopback address (a demo)"]
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        assert_eq!(
            problems(&with(
                "url = \"https://auth.example.org/login\"\ncookie_name = \"a b\"\ncookie_domain = \".example.org\"\nsession_duration = \"2days\"\nallowed_redirect_hosts = [\"https://x.org\", \"x.org:8080\", \"ok.org\"]"
            )),
            [
                "portal.url = \"https://auth.example.org/login\" is not a base URL such as \"https://auth.example.org\" (http or https, a host, an optional port, no path)",
                "portal.cookie_name = \"a b\" is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)",
                "portal.session_duration = 2days must be from 1s to tokens.max_duration (86400 seconds)",
                "portal.cookie_domain = \".example.org\" is not a host name with a dot, such as \"example.org\" (no leading dot, no scheme, no port)",
                "portal.allowed_redirect_hosts: \"https://x.org\" is not a host name or IP address (no scheme, port or path)",
                "portal.allowed_redirect_hosts: \"x.org:8080\" is not a host name or IP address (no scheme, port or path)",
            ]
        );
        for url in [
            "auth.example.org",
            "ftp://auth.example.org",
            "https://u:p@auth.example.org",
            "https://auth.example.org/?a=1",
            "https://auth.example.org/#x",
        ] {
            assert_eq!(
                problems(&with(&format!("url = \"{url}\""))).len(),
                1,
                "{url}"
            );
        }
    }

    #[test]
    fn the_cookie_domain_must_contain_the_portal() {
        assert_eq!(
            problems(&with(
                "url = \"https://auth.example.org\"\ncookie_domain = \"other.org\""
            )),
            ["portal.cookie_domain = \"other.org\" does not contain portal.url's host \"auth.example.org\"; browsers would refuse the cookie"]
        );
        assert_eq!(
            problems(&with(
                "url = \"https://127.0.0.1\"\ncookie_domain = \"127.0.0.1\""
            )),
            ["portal.cookie_domain = \"127.0.0.1\" is not a host name with a dot, such as \"example.org\" (no leading dot, no scheme, no port)"]
        );
        assert_eq!(
            problems(&with(
                "url = \"https://auth.example.org\"\ncookie_domain = \"org\""
            )),
            ["portal.cookie_domain = \"org\" is not a host name with a dot, such as \"example.org\" (no leading dot, no scheme, no port)"]
        );
        let c = parse(&with(
            "url = \"https://example.org\"\ncookie_domain = \"example.org\"",
        ))
        .unwrap();
        assert!(c.portal.is_some());
    }

    #[test]
    fn another_verify_cookie_is_warned_about() {
        let c = parse(&format!(
            "{GOOD}\n[verify]\ncookie_name = \"latchkey_token\"\n[portal]\nurl = \"https://a.example.org\""
        ))
        .unwrap();
        assert_eq!(
            c.warnings,
            ["verify.cookie_name = \"latchkey_token\" is not portal.cookie_name = \"latchkey_session\": /auth/verify does not read the sign-in page's session cookie"]
        );
        let same = parse(&format!(
            "{GOOD}\n[verify]\ncookie_name = \"latchkey_session\"\n[portal]\nurl = \"https://a.example.org\""
        ))
        .unwrap();
        assert!(same.warnings.is_empty(), "{:?}", same.warnings);
    }

    #[test]
    fn the_session_cannot_outlive_the_longest_token() {
        assert!(parse(&with(
            "url = \"https://a.example.org\"\nsession_duration = \"1day\""
        ))
        .is_ok());
        assert_eq!(
            problems(&with(
                "url = \"https://a.example.org\"\nsession_duration = \"0s\""
            )),
            ["portal.session_duration = 0s must be from 1s to tokens.max_duration (86400 seconds)"]
        );
    }
}
