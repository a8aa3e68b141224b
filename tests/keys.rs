//! Key pairs (EdDSA, ES256): tokens signed with a private key, checked by `/auth/verify` and by
//! `latchkey_verify` holding only what `/.well-known/jwks.json` publishes; rotation; the
//! discovery document; the configuration errors; `latchkey keygen`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::os::unix::fs::PermissionsExt;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use latchkey_verify::{Algorithm, Claims, SigningKey, Verifier, VerifyError, VerifyingKey};
use serde_json::{json, Value};
use support::config::TestConfig;
use support::keys::{write_key_pair, write_public_key};
use support::served::{latchkey, run};
use support::service::{login_as, send, TestApp, TEST_ISSUER};
use support::slapd::Slapd;
use support::users::ALICE;

/// Where no directory answers: for configurations that are refused before any connection.
const NO_DIRECTORY: &str = "ldap://127.0.0.1:9";

async fn get(app: &impl TestApp, path: &str) -> support::service::Answer {
    send(app, TestRequest::get().uri(path)).await
}

/// Alice's token from `app`, and its header's `alg` and `kid`.
async fn token_of_alice(app: &impl TestApp) -> (String, String, String) {
    let answer = send(app, login_as(&ALICE, "")).await;
    answer.assert_status(StatusCode::OK);
    let token = answer.token().to_owned();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    (
        token,
        format!("{:?}", header.alg),
        header.kid.unwrap_or_default(),
    )
}

/// A verifier that holds only the keys `app` publishes.
async fn verifier_from_jwks(app: &impl TestApp) -> Verifier {
    let answer = get(app, "/.well-known/jwks.json").await;
    answer.assert_status(StatusCode::OK);
    let keys = VerifyingKey::from_jwks_json(answer.body.to_string().as_bytes()).unwrap();
    Verifier::builder().keys(&keys).issuer(TEST_ISSUER).build()
}

async fn verify_status(app: &impl TestApp, token: &str) -> (StatusCode, String) {
    let response = actix_web::test::call_service(
        app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    let user = response
        .headers()
        .get("Remote-User")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status(), user)
}

async fn a_token_of(algorithm: Algorithm) {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let (key, file) = write_key_pair(dir.path(), "2026-12", algorithm);
    let app = TestConfig::new(&slapd)
        .key_pair(algorithm.name(), "2026-12", &file)
        .app()
        .await;

    let (token, alg, kid) = token_of_alice(&app).await;
    assert_eq!((alg.as_str(), kid.as_str()), (algorithm.name(), "2026-12"));
    assert_eq!(
        verify_status(&app, &token).await,
        (StatusCode::OK, "alice".to_owned())
    );

    // The key set: exactly the public key, with kid, alg and use.
    let jwks = get(&app, "/.well-known/jwks.json").await;
    jwks.assert_status(StatusCode::OK);
    assert_eq!(jwks.header("cache-control"), "public, max-age=300");
    assert_eq!(jwks.header("content-type"), "application/json");
    let expected = serde_json::to_value(key.verifying_key().to_jwk().unwrap()).unwrap();
    assert_eq!(jwks.body, json!({ "keys": [expected] }));
    let published = &jwks.body["keys"][0];
    assert_eq!(
        (&published["kid"], &published["alg"], &published["use"]),
        (&json!("2026-12"), &json!(algorithm.name()), &json!("sig"))
    );
    assert!(published.get("d").is_none(), "no private part: {published}");

    // A service holding only what was published verifies Alice's token ...
    let claims: Claims = verifier_from_jwks(&app).await.verify(&token).unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.iss.as_str()),
        ("alice", TEST_ISSUER)
    );
    // ... and the token is refused by a verifier holding another key of the same id.
    let stranger = SigningKey::generate("2026-12", algorithm).unwrap();
    let other = Verifier::builder()
        .key(&stranger.verifying_key())
        .issuer(TEST_ISSUER)
        .build();
    assert_eq!(other.verify(&token), Err(VerifyError::BadSignature));
}

