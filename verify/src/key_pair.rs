//! Ed25519 and P-256 keys in the forms that sign and check signatures.
//!
//! RustCrypto (ed25519-dalek, p256) always holds the key: it is what `keys.rs` parses PEM and
//! JWK into, what writes them back, and what gives the seed or scalar. It also signs and checks,
//! unless the feature `aws-lc` is on: then the key is converted once, when it is made, into
//! aws-lc-rs's form (a key pair, a parsed public key), and aws-lc-rs signs and checks with that.
//! The conversion is the only place a key can be refused for aws-lc-rs's sake, so a key that was
//! made signs; a signature never parses a key.
//!
//! Either way a signature is the 64 bytes a JWS carries: Ed25519's R and S (RFC 8037, section
//! 3.1), or ES256's R and S as two 32-byte big-endian integers (RFC 7518, section 3.4), never DER.
//!
//! This module never reads files or documents, and its errors never quote key material.

#[cfg(feature = "aws-lc")]
use std::sync::Arc;

#[cfg(feature = "aws-lc")]
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING, ED25519,
};
#[cfg(feature = "aws-lc")]
use zeroize::{Zeroize, Zeroizing};

use crate::{KeyError, SigningError};

/// The length of an EdDSA (Ed25519) and of an ES256 signature.
pub(crate) const SIGNATURE_LEN: usize = 64;

/// A signature as a JWS carries it, before base64url.
pub(crate) type RawSignature = [u8; SIGNATURE_LEN];

/// The error for a key that RustCrypto read but aws-lc-rs refuses (it should not happen: both
/// check the same things; if it does, the key is refused when it is made, never at a signature).
#[cfg(feature = "aws-lc")]
fn refused(kind: &'static str, error: aws_lc_rs::error::KeyRejected) -> KeyError {
    KeyError::Invalid {
        kind,
        reason: format!("aws-lc-rs refuses it ({error})"),
    }
}

/// `signature` as the 64 bytes of a JWS signature, or why not.
#[cfg(feature = "aws-lc")]
fn raw(signature: &[u8], algorithm: &str) -> Result<RawSignature, SigningError> {
    RawSignature::try_from(signature).map_err(|_| {
        SigningError::Signature(format!(
            "aws-lc-rs made an {algorithm} signature of {} bytes, not {SIGNATURE_LEN}",
            signature.len()
        ))
    })
}

/// An Ed25519 private key, with its public key.
///
/// Cloning shares the aws-lc-rs key pair (an `Arc`): its memory is cleared by aws-lc when the
/// last clone is dropped, as ed25519-dalek clears its own copy.
#[derive(Clone)]
pub(crate) struct Ed25519Private {
    key: ed25519_dalek::SigningKey,
    public: Ed25519Public,
    #[cfg(feature = "aws-lc")]
    pair: Arc<Ed25519KeyPair>,
}

impl Ed25519Private {
    /// The key, made ready to sign.
    pub(crate) fn new(key: ed25519_dalek::SigningKey) -> Result<Self, KeyError> {
        let public = Ed25519Public::new(key.verifying_key())?;
        #[cfg(feature = "aws-lc")]
        let pair = {
            let seed = Zeroizing::new(key.to_bytes());
            // The public key is checked against the one the seed gives.
            Ed25519KeyPair::from_seed_and_public_key(seed.as_ref(), key.verifying_key().as_bytes())
                .map(Arc::new)
                .map_err(|e| refused("Ed25519 private key", e))?
        };
        Ok(Ed25519Private {
            key,
            public,
            #[cfg(feature = "aws-lc")]
            pair,
        })
    }

    /// The RustCrypto key, for writing it out.
    pub(crate) fn key(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    /// The public key.
    pub(crate) fn public(&self) -> &Ed25519Public {
        &self.public
    }

    /// The signature of `message`.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn sign(&self, message: &[u8]) -> Result<RawSignature, SigningError> {
        let signature = self.pair.try_sign(message).map_err(|_| {
            SigningError::Signature("aws-lc-rs could not make the Ed25519 signature".into())
        })?;
        raw(signature.as_ref(), "EdDSA")
    }

    /// The signature of `message`.
    #[cfg(not(feature = "aws-lc"))]
    pub(crate) fn sign(&self, message: &[u8]) -> Result<RawSignature, SigningError> {
        use ed25519_dalek::Signer as _;
        Ok(self.key.sign(message).to_bytes())
    }
}

/// A P-256 private key, with its public key.
///
/// Cloning shares the aws-lc-rs key pair (an `Arc`): its memory is cleared by aws-lc when the
/// last clone is dropped, as p256 clears its own copy.
#[derive(Clone)]
pub(crate) struct P256Private {
    key: p256::ecdsa::SigningKey,
    public: P256Public,
    #[cfg(feature = "aws-lc")]
    pair: Arc<EcdsaKeyPair>,
    /// What aws-lc-rs's ECDSA signing takes as its generator (aws-lc draws the nonce itself).
    #[cfg(feature = "aws-lc")]
    rng: aws_lc_rs::rand::SystemRandom,
}

