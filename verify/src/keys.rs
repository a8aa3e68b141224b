//! HMAC keys and the signer.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha384, Sha512};
use zeroize::Zeroizing;

use crate::Claims;

/// The shortest HMAC secret accepted, in bytes (256 bits, the output size of SHA-256).
pub const MIN_SECRET_LEN: usize = 32;

/// An HMAC secret of at least [`MIN_SECRET_LEN`] bytes, wiped from memory on drop.
/// It never prints: `Debug` shows its length only.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

/// Why a secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret is shorter than [`MIN_SECRET_LEN`].
    #[error(
        "the secret is {0} bytes long; at least {MIN_SECRET_LEN} random bytes are needed \
         (make one with `openssl rand -base64 48`)"
    )]
    TooShort(usize),
    /// The secret file cannot be read.
    #[error("cannot read {0}")]
    Unreadable(String),
}

impl Secret {
    /// Wrap `bytes`, refusing anything shorter than [`MIN_SECRET_LEN`].
    pub fn new(bytes: Vec<u8>) -> Result<Self, SecretError> {
        let bytes = Zeroizing::new(bytes);
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort(bytes.len()));
        }
        Ok(Secret(bytes))
    }

    /// Read a secret from a file, as Latchkey's `secret_file` does: the bytes of the file
    /// without the trailing line break that editors and `echo` add.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, SecretError> {
        let path = path.as_ref();
        let mut bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| SecretError::Unreadable(format!("{}: {e}", path.display())))?,
        );
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Secret::new(bytes.to_vec())
    }

    /// The raw bytes, for the HMAC.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(*** {} bytes)", self.0.len())
    }
}

/// The HMAC algorithms Latchkey signs with. Nothing else is ever accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum HmacAlgorithm {
    /// HMAC with SHA-256.
    #[default]
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
}

impl HmacAlgorithm {
    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            HmacAlgorithm::HS256 => Algorithm::HS256,
            HmacAlgorithm::HS384 => Algorithm::HS384,
            HmacAlgorithm::HS512 => Algorithm::HS512,
        }
    }

    pub(crate) fn from_jwt(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::HS256 => Some(HmacAlgorithm::HS256),
            Algorithm::HS384 => Some(HmacAlgorithm::HS384),
            Algorithm::HS512 => Some(HmacAlgorithm::HS512),
            _ => None,
        }
    }
}

impl fmt::Display for HmacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A secret with the key id (`kid`) that names it in token headers.
#[derive(Debug, Clone)]
pub struct HmacKey {
    id: String,
    secret: Secret,
}

impl HmacKey {
    /// A key named `id`.
    pub fn new(id: impl Into<String>, secret: Secret) -> Self {
        HmacKey {
            id: id.into(),
            secret,
        }
    }

