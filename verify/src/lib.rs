//! Verify Latchkey tokens in-process.
//!
//! Latchkey issues HMAC-signed JWTs. This crate holds what both sides of that exchange agree
//! on: the [`Claims`] a token carries, the [`Secret`] and [`HmacKey`] types that sign it, the
//! [`Signer`] the service uses, and the [`Verifier`] that services and proxies use to check a
//! token without calling Latchkey.
//!
//! It never depends on an LDAP crate: a service that only checks tokens pulls in JSON, HMAC and
//! time handling, nothing more.
//!
//! ```
//! use latchkey_verify::{Claims, HmacAlgorithm, HmacKey, Secret, Signer, Verifier};
//!
//! let key = HmacKey::new("2026-11", Secret::new(b"a-secret-of-at-least-32-bytes-long!".to_vec())?);
//! let signer = Signer::new(&key, HmacAlgorithm::HS256);
//! let now = chrono::Utc::now().timestamp();
//! let claims = Claims::new("latchkey", "alice", now, now + 600);
//! let token = signer.sign(&claims)?;
//!
//! let verifier = Verifier::builder().key(&key).issuer("latchkey").build();
//! assert_eq!(verifier.verify(&token)?.sub, "alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

#[cfg(feature = "actix")]
pub mod actix;
mod claims;
mod error_body;
mod extract;
mod keys;
#[cfg(feature = "redis")]
pub mod redis;
mod revocation;
mod verifier;

pub use claims::{fold_group, Claims, RESERVED_CLAIMS};
pub use error_body::ErrorBody;
pub use extract::{decode_basic, locate_token, token_in_headers, token_text};
pub use keys::{HmacAlgorithm, HmacKey, Secret, SecretError, Signer, SigningError, MIN_SECRET_LEN};
pub use revocation::{user_key, ExpiryRules, Revocation, RevocationSet, Revocations};
pub use verifier::{
    Verifier, VerifierBuilder, VerifyError, DEFAULT_LEEWAY, MAX_LEEWAY, MAX_TOKEN_LEN,
};
