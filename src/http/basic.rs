//! HTTP Basic credentials (RFC 7617) parsed into a [`Login`] and a [`Password`].

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;
use latchkey_verify::decode_basic;
use zeroize::Zeroizing;

use super::error::ApiError;
use crate::credentials::{Login, Password, PasswordError};

/// The credentials of a request.
///
/// No `Authorization` header, or one with another scheme, is [`ApiError::MissingCredentials`]
/// (401, so clients prompt); a broken Basic value is a 400 saying what is wrong; an empty
/// password is `None`, so that the caller refuses it without the directory ever seeing it.
pub fn credentials(req: &HttpRequest) -> Result<(Login, Option<Password>), ApiError> {
    let value = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or(ApiError::MissingCredentials)?;
    parse(value.as_bytes())
}

/// Parse the value of an `Authorization` header.
pub fn parse(value: &[u8]) -> Result<(Login, Option<Password>), ApiError> {
    let malformed = |what: &str| ApiError::MalformedCredentials(what.to_owned());
    let (scheme, rest) = match value.iter().position(|b| *b == b' ') {
        Some(i) => value.split_at(i),
        None => (value, &b""[..]),
    };
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return Err(ApiError::MissingCredentials);
    }
    let encoded = rest.trim_ascii();
    if encoded.is_empty() {
        return Err(malformed("The Basic credentials are empty."));
    }
    let decoded = Zeroizing::new(
        decode_basic(encoded)
            .ok_or_else(|| malformed("The Basic credentials are not valid base64."))?,
    );
    let colon = decoded.iter().position(|b| *b == b':').ok_or_else(|| {
        malformed("The Basic credentials have no ':' between login and password.")
    })?;
    let (login, password) = decoded.split_at(colon);
    let password = password.get(1..).unwrap_or_default();
    let login =
        std::str::from_utf8(login).map_err(|_| malformed("The login is not valid UTF-8."))?;
    let password =
        std::str::from_utf8(password).map_err(|_| malformed("The password is not valid UTF-8."))?;
    let login = Login::parse(login).map_err(|e| ApiError::MalformedCredentials(e.to_string()))?;
    match Password::parse(Zeroizing::new(password.to_owned())) {
        Ok(password) => Ok((login, Some(password))),
        Err(PasswordError::Empty) => Ok((login, None)),
        Err(other) => Err(ApiError::MalformedCredentials(other.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    fn basic(raw: &[u8]) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(raw)).into_bytes()
    }

    fn message(r: Result<(Login, Option<Password>), ApiError>) -> String {
        match r {
            Err(e) => format!("{}: {e}", e.code()),
            Ok((l, Some(_))) => format!("ok: {l}"),
            Ok((l, None)) => format!("empty password: {l}"),
        }
    }

    #[test]
    fn good_credentials_split_at_the_first_colon() {
        let (login, password) = parse(&basic(b"alice:pa:ss")).unwrap();
        assert_eq!(login.as_str(), "alice");
        assert_eq!(password.unwrap().expose(), "pa:ss");
        let (login, _) = parse(b"bAsIc YWxpY2U6eA").unwrap();
        assert_eq!(login.as_str(), "alice");
    }

    #[test]
    fn each_broken_value_says_what_is_wrong() {
        let cases: [(&[u8], &str); 9] = [
            (b"Bearer abc", "missing_credentials: Send your directory login and password with HTTP Basic authentication."),
            (b"Basic", "malformed_credentials: The Basic credentials are empty."),
            (b"Basic !!!", "malformed_credentials: The Basic credentials are not valid base64."),
            (&basic(b"alice"), "malformed_credentials: The Basic credentials have no ':' between login and password."),
            (&basic(b"\xffalice:x"), "malformed_credentials: The login is not valid UTF-8."),
            (&basic(b"alice:\xff"), "malformed_credentials: The password is not valid UTF-8."),
            (&basic(b":x"), "malformed_credentials: The login is empty."),
            (&basic(b"al\x07ice:x"), "malformed_credentials: The login contains a control character."),
            (&basic(b"alice:"), "empty password: alice"),
        ];
        for (value, want) in cases {
            assert_eq!(
                message(parse(value)),
                want,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
        let long = format!("{}:x", "a".repeat(300));
        assert_eq!(
            message(parse(&basic(long.as_bytes()))),
            "malformed_credentials: The login is 300 bytes long; at most 256 are allowed."
        );
    }
}
