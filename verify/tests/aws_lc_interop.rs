//! With the feature `aws-lc`, `Signer` signs EdDSA and ES256 with aws-lc-rs and `Verifier`
//! checks them with aws-lc-rs. These tests hold the two libraries to each other: what aws-lc-rs
//! signs, ed25519-dalek and p256 (RustCrypto, the default) accept, checked on the signing input
//! directly; what they sign, the verifier accepts; and a signature changed by one bit, or made
//! non-canonical, is refused by both.
#![cfg(feature = "aws-lc")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::{Algorithm, Claims, Signer, SigningKey, Verifier, VerifyError};
use p256::pkcs8::DecodePrivateKey;
use serde_json::json;

// `openssl genpkey -algorithm ed25519` and
// `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`: keys no code of this crate
// (nor either library under test) made.
const OPENSSL_ED25519: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAU1HJDynMo68j1rKsRBYjM+l7hmHlL2lw0CwJCwuSK7
-----END PRIVATE KEY-----
";
const OPENSSL_P256: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWOC3d1Orvnm1UM3D
TmEDu4UjbaLn1/xoU4z8x7UxcHyhRANCAASoCKbmyp3naA0hg0BRuNyOE1owfxgU
eTFpB8omUoVKpKhLN3VllDdIsJMyp/EMi/87cw9ijLiCp1/gV7x+osCT
-----END PRIVATE KEY-----
";

/// Ed25519 keys: one generated, one from OpenSSL.
fn ed25519_keys() -> Vec<SigningKey> {
    vec![
        SigningKey::generate("ed-new", Algorithm::EdDSA).unwrap(),
        SigningKey::from_pkcs8_pem("ed-openssl", OPENSSL_ED25519).unwrap(),
    ]
}

/// P-256 keys: one generated, one from OpenSSL.
fn p256_keys() -> Vec<SigningKey> {
    vec![
        SigningKey::generate("ec-new", Algorithm::ES256).unwrap(),
        SigningKey::from_pkcs8_pem("ec-openssl", OPENSSL_P256).unwrap(),
    ]
}

/// The same claims at every call in one test run (issued when the first was made), so that a
/// token signed with them verifies to an equal value even across a second's turn.
fn claims() -> Claims {
    static ISSUED: std::sync::LazyLock<i64> =
        std::sync::LazyLock::new(|| chrono::Utc::now().timestamp());
    let now = *ISSUED;
    let mut claims = Claims::new("latchkey", "alice", now, now + 600);
    claims.groups = vec!["ops".into()];
    claims
}

fn verifier(key: &SigningKey) -> Verifier {
    Verifier::builder()
        .key(&key.verifying_key())
        .issuer("latchkey")
        .build()
}

/// The token's signing input (`header.payload`) and its signature's bytes.
fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').unwrap();
    (input, URL_SAFE_NO_PAD.decode(signature).unwrap())
}

/// A token of `claims()` for `key`, with a signature `sign` makes over its signing input.
fn token_signed_by(key: &SigningKey, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let header = json!({"typ": "JWT", "alg": key.algorithm().name(), "kid": key.id()});
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `token` with its signature replaced by `signature`.
fn with_signature(token: &str, signature: &[u8]) -> String {
    let (input, _) = token.rsplit_once('.').unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn dalek(key: &SigningKey) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap()
}

fn p256(key: &SigningKey) -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap()
}

