//! Checking a token: pinned algorithms, key chosen by `kid`, `exp` required.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;

use crate::{Algorithm, Claims, Revocations, VerifyingKey};

/// Tokens longer than this many bytes are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Clock skew tolerated on `exp` and `nbf`, in seconds, unless configured otherwise.
pub const DEFAULT_LEEWAY: u64 = 5;

/// The most clock skew a verifier tolerates, in seconds: [`VerifierBuilder::leeway`] takes a
/// larger value as this one. More would keep expired tokens valid for long; clocks that far
/// apart need fixing (NTP), not tolerating. Latchkey's `verify.leeway` has the same bound.
pub const MAX_LEEWAY: u64 = 300;

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
    /// The token's `alg` is not the algorithm of the key its `kid` names (or is no algorithm
    /// Latchkey knows, such as `none`).
    #[error("the token's signing algorithm is not allowed")]
    DisallowedAlgorithm,
    /// The token was revoked (signed out, or its user's tokens taken back) before it expired.
    #[error("the token has been revoked")]
    Revoked,
}

impl VerifyError {
    /// The machine-readable code of Latchkey's error bodies: `missing_token`, `token_revoked`
    /// or `invalid_token`.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Missing => "missing_token",
            VerifyError::Revoked => "token_revoked",
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
            VerifyError::Revoked => "The token has been revoked; sign in again.",
        }
    }
}

/// Verifies Latchkey tokens against a set of keys.
///
/// Every configured key verifies (so tokens signed before a key rotation stay valid until they
/// expire); the key is picked by the token's `kid` header, never by trying each in turn.
///
/// The algorithm is pinned to the key: each kid names one key of one [`Algorithm`], and a
/// token whose `alg` is not its key's is refused before any signature check. So a public
/// Ed25519 key can never be used as an HMAC secret (the "algorithm confusion" forgery), and
/// `none` is never accepted.
///
/// Each part of the token is read once: the header (to pick the key and check the algorithm),
/// then the signature over header and payload (HMAC by jsonwebtoken, in constant time; EdDSA
/// and ES256 with the key's public key as parsed once, by RustCrypto or, with the feature
/// `aws-lc`, by aws-lc-rs), and only then the claims.
pub struct Verifier {
    keys: HashMap<String, PinnedKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: i64,
    revocations: Option<Arc<dyn Revocations>>,
}

