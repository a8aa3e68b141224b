//! Distinguished names in their string form (RFC 4514).
//!
//! [`validate`] checks DNs in the configuration before the directory ever sees them.
//! [`parse`], [`normalize`] and [`Dn`] let group resolution compare DNs that the server returns
//! (member and memberOf values, group entry DNs) with each other and with configured base DNs.
//! Values that come from users never pass through here: they are escaped with
//! `ldap3::dn_escape`.
//!
//! None of these functions panics, whatever the input.
//!
//! # Syntax
//!
//! A DN is a list of RDNs separated by `,`, most specific first; an RDN is one or more
//! `type=value` pairs (AVAs) joined by `+`. A type is a name (a letter, then letters, digits and
//! `-`), a numeric OID such as `2.5.4.3`, or a numeric OID written with an `oid.` prefix
//! (`OID.2.5.4.3`). A value is either a string, where `\` followed by one of
//! `` "#+,;<=>\`` or by a space stands for that character and `\` followed by two hex digits
//! stands for one byte (consecutive bytes must form UTF-8), or `#` followed by an even number of
//! hex digits (a BER encoding, kept as text). Spaces (U+0020) around `,`, `+` and `=` are
//! tolerated: leading spaces of a value are skipped and its unescaped trailing spaces dropped.
//! A string made only of spaces, or the empty string, is the empty DN (the root, no RDNs).
//!
//! [`parse`] follows RFC 4514: it accepts empty values (`cn=`) and unescaped `=` in values.
//! [`validate`], meant for hand-written configuration, is stricter: it also rejects those, and
//! the empty DN.
//!
//! # Normalised form
//!
//! [`Dn::normalized`] and [`normalize`] give the form in which two DNs that name the same entry
//! are equal as strings:
//!
//! - Attribute types are lowercased. The `oid.` prefix is dropped. The numeric OIDs and long
//!   names of the common naming attributes become their short names: `2.5.4.3` and `commonName`
//!   give `cn`; `2.5.4.11`, `organizationalUnitName` give `ou`; `2.5.4.10`,
//!   `organizationName` give `o`; `2.5.4.6`, `countryName` give `c`; `2.5.4.7`,
//!   `localityName` give `l`; `2.5.4.8`, `stateOrProvinceName` give `st`; `2.5.4.9`,
//!   `streetAddress` give `street`; `0.9.2342.19200300.100.1.25`, `domainComponent` give `dc`;
//!   `0.9.2342.19200300.100.1.1`, `userid` give `uid`.
//! - Values are compared the way caseIgnoreMatch compares them, whatever the attribute (this
//!   covers the naming attributes of real directories): unescaped, with leading and trailing
//!   whitespace removed, each inner run of whitespace made one space, and lowercased with
//!   [`str::to_lowercase`]. A `#hex` value is compared as its lowercase hex text.
//! - The AVAs of a multi-valued RDN are sorted by (type, value) after the above, and repeated
//!   AVAs are kept once, since an RDN is a set.
//! - RDNs are joined with `,` and AVAs with `+`, without spaces; each value is escaped as
//!   RFC 4514 section 2.4 says: `"` `+` `,` `;` `<` `>` `\` anywhere, `#` or a space at the
//!   start, a space at the end, each with a `\` before it, and NUL as `\00`.
//!
//! The normalised form parses again and normalising it changes nothing.
//!
//! Known limits: a `#hex` value and a string value made of the same text (`cn=#41` and
//! `cn=\#41`) compare equal, as [`Ava`] does not tell them apart; the normalised form writes
//! both as a string (`cn=\#41`). Unicode normalisation (NFC) is not applied, so a precomposed
//! `é` and `e` followed by a combining accent differ.

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

impl std::error::Error for DnError {}

/// One attribute type and value of an RDN, as parsed: the type as written, the value unescaped.
///
/// A value written in the `#hex` (BER) form is held as the text `#` followed by the hex digits
/// in lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type as written, such as `CN`, `2.5.4.3` or `OID.2.5.4.3`.
    pub attr: String,
    /// The value with its escapes resolved and its unescaped trailing spaces dropped.
    pub value: String,
}

