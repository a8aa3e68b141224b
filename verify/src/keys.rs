//! Keys: HMAC secrets, Ed25519 and P-256 key pairs, read from PEM files and JWK documents.
//!
//! A key is always an id (the `kid` of the tokens it signs) and exactly one [`Algorithm`]:
//! the algorithm is part of the key, never taken from a token. A [`SigningKey`] holds a
//! private part (or an HMAC secret); a [`VerifyingKey`] holds what checks a signature: an HMAC
//! secret, or a public key. Only public keys ever leave as JWKs ([`VerifyingKey::to_jwk`]).
//!
//! Parsing errors say what the file or document is and what to do about it; they never quote
//! key material.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType,
    PublicKeyUse,
};
use jsonwebtoken::DecodingKey;
use p256::pkcs8::der::pem;
use p256::pkcs8::spki::SubjectPublicKeyInfoRef;
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, LineEnding, ObjectIdentifier,
    PrivateKeyInfo,
};
use zeroize::Zeroizing;

use crate::key_pair::{
    Ed25519Private, Ed25519Public, P256Private, P256Public, RawSignature, SIGNATURE_LEN,
};
use crate::Algorithm;

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
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SecretError> {
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

/// Why a key could not be made, read or published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An HMAC key was asked for with an algorithm that is not HMAC.
    #[error("{0} is not an HMAC algorithm; a secret signs with HS256, HS384 or HS512 only")]
    NotHmac(Algorithm),
    /// A key pair was asked for with an HMAC algorithm.
    #[error("{0} uses a shared secret, not a key pair; key pairs are EdDSA or ES256")]
    NotKeyPair(Algorithm),
    /// The key file cannot be read.
    #[error("cannot read {path}: {reason}")]
    Unreadable {
        /// The file.
        path: String,
        /// What the operating system said.
        reason: String,
    },
    /// The text is not the kind of PEM document expected; the message says what it is and
    /// what to do.
    #[error("{0}")]
    Pem(String),
    /// The key is of a type Latchkey does not sign or verify with.
    #[error("the key is {0}; Latchkey's key pairs are Ed25519 (EdDSA) and P-256 (ES256)")]
    Unsupported(String),
    /// The key is of a known type, but its bytes are not a valid key of that type.
    #[error("the {kind} is not valid: {reason}")]
    Invalid {
        /// Which kind of key was being read.
        kind: &'static str,
        /// Why it is not valid.
        reason: String,
    },
    /// A JWK cannot be used as a verifying key.
    #[error("the JWK {} cannot be used: {reason}", kid.as_deref().map_or_else(|| "without a kid".to_owned(), |k| format!("{k:?}")))]
    Jwk {
        /// The key's `kid`, when it has one.
        kid: Option<String>,
        /// Why not.
        reason: String,
    },
    /// A JWKS document is not valid JSON of the right shape, or names a key twice.
    #[error("the JWKS is not valid: {0}")]
    Jwks(String),
}

/// The OIDs of the key types read from PKCS#8 and SPKI documents.
const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const OID_P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const OID_P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
const OID_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const OID_ED448: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.113");

/// The key pair algorithm of a key with algorithm `oid` and curve `curve`, or what it is
/// instead, for the error.
fn key_pair_algorithm(
    oid: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
) -> Result<Algorithm, KeyError> {
    match (oid, curve) {
        (OID_ED25519, _) => Ok(Algorithm::EdDSA),
        (OID_EC_PUBLIC_KEY, Some(OID_P256)) => Ok(Algorithm::ES256),
        (OID_EC_PUBLIC_KEY, Some(OID_P384)) => {
            Err(KeyError::Unsupported("an EC key on the curve P-384".into()))
        }
        (OID_EC_PUBLIC_KEY, Some(OID_P521)) => {
            Err(KeyError::Unsupported("an EC key on the curve P-521".into()))
        }
        (OID_EC_PUBLIC_KEY, other) => Err(KeyError::Unsupported(format!(
            "an EC key on the curve {}",
            other.map_or_else(|| "(none named)".to_owned(), |c| c.to_string())
        ))),
        (OID_RSA, _) => Err(KeyError::Unsupported("an RSA key".into())),
        (OID_ED448, _) => Err(KeyError::Unsupported("an Ed448 key".into())),
        (other, _) => Err(KeyError::Unsupported(format!(
            "of the type with OID {other}"
        ))),
    }
}

