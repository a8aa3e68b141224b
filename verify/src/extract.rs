//! Finding the token in a request, framework-free.
//!
//! Looked for in this order:
//! 1. `Authorization: Bearer <token>`;
//! 2. `Authorization: Basic base64(<token>:<anything>)`: the token is the username and the
//!    password is ignored (flask-ldap-auth's convention, so `curl -u "$TOKEN:"` works);
//! 3. the cookie named by the caller, if any.
//!
//! An `Authorization` header with a Bearer or Basic scheme decides the matter: a broken one is
//! refused, never passed over for a cookie.
//!
//! Two steps, each its own function, and one that does both:
//! - [`locate_token`]: *where* the token is: its bytes, found by the rules above, not judged;
//! - [`token_text`]: *whether* those bytes can be a token, and if so their text;
//! - [`token_in_headers`]: the two in a row, for a caller that keeps nothing between requests.
//!
//! None of them verifies anything: that is [`crate::Verifier::verify`]'s work.

use std::borrow::Cow;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine, GeneralPurpose, GeneralPurposeConfig};

use crate::{VerifyError, MAX_TOKEN_LEN};

/// The engine behind [`decode_basic`], the only base64 decoder of Basic values in Latchkey.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The bytes of the base64 in an HTTP Basic value (RFC 7617: standard alphabet; padding
/// optional, as some clients leave it out), or `None` if it is not base64.
pub fn decode_basic(encoded: &[u8]) -> Option<Vec<u8>> {
    BASE64.decode(encoded).ok()
}

/// The text of the token in a request's `Authorization` and `Cookie` header values:
/// [`locate_token`], then [`token_text`]. Not yet verified. A Bearer or cookie token is
/// borrowed from the header; one from Basic is decoded, so owned.
pub fn token_in_headers<'a>(
    authorization: Option<&'a [u8]>,
    cookie_header: Option<&'a [u8]>,
    cookie_name: Option<&str>,
) -> Result<Cow<'a, str>, VerifyError> {
    match locate_token(authorization, cookie_header, cookie_name)? {
        Cow::Borrowed(bytes) => token_text(bytes).map(Cow::Borrowed),
        Cow::Owned(bytes) => token_text(&bytes).map(|text| Cow::Owned(text.to_owned())),
    }
}

/// Where the token is in a request's header values: its bytes, before anything checks that
/// they can be a token at all. For a caller that looks the bytes up first among tokens it has
/// verified before (a byte-for-byte match needs no further check), and passes them through
/// [`token_text`] otherwise. Refuses what the header's form decides (no token, a Basic value
/// that is not base64); the bytes themselves may be anything.
pub fn locate_token<'a>(
    authorization: Option<&'a [u8]>,
    cookie_header: Option<&'a [u8]>,
    cookie_name: Option<&str>,
) -> Result<Cow<'a, [u8]>, VerifyError> {
    if let Some(value) = authorization {
        let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
            Some(i) => value.split_at(i),
            None => (value, &b""[..]),
        };
        let rest = rest.trim_ascii();
        if scheme.eq_ignore_ascii_case(b"bearer") {
            return Ok(Cow::Borrowed(rest));
        }
        if scheme.eq_ignore_ascii_case(b"basic") {
            if rest.len() > MAX_TOKEN_LEN * 2 {
                return Err(VerifyError::Malformed);
            }
            let mut decoded = decode_basic(rest).ok_or(VerifyError::Malformed)?;
            if let Some(colon) = decoded.iter().position(|b| *b == b':') {
                decoded.truncate(colon);
            }
            return Ok(Cow::Owned(decoded));
        }
    }
    if let (Some(header), Some(name)) = (cookie_header, cookie_name) {
        if let Some(value) = cookie_value(header, name) {
            return Ok(Cow::Borrowed(value));
        }
    }
    Err(VerifyError::Missing)
}

/// `bytes` as a token's text, if they can be one: not empty ([`VerifyError::Missing`]), at
/// most [`MAX_TOKEN_LEN`] long, and only base64url, `.` and `=` ([`VerifyError::Malformed`]).
pub fn token_text(bytes: &[u8]) -> Result<&str, VerifyError> {
    if bytes.is_empty() {
        return Err(VerifyError::Missing);
    }
    if bytes.len() > MAX_TOKEN_LEN {
        return Err(VerifyError::Malformed);
    }
    // A JWT is base64url segments and dots; anything else cannot be one. This runs on every
    // guarded request: every byte is tested without an early exit, so that the loop compiles
    // to vector instructions.
    if !bytes
        .chunks(32)
        .all(|chunk| chunk.iter().fold(true, |ok, b| ok & is_token_byte(*b)))
    {
        return Err(VerifyError::Malformed);
    }
    std::str::from_utf8(bytes).map_err(|_| VerifyError::Malformed)
}

