//! Tokens that end early, against a real slapd: `POST /auth/logout` with a token, the
//! administrators' `POST /auth/revoke`, the sign-in page's sign-out, and what every route that
//! reads a token makes of a revoked one (`/auth/verify` with its cache, `/auth/token-info`,
//! `/auth/refresh`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;
use support::config::TestConfig;
use support::portal::FormClient;
use support::service::{
    bearer_post, claims, invalid_parameter, login_as, send, send_raw, token_revoked_body,
    verify_request, TestApp,
};
use support::slapd::Slapd;
use support::users::{User, ALICE, BOB};

/// A token for `user` from the real token endpoint.
async fn token_of(app: &impl TestApp, user: &User) -> String {
    send(app, login_as(user, "")).await.token().to_owned()
}

/// Assert that `/auth/verify` lets `token` through.
async fn assert_verifies(app: &impl TestApp, token: &str) {
    let answer = send_raw(app, verify_request(token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

/// Assert that every route reading a token refuses `token` as revoked.
async fn assert_revoked(app: &impl TestApp, token: &str) {
    let verify = send(app, verify_request(token)).await;
    verify.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        verify.header("www-authenticate"),
        r#"Bearer realm="latchkey", error="invalid_token""#
    );
    assert_eq!(verify.body, token_revoked_body());
    let info = send(
        app,
        TestRequest::get()
            .uri("/auth/token-info")
            .insert_header(("Authorization", format!("Bearer {token}"))),
    )
    .await;
    info.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(info.body, token_revoked_body());
    let refresh = send(app, bearer_post("/auth/refresh", token)).await;
    refresh.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(refresh.body, token_revoked_body());
}

/// `POST /auth/revoke` with `admin`'s token and a JSON body.
fn revoke(admin: &str, body: &str) -> TestRequest {
    bearer_post("/auth/revoke", admin)
        .insert_header(("Content-Type", "application/json"))
        .set_payload(body.to_owned())
}

/// Revocation on, for tokens whose groups include `admins`.
fn with_admins(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd)
        .member_groups()
        .set("admin", "require", "admins")
}

#[actix_web::test]
async fn logout_revokes_the_token_everywhere_it_is_read_even_when_cached() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = token_of(&app, &ALICE).await;
    let other = token_of(&app, &ALICE).await;
    // Verified once: the worker keeps it.
    assert_verifies(&app, &token).await;
    assert_verifies(&app, &token).await;

    let out = send_raw(&app, bearer_post("/auth/logout", &token)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(out.header("cache-control"), "no-store");
    assert_eq!(out.header("set-cookie"), "", "no portal, no cookie");
    assert_eq!(out.body, "");
    assert_revoked(&app, &token).await;
    // Signing out again changes nothing and is no error.
    let again = send_raw(&app, bearer_post("/auth/logout", &token)).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    // Only that token: the user's other one still works.
    assert_verifies(&app, &other).await;
    assert_eq!(claims(&other).sub, "alice");
}

/// The lines of `/metrics` about revocations.
async fn revocation_metrics(app: &impl TestApp) -> Vec<String> {
    let answer = send_raw(app, TestRequest::get().uri("/metrics")).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer
        .body
        .lines()
        .filter(|l| l.starts_with("latchkey_revocations"))
        .map(str::to_owned)
        .collect()
}

#[actix_web::test]
async fn metrics_count_the_revocations_held() {
    let slapd = Slapd::start();
    let app = with_admins(&slapd).app().await;
    assert_eq!(
        revocation_metrics(&app).await,
        [
            "latchkey_revocations 0",
            "latchkey_revocations_synced 1",
            "latchkey_revocations_sync_age_seconds 0",
        ]
    );
    let token = token_of(&app, &BOB).await;
    let out = send_raw(&app, bearer_post("/auth/logout", &token)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let admin = token_of(&app, &ALICE).await;
    let out = send_raw(&app, revoke(&admin, r#"{"user": "bob"}"#)).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    // The memory backend's set is the store: always in sync, never read from elsewhere.
    assert_eq!(
        revocation_metrics(&app).await,
        [
            "latchkey_revocations 2",
            "latchkey_revocations_synced 1",
            "latchkey_revocations_sync_age_seconds 0",
        ]
    );
}

#[actix_web::test]
async fn logout_needs_a_valid_token() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let none = send(&app, TestRequest::post().uri("/auth/logout")).await;
    none.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.body,
        json!({"error": "missing_token", "message": "Send a token: Authorization: Bearer <token>.", "status": 401})
    );
    let token = token_of(&app, &BOB).await;
    // Another last signature character (an HMAC-SHA-256 tag's ends in one of 16, 'A' among
    // them: replacing it with a fixed one would leave a sixteenth of tokens unchanged).
    let (kept, last) = token.split_at(token.len() - 1);
    let forged = format!("{kept}{}", if last == "A" { "E" } else { "A" });
    let bad = send(&app, bearer_post("/auth/logout", &forged)).await;
    bad.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad.body,
        json!({"error": "invalid_token", "message": "The token's signature is not valid.", "status": 401})
    );
    assert_verifies(&app, &token).await;
    let get = send(&app, TestRequest::get().uri("/auth/logout")).await;
    get.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.header("allow"), "POST");
    assert_eq!(
        get.body,
        json!({"error": "method_not_allowed", "message": "Use POST with a token to sign out.", "status": 405})
    );
}