/// Decode a PEM document, expecting `expected` as its label; every other label gets a
/// sentence that says what the file is and what to do.
fn decode_pem(text: &str, expected: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let (label, der) = pem::decode_vec(text.trim().as_bytes()).map_err(|e| {
        KeyError::Pem(format!(
            "this is not a PEM document ({e}); expected one block from \
             -----BEGIN {expected}----- to -----END {expected}-----, and nothing else in the file"
        ))
    })?;
    let der = Zeroizing::new(der);
    let private = expected == "PRIVATE KEY";
    match (label, private) {
        (l, _) if l == expected => Ok(der),
        ("ENCRYPTED PRIVATE KEY", true) => Err(KeyError::Pem(
            "the private key is encrypted; Latchkey reads unencrypted PKCS#8 keys (decrypt it \
             with `openssl pkey -in KEY -out PLAIN` and keep PLAIN mode 0600)"
                .into(),
        )),
        ("EC PRIVATE KEY", true) => Err(KeyError::Pem(
            "the key is in SEC1 format (BEGIN EC PRIVATE KEY); convert it to PKCS#8 with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`"
                .into(),
        )),
        ("RSA PRIVATE KEY", true) | ("RSA PUBLIC KEY", false) => {
            Err(KeyError::Unsupported("an RSA key".into()))
        }
        ("PUBLIC KEY", true) => Err(KeyError::Pem(
            "this is a public key (BEGIN PUBLIC KEY); signing needs the private key, in PKCS#8 \
             (BEGIN PRIVATE KEY)"
                .into(),
        )),
        ("PRIVATE KEY" | "ENCRYPTED PRIVATE KEY" | "EC PRIVATE KEY", false) => Err(KeyError::Pem(
            "this is a private key; give the public key instead (BEGIN PUBLIC KEY: \
                 `openssl pkey -in KEY -pubout`)"
                .into(),
        )),
        (other, _) => Err(KeyError::Pem(format!(
            "this PEM document is a {other:?}, not a {expected:?}"
        ))),
    }
}

/// The private part of a [`SigningKey`]: a key pair is made ready to sign once, here (see
/// `key_pair.rs` for which library signs).
#[derive(Clone)]
enum Private {
    Hmac(Algorithm, Secret),
    Ed25519(Box<Ed25519Private>),
    P256(Box<P256Private>),
}

/// A key that signs: an id, an algorithm, and an HMAC secret or a private key.
///
/// `Debug` shows the id and the algorithm only; the private part is wiped from memory on drop.
#[derive(Clone)]
pub struct SigningKey {
    id: String,
    private: Private,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HMAC key named `id`; `algorithm` must be HS256, HS384 or HS512.
    pub fn hmac(
        id: impl Into<String>,
        algorithm: Algorithm,
        secret: Secret,
    ) -> Result<Self, KeyError> {
        if !algorithm.is_hmac() {
            return Err(KeyError::NotHmac(algorithm));
        }
        Ok(SigningKey {
            id: id.into(),
            private: Private::Hmac(algorithm, secret),
        })
    }

