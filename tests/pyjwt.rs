//! Interoperability: PyJWT, a JWT library no one here wrote, verifies Latchkey's EdDSA and ES256
//! tokens knowing only the `jwks_uri` of a running Latchkey (a served process on a real slapd),
//! and refuses the tokens Latchkey's keys did not sign.
//!
//! The verifying side is `tests/fixtures/pyjwt_verify.py`: PyJWT's `PyJWKClient` fetches the
//! key set, and `jwt.decode` checks the signature with the one algorithm allowed, the issuer,
//! the audience and the required claims. PyJWT and cryptography (which PyJWT needs for EdDSA
//! and ES256) come from PyPI, at the versions `scripts/install-test-deps` pins, in the
//! virtualenv under `.latchkey-dev/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_verify::{Algorithm, Claims, Signer, SigningKey};
use support::config::TestConfig;
use support::keys::write_key_pair;
use support::process::venv_python;
use support::served::{request, Served};
use support::service::{basic, TEST_ISSUER};
use support::slapd::Slapd;
use support::users::ALICE;

/// The audience Latchkey writes into its tokens here, and PyJWT requires.
const AUDIENCE: &str = "https://app.example.org";

/// The id of Latchkey's key pair.
const KID: &str = "2026-12";

/// A served Latchkey signing with a new `algorithm` key pair `KID`, its public URL its own
/// loopback address (so that discovery names an absolute `jwks_uri`).
struct Issuer {
    served: Served,
    _slapd: Slapd,
    _dir: tempfile::TempDir,
}

impl Issuer {
    fn start(algorithm: Algorithm) -> Issuer {
        let slapd = Slapd::start();
        let dir = tempfile::tempdir().unwrap();
        let (_, file) = write_key_pair(dir.path(), KID, algorithm);
        let served = TestConfig::new(&slapd)
            .key_pair(algorithm.name(), KID, &file)
            .tokens("audience", AUDIENCE)
            .serve_with(dir.path(), "warn", |config, port| {
                config.server("public_url", format!("http://127.0.0.1:{port}"))
            });
        Issuer {
            served,
            _slapd: slapd,
            _dir: dir,
        }
    }

    /// The `jwks_uri` of the discovery document: all PyJWT is told about Latchkey.
    fn jwks_uri(&self) -> String {
        let answer = request(self.served.port, "GET", "/.well-known/latchkey", &[]);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let discovery: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();
        assert_eq!(
            jwks_uri,
            format!(
                "http://127.0.0.1:{}/.well-known/jwks.json",
                self.served.port
            )
        );
        jwks_uri
    }

    /// A token of Alice's from `POST /auth/request-token`.
    fn token_of_alice(&self) -> String {
        let answer = request(
            self.served.port,
            "POST",
            "/auth/request-token",
            &[("Authorization", &basic(ALICE.login, ALICE.password))],
        );
        assert_eq!(answer.status, 200, "{}", answer.body);
        let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        body["token"].as_str().unwrap().to_owned()
    }
}

/// The claims of `token`, read without checking anything: what PyJWT must return.
fn payload_of(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pyjwt_verify.py")
}

/// What PyJWT says of `token`, allowing `algorithm` only: (exit code, stdout, stderr).
fn pyjwt_verify(jwks_uri: &str, algorithm: &str, token: &str) -> (i32, String, String) {
    let python = venv_python(
        &["jwt", "cryptography"],
        "PyJWT verifies Latchkey's tokens from its jwks_uri",
    );
    let mut command = Command::new(python);
    command
        .arg(script())
        .args([jwks_uri, algorithm, TEST_ISSUER, AUDIENCE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // urllib would send the key set request through a proxy named in the environment: loopback
    // only, directly.
    for proxy in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
    ] {
        command.env_remove(proxy);
    }
    command.env("no_proxy", "*");
    let mut child = command.spawn().expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(token.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// PyJWT accepts Alice's token and returns exactly its claims.
fn pyjwt_verifies_a_token_of(algorithm: Algorithm) {
    let issuer = Issuer::start(algorithm);
    let jwks_uri = issuer.jwks_uri();
    let token = issuer.token_of_alice();

    let (code, stdout, stderr) = pyjwt_verify(&jwks_uri, algorithm.name(), &token);
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let (first, claims) = stdout.split_once('\n').unwrap();
    assert_eq!(
        first,
        format!("verified kid={KID} alg={}", algorithm.name())
    );
    let claims: serde_json::Value = serde_json::from_str(claims).unwrap();
    assert_eq!(claims, payload_of(&token));
    assert_eq!(
        (&claims["sub"], &claims["iss"], &claims["aud"]),
        (
            &serde_json::json!("alice"),
            &serde_json::json!(TEST_ISSUER),
            &serde_json::json!(AUDIENCE)
        )
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
}

#[test]
fn pyjwt_verifies_an_eddsa_token_with_the_jwks_uri_alone() {
    pyjwt_verifies_a_token_of(Algorithm::EdDSA);
}

#[test]
fn pyjwt_verifies_an_es256_token_with_the_jwks_uri_alone() {
    pyjwt_verifies_a_token_of(Algorithm::ES256);
}

/// Alice's claims, signed by a key pair Latchkey does not hold, named `kid`.
fn forged(token: &str, kid: &str, algorithm: Algorithm) -> String {
    let claims: Claims = serde_json::from_value(payload_of(token)).unwrap();
    let stranger = SigningKey::generate(kid, algorithm).unwrap();
    Signer::new(&stranger).sign(&claims).unwrap()
}

fn pyjwt_refuses_what_latchkey_did_not_sign(algorithm: Algorithm) {
    let issuer = Issuer::start(algorithm);
    let jwks_uri = issuer.jwks_uri();
    let token = issuer.token_of_alice();
    let refused = |algorithm: &str, token: &str, message: &str| {
        assert_eq!(
            pyjwt_verify(&jwks_uri, algorithm, token),
            (1, format!("refused {message}\n"), String::new())
        );
    };

    // The same claims and kid, signed by another key of the same type.
    refused(
        algorithm.name(),
        &forged(&token, KID, algorithm),
        "InvalidSignatureError: Signature verification failed",
    );
    // Signed by a key whose kid the key set does not name.
    refused(
        algorithm.name(),
        &forged(&token, "2027-01", algorithm),
        "PyJWKClientError: Unable to find a signing key that matches: \"2027-01\"",
    );
    // Latchkey's own token, where the verifier allows only the other key pair algorithm.
    let other = match algorithm {
        Algorithm::EdDSA => "ES256",
        _ => "EdDSA",
    };
    refused(
        other,
        &token,
        "InvalidAlgorithmError: The specified alg value is not allowed",
    );
    // And the genuine token still passes.
    assert_eq!(pyjwt_verify(&jwks_uri, algorithm.name(), &token).0, 0);
}

#[test]
fn pyjwt_refuses_an_eddsa_token_signed_by_another_key() {
    pyjwt_refuses_what_latchkey_did_not_sign(Algorithm::EdDSA);
}

#[test]
fn pyjwt_refuses_an_es256_token_signed_by_another_key() {
    pyjwt_refuses_what_latchkey_did_not_sign(Algorithm::ES256);
}
