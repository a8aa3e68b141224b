//! What a guarded route requires of a request, and how a refusal is answered, free of any HTTP
//! framework: the one decision that the actix middleware (`actix::RequireToken`) and the tower
//! layer (`tower::RequireTokenLayer`) both make, so that they cannot drift apart.
//!
//! A [`Requirement`] takes a request's `Authorization` and `Cookie` header values and gives
//! either the verified [`Claims`] or a [`Rejection`]. A rejection knows its whole answer
//! ([`Rejection::status`], [`Rejection::challenge`], [`Rejection::body`], and
//! `Cache-Control: no-store`); each framework module only copies that answer into its own
//! response type. Nothing here does I/O.

use std::fmt;
use std::sync::Arc;

use crate::{token_in_headers, Claims, ErrorBody, Verifier, VerifyError};

/// What checks a token's signature and claims for a [`Requirement`]: a [`Verifier`] with the
/// keys it was built with, or (feature `jwks`) a `JwksSource` whose keys follow Latchkey's
/// `jwks_uri`. It must answer at once, without waiting on the network.
pub trait TokenVerifier: Send + Sync {
    /// Check `token` and return its claims.
    fn verify_token(&self, token: &str) -> Result<Claims, VerifyError>;
}

impl TokenVerifier for Verifier {
    fn verify_token(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify(token)
    }
}

/// What the middleware constructors take as the verifier: a [`Verifier`], an `Arc<Verifier>`,
/// a `JwksSource` (feature `jwks`), or any `Arc<dyn TokenVerifier>`.
pub trait IntoTokenVerifier {
    /// The verifier, shared.
    fn into_token_verifier(self) -> Arc<dyn TokenVerifier>;
}

impl IntoTokenVerifier for Verifier {
    fn into_token_verifier(self) -> Arc<dyn TokenVerifier> {
        Arc::new(self)
    }
}

impl IntoTokenVerifier for Arc<Verifier> {
    fn into_token_verifier(self) -> Arc<dyn TokenVerifier> {
        self
    }
}

impl IntoTokenVerifier for Arc<dyn TokenVerifier> {
    fn into_token_verifier(self) -> Arc<dyn TokenVerifier> {
        self
    }
}

/// The `WWW-Authenticate` challenge of a 401 for a request that sent no token (RFC 6750: no
/// error code then).
pub const CHALLENGE_MISSING: &str = r#"Bearer realm="latchkey""#;

/// The `WWW-Authenticate` challenge of a 401 for a request whose token was refused.
pub const CHALLENGE_INVALID: &str = r#"Bearer realm="latchkey", error="invalid_token""#;

/// Why a request was turned away, rendered as Latchkey renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// No valid token: 401.
    #[error("{}", .0.message())]
    Token(VerifyError),
    /// A valid token without a required group: 403.
    #[error("This needs membership of the group {0:?}.")]
    MissingGroup(String),
}

impl Rejection {
    /// The HTTP status of the answer: 401 for a token refused or missing, 403 for a group.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::Token(_) => 401,
            Rejection::MissingGroup(_) => 403,
        }
    }

    /// The `error` code of the body: `missing_token`, `invalid_token` or `forbidden`.
    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Token(e) => e.code(),
            Rejection::MissingGroup(_) => "forbidden",
        }
    }

    /// The `WWW-Authenticate` header of the answer: [`CHALLENGE_MISSING`] or
    /// [`CHALLENGE_INVALID`] on a 401, none on a 403 (another token would not help).
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            Rejection::Token(VerifyError::Missing) => Some(CHALLENGE_MISSING),
            Rejection::Token(_) => Some(CHALLENGE_INVALID),
            Rejection::MissingGroup(_) => None,
        }
    }

    /// The JSON body of the answer.
    pub fn body(&self) -> ErrorBody<'static> {
        ErrorBody::new(self.code(), self.to_string(), self.status())
    }

    /// [`Rejection::body`] as JSON text, for a framework that takes the body as bytes.
    pub fn body_json(&self) -> String {
        let body = self.body();
        // Serializing a struct of two strings and an integer cannot fail; were it ever to, the
        // client still gets the status and the challenge.
        serde_json::to_string(&body).unwrap_or_default()
    }
}

/// Require every group in `groups` of verified `claims`: 403 naming the first one missing.
/// Names are compared by [`Claims::has_group`], without regard to case.
pub fn require_groups(claims: &Claims, groups: &[String]) -> Result<(), Rejection> {
    match groups.iter().find(|g| !claims.has_group(g)) {
        Some(missing) => Err(Rejection::MissingGroup(missing.clone())),
        None => Ok(()),
    }
}

