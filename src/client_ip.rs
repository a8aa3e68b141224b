//! Working out which address a request really came from.
//!
//! Behind a reverse proxy, the TCP peer of every request is the proxy, and
//! the client's address is in the `X-Forwarded-For` header, which each proxy
//! extends by appending the address it received the request from. Anyone can
//! send that header, so it is believed only as far as it was written by
//! proxies we trust: [`TrustedProxies::client_ip`] walks it from the right
//! (the entry written by the proxy nearest to us) and stops at the first
//! address that is not a trusted proxy. Entries to the left of that point
//! were supplied by the client and are ignored.
//!
//! Addresses are compared and returned in canonical form: an IPv4-mapped
//! IPv6 address (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4
//! peers) is treated as, and returned as, the IPv4 address it carries.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net};

/// Trusted reverse proxies, as CIDRs (`"10.0.0.0/8"`, `"::1/128"`, or a bare
/// address, which stands for a /32 or /128).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for net in &self.nets {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Parses one trusted-proxy entry: a CIDR or a bare address.
fn parse_net(entry: &str) -> Option<IpNet> {
    let net = match IpNet::from_str(entry) {
        Ok(net) => net,
        Err(_) => IpNet::from(IpAddr::from_str(entry).ok()?),
    };
    Some(canonical_net(net.trunc()))
}

/// Rewrites a CIDR inside `::ffff:0:0/96` (IPv4-mapped IPv6) as the IPv4
/// CIDR it describes, so that it matches canonicalised addresses.
fn canonical_net(net: IpNet) -> IpNet {
    if let IpNet::V6(v6) = net {
        if v6.prefix_len() >= 96 {
            if let Some(v4) = v6.network().to_ipv4_mapped() {
                if let Ok(v4net) = Ipv4Net::new(v4, v6.prefix_len() - 96) {
                    return IpNet::V4(v4net);
                }
            }
        }
    }
    net
}

