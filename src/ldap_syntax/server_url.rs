//! Directory server addresses: `ldap://host[:port]` or `ldaps://host[:port]`, nothing after the
//! authority. Parsed once, when the configuration is loaded; connections, TLS and reports read
//! the parts from the [`ServerUrl`] instead of taking the text apart again.

use std::fmt;

/// How a server is reached: in the clear (possibly upgraded with StartTLS) or over TLS from
/// the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `ldap://`, port 389 by default.
    Ldap,
    /// `ldaps://`, port 636 by default.
    Ldaps,
}

/// One server of `directory.urls`, checked and taken apart.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// As the operator wrote it: what logs, reports and messages show.
    text: String,
    parsed: url::Url,
    scheme: Scheme,
    /// `host:port`, the port filled in from the scheme when the URL has none.
    address: String,
}

impl ServerUrl {
    /// Check `text` and take it apart. The error is a sentence quoting `text`.
    pub fn parse(text: &str) -> Result<ServerUrl, String> {
        let parsed = url::Url::parse(text).map_err(|e| format!("{text:?} is not a URL: {e}"))?;
        let (scheme, default_port) = match parsed.scheme() {
            "ldap" => (Scheme::Ldap, 389),
            "ldaps" => (Scheme::Ldaps, 636),
            other => {
                return Err(format!(
                    "{text:?} has the scheme {other}:, not ldap: or ldaps:"
                ))
            }
        };
        let host = match parsed.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            _ => return Err(format!("{text:?} names no server")),
        };
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(format!(
                "{text:?} has a DN or options after the server; give only scheme, host and port"
            ));
        }
        let address = format!("{host}:{}", parsed.port().unwrap_or(default_port));
        Ok(ServerUrl {
            text: text.to_owned(),
            parsed,
            scheme,
            address,
        })
    }

    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as the URL gives it; an IPv6 address keeps its brackets.
    pub fn host(&self) -> &str {
        self.parsed.host_str().unwrap_or_default()
    }

    /// Whether the host is an IPv6 address (which ldap3 cannot check a certificate for).
    pub fn is_ipv6(&self) -> bool {
        matches!(self.parsed.host(), Some(url::Host::Ipv6(_)))
    }

    /// `host:port` to open a TCP connection to, with the scheme's default port.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The URL with `host` in place of its own (scheme and port kept), as ldap3 is handed it
    /// when the certificate is checked for another name than the URL's.
    pub fn with_host(&self, host: &str) -> Result<String, String> {
        let mut url = self.parsed.clone();
        url.set_host(Some(host)).map_err(|e| e.to_string())?;
        Ok(url.to_string())
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Shown as the configured text, quoted, as the plain strings it replaces were.
impl fmt::Debug for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl PartialEq<str> for ServerUrl {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for ServerUrl {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> Result<String, String> {
        ServerUrl::parse(text).map(|u| u.address().to_owned())
    }

    #[test]
    fn server_addresses_get_the_default_port_of_their_scheme() {
        assert_eq!(
            address("ldap://ldap.example.org"),
            Ok("ldap.example.org:389".into())
        );
        assert_eq!(
            address("ldaps://ldap.example.org/"),
            Ok("ldap.example.org:636".into())
        );
        assert_eq!(
            address("ldap://127.0.0.1:3890"),
            Ok("127.0.0.1:3890".into())
        );
        assert_eq!(address("ldaps://[::1]:1636"), Ok("[::1]:1636".into()));
        assert_eq!(
            address("http://x"),
            Err("\"http://x\" has the scheme http:, not ldap: or ldaps:".into())
        );
        assert_eq!(
            address("ldap://"),
            Err("\"ldap://\" names no server".into())
        );
        assert_eq!(
            address("ldap://x/dc=org?uid"),
            Err("\"ldap://x/dc=org?uid\" has a DN or options after the server; give only scheme, host and port".into())
        );
        assert!(address("not a url").is_err());
    }

    #[test]
    fn the_parts_are_kept_and_the_text_is_shown_as_written() {
        let url = ServerUrl::parse("LDAPS://[::1]:6360").unwrap();
        assert_eq!(url.scheme(), Scheme::Ldaps);
        assert_eq!(url.host(), "[::1]");
        assert!(url.is_ipv6());
        assert_eq!(url.to_string(), "LDAPS://[::1]:6360");
        assert_eq!(format!("{url:?}"), "\"LDAPS://[::1]:6360\"");
        assert_eq!(url, "LDAPS://[::1]:6360");
        let plain = ServerUrl::parse("ldap://ldap1.example.org").unwrap();
        assert_eq!(plain.scheme(), Scheme::Ldap);
        assert_eq!(plain.host(), "ldap1.example.org");
        assert!(!plain.is_ipv6());
    }

    #[test]
    fn another_host_can_stand_in_for_the_urls() {
        let url = ServerUrl::parse("ldaps://127.0.0.1:6360").unwrap();
        assert_eq!(
            url.with_host("ldap.test").unwrap(),
            "ldaps://ldap.test:6360"
        );
        let url = ServerUrl::parse("ldap://ldap1.example.org").unwrap();
        assert_eq!(url.with_host("10.0.0.7").unwrap(), "ldap://10.0.0.7");
    }
}