/// A parsed DN: RDNs from left (most specific) to right, each with one or more AVAs.
///
/// `==` compares DNs as written; use [`Dn::normalized`] or [`Dn::is_within`] to compare them
/// as the directory does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn {
    /// The RDNs, most specific first; empty for the root DN.
    pub rdns: Vec<Vec<Ava>>,
}

impl Dn {
    /// The canonical string form used for comparison (see the module documentation for the
    /// rules). For a `Dn` that came from [`parse`], the result parses again to a `Dn` with the
    /// same normalised form.
    pub fn normalized(&self) -> String {
        let mut out = String::new();
        for (n, rdn) in self.rdns.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&normalized_rdn(rdn));
        }
        out
    }

    /// The value of the first AVA of the first (leftmost) RDN whose type is `attr`, unescaped
    /// as parsed: `Sales, EMEA` for `attr` `cn` in `cn=Sales\, EMEA,ou=groups,dc=example,dc=org`.
    /// Types are compared without regard to case, and the aliases and numeric OIDs of the
    /// module documentation count as their short names. `None` if the first RDN has no AVA of
    /// that type, or the DN is the root.
    pub fn leaf_value(&self, attr: &str) -> Option<&str> {
        let wanted = canonical_type(attr);
        self.rdns
            .first()?
            .iter()
            .find(|ava| canonical_type(&ava.attr) == wanted)
            .map(|ava| ava.value.as_str())
    }

    /// Whether `self` equals `base` or lies below it: the last RDNs of `self` equal, once
    /// normalised, all the RDNs of `base`. Every DN lies within the root (empty) DN.
    pub fn is_within(&self, base: &Dn) -> bool {
        if base.rdns.len() > self.rdns.len() {
            return false;
        }
        self.rdns
            .iter()
            .rev()
            .zip(base.rdns.iter().rev())
            .all(|(mine, theirs)| normalized_rdn(mine) == normalized_rdn(theirs))
    }
}

/// Parse `s` as an RFC 4514 DN, tolerating spaces around `,`, `+` and `=` as [`validate`] does.
///
/// Values are unescaped: `\,`-style escapes give the character, `\XX` hex pairs give bytes, and
/// consecutive bytes must form UTF-8 (otherwise the error points at the first bad escape). A
/// value written `#hex` (BER) is kept as the text `#` followed by the hex digits lowercased.
/// Unescaped trailing spaces of a value are dropped; escaped ones (`\ ` or `\20`) are kept.
/// Empty values (`cn=`) are accepted, as RFC 4514 allows them. An empty string, or one made of
/// spaces only, is the root DN with no RDNs.
pub fn parse(s: &str) -> Result<Dn, DnError> {
    parse_with(s, false)
}

/// The DN a `directory.users.dn_template` gives for `login`: every `{login}` replaced by the
/// login escaped as one RDN value (RFC 4514), so a login cannot add or change RDNs.
pub fn from_template(template: &str, login: &str) -> String {
    template.replace("{login}", &ldap3::dn_escape(login))
}

/// The normalised form of the DN `s`: `parse(s)?.normalized()`.
pub fn normalize(s: &str) -> Result<String, DnError> {
    Ok(parse(s)?.normalized())
}

/// Check that `s` is a non-empty DN: `type=value` pairs separated by `,` (or `+` within one
/// RDN), types as names or numeric OIDs, values with special characters escaped.
/// Spaces around `,` and `=` are tolerated, as most servers accept them.
///
/// Stricter than [`parse`], as suits configuration written by hand: the DN, and each value,
/// must not be empty, and `=` in a value must be escaped. A DN that passes also parses.
pub fn validate(s: &str) -> Result<(), DnError> {
    if s.trim().is_empty() {
        return Err(DnError {
            at: 0,
            what: "the DN is empty",
        });
    }
    parse_with(s, true).map(|_| ())
}

const TYPE_EXPECTED: &str = "an attribute type (such as cn, ou, dc) expected";
const EQUALS_EXPECTED: &str = "'=' expected after the attribute type";
const OID_TRAILING_DOT: &str = "a numeric OID may not end with '.'";
const OID_DOUBLE_DOT: &str = "a numeric OID may not have two '.' in a row";
const SEPARATOR_EXPECTED: &str = "',' or '+' expected after a value";
const BAD_HEX_VALUE: &str = "a '#' value needs an even number of hex digits";
const BAD_ESCAPE: &str = "'\\' must be followed by a special character or two hex digits";
const MUST_ESCAPE: &str = "this character must be escaped with '\\' in a value";
const EMPTY_VALUE: &str = "the value is empty";
const BAD_UTF8: &str = "the escaped bytes are not valid UTF-8";