/// Parses one `X-Forwarded-For` entry (already trimmed), as the bytes it came in: an IPv4 or
/// IPv6 address, optionally with a port (`1.2.3.4:5678`, `[::1]:80`) or in brackets without one
/// (`[::1]`). The port, if any, is dropped. Anything else (`unknown`, obfuscated identifiers,
/// zone indices, bytes that are not ASCII, garbage) is `None`.
fn parse_entry(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?;
    if let Ok(ip) = IpAddr::from_str(entry) {
        return Some(ip);
    }
    if let Ok(socket) = SocketAddr::from_str(entry) {
        return Some(socket.ip());
    }
    let inner = entry.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// `bytes` without the spaces and tabs around it.
fn trim_blanks(bytes: &[u8]) -> &[u8] {
    let blank = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().take_while(|b| blank(b)).count();
    let rest = bytes.get(start..).unwrap_or_default();
    let end = rest.len() - rest.iter().rev().take_while(|b| blank(b)).count();
    rest.get(..end).unwrap_or_default()
}

impl TrustedProxies {
    /// Parses a list of CIDRs (`"10.0.0.0/8"`, `"2001:db8::/32"`) or bare
    /// addresses (`"192.0.2.10"`, `"::1"`; a /32 or /128). Surrounding spaces
    /// are ignored and host bits below the prefix are cleared. The error
    /// names the first bad entry and shows what a CIDR looks like.
    pub fn parse<S: AsRef<str>>(cidrs: &[S]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::with_capacity(cidrs.len());
        for (index, raw) in cidrs.iter().enumerate() {
            let entry = raw.as_ref().trim();
            match parse_net(entry) {
                Some(net) => nets.push(net),
                None => {
                    return Err(format!(
                        "trusted proxy entry {} ({:?}) is not an IP address or CIDR; \
                         expected an address with an optional prefix length, such as \
                         \"10.0.0.0/8\", \"192.0.2.10\", \"2001:db8::/32\" or \"::1\"",
                        index + 1,
                        raw.as_ref()
                    ));
                }
            }
        }
        Ok(TrustedProxies { nets })
    }

    /// No trusted proxies: the TCP peer is always the client, and
    /// `X-Forwarded-For` is ignored.
    pub fn none() -> TrustedProxies {
        TrustedProxies { nets: Vec::new() }
    }

    /// Whether `ip` lies in one of the trusted ranges. An IPv4-mapped IPv6
    /// address (`::ffff:a.b.c.d`) is compared as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address: the TCP peer, unless the peer is a trusted proxy;
    /// then the right-most entry of `X-Forwarded-For` that is not itself
    /// trusted, walking right to left over all the header's values in the
    /// order received (each split on commas, entries trimmed of spaces).
    ///
    /// The values are taken as bytes (a `&str`, a `&[u8]` or an actix
    /// `HeaderValue`), and each entry is judged on its own: a byte that is
    /// not ASCII spoils only the entry it is in, never the entries right of
    /// it, which the trusted proxies appended.
    ///
    /// * If every entry is trusted, the left-most one.
    /// * Empty entries (an empty header, `a,,b`) are skipped.
    /// * An entry with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`) counts as
    ///   its address; a bracketed IPv6 address without a port is accepted.
    /// * Any other entry that is not an IP address (`unknown`, garbage, a
    ///   byte that is not ASCII) stops the walk, and the last trusted hop
    ///   seen (the peer, if no entry was read) is returned: never an address
    ///   taken from left of, or out of, an unparsable entry.
    ///
    /// The result is canonical: IPv4-mapped IPv6 addresses come back as IPv4.
    pub fn client_ip<I>(&self, peer: IpAddr, x_forwarded_for: I) -> IpAddr
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        let mut last_trusted = peer.to_canonical();
        if !self.contains(last_trusted) {
            return last_trusted;
        }
        let values: Vec<I::Item> = x_forwarded_for.into_iter().collect();
        let entries = values
            .iter()
            .rev()
            .flat_map(|value| value.as_ref().rsplit(|b| *b == b','))
            .map(trim_blanks)
            .filter(|entry| !entry.is_empty());
        for entry in entries {
            let Some(ip) = parse_entry(entry) else {
                break;
            };
            let ip = ip.to_canonical();
            if !self.contains(ip) {
                return ip;
            }
            last_trusted = ip;
        }
        last_trusted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    #[test]
    fn parse_accepts_cidrs_and_bare_addresses() {
        let p = proxies(&["10.0.0.0/8", " 192.0.2.10 ", "::1", "2001:db8::/32"]);
        assert!(p.contains(ip("10.255.1.2")));
        assert!(p.contains(ip("192.0.2.10")));
        assert!(!p.contains(ip("192.0.2.11")));
        assert!(p.contains(ip("::1")));
        assert!(!p.contains(ip("::2")));
        assert!(p.contains(ip("2001:db8:ffff::1")));
        assert!(!p.contains(ip("2001:db9::1")));
        assert!(!p.contains(ip("11.0.0.1")));
        assert_eq!(
            p.to_string(),
            "10.0.0.0/8, 192.0.2.10/32, ::1/128, 2001:db8::/32"
        );
    }

    #[test]
    fn parse_clears_host_bits() {
        let p = proxies(&["10.1.2.3/8"]);
        assert!(p.contains(ip("10.200.0.1")));
        assert_eq!(p.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn parse_accepts_empty_list_and_strings() {
        let empty: [&str; 0] = [];
        assert_eq!(
            TrustedProxies::parse(&empty).unwrap(),
            TrustedProxies::none()
        );
        let owned = vec![String::from("127.0.0.1")];
        assert!(TrustedProxies::parse(&owned)
            .unwrap()
            .contains(ip("127.0.0.1")));
    }

    #[test]
    fn parse_errors_name_the_bad_entry() {
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "not-an-ip",
            "",
            "  ",
            "::1/129",
            "10.0.0.1:80",
            "10.0.0.0/-1",
            "10.0.0.0/",
        ] {
            let err = TrustedProxies::parse(&["127.0.0.1", bad]).unwrap_err();
            assert!(err.contains("entry 2"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("10.0.0.0/8"), "{err}");
        }
    }

    #[test]
    fn contains_compares_mapped_ipv4_as_ipv4() {
        let p = proxies(&["10.0.0.0/8"]);
        assert!(p.contains(ip("::ffff:10.1.2.3")));
        assert!(!p.contains(ip("::ffff:11.1.2.3")));
        // A trusted range written as mapped IPv6 matches plain IPv4 too.
        let mapped = proxies(&["::ffff:192.0.2.0/120"]);
        assert!(mapped.contains(ip("192.0.2.77")));
        assert!(mapped.contains(ip("::ffff:192.0.2.77")));
        assert!(!mapped.contains(ip("192.0.3.1")));
        assert_eq!(mapped.to_string(), "192.0.2.0/24");
        // A mapped range shorter than /96 stays an IPv6 range.
        let wide = proxies(&["::ffff:0:0/95"]);
        assert_eq!(wide.to_string(), "::fffe:0:0/95");
    }

    #[test]
    fn none_trusts_nobody() {
        let p = TrustedProxies::none();
        assert!(!p.contains(ip("127.0.0.1")));
        assert!(!p.contains(ip("::1")));
        assert_eq!(p.client_ip(ip("10.0.0.1"), ["1.2.3.4"]), ip("10.0.0.1"));
    }

    #[test]
    fn untrusted_peer_cannot_spoof() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("198.51.100.20");
        assert_eq!(p.client_ip(peer, ["1.2.3.4"]), peer);
        assert_eq!(p.client_ip(peer, ["10.0.0.1"]), peer);
        assert_eq!(p.client_ip(peer, ["1.2.3.4", "5.6.7.8, 9.9.9.9"]), peer);
    }

    #[test]
    fn trusted_chain_gives_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        // client -> proxy2 (10.0.0.2) -> proxy1 (10.0.0.1, our peer).
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["203.0.113.7, 10.0.0.2"]),
            ip("203.0.113.7")
        );
        // A single proxy that appended the client.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn prepended_fake_entries_are_ignored() {
        let p = proxies(&["10.0.0.0/8"]);
        // The attacker sent "X-Forwarded-For: 6.6.6.6"; our proxy appended
        // the real address it saw.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["6.6.6.6, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Even when the fake entry claims to be a trusted proxy.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["10.9.9.9, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Or when the attacker sent its own header line.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["6.6.6.6", "203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn several_header_lines_are_walked_in_order() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        assert_eq!(
            p.client_ip(peer, ["1.1.1.1, 203.0.113.5", "10.0.0.3,10.0.0.2"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            p.client_ip(peer, ["203.0.113.5", "10.0.0.3", " 10.0.0.2 "]),
            ip("203.0.113.5")
        );
        // The last line is the right-most: its untrusted entry wins.
        assert_eq!(
            p.client_ip(peer, ["203.0.113.5", "198.51.100.1"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn all_trusted_gives_the_left_most() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["10.0.0.9, 10.0.0.8", "10.0.0.7"]),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn empty_or_missing_header_gives_the_peer() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        let none: [&str; 0] = [];
        assert_eq!(p.client_ip(peer, none), peer);
        assert_eq!(p.client_ip(peer, [""]), peer);
        assert_eq!(p.client_ip(peer, ["  ", " , ,"]), peer);
        // Empty entries are skipped, not fatal.
        assert_eq!(p.client_ip(peer, [", 203.0.113.7,"]), ip("203.0.113.7"));
        assert_eq!(
            p.client_ip(peer, ["203.0.113.7,,10.0.0.2"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, ["garbage"]), peer);
        assert_eq!(p.client_ip(peer, ["unknown"]), peer);
        assert_eq!(p.client_ip(peer, ["203.0.113.7, unknown"]), peer);
        assert_eq!(
            p.client_ip(peer, ["203.0.113.7, garbage, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            p.client_ip(peer, ["203.0.113.7", "1.2.3", "10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(p.client_ip(peer, ["fe80::1%eth0"]), peer);
        assert_eq!(p.client_ip(peer, ["1.2.3.4:99999"]), peer);
        assert_eq!(p.client_ip(peer, ["[1.2.3.4]"]), peer);
        assert_eq!(p.client_ip(peer, ["\u{0}\u{ffff}"]), peer);
        assert_eq!(p.client_ip(peer, ["1.2.3.4 5.6.7.8"]), peer);
        // An untrusted entry right of the garbage is still taken.
        assert_eq!(
            p.client_ip(peer, ["garbage, 203.0.113.7"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_byte_that_is_not_ascii_spoils_only_its_own_entry() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        // The client sent a header with a Latin-1 byte in it; our proxy appended the address
        // it saw. The client's entry is skipped over, never the proxy's.
        let forged: &[u8] = b"\xe9vil, 203.0.113.7";
        assert_eq!(p.client_ip(peer, [forged]), ip("203.0.113.7"));
        let in_an_address: &[u8] = b"6.6.6.\xff6,203.0.113.7";
        assert_eq!(p.client_ip(peer, [in_an_address]), ip("203.0.113.7"));
        // UTF-8, on a line of its own, or behind a second trusted hop: the same.
        assert_eq!(
            p.client_ip(peer, ["\u{e9}vil", "203.0.113.7, 10.0.0.2"]),
            ip("203.0.113.7")
        );
        let lines: [&[u8]; 2] = [b"\x80\xff", b"203.0.113.7"];
        assert_eq!(p.client_ip(peer, lines), ip("203.0.113.7"));
        // Right of the last trusted hop, it stops the walk there, like any garbage.
        let spoiled_right: &[u8] = b"203.0.113.7, \xe9vil, 10.0.0.2";
        assert_eq!(p.client_ip(peer, [spoiled_right]), ip("10.0.0.2"));
        let only: &[u8] = b"\xe9";
        assert_eq!(p.client_ip(peer, [only]), peer);
        // Nothing from inside a spoiled entry is taken.
        let glued: &[u8] = b"203.0.113.7\xa0";
        assert_eq!(p.client_ip(peer, [glued]), peer);
        assert_eq!(parse_entry(b"203.0.113.7\xa0"), None);
        assert_eq!(parse_entry("\u{ff11}.2.3.4".as_bytes()), None);
    }

    #[test]
    fn entries_are_trimmed_of_spaces_and_tabs_only() {
        let p = proxies(&["10.0.0.0/8"]);
        let peer = ip("10.0.0.1");
        assert_eq!(
            p.client_ip(peer, ["\t203.0.113.7 \t, \t10.0.0.2\t"]),
            ip("203.0.113.7")
        );
        assert_eq!(trim_blanks(b" \t a b\t "), b"a b");
        assert_eq!(trim_blanks(b" \t "), b"");
        assert_eq!(trim_blanks(b""), b"");
    }

    #[test]
    fn header_values_are_accepted_as_they_come() {
        use actix_web::http::header::HeaderValue;
        let p = proxies(&["10.0.0.0/8"]);
        let values = [
            HeaderValue::from_bytes(b"\xe9vil").unwrap(),
            HeaderValue::from_static("203.0.113.7"),
        ];
        assert_eq!(p.client_ip(ip("10.0.0.1"), &values), ip("203.0.113.7"));
    }

    #[test]
    fn ports_are_stripped() {
        let p = proxies(&["10.0.0.0/8", "2001:db8::/32"]);
        let peer = ip("10.0.0.1");
        assert_eq!(p.client_ip(peer, ["1.2.3.4:5678"]), ip("1.2.3.4"));
        assert_eq!(p.client_ip(peer, ["[2001:db9::1]:80"]), ip("2001:db9::1"));
        assert_eq!(p.client_ip(peer, ["[2001:db9::1]"]), ip("2001:db9::1"));
        // A trusted hop with a port is still trusted.
        assert_eq!(
            p.client_ip(peer, ["198.51.100.3, 10.0.0.2:443"]),
            ip("198.51.100.3")
        );
        assert_eq!(parse_entry(b"[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_entry(b"::1"), Some(ip("::1")));
        assert_eq!(parse_entry(b"[::1"), None);
        assert_eq!(parse_entry(b"::1]"), None);
        assert_eq!(parse_entry(b"[]"), None);
    }

    #[test]
    fn ipv6_chains() {
        let p = proxies(&["2001:db8:a::/48", "::1"]);
        assert_eq!(
            p.client_ip(ip("::1"), ["2001:db8:b::7, 2001:db8:a::2"]),
            ip("2001:db8:b::7")
        );
        assert_eq!(
            p.client_ip(ip("2001:db8:b::1"), ["2001:db8:c::7"]),
            ip("2001:db8:b::1")
        );
        // Mixed families.
        assert_eq!(
            p.client_ip(ip("::1"), ["192.0.2.44, 2001:db8:a::9"]),
            ip("192.0.2.44")
        );
    }

    #[test]
    fn mapped_ipv4_peers_and_entries() {
        let p = proxies(&["10.0.0.0/8"]);
        // A dual-stack socket reports the proxy as ::ffff:10.0.0.1.
        assert_eq!(
            p.client_ip(ip("::ffff:10.0.0.1"), ["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Mapped entries are trusted as their IPv4 form and returned as IPv4.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), ["::ffff:203.0.113.7, ::ffff:10.0.0.2"]),
            ip("203.0.113.7")
        );
        // An untrusted mapped peer is returned as IPv4.
        assert_eq!(
            p.client_ip(ip("::ffff:198.51.100.1"), ["1.2.3.4"]),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn long_headers_do_not_panic() {
        let p = proxies(&["10.0.0.0/8"]);
        let long = vec!["10.0.0.5"; 10_000].join(",");
        assert_eq!(p.client_ip(ip("10.0.0.1"), [long.as_str()]), ip("10.0.0.5"));
        let junk = ",".repeat(100_000);
        assert_eq!(p.client_ip(ip("10.0.0.1"), [junk.as_str()]), ip("10.0.0.1"));
    }

    #[test]
    fn accepts_owned_header_values() {
        let p = proxies(&["10.0.0.0/8"]);
        let values = [String::from("6.6.6.6"), String::from("203.0.113.7")];
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), values.iter().map(String::as_str)),
            ip("203.0.113.7")
        );
    }
}
