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
//!
//! [`RedirectRule::allowed_text`] gives the same answer as text, for forward-auth's sign-in
//! redirect, which judges the original URL of every browser request without a token. Most such
//! URLs are already written the way the parser would write them (lower-case scheme and host,
//! no default port, nothing to percent-encode or remove from the path); for those the host is
//! read off the text and judged without parsing, and anything else goes to the parser. A test
//! checks both ways give the same text for every candidate.

use std::borrow::Cow;

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

    /// [`RedirectRule::allows`] as text: exactly `allows(candidate).map(String::from)`, without
    /// parsing when `candidate` is already in the form the parser would write it.
    pub fn allowed_text<'a>(&self, candidate: &'a str) -> Option<Cow<'a, str>> {
        match self.plain_host(candidate) {
            Some(host) => self.host_allowed(host).then_some(Cow::Borrowed(candidate)),
            None => self.allows(candidate).map(|url| Cow::Owned(url.into())),
        }
    }

    /// The host of `candidate` when the parser would write `candidate` back unchanged and read
    /// that host from it, judged on the text alone; None when that takes the parser. It holds
    /// for an `https://` URL (`http://` where allowed) of visible ASCII with none of the
    /// characters the parser percent-encodes in some part; an authority of a lower-case DNS
    /// name (no IDNA label, no last label the parser would read as an IPv4 number) or a
    /// dotted-quad IPv4 address in its canonical form, and no port or a non-default one in
    /// canonical form; a path that is there (the parser adds `/`) with no `.` segment to
    /// remove, in any spelling.
    fn plain_host<'a>(&self, candidate: &'a str) -> Option<&'a str> {
        let (rest, default_port) = match candidate.strip_prefix("https://") {
            Some(rest) => (rest, "443"),
            None if self.allow_http => (candidate.strip_prefix("http://")?, "80"),
            None => return None,
        };
        if candidate.len() > MAX_TARGET_LEN || !candidate.bytes().all(is_plain_byte) {
            return None;
        }
        let (authority, tail) = rest.split_at(rest.find(['/', '?', '#'])?);
        let path = tail.split(['?', '#']).next()?.as_bytes();
        let dot_segment = path.iter().enumerate().any(|(i, &b)| match b {
            b'.' => i > 0 && path.get(i - 1) == Some(&b'/'),
            b'%' => path
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.eq_ignore_ascii_case(b"2e")),
            _ => false,
        });
        if path.first() != Some(&b'/') || dot_segment {
            return None;
        }
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if let Some(port) = port {
            let canonical = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && !port.starts_with('0')
                && port.parse::<u32>().is_ok_and(|n| n <= 65535);
            if !canonical || port == default_port {
                return None;
            }
        }
        (is_canonical_ipv4(host) || is_plain_domain(host)).then_some(host)
    }

    /// Whether the rule lets the browser go to `host`, as the parser writes hosts.
    fn host_allowed(&self, host: &str) -> bool {
        let in_domain = self.cookie_domain.as_deref().is_some_and(|domain| {
            host == domain
                || host
                    .strip_suffix(domain)
                    .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
        });
        in_domain || self.hosts.iter().any(|allowed| allowed == host)
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
        self.host_allowed(&host).then_some(url)
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

/// The visible ASCII bytes but for those the URL parser percent-encodes in some part of a URL
/// (`"`, `'`, `<`, `>`, `` ` ``, `{`, `}`, `^`, `|`) and the backslash: bit `b` is byte `b`.
const PLAIN_BYTES: u128 = {
    let visible = (u128::MAX >> (128 - 0x7f)) & !((1u128 << 0x21) - 1);
    let excluded = 1u128 << b'"'
        | 1 << b'\''
        | 1 << b'<'
        | 1 << b'>'
        | 1 << b'`'
        | 1 << b'{'
        | 1 << b'}'
        | 1 << b'^'
        | 1 << b'|'
        | 1 << b'\\';
    visible & !excluded
};

fn is_plain_byte(b: u8) -> bool {
    b < 128 && PLAIN_BYTES >> b & 1 == 1
}

/// A dotted-quad IPv4 address as the parser writes one: four decimal numbers up to 255, with no
/// leading zero (the parser reads `010` as octal).
fn is_canonical_ipv4(host: &str) -> bool {
    let (mut parts, mut value, mut digits) = (1, 0u32, 0);
    for b in host.bytes() {
        match b {
            b'0'..=b'9' if digits == 0 || value != 0 => {
                value = value * 10 + u32::from(b - b'0');
                digits += 1;
                if value > 255 {
                    return false;
                }
            }
            b'.' if digits > 0 && parts < 4 => (parts, value, digits) = (parts + 1, 0, 0),
            _ => return false,
        }
    }
    parts == 4 && digits > 0
}

/// A DNS name the parser keeps as it is: labels of lower-case letters, digits and inner
/// hyphens, none empty (no trailing dot), none an IDNA label (`xn--`, or anything with `--`
/// where IDNA looks), and a last label with a letter in it that is not a hex number (`0x..`),
/// which the parser would read as part of an IPv4 address.
fn is_plain_domain(host: &str) -> bool {
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.get(2..4) != Some("--")
    });
    let last = host.rsplit('.').next().unwrap_or_default();
    labels_ok && last.bytes().any(|b| b.is_ascii_lowercase()) && !last.starts_with("0x")
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

    /// `allowed_text` answers as `allows` does, text for text, over URLs built from parts that
    /// each take the text-only judgement or send the candidate to the parser.
    #[test]
    fn the_text_judgement_agrees_with_the_parser() {
        let schemes = [
            "https://", "http://", "HTTPS://", "Http://", "https:/", "https:",
        ];
        let userinfo = ["", "u@", "u:p@", ":@", "app.example.org@"];
        let hosts = [
            "example.org",
            "app.example.org",
            "App.example.org",
            "app.example.org.",
            "app..example.org",
            "evil.net",
            "app.example.org.evil.net",
            "evilexample.org",
            "xn--e1afmkfd.example.org",
            "ab--c.example.org",
            "-a.example.org",
            "a-.example.org",
            "a-b.example.org",
            "1.example.org",
            "example.123",
            "example.0x1",
            "example.0xg",
            "127.0.0.1",
            "192.0.2.7",
            "192.0.2.07",
            "192.0.2.256",
            "0x7f.0.0.1",
            "1.2.3",
            "3221225991",
            "%61pp.example.org",
            "ａｐｐ.example.org",
            "[::1]",
            "grafana.other.net",
            "exa_mple.org",
            "",
        ];
        let ports = [
            "", ":", ":443", ":80", ":8443", ":08443", ":0", ":65535", ":65536", ":x", ":1:2",
        ];
        let paths = [
            "",
            "/",
            "/a/b",
            "/a/../b",
            "/./x",
            "/a/..",
            "/a/%2e%2E/b",
            "/a/.%2e/b",
            "/a/.hidden",
            "/a%2Fb",
            "/a b",
            "/a\"b",
            "/a<b>",
            "/a`b",
            "/a{b}",
            "/a^b",
            "/a|b",
            "/a'b",
            "/é",
            "/a\\b",
            "/%zz",
        ];
        let queries = [
            "",
            "?x=1",
            "?x='1'",
            "?rd=https://evil.net/../x",
            "?a=%ZZ",
            "?",
        ];
        let fragments = ["", "#top", "#a b", "#`x`", "#/../x"];
        let mut rule = rule(false);
        rule.hosts.push("127.0.0.1".into());
        let mut plain = 0;
        let mut check = |candidate: String| {
            for allow_http in [false, true] {
                rule.allow_http = allow_http;
                let text = rule.allowed_text(&candidate).map(Cow::into_owned);
                let parsed = rule.allows(&candidate).map(String::from);
                assert_eq!(text, parsed, "{candidate:?}, http allowed: {allow_http}");
                plain += usize::from(rule.plain_host(&candidate).is_some());
            }
        };
        for scheme in schemes {
            for user in userinfo {
                for host in hosts {
                    for port in ports {
                        check(format!("{scheme}{user}{host}{port}/x"));
                    }
                }
            }
        }
        for host in ["app.example.org", "127.0.0.1", "evil.net"] {
            for path in paths {
                for query in queries {
                    for fragment in fragments {
                        check(format!("https://{host}{path}{query}{fragment}"));
                    }
                }
            }
        }
        assert!(
            plain > 300,
            "only {plain} candidates were judged on the text"
        );
    }

    #[test]
    fn forward_auth_urls_are_judged_on_the_text() {
        let mut r = rule(true);
        r.hosts.push("127.0.0.1".into());
        for (candidate, host) in [
            ("http://127.0.0.1/app/reports?year=2026", Some("127.0.0.1")),
            (
                "https://app.example.org:8443/a?b=%2F#c",
                Some("app.example.org"),
            ),
            ("https://evil.net/x", Some("evil.net")),
            ("https://app.example.org", None),
            ("https://App.example.org/", None),
            ("https://app.example.org:443/", None),
            ("https://app.example.org/a/../b", None),
        ] {
            assert_eq!(r.plain_host(candidate), host, "{candidate}");
        }
        assert!(matches!(
            r.allowed_text("http://127.0.0.1/app/reports?year=2026"),
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(r.allowed_text("https://evil.net/x"), None);
    }

    #[test]
    fn only_canonical_dotted_quads_are_judged_as_addresses_on_the_text() {
        for host in [
            "0.0.0.0",
            "127.0.0.1",
            "192.0.2.7",
            "255.255.255.255",
            "10.0.100.1",
        ] {
            assert!(is_canonical_ipv4(host), "{host}");
        }
        for host in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.256",
            "1..3.4",
            "1.2.3.",
            ".1.2.3",
            "0x7f.0.0.1",
            "1.2.3.a",
            "1000.2.3.4",
        ] {
            assert!(!is_canonical_ipv4(host), "{host}");
        }
        for b in 0..=255u8 {
            let plain = (0x21..=0x7e).contains(&b) && !b"\"'<>`{}^|\\".contains(&b);
            assert_eq!(is_plain_byte(b), plain, "byte {b:#x}");
        }
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
