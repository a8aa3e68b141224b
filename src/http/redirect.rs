//! Where a browser may be sent after signing in or out: the one rule for `rd` (and for any
//! other URL Latchkey redirects a browser to on a client's say-so).
//!
//! A target is followed only when it is an absolute `https://` URL (`http://` too when the
//! portal itself is plain http on loopback) whose host is `portal.cookie_domain`, one of its
//! subdomains, or one of `portal.allowed_redirect_hosts`, with no user name or password in it.
//! The text is parsed by the `url` crate (the WHATWG rules browsers follow), and the checks
//! run on what it parsed, so a host written with percent escapes, upper case or IDNA is judged
//! as the browser will see it. Before parsing, anything a browser would read differently from
//! a server is refused outright: control characters, spaces, backslashes, and any start other
//! than `https://` (`https:evil`, `//evil`, `/\evil`, `javascript:`).

use url::{Host, Url};

use crate::config::PortalConfig;

/// The longest target considered, in bytes.
pub const MAX_TARGET_LEN: usize = 4096;

/// The redirect rule of a portal configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectRule {
    allow_http: bool,
    cookie_domain: Option<String>,
    hosts: Vec<String>,
}

impl RedirectRule {
    /// The rule `portal` sets.
    pub fn new(portal: &PortalConfig) -> RedirectRule {
        RedirectRule {
            allow_http: portal.is_plain_http(),
            cookie_domain: portal.cookie_domain.clone(),
            hosts: portal.allowed_redirect_hosts.clone(),
        }
    }

    /// `candidate` as the URL to send the browser to, or None when the rule does not allow it.
    pub fn allows(&self, candidate: &str) -> Option<Url> {
        if candidate.len() > MAX_TARGET_LEN
            || candidate
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return None;
        }
        let has_prefix = |prefix: &str| {
            candidate
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
        };
        if !(has_prefix("https://") || self.allow_http && has_prefix("http://")) {
            return None;
        }
        let url = Url::parse(candidate).ok()?;
        let scheme_ok = url.scheme() == "https" || self.allow_http && url.scheme() == "http";
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = match url.host()? {
            Host::Domain(name) => name.to_owned(),
            ip @ (Host::Ipv4(_) | Host::Ipv6(_)) => ip.to_string(),
        };
        let in_domain = self.cookie_domain.as_deref().is_some_and(|domain| {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        });
        (in_domain || self.hosts.contains(&host)).then_some(url)
    }

    /// The `form-action` sources of a page whose form may end in a redirect this rule allows
    /// (browsers apply `form-action` to the redirects after a form's submission too).
    pub fn form_action_sources(&self) -> String {
        let schemes: &[&str] = if self.allow_http {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut sources = vec!["'self'".to_owned()];
        for scheme in schemes {
            if let Some(domain) = &self.cookie_domain {
                sources.push(format!("{scheme}://{domain}:*"));
                sources.push(format!("{scheme}://*.{domain}:*"));
            }
            for host in &self.hosts {
                sources.push(format!("{scheme}://{host}:*"));
            }
        }
        sources.join(" ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rule(allow_http: bool) -> RedirectRule {
        RedirectRule {
            allow_http,
            cookie_domain: Some("example.org".into()),
            hosts: vec!["grafana.other.net".into(), "192.0.2.7".into()],
        }
    }

    #[test]
    fn the_allowed_targets_are_followed_as_parsed() {
        let r = rule(false);
        for (candidate, followed) in [
            ("https://example.org", "https://example.org/"),
            (
                "https://app.example.org/a/b?x=1&y=%2F#top",
                "https://app.example.org/a/b?x=1&y=%2F#top",
            ),
            (
                "https://deep.app.example.org:8443/",
                "https://deep.app.example.org:8443/",
            ),
            (
                "HTTPS://App.EXAMPLE.org/Path",
                "https://app.example.org/Path",
            ),
            // Spellings the browser also reads as the allowed host are followed as normalised.
            ("https://%61pp.example.org/", "https://app.example.org/"),
            ("https://ａｐｐ.example.org/", "https://app.example.org/"),
            ("https://:@app.example.org/", "https://app.example.org/"),
            (
                "https://grafana.other.net/d/1",
                "https://grafana.other.net/d/1",
            ),
            ("https://192.0.2.7/", "https://192.0.2.7/"),
            (
                "https://app.example.org/?rd=https://evil.net",
                "https://app.example.org/?rd=https://evil.net",
            ),
        ] {
            assert_eq!(
                r.allows(candidate).map(String::from).as_deref(),
                Some(followed),
                "{candidate}"
            );
        }
    }

    #[test]
    fn every_trick_is_refused() {
        let r = rule(false);
        for candidate in [
            "",
            "/",
            "/dashboard",
            "//evil.net",
            "//app.example.org",
            "/\\evil.net",
            "\\\\evil.net",
            "https:evil.net",
            "https:/app.example.org",
            "https:\\\\app.example.org",
            "https://\\evil.net",
            "https://app.example.org\\@evil.net",
            "http://app.example.org/",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)//https://app.example.org",
            "data:text/html,<script>alert(1)</script>",
            "ftp://app.example.org/",
            "https://good@evil.net",
            "https://app.example.org@evil.net",
            "https://user:pass@app.example.org/",
            "https://app.example.org.evil.net/",
            "https://evilexample.org/",
            "https://example.org.",
            "https://grafana.other.net.evil.net/",
            "https://sub.grafana.other.net/",
            "https://evil.net/app.example.org",
            "https://evil.net#@app.example.org",
            "https://evil.net?.example.org",
            "https://evil%2Enet/",
            "https://evil.net%2F.example.org/",
            "https://app.example.org%2F@evil.net/",
            "https://evil.net%40app.example.org/",
            "https://app.example.org\t/",
            "https://app.example.org\n.evil.net/",
            "https://app.exam\u{0000}ple.org/",
            " https://app.example.org/",
            "https://app.example.org /",
            "\u{feff}https://app.example.org/",
            "https://app.example.org\u{2028}/",
            "https://xn--e1afmkfd.net/",
            "https://[::1]/",
            "https://127.0.0.1/",
        ] {
            assert_eq!(r.allows(candidate), None, "{candidate:?}");
        }
        assert_eq!(
            r.allows(&format!("https://app.example.org/{}", "a".repeat(4096))),
            None
        );
    }

    #[test]
    fn plain_http_only_for_a_plain_http_portal() {
        assert_eq!(
            rule(true)
                .allows("http://app.example.org/x")
                .map(String::from)
                .as_deref(),
            Some("http://app.example.org/x")
        );
        assert_eq!(rule(true).allows("http:app.example.org/x"), None);
        assert_eq!(rule(false).allows("http://app.example.org/x"), None);
    }

    #[test]
    fn without_a_cookie_domain_only_the_listed_hosts() {
        let r = RedirectRule {
            allow_http: false,
            cookie_domain: None,
            hosts: vec!["app.example.org".into()],
        };
        assert!(r.allows("https://app.example.org/").is_some());
        assert_eq!(r.allows("https://x.app.example.org/"), None);
        assert_eq!(r.allows("https://example.org/"), None);
    }

    #[test]
    fn form_action_lists_what_the_rule_allows() {
        assert_eq!(
            rule(false).form_action_sources(),
            "'self' https://example.org:* https://*.example.org:* https://grafana.other.net:* https://192.0.2.7:*"
        );
        let none = RedirectRule {
            allow_http: false,
            cookie_domain: None,
            hosts: Vec::new(),
        };
        assert_eq!(none.form_action_sources(), "'self'");
    }
}
