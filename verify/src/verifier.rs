//! Checking a token: pinned algorithms, key chosen by `kid`, `exp` required.

use std::collections::HashMap;
use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};

use crate::{Claims, HmacAlgorithm, HmacKey};

/// Tokens longer than this many bytes are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Clock skew tolerated on `exp` and `nbf`, in seconds, unless configured otherwise.
pub const DEFAULT_LEEWAY: u64 = 5;

/// Why a token was refused. Each way a token can fail has its own variant, so callers can log
/// or count the reason without parsing strings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// No token was presented.
    #[error("no token was presented")]
    Missing,
    /// The token is not a well-formed JWT (or is longer than [`MAX_TOKEN_LEN`]).
    #[error("the token is malformed")]
    Malformed,
    /// The signature does not match the claims under the named key.
    #[error("the token's signature is not valid")]
    BadSignature,
    /// The token names a key id this verifier does not hold (or names none).
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    /// The token's `exp` is in the past.
    #[error("the token has expired")]
    Expired,
    /// The token's `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The token's `iss` is not the expected issuer.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// The token's `aud` is not the expected audience.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// The token's algorithm is not one this verifier allows.
    #[error("the token's signing algorithm is not allowed")]
    DisallowedAlgorithm,
}

impl VerifyError {
    /// The machine-readable code of Latchkey's error bodies: `missing_token` or `invalid_token`.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Missing => "missing_token",
            _ => "invalid_token",
        }
    }

    /// A sentence for the person behind the request.
    pub fn message(&self) -> &'static str {
        match self {
            VerifyError::Missing => "Send a token: Authorization: Bearer <token>.",
            VerifyError::Malformed => "The token is malformed.",
            VerifyError::BadSignature => "The token's signature is not valid.",
            VerifyError::UnknownKey => "The token was signed with a key this server does not hold.",
            VerifyError::Expired => "The token has expired; request a new one.",
            VerifyError::NotYetValid => "The token is not valid yet.",
            VerifyError::WrongIssuer => "The token was issued by another issuer.",
            VerifyError::WrongAudience => "The token is meant for another audience.",
            VerifyError::DisallowedAlgorithm => "The token's signing algorithm is not allowed.",
        }
    }
}

