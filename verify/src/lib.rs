//! Verify Latchkey tokens in-process.
//!
//! Latchkey issues signed JWTs: with a shared HMAC secret (HS256, HS384, HS512), or with an
//! Ed25519 (EdDSA) or P-256 (ES256) private key whose public key anyone may hold. This crate
//! holds what both sides of that exchange agree on: the [`Claims`] a token carries, the
//! [`Algorithm`]s, the keys ([`Secret`], [`SigningKey`], [`VerifyingKey`], read from PEM files
//! and JWK sets), the [`Signer`] the service uses, and the [`Verifier`] that services and
//! proxies use to check a token without calling Latchkey.
//!
//! It never depends on an LDAP crate: a service that only checks tokens pulls in JSON, the
//! signature algorithms and time handling, nothing more.
//!
//! A guarded route's decision (find the token, verify it, require groups) is the framework-free
//! [`Requirement`], and its refusals are [`Rejection`]s that know their whole answer. The
//! features only translate them: `actix` (module `actix`: middleware and `Claims` extractor),
//! `tower` (module `tower`: a layer for any tower HTTP stack) and `axum` (module `axum`: a
//! `Claims` extractor, with `tower`). With `jwks`, a `JwksSource` keeps the public keys of
//! Latchkey's `jwks_uri` fresh and verifies with them, in any of these.
//!
//! EdDSA and ES256 are signed and checked with RustCrypto (ed25519-dalek, p256) by default.
//! With `aws-lc` they are signed and checked with aws-lc-rs instead, which signs faster but
//! compiles a C library at build time; keys are read and written by RustCrypto either way, and
//! the API is the same. Latchkey, which signs, turns it on.
//!
//! ```
//! use latchkey_verify::{Algorithm, Claims, Signer, SigningKey, Verifier, VerifyingKey};
//!
//! // Latchkey's side: a private key signs (`latchkey keygen` writes one as PKCS#8 PEM).
//! let key = SigningKey::generate("2026-11", Algorithm::EdDSA)?;
//! let now = chrono::Utc::now().timestamp();
//! let token = Signer::new(&key).sign(&Claims::new("latchkey", "alice", now, now + 600))?;
//!
//! // A verifying service's side: the public keys, here from Latchkey's JWKS document.
//! let jwks = serde_json::json!({ "keys": [key.verifying_key().to_jwk()] }).to_string();
//! let keys = VerifyingKey::from_jwks_json(jwks.as_bytes())?;
//! let verifier = Verifier::builder().keys(&keys).issuer("latchkey").build();
//! assert_eq!(verifier.verify(&token)?.sub, "alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
mod algorithm;
#[cfg(feature = "axum")]
pub mod axum;
mod claims;
mod error_body;
mod extract;
#[cfg(feature = "jwks")]
mod jwks;
mod key_pair;
mod keys;
#[cfg(feature = "redis")]
pub mod redis;
mod requirement;
mod revocation;
mod signer;
#[cfg(test)]
mod test_keys;
#[cfg(feature = "tower")]
pub mod tower;
mod verifier;

pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use claims::{fold_group, Claims, RESERVED_CLAIMS};
pub use error_body::ErrorBody;
pub use extract::{decode_basic, locate_token, token_in_headers, token_text};
/// The JWK types of jsonwebtoken that [`VerifyingKey::from_jwk`] reads and
/// [`VerifyingKey::to_jwk`] writes.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
#[cfg(feature = "jwks")]
pub use jwks::{
    JwksError, JwksSource, JwksSourceBuilder, DEFAULT_MAX_REFRESH, DEFAULT_MIN_REFRESH,
    DEFAULT_TIMEOUT, LEAST_MIN_REFRESH, MAX_JWKS_LEN,
};
pub use keys::{KeyError, Secret, SecretError, SigningKey, VerifyingKey, MIN_SECRET_LEN};
pub use requirement::{
    require_groups, IntoTokenVerifier, Rejection, Requirement, TokenVerifier, CHALLENGE_INVALID,
    CHALLENGE_MISSING,
};
pub use revocation::{user_key, ExpiryRules, Revocation, RevocationSet, Revocations};
pub use signer::{Signer, SigningError};
pub use verifier::{
    Verifier, VerifierBuilder, VerifyError, DEFAULT_LEEWAY, MAX_LEEWAY, MAX_TOKEN_LEN,
};
