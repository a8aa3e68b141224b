//! `/auth/verify` (forward-auth) and `/auth/token-info`, with tokens from the real
//! request-token endpoint and hostile tokens made by hand.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_verify::Claims;
use serde_json::json;
use support::config::TestConfig;
use support::service::{basic, login_as, send, TestApp, TEST_ISSUER, TEST_KID, TEST_SECRET};
use support::slapd::Slapd;
use support::users::{ALICE, DRESSLER};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(sub: &str, groups: &[&str]) -> Claims {
    let mut c = Claims::new(TEST_ISSUER, sub, now(), now() + 600);
    c.jti = "0123456789abcdef0123456789abcdef".into();
    c.groups = groups.iter().map(|g| g.to_string()).collect();
    c
}

/// A token signed like Latchkey's, with the given header and key.
fn sign_with(claims: &Claims, alg: Algorithm, kid: Option<&str>, secret: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn sign(claims: &Claims) -> String {
    sign_with(claims, Algorithm::HS256, Some(TEST_KID), TEST_SECRET)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// Status, headers and raw body of an answer whose body may be empty.
async fn raw(
    app: &impl TestApp,
    req: TestRequest,
) -> (StatusCode, actix_web::http::header::HeaderMap, String) {
    let response = test::call_service(app, req.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let body = String::from_utf8(test::read_body(response).await.to_vec()).expect("UTF-8 body");
    (status, headers, body)
}

fn header<'a>(headers: &'a actix_web::http::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .map(|v| v.to_str().expect("visible header"))
}

/// The answer is the 401 of a refused token: the Bearer challenge, no identity, and the
/// JSON error body with `message`.
fn assert_invalid_token(
    (status, headers, body): &(StatusCode, actix_web::http::header::HeaderMap, String),
    message: &str,
    context: &str,
) {
    assert_eq!(*status, StatusCode::UNAUTHORIZED, "{context}: {body}");
    assert_eq!(
        header(headers, "www-authenticate"),
        Some(r#"Bearer realm="latchkey", error="invalid_token""#),
        "{context}"
    );
    assert_eq!(header(headers, "remote-user"), None, "{context}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(body).expect("JSON"),
        json!({"error": "invalid_token", "message": message, "status": 401}),
        "{context}"
    );
}

#[actix_web::test]
async fn a_token_from_request_token_passes_verify_with_identity_headers() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let issued = send(&app, login_as(&ALICE, "")).await;
    let token = issued.token().to_owned();

    let (status, headers, body) = raw(
        &app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(bearer(&token)),
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "");
    assert_eq!(header(&headers, "remote-user"), Some("alice"));
    assert_eq!(header(&headers, "remote-groups"), Some(""));
    assert_eq!(header(&headers, "remote-email"), Some("alice@example.org"));
    assert_eq!(header(&headers, "remote-name"), Some("Alice Liddell"));
    assert_eq!(header(&headers, "cache-control"), Some("no-store"));

    let info = send(
        &app,
        TestRequest::get()
            .uri("/auth/token-info")
            .insert_header(bearer(&token)),
    )
    .await;
    assert_eq!(info.status, StatusCode::OK);
    assert_eq!(info.body["sub"], "alice");
    assert_eq!(info.body["iss"], TEST_ISSUER);
    assert_eq!(info.body["email"], "alice@example.org");
    assert_eq!(info.header("cache-control"), "no-store");
}

#[actix_web::test]
async fn the_token_may_come_as_basic_username_or_cookie_and_any_method_works() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .cookie_name("latchkey_token")
        .app()
        .await;
    let token = sign(&claims("bob", &[]));

    let ways = [
        TestRequest::get().insert_header(("Authorization", basic(&token, ""))),
        TestRequest::get().insert_header(("Authorization", basic(&token, "ignored"))),
        TestRequest::get().insert_header((
            "Authorization",
            format!("Basic {}", STANDARD.encode(&token)),
        )),
        TestRequest::get().insert_header(("Cookie", format!("theme=dark; latchkey_token={token}"))),
        TestRequest::post().insert_header(bearer(&token)),
        TestRequest::put().insert_header(bearer(&token)),
        TestRequest::delete().insert_header(bearer(&token)),
        TestRequest::default()
            .method(actix_web::http::Method::HEAD)
            .insert_header(bearer(&token)),
    ];
    for (i, req) in ways.into_iter().enumerate() {
        let (status, headers, _) = raw(&app, req.uri("/auth/verify")).await;
        assert_eq!(status, StatusCode::OK, "way {i}");
        assert_eq!(header(&headers, "remote-user"), Some("bob"), "way {i}");
    }
}

#[actix_web::test]
async fn no_token_or_directory_credentials_are_401_with_a_bearer_challenge() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;

    let (status, headers, body) = raw(&app, TestRequest::get().uri("/auth/verify")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&headers, "www-authenticate"),
        Some(r#"Bearer realm="latchkey""#)
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        json!({"error": "missing_token", "message": "Send a token: Authorization: Bearer <token>.", "status": 401})
    );
    assert_eq!(header(&headers, "remote-user"), None);

    // Without a configured cookie, a cookie is not looked at.
    let token = sign(&claims("bob", &[]));
    let (status, _, _) = raw(
        &app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(("Cookie", format!("latchkey_token={token}"))),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A username and password are not a token, even correct ones.
    let answer = raw(
        &app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(("Authorization", basic(ALICE.login, ALICE.password))),
    )
    .await;
    assert_invalid_token(&answer, "The token is malformed.", "directory credentials");
}

/// A token asked about again is answered from what its first verification found, and refused
/// once it expires all the same; with the cache turned off, the answers are the same.
#[actix_web::test]
async fn a_token_verified_before_is_answered_alike_and_still_expires() {
    let slapd = Slapd::start();
    let leeway = TestConfig::new(&slapd).verify("leeway", 0);
    for (cache, config) in [
        ("default cache", leeway.clone()),
        ("no cache", leeway.verify("cache_max_bytes", 0)),
    ] {
        let app = config.app().await;
        let issued = send(&app, login_as(&ALICE, "token_duration=2")).await;
        assert_eq!(issued.status, StatusCode::OK, "{cache}");
        let token = issued.token().to_owned();
        let verify = || {
            TestRequest::get()
                .uri("/auth/verify")
                .insert_header(bearer(&token))
        };
        for _ in 0..3 {
            let (status, headers, body) = raw(&app, verify()).await;
            assert_eq!(status, StatusCode::OK, "{cache}");
            assert_eq!(body, "");
            assert_eq!(header(&headers, "remote-user"), Some("alice"));
            assert_eq!(header(&headers, "remote-email"), Some("alice@example.org"));
            assert_eq!(header(&headers, "remote-name"), Some("Alice Liddell"));
            assert_eq!(header(&headers, "remote-groups"), Some(""));
        }
        // Past exp (whole seconds) with no leeway.
        actix_web::rt::time::sleep(std::time::Duration::from_millis(3100)).await;
        for _ in 0..2 {
            assert_invalid_token(
                &raw(&app, verify()).await,
                "The token has expired; request a new one.",
                cache,
            );
        }
    }
}

#[actix_web::test]
async fn required_groups_are_all_checked() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = sign(&claims("carol", &["staff", "ops"]));
    let verify = |query: &str| {
        TestRequest::get()
            .uri(&format!("/auth/verify{query}"))
            .insert_header(bearer(&token))
    };

    let (status, headers, _) = raw(&app, verify("?group=staff")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header(&headers, "remote-groups"), Some("staff,ops"));
    let (status, _, _) = raw(&app, verify("?group=staff&group=ops")).await;
    assert_eq!(status, StatusCode::OK);

    let (status, headers, body) = raw(&app, verify("?group=staff&group=admins")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(header(&headers, "remote-user"), None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
        json!({"error": "forbidden", "message": "This needs membership of the group \"admins\".", "status": 403})
    );

    let bad = send(&app, verify("?group=")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["message"],
        "group must name a group, e.g. ?group=admins."
    );
}

#[actix_web::test]
async fn a_group_expression_can_be_required() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = sign(&claims("carol", &["staff", "ops", "Sales, EMEA"]));
    let verify = |expr: &str| {
        let query = serde_urlencoded::to_string([("require", expr)]).expect("a query");
        TestRequest::get()
            .uri(&format!("/auth/verify?{query}"))
            .insert_header(bearer(&token))
    };
    for (expr, want) in [
        ("staff & (admins | ops)", StatusCode::OK),
        ("STAFF & !contractors", StatusCode::OK),
        ("\"Sales, EMEA\"", StatusCode::OK),
        ("staff & admins", StatusCode::FORBIDDEN),
        ("!ops", StatusCode::FORBIDDEN),
    ] {
        let (status, _, body) = raw(&app, verify(expr)).await;
        assert_eq!(status, want, "{expr}: {body}");
    }
    let refused = send(&app, verify("staff & admins")).await;
    assert_eq!(
        refused.body,
        json!({"error": "forbidden", "message": "The token's groups do not satisfy staff & admins.", "status": 403})
    );
    let bad = send(&app, verify("staff & (admins")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body["message"],
        "require is not a group expression: column 16: ')' expected at end of expression to close the '(' at column 9."
    );
}

