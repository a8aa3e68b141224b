//! `POST /auth/request-token` against a real slapd: each test starts its own directory.
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
use support::service::{
    basic, basic_raw, claims, invalid_credentials_body, invalid_parameter, login_as, send,
    token_request, TEST_ISSUER,
};
use support::slapd::Slapd;
use support::users::{ALICE, BOB, CAROL, TWINS_PASSWORD};

const WWW_AUTHENTICATE: &str = r#"Basic realm="latchkey", charset="UTF-8""#;

#[actix_web::test]
async fn good_login_by_search_returns_a_signed_token_with_the_users_claims() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let before = chrono::Utc::now().timestamp();

    let answer = send(&app, login_as(&ALICE, "")).await;

    answer.assert_status(StatusCode::OK);
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.header("content-type"), "application/json");
    let fields: Vec<&String> = answer.body.as_object().expect("an object").keys().collect();
    assert_eq!(fields, ["expires_at", "expires_in", "token", "token_type"]);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 3600);

    let claims = claims(answer.token());
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.iss, TEST_ISSUER);
    assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(claims.email.as_deref(), Some("alice@example.org"));
    assert_eq!(claims.aud, None);
    assert!(
        claims.iat >= before && claims.iat <= before + 5,
        "iat {}",
        claims.iat
    );
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.exp, claims.iat + 3600);
    assert_eq!(claims.jti.len(), 32);
    let expires_at = chrono::DateTime::parse_from_rfc3339(
        answer.body["expires_at"]
            .as_str()
            .expect("expires_at is text"),
    )
    .expect("expires_at is RFC 3339");
    assert_eq!(expires_at.timestamp(), claims.exp);
    assert!(answer.body["expires_at"]
        .as_str()
        .is_some_and(|s| s.ends_with('Z')));

    let header = jsonwebtoken::decode_header(answer.token()).expect("a JWT header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some("test-1"));
}

#[actix_web::test]
async fn a_user_without_mail_gets_a_token_without_email() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let answer = send(&app, token_request("user1", "user1-password", "")).await;
    answer.assert_status(StatusCode::OK);
    let claims = claims(answer.token());
    assert_eq!(claims.email, None);
    assert_eq!(claims.name.as_deref(), Some("User One"));
}

#[actix_web::test]
async fn get_is_accepted_as_well_as_post() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let req = TestRequest::get()
        .uri("/auth/request-token")
        .insert_header(("Authorization", basic(BOB.login, BOB.password)));
    let answer = send(&app, req).await;
    assert_eq!(answer.issued().sub, "bob");
}

#[actix_web::test]
async fn a_dn_template_login_obeys_the_user_filter() {
    // An entry the filter leaves out (here: by uid, as a disabled-account clause or a
    // memberOf gate would) is no user, whatever its password: the same 401 as a wrong one.
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .people_dn_template()
        .filter("(&(objectClass=inetOrgPerson)(!(uid=alice)))")
        .app()
        .await;
    let excluded = send(&app, login_as(&ALICE, "")).await;
    excluded.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(excluded.body, invalid_credentials_body());
    assert_eq!(excluded.header("www-authenticate"), WWW_AUTHENTICATE);
    let bob = send(&app, login_as(&BOB, "")).await;
    assert_eq!(bob.issued().sub, "bob");
}

#[actix_web::test]
async fn good_login_by_dn_template() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).people_dn_template().app().await;

    let answer = send(&app, login_as(&ALICE, "")).await;
    assert_eq!(answer.issued().sub, "alice");
    assert_eq!(
        claims(answer.token()).email.as_deref(),
        Some("alice@example.org")
    );

    let wrong = send(&app, token_request("alice", "nope", "")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, invalid_credentials_body());
    let unknown = send(&app, token_request("nobody", "nope", "")).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body, invalid_credentials_body());
    // A login that would break out of its RDN is escaped into one value, and so finds no one.
    let escape = send(&app, token_request("alice,ou=people", ALICE.password, "")).await;
    assert_eq!(escape.status, StatusCode::UNAUTHORIZED);
    assert_eq!(escape.body, invalid_credentials_body());
}