/// A key as the verifier holds it: its one algorithm and what checks its signatures (the
/// HMAC secret, or the public key parsed once).
struct PinnedKey {
    algorithm: Algorithm,
    key: VerifyingKey,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<(&String, Algorithm)> =
            self.keys.iter().map(|(k, p)| (k, p.algorithm)).collect();
        kids.sort();
        f.debug_struct("Verifier")
            .field("kids", &kids)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway", &self.leeway)
            .field("revocations", &self.revocations.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`]. It can be cloned, to build verifiers that differ in their keys only
/// (for a key set that changes).
#[derive(Debug, Default, Clone)]
pub struct VerifierBuilder {
    keys: Vec<VerifyingKey>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Option<u64>,
    revocations: Option<Arc<dyn Revocations>>,
}

impl VerifierBuilder {
    /// Accept tokens whose `kid` is `key`'s id, signed with `key`'s algorithm. A later key
    /// with the same id replaces an earlier one.
    pub fn key(mut self, key: &VerifyingKey) -> Self {
        self.keys.push(key.clone());
        self
    }

    /// Accept tokens signed with any of `keys` ([`VerifierBuilder::key`] for each).
    pub fn keys<'a>(mut self, keys: impl IntoIterator<Item = &'a VerifyingKey>) -> Self {
        self.keys.extend(keys.into_iter().cloned());
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

    /// Tolerate `seconds` of clock skew on `exp` and `nbf` (default [`DEFAULT_LEEWAY`]), at
    /// most [`MAX_LEEWAY`]: a larger value is taken as [`MAX_LEEWAY`].
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = Some(seconds);
        self
    }

    /// Refuse the tokens `revocations` holds revoked ([`VerifyError::Revoked`]), after every
    /// other check. Without it, a token is valid until it expires.
    pub fn revocations(mut self, revocations: Arc<dyn Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The verifier.
    pub fn build(self) -> Verifier {
        let keys = self
            .keys
            .iter()
            .map(|k| {
                (
                    k.id().to_owned(),
                    PinnedKey {
                        algorithm: k.algorithm(),
                        key: k.clone(),
                    },
                )
            })
            .collect();
        Verifier {
            keys,
            issuer: self.issuer,
            audience: self.audience,
            leeway: i64::try_from(self.leeway.unwrap_or(DEFAULT_LEEWAY).min(MAX_LEEWAY))
                .unwrap_or(0),
            revocations: self.revocations,
        }
    }
}

/// The header fields Latchkey reads; everything else in the header is ignored.
#[derive(Deserialize)]
struct TokenHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
}

impl Verifier {
    /// Start building a verifier.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Check `token` and return its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify_at(token, unix_now())
    }

    /// Check the claims of a token verified earlier against the clock again: `exp` and `nbf`,
    /// with the leeway. For callers that keep verified claims for the token's next request.
    pub fn check_time(&self, claims: &Claims) -> Result<(), VerifyError> {
        self.check_time_at(claims, unix_now())
    }

    /// Check the claims of a token verified earlier again: against the clock, as
    /// [`Verifier::check_time`], and against the revocations, which may have changed since.
    pub fn recheck(&self, claims: &Claims) -> Result<(), VerifyError> {
        self.check_time_at(claims, unix_now())?;
        self.check_revoked(claims)
    }

    /// [`VerifyError::Revoked`] when the revocation source holds `claims` revoked.
    pub fn check_revoked(&self, claims: &Claims) -> Result<(), VerifyError> {
        match &self.revocations {
            Some(revocations) if revocations.is_revoked(claims) => Err(VerifyError::Revoked),
            _ => Ok(()),
        }
    }

    fn check_time_at(&self, claims: &Claims, now: i64) -> Result<(), VerifyError> {
        if claims.exp < now.saturating_sub(self.leeway) {
            return Err(VerifyError::Expired);
        }
        if claims.nbf > now.saturating_add(self.leeway) {
            return Err(VerifyError::NotYetValid);
        }
        Ok(())
    }

    /// Check `token` as of `now` (seconds since the Unix epoch).
    pub fn verify_at(&self, token: &str, now: i64) -> Result<Claims, VerifyError> {
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(VerifyError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };

        let header_json = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| VerifyError::Malformed)?;
        let header_fields: TokenHeader<'_> =
            serde_json::from_slice(&header_json).map_err(|_| VerifyError::Malformed)?;
        let alg =
            Algorithm::from_name(&header_fields.alg).ok_or(VerifyError::DisallowedAlgorithm)?;
        let key = header_fields
            .kid
            .as_deref()
            .and_then(|kid| self.keys.get(kid))
            .ok_or(VerifyError::UnknownKey)?;
        // The key decides the algorithm; the header may only agree with it.
        if alg != key.algorithm {
            return Err(VerifyError::DisallowedAlgorithm);
        }

        // header.payload, exactly as signed
        let signed = token
            .get(..header.len() + 1 + payload.len())
            .ok_or(VerifyError::Malformed)?;
        let valid = key
            .key
            .check_signature(alg, signed.as_bytes(), signature)
            .map_err(|_| VerifyError::Malformed)?;
        if !valid {
            return Err(VerifyError::BadSignature);
        }

        // Only now is the payload trusted enough to read.
        let payload_json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| VerifyError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&payload_json).map_err(|_| VerifyError::Malformed)?;
        self.check_time_at(&claims, now)?;
        if let Some(issuer) = &self.issuer {
            if &claims.iss != issuer {
                return Err(VerifyError::WrongIssuer);
            }
        }
        if claims.aud != self.audience {
            return Err(VerifyError::WrongAudience);
        }
        self.check_revoked(&claims)?;
        Ok(claims)
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::{Secret, Signer, SigningKey};

    fn key(id: &str, fill: u8) -> SigningKey {
        hmac(id, fill, Algorithm::HS256)
    }

    fn hmac(id: &str, fill: u8, algorithm: Algorithm) -> SigningKey {
        SigningKey::hmac(id, algorithm, Secret::new(vec![fill; 40]).unwrap()).unwrap()
    }

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    /// The same claims at every call in one test run (issued when the first was made), so
    /// that a token signed with them verifies to an equal value even across a second's turn.
    fn claims() -> Claims {
        static ISSUED: std::sync::LazyLock<i64> = std::sync::LazyLock::new(now);
        let mut c = Claims::new("latchkey", "alice", *ISSUED, *ISSUED + 600);
        c.jti = "00112233445566778899aabbccddeeff".into();
        c
    }

    fn verifier(keys: &[&SigningKey]) -> Verifier {
        let public: Vec<VerifyingKey> = keys.iter().map(|k| k.verifying_key()).collect();
        Verifier::builder().keys(&public).issuer("latchkey").build()
    }

    #[test]
    fn a_token_signed_with_a_known_key_verifies_to_its_claims() {
        let k = key("k1", 1);
        let token = Signer::new(&k).sign(&claims()).unwrap();
        assert_eq!(verifier(&[&k]).verify(&token), Ok(claims()));
    }

    #[test]
    fn every_configured_key_verifies_by_kid() {
        let (old, new) = (key("old", 1), key("new", 2));
        let token = Signer::new(&old).sign(&claims()).unwrap();
        assert_eq!(verifier(&[&new, &old]).verify(&token), Ok(claims()));
        assert_eq!(
            verifier(&[&new]).verify(&token),
            Err(VerifyError::UnknownKey)
        );
    }

    #[test]
    fn same_kid_with_another_secret_is_a_bad_signature() {
        let token = Signer::new(&key("k1", 1)).sign(&claims()).unwrap();
        assert_eq!(
            verifier(&[&key("k1", 2)]).verify(&token),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn a_token_with_another_algorithm_than_its_key_is_refused() {
        let hs512 = hmac("k1", 1, Algorithm::HS512);
        let token = Signer::new(&hs512).sign(&claims()).unwrap();
        // The same secret, pinned to HS256: the HS512 token is refused unchecked.
        assert_eq!(
            verifier(&[&key("k1", 1)]).verify(&token),
            Err(VerifyError::DisallowedAlgorithm)
        );
        assert_eq!(verifier(&[&hs512]).verify(&token), Ok(claims()));
    }

    #[test]
    fn alg_none_is_refused_as_disallowed() {
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
        let signer = Signer::new(&k);
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
        // The same window, for claims kept since their token was verified.
        let v = verifier(&[&k]);
        assert_eq!(v.check_time(&old), Err(VerifyError::Expired));
        assert_eq!(v.check_time(&future), Err(VerifyError::NotYetValid));
        assert_eq!(v.check_time(&just_expired), Ok(()));
    }

    #[test]
    fn wrong_issuer_and_unexpected_audience_are_refused() {
        let k = key("k1", 1);
        let signer = Signer::new(&k);
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
        let wiki = Verifier::builder()
            .key(&k.verifying_key())
            .audience("wiki")
            .build();
        assert_eq!(wiki.verify(&token), Ok(aud));
        let mail = Verifier::builder()
            .key(&k.verifying_key())
            .audience("mail")
            .build();
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
        let token = Signer::new(&k).sign(&claims()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut forged = claims();
        forged.sub = "root".into();
        let forged_body = Signer::new(&k).sign(&forged).unwrap();
        let body = forged_body.split('.').nth(1).unwrap().to_owned();
        parts[1] = &body;
        assert_eq!(
            verifier(&[&k]).verify(&parts.join(".")),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn expiry_and_not_before_are_exact_at_the_leeway_boundary() {
        let k = key("k1", 1);
        let v = verifier(&[&k]);
        let mut c = claims();
        c.iat = 1_000;
        c.nbf = 1_000;
        c.exp = 2_000;
        let token = Signer::new(&k).sign(&c).unwrap();
        assert!(
            v.verify_at(&token, 2_005).is_ok(),
            "exp + leeway is still valid"
        );
        assert_eq!(v.verify_at(&token, 2_006), Err(VerifyError::Expired));
        assert!(v.verify_at(&token, 995).is_ok(), "nbf - leeway is valid");
        assert_eq!(v.verify_at(&token, 994), Err(VerifyError::NotYetValid));
    }

    #[test]
    fn a_leeway_beyond_the_maximum_is_taken_as_the_maximum() {
        let k = key("k1", 1);
        let mut c = claims();
        c.iat = 1_000;
        c.nbf = 1_000;
        c.exp = 2_000;
        let token = Signer::new(&k).sign(&c).unwrap();
        for asked in [MAX_LEEWAY + 1, 86_400, u64::MAX] {
            let v = Verifier::builder()
                .key(&k.verifying_key())
                .leeway(asked)
                .build();
            assert!(v.verify_at(&token, 2_000 + 300).is_ok(), "{asked}");
            assert_eq!(
                v.verify_at(&token, 2_301),
                Err(VerifyError::Expired),
                "{asked}"
            );
            assert!(v.verify_at(&token, 1_000 - 300).is_ok(), "{asked}");
            assert_eq!(
                v.verify_at(&token, 699),
                Err(VerifyError::NotYetValid),
                "{asked}"
            );
            assert!(format!("{v:?}").contains("leeway: 300"), "{v:?}");
        }
        // Up to the maximum, the leeway is what was asked.
        let v = Verifier::builder()
            .key(&k.verifying_key())
            .leeway(MAX_LEEWAY - 1)
            .build();
        assert_eq!(v.verify_at(&token, 2_300), Err(VerifyError::Expired));
    }

    #[test]
    fn structure_errors_are_malformed_and_alg_none_is_disallowed() {
        let k = key("k1", 1);
        let v = verifier(&[&k]);
        let good = Signer::new(&k).sign(&claims()).unwrap();
        assert_eq!(
            v.verify(&format!("{good}.extra")),
            Err(VerifyError::Malformed)
        );
        assert_eq!(v.verify("a.b"), Err(VerifyError::Malformed));
        let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let body = good.split('.').nth(1).unwrap();
        let no_alg = format!("{}.{body}.sig", b64(r#"{"kid":"k1"}"#));
        assert_eq!(v.verify(&no_alg), Err(VerifyError::Malformed));
        let none = format!("{}.{body}.", b64(r#"{"alg":"none","kid":"k1"}"#));
        assert_eq!(v.verify(&none), Err(VerifyError::DisallowedAlgorithm));
        let rs256 = format!("{}.{body}.sig", b64(r#"{"alg":"RS256","kid":"k1"}"#));
        assert_eq!(v.verify(&rs256), Err(VerifyError::DisallowedAlgorithm));
    }

    #[test]
    fn a_signed_token_missing_a_required_claim_is_malformed() {
        let k = key("k1", 1);
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some("k1".into());
        let no_exp =
            serde_json::json!({"iss": "latchkey", "sub": "alice", "iat": 1, "nbf": 1, "jti": "x"});
        let token = jsonwebtoken::encode(
            &header,
            &no_exp,
            &jsonwebtoken::EncodingKey::from_secret(&[1; 40]),
        )
        .unwrap();
        assert_eq!(verifier(&[&k]).verify(&token), Err(VerifyError::Malformed));
    }

    #[test]
    fn a_revoked_token_is_refused_after_every_other_check() {
        use crate::{ExpiryRules, Revocation, RevocationSet};
        let k = key("k1", 1);
        let set = Arc::new(RevocationSet::new(ExpiryRules {
            max_lifetime: 3600,
            leeway: 5,
        }));
        let v = Verifier::builder()
            .key(&k.verifying_key())
            .issuer("latchkey")
            .revocations(set.clone())
            .build();
        let token = Signer::new(&k).sign(&claims()).unwrap();
        assert_eq!(v.verify(&token), Ok(claims()));
        set.insert(
            Revocation::Token {
                jti: claims().jti,
                exp: claims().exp,
            },
            now(),
        );
        assert_eq!(v.verify(&token), Err(VerifyError::Revoked));
        assert_eq!(v.recheck(&claims()), Err(VerifyError::Revoked));
        assert_eq!(VerifyError::Revoked.code(), "token_revoked");
        // A forged token is refused as forged, not as revoked.
        let other = Signer::new(&key("k1", 2)).sign(&claims()).unwrap();
        assert_eq!(v.verify(&other), Err(VerifyError::BadSignature));
        // Without a revocation source, the token is valid until it expires.
        assert_eq!(verifier(&[&k]).verify(&token), Ok(claims()));
    }
}
