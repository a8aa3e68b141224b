//! The signer: claims in, a compact JWS out, with one key and its algorithm.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha384, Sha512};

use crate::key_pair::{Ed25519Private, P256Private};
use crate::keys::PrivateRef;
use crate::{Algorithm, Claims, SigningKey};

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The claims could not be written as JSON.
    #[error("could not sign the token: {0}")]
    Claims(#[from] serde_json::Error),
    /// The signature could not be made.
    #[error("could not sign the token: {0}")]
    Signature(String),
}

/// The signing state, made once per key: an HMAC keyed once (each signature starts from a
/// copy of the keyed state), or a private key as parsed when the key was made (which library
/// signs with it is `key_pair.rs`'s business).
enum KeyedSigner {
    HS256(Hmac<Sha256>),
    HS384(Hmac<Sha384>),
    HS512(Hmac<Sha512>),
    Ed25519(Box<Ed25519Private>),
    P256(Box<P256Private>),
}

impl KeyedSigner {
    fn new(key: &SigningKey) -> Self {
        // HMAC takes keys of any length (RFC 2104, section 2: longer ones are hashed first),
        // and hmac's new_from_slice only fails for fixed-length MACs.
        #[allow(clippy::expect_used)]
        fn keyed<M: Mac + KeyInit>(secret: &[u8]) -> M {
            <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
        }
        match key.private() {
            PrivateRef::Hmac(Algorithm::HS384, secret) => {
                KeyedSigner::HS384(keyed(secret.expose()))
            }
            PrivateRef::Hmac(Algorithm::HS512, secret) => {
                KeyedSigner::HS512(keyed(secret.expose()))
            }
            // SigningKey::hmac takes HMAC algorithms only.
            PrivateRef::Hmac(_, secret) => KeyedSigner::HS256(keyed(secret.expose())),
            PrivateRef::Ed25519(private) => KeyedSigner::Ed25519(Box::new(private.clone())),
            PrivateRef::P256(private) => KeyedSigner::P256(Box::new(private.clone())),
        }
    }

    /// Append `.` and base64url(signature of the signing input) to `token`, which holds the
    /// signing input (`header.payload`).
    fn append_signature(&self, token: &mut String) -> Result<(), SigningError> {
        fn finish<M: Mac + Clone>(mac: &M, token: &mut String) {
            let mut mac = mac.clone();
            mac.update(token.as_bytes());
            let tag = mac.finalize().into_bytes();
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(tag, token);
        }
        match self {
            KeyedSigner::HS256(mac) => finish(mac, token),
            KeyedSigner::HS384(mac) => finish(mac, token),
            KeyedSigner::HS512(mac) => finish(mac, token),
            KeyedSigner::Ed25519(key) => {
                let signature = key.sign(token.as_bytes())?;
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature, token);
            }
            KeyedSigner::P256(key) => {
                // RFC 7518, section 3.4: R and S as two 32-byte big-endian integers, not DER.
                let signature = key.sign(token.as_bytes())?;
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature, token);
            }
        }
        Ok(())
    }
}

/// Signs claims with one key, writing its algorithm as `alg` and its id as `kid`.
///
/// The header is the same for every token and the key is prepared once (an HMAC's keyed
/// state, a parsed private key), so a signature costs the claims' JSON and one MAC or one
/// signature over the message. The result is a compact JWS (RFC 7515) that jsonwebtoken, and
/// so [`crate::Verifier`], reads like its own.
pub struct Signer {
    algorithm: Algorithm,
    kid: String,
    /// `base64url(header JSON) + "."`.
    encoded_header: String,
    keyed: KeyedSigner,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("alg", &self.algorithm)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer using `key`, with the key's algorithm.
    pub fn new(key: &SigningKey) -> Self {
        let algorithm = key.algorithm();
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": algorithm.name(),
            "kid": key.id(),
        });
        let mut encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        encoded_header.push('.');
        Signer {
            algorithm,
            kid: key.id().to_owned(),
            encoded_header,
            keyed: KeyedSigner::new(key),
        }
    }

    /// The algorithm of the signing key.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, SigningError> {
        let payload = serde_json::to_vec(claims)?;
        // header, payload, '.', and the largest signature (HS512's 64 bytes, as Ed25519 and
        // P-256 ones), in base64url.
        let capacity = self.encoded_header.len() + payload.len().div_ceil(3) * 4 + 1 + 86;
        let mut token = String::with_capacity(capacity);
        token.push_str(&self.encoded_header);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        self.keyed.append_signature(&mut token)?;
        Ok(token)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Secret;

    fn claims() -> Claims {
        let mut claims = Claims::new(
            "latchkey",
            "alice \"the\" admin",
            1_700_000_000,
            4_102_444_800,
        );
        claims.groups = vec!["ops".into(), "d\u{e9}v".into()];
        claims
    }

    #[test]
    fn hmac_tokens_are_standard_jws_for_each_algorithm() {
        use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
        let secret = b"0123456789abcdef0123456789abcdef-another-16".to_vec();
        for algorithm in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let key = SigningKey::hmac("k-2026", algorithm, Secret::new(secret.clone()).unwrap())
                .unwrap();
            let token = Signer::new(&key).sign(&claims()).unwrap();
            // Read back by jsonwebtoken alone, not by this crate's Verifier.
            let header = decode_header(&token).unwrap();
            assert_eq!(header.alg, algorithm.jwt(), "{algorithm}");
            assert_eq!(header.kid.as_deref(), Some("k-2026"));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            let mut validation = Validation::new(algorithm.jwt());
            validation.set_issuer(&["latchkey"]);
            let read = decode::<Claims>(&token, &DecodingKey::from_secret(&secret), &validation)
                .unwrap()
                .claims;
            assert_eq!(read, claims(), "{algorithm}");
            // Another key's signature does not pass.
            let other = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef-wrong-key!");
            assert!(decode::<Claims>(&token, &other, &validation).is_err());
        }
    }

    #[test]
    fn key_pair_tokens_are_standard_jws_read_with_the_public_key_only() {
        use jsonwebtoken::{decode, decode_header, Validation};
        for algorithm in [Algorithm::EdDSA, Algorithm::ES256] {
            let key = SigningKey::generate("pair", algorithm).unwrap();
            let token = Signer::new(&key).sign(&claims()).unwrap();
            let header = decode_header(&token).unwrap();
            assert_eq!(header.alg, algorithm.jwt(), "{algorithm}");
            assert_eq!(header.kid.as_deref(), Some("pair"));
            let signature = URL_SAFE_NO_PAD
                .decode(token.rsplit('.').next().unwrap())
                .unwrap();
            assert_eq!(
                signature.len(),
                64,
                "{algorithm}: raw R||S or Ed25519, not DER"
            );
            // jsonwebtoken, given only the public JWK.
            let jwk = key.verifying_key().to_jwk().unwrap();
            let public = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = Validation::new(algorithm.jwt());
            validation.set_issuer(&["latchkey"]);
            let read = decode::<Claims>(&token, &public, &validation)
                .unwrap()
                .claims;
            assert_eq!(read, claims(), "{algorithm}");
            let other = SigningKey::generate("pair", algorithm).unwrap();
            let other =
                jsonwebtoken::DecodingKey::from_jwk(&other.verifying_key().to_jwk().unwrap())
                    .unwrap();
            assert!(decode::<Claims>(&token, &other, &validation).is_err());
        }
    }
}
