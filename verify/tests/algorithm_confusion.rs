//! Every cross-algorithm forgery we know of, against a verifier holding Ed25519, P-256 and
//! HMAC keys: each kid verifies with its own key's algorithm and nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use latchkey_verify::{
    Algorithm, Claims, Secret, Signer, SigningKey, Verifier, VerifyError, VerifyingKey,
};
use p256::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::json;
use sha2::Sha256;

struct Keys {
    ed: SigningKey,
    ec: SigningKey,
    hs: SigningKey,
}

fn keys() -> Keys {
    Keys {
        ed: SigningKey::generate("ed-1", Algorithm::EdDSA).unwrap(),
        ec: SigningKey::generate("ec-1", Algorithm::ES256).unwrap(),
        hs: SigningKey::hmac("hs-1", Algorithm::HS256, Secret::new(vec![5; 48]).unwrap()).unwrap(),
    }
}

fn verifier(keys: &Keys) -> Verifier {
    Verifier::builder()
        .key(&keys.ed.verifying_key())
        .key(&keys.ec.verifying_key())
        .key(&keys.hs.verifying_key())
        .issuer("latchkey")
        .build()
}

/// The same claims at every call in one test run (issued when the first was made), so that a
/// token signed with them verifies to an equal value even across a second's turn.
fn claims() -> Claims {
    static ISSUED: std::sync::LazyLock<i64> =
        std::sync::LazyLock::new(|| chrono::Utc::now().timestamp());
    let now = *ISSUED;
    Claims::new("latchkey", "mallory-as-admin", now, now + 600)
}

/// `header.payload` with this header, and the payload of `claims()`.
fn signing_input(header: serde_json::Value) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap())
    )
}