#[actix_web::test]
async fn an_admin_revokes_every_token_of_a_user() {
    let slapd = Slapd::start();
    let app = with_admins(&slapd).app().await;
    let admin = token_of(&app, &ALICE).await;
    let bob1 = token_of(&app, &BOB).await;
    let bob2 = token_of(&app, &BOB).await;
    assert_verifies(&app, &bob1).await;

    let answer = send_raw(&app, revoke(&admin, r#"{"user": "BOB"}"#)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_revoked(&app, &bob1).await;
    assert_revoked(&app, &bob2).await;
    assert_verifies(&app, &admin).await;

    // Tokens issued after the revocation's second work again.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let fresh = token_of(&app, &BOB).await;
    assert_verifies(&app, &fresh).await;
}

#[actix_web::test]
async fn an_admin_revokes_one_token_by_its_id() {
    let slapd = Slapd::start();
    let app = with_admins(&slapd).app().await;
    let admin = token_of(&app, &ALICE).await;
    let stolen = token_of(&app, &BOB).await;
    let kept = token_of(&app, &BOB).await;
    let body = json!({ "token_id": claims(&stolen).jti }).to_string();
    let answer = send_raw(&app, revoke(&admin, &body)).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.body);
    assert_revoked(&app, &stolen).await;
    assert_verifies(&app, &kept).await;
}

#[actix_web::test]
async fn only_admins_may_revoke_and_only_with_a_clear_request() {
    let slapd = Slapd::start();
    let app = with_admins(&slapd).app().await;
    let admin = token_of(&app, &ALICE).await;
    let bob = token_of(&app, &BOB).await;

    let not_admin = send(&app, revoke(&bob, r#"{"user": "alice"}"#)).await;
    not_admin.assert_status(StatusCode::FORBIDDEN);
    assert_eq!(
        not_admin.body,
        json!({"error": "forbidden", "message": "Revoking tokens needs a token whose groups satisfy admin.require.", "status": 403})
    );
    assert_verifies(&app, &admin).await;

    let anonymous = send(
        &app,
        TestRequest::post()
            .uri("/auth/revoke")
            .insert_header(("Content-Type", "application/json"))
            .set_payload(r#"{"user": "bob"}"#),
    )
    .await;
    anonymous.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["error"], "missing_token");

    // The admin's session cookie is not enough: the token must be in Authorization.
    let by_cookie = send(
        &app,
        TestRequest::post()
            .uri("/auth/revoke")
            .insert_header(("Cookie", format!("latchkey_session={admin}")))
            .insert_header(("Content-Type", "application/json"))
            .set_payload(r#"{"user": "bob"}"#),
    )
    .await;
    by_cookie.assert_status(StatusCode::UNAUTHORIZED);

    let hint = r#"Send a JSON object with one of "user" or "token_id", e.g. {"user": "alice"}."#;
    let cases = [
        (
            "text/plain",
            r#"{"user": "bob"}"#,
            format!("The body must be JSON (Content-Type: application/json). {hint}"),
        ),
        (
            "application/json",
            "user=bob",
            format!("The body is not the JSON expected. {hint}"),
        ),
        (
            "application/json",
            r#"{"user": "bob", "admin": true}"#,
            format!("The body is not the JSON expected. {hint}"),
        ),
        ("application/json", r#"{}"#, hint.to_owned()),
        (
            "application/json",
            r#"{"user": "bob", "token_id": "x"}"#,
            hint.to_owned(),
        ),
        (
            "application/json",
            r#"{"user": "bo\nb"}"#,
            "user must be a username of 1 to 256 characters without control characters.".to_owned(),
        ),
        (
            "application/json",
            r#"{"token_id": "a b"}"#,
            "token_id must be 1 to 128 letters, digits, '-' or '_'.".to_owned(),
        ),
    ];
    for (content_type, body, message) in cases {
        let answer = send(
            &app,
            bearer_post("/auth/revoke", &admin)
                .insert_header(("Content-Type", content_type))
                .set_payload(body),
        )
        .await;
        answer.assert_status(StatusCode::BAD_REQUEST);
        assert_eq!(answer.body, invalid_parameter(&message), "{body}");
    }
    assert_verifies(&app, &bob).await;
}

#[actix_web::test]
async fn without_admin_require_the_endpoint_does_not_exist() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).member_groups().app().await;
    let admin = token_of(&app, &ALICE).await;
    let answer = send(&app, revoke(&admin, r#"{"user": "bob"}"#)).await;
    answer.assert_status(StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        json!({"error": "not_found", "message": "There is nothing at this path.", "status": 404})
    );
}

/// The sign-in pages on `auth.example.org`, the cookie on `example.org`.
fn portal(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd)
        .member_groups()
        .portal("url", "https://auth.example.org")
        .portal("cookie_domain", "example.org")
}

const SESSION: &str = "latchkey_session";

#[actix_web::test]
async fn the_sign_in_page_sign_out_revokes_the_session_token() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    browser.sign_in(&app, ALICE.login, ALICE.password, "").await;
    let session = browser.cookie(SESSION).unwrap().to_owned();
    assert_verifies(&app, &session).await;

    let confirm = browser.get(&app, "/auth/logout").await;
    let out = browser
        .post(&app, "/auth/logout", &[("csrf", &confirm.hidden("csrf"))])
        .await;
    out.assert_status(StatusCode::OK);
    out.assert_shows(&["You are signed out."]);
    assert_revoked(&app, &session).await;

    // The cookie, kept by a browser that ignored the clearing, no longer signs anyone in.
    browser.set_cookie(SESSION, &session);
    let page = browser.get(&app, "/auth/login").await;
    page.assert_status(StatusCode::OK);
    page.assert_shows(&["<title>Sign in · Latchkey</title>"]);
}

#[actix_web::test]
async fn the_api_logout_clears_the_portal_cookie_and_keeps_the_form() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    browser.sign_in(&app, BOB.login, BOB.password, "").await;
    let session = browser.cookie(SESSION).unwrap().to_owned();

    // A form POST without a CSRF token is the form's, refused, and revokes nothing.
    let forged = browser.post(&app, "/auth/logout", &[("csrf", "")]).await;
    forged.assert_status(StatusCode::FORBIDDEN);
    assert_verifies(&app, &session).await;

    // Not a form: the API's sign-out, with the token from the cookie.
    let out = send_raw(
        &app,
        TestRequest::post()
            .uri("/auth/logout")
            .insert_header(("Cookie", format!("{SESSION}={session}"))),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_eq!(
        out.header("set-cookie"),
        "latchkey_session=; Max-Age=0; Domain=example.org; Path=/; Secure; HttpOnly; SameSite=Lax"
    );
    assert_revoked(&app, &session).await;
}

#[actix_web::test]
async fn another_origins_page_cannot_use_the_session_cookie_to_sign_out_or_refresh() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    browser.sign_in(&app, BOB.login, BOB.password, "").await;
    let session = browser.cookie(SESSION).unwrap().to_owned();
    let cookie = format!("{SESSION}={session}");
    let refused = "A page of another origin cannot use the session cookie here; send the token \
                   in the Authorization header.";

    // A sibling host is the same site, so SameSite=Lax lets the cookie through: the headers
    // browsers add tell its pages apart.
    for (path, headers) in [
        ("/auth/logout", [("Sec-Fetch-Site", "same-site")]),
        ("/auth/logout", [("Origin", "https://wiki.example.org")]),
        ("/auth/refresh", [("Sec-Fetch-Site", "same-site")]),
        ("/auth/refresh", [("Origin", "https://wiki.example.org")]),
    ] {
        let mut request = TestRequest::post()
            .uri(path)
            .insert_header(("Cookie", cookie.as_str()));
        for header in headers {
            request = request.insert_header(header);
        }
        let answer = send(&app, request).await;
        answer.assert_status(StatusCode::FORBIDDEN);
        assert_eq!(
            answer.body,
            json!({"error": "forbidden", "message": refused, "status": 403}),
            "{path} {headers:?}"
        );
    }
    assert_verifies(&app, &session).await;

    // Without the cookie there is nothing to refuse: the usual 401.
    let anonymous = send(
        &app,
        TestRequest::post()
            .uri("/auth/logout")
            .insert_header(("Sec-Fetch-Site", "cross-site")),
    )
    .await;
    anonymous.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.body["error"], "missing_token");

    // A token in Authorization is not the cookie: no other page can send it.
    let refreshed = send(
        &app,
        TestRequest::post()
            .uri("/auth/refresh")
            .insert_header(("Authorization", format!("Bearer {session}")))
            .insert_header(("Sec-Fetch-Site", "cross-site")),
    )
    .await;
    refreshed.assert_status(StatusCode::OK);
    assert_eq!(refreshed.body["token_type"], "Bearer");

    // The service's own pages may.
    let out = send_raw(
        &app,
        TestRequest::post()
            .uri("/auth/logout")
            .insert_header(("Cookie", cookie.as_str()))
            .insert_header(("Origin", "https://auth.example.org")),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_revoked(&app, &session).await;
}

#[actix_web::test]
async fn a_visit_to_the_sign_in_page_renews_the_session() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    browser.sign_in(&app, ALICE.login, ALICE.password, "").await;
    let first = claims(browser.cookie(SESSION).unwrap());
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let page = browser.get(&app, "/auth/login").await;
    page.assert_status(StatusCode::OK);
    page.assert_shows(&["alice"]);
    let renewed = page.set_cookie(SESSION);
    assert_eq!(renewed.attributes.get("max-age").unwrap(), "43200");
    let second = claims(&renewed.value);
    assert_eq!(second.sub, "alice");
    assert_eq!(second.auth_time, first.auth_time);
    assert!(second.iat > first.iat);
    assert_eq!(second.exp - second.iat, 43200);

    // A session whose user is gone ends at the next visit: the cookie is cleared.
    slapd.modify("dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: delete\n");
    let page = browser.get(&app, "/auth/login").await;
    page.assert_status(StatusCode::OK);
    page.assert_shows(&["<title>Sign in · Latchkey</title>"]);
    assert_eq!(page.set_cookie(SESSION).value, "");
    assert_eq!(browser.cookie(SESSION), None);
}