/// Whether a token may hold `b`: base64url, `.` between segments, and `=` padding. Written
/// with `|` rather than `||`, without branches.
fn is_token_byte(b: u8) -> bool {
    let digit = b.wrapping_sub(b'0') < 10;
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    digit | letter | (b == b'-') | (b == b'_') | (b == b'.') | (b == b'=')
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
fn cookie_value<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|b| *b == b'=')?;
        let (key, value) = pair.split_at(eq);
        (key.trim_ascii() == name.as_bytes()).then(|| {
            let value = value.get(1..).unwrap_or_default().trim_ascii();
            value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

    fn find(auth: Option<&str>, cookie: Option<&str>) -> Result<String, VerifyError> {
        token_in_headers(
            auth.map(str::as_bytes),
            cookie.map(str::as_bytes),
            Some("latchkey"),
        )
        .map(Cow::into_owned)
    }

    #[test]
    fn basic_values_are_standard_base64_with_optional_padding() {
        assert_eq!(decode_basic(b"YWxpY2U6eA=="), Some(b"alice:x".to_vec()));
        assert_eq!(decode_basic(b"YWxpY2U6eA"), Some(b"alice:x".to_vec()));
        assert_eq!(decode_basic(b"+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_basic(b"-_8="), None);
        assert_eq!(decode_basic(b"!!!"), None);
        assert_eq!(decode_basic(b""), Some(Vec::new()));
    }

    #[test]
    fn bearer_and_cookie_tokens_are_borrowed_from_the_header() {
        let bearer = format!("Bearer {TOKEN}");
        assert_eq!(
            token_in_headers(Some(bearer.as_bytes()), None, None),
            Ok(Cow::Borrowed(TOKEN))
        );
        let cookie = format!("a=1; latchkey={TOKEN}");
        assert_eq!(
            token_in_headers(None, Some(cookie.as_bytes()), Some("latchkey")),
            Ok(Cow::Borrowed(TOKEN))
        );
        let basic = basic(&format!("{TOKEN}:"));
        assert_eq!(
            token_in_headers(Some(basic.as_bytes()), None, None),
            Ok(Cow::Owned(TOKEN.to_owned()))
        );
    }

    fn basic(raw: &str) -> String {
        format!("Basic {}", STANDARD.encode(raw))
    }

    #[test]
    fn locate_finds_the_bytes_without_judging_them() {
        assert_eq!(
            locate_token(Some(b"Bearer  a b\xe9 "), None, None),
            Ok(Cow::Borrowed(&b"a b\xe9"[..]))
        );
        assert_eq!(
            locate_token(Some(basic("x y:pw").as_bytes()), None, None),
            Ok(Cow::Owned(b"x y".to_vec()))
        );
        assert_eq!(
            locate_token(None, Some(b"lk=a;b; c=1"), Some("lk")),
            Ok(Cow::Borrowed(&b"a"[..]))
        );
        assert_eq!(
            locate_token(Some(b"Bearer"), None, None),
            Ok(Cow::Borrowed(&b""[..]))
        );
        // What the header's form decides is decided here already.
        assert_eq!(
            locate_token(Some(b"Basic !!!"), None, None),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            locate_token(None, Some(b"other=1"), Some("lk")),
            Err(VerifyError::Missing)
        );
    }

    #[test]
    fn bearer_basic_and_cookie_each_carry_the_token() {
        assert_eq!(
            find(Some(&format!("Bearer {TOKEN}")), None),
            Ok(TOKEN.into())
        );
        assert_eq!(
            find(Some(&format!("bearer  {TOKEN} ")), None),
            Ok(TOKEN.into())
        );
        assert_eq!(
            find(Some(&basic(&format!("{TOKEN}:"))), None),
            Ok(TOKEN.into())
        );
        assert_eq!(find(Some(&basic(TOKEN)), None), Ok(TOKEN.into()));
        assert_eq!(
            find(Some(&basic(&format!("{TOKEN}:ignored-password"))), None),
            Ok(TOKEN.into())
        );
        assert_eq!(
            find(None, Some(&format!("a=1; latchkey={TOKEN}; b=2"))),
            Ok(TOKEN.into())
        );
        assert_eq!(
            find(None, Some(&format!("latchkey=\"{TOKEN}\""))),
            Ok(TOKEN.into())
        );
    }

    #[test]
    fn the_authorization_header_comes_before_the_cookie() {
        let cookie = "latchkey=cookie.token.value";
        assert_eq!(
            find(Some(&format!("Bearer {TOKEN}")), Some(cookie)),
            Ok(TOKEN.into())
        );
        assert_eq!(
            find(Some("Bearer"), Some(cookie)),
            Err(VerifyError::Missing)
        );
        // Another scheme is not ours: the cookie still counts.
        assert_eq!(
            find(Some("Digest x"), Some(cookie)),
            Ok("cookie.token.value".into())
        );
    }

    #[test]
    fn nothing_or_rubbish_is_refused() {
        assert_eq!(find(None, None), Err(VerifyError::Missing));
        assert_eq!(find(None, Some("other=1")), Err(VerifyError::Missing));
        assert_eq!(find(Some("Basic !!!"), None), Err(VerifyError::Malformed));
        assert_eq!(
            find(Some(&basic(":password")), None),
            Err(VerifyError::Missing)
        );
        assert_eq!(find(Some("Bearer a b"), None), Err(VerifyError::Malformed));
        assert_eq!(
            find(Some(&basic("alice\u{e9}:pw")), None),
            Err(VerifyError::Malformed)
        );
        let huge = "a".repeat(MAX_TOKEN_LEN + 1);
        assert_eq!(
            find(Some(&format!("Bearer {huge}")), None),
            Err(VerifyError::Malformed)
        );
        assert_eq!(
            token_in_headers(None, Some(format!("latchkey={TOKEN}").as_bytes()), None),
            Err(VerifyError::Missing)
        );
    }

    #[test]
    fn token_bytes_are_exactly_base64url_dot_and_padding() {
        for b in 0..=u8::MAX {
            let expected = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'=');
            assert_eq!(is_token_byte(b), expected, "byte {b:#04x}");
        }
        // A bad byte is found wherever it is, in the first chunk of 32 or a later one.
        for at in [0, 31, 32, 63, 64, 99] {
            let mut token = vec![b'a'; 100];
            token[at] = b' ';
            assert_eq!(token_text(&token), Err(VerifyError::Malformed), "at {at}");
        }
        assert_eq!(token_text(&[b'a'; 100]), Ok("a".repeat(100).as_str()));
    }
}