#[actix_web::test]
async fn wrong_password_and_unknown_user_get_the_same_401() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;

    let wrong = send(&app, token_request("alice", "not-her-password", "")).await;
    let unknown = send(&app, token_request("mallory", "not-her-password", "")).await;

    for answer in [&wrong, &unknown] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.body, invalid_credentials_body());
        assert_eq!(answer.header("www-authenticate"), WWW_AUTHENTICATE);
        assert_eq!(answer.header("cache-control"), "no-store");
        assert_eq!(answer.header("content-type"), "application/json");
    }
    assert_eq!(wrong.headers.len(), unknown.headers.len());
}

#[actix_web::test]
async fn an_empty_password_is_refused_before_any_directory_traffic() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;

    let answer = send(&app, token_request("alice", "", "")).await;

    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body, invalid_credentials_body());
    assert_eq!(answer.header("www-authenticate"), WWW_AUTHENTICATE);
    assert_eq!(
        slapd.ldap_operations(),
        0,
        "slapd saw an operation for an empty password:\n{}",
        slapd.log()
    );
    // The same app does reach slapd for a real attempt, so the check above can fail.
    let real = send(&app, token_request("alice", "x", "")).await;
    assert_eq!(real.status, StatusCode::UNAUTHORIZED);
    assert!(slapd.ldap_operations() >= 2, "{}", slapd.log());
}

#[actix_web::test]
async fn no_credentials_or_another_scheme_asks_for_basic() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let missing = json!({
        "error": "missing_credentials",
        "message": "Send your directory login and password with HTTP Basic authentication.",
        "status": 401
    });

    let none = send(&app, TestRequest::post().uri("/auth/request-token")).await;
    let bearer = send(
        &app,
        TestRequest::post()
            .uri("/auth/request-token")
            .insert_header(("Authorization", "Bearer abc.def.ghi")),
    )
    .await;

    for answer in [none, bearer] {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.body, missing);
        assert_eq!(answer.header("www-authenticate"), WWW_AUTHENTICATE);
    }
}

#[actix_web::test]
async fn malformed_credentials_are_400_saying_what_is_wrong() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let long_login = format!("{}:pw", "a".repeat(257));
    let cases: Vec<(String, &str)> = vec![
        (
            "Basic %%%".into(),
            "The Basic credentials are not valid base64.",
        ),
        (
            basic_raw(b"alice"),
            "The Basic credentials have no ':' between login and password.",
        ),
        (basic_raw(b"al\xffice:pw"), "The login is not valid UTF-8."),
        (
            basic_raw(long_login.as_bytes()),
            "The login is 257 bytes long; at most 256 are allowed.",
        ),
        (
            basic_raw(b"ali\x1bce:pw"),
            "The login contains a control character.",
        ),
        (basic_raw(b":pw"), "The login is empty."),
    ];
    for (header, message) in cases {
        let req = TestRequest::post()
            .uri("/auth/request-token")
            .insert_header(("Authorization", header.as_str()));
        let answer = send(&app, req).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{header}");
        assert_eq!(
            answer.body,
            json!({ "error": "malformed_credentials", "message": message, "status": 400 }),
            "{header}"
        );
    }
    assert_eq!(slapd.ldap_operations(), 0, "{}", slapd.log());
}