#[test]
fn eddsa_tokens_signed_with_aws_lc_verify_with_ed25519_dalek() {
    use ed25519_dalek::Signer as _;
    for key in ed25519_keys() {
        let token = Signer::new(&key).sign(&claims()).unwrap();
        let (input, signature) = split(&token);
        let signature = <[u8; 64]>::try_from(signature.as_slice()).unwrap();
        let rust_crypto = dalek(&key);
        let public = rust_crypto.verifying_key();
        public
            .verify_strict(
                input.as_bytes(),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .unwrap();
        // Ed25519 signatures are deterministic (RFC 8032): the same bytes from both libraries.
        assert_eq!(
            signature,
            rust_crypto.sign(input.as_bytes()).to_bytes(),
            "{}",
            key.id()
        );
    }
}

#[test]
fn es256_tokens_signed_with_aws_lc_are_r_and_s_and_verify_with_p256() {
    use p256::ecdsa::signature::Verifier as _;
    for key in p256_keys() {
        let public = *p256(&key).verifying_key();
        for _ in 0..3 {
            let token = Signer::new(&key).sign(&claims()).unwrap();
            let (input, signature) = split(&token);
            // R || S, 32 bytes each, as JWS needs; DER would be a SEQUENCE (0x30) of 70 to 72.
            assert_eq!(signature.len(), 64, "{}", key.id());
            let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
            public.verify(input.as_bytes(), &signature).unwrap();
        }
    }
}

#[test]
fn eddsa_tokens_signed_with_ed25519_dalek_verify_with_aws_lc() {
    use ed25519_dalek::Signer as _;
    for key in ed25519_keys() {
        let rust_crypto = dalek(&key);
        let token = token_signed_by(&key, |input| rust_crypto.sign(input).to_bytes().to_vec());
        assert_eq!(verifier(&key).verify(&token), Ok(claims()), "{}", key.id());
    }
}

#[test]
fn es256_tokens_signed_with_p256_verify_with_aws_lc() {
    use p256::ecdsa::signature::Signer as _;
    for key in p256_keys() {
        let rust_crypto = p256(&key);
        let token = token_signed_by(&key, |input| {
            let signature: p256::ecdsa::Signature = rust_crypto.sign(input);
            signature.to_bytes().to_vec()
        });
        assert_eq!(verifier(&key).verify(&token), Ok(claims()), "{}", key.id());
    }
}

#[test]
fn a_tampered_eddsa_signature_is_refused_by_both() {
    for key in ed25519_keys() {
        let public = dalek(&key).verifying_key();
        let token = Signer::new(&key).sign(&claims()).unwrap();
        let (input, signature) = split(&token);
        // One bit in R, one in S.
        for (byte, bit) in [(0, 0x01), (40, 0x10)] {
            let mut tampered = signature.clone();
            tampered[byte] ^= bit;
            assert_eq!(
                verifier(&key).verify(&with_signature(&token, &tampered)),
                Err(VerifyError::BadSignature),
                "{} byte {byte}",
                key.id()
            );
            let tampered = ed25519_dalek::Signature::from_slice(&tampered).unwrap();
            assert!(public.verify_strict(input.as_bytes(), &tampered).is_err());
        }
    }
}

#[test]
fn a_non_canonical_eddsa_signature_is_refused_by_both() {
    // The group order l, little-endian: S and S + l are the same scalar, but RFC 8032 (and
    // jsonwebtoken) take only S < l, so a signature cannot be rewritten into a second valid one.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    for key in ed25519_keys() {
        let public = dalek(&key).verifying_key();
        let token = Signer::new(&key).sign(&claims()).unwrap();
        let (input, mut signature) = split(&token);
        let mut carry = 0u16;
        for (s, l) in signature[32..].iter_mut().zip(L) {
            let sum = u16::from(*s) + u16::from(l) + carry;
            *s = sum.to_le_bytes()[0];
            carry = sum >> 8;
        }
        assert_eq!(carry, 0, "S + l fits in 32 bytes");
        assert_eq!(
            verifier(&key).verify(&with_signature(&token, &signature)),
            Err(VerifyError::BadSignature),
            "{}",
            key.id()
        );
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        assert!(ed25519_dalek::Verifier::verify(&public, input.as_bytes(), &signature).is_err());
    }
}

#[test]
fn a_tampered_es256_signature_is_refused_by_both() {
    use p256::ecdsa::signature::Verifier as _;
    for key in p256_keys() {
        let public = *p256(&key).verifying_key();
        let token = Signer::new(&key).sign(&claims()).unwrap();
        let (input, signature) = split(&token);
        // One bit in R, one in S.
        for (byte, bit) in [(0, 0x01), (40, 0x10)] {
            let mut tampered = signature.clone();
            tampered[byte] ^= bit;
            assert_eq!(
                verifier(&key).verify(&with_signature(&token, &tampered)),
                Err(VerifyError::BadSignature),
                "{} byte {byte}",
                key.id()
            );
            // A flipped bit may leave R or S out of range: p256 refuses it as a signature
            // then, which is a refusal too.
            let refused = p256::ecdsa::Signature::from_slice(&tampered)
                .map_or(true, |s| public.verify(input.as_bytes(), &s).is_err());
            assert!(refused, "{} byte {byte}", key.id());
        }
        // R and S out of range (zero, and the all-ones value above the group order).
        for signature in [[0u8; 64], [0xff; 64]] {
            assert_eq!(
                verifier(&key).verify(&with_signature(&token, &signature)),
                Err(VerifyError::BadSignature),
                "{}",
                key.id()
            );
        }
    }
}

#[test]
fn both_answer_alike_for_the_es256_signature_with_s_negated() {
    use p256::ecdsa::signature::Verifier as _;
    // (R, S) and (R, n - S) are both valid ECDSA signatures of a message. Neither RFC 7518
    // nor jsonwebtoken asks for a low S, and neither library does: both accept the twin.
    for key in p256_keys() {
        let public = *p256(&key).verifying_key();
        let token = Signer::new(&key).sign(&claims()).unwrap();
        let (input, signature) = split(&token);
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        let (r, s) = signature.split_scalars();
        let twin = p256::ecdsa::Signature::from_scalars(r, -s).unwrap();
        let rust_crypto = public.verify(input.as_bytes(), &twin).is_ok();
        let aws_lc = verifier(&key)
            .verify(&with_signature(&token, &twin.to_bytes()))
            .is_ok();
        assert_eq!((rust_crypto, aws_lc), (true, true), "{}", key.id());
    }
}