/// The characters that may follow `\` to stand for themselves.
const ESCAPABLE: &[u8] = b" \"#+,;<=>\\";

/// The parser behind [`parse`] and [`validate`]; `strict` adds the checks of [`validate`]
/// (no empty value, no unescaped `=`).
fn parse_with(s: &str, strict: bool) -> Result<Dn, DnError> {
    let b = s.as_bytes();
    if b.iter().all(|&c| c == b' ') {
        return Ok(Dn { rdns: Vec::new() });
    }
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut i = 0;
    loop {
        i = skip_spaces(b, i);
        let type_start = i;
        i = attribute_type(b, i)?;
        let attr = s.get(type_start..i).unwrap_or_default().to_string();
        i = skip_spaces(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(DnError {
                at: i,
                what: EQUALS_EXPECTED,
            });
        }
        i = skip_spaces(b, i + 1);
        let (value, next) = attribute_value(b, i, strict)?;
        rdn.push(Ava { attr, value });
        i = next;
        match b.get(i) {
            None => {
                rdns.push(rdn);
                return Ok(Dn { rdns });
            }
            Some(b',') => rdns.push(std::mem::take(&mut rdn)),
            Some(b'+') => {}
            Some(_) => {
                return Err(DnError {
                    at: i,
                    what: SEPARATOR_EXPECTED,
                })
            }
        }
        i += 1;
    }
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    i
}

/// The end of the attribute type that starts at `start`.
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
            let oid_prefix = b
                .get(start..i)
                .is_some_and(|word| word.eq_ignore_ascii_case(b"oid"))
                && b.get(i) == Some(&b'.')
                && b.get(i + 1).is_some_and(u8::is_ascii_digit);
            if oid_prefix {
                return numeric_oid(b, i + 1);
            }
            Ok(i)
        }
        Some(c) if c.is_ascii_digit() => numeric_oid(b, i),
        _ => Err(DnError {
            at: start,
            what: TYPE_EXPECTED,
        }),
    }
}