    /// A private key from a PKCS#8 PEM document (`-----BEGIN PRIVATE KEY-----`), as
    /// `latchkey keygen` and `openssl genpkey` write them. The key's type gives its
    /// algorithm: Ed25519 keys sign EdDSA, P-256 keys ES256; every other type is refused.
    pub fn from_pkcs8_pem(id: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let der = decode_pem(pem, "PRIVATE KEY")?;
        let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| KeyError::Invalid {
            kind: "PKCS#8 private key",
            reason: e.to_string(),
        })?;
        let algorithm =
            key_pair_algorithm(info.algorithm.oid, info.algorithm.parameters_oid().ok())?;
        let private = match algorithm {
            Algorithm::EdDSA => Private::Ed25519(Box::new(Ed25519Private::new(
                ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|e| KeyError::Invalid {
                    kind: "Ed25519 private key",
                    reason: e.to_string(),
                })?,
            )?)),
            _ => Private::P256(Box::new(P256Private::new(
                p256::ecdsa::SigningKey::from_pkcs8_der(&der).map_err(|e| KeyError::Invalid {
                    kind: "P-256 private key",
                    reason: e.to_string(),
                })?,
            )?)),
        };
        Ok(SigningKey {
            id: id.into(),
            private,
        })
    }

    /// [`SigningKey::from_pkcs8_pem`] of the file at `path`.
    pub fn from_pkcs8_pem_file(
        id: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, KeyError> {
        SigningKey::from_pkcs8_pem(id, &read_key_file(path.as_ref())?)
    }

    /// A new key pair for `algorithm` (EdDSA or ES256), from the operating system's random
    /// number generator.
    pub fn generate(id: impl Into<String>, algorithm: Algorithm) -> Result<Self, KeyError> {
        let mut rng = rand_core::OsRng;
        let private = match algorithm {
            Algorithm::EdDSA => {
                let mut seed = Zeroizing::new([0u8; 32]);
                rand_core::RngCore::try_fill_bytes(&mut rng, seed.as_mut()).map_err(|e| {
                    KeyError::Invalid {
                        kind: "random seed",
                        reason: e.to_string(),
                    }
                })?;
                Private::Ed25519(Box::new(Ed25519Private::new(
                    ed25519_dalek::SigningKey::from_bytes(&seed),
                )?))
            }
            Algorithm::ES256 => Private::P256(Box::new(P256Private::new(
                p256::ecdsa::SigningKey::random(&mut rng),
            )?)),
            hmac => return Err(KeyError::NotKeyPair(hmac)),
        };
        Ok(SigningKey {
            id: id.into(),
            private,
        })
    }

    /// The private key as a PKCS#8 PEM document, for a key pair; wiped from memory on drop.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let encoded = match &self.private {
            Private::Hmac(algorithm, _) => return Err(KeyError::NotKeyPair(*algorithm)),
            Private::Ed25519(private) => private.key().to_pkcs8_pem(LineEnding::LF),
            Private::P256(private) => private.key().to_pkcs8_pem(LineEnding::LF),
        };
        encoded.map_err(|e| KeyError::Invalid {
            kind: "private key",
            reason: e.to_string(),
        })
    }

    /// The key id, as written in the `kid` header.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        match &self.private {
            Private::Hmac(algorithm, _) => *algorithm,
            Private::Ed25519(_) => Algorithm::EdDSA,
            Private::P256(_) => Algorithm::ES256,
        }
    }

    /// The key that checks this key's signatures: the same secret for HMAC, the public key
    /// for a key pair.
    pub fn verifying_key(&self) -> VerifyingKey {
        let public = match &self.private {
            Private::Hmac(algorithm, secret) => {
                Public::Hmac(*algorithm, DecodingKey::from_secret(secret.expose()))
            }
            Private::Ed25519(private) => Public::Ed25519(Box::new(private.public().clone())),
            Private::P256(private) => Public::P256(Box::new(private.public().clone())),
        };
        VerifyingKey::new(self.id.clone(), public)
    }

    /// The key's secret bytes (the HMAC secret, the Ed25519 seed, the P-256 scalar), wiped
    /// from memory on drop: for deriving other secrets from the signing key (Latchkey derives
    /// its sign-in form's CSRF key so), never for publishing.
    pub fn secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(match &self.private {
            Private::Hmac(_, secret) => secret.expose().to_vec(),
            Private::Ed25519(private) => private.key().to_bytes().to_vec(),
            Private::P256(private) => private.key().to_bytes().to_vec(),
        })
    }

    pub(crate) fn private(&self) -> PrivateRef<'_> {
        match &self.private {
            Private::Hmac(algorithm, secret) => PrivateRef::Hmac(*algorithm, secret),
            Private::Ed25519(key) => PrivateRef::Ed25519(key),
            Private::P256(key) => PrivateRef::P256(key),
        }
    }
}