#[actix_web::test]
async fn token_duration_is_honoured_within_its_bounds() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;

    for (asked, want) in [("1", 1), ("600", 600), ("86400", 86400)] {
        let answer = send(&app, login_as(&ALICE, &format!("token_duration={asked}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{asked}: {}", answer.body);
        assert_eq!(answer.body["expires_in"], want);
        let claims = claims(answer.token());
        assert_eq!(claims.exp - claims.iat, want);
    }
    let message = "token_duration must be a whole number of seconds from 1 to 86400.";
    for bad in ["0", "86401", "-5", "1.5", "ten", "", "18446744073709551616"] {
        let answer = send(&app, login_as(&ALICE, &format!("token_duration={bad}"))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(answer.body, invalid_parameter(message), "{bad:?}");
    }
}

#[actix_web::test]
async fn the_maximum_duration_comes_from_the_configuration() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .tokens("default_duration", 60)
        .tokens("max_duration", 120)
        .app()
        .await;
    let default = send(&app, login_as(&ALICE, "")).await;
    assert_eq!(default.body["expires_in"], 60);
    let over = send(&app, login_as(&ALICE, "token_duration=121")).await;
    assert_eq!(over.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        over.body,
        invalid_parameter("token_duration must be a whole number of seconds from 1 to 120.")
    );
}

#[actix_web::test]
async fn search_criteria_picks_an_allowed_attribute() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;

    let by_mail = send(
        &app,
        token_request("alice@example.org", ALICE.password, "search_criteria=mail"),
    )
    .await;
    assert_eq!(by_mail.issued().sub, "alice");

    // By default the first allowed attribute (uid) is searched, so an email finds no one.
    let default = send(&app, token_request("alice@example.org", ALICE.password, "")).await;
    assert_eq!(default.status, StatusCode::UNAUTHORIZED);

    for bad in ["cn", "userPassword", "uid)(cn=*", ""] {
        let answer = send(&app, login_as(&ALICE, &format!("search_criteria={bad}"))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(
            answer.body,
            invalid_parameter("search_criteria must be one of: uid, mail."),
            "{bad:?}"
        );
    }
}

#[actix_web::test]
async fn authenticated_search_decides_what_the_search_can_see() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    // carol lives where only the service account can search.
    let carol = |query: &str| login_as(&CAROL, query);

    let default = send(&app, carol("")).await;
    assert_eq!(default.issued().sub, "carol");
    for yes in ["true", "TRUE", "1", "yes"] {
        let answer = send(&app, carol(&format!("authenticated_search={yes}"))).await;
        assert_eq!(answer.status, StatusCode::OK, "{yes}: {}", answer.body);
    }
    for no in ["false", "False", "0", "no"] {
        let answer = send(&app, carol(&format!("authenticated_search={no}"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{no}");
        assert_eq!(answer.body, invalid_credentials_body());
    }
    // alice is visible to anonymous searches too.
    let anonymous = send(&app, login_as(&ALICE, "authenticated_search=false")).await;
    anonymous.assert_status(StatusCode::OK);

    let bad = send(&app, carol("authenticated_search=maybe")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body,
        invalid_parameter("authenticated_search must be true or false (or 1/0, yes/no).")
    );
}

#[actix_web::test]
async fn authenticated_search_that_the_configuration_forbids_is_400() {
    let slapd = Slapd::start();
    let app_always = TestConfig::new(&slapd)
        .directory("authenticated_search", "always")
        .app()
        .await;
    let answer = send(&app_always, login_as(&CAROL, "authenticated_search=false")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        invalid_parameter("This server always searches with its service account; authenticated_search=false is not allowed.")
    );
    let ok = send(&app_always, login_as(&CAROL, "")).await;
    ok.assert_status(StatusCode::OK);

    let app_never = TestConfig::new(&slapd).anonymous().app().await;
    let answer = send(&app_never, login_as(&ALICE, "authenticated_search=true")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body,
        invalid_parameter(
            "This server only searches anonymously; authenticated_search=true is not allowed."
        )
    );
    let anonymous = send(&app_never, login_as(&ALICE, "")).await;
    anonymous.assert_status(StatusCode::OK);
    let hidden = send(&app_never, login_as(&CAROL, "")).await;
    assert_eq!(hidden.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn ldap_injection_logins_never_get_a_token() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    // Each would match alice (or everyone) if it reached the filter unescaped.
    for login in [
        "*",
        "a*",
        "*)(uid=*",
        "alice)(uid=*",
        "user1)(uid=*",
        "\\2a",
        "alice\\29",
        "*)(|(uid=*",
    ] {
        for query in ["", "search_criteria=mail"] {
            let answer = send(&app, token_request(login, ALICE.password, query)).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{login:?} {query}");
            assert_eq!(answer.body, invalid_credentials_body(), "{login:?}");
        }
    }
    let nul = send(
        &app,
        TestRequest::post()
            .uri("/auth/request-token")
            .insert_header(("Authorization", basic_raw(b"alice\0:alice-password-1"))),
    )
    .await;
    assert_eq!(nul.status, StatusCode::BAD_REQUEST);
    assert_eq!(nul.body["error"], "malformed_credentials");
    // The escaping is visible in what slapd was asked.
    assert!(
        slapd.log().contains(r"(uid=alice\29\28uid=\2A)"),
        "{}",
        slapd.log()
    );
}

#[actix_web::test]
async fn the_subject_is_the_stored_username_not_what_was_typed() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    for (typed, password, stored) in [
        ("USER1", "user1-password", "user1"),
        ("Alice", ALICE.password, "alice"),
        ("ALICE@EXAMPLE.ORG", ALICE.password, "alice"),
    ] {
        let query = if typed.contains('@') {
            "search_criteria=mail"
        } else {
            ""
        };
        let answer = send(&app, token_request(typed, password, query)).await;
        assert_eq!(answer.status, StatusCode::OK, "{typed}: {}", answer.body);
        assert_eq!(claims(answer.token()).sub, stored, "{typed}");
    }
}

#[actix_web::test]
async fn a_login_matching_two_entries_is_refused() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let answer = send(
        &app,
        token_request("twins@example.org", TWINS_PASSWORD, "search_criteria=mail"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body, invalid_credentials_body());
    // Each twin can still log in by uid.
    let one = send(&app, token_request("twin1", TWINS_PASSWORD, "")).await;
    one.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn a_stopped_directory_is_503_with_retry_after_and_recovers() {
    let mut slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let unavailable = json!({
        "error": "directory_unavailable",
        "message": "The directory cannot be reached right now; try again in a few seconds.",
        "status": 503
    });
    // Pooled connections exist now, then their server goes away.
    let first = send(&app, login_as(&ALICE, "")).await;
    first.assert_status(StatusCode::OK);

    slapd.stop();
    for _ in 0..3 {
        let answer = send(&app, login_as(&ALICE, "")).await;
        answer.assert_status(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.body, unavailable);
        assert_eq!(answer.header("retry-after"), "5");
        assert_eq!(answer.header("cache-control"), "no-store");
    }

    slapd.restart();
    let again = send(&app, login_as(&ALICE, "")).await;
    again.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn a_directory_that_never_answered_is_503_not_401() {
    let mut slapd = Slapd::start();
    let config = TestConfig::new(&slapd);
    slapd.stop();
    let app = config.app().await;
    let answer = send(&app, login_as(&ALICE, "")).await;
    answer.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"], "directory_unavailable");
    assert_eq!(answer.header("retry-after"), "5");
}

#[actix_web::test]
async fn a_refused_service_bind_is_503_not_401() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .directory("bind_password", "wrong-service-password")
        .app()
        .await;
    let answer = send(&app, login_as(&ALICE, "")).await;
    answer.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"], "directory_unavailable");
}

#[actix_web::test]
async fn other_methods_and_paths_get_json_errors() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;

    let put = send(&app, TestRequest::put().uri("/auth/request-token")).await;
    assert_eq!(put.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(put.header("allow"), "GET, POST");
    assert_eq!(
        put.body,
        json!({ "error": "method_not_allowed", "message": "Use POST (or GET) to request a token.", "status": 405 })
    );

    let missing = send(&app, TestRequest::get().uri("/auth/nothing-here")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body,
        json!({ "error": "not_found", "message": "There is nothing at this path.", "status": 404 })
    );

    let health = send(&app, TestRequest::get().uri("/healthz")).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body, json!({ "status": "ok" }));

    // Every declared path answers a method it does not serve with 405 and `Allow`, never 404.
    let cases = [
        (
            "/auth/request-token",
            "GET, POST",
            "Use POST (or GET) to request a token.",
        ),
        (
            "/auth/token-info",
            "GET",
            "Use GET to read a token's claims.",
        ),
        (
            "/healthz",
            "GET, HEAD",
            "Use GET to ask whether the service is alive.",
        ),
        (
            "/readyz",
            "GET, HEAD",
            "Use GET to ask whether the directory can be reached.",
        ),
        ("/metrics", "GET, HEAD", "Use GET to read the metrics."),
    ];
    for (path, allow, message) in cases {
        for method in ["TRACE", "DELETE", "PATCH", "HEAD", "POST", "PUT"] {
            if allow.contains(method) {
                continue;
            }
            let method = actix_web::http::Method::from_bytes(method.as_bytes()).expect("a method");
            let answer = send(
                &app,
                TestRequest::default().method(method.clone()).uri(path),
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(answer.header("allow"), allow, "{method} {path}");
            assert_eq!(
                answer.header("cache-control"),
                "no-store",
                "{method} {path}"
            );
            assert_eq!(
                answer.header("content-type"),
                "application/json",
                "{method} {path}"
            );
            if method != actix_web::http::Method::HEAD {
                assert_eq!(
                    answer.body,
                    json!({ "error": "method_not_allowed", "message": message, "status": 405 }),
                    "{method} {path}"
                );
            }
        }
    }
    // /auth/verify serves every method, since proxies forward the original one.
    let trace = TestRequest::default()
        .method(actix_web::http::Method::TRACE)
        .uri("/auth/verify");
    assert_eq!(send(&app, trace).await.status, StatusCode::UNAUTHORIZED);
}