#[actix_web::test]
async fn an_eddsa_token_verifies_with_the_published_key_alone() {
    a_token_of(Algorithm::EdDSA).await;
}

#[actix_web::test]
async fn an_es256_token_verifies_with_the_published_key_alone() {
    a_token_of(Algorithm::ES256).await;
}

#[actix_web::test]
async fn a_rotation_keeps_old_tokens_valid_and_publishes_both_keys() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let (old, old_file) = write_key_pair(dir.path(), "2026-06", Algorithm::EdDSA);
    let (new, new_file) = write_key_pair(dir.path(), "2026-12", Algorithm::EdDSA);
    let before = TestConfig::new(&slapd).key_pair("EdDSA", "2026-06", &old_file);
    let (old_token, _, kid) = token_of_alice(&before.app().await).await;
    assert_eq!(kid, "2026-06");

    // Step 1: the new key is published beside the old one, which still signs.
    let published = before.clone().private_key("2026-12", &new_file);
    let app = published.app().await;
    let (token, _, kid) = token_of_alice(&app).await;
    assert_eq!(kid, "2026-06");
    let both = json!({ "keys": [
        serde_json::to_value(old.verifying_key().to_jwk()).unwrap(),
        serde_json::to_value(new.verifying_key().to_jwk()).unwrap(),
    ]});
    assert_eq!(get(&app, "/.well-known/jwks.json").await.body, both);
    assert_eq!(verify_status(&app, &token).await.0, StatusCode::OK);

    // Step 2: the new key signs; the old one verifies the tokens it signed.
    let switched = published.tokens("signing_key", "2026-12");
    let app = switched.app().await;
    let (new_token, _, kid) = token_of_alice(&app).await;
    assert_eq!(kid, "2026-12");
    assert_eq!(get(&app, "/.well-known/jwks.json").await.body, both);
    let verifier = verifier_from_jwks(&app).await;
    for token in [&old_token, &new_token] {
        assert_eq!(verify_status(&app, token).await.0, StatusCode::OK);
        assert_eq!(verifier.verify(token).unwrap().sub, "alice");
    }

    // Step 3: the old private key is destroyed; its public key still verifies old tokens.
    let old_public = write_public_key(dir.path(), &old);
    let retired = TestConfig::new(&slapd)
        .key_pair("EdDSA", "2026-12", &new_file)
        .public_key("2026-06", &old_public);
    let app = retired.app().await;
    assert_eq!(get(&app, "/.well-known/jwks.json").await.body, both);
    assert_eq!(verify_status(&app, &old_token).await.0, StatusCode::OK);
    assert_eq!(token_of_alice(&app).await.2, "2026-12");

    // Step 4: once the old tokens have expired, the old key goes: its tokens are refused.
    let after = TestConfig::new(&slapd).key_pair("EdDSA", "2026-12", &new_file);
    let app = after.app().await;
    assert_eq!(
        get(&app, "/.well-known/jwks.json").await.body,
        json!({ "keys": [serde_json::to_value(new.verifying_key().to_jwk()).unwrap()] })
    );
    assert_eq!(
        verify_status(&app, &old_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(verify_status(&app, &new_token).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn with_hmac_keys_only_there_is_no_key_set_and_discovery_names_paths() {
    let app = TestConfig::for_url(NO_DIRECTORY).app().await;
    let jwks = get(&app, "/.well-known/jwks.json").await;
    assert_eq!(jwks.status, StatusCode::NOT_FOUND);
    assert_eq!(
        jwks.body,
        json!({
            "error": "no_public_keys",
            "message": "This server signs tokens with a shared secret (HS256), which is never published: it has no public keys. Verify its tokens with the secret, or ask its operator to switch to EdDSA or ES256 keys.",
            "status": 404,
        })
    );
    let discovery = get(&app, "/.well-known/latchkey").await;
    discovery.assert_status(StatusCode::OK);
    assert_eq!(discovery.header("cache-control"), "public, max-age=300");
    assert_eq!(
        discovery.body,
        json!({
            "issuer": TEST_ISSUER,
            "token_endpoint": "/auth/request-token",
            "verify_endpoint": "/auth/verify",
            "token_info_endpoint": "/auth/token-info",
            "refresh_endpoint": "/auth/refresh",
            "logout_endpoint": "/auth/logout",
            "algorithms": ["HS256"],
            "default_token_duration": 3600,
            "max_token_duration": 86400,
        })
    );
    let post = send(&app, TestRequest::post().uri("/.well-known/jwks.json")).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET, HEAD");
}

#[actix_web::test]
async fn the_discovery_document_names_absolute_urls_under_the_public_url() {
    let dir = tempfile::tempdir().unwrap();
    let (_, file) = write_key_pair(dir.path(), "k1", Algorithm::ES256);
    let config = TestConfig::for_url(NO_DIRECTORY)
        .key_pair("ES256", "k1", &file)
        .tokens("audience", "wiki")
        .tokens("default_duration", 600)
        .tokens("max_duration", 7200);
    let app = config
        .clone()
        .server("public_url", "https://auth.example.org")
        .app()
        .await;
    assert_eq!(
        get(&app, "/.well-known/latchkey").await.body,
        json!({
            "issuer": TEST_ISSUER,
            "audience": "wiki",
            "token_endpoint": "https://auth.example.org/auth/request-token",
            "verify_endpoint": "https://auth.example.org/auth/verify",
            "token_info_endpoint": "https://auth.example.org/auth/token-info",
            "refresh_endpoint": "https://auth.example.org/auth/refresh",
            "logout_endpoint": "https://auth.example.org/auth/logout",
            "jwks_uri": "https://auth.example.org/.well-known/jwks.json",
            "algorithms": ["ES256"],
            "default_token_duration": 600,
            "max_token_duration": 7200,
        })
    );
    assert_eq!(
        get(&app, "/.well-known/latchkey").await.body["revocation_endpoint"],
        Value::Null,
        "no [admin] require, no /auth/revoke"
    );
    // With the sign-in pages on, portal.url is the base and the form is named; with
    // [admin] require, the revocation endpoint.
    let app = config
        .portal("url", "https://login.example.org")
        .portal("session_duration", "1h")
        .set("admin", "require", "admins")
        .app()
        .await;
    let body = get(&app, "/.well-known/latchkey").await.body;
    assert_eq!(
        body["sign_in_endpoint"],
        json!("https://login.example.org/auth/login")
    );
    assert_eq!(
        body["jwks_uri"],
        json!("https://login.example.org/.well-known/jwks.json")
    );
    assert_eq!(
        body["revocation_endpoint"],
        json!("https://login.example.org/auth/revoke")
    );
}

#[test]
fn key_configurations_that_cannot_work_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ed, ed_file) = write_key_pair(d, "ed", Algorithm::EdDSA);
    let (_, ec_file) = write_key_pair(d, "ec", Algorithm::ES256);
    let base = || TestConfig::for_url(NO_DIRECTORY);

    // An HMAC secret beside a key pair.
    assert_eq!(
        base()
            .tokens("algorithm", "EdDSA")
            .tokens("signing_key", "ed")
            .private_key("ed", &ed_file)
            .problems(),
        ["tokens.keys mixes HMAC secrets (test-1) with key pairs (ed); all keys are of the kind \
          tokens.algorithm names (now \"EdDSA\"): secrets for HS256/HS384/HS512, \
          private_key_file/public_key_file for EdDSA/ES256 (a service that holds a secret can \
          mint tokens, which a key pair is there to prevent)"]
    );
    // A P-256 key where Ed25519 keys are configured.
    assert_eq!(
        base().key_pair("EdDSA", "ec", &ec_file).problems(),
        [format!(
            "tokens.keys.ec.private_key_file: {} is a P-256 key (ES256), but tokens.algorithm = \
             \"EdDSA\"; every key must be of that algorithm (make one with `latchkey keygen \
             --algorithm EdDSA --out FILE` and name FILE in tokens.keys.<id>.private_key_file)",
            ec_file.display()
        )]
    );
    // A key pair with the default algorithm, HS256.
    assert_eq!(
        base()
            .without_test_key()
            .private_key("ed", &ed_file)
            .problems(),
        ["tokens.keys.ed.private_key_file is a key pair's, but tokens.algorithm = \"HS256\" signs \
          with HMAC secrets; set tokens.algorithm = \"EdDSA\" or \"ES256\" to match the key"]
    );
    // A secret with a key pair algorithm.
    assert_eq!(
        base().tokens("algorithm", "ES256").problems(),
        [
            "tokens.keys.test-1.secret is an HMAC secret, but tokens.algorithm = \"ES256\" signs \
          with key pairs; make one with `latchkey keygen --algorithm ES256 --out FILE` and name \
          FILE in tokens.keys.<id>.private_key_file"
        ]
    );
    // A file that is not there.
    let missing = d.join("missing.pem");
    let problems = base().key_pair("EdDSA", "ed", &missing).problems();
    assert_eq!(
        problems,
        [format!(
            "tokens.keys.ed.private_key_file: cannot read {}: No such file or directory (os error 2)",
            missing.display()
        )]
    );
    // A private key everyone on the machine can read.
    let open = d.join("open.pem");
    std::fs::copy(&ed_file, &open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        base().key_pair("EdDSA", "ed", &open).problems(),
        [format!(
            "tokens.keys.ed.private_key_file: {0} can be read by every user of this machine \
             (mode 0644); make it private with `chmod 600 {0}`",
            open.display()
        )]
    );
    // A public key given as the private one, and a public key asked to sign.
    let public = write_public_key(d, &ed);
    assert_eq!(
        base().key_pair("EdDSA", "ed", &public).problems(),
        [
            "tokens.keys.ed.private_key_file: this is a public key (BEGIN PUBLIC KEY); signing \
          needs the private key, in PKCS#8 (BEGIN PRIVATE KEY)"
        ]
    );
    assert_eq!(
        base()
            .without_test_key()
            .tokens("algorithm", "EdDSA")
            .public_key("ed", &public)
            .problems(),
        [
            "tokens.keys.ed has only a public_key_file, so it cannot sign; name a key with a \
          private_key_file in tokens.signing_key (make one with `latchkey keygen --algorithm \
          EdDSA --out FILE` and name FILE in tokens.keys.<id>.private_key_file)"
        ]
    );
    // Both kinds of file for one key.
    assert_eq!(
        base()
            .key_pair("EdDSA", "ed", &ed_file)
            .public_key("ed", &public)
            .problems(),
        ["tokens.keys.ed has private_key_file and public_key_file; keep one"]
    );
    // Algorithm names are exact.
    assert_eq!(
        base().tokens("algorithm", "eddsa").problems(),
        [
            "\"eddsa\" is not a signing algorithm Latchkey knows; use one of HS256, HS384, HS512, \
          EdDSA, ES256 (spelled exactly so) for key `tokens.algorithm`"
        ]
    );
    // The public URL and the portal's name one place.
    assert_eq!(
        base()
            .server("public_url", "https://auth.example.org")
            .portal("url", "https://login.example.org")
            .problems(),
        [
            "server.public_url = \"https://auth.example.org/\" is not portal.url = \
          \"https://login.example.org/\"; both name where clients reach this Latchkey: keep \
          portal.url and drop server.public_url"
        ]
    );
    // The public URL is a base URL.
    assert_eq!(
        base()
            .server("public_url", "https://auth.example.org/latchkey")
            .problems(),
        [
            "server.public_url = \"https://auth.example.org/latchkey\" is not a base URL such as \
          \"https://auth.example.org\" (http or https, a host, an optional port, no path)"
        ]
    );
}

#[test]
fn keygen_writes_a_private_key_the_service_starts_with() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("signing.pem");
    let (code, stdout, stderr) = run(latchkey().args([
        "keygen",
        "--algorithm",
        "EdDSA",
        "--out",
        out.to_str().unwrap(),
        "--kid",
        "2026-12",
    ]));
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = SigningKey::from_pkcs8_pem_file("2026-12", &out).unwrap();
    assert_eq!(key.algorithm(), Algorithm::EdDSA);
    let path = std::fs::canonicalize(&out).unwrap();
    let jwk = serde_json::to_string(&key.verifying_key().to_jwk()).unwrap();
    assert_eq!(
        stdout,
        format!(
            "wrote an Ed25519 private key (EdDSA) to {0}, readable by its owner only (mode 0600)\n\
             \n\
             # the configuration that signs with it; when another key signs now, add [tokens.keys.\"2026-12\"]\n\
             # beside it and switch tokens.signing_key 5 minutes later (README, \"Rotating key pairs\")\n\
             [tokens]\n\
             algorithm = \"EdDSA\"\n\
             signing_key = \"2026-12\"\n\
             \n\
             [tokens.keys.\"2026-12\"]\n\
             private_key_file = \"{0}\"\n\
             \n\
             # its public JWK, as /.well-known/jwks.json lists it\n\
             {jwk}\n",
            path.display()
        )
    );

    // Never over an existing file.
    let (code, _, stderr) = run(latchkey().args([
        "keygen",
        "--algorithm",
        "ES256",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!(
            "latchkey: {} exists; keygen never overwrites a file (it may be a key in use): choose another --out\n",
            out.display()
        )
    );
    assert_eq!(
        SigningKey::from_pkcs8_pem_file("2026-12", &out)
            .unwrap()
            .verifying_key()
            .to_jwk(),
        key.verifying_key().to_jwk(),
        "the key is untouched"
    );
    // Only key pair algorithms, by their exact names.
    let other = dir.path().join("other.pem");
    for (algorithm, message) in [
        (
            "HS256",
            "HS256 keys are shared secrets, not key pairs; make one with `openssl rand -base64 48`",
        ),
        (
            "eddsa",
            "\"eddsa\" is not EdDSA or ES256 (the names are case-sensitive)",
        ),
    ] {
        let (code, _, stderr) = run(latchkey().args([
            "keygen",
            "--algorithm",
            algorithm,
            "--out",
            other.to_str().unwrap(),
        ]));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(message), "{stderr}");
        assert!(!other.exists());
    }

    // `check` names the key, and the service starts with it as written; its tokens verify
    // with the JWKS alone.
    let config = TestConfig::new(&slapd).key_pair("EdDSA", "2026-12", &out);
    let check_dir = tempfile::tempdir().unwrap();
    let path = config.write(check_dir.path());
    let (code, stdout, stderr) = run(latchkey().arg("--config").arg(&path).arg("check"));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "\n  key \"2026-12\": EdDSA, signs and verifies (public key published in \
             /.well-known/jwks.json)\n  discovery: /.well-known/latchkey, with paths only (set \
             server.public_url for absolute URLs)\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "  warning: neither server.public_url nor portal.url is set: /.well-known/latchkey \
             names its endpoints and jwks_uri by path only; set server.public_url to the URL \
             clients reach Latchkey at\n"
        ),
        "{stdout}"
    );
    let served = config.serve(dir.path(), "info");
    let (status, body) = served.request(
        "POST",
        "/auth/request-token",
        &support::service::basic(ALICE.login, ALICE.password),
    );
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, jwks) = served.request("GET", "/.well-known/jwks.json", "");
    assert_eq!(status, 200, "{jwks}");
    let keys = VerifyingKey::from_jwks_json(jwks.as_bytes()).unwrap();
    let verifier = Verifier::builder().keys(&keys).issuer(TEST_ISSUER).build();
    assert_eq!(verifier.verify(&token).unwrap().sub, "alice");
    // Neither the private key nor the token reaches the log.
    let pem = std::fs::read_to_string(&out).unwrap();
    let secret_line = pem.lines().nth(1).unwrap();
    let log = served.log();
    assert!(log.contains("latchkey starting"), "{log}");
    assert!(!log.contains(secret_line), "{log}");
    assert!(!log.contains(&token), "{log}");
}