/// A view of a signing key's private part, for the signer.
pub(crate) enum PrivateRef<'a> {
    Hmac(Algorithm, &'a Secret),
    Ed25519(&'a Ed25519Private),
    P256(&'a P256Private),
}

/// What checks a signature: the secret (in jsonwebtoken's form, which checks HMAC tags in
/// constant time), or a public key parsed (and its point checked) once, when the key is made,
/// so that checking a signature parses no key.
#[derive(Clone)]
enum Public {
    Hmac(Algorithm, DecodingKey),
    Ed25519(Box<Ed25519Public>),
    P256(Box<P256Public>),
}

/// A key that verifies: an id, an algorithm, and an HMAC secret or a public key.
///
/// Built from a [`SigningKey`], an SPKI PEM file ([`VerifyingKey::from_public_key_pem`]), or a
/// JWK ([`VerifyingKey::from_jwk`], [`VerifyingKey::from_jwks_json`]). The public key is
/// checked when the key is made (a point not on its curve is refused here, not at the first
/// token).
#[derive(Clone)]
pub struct VerifyingKey {
    id: String,
    public: Public,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    fn new(id: String, public: Public) -> Self {
        VerifyingKey { id, public }
    }

    /// An HMAC key named `id`; `algorithm` must be HS256, HS384 or HS512.
    pub fn hmac(
        id: impl Into<String>,
        algorithm: Algorithm,
        secret: Secret,
    ) -> Result<Self, KeyError> {
        Ok(SigningKey::hmac(id, algorithm, secret)?.verifying_key())
    }

    /// A public key from an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`, what
    /// `openssl pkey -pubout` writes). Ed25519 keys verify EdDSA, P-256 keys ES256.
    pub fn from_public_key_pem(id: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let der = decode_pem(pem, "PUBLIC KEY")?;
        let info =
            SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| KeyError::Invalid {
                kind: "SPKI public key",
                reason: e.to_string(),
            })?;
        let algorithm =
            key_pair_algorithm(info.algorithm.oid, info.algorithm.parameters_oid().ok())?;
        let public = match algorithm {
            Algorithm::EdDSA => {
                let invalid = |reason: String| KeyError::Invalid {
                    kind: "Ed25519 public key",
                    reason,
                };
                let key = ed25519_dalek::VerifyingKey::from_public_key_der(&der)
                    .map_err(|e| invalid(e.to_string()))?;
                if key.is_weak() {
                    return Err(invalid(
                        "it is a small-order point, which is no one's public key".into(),
                    ));
                }
                Public::Ed25519(Box::new(Ed25519Public::new(key)?))
            }
            _ => Public::P256(Box::new(P256Public::new(
                p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|e| {
                    KeyError::Invalid {
                        kind: "P-256 public key",
                        reason: e.to_string(),
                    }
                })?,
            )?)),
        };
        Ok(VerifyingKey::new(id.into(), public))
    }

    /// [`VerifyingKey::from_public_key_pem`] of the file at `path`.
    pub fn from_public_key_pem_file(
        id: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Self, KeyError> {
        VerifyingKey::from_public_key_pem(id, &read_key_file(path.as_ref())?)
    }

    /// A public key from a JWK: an Ed25519 key (`"kty": "OKP", "crv": "Ed25519"`) or a P-256
    /// key (`"kty": "EC", "crv": "P-256"`), with a `kid`. When the JWK names an `alg`, it must
    /// be the key's (EdDSA or ES256); when it names a `use`, it must be `sig`. Symmetric keys
    /// (`"kty": "oct"`) are refused: a secret never comes from a key set.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        let kid = jwk.common.key_id.clone();
        let refuse = |reason: String| KeyError::Jwk {
            kid: kid.clone(),
            reason,
        };
        let Some(id) = kid.clone().filter(|k| !k.is_empty()) else {
            return Err(refuse(
                "it has no kid, and Latchkey's tokens pick their key by kid".into(),
            ));
        };
        match &jwk.common.public_key_use {
            None | Some(PublicKeyUse::Signature) => {}
            Some(PublicKeyUse::Encryption) => {
                return Err(refuse("its use is \"enc\", not \"sig\"".into()))
            }
            Some(PublicKeyUse::Other(other)) => {
                return Err(refuse(format!("its use is {other:?}, not \"sig\"")))
            }
        }
        let decode = |name: &str, text: &str| -> Result<[u8; 32], KeyError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| refuse(format!("its {name} is not base64url without padding")))?;
            <[u8; 32]>::try_from(bytes.as_slice())
                .map_err(|_| refuse(format!("its {name} is {} bytes long, not 32", bytes.len())))
        };
        let public = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                let x = decode("x", &okp.x)?;
                let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                    .map_err(|_| refuse("its x is not an Ed25519 public key".into()))?;
                if key.is_weak() {
                    return Err(refuse(
                        "its x is a small-order point, which is no one's public key".into(),
                    ));
                }
                Public::Ed25519(Box::new(
                    Ed25519Public::new(key).map_err(|e| refuse(e.to_string()))?,
                ))
            }
            AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
                let (x, y) = (decode("x", &ec.x)?, decode("y", &ec.y)?);
                let mut sec1 = [0u8; 65];
                let (tag, coordinates) = sec1.split_at_mut(1);
                let (sec1_x, sec1_y) = coordinates.split_at_mut(32);
                tag.copy_from_slice(&[0x04]);
                sec1_x.copy_from_slice(&x);
                sec1_y.copy_from_slice(&y);
                Public::P256(Box::new(
                    P256Public::new(
                        p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                            .map_err(|_| refuse("its x and y are not a point on P-256".into()))?,
                    )
                    .map_err(|e| refuse(e.to_string()))?,
                ))
            }
            AlgorithmParameters::OctetKeyPair(okp) => {
                return Err(refuse(format!(
                    "it is an OKP key on {:?}; only Ed25519 is supported",
                    okp.curve
                )))
            }
            AlgorithmParameters::EllipticCurve(ec) => {
                return Err(refuse(format!(
                    "it is an EC key on {:?}; only P-256 is supported",
                    ec.curve
                )))
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err(refuse(
                    "it is a symmetric (oct) key; a key set publishes public keys only, and a \
                     shared secret is never taken from one"
                        .into(),
                ))
            }
            AlgorithmParameters::RSA(_) => {
                return Err(refuse(
                    "it is an RSA key; only Ed25519 (EdDSA) and P-256 (ES256) are supported".into(),
                ))
            }
            _ => {
                return Err(refuse(
                    "its kty is not one Latchkey reads (OKP with Ed25519, EC with P-256)".into(),
                ))
            }
        };
        let key = VerifyingKey::new(id, public);
        if let Some(alg) = jwk.common.key_algorithm {
            let named = serde_json::to_value(alg)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            if alg == KeyAlgorithm::UNKNOWN_ALGORITHM {
                return Err(refuse(format!(
                    "its alg is no algorithm Latchkey knows (names are case-sensitive: {:?})",
                    key.algorithm().name()
                )));
            }
            if named != key.algorithm().name() {
                return Err(refuse(format!(
                    "its alg {named:?} is not {:?}, the only algorithm of its key type",
                    key.algorithm().name()
                )));
            }
        }
        Ok(key)
    }

    /// Every key of a JWKS, each through [`VerifyingKey::from_jwk`]: one key that cannot be
    /// used, or two keys with the same `kid`, refuse the whole set.
    pub fn from_jwk_set(set: &JwkSet) -> Result<Vec<Self>, KeyError> {
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(set.keys.len());
        for jwk in &set.keys {
            let key = VerifyingKey::from_jwk(jwk)?;
            if keys.iter().any(|k| k.id == key.id) {
                return Err(KeyError::Jwks(format!(
                    "the kid {:?} names two keys",
                    key.id
                )));
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// [`VerifyingKey::from_jwk_set`] of a JWKS document (`{"keys": [...]}`), as Latchkey
    /// serves it at `/.well-known/jwks.json`.
    pub fn from_jwks_json(json: &[u8]) -> Result<Vec<Self>, KeyError> {
        let set: JwkSet =
            serde_json::from_slice(json).map_err(|e| KeyError::Jwks(e.to_string()))?;
        VerifyingKey::from_jwk_set(&set)
    }

    /// The public JWK of this key (`kid`, `alg`, `"use": "sig"` and the public key), for a
    /// key pair; `None` for an HMAC key, whose secret is never published.
    pub fn to_jwk(&self) -> Option<Jwk> {
        let (algorithm, parameters) = match &self.public {
            Public::Hmac(..) => return None,
            Public::Ed25519(key) => (
                KeyAlgorithm::EdDSA,
                AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: URL_SAFE_NO_PAD.encode(key.key().as_bytes()),
                }),
            ),
            Public::P256(key) => {
                let point = key.key().to_encoded_point(false);
                let (x, y) = (point.x()?, point.y()?);
                (
                    KeyAlgorithm::ES256,
                    AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                        key_type: EllipticCurveKeyType::EC,
                        curve: EllipticCurve::P256,
                        x: URL_SAFE_NO_PAD.encode(x),
                        y: URL_SAFE_NO_PAD.encode(y),
                    }),
                )
            }
        };
        Some(Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(algorithm),
                key_id: Some(self.id.clone()),
                ..CommonParameters::default()
            },
            algorithm: parameters,
        })
    }

    /// The public key as an SPKI PEM document (`-----BEGIN PUBLIC KEY-----`), for a key pair;
    /// `None` for an HMAC key.
    pub fn to_public_key_pem(&self) -> Option<String> {
        use p256::pkcs8::EncodePublicKey;
        match &self.public {
            Public::Hmac(..) => None,
            Public::Ed25519(key) => key.key().to_public_key_pem(LineEnding::LF).ok(),
            Public::P256(key) => key.key().to_public_key_pem(LineEnding::LF).ok(),
        }
    }

    /// The key id, as written in the `kid` header.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The one algorithm this key accepts.
    pub fn algorithm(&self) -> Algorithm {
        match &self.public {
            Public::Hmac(algorithm, _) => *algorithm,
            Public::Ed25519(_) => Algorithm::EdDSA,
            Public::P256(_) => Algorithm::ES256,
        }
    }

    /// Whether `signature` (base64url, as the token's third part) is this key's signature of
    /// `message` under `algorithm`, which the caller has checked is the key's. `Err` when the
    /// signature is not base64url or not of its algorithm's length.
    ///
    /// HMAC goes through jsonwebtoken (a constant-time comparison of the tags). A key pair
    /// checks with its public key as parsed when the key was made: with the crates
    /// jsonwebtoken's rust_crypto backend uses, or with aws-lc-rs under the feature `aws-lc`
    /// (`key_pair.rs`). jsonwebtoken would parse the key again (and decompress the Ed25519
    /// point) for every token. Ed25519 signatures are checked as jsonwebtoken checks them
    /// (RFC 8032, with S canonical); the stricter check of R's order would decompress R for
    /// every token, and small-order public keys, the case it is for, are refused when the key
    /// is made.
    pub(crate) fn check_signature(
        &self,
        algorithm: Algorithm,
        message: &[u8],
        signature: &str,
    ) -> Result<bool, SignatureFormat> {
        // The signature's bytes, or None when it is valid base64url of another length (a
        // signature that cannot be the key's: false, as jsonwebtoken answers).
        let raw = |signature: &str| -> Result<Option<RawSignature>, SignatureFormat> {
            // 64 bytes are 86 characters of base64url without padding; only a signature of that
            // length is decoded into the buffer (on the stack).
            if signature.len() != 86 {
                return URL_SAFE_NO_PAD
                    .decode(signature)
                    .map(|_| None)
                    .map_err(|_| SignatureFormat);
            }
            let mut raw = [0u8; SIGNATURE_LEN];
            match URL_SAFE_NO_PAD.decode_slice(signature, &mut raw) {
                Ok(SIGNATURE_LEN) => Ok(Some(raw)),
                Ok(_) => Ok(None),
                Err(_) => Err(SignatureFormat),
            }
        };
        match &self.public {
            Public::Hmac(_, decoding) => {
                jsonwebtoken::crypto::verify(signature, message, decoding, algorithm.jwt())
                    .map_err(|_| SignatureFormat)
            }
            Public::Ed25519(key) => {
                Ok(raw(signature)?.is_some_and(|raw| key.accepts(message, &raw)))
            }
            // `accepts` refuses an R or S of zero, or not below the group order.
            Public::P256(key) => Ok(raw(signature)?.is_some_and(|raw| key.accepts(message, &raw))),
        }
    }
}