/// The end of the numeric OID that starts, with a digit, at `start`.
fn numeric_oid(b: &[u8], start: usize) -> Result<usize, DnError> {
    let mut i = start;
    let mut after_dot = false;
    while let Some(&c) = b.get(i) {
        if c == b'.' {
            if after_dot {
                return Err(DnError {
                    at: i,
                    what: OID_DOUBLE_DOT,
                });
            }
            after_dot = true;
        } else if c.is_ascii_digit() {
            after_dot = false;
        } else {
            break;
        }
        i += 1;
    }
    if after_dot {
        return Err(DnError {
            at: i.saturating_sub(1),
            what: OID_TRAILING_DOT,
        });
    }
    Ok(i)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Parse the value that starts at `start` (leading spaces already skipped). Returns the value
/// and the position after it: the end, or a `,` or `+` (or, after a `#hex` value, whatever
/// follows it and its trailing spaces).
fn attribute_value(b: &[u8], start: usize, strict: bool) -> Result<(String, usize), DnError> {
    if b.get(start) == Some(&b'#') {
        let hex_start = start + 1;
        let mut i = hex_start;
        while b.get(i).is_some_and(u8::is_ascii_hexdigit) {
            i += 1;
        }
        if i == hex_start || (i - hex_start) % 2 != 0 {
            return Err(DnError {
                at: hex_start,
                what: BAD_HEX_VALUE,
            });
        }
        let hex = b.get(hex_start..i).unwrap_or_default();
        let mut value = String::with_capacity(hex.len() + 1);
        value.push('#');
        value.extend(hex.iter().map(|c| char::from(c.to_ascii_lowercase())));
        return Ok((value, skip_spaces(b, i)));
    }

    // The bytes of the value, and for each the offset where it was written.
    let mut bytes = Vec::new();
    let mut origin = Vec::new();
    // How many bytes to keep: up to the last one that is not an unescaped space.
    let mut keep = 0;
    let mut i = start;
    while let Some(&c) = b.get(i) {
        match c {
            b',' | b'+' => break,
            b'\\' => {
                origin.push(i);
                let hi = b.get(i + 1).copied();
                let lo = b.get(i + 2).copied();
                if let (Some(h), Some(l)) = (hi.and_then(hex_digit), lo.and_then(hex_digit)) {
                    bytes.push((h << 4) | l);
                    i += 3;
                } else if let Some(e) = hi.filter(|e| ESCAPABLE.contains(e)) {
                    bytes.push(e);
                    i += 2;
                } else {
                    return Err(DnError {
                        at: i,
                        what: BAD_ESCAPE,
                    });
                }
                keep = bytes.len();
            }
            b'"' | b';' | b'<' | b'>' | 0 => {
                return Err(DnError {
                    at: i,
                    what: MUST_ESCAPE,
                })
            }
            b'=' if strict => {
                return Err(DnError {
                    at: i,
                    what: MUST_ESCAPE,
                })
            }
            _ => {
                bytes.push(c);
                origin.push(i);
                if c != b' ' {
                    keep = bytes.len();
                }
                i += 1;
            }
        }
    }
    bytes.truncate(keep);
    if strict && bytes.is_empty() {
        return Err(DnError {
            at: start,
            what: EMPTY_VALUE,
        });
    }
    match String::from_utf8(bytes) {
        Ok(value) => Ok((value, i)),
        Err(e) => Err(DnError {
            at: origin
                .get(e.utf8_error().valid_up_to())
                .copied()
                .unwrap_or(start),
            what: BAD_UTF8,
        }),
    }
}

/// The attribute type in normalised form: lowercase, without an `oid.` prefix, and with the
/// common naming attributes under their short names.
fn canonical_type(attr: &str) -> String {
    let lower = attr.to_lowercase();
    let bare = match lower.strip_prefix("oid.") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest,
        _ => lower.as_str(),
    };
    let short = match bare {
        "2.5.4.3" | "commonname" => "cn",
        "2.5.4.11" | "organizationalunitname" => "ou",
        "2.5.4.10" | "organizationname" => "o",
        "2.5.4.6" | "countryname" => "c",
        "2.5.4.7" | "localityname" => "l",
        "2.5.4.8" | "stateorprovincename" => "st",
        "2.5.4.9" | "streetaddress" => "street",
        "0.9.2342.19200300.100.1.25" | "domaincomponent" => "dc",
        "0.9.2342.19200300.100.1.1" | "userid" => "uid",
        other => other,
    };
    short.to_string()
}

