//! The signing algorithms Latchkey knows, by their JWS names (RFC 7518, RFC 8037).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A JWS signing algorithm Latchkey signs or verifies with. Nothing else is ever accepted:
/// `none`, RSA and the other curves have no variant.
///
/// Every key has exactly one algorithm ([`crate::SigningKey::algorithm`],
/// [`crate::VerifyingKey::algorithm`]), and a token is checked only with the algorithm of the
/// key its `kid` names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum Algorithm {
    /// HMAC with SHA-256: a shared secret that signs and verifies. Latchkey's default.
    #[default]
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// Ed25519 signatures (RFC 8037): a private key signs, its public key verifies.
    EdDSA,
    /// ECDSA on P-256 with SHA-256: a private key signs, its public key verifies.
    ES256,
}

/// A name that is no algorithm Latchkey knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a signing algorithm Latchkey knows; use one of HS256, HS384, HS512, EdDSA, ES256 (spelled exactly so)")]
pub struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// Every algorithm, HMAC first.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::EdDSA,
        Algorithm::ES256,
    ];

    /// The name in a token's `alg` header and a JWK's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
        }
    }

    /// The algorithm named exactly `name` (JWS names are case-sensitive: `eddsa` or `hs256`
    /// name nothing).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "HS256" => Some(Algorithm::HS256),
            "HS384" => Some(Algorithm::HS384),
            "HS512" => Some(Algorithm::HS512),
            "EdDSA" => Some(Algorithm::EdDSA),
            "ES256" => Some(Algorithm::ES256),
            _ => None,
        }
    }

    /// Whether the key is a shared secret (HS256/384/512), which can sign as well as verify.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::HS384 => jsonwebtoken::Algorithm::HS384,
            Algorithm::HS512 => jsonwebtoken::Algorithm::HS512,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or_else(|| UnknownAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_exactly_and_case_matters() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
            assert_eq!(alg.to_string(), alg.name());
            assert_eq!(
                serde_json::to_string(&alg).ok(),
                Some(format!("\"{}\"", alg.name()))
            );
            assert_eq!(format!("{:?}", alg.jwt()), alg.name());
        }
        for wrong in [
            "eddsa", "EDDSA", "hs256", "Es256", "none", "RS256", "ES384", "",
        ] {
            assert_eq!(Algorithm::from_name(wrong), None, "{wrong}");
        }
        assert_eq!(
            "eddsa".parse::<Algorithm>().err().map(|e| e.to_string()),
            Some(
                "\"eddsa\" is not a signing algorithm Latchkey knows; use one of HS256, HS384, \
                 HS512, EdDSA, ES256 (spelled exactly so)"
                    .to_owned()
            )
        );
        assert!(Algorithm::HS512.is_hmac());
        assert!(!Algorithm::EdDSA.is_hmac() && !Algorithm::ES256.is_hmac());
    }
}