/// What a guarded route requires: a token the verifier accepts, found in the `Authorization`
/// header (Bearer, or Basic with the token as username) or in a named cookie, whose claims hold
/// every required group. Cheap to clone: the verifier is shared.
///
/// ```
/// use std::sync::Arc;
/// use latchkey_verify::{Algorithm, Rejection, Requirement, Secret, Verifier, VerifyError, VerifyingKey};
///
/// let key = VerifyingKey::hmac("2026-11", Algorithm::HS256, Secret::new(vec![7; 32])?)?;
/// let verifier = Arc::new(Verifier::builder().key(&key).issuer("latchkey").build());
/// let requirement = Requirement::new(verifier).cookie("latchkey").group("staff");
/// let refused = requirement.check(None, Some(b"theme=dark")).unwrap_err();
/// assert_eq!(refused, Rejection::Token(VerifyError::Missing));
/// assert_eq!((refused.status(), refused.challenge()), (401, Some(r#"Bearer realm="latchkey""#)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Requirement {
    verifier: Arc<dyn TokenVerifier>,
    cookie_name: Option<String>,
    groups: Vec<String>,
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requirement")
            .field("cookie_name", &self.cookie_name)
            .field("groups", &self.groups)
            .finish_non_exhaustive()
    }
}

impl Requirement {
    /// Require a token that `verifier` accepts.
    pub fn new(verifier: impl IntoTokenVerifier) -> Self {
        Requirement {
            verifier: verifier.into_token_verifier(),
            cookie_name: None,
            groups: Vec::new(),
        }
    }

    /// Also accept the token from the cookie `name` (after the `Authorization` header).
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = Some(name.into());
        self
    }

    /// Require membership of `group` too (every group named is required), compared by
    /// [`Claims::has_group`]: `.group("Admins")` accepts a token with the group `admins`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// The cookie the token may come in, if any: a caller reads the `Cookie` header only then.
    pub fn cookie_name(&self) -> Option<&str> {
        self.cookie_name.as_deref()
    }

    /// Decide a request from its `Authorization` and `Cookie` header values (`None` when the
    /// request has no such header): the verified claims, or why it is refused.
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        cookie_header: Option<&[u8]>,
    ) -> Result<Claims, Rejection> {
        let cookie_name = self.cookie_name.as_deref();
        let token = token_in_headers(authorization, cookie_header, cookie_name)
            .map_err(Rejection::Token)?;
        let claims = self
            .verifier
            .verify_token(&token)
            .map_err(Rejection::Token)?;
        require_groups(&claims, &self.groups)?;
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_keys::{key, token};

    fn requirement() -> Requirement {
        Requirement::new(Verifier::builder().key(&key()).issuer("latchkey").build())
    }

    #[test]
    fn each_rejection_knows_its_whole_answer() {
        let missing = Rejection::Token(VerifyError::Missing);
        assert_eq!(missing.status(), 401);
        assert_eq!(missing.challenge(), Some(r#"Bearer realm="latchkey""#));
        assert_eq!(
            missing.body_json(),
            r#"{"error":"missing_token","message":"Send a token: Authorization: Bearer <token>.","status":401}"#
        );
        let expired = Rejection::Token(VerifyError::Expired);
        assert_eq!(expired.status(), 401);
        assert_eq!(
            expired.challenge(),
            Some(r#"Bearer realm="latchkey", error="invalid_token""#)
        );
        assert_eq!(
            expired.body_json(),
            r#"{"error":"invalid_token","message":"The token has expired; request a new one.","status":401}"#
        );
        let group = Rejection::MissingGroup("admins".into());
        assert_eq!(group.status(), 403);
        assert_eq!(group.challenge(), None);
        assert_eq!(
            group.body_json(),
            r#"{"error":"forbidden","message":"This needs membership of the group \"admins\".","status":403}"#
        );
    }

    #[test]
    fn a_token_from_any_accepted_place_passes_with_its_claims() {
        let good = token(&["Staff"], 60);
        let r = requirement().cookie("lk").group("staff");
        let bearer = format!("Bearer {good}");
        assert_eq!(r.check(Some(bearer.as_bytes()), None).unwrap().sub, "alice");
        let cookie = format!("a=1; lk={good}");
        assert_eq!(r.check(None, Some(cookie.as_bytes())).unwrap().sub, "alice");
        // Without a cookie name, the cookie is not a place a token comes from.
        assert_eq!(
            requirement().check(None, Some(cookie.as_bytes())),
            Err(Rejection::Token(VerifyError::Missing))
        );
    }

    #[test]
    fn the_first_missing_group_is_named() {
        let r = requirement().group("staff").group("admins").group("ops");
        let bearer = format!("Bearer {}", token(&["staff"], 60));
        assert_eq!(
            r.check(Some(bearer.as_bytes()), None),
            Err(Rejection::MissingGroup("admins".into()))
        );
        let expired = format!("Bearer {}", token(&["staff", "admins", "ops"], -60));
        assert_eq!(
            r.check(Some(expired.as_bytes()), None),
            Err(Rejection::Token(VerifyError::Expired))
        );
    }
}