#[actix_web::test]
async fn identity_headers_sent_by_the_client_never_come_back() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = sign(&claims("bob", &[]));
    let forged = |req: TestRequest| {
        req.uri("/auth/verify")
            .insert_header(("Remote-User", "root"))
            .insert_header(("Remote-Groups", "admins"))
            .insert_header(("Remote-Email", "root@example.org"))
    };

    let (status, headers, _) = raw(
        &app,
        forged(TestRequest::get().insert_header(bearer(&token))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let users: Vec<_> = headers.get_all("remote-user").collect();
    assert_eq!(users, ["bob"]);
    assert_eq!(header(&headers, "remote-groups"), Some(""));
    // Claims bob's token lacks are answered empty, never left for a proxy to fill from the client.
    for name in ["remote-email", "remote-name"] {
        let values: Vec<_> = headers.get_all(name).collect();
        assert_eq!(values, [""], "{name}");
    }

    let (status, headers, _) = raw(&app, forged(TestRequest::get())).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for name in [
        "remote-user",
        "remote-groups",
        "remote-email",
        "remote-name",
    ] {
        assert_eq!(header(&headers, name), None, "{name}");
    }
}

#[actix_web::test]
async fn hostile_tokens_are_all_401_and_never_5xx() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let good = claims("alice", &[]);
    let good_token = sign(&good);
    let b64 = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let mut expired = good.clone();
    expired.exp = now() - 60;
    let mut future = good.clone();
    future.nbf = now() + 600;
    let mut other_issuer = good.clone();
    other_issuer.iss = "someone-else".into();
    let mut with_audience = good.clone();
    with_audience.aud = Some("another-service".into());
    let mut parts: Vec<String> = good_token.split('.').map(str::to_owned).collect();
    let mut root = good.clone();
    root.sub = "root".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&root).expect("JSON"));
    let tampered = parts.join(".");
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": TEST_KID})),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&good).expect("JSON"))
    );
    let huge = format!("{}.{}.sig", "a".repeat(5000), "b".repeat(5000));

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "alg none",
            none,
            "The token's signing algorithm is not allowed.",
        ),
        (
            "HS512 when HS256 is configured",
            sign_with(&good, Algorithm::HS512, Some(TEST_KID), TEST_SECRET),
            "The token's signing algorithm is not allowed.",
        ),
        (
            "another secret",
            sign_with(
                &good,
                Algorithm::HS256,
                Some(TEST_KID),
                "another-secret-another-secret-another",
            ),
            "The token's signature is not valid.",
        ),
        (
            "payload changed after signing",
            tampered,
            "The token's signature is not valid.",
        ),
        (
            "unknown kid",
            sign_with(&good, Algorithm::HS256, Some("old-key"), TEST_SECRET),
            "The token was signed with a key this server does not hold.",
        ),
        (
            "no kid",
            sign_with(&good, Algorithm::HS256, None, TEST_SECRET),
            "The token was signed with a key this server does not hold.",
        ),
        (
            "expired",
            sign(&expired),
            "The token has expired; request a new one.",
        ),
        (
            "nbf in the future",
            sign(&future),
            "The token is not valid yet.",
        ),
        (
            "wrong iss",
            sign(&other_issuer),
            "The token was issued by another issuer.",
        ),
        (
            "unexpected aud",
            sign(&with_audience),
            "The token is meant for another audience.",
        ),
        (
            "truncated",
            good_token[..good_token.len() - 10].to_owned(),
            "The token is malformed.",
        ),
        ("two parts", parts[..2].join("."), "The token is malformed."),
        (
            "not base64",
            "%%%.%%%.%%%".into(),
            "The token is malformed.",
        ),
        ("huge", huge, "The token is malformed."),
    ];
    for (what, token, message) in cases {
        for uri in ["/auth/verify", "/auth/token-info"] {
            let answer = raw(
                &app,
                TestRequest::get().uri(uri).insert_header(bearer(&token)),
            )
            .await;
            assert_invalid_token(&answer, message, &format!("{what} at {uri}"));
        }
    }
    let (status, _, _) = raw(
        &app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(("Authorization", "Bearer ")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The untouched token still passes, so each refusal above is about its one change.
    let (status, _, _) = raw(
        &app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(bearer(&good_token)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn token_info_takes_only_get() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let answer = send(&app, TestRequest::post().uri("/auth/token-info")).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.header("allow"), "GET");
    assert_eq!(
        answer.body,
        json!({"error": "method_not_allowed", "message": "Use GET to read a token's claims.", "status": 405})
    );
}

#[actix_web::test]
async fn group_names_compare_alike_in_access_group_and_require_which_see_the_token_groups() {
    let slapd = Slapd::start();
    // dreßler is in Größe, ops and "Sales, EMEA (*)"; [claims] keeps ops out of the token.
    let app = TestConfig::new(&slapd)
        .openldap_groups()
        .claims("groups_allow", ["SALES, EMEA (*)", "GRÖẞE"])
        .access("require", r#""sales, emea (*)" & GRÖẞE & OPS"#)
        .app()
        .await;
    // [access] sees every group, in any case.
    let issued = send(&app, login_as(&DRESSLER, "")).await;
    issued.assert_status(StatusCode::OK);
    let token = issued.token().to_owned();
    let verify = |query: &str| {
        TestRequest::get()
            .uri(&format!("/auth/verify?{query}"))
            .insert_header(bearer(&token))
    };
    let require = |expr: &str| serde_urlencoded::to_string([("require", expr)]).expect("a query");
    let group = |name: &str| serde_urlencoded::to_string([("group", name)]).expect("a query");

    for query in [
        group("GRÖẞE"),
        group("größe"),
        group("sales,  EMEA (*)"),
        format!("{}&{}", group("Größe"), group("SALES, EMEA (*)")),
        require("GRÖẞE & \"sales, emea (*)\""),
        require("größe & !OPS"),
    ] {
        let (status, headers, body) = raw(&app, verify(&query)).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body, "", "{query}");
        assert_eq!(
            headers.get("remote-groups").map(|v| v.as_bytes()),
            Some("Größe,Sales%2C EMEA (*)".as_bytes()),
            "{query}"
        );
    }
    // "SS" is not a sharp s; and ops, which [access] saw, is not in the token.
    for (query, message) in [
        (
            group("GRÖSSE"),
            "This needs membership of the group \"GRÖSSE\".",
        ),
        (group("OPS"), "This needs membership of the group \"OPS\"."),
        (
            require("GRÖSSE"),
            "The token's groups do not satisfy GRÖSSE.",
        ),
        (require("ops"), "The token's groups do not satisfy ops."),
    ] {
        let (status, headers, body) = raw(&app, verify(&query)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query}: {body}");
        assert_eq!(header(&headers, "remote-user"), None, "{query}");
        assert_eq!(
            header(&headers, "cache-control"),
            Some("no-store"),
            "{query}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).expect("JSON"),
            json!({"error": "forbidden", "message": message, "status": 403}),
            "{query}"
        );
    }
}
