//! The sign-in pages' CSRF tokens: a signed double-submit value bound to the browser.
//!
//! Each browser gets a random [`BrowserId`] in a cookie of its own before it signs in (HttpOnly,
//! SameSite=Strict). Every form carries a token `<time>.<mac>`, where `mac` is HMAC-SHA256 over
//! the browser id and the time, under a key derived from the token signing key with a fixed
//! label, so that every replica makes and accepts the same tokens. A POST is accepted only when
//! its token was made for the browser id its cookie holds, no more than [`TOKEN_LIFETIME`]
//! seconds ago; another site can neither read the cookie nor make a token for it.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How long a form's token is accepted, in seconds.
pub const TOKEN_LIFETIME: i64 = 3600;

/// How far in the future a token's time may be (clocks of replicas disagree a little).
const CLOCK_SKEW: i64 = 60;

/// What the key is derived with; another use of the signing key would use another label.
const KEY_LABEL: &[u8] = b"latchkey portal csrf v1";

/// A browser's random id: 128 bits as 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserId(String);

impl BrowserId {
    /// A new id from the thread's generator.
    pub fn random() -> BrowserId {
        BrowserId(format!("{:032x}", rand::random::<u128>()))
    }

    /// An id a cookie brought, if it has the form of one.
    pub fn parse(text: &str) -> Option<BrowserId> {
        (text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| BrowserId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key tokens are made and checked with.
#[derive(Clone)]
pub struct CsrfKey(HmacSha256);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(***)")
    }
}

impl CsrfKey {
    /// The key derived from the token signing key's secret.
    pub fn derive(signing_secret: &[u8]) -> CsrfKey {
        let mut derive = keyed(signing_secret);
        derive.update(KEY_LABEL);
        CsrfKey(keyed(&derive.finalize().into_bytes()))
    }

    fn mac(&self, browser: &BrowserId, time: i64) -> String {
        let mut mac = self.0.clone();
        mac.update(browser.as_str().as_bytes());
        mac.update(b".");
        mac.update(time.to_string().as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A token for `browser`, made at `now` (Unix seconds).
    pub fn token(&self, browser: &BrowserId, now: i64) -> String {
        format!("{now}.{}", self.mac(browser, now))
    }

    /// Whether `token` was made for `browser` within [`TOKEN_LIFETIME`] before `now`.
    pub fn check(&self, browser: &BrowserId, token: &str, now: i64) -> bool {
        let Some((time, mac)) = token.split_once('.') else {
            return false;
        };
        if time.is_empty() || time.len() > 19 || !time.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(time) = time.parse::<i64>() else {
            return false;
        };
        if time > now.saturating_add(CLOCK_SKEW) || now.saturating_sub(time) > TOKEN_LIFETIME {
            return false;
        }
        let expected = self.mac(browser, time);
        expected.as_bytes().ct_eq(mac.as_bytes()).into()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; this never fails.
    HmacSha256::new_from_slice(key).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn key() -> CsrfKey {
        CsrfKey::derive(b"integration-test-secret-0123456789abcdef")
    }

    #[test]
    fn a_token_is_accepted_for_its_browser_within_its_lifetime() {
        let browser = BrowserId::random();
        let token = key().token(&browser, NOW);
        assert!(token.starts_with("1800000000."), "{token}");
        assert_eq!(token.len(), 11 + 64);
        assert!(key().check(&browser, &token, NOW));
        assert!(key().check(&browser, &token, NOW + TOKEN_LIFETIME));
        assert!(key().check(&browser, &token, NOW - CLOCK_SKEW));
    }

    #[test]
    fn expired_foreign_and_forged_tokens_are_refused() {
        let browser = BrowserId::random();
        let token = key().token(&browser, NOW);
        assert!(!key().check(&browser, &token, NOW + TOKEN_LIFETIME + 1));
        assert!(!key().check(&browser, &token, NOW - CLOCK_SKEW - 1));
        assert!(!key().check(&BrowserId::random(), &token, NOW));
        let other_key = CsrfKey::derive(b"another-secret-0123456789abcdef0123456789");
        assert!(!other_key.check(&browser, &token, NOW));
        let (_, mac) = token.split_once('.').unwrap();
        for forged in [
            String::new(),
            ".".into(),
            format!("{NOW}"),
            format!("{NOW}."),
            format!("{}.{mac}", NOW + 1),
            format!("+{NOW}.{mac}"),
            format!("{NOW}.{}", mac.to_uppercase()),
            format!("{NOW}.{}", &mac[..63]),
            format!("{token}0"),
            format!("99999999999999999999.{mac}"),
        ] {
            assert!(!key().check(&browser, &forged, NOW), "{forged:?}");
        }
    }

    #[test]
    fn the_key_is_derived_not_the_signing_key_itself() {
        let browser = BrowserId::parse("0123456789abcdef0123456789abcdef").unwrap();
        let plain = keyed(b"integration-test-secret-0123456789abcdef");
        let mut direct = plain.clone();
        direct.update(b"0123456789abcdef0123456789abcdef.1800000000");
        let direct: String = direct
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(key().token(&browser, NOW), format!("{NOW}.{direct}"));
        // Every replica with the same secret agrees.
        assert_eq!(key().token(&browser, NOW), key().token(&browser, NOW));
    }

    #[test]
    fn browser_ids_have_one_form() {
        let id = BrowserId::random();
        assert_eq!(BrowserId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(BrowserId::random(), id);
        for bad in [
            "",
            "0123456789abcdef0123456789abcde",
            "0123456789abcdef0123456789abcdef0",
            "0123456789ABCDEF0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
        ] {
            assert_eq!(BrowserId::parse(bad), None, "{bad:?}");
        }
    }
}
