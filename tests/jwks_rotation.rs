//! A service that verifies with the verifier crate's `JwksSource`, configured with nothing but
//! the `jwks_uri` of a real Latchkey's discovery document, accepts Latchkey's tokens before and
//! after a key rotation, without a restart of its own (Latchkey restarts, on the same port).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_verify::{Algorithm, JwksSource, Verifier, VerifyError};
use support::config::TestConfig;
use support::keys::write_key_pair;
use support::served::Served;
use support::service::{basic, TEST_ISSUER};
use support::slapd::Slapd;
use support::users::ALICE;

/// Alice's token from the running Latchkey, and the `kid` of its header.
fn token_of_alice(served: &Served) -> (String, String) {
    let (status, body) = served.request(
        "POST",
        "/auth/request-token",
        &basic(ALICE.login, ALICE.password),
    );
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    (token, kid)
}

#[test]
fn a_jwks_source_accepts_latchkeys_tokens_across_a_key_rotation_without_a_restart() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, old_file) = write_key_pair(dir.path(), "2026-06", Algorithm::EdDSA);
    let (_, new_file) = write_key_pair(dir.path(), "2026-12", Algorithm::EdDSA);
    // Before: the old key signs. After: the new one is published and signs, the old one still
    // verifies the tokens it signed.
    let rotated = Arc::new(AtomicBool::new(false));
    let mut served = TestConfig::new(&slapd)
        .key_pair("EdDSA", "2026-06", &old_file)
        .serve_with(dir.path(), "info", {
            let rotated = rotated.clone();
            move |config, port| {
                let config = config.server("public_url", format!("http://127.0.0.1:{port}"));
                if rotated.load(Ordering::SeqCst) {
                    config
                        .private_key("2026-12", &new_file)
                        .tokens("signing_key", "2026-12")
                } else {
                    config
                }
            }
        });

    // The verifying service knows only Latchkey's discovery document.
    let (status, discovery) = served.request("GET", "/.well-known/latchkey", "");
    assert_eq!(status, 200, "{discovery}");
    let discovery: serde_json::Value = serde_json::from_str(&discovery).unwrap();
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();
    assert_eq!(
        jwks_uri,
        format!("http://127.0.0.1:{}/.well-known/jwks.json", served.port)
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let source = runtime
        .block_on(
            JwksSource::builder(jwks_uri)
                .verifier(Verifier::builder().issuer(TEST_ISSUER))
                .min_refresh(Duration::from_secs(1))
                .start(),
        )
        .unwrap();

    let (old_token, kid) = token_of_alice(&served);
    assert_eq!(kid, "2026-06");
    assert_eq!(source.verify(&old_token).unwrap().sub, "alice");

    // Latchkey rotates: it restarts with the new key signing.
    rotated.store(true, Ordering::SeqCst);
    served.restart();
    let (new_token, kid) = token_of_alice(&served);
    assert_eq!(kid, "2026-12");
    // Refused at once (the key is not known yet), and fetched in the background.
    assert_eq!(source.verify(&new_token), Err(VerifyError::UnknownKey));
    let asked = Instant::now();
    while source.verify(&new_token).is_err() {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the rotated key was not picked up: {:?}",
            source.last_error()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(source.verify(&new_token).unwrap().sub, "alice");
    assert_eq!(source.verify(&old_token).unwrap().sub, "alice");
    assert_eq!(source.last_error(), None);
}