/// A signature that is not base64url, or not of its algorithm's length: a malformed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SignatureFormat;

/// The text of a key file, wiped from memory on drop.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, KeyError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| KeyError::Unreadable {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // Made with `openssl genpkey -algorithm ed25519` and
    // `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`, and their public keys
    // with `openssl pkey -pubout`: keys no code of this crate wrote.
    pub(crate) const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAU1HJDynMo68j1rKsRBYjM+l7hmHlL2lw0CwJCwuSK7
-----END PRIVATE KEY-----
";
    const OPENSSL_ED25519_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEA4SxjoRjjs544FilJ99EUAEql3I3oojP/2EuTKp/z5Rk=
-----END PUBLIC KEY-----
";
    pub(crate) const OPENSSL_P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWOC3d1Orvnm1UM3D
TmEDu4UjbaLn1/xoU4z8x7UxcHyhRANCAASoCKbmyp3naA0hg0BRuNyOE1owfxgU
eTFpB8omUoVKpKhLN3VllDdIsJMyp/EMi/87cw9ijLiCp1/gV7x+osCT
-----END PRIVATE KEY-----
";

    fn secret() -> Secret {
        Secret::new(vec![7; 40]).unwrap()
    }

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
    fn secret_debug_never_shows_the_bytes() {
        let secret = Secret::new(b"super-secret-value-that-is-long!".to_vec());
        let shown = format!("{secret:?}");
        assert_eq!(shown, "Ok(Secret(*** 32 bytes))");
    }

    #[test]
    fn an_hmac_key_takes_hmac_algorithms_only() {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let key = SigningKey::hmac("k", alg, secret()).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.verifying_key().algorithm(), alg);
            assert_eq!(
                key.verifying_key().to_jwk(),
                None,
                "a secret is never published"
            );
            assert_eq!(key.to_pkcs8_pem().err(), Some(KeyError::NotKeyPair(alg)));
        }
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let err = SigningKey::hmac("k", alg, secret()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{alg} is not an HMAC algorithm; a secret signs with HS256, HS384 or HS512 only")
            );
            assert!(VerifyingKey::hmac("k", alg, secret()).is_err());
        }
        assert_eq!(
            SigningKey::generate("k", Algorithm::HS256)
                .unwrap_err()
                .to_string(),
            "HS256 uses a shared secret, not a key pair; key pairs are EdDSA or ES256"
        );
    }

    #[test]
    fn openssl_keys_are_read_with_the_algorithm_of_their_type() {
        let ed = SigningKey::from_pkcs8_pem("ed", OPENSSL_ED25519).unwrap();
        assert_eq!(ed.algorithm(), Algorithm::EdDSA);
        let public = VerifyingKey::from_public_key_pem("ed", OPENSSL_ED25519_PUBLIC).unwrap();
        assert_eq!(public.algorithm(), Algorithm::EdDSA);
        assert_eq!(public.to_jwk(), ed.verifying_key().to_jwk());
        let ec = SigningKey::from_pkcs8_pem("ec", OPENSSL_P256).unwrap();
        assert_eq!(ec.algorithm(), Algorithm::ES256);
        assert_eq!(
            format!("{ec:?}"),
            "SigningKey { id: \"ec\", algorithm: ES256, .. }"
        );
    }

    #[test]
    fn generated_keys_round_trip_through_pkcs8_pem_and_jwk() {
        for alg in [Algorithm::EdDSA, Algorithm::ES256] {
            let key = SigningKey::generate("2026-12", alg).unwrap();
            let pem = key.to_pkcs8_pem().unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{alg}");
            let read = SigningKey::from_pkcs8_pem("2026-12", &pem).unwrap();
            assert_eq!(read.algorithm(), alg);
            let jwk = key.verifying_key().to_jwk().unwrap();
            assert_eq!(read.verifying_key().to_jwk().as_ref(), Some(&jwk));
            let json = serde_json::to_value(&jwk).unwrap();
            assert_eq!(json["kid"], "2026-12");
            assert_eq!(json["alg"], alg.name());
            assert_eq!(json["use"], "sig");
            assert!(json.get("d").is_none(), "no private part: {json}");
            let back = VerifyingKey::from_jwk(&jwk).unwrap();
            assert_eq!(back.algorithm(), alg);
            assert_eq!(back.to_jwk(), Some(jwk.clone()));
            let pem = back.to_public_key_pem().unwrap();
            let from_pem = VerifyingKey::from_public_key_pem("2026-12", &pem).unwrap();
            assert_eq!(from_pem.to_jwk(), Some(jwk));
            // Two keys are two keys.
            let other = SigningKey::generate("2026-12", alg).unwrap();
            assert_ne!(other.verifying_key().to_jwk(), key.verifying_key().to_jwk());
        }
    }

    #[test]
    fn a_public_jwk_has_exactly_the_public_members() {
        let ed = SigningKey::from_pkcs8_pem("ed", OPENSSL_ED25519).unwrap();
        assert_eq!(
            serde_json::to_value(ed.verifying_key().to_jwk().unwrap()).unwrap(),
            serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": "ed",
                "x": "4SxjoRjjs544FilJ99EUAEql3I3oojP_2EuTKp_z5Rk",
            })
        );
        let ec = SigningKey::from_pkcs8_pem("ec", OPENSSL_P256).unwrap();
        let json = serde_json::to_value(ec.verifying_key().to_jwk().unwrap()).unwrap();
        let mut members: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        members.sort_unstable();
        assert_eq!(members, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(json["kty"], "EC");
        assert_eq!(json["crv"], "P-256");
    }

    fn pem_error(pem: &str) -> String {
        SigningKey::from_pkcs8_pem("k", pem)
            .unwrap_err()
            .to_string()
    }

    fn public_pem_error(pem: &str) -> String {
        VerifyingKey::from_public_key_pem("k", pem)
            .unwrap_err()
            .to_string()
    }

    fn pem_of(label: &str, der: &[u8]) -> String {
        pem::encode_string(label, LineEnding::LF, der).unwrap()
    }

    #[test]
    fn pem_errors_say_what_the_file_is_and_what_to_do() {
        assert!(
            pem_error("hello").starts_with("this is not a PEM document ("),
            "{}",
            pem_error("hello")
        );
        assert!(pem_error("").ends_with(
            "expected one block from -----BEGIN PRIVATE KEY----- to -----END PRIVATE KEY-----, \
             and nothing else in the file"
        ));
        assert_eq!(
            pem_error(OPENSSL_ED25519_PUBLIC),
            "this is a public key (BEGIN PUBLIC KEY); signing needs the private key, in PKCS#8 \
             (BEGIN PRIVATE KEY)"
        );
        assert_eq!(
            public_pem_error(OPENSSL_ED25519),
            "this is a private key; give the public key instead (BEGIN PUBLIC KEY: \
             `openssl pkey -in KEY -pubout`)"
        );
        assert_eq!(
            pem_error(&pem_of("EC PRIVATE KEY", &[0x30, 0])),
            "the key is in SEC1 format (BEGIN EC PRIVATE KEY); convert it to PKCS#8 with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`"
        );
        assert_eq!(
            pem_error(&pem_of("ENCRYPTED PRIVATE KEY", &[0x30, 0])),
            "the private key is encrypted; Latchkey reads unencrypted PKCS#8 keys (decrypt it \
             with `openssl pkey -in KEY -out PLAIN` and keep PLAIN mode 0600)"
        );
        assert_eq!(
            pem_error(&pem_of("RSA PRIVATE KEY", &[0x30, 0])),
            "the key is an RSA key; Latchkey's key pairs are Ed25519 (EdDSA) and P-256 (ES256)"
        );
        assert_eq!(
            pem_error(&pem_of("CERTIFICATE", &[0x30, 0])),
            "this PEM document is a \"CERTIFICATE\", not a \"PRIVATE KEY\""
        );
        assert!(
            pem_error(&pem_of("PRIVATE KEY", &[0x30, 0]))
                .starts_with("the PKCS#8 private key is not valid: "),
            "{}",
            pem_error(&pem_of("PRIVATE KEY", &[0x30, 0]))
        );
    }

    #[test]
    fn keys_of_other_types_are_named() {
        // `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384`
        let p384 = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDkW5bRzz/iN8YVgrkx
cngdcUrQIuKIArvLlAVfRpdMY9yn51MW0fqwvw/D5NQ9K8uhZANiAAQY2ni58yF6
bdxwkXuVeOUAoTFDqAv+/YlVf8iq5idgy995IeXP6pBR0hxgiWPOySx/weJi1MHG
/f7U6DkDKDdMENCMZ1TN1B6XVkyY5G1Vf54W4r8xkEbe580p/OVUAKA=
-----END PRIVATE KEY-----
";
        assert_eq!(
            pem_error(p384),
            "the key is an EC key on the curve P-384; Latchkey's key pairs are Ed25519 (EdDSA) \
             and P-256 (ES256)"
        );
    }

    fn jwk(value: serde_json::Value) -> Result<VerifyingKey, String> {
        let jwk: Jwk = serde_json::from_value(value).unwrap();
        VerifyingKey::from_jwk(&jwk).map_err(|e| e.to_string())
    }

    #[test]
    fn jwk_errors_name_the_kid_and_the_reason() {
        let x = "4SxjoRjjs544FilJ99EUAEql3I3oojP_2EuTKp_z5Rk";
        assert!(
            jwk(serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": x})).is_ok()
        );
        let cases = [
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}),
                "the JWK without a kid cannot be used: it has no kid, and Latchkey's tokens pick their key by kid",
            ),
            (
                serde_json::json!({"kty": "oct", "kid": "s", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA", "alg": "HS256"}),
                "the JWK \"s\" cannot be used: it is a symmetric (oct) key; a key set publishes public keys only, and a shared secret is never taken from one",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": x, "alg": "ES256"}),
                "the JWK \"a\" cannot be used: its alg \"ES256\" is not \"EdDSA\", the only algorithm of its key type",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": x, "alg": "eddsa"}),
                "the JWK \"a\" cannot be used: its alg is no algorithm Latchkey knows (names are case-sensitive: \"EdDSA\")",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": x, "alg": "HS256"}),
                "the JWK \"a\" cannot be used: its alg \"HS256\" is not \"EdDSA\", the only algorithm of its key type",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": x, "use": "enc"}),
                "the JWK \"a\" cannot be used: its use is \"enc\", not \"sig\"",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "AAAA"}),
                "the JWK \"a\" cannot be used: its x is 3 bytes long, not 32",
            ),
            (
                // The identity point (y = 1): small order, any signature of the right shape
                // would pass for some messages.
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
                "the JWK \"a\" cannot be used: its x is a small-order point, which is no one's public key",
            ),
            (
                serde_json::json!({"kty": "OKP", "crv": "Ed25519", "kid": "a", "x": "not base64!"}),
                "the JWK \"a\" cannot be used: its x is not base64url without padding",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "e", "x": x, "y": x}),
                "the JWK \"e\" cannot be used: its x and y are not a point on P-256",
            ),
            (
                serde_json::json!({"kty": "EC", "crv": "P-384", "kid": "e", "x": x, "y": x}),
                "the JWK \"e\" cannot be used: it is an EC key on P384; only P-256 is supported",
            ),
            (
                serde_json::json!({"kty": "RSA", "kid": "r", "n": "AQAB", "e": "AQAB"}),
                "the JWK \"r\" cannot be used: it is an RSA key; only Ed25519 (EdDSA) and P-256 (ES256) are supported",
            ),
        ];
        for (value, message) in cases {
            assert_eq!(
                jwk(value.clone()).err().as_deref(),
                Some(message),
                "{value}"
            );
        }
    }

    #[test]
    fn a_jwks_document_gives_every_key_or_none() {
        let ed = SigningKey::generate("ed", Algorithm::EdDSA)
            .unwrap()
            .verifying_key();
        let ec = SigningKey::generate("ec", Algorithm::ES256)
            .unwrap()
            .verifying_key();
        let set = JwkSet {
            keys: vec![ed.to_jwk().unwrap(), ec.to_jwk().unwrap()],
        };
        let json = serde_json::to_vec(&set).unwrap();
        let keys = VerifyingKey::from_jwks_json(&json).unwrap();
        let ids: Vec<(&str, Algorithm)> = keys.iter().map(|k| (k.id(), k.algorithm())).collect();
        assert_eq!(ids, [("ed", Algorithm::EdDSA), ("ec", Algorithm::ES256)]);
        assert_eq!(
            VerifyingKey::from_jwks_json(br#"{"keys": []}"#)
                .unwrap()
                .len(),
            0
        );
        assert!(VerifyingKey::from_jwks_json(b"[]")
            .unwrap_err()
            .to_string()
            .starts_with("the JWKS is not valid: "));
        let twice = JwkSet {
            keys: vec![ed.to_jwk().unwrap(), ed.to_jwk().unwrap()],
        };
        assert_eq!(
            VerifyingKey::from_jwk_set(&twice).unwrap_err().to_string(),
            "the JWKS is not valid: the kid \"ed\" names two keys"
        );
    }

    #[test]
    fn key_files_that_cannot_be_read_are_named() {
        let err = SigningKey::from_pkcs8_pem_file("k", "/nonexistent/key.pem").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/key.pem: "),
            "{err}"
        );
    }
}