/// Verifies Latchkey tokens against a set of keys.
///
/// Every configured key verifies (so tokens signed before a key rotation stay valid until they
/// expire); the key is picked by the token's `kid` header, never by trying each in turn.
pub struct Verifier {
    keys: HashMap<String, DecodingKey>,
    allowed: Vec<HmacAlgorithm>,
    validation: Validation,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Verifier")
            .field("kids", &kids)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`].
#[derive(Debug, Default)]
pub struct VerifierBuilder {
    keys: Vec<HmacKey>,
    algorithms: Vec<HmacAlgorithm>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Option<u64>,
}

impl VerifierBuilder {
    /// Accept tokens signed with `key` (named by its id).
    pub fn key(mut self, key: &HmacKey) -> Self {
        self.keys.push(key.clone());
        self
    }

    /// Accept tokens signed with any of `keys`.
    pub fn keys<'a>(mut self, keys: impl IntoIterator<Item = &'a HmacKey>) -> Self {
        self.keys.extend(keys.into_iter().cloned());
        self
    }

    /// Allow `algorithm`. When none is named, only HS256 is allowed.
    pub fn algorithm(mut self, algorithm: HmacAlgorithm) -> Self {
        if !self.algorithms.contains(&algorithm) {
            self.algorithms.push(algorithm);
        }
        self
    }

    /// Require `iss` to equal `issuer`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Require `aud` to equal `audience`. Without it, tokens carrying an `aud` are refused.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Tolerate `seconds` of clock skew on `exp` and `nbf` (default [`DEFAULT_LEEWAY`]).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = Some(seconds);
        self
    }

    /// The verifier.
    pub fn build(self) -> Verifier {
        let allowed = if self.algorithms.is_empty() {
            vec![HmacAlgorithm::HS256]
        } else {
            self.algorithms
        };
        let mut validation = Validation::new(HmacAlgorithm::HS256.jwt());
        validation.algorithms = allowed.iter().map(|a| a.jwt()).collect();
        validation.leeway = self.leeway.unwrap_or(DEFAULT_LEEWAY);
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let keys = self
            .keys
            .iter()
            .map(|k| {
                (
                    k.id().to_owned(),
                    DecodingKey::from_secret(k.secret().expose()),
                )
            })
            .collect();
        Verifier {
            keys,
            allowed,
            validation,
        }
    }
}

impl Verifier {
    /// Start building a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Check `token` and return its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let alg = HmacAlgorithm::from_jwt(header.alg).ok_or(VerifyError::DisallowedAlgorithm)?;
        if !self.allowed.contains(&alg) {
            return Err(VerifyError::DisallowedAlgorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(VerifyError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|e| classify(e.kind()))?;
        if self.validation.aud.is_none() && data.claims.aud.is_some() {
            return Err(VerifyError::WrongAudience);
        }
        Ok(data.claims)
    }
}

fn classify(kind: &ErrorKind) -> VerifyError {
    match kind {
        ErrorKind::InvalidSignature => VerifyError::BadSignature,
        ErrorKind::ExpiredSignature => VerifyError::Expired,
        ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
        ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
        ErrorKind::InvalidAudience => VerifyError::WrongAudience,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            VerifyError::DisallowedAlgorithm
        }
        _ => VerifyError::Malformed,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{Secret, Signer};

    fn key(id: &str, fill: u8) -> HmacKey {
        HmacKey::new(id, Secret::new(vec![fill; 40]).unwrap())
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn claims() -> Claims {
        let mut c = Claims::new("latchkey", "alice", now(), now() + 600);
        c.jti = "00112233445566778899aabbccddeeff".into();
        c
    }

    fn verifier(keys: &[&HmacKey]) -> Verifier {
        Verifier::builder()
            .keys(keys.iter().copied())
            .issuer("latchkey")
            .build()
    }

    #[test]
    fn a_token_signed_with_a_known_key_verifies_to_its_claims() {
        let k = key("k1", 1);
        let token = Signer::new(&k, HmacAlgorithm::HS256)
            .sign(&claims())
            .unwrap();
        assert_eq!(verifier(&[&k]).verify(&token), Ok(claims()));
    }

    #[test]
    fn every_configured_key_verifies_by_kid() {
        let (old, new) = (key("old", 1), key("new", 2));
        let token = Signer::new(&old, HmacAlgorithm::HS256)
            .sign(&claims())
            .unwrap();
        assert_eq!(verifier(&[&new, &old]).verify(&token), Ok(claims()));
        assert_eq!(
            verifier(&[&new]).verify(&token),
            Err(VerifyError::UnknownKey)
        );
    }

    #[test]
    fn same_kid_with_another_secret_is_a_bad_signature() {
        let token = Signer::new(&key("k1", 1), HmacAlgorithm::HS256)
            .sign(&claims())
            .unwrap();
        assert_eq!(
            verifier(&[&key("k1", 2)]).verify(&token),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn an_algorithm_that_is_not_allowed_is_refused() {
        let k = key("k1", 1);
        let token = Signer::new(&k, HmacAlgorithm::HS512)
            .sign(&claims())
            .unwrap();
        assert_eq!(
            verifier(&[&k]).verify(&token),
            Err(VerifyError::DisallowedAlgorithm)
        );
        let both = Verifier::builder()
            .key(&k)
            .algorithm(HmacAlgorithm::HS256)
            .algorithm(HmacAlgorithm::HS512)
            .build();
        assert_eq!(both.verify(&token), Ok(claims()));
    }

    #[test]
    fn alg_none_is_refused() {
        // {"alg":"none","kid":"k1"} . {"sub":"alice",...} . (no signature)
        let header = "eyJhbGciOiJub25lIiwia2lkIjoiazEifQ";
        let body = "eyJpc3MiOiJsYXRjaGtleSIsInN1YiI6ImFsaWNlIiwiaWF0IjoxLCJuYmYiOjEsImV4cCI6OTk5OTk5OTk5OSwianRpIjoiIn0";
        let token = format!("{header}.{body}.");
        let err = verifier(&[&key("k1", 1)]).verify(&token).unwrap_err();
        assert!(
            matches!(
                err,
                VerifyError::Malformed | VerifyError::DisallowedAlgorithm
            ),
            "{err:?}"
        );
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
        let k = key("k1", 1);
        let signer = Signer::new(&k, HmacAlgorithm::HS256);
        let mut old = claims();
        old.exp = now() - 60;
        assert_eq!(
            verifier(&[&k]).verify(&signer.sign(&old).unwrap()),
            Err(VerifyError::Expired)
        );
        let mut future = claims();
        future.nbf = now() + 60;
        assert_eq!(
            verifier(&[&k]).verify(&signer.sign(&future).unwrap()),
            Err(VerifyError::NotYetValid)
        );
        let mut just_expired = claims();
        just_expired.exp = now() - 2;
        assert!(verifier(&[&k])
            .verify(&signer.sign(&just_expired).unwrap())
            .is_ok());
    }

    #[test]
    fn wrong_issuer_and_unexpected_audience_are_refused() {
        let k = key("k1", 1);
        let signer = Signer::new(&k, HmacAlgorithm::HS256);
        let mut other = claims();
        other.iss = "someone-else".into();
        assert_eq!(
            verifier(&[&k]).verify(&signer.sign(&other).unwrap()),
            Err(VerifyError::WrongIssuer)
        );
        let mut aud = claims();
        aud.aud = Some("wiki".into());
        let token = signer.sign(&aud).unwrap();
        assert_eq!(
            verifier(&[&k]).verify(&token),
            Err(VerifyError::WrongAudience)
        );
        let wiki = Verifier::builder().key(&k).audience("wiki").build();
        assert_eq!(wiki.verify(&token), Ok(aud));
        let mail = Verifier::builder().key(&k).audience("mail").build();
        assert_eq!(mail.verify(&token), Err(VerifyError::WrongAudience));
    }

    #[test]
    fn garbage_empty_and_huge_tokens_are_refused_without_panic() {
        let v = verifier(&[&key("k1", 1)]);
        assert_eq!(v.verify(""), Err(VerifyError::Missing));
        assert_eq!(v.verify("not-a-jwt"), Err(VerifyError::Malformed));
        assert_eq!(v.verify("a.b.c"), Err(VerifyError::Malformed));
        assert_eq!(
            v.verify(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(VerifyError::Malformed)
        );
    }

    #[test]
    fn a_payload_changed_after_signing_is_a_bad_signature() {
        let k = key("k1", 1);
        let token = Signer::new(&k, HmacAlgorithm::HS256)
            .sign(&claims())
            .unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.sub = "root".into();
        let forged_body = Signer::new(&k, HmacAlgorithm::HS256).sign(&forged).unwrap();
        let body = forged_body.split('.').nth(1).unwrap().to_owned();
        parts[1] = &body;
        assert_eq!(
            verifier(&[&k]).verify(&parts.join(".")),
            Err(VerifyError::BadSignature)
        );
    }
}
