//! How long verifying a realistic Latchkey token takes, beside jsonwebtoken's own decode of
//! the same token with the same checks (the floor: HMAC, base64 and JSON), the same token
//! signed with Ed25519 (EdDSA) and P-256 (ES256) keys (each beside jsonwebtoken's decode of
//! it, which parses the public key for every token), signing the claims of a token with each
//! algorithm, and the HMAC token with a revocation set of 100,000 entries, whose memory it
//! prints (resident set before and after).
//!
//! `cargo bench -p latchkey-verify --bench verify`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use std::sync::Arc;

use latchkey_verify::{
    token_in_headers, Algorithm as KeyAlgorithm, Claims, ExpiryRules, Revocation, RevocationSet,
    Secret, Signer, SigningKey, Verifier,
};

/// The process's resident set in bytes (Linux), or 0.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// 100,000 revocations as a busy deployment might hold: 90,000 token ids (32 hex digits, as
/// Latchkey writes them) and 10,000 users.
fn full_set() -> Arc<RevocationSet> {
    let now = chrono::Utc::now().timestamp();
    let set = RevocationSet::new(ExpiryRules {
        max_lifetime: 86_400,
        leeway: 5,
    });
    let before = resident_bytes();
    for i in 0..90_000u128 {
        set.insert(
            Revocation::Token {
                jti: format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                exp: now + 3600,
            },
            now,
        );
    }
    for i in 0..10_000 {
        set.insert(
            Revocation::User {
                user: format!("user{i:05}"),
                at: now - 60,
            },
            now,
        );
    }
    let grown = resident_bytes().saturating_sub(before);
    println!(
        "revocation set: {} entries, {:.1} MB resident ({} bytes an entry)",
        set.len(),
        grown as f64 / 1e6,
        grown / set.len().max(1) as u64
    );
    Arc::new(set)
}

fn realistic_token(key: &SigningKey) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Claims::new("https://auth.example.org", "alice", now, now + 3600);
    claims.jti = "5d9a1f0c2b7e4a6c8f1e3d5b7a9c0e2f".into();
    claims.name = Some("Alice Liddell".into());
    claims.email = Some("alice@example.org".into());
    claims.groups = [
        "staff",
        "engineering",
        "vpn-users",
        "wiki-editors",
        "on-call",
    ]
    .map(String::from)
    .to_vec();
    Signer::new(key).sign(&claims).expect("sign")
}

fn bench(c: &mut Criterion) {
    let secret = vec![42; 48];
    let hmac = |id: &str, secret: Vec<u8>| {
        SigningKey::hmac(
            id,
            KeyAlgorithm::HS256,
            Secret::new(secret).expect("secret"),
        )
        .expect("HMAC key")
    };
    let key = hmac("2026-11", secret.clone());
    let old = hmac("2026-05", vec![7; 48]);
    let ed = SigningKey::generate("ed-2026-11", KeyAlgorithm::EdDSA).expect("Ed25519 key");
    let ec = SigningKey::generate("ec-2026-11", KeyAlgorithm::ES256).expect("P-256 key");
    let token = realistic_token(&key);
    let verifier = Verifier::builder()
        .key(&key.verifying_key())
        .key(&old.verifying_key())
        .key(&ed.verifying_key())
        .key(&ec.verifying_key())
        .issuer("https://auth.example.org")
        .build();
    let header = format!("Bearer {token}");

    let mut group = c.benchmark_group("verify");
    group.bench_function("latchkey_verify::Verifier::verify", |b| {
        b.iter(|| {
            verifier
                .verify(std::hint::black_box(&token))
                .expect("valid")
        })
    });
    group.bench_function("token_in_headers + verify (Bearer header)", |b| {
        b.iter(|| {
            let token = token_in_headers(Some(std::hint::black_box(header.as_bytes())), None, None)
                .expect("a token");
            verifier.verify(&token).expect("valid")
        })
    });
    for (name, pair) in [("EdDSA", &ed), ("ES256", &ec)] {
        let token = realistic_token(pair);
        group.bench_function(format!("latchkey_verify::Verifier::verify ({name})"), |b| {
            b.iter(|| {
                verifier
                    .verify(std::hint::black_box(&token))
                    .expect("valid")
            })
        });
    }
    let revoking = Verifier::builder()
        .key(&key.verifying_key())
        .key(&old.verifying_key())
        .issuer("https://auth.example.org")
        .revocations(full_set())
        .build();
    group.bench_function(
        "Verifier::verify, 100,000 revocations (none of them this token)",
        |b| {
            b.iter(|| {
                revoking
                    .verify(std::hint::black_box(&token))
                    .expect("valid")
            })
        },
    );
    let decoding = DecodingKey::from_secret(&secret);
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["https://auth.example.org"]);
    validation.set_required_spec_claims(&["exp", "iat", "sub"]);
    validation.validate_aud = false;
    group.bench_function("jsonwebtoken::decode (baseline)", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims>(std::hint::black_box(&token), &decoding, &validation)
                .expect("valid")
        })
    });
    // jsonwebtoken's decode of the same key pair tokens, with the key from its public JWK:
    // it parses the public key again for every token, which Verifier does once.
    for (name, pair, algorithm) in [
        ("EdDSA", &ed, Algorithm::EdDSA),
        ("ES256", &ec, Algorithm::ES256),
    ] {
        let token = realistic_token(pair);
        let decoding = DecodingKey::from_jwk(&pair.verifying_key().to_jwk().expect("a JWK"))
            .expect("a decoding key");
        let mut validation = validation.clone();
        validation.algorithms = vec![algorithm];
        group.bench_function(format!("jsonwebtoken::decode ({name}, baseline)"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Claims>(std::hint::black_box(&token), &decoding, &validation)
                    .expect("valid")
            })
        });
    }
    group.finish();

    // Signing the same claims: what a login pays for its token, by algorithm.
    let mut group = c.benchmark_group("sign");
    let now = chrono::Utc::now().timestamp();
    let mut claims = Claims::new("https://auth.example.org", "alice", now, now + 3600);
    claims.jti = "5d9a1f0c2b7e4a6c8f1e3d5b7a9c0e2f".into();
    claims.groups = ["staff", "engineering"].map(String::from).to_vec();
    for (name, signing) in [("HS256", &key), ("EdDSA", &ed), ("ES256", &ec)] {
        let signer = Signer::new(signing);
        group.bench_function(format!("Signer::sign ({name})"), |b| {
            b.iter(|| signer.sign(std::hint::black_box(&claims)).expect("signed"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