fn hs256(header: serde_json::Value, secret: &[u8]) -> String {
    let input = signing_input(header);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

fn ed25519(header: serde_json::Value, key: &SigningKey) -> String {
    use ed25519_dalek::Signer as _;
    let private = ed25519_dalek::SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
    let input = signing_input(header);
    let signature = private.sign(input.as_bytes()).to_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn es256(header: serde_json::Value, key: &SigningKey) -> String {
    use p256::ecdsa::signature::Signer as _;
    let private = p256::ecdsa::SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
    let input = signing_input(header);
    let signature: p256::ecdsa::Signature = private.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The Ed25519 public key of `key` in every form an attacker could use as an HMAC secret.
fn public_key_forms(key: &SigningKey) -> Vec<(&'static str, Vec<u8>)> {
    let private = ed25519_dalek::SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem().unwrap()).unwrap();
    let public = private.verifying_key();
    let jwk = serde_json::to_value(key.verifying_key().to_jwk().unwrap()).unwrap();
    vec![
        ("raw", public.to_bytes().to_vec()),
        (
            "pem",
            public
                .to_public_key_pem(LineEnding::LF)
                .unwrap()
                .into_bytes(),
        ),
        (
            "der",
            public.to_public_key_der().unwrap().as_bytes().to_vec(),
        ),
        ("jwk x", jwk["x"].as_str().unwrap().as_bytes().to_vec()),
        ("jwk", jwk.to_string().into_bytes()),
    ]
}

#[test]
fn honest_tokens_of_each_algorithm_verify() {
    let k = keys();
    let v = verifier(&k);
    for key in [&k.ed, &k.ec, &k.hs] {
        let token = Signer::new(key).sign(&claims()).unwrap();
        assert_eq!(v.verify(&token), Ok(claims()), "{:?}", key.algorithm());
    }
    // The hand-made tokens of this file are right when their header is.
    let alg = |key: &SigningKey| json!({"alg": key.algorithm().name(), "kid": key.id()});
    assert_eq!(v.verify(&ed25519(alg(&k.ed), &k.ed)), Ok(claims()));
    assert_eq!(v.verify(&es256(alg(&k.ec), &k.ec)), Ok(claims()));
    assert_eq!(v.verify(&hs256(alg(&k.hs), &[5; 48])), Ok(claims()));
}

#[test]
fn an_hs256_token_keyed_with_the_ed25519_public_key_is_refused_in_every_form() {
    let k = keys();
    let v = verifier(&k);
    for (form, bytes) in public_key_forms(&k.ed) {
        let forged = hs256(json!({"alg": "HS256", "kid": "ed-1", "typ": "JWT"}), &bytes);
        assert_eq!(
            v.verify(&forged),
            Err(VerifyError::DisallowedAlgorithm),
            "{form}"
        );
        // With a kid no key has, or none: no key at all.
        let unknown = hs256(json!({"alg": "HS256", "kid": "nobody"}), &bytes);
        assert_eq!(v.verify(&unknown), Err(VerifyError::UnknownKey), "{form}");
        let no_kid = hs256(json!({"alg": "HS256"}), &bytes);
        assert_eq!(v.verify(&no_kid), Err(VerifyError::UnknownKey), "{form}");
        // The other HMAC algorithms are no way round it.
        for alg in ["HS384", "HS512"] {
            let other = hs256(json!({"alg": alg, "kid": "ed-1"}), &bytes);
            assert_eq!(
                v.verify(&other),
                Err(VerifyError::DisallowedAlgorithm),
                "{form} {alg}"
            );
        }
    }
}

#[test]
fn a_verifier_with_public_keys_only_never_takes_an_hmac_token() {
    let k = keys();
    let public_only = Verifier::builder()
        .key(&k.ed.verifying_key())
        .key(&k.ec.verifying_key())
        .build();
    for (form, bytes) in public_key_forms(&k.ed) {
        for kid in ["ed-1", "ec-1", "hs-1"] {
            let forged = hs256(json!({"alg": "HS256", "kid": kid}), &bytes);
            let err = public_only.verify(&forged).unwrap_err();
            assert!(
                matches!(
                    err,
                    VerifyError::DisallowedAlgorithm | VerifyError::UnknownKey
                ),
                "{form} {kid}: {err:?}"
            );
        }
    }
}

#[test]
fn alg_none_is_refused_for_every_kid() {
    let k = keys();
    let v = verifier(&k);
    for kid in ["ed-1", "ec-1", "hs-1", "nobody"] {
        for alg in ["none", "None", "NONE", ""] {
            let input = signing_input(json!({"alg": alg, "kid": kid}));
            for signature in ["", "AAAA"] {
                assert_eq!(
                    v.verify(&format!("{input}.{signature}")),
                    Err(VerifyError::DisallowedAlgorithm),
                    "{alg} {kid} {signature:?}"
                );
            }
        }
    }
}

#[test]
fn a_token_naming_another_key_type_is_refused_before_its_signature() {
    let k = keys();
    let v = verifier(&k);
    let cases = [
        // A valid ES256 signature, with the kid of the Ed25519 key.
        es256(json!({"alg": "ES256", "kid": "ed-1"}), &k.ec),
        // A valid EdDSA signature, with the kid of the P-256 key.
        ed25519(json!({"alg": "EdDSA", "kid": "ec-1"}), &k.ed),
        // A valid EdDSA signature, with the kid of the HMAC key.
        ed25519(json!({"alg": "EdDSA", "kid": "hs-1"}), &k.ed),
        // The HMAC secret, with the kid of a key pair.
        hs256(json!({"alg": "HS256", "kid": "ec-1"}), &[5; 48]),
    ];
    for token in &cases {
        assert_eq!(
            v.verify(token),
            Err(VerifyError::DisallowedAlgorithm),
            "{token}"
        );
    }
}

#[test]
fn an_eddsa_token_with_an_unknown_kid_is_refused() {
    let k = keys();
    let v = verifier(&k);
    let stranger = SigningKey::generate("ed-2", Algorithm::EdDSA).unwrap();
    let token = Signer::new(&stranger).sign(&claims()).unwrap();
    assert_eq!(v.verify(&token), Err(VerifyError::UnknownKey));
    // Signed by the stranger under a kid we know: a bad signature.
    let token = ed25519(json!({"alg": "EdDSA", "kid": "ed-1"}), &stranger);
    assert_eq!(v.verify(&token), Err(VerifyError::BadSignature));
    let ec_stranger = SigningKey::generate("ec-1", Algorithm::ES256).unwrap();
    let token = Signer::new(&ec_stranger).sign(&claims()).unwrap();
    assert_eq!(v.verify(&token), Err(VerifyError::BadSignature));
}

#[test]
fn algorithm_names_in_another_case_are_refused() {
    let k = keys();
    let v = verifier(&k);
    for alg in ["eddsa", "EDDSA", "Eddsa", "ED25519", "Ed25519"] {
        let token = ed25519(json!({"alg": alg, "kid": "ed-1"}), &k.ed);
        assert_eq!(
            v.verify(&token),
            Err(VerifyError::DisallowedAlgorithm),
            "{alg}"
        );
    }
    for alg in ["es256", "Es256", "ES256K", "ES384"] {
        let token = es256(json!({"alg": alg, "kid": "ec-1"}), &k.ec);
        assert_eq!(
            v.verify(&token),
            Err(VerifyError::DisallowedAlgorithm),
            "{alg}"
        );
    }
    for alg in ["hs256", "Hs256", "HS-256"] {
        let token = hs256(json!({"alg": alg, "kid": "hs-1"}), &[5; 48]);
        assert_eq!(
            v.verify(&token),
            Err(VerifyError::DisallowedAlgorithm),
            "{alg}"
        );
    }
}

#[test]
fn an_es256_signature_in_der_or_of_the_wrong_length_is_bad() {
    let k = keys();
    let v = verifier(&k);
    use p256::ecdsa::signature::Signer as _;
    let private = p256::ecdsa::SigningKey::from_pkcs8_pem(&k.ec.to_pkcs8_pem().unwrap()).unwrap();
    let input = signing_input(json!({"alg": "ES256", "kid": "ec-1"}));
    let signature: p256::ecdsa::Signature = private.sign(input.as_bytes());
    let der = format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signature.to_der().as_bytes())
    );
    assert_eq!(v.verify(&der), Err(VerifyError::BadSignature));
    let short = format!("{input}.{}", URL_SAFE_NO_PAD.encode([1u8; 63]));
    assert_eq!(v.verify(&short), Err(VerifyError::BadSignature));
    let ed_input = signing_input(json!({"alg": "EdDSA", "kid": "ed-1"}));
    let long = format!("{ed_input}.{}", URL_SAFE_NO_PAD.encode([1u8; 65]));
    assert_eq!(v.verify(&long), Err(VerifyError::BadSignature));
}

#[test]
fn a_verifier_built_from_the_published_jwks_alone_verifies() {
    let k = keys();
    let published = serde_json::to_vec(&json!({"keys": [
        k.ed.verifying_key().to_jwk(),
        k.ec.verifying_key().to_jwk(),
    ]}))
    .unwrap();
    let public: Vec<VerifyingKey> = VerifyingKey::from_jwks_json(&published).unwrap();
    let v = Verifier::builder().keys(&public).issuer("latchkey").build();
    for key in [&k.ed, &k.ec] {
        let token = Signer::new(key).sign(&claims()).unwrap();
        assert_eq!(v.verify(&token), Ok(claims()));
    }
    let hmac_token = Signer::new(&k.hs).sign(&claims()).unwrap();
    assert_eq!(v.verify(&hmac_token), Err(VerifyError::UnknownKey));
}
