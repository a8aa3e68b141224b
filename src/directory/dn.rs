//! Distinguished names in their string form (RFC 4514).
//!
//! Used to check DNs in the configuration before the directory ever sees them. Values that
//! come from users never pass through here: they are escaped with `ldap3::dn_escape`.

use std::fmt;

/// Why a string is not a DN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnError {
    /// Byte offset of the problem.
    pub at: usize,
    /// What is wrong there.
    pub what: &'static str,
}

impl fmt::Display for DnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.what, self.at + 1)
    }
}

/// Check that `s` is a non-empty DN: `type=value` pairs separated by `,` (or `+` within one
/// RDN), types as names or numeric OIDs, values with special characters escaped.
/// Spaces around `,` and `=` are tolerated, as most servers accept them.
pub fn validate(s: &str) -> Result<(), DnError> {
    let bytes = s.as_bytes();
    if s.trim().is_empty() {
        return Err(DnError {
            at: 0,
            what: "the DN is empty",
        });
    }
    let mut i = 0;
    loop {
        i = skip_spaces(bytes, i);
        i = attribute_type(bytes, i)?;
        i = skip_spaces(bytes, i);
        if bytes.get(i) != Some(&b'=') {
            return Err(DnError {
                at: i,
                what: "'=' expected after the attribute type",
            });
        }
        i = skip_spaces(bytes, i + 1);
        i = attribute_value(bytes, i)?;
        match bytes.get(i) {
            None => return Ok(()),
            Some(b',') | Some(b'+') => i += 1,
            Some(_) => {
                return Err(DnError {
                    at: i,
                    what: "',' or '+' expected after a value",
                })
            }
        }
    }
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

fn attribute_type(b: &[u8], start: usize) -> Result<usize, DnError> {
    let mut i = start;
    match b.get(i) {
        Some(c) if c.is_ascii_alphabetic() => {
            while b
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'-')
            {
                i += 1;
            }
        }
        Some(c) if c.is_ascii_digit() => {
            while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'.') {
                i += 1;
            }
            if b.get(i - 1) == Some(&b'.') {
                return Err(DnError {
                    at: i - 1,
                    what: "a numeric OID may not end with '.'",
                });
            }
        }
        _ => {
            return Err(DnError {
                at: start,
                what: "an attribute type (such as cn, ou, dc) expected",
            })
        }
    }
    Ok(i)
}

/// The value up to the next unescaped `,` or `+`, with trailing spaces allowed before it.
fn attribute_value(b: &[u8], start: usize) -> Result<usize, DnError> {
    let mut i = start;
    if b.get(i) == Some(&b'#') {
        // hexstring form: '#' followed by pairs of hex digits
        i += 1;
        let hex_start = i;
        while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
        if i == hex_start || (i - hex_start) % 2 != 0 {
            return Err(DnError {
                at: hex_start,
                what: "a '#' value needs an even number of hex digits",
            });
        }
        return Ok(skip_spaces(b, i));
    }
    let mut empty = true;
    while let Some(&c) = b.get(i) {
        match c {
            b',' | b'+' => break,
            b'\\' => {
                match (b.get(i + 1), b.get(i + 2)) {
                    (Some(h), Some(l)) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => i += 3,
                    (Some(c), _) if b" \"#+,;<=>\\".contains(c) => i += 2,
                    _ => {
                        return Err(DnError {
                            at: i,
                            what: "'\\' must be followed by a special character or two hex digits",
                        })
                    }
                }
                empty = false;
            }
            b'"' | b';' | b'<' | b'>' | b'=' | 0 => {
                return Err(DnError {
                    at: i,
                    what: "this character must be escaped with '\\' in a value",
                })
            }
            _ => {
                i += 1;
                empty = c == b' ' && empty;
            }
        }
    }
    if empty {
        return Err(DnError {
            at: start,
            what: "the value is empty",
        });
    }
    Ok(i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_dns_are_valid() {
        for dn in [
            "dc=example,dc=org",
            "uid=alice,ou=people,dc=example,dc=org",
            "cn=Smith\\, John,ou=people,dc=example,dc=org",
            "cn=a\\2cb,dc=org",
            "ou=people, dc=example, dc=org",
            "cn=x+uid=y,dc=org",
            "2.5.4.3=x,dc=org",
            "cn=#0403616263,dc=org",
            "cn=dreßler,dc=org",
            "CN=Nested,OU=Groups,DC=corp,DC=example",
        ] {
            assert_eq!(validate(dn), Ok(()), "{dn}");
        }
    }

    #[test]
    fn broken_dns_say_where() {
        let cases = [
            ("", 0, "the DN is empty"),
            ("people", 6, "'=' expected after the attribute type"),
            (
                "ou=people,",
                10,
                "an attribute type (such as cn, ou, dc) expected",
            ),
            ("ou=,dc=org", 3, "the value is empty"),
            (
                "cn=a=b,dc=org",
                4,
                "this character must be escaped with '\\' in a value",
            ),
            (
                "cn=a\\x,dc=org",
                4,
                "'\\' must be followed by a special character or two hex digits",
            ),
            (
                "cn=#abc,dc=org",
                4,
                "a '#' value needs an even number of hex digits",
            ),
            ("=x", 0, "an attribute type (such as cn, ou, dc) expected"),
            ("2.5.=x", 3, "a numeric OID may not end with '.'"),
        ];
        for (dn, at, what) in cases {
            assert_eq!(validate(dn), Err(DnError { at, what }), "{dn}");
        }
    }

    #[test]
    fn an_escaped_login_in_a_template_stays_one_value() {
        for login in [
            "a,b",
            "x+y",
            "#hash",
            " lead",
            "trail ",
            "q\"uote",
            "semi;colon",
            "back\\slash",
            "nul\0",
        ] {
            let dn = format!("uid={},ou=people,dc=org", ldap3::dn_escape(login));
            assert_eq!(validate(&dn), Ok(()), "{dn}");
            assert_eq!(dn.matches(",ou=people").count(), 1, "{dn}");
        }
    }
}