/// The value in normalised form: lowercase, whitespace trimmed and inner runs made one space.
fn canonical_value(value: &str) -> String {
    let lower = value.to_lowercase();
    let mut out = String::with_capacity(lower.len());
    for word in lower.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// One RDN in normalised form, AVAs sorted and joined with `+`.
fn normalized_rdn(rdn: &[Ava]) -> String {
    let mut avas: Vec<(String, String)> = rdn
        .iter()
        .map(|ava| (canonical_type(&ava.attr), canonical_value(&ava.value)))
        .collect();
    avas.sort();
    avas.dedup();
    let mut out = String::new();
    for (n, (attr, value)) in avas.iter().enumerate() {
        if n > 0 {
            out.push('+');
        }
        out.push_str(attr);
        out.push('=');
        escape_value(value, &mut out);
    }
    out
}

/// Append `value` to `out`, escaped as RFC 4514 section 2.4 says.
fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (n, c) in value.chars().enumerate() {
        match c {
            '\0' => out.push_str("\\00"),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if n == 0 => out.push_str("\\#"),
            ' ' if n == 0 || n == last => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_template_login_stays_one_rdn_value() {
        let template = "uid={login},ou=people,dc=example,dc=org";
        assert_eq!(
            from_template(template, "alice"),
            "uid=alice,ou=people,dc=example,dc=org"
        );
        let login = "x,ou=admins+cn=root\\ ";
        let hostile = from_template(template, login);
        assert_eq!(
            hostile,
            "uid=x\\2cou\\3dadmins\\2bcn\\3droot\\5c\\20,ou=people,dc=example,dc=org"
        );
        let parsed = parse(&hostile).unwrap();
        assert_eq!(parsed.rdns.len(), 4);
        assert_eq!(parsed.rdns[0].len(), 1);
        assert_eq!(parsed.rdns[0][0].attr, "uid");
        assert_eq!(parsed.rdns[0][0].value, login);
    }

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

    fn norm(s: &str) -> String {
        match normalize(s) {
            Ok(n) => n,
            Err(e) => panic!("{s:?} does not parse: {e}"),
        }
    }

    fn dn(s: &str) -> Dn {
        match parse(s) {
            Ok(d) => d,
            Err(e) => panic!("{s:?} does not parse: {e}"),
        }
    }

    fn same(a: &str, b: &str) {
        assert_eq!(norm(a), norm(b), "{a:?} vs {b:?}");
    }

    fn ava(attr: &str, value: &str) -> Ava {
        Ava {
            attr: attr.to_string(),
            value: value.to_string(),
        }
    }

    #[test]
    fn case_escapes_spaces_and_order_do_not_matter() {
        same(
            "CN=Nested,OU=Groups,DC=Example,DC=org",
            "cn=nested,ou=groups,dc=example,dc=org",
        );
        same("cn=Sales\\, EMEA,ou=g", "cn=Sales\\2C EMEA,ou=g");
        same("cn=Sales\\, EMEA,ou=g", "cn = sales\\2c emea , ou=g");
        same("cn=a+uid=b", "uid=b+cn=a");
        same("CN=A + UID=b,dc=org", "uid=B+cn=a, DC=ORG");
        same(
            "UID=Dreßler,OU=People,DC=Example,DC=Org",
            "uid=dreßler,ou=people,dc=example,dc=org",
        );
        same("cn=a\\2Bb", "cn=a\\+b");
        same("cn=\\23x", "cn=\\#x");
        same("cn=Gr\\C3\\B6\\C3\\9Fe", "cn=größe");
        same("cn=GRÖSSE", "cn=grösse");
        same("2.5.4.3=x,dc=org", "cn=X,DC=org");
        same(
            "OID.2.5.4.3=x,oid.0.9.2342.19200300.100.1.25=org",
            "cn=x,dc=org",
        );
        same("cn=  Foo \t  Bar  ,dc=org", "cn=foo bar,dc=org");
        same("cn=\\20foo\\20,dc=org", "cn=foo,dc=org");
    }

    #[test]
    fn different_dns_stay_different() {
        for (a, b) in [
            ("cn=a,dc=org", "cn=b,dc=org"),
            ("cn=a,dc=org", "uid=a,dc=org"),
            ("cn=a,dc=org", "cn=a,dc=com"),
            ("cn=a,dc=org", "cn=a"),
            ("cn=a+uid=b", "cn=a,uid=b"),
            ("cn=a\\,b", "cn=a,cn=b"),
            ("cn=foo bar", "cn=foobar"),
            ("cn=a\\+b", "cn=a+b=x"),
        ] {
            assert_ne!(norm(a), norm(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn normalized_form_is_exact() {
        for (input, want) in [
            (
                "CN=Nested,OU=Groups,DC=Example,DC=org",
                "cn=nested,ou=groups,dc=example,dc=org",
            ),
            ("cn=Sales\\2C EMEA , ou = G", "cn=sales\\, emea,ou=g"),
            ("UID=B+CN=a", "cn=a+uid=b"),
            ("commonName=X+userid=Y", "cn=x+uid=y"),
            ("organizationalUnitName=a,organizationName=b", "ou=a,o=b"),
            ("domainComponent=a,countryName=DE", "dc=a,c=de"),
            (
                "localityName=a,stateOrProvinceName=b,streetAddress=c",
                "l=a,st=b,street=c",
            ),
            ("2.5.4.11=a,2.5.4.10=b,2.5.4.6=c", "ou=a,o=b,c=c"),
            ("2.5.4.7=a,2.5.4.8=b,2.5.4.9=c", "l=a,st=b,street=c"),
            ("0.9.2342.19200300.100.1.1=A", "uid=a"),
            ("1.2.3.4=A,Description=B", "1.2.3.4=a,description=b"),
            ("OID.1.2.3=x", "1.2.3=x"),
            ("cn=#0403616263", "cn=\\#0403616263"),
            ("cn=#04AB", "cn=\\#04ab"),
            ("cn=\\#x", "cn=\\#x"),
            ("cn=a\\\"b\\;c\\<d\\>e\\\\f", "cn=a\\\"b\\;c\\<d\\>e\\\\f"),
            ("cn=\\00", "cn=\\00"),
            ("cn=a=b", "cn=a=b"),
            ("cn=", "cn="),
            ("cn=\\ ", "cn="),
            ("cn=a+cn=A", "cn=a"),
            ("", ""),
            ("   ", ""),
        ] {
            assert_eq!(norm(input), want, "{input:?}");
        }
    }

    #[test]
    fn parse_unescapes_values() {
        assert_eq!(
            dn("CN = Sales\\, EMEA ,OU=g+ uid=x\\ ,dc=#0A0b"),
            Dn {
                rdns: vec![
                    vec![ava("CN", "Sales, EMEA")],
                    vec![ava("OU", "g"), ava("uid", "x ")],
                    vec![ava("dc", "#0a0b")],
                ]
            }
        );
        assert_eq!(dn("cn=\\20a\\20").rdns, vec![vec![ava("cn", " a ")]]);
        assert_eq!(dn("cn=  a  b  ").rdns, vec![vec![ava("cn", "a  b")]]);
        assert_eq!(
            dn("OID.2.5.4.3=x").rdns,
            vec![vec![ava("OID.2.5.4.3", "x")]]
        );
        assert_eq!(
            dn("cn=Gr\\c3\\b6\\C3\\9Fe").rdns,
            vec![vec![ava("cn", "Größe")]]
        );
        assert_eq!(dn("cn=a\\00b").rdns, vec![vec![ava("cn", "a\0b")]]);
        assert_eq!(dn("cn=").rdns, vec![vec![ava("cn", "")]]);
        assert_eq!(dn("cn=,dc=org").rdns.len(), 2);
        assert_eq!(dn("").rdns, Vec::<Vec<Ava>>::new());
    }

    #[test]
    fn broken_dns_do_not_parse() {
        let cases = [
            ("=x", 0, TYPE_EXPECTED),
            ("cn=x,", 5, TYPE_EXPECTED),
            ("cn=x+", 5, TYPE_EXPECTED),
            ("cn=x\\", 4, BAD_ESCAPE),
            ("cn=x\\4", 4, BAD_ESCAPE),
            ("cn=x\\4g", 4, BAD_ESCAPE),
            ("cn=x\\q", 4, BAD_ESCAPE),
            ("cn", 2, EQUALS_EXPECTED),
            ("oid.x=y", 3, EQUALS_EXPECTED),
            ("2.5.=x", 3, OID_TRAILING_DOT),
            ("oid.2.=x", 5, OID_TRAILING_DOT),
            ("2..5=x", 2, OID_DOUBLE_DOT),
            ("cn=#", 4, BAD_HEX_VALUE),
            ("cn=#abc", 4, BAD_HEX_VALUE),
            ("cn=#ab x", 7, SEPARATOR_EXPECTED),
            ("cn=a;b", 4, MUST_ESCAPE),
            ("cn=a\"b", 4, MUST_ESCAPE),
            ("cn=<", 3, MUST_ESCAPE),
            ("cn=a\0", 4, MUST_ESCAPE),
            ("cn=ok,ou=\\C3", 9, BAD_UTF8),
            ("cn=ab\\C3\\28", 5, BAD_UTF8),
            ("cn=\\C3\\B6\\FF", 9, BAD_UTF8),
            ("cn=\\80", 3, BAD_UTF8),
            ("\tcn=x", 0, TYPE_EXPECTED),
            ("é=x", 0, TYPE_EXPECTED),
        ];
        for (input, at, what) in cases {
            assert_eq!(parse(input), Err(DnError { at, what }), "{input:?}");
            assert!(normalize(input).is_err(), "{input:?}");
            assert!(validate(input).is_err(), "{input:?}");
        }
        assert_eq!(
            DnError {
                at: 9,
                what: BAD_UTF8
            }
            .to_string(),
            "the escaped bytes are not valid UTF-8 at position 10"
        );
    }

    #[test]
    fn validate_is_stricter_than_parse() {
        for input in ["cn=", "cn=a=b", "ou= ,dc=org"] {
            assert!(parse(input).is_ok(), "{input:?}");
            assert!(validate(input).is_err(), "{input:?}");
        }
        assert_eq!(parse("").map(|d| d.rdns.len()), Ok(0));
        assert!(validate("").is_err());
        assert_eq!(validate("OID.2.5.4.3=x,dc=org"), Ok(()));
        assert_eq!(validate("cn=a\\=b,dc=org"), Ok(()));
        assert_eq!(
            validate("cn=\\C3,dc=org"),
            Err(DnError {
                at: 3,
                what: BAD_UTF8
            })
        );
    }

    #[test]
    fn leaf_value_is_the_unescaped_first_value() {
        let group = dn("cn=Sales\\, EMEA (*),ou=groups,dc=example,dc=org");
        assert_eq!(group.leaf_value("cn"), Some("Sales, EMEA (*)"));
        assert_eq!(group.leaf_value("CN"), Some("Sales, EMEA (*)"));
        assert_eq!(group.leaf_value("commonName"), Some("Sales, EMEA (*)"));
        assert_eq!(group.leaf_value("2.5.4.3"), Some("Sales, EMEA (*)"));
        assert_eq!(group.leaf_value("uid"), None);
        assert_eq!(group.leaf_value("ou"), None);
        assert_eq!(dn("2.5.4.3=Admins,dc=org").leaf_value("cn"), Some("Admins"));
        let multi = dn("uid=jdoe+CN=John Doe,dc=org");
        assert_eq!(multi.leaf_value("cn"), Some("John Doe"));
        assert_eq!(multi.leaf_value("userid"), Some("jdoe"));
        assert_eq!(dn("").leaf_value("cn"), None);
    }

    #[test]
    fn is_within_compares_whole_rdns_from_the_right() {
        let base = dn("ou=Groups,dc=Example,dc=org");
        let group = dn("CN=Admins,OU=groups,DC=example,DC=ORG");
        assert!(group.is_within(&base));
        assert!(base.is_within(&base));
        assert!(dn("ou = groups , dc=example,dc=org").is_within(&base));
        assert!(dn("cn=x,ou=sub,ou=groups,dc=example,dc=org").is_within(&base));
        assert!(!dn("cn=Admins,ou=groups2,dc=example,dc=org").is_within(&base));
        assert!(!dn("cn=Admins,ou=groups,dc=example,dc=com").is_within(&base));
        assert!(!dn("dc=example,dc=org").is_within(&base));
        assert!(!base.is_within(&group));
        assert!(!dn("cn=x,ou=groups+cn=y,dc=example,dc=org").is_within(&base));
        assert!(dn("cn=x,cn=y+ou=groups,dc=example,dc=org")
            .is_within(&dn("ou=groups+cn=Y,dc=example,dc=org")));
        assert!(group.is_within(&dn("")));
        assert!(!dn("").is_within(&base));
        assert!(dn("").is_within(&dn("")));
    }

    #[test]
    fn hand_built_dns_do_not_panic() {
        let odd = Dn {
            rdns: vec![
                vec![],
                vec![ava("", ""), ava("OID.", " "), ava("oid.", "#")],
                vec![ava("a=b", "\0\\ ,+\"#;<>")],
            ],
        };
        let _ = odd.normalized();
        assert_eq!(odd.leaf_value("cn"), None);
        assert!(odd.is_within(&odd));
        assert!(!dn("cn=x").is_within(&odd));
    }

    /// A small deterministic generator (xorshift64), so the tests need no dependency.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// The properties every input must have: no panic, and when it parses, a normalised form
    /// that parses to itself and names a DN within itself.
    fn check_properties(input: &str) -> bool {
        let valid = validate(input).is_ok();
        let Ok(parsed) = parse(input) else {
            assert!(!valid, "validate accepts what parse rejects: {input:?}");
            return false;
        };
        let once = parsed.normalized();
        let again = match parse(&once) {
            Ok(d) => d,
            Err(e) => panic!("normal form {once:?} of {input:?} does not parse: {e}"),
        };
        assert_eq!(again.normalized(), once, "{input:?}");
        assert_eq!(again.rdns.len(), parsed.rdns.len(), "{input:?}");
        assert!(
            parsed.is_within(&again) && again.is_within(&parsed),
            "{input:?}"
        );
        for rdn in &parsed.rdns {
            for ava in rdn {
                let _ = parsed.leaf_value(&ava.attr);
            }
        }
        true
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for input in [
            "CN=Nested,OU=Groups,DC=Example,DC=org",
            "cn=Sales\\, EMEA,ou=g",
            "cn = sales\\2c emea , ou=g",
            "cn=a+uid=b",
            "UID=Dreßler,OU=People,DC=Example,DC=Org",
            "cn=\\23x",
            "cn=#0403616263",
            "cn=\\ \\ lead",
            "cn=trail\\ \\ ",
            "cn=\\00\\00",
            "cn=İstanbul",
            "cn=ẞ\u{a0}x\u{2003}y",
            "cn=a\\;b\\<c\\>d\\\"e\\\\f\\+g\\,h",
            "cn=a=b",
            "cn=\\#",
            "cn=#00",
            "cn=",
            "cn=\\20",
            "cn=x+cn=y+cn=x,ou=y+ou=x",
            "OID.2.5.4.3=x",
            "1.2.840.113556.1.4.1=x",
        ] {
            assert!(check_properties(input), "{input:?}");
        }
    }

    #[test]
    fn generated_strings_never_panic_and_normalize_stably() {
        const TYPES: &[&str] = &[
            "cn",
            "CN",
            "ou",
            "dc",
            "uid",
            "commonName",
            "2.5.4.3",
            "OID.2.5.4.11",
            "1.3.6.1",
            "x-y",
            "c",
        ];
        const PIECES: &[&str] = &[
            "a",
            "B",
            "ß",
            "İ",
            "é",
            "ö",
            "😀",
            " ",
            "  ",
            "\t",
            "\u{a0}",
            "\u{2003}",
            "=",
            "#",
            "\\,",
            "\\+",
            "\\#",
            "\\ ",
            "\\\\",
            "\\\"",
            "\\;",
            "\\<",
            "\\>",
            "\\=",
            "\\2C",
            "\\2b",
            "\\20",
            "\\00",
            "\\C3\\B6",
            "\\e2\\82\\ac",
            "\\41",
            "(",
            "*",
            ".",
            "1",
        ];
        const NOISE: &[&str] = &[
            "cn", "=", ",", "+", " ", "\\", "\\2", "\\C3", "\\B6", "\\FF", "#", "#4", "#41", "ab",
            "Z", "ß", "İ", "\0", ";", "\"", "<", ">", "2.5", ".", "..", "oid.", "OID.1", "\t",
            "\u{a0}", "é", "\\,", "\\ ", "9",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0;
        for _ in 0..3000 {
            // Mostly well-formed DNs, written in many equivalent ways.
            let mut s = String::new();
            for r in 0..=rng.below(4) {
                if r > 0 {
                    s.push_str(rng.pick(&[",", " , ", ", "]));
                }
                for a in 0..=rng.below(3) {
                    if a > 0 {
                        s.push_str(rng.pick(&["+", " + "]));
                    }
                    s.push_str(rng.pick(TYPES));
                    s.push_str(rng.pick(&["=", " = "]));
                    if rng.below(10) == 0 {
                        s.push('#');
                        for _ in 0..=rng.below(4) {
                            s.push_str(rng.pick(&["00", "4a", "FF", "0b"]));
                        }
                    } else {
                        for _ in 0..rng.below(6) {
                            s.push_str(rng.pick(PIECES));
                        }
                    }
                }
            }
            if check_properties(&s) {
                parsed += 1;
            }
            // Anything at all, from pieces that trip parsers up.
            let mut s = String::new();
            for _ in 0..rng.below(12) {
                s.push_str(rng.pick(NOISE));
            }
            if check_properties(&s) {
                parsed += 1;
            }
        }
        assert!(parsed > 2000, "only {parsed} generated DNs parsed");
    }
}