    /// The key id, as written in the `kid` header.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the token: {0}")]
pub struct SigningError(#[from] serde_json::Error);

/// An HMAC keyed once; each signature starts from a copy of the keyed state.
enum KeyedMac {
    HS256(Hmac<Sha256>),
    HS384(Hmac<Sha384>),
    HS512(Hmac<Sha512>),
}

impl KeyedMac {
    fn new(algorithm: HmacAlgorithm, secret: &[u8]) -> Self {
        // HMAC takes keys of any length (RFC 2104, section 2: longer ones are hashed first),
        // and hmac's new_from_slice only fails for fixed-length MACs.
        #[allow(clippy::expect_used)]
        fn keyed<M: Mac + KeyInit>(secret: &[u8]) -> M {
            <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
        }
        match algorithm {
            HmacAlgorithm::HS256 => KeyedMac::HS256(keyed(secret)),
            HmacAlgorithm::HS384 => KeyedMac::HS384(keyed(secret)),
            HmacAlgorithm::HS512 => KeyedMac::HS512(keyed(secret)),
        }
    }

    /// Append `.` and base64url(HMAC(`signing input`)) to `token`, which holds the signing
    /// input (`header.payload`).
    fn append_signature(&self, token: &mut String) {
        fn finish<M: Mac + Clone>(mac: &M, token: &mut String) {
            let mut mac = mac.clone();
            mac.update(token.as_bytes());
            let tag = mac.finalize().into_bytes();
            token.push('.');
            URL_SAFE_NO_PAD.encode_string(tag, token);
        }
        match self {
            KeyedMac::HS256(mac) => finish(mac, token),
            KeyedMac::HS384(mac) => finish(mac, token),
            KeyedMac::HS512(mac) => finish(mac, token),
        }
    }
}

/// Signs claims with one key and algorithm, writing the key's id as `kid`.
///
/// The header is the same for every token and the key's HMAC state is computed once, so a
/// signature costs the claims' JSON and one HMAC over the message. The result is a compact
/// JWS (RFC 7515) that jsonwebtoken, and so [`crate::Verifier`], reads like its own.
pub struct Signer {
    algorithm: HmacAlgorithm,
    kid: String,
    /// `base64url(header JSON) + "."`.
    encoded_header: String,
    mac: KeyedMac,
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
    /// A signer using `key` with `algorithm`.
    pub fn new(key: &HmacKey, algorithm: HmacAlgorithm) -> Self {
        let header = serde_json::json!({
            "typ": "JWT",
            "alg": algorithm.to_string(),
            "kid": key.id,
        });
        let mut encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        encoded_header.push('.');
        Signer {
            algorithm,
            kid: key.id.clone(),
            encoded_header,
            mac: KeyedMac::new(algorithm, key.secret.expose()),
        }
    }

    /// The compact JWS of `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, SigningError> {
        let payload = serde_json::to_vec(claims)?;
        // header, payload, '.', and the largest (HS512) signature, in base64url.
        let capacity = self.encoded_header.len() + payload.len().div_ceil(3) * 4 + 1 + 86;
        let mut token = String::with_capacity(capacity);
        token.push_str(&self.encoded_header);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        self.mac.append_signature(&mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secret_is_refused_with_its_length() {
        let err = Secret::new(vec![7; 31]).err();
        assert_eq!(err, Some(SecretError::TooShort(31)));
        assert!(Secret::new(vec![7; 32]).is_ok());
    }

    #[test]
    fn a_secret_file_loses_its_trailing_line_break_only() {
        let dir = std::env::temp_dir().join(format!("latchkey-verify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, " 0123456789abcdef0123456789abcdef \r\n").unwrap();
        let secret = Secret::from_file(&path).unwrap();
        assert_eq!(secret.expose(), b" 0123456789abcdef0123456789abcdef ");
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = Secret::from_file(dir.join("missing")).unwrap_err();
        assert!(matches!(missing, SecretError::Unreadable(m) if m.contains("missing")));
    }

    #[test]
    fn signed_tokens_are_standard_jws_for_each_algorithm() {
        use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};
        let secret = b"0123456789abcdef0123456789abcdef-another-16".to_vec();
        let key = HmacKey::new("k-2026", Secret::new(secret.clone()).unwrap());
        let mut claims = Claims::new(
            "latchkey",
            "alice \"the\" admin",
            1_700_000_000,
            4_102_444_800,
        );
        claims.groups = vec!["ops".into(), "d\u{e9}v".into()];
        for algorithm in [
            HmacAlgorithm::HS256,
            HmacAlgorithm::HS384,
            HmacAlgorithm::HS512,
        ] {
            let token = Signer::new(&key, algorithm).sign(&claims).unwrap();
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
            assert_eq!(read, claims, "{algorithm}");
            // Another key's signature does not pass.
            let other = DecodingKey::from_secret(b"0123456789abcdef0123456789abcdef-wrong-key!");
            assert!(decode::<Claims>(&token, &other, &validation).is_err());
        }
    }

    #[test]
    fn secret_debug_never_shows_the_bytes() {
        let secret = Secret::new(b"super-secret-value-that-is-long!".to_vec());
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Ok(Secret(*** 32 bytes))");
    }
}