impl P256Private {
    /// The key, made ready to sign.
    pub(crate) fn new(key: p256::ecdsa::SigningKey) -> Result<Self, KeyError> {
        let public = P256Public::new(*key.verifying_key())?;
        #[cfg(feature = "aws-lc")]
        let pair = {
            let mut scalar = key.to_bytes();
            let point = key.verifying_key().to_encoded_point(false);
            // The public point is checked against the one the scalar gives.
            let pair = EcdsaKeyPair::from_private_key_and_public_key(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &scalar,
                point.as_bytes(),
            );
            (*scalar).zeroize();
            pair.map(Arc::new)
                .map_err(|e| refused("P-256 private key", e))?
        };
        Ok(P256Private {
            key,
            public,
            #[cfg(feature = "aws-lc")]
            pair,
            #[cfg(feature = "aws-lc")]
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    /// The RustCrypto key, for writing it out.
    pub(crate) fn key(&self) -> &p256::ecdsa::SigningKey {
        &self.key
    }

    /// The public key.
    pub(crate) fn public(&self) -> &P256Public {
        &self.public
    }

    /// The ES256 signature of `message`: SHA-256, then ECDSA, as R and S.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn sign(&self, message: &[u8]) -> Result<RawSignature, SigningError> {
        // ECDSA_P256_SHA256_FIXED_SIGNING: R || S, not the ASN.1 form.
        let signature = self.pair.sign(&self.rng, message).map_err(|_| {
            SigningError::Signature("aws-lc-rs could not make the ES256 signature".into())
        })?;
        raw(signature.as_ref(), "ES256")
    }

    /// The ES256 signature of `message`: SHA-256, then ECDSA, as R and S.
    #[cfg(not(feature = "aws-lc"))]
    pub(crate) fn sign(&self, message: &[u8]) -> Result<RawSignature, SigningError> {
        let signature: p256::ecdsa::Signature =
            p256::ecdsa::signature::Signer::try_sign(&self.key, message)
                .map_err(|e| SigningError::Signature(e.to_string()))?;
        RawSignature::try_from(&*signature.to_bytes()).map_err(|_| {
            SigningError::Signature("p256 made an ES256 signature of another length".into())
        })
    }
}

/// An Ed25519 public key, checked when it is made.
#[derive(Clone)]
pub(crate) struct Ed25519Public {
    key: ed25519_dalek::VerifyingKey,
    #[cfg(feature = "aws-lc")]
    parsed: Arc<ParsedPublicKey>,
}

impl Ed25519Public {
    /// The key, made ready to check signatures. Whether it is a small-order point is the
    /// caller's question (`VerifyingKey` refuses those; a private key never gives one).
    pub(crate) fn new(key: ed25519_dalek::VerifyingKey) -> Result<Self, KeyError> {
        Ok(Ed25519Public {
            #[cfg(feature = "aws-lc")]
            parsed: ParsedPublicKey::new(&ED25519, key.as_bytes())
                .map(Arc::new)
                .map_err(|e| refused("Ed25519 public key", e))?,
            key,
        })
    }

    /// The RustCrypto key, for writing it out.
    pub(crate) fn key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.key
    }

    /// Whether `signature` is this key's signature of `message` (RFC 8032, S below the group
    /// order, as jsonwebtoken checks it).
    #[cfg(feature = "aws-lc")]
    pub(crate) fn accepts(&self, message: &[u8], signature: &RawSignature) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }

    /// Whether `signature` is this key's signature of `message` (RFC 8032, S below the group
    /// order, as jsonwebtoken checks it).
    #[cfg(not(feature = "aws-lc"))]
    pub(crate) fn accepts(&self, message: &[u8], signature: &RawSignature) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        ed25519_dalek::Verifier::verify(&self.key, message, &signature).is_ok()
    }
}

/// A P-256 public key, its point checked to be on the curve when it is made.
#[derive(Clone)]
pub(crate) struct P256Public {
    key: p256::ecdsa::VerifyingKey,
    #[cfg(feature = "aws-lc")]
    parsed: Arc<ParsedPublicKey>,
}

impl P256Public {
    /// The key, made ready to check signatures.
    pub(crate) fn new(key: p256::ecdsa::VerifyingKey) -> Result<Self, KeyError> {
        Ok(P256Public {
            #[cfg(feature = "aws-lc")]
            parsed: ParsedPublicKey::new(
                &ECDSA_P256_SHA256_FIXED,
                key.to_encoded_point(false).as_bytes(),
            )
            .map(Arc::new)
            .map_err(|e| refused("P-256 public key", e))?,
            key,
        })
    }

    /// The RustCrypto key, for writing it out.
    pub(crate) fn key(&self) -> &p256::ecdsa::VerifyingKey {
        &self.key
    }

    /// Whether `signature` (R and S) is this key's ES256 signature of `message`. An R or S of
    /// zero, or not below the group order, is no valid signature.
    #[cfg(feature = "aws-lc")]
    pub(crate) fn accepts(&self, message: &[u8], signature: &RawSignature) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }

    /// Whether `signature` (R and S) is this key's ES256 signature of `message`. An R or S of
    /// zero, or not below the group order, is no valid signature.
    #[cfg(not(feature = "aws-lc"))]
    pub(crate) fn accepts(&self, message: &[u8], signature: &RawSignature) -> bool {
        let Ok(signature) = p256::ecdsa::Signature::from_slice(signature) else {
            return false;
        };
        p256::ecdsa::signature::Verifier::verify(&self.key, message, &signature).is_ok()
    }
}
