//! The sign-in pages (`[portal]`) against a real slapd, as a browser without JavaScript uses
//! them: the form, the session cookie and what `/auth/verify` makes of it, the refusals, CSRF,
//! redirects, sign-out and every page's headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use latchkey::http::portal::{BrowserId, CsrfKey, TOKEN_LIFETIME};
use support::config::TestConfig;
use support::portal::{FormClient, Page};
use support::served::request;
use support::service::{claims, send, TEST_SECRET};
use support::slapd::Slapd;
use support::users::{ALICE, BOB};

const PORTAL: &str = "https://auth.example.org";
const CSP: &str = "default-src 'none'; style-src 'self'; form-action 'self' https://example.org:* https://*.example.org:* https://grafana.other.net:*; frame-ancestors 'none'; base-uri 'none'";
const SESSION: &str = "latchkey_session";
const BROWSER: &str = "__Host-latchkey_csrf";
const WRONG: &str = "The login or password is wrong.";

/// The portal on `auth.example.org`, its cookie on `example.org`, one further host allowed.
fn portal(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd)
        .member_groups()
        .portal("url", PORTAL)
        .portal("cookie_domain", "example.org")
        .portal("allowed_redirect_hosts", ["grafana.other.net"])
}

/// Every page's headers.
fn assert_page_headers(page: &Page) {
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_page_policy(page);
}

/// The headers of every portal answer, a page or a redirect.
fn assert_page_policy(page: &Page) {
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("content-security-policy"), CSP);
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert!(!page.body.contains("<script"), "{}", page.body);
    assert!(!page.body.contains("style="), "{}", page.body);
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[actix_web::test]
async fn the_pages_are_off_without_a_url() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    for uri in ["/auth/login", "/auth/portal.css"] {
        let answer = send(&app, TestRequest::get().uri(uri)).await;
        answer.assert_status(StatusCode::NOT_FOUND);
        assert_eq!(answer.body["error"], "not_found");
    }
    // /auth/logout is the API's sign-out (POST with a token) without the pages.
    let logout = send(&app, TestRequest::get().uri("/auth/logout")).await;
    logout.assert_status(StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(logout.header("allow"), "POST");
}

#[actix_web::test]
async fn the_form_is_accessible_and_sets_a_browser_cookie() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();

    let page = browser
        .get(
            &app,
            "/auth/login?rd=https%3A%2F%2FApp.example.org%2Fa%3Fb%3D1",
        )
        .await;

    page.assert_status(StatusCode::OK);
    assert_page_headers(&page);
    let cookie = page.set_cookie(BROWSER);
    assert!(BrowserId::parse(&cookie.value).is_some(), "{cookie:?}");
    assert_eq!(
        cookie.attribute_list(),
        ["httponly", "path=/", "samesite=Strict", "secure"]
    );
    assert_eq!(page.set_cookies().len(), 1);
    page.assert_shows(&[
        "<title>Sign in · Latchkey</title>",
        "<label for=\"username\">Login</label>",
        "<label for=\"password\">Password</label>",
        "autocomplete=\"username\"",
        "autocomplete=\"current-password\"",
        "<form method=\"post\" action=\"/auth/login\">",
        "<link rel=\"stylesheet\" href=\"/auth/portal.css?v=",
    ]);
    assert!(!page.body.contains("aria-invalid"), "{}", page.body);
    // The target is kept as the rule parsed it.
    assert_eq!(page.hidden("rd"), "https://app.example.org/a?b=1");
    assert_eq!(page.hidden("csrf").len(), 10 + 1 + 64);

    // The browser id is kept while the browser brings it back.
    let again = browser.get(&app, "/auth/login").await;
    assert!(again.set_cookies().is_empty(), "{:?}", again.headers);
    assert_eq!(again.hidden("rd"), "");
}

#[actix_web::test]
async fn signing_in_sets_the_session_cookie_that_verify_accepts() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    let before = chrono::Utc::now().timestamp();

    let answer = browser
        .sign_in(
            &app,
            ALICE.login,
            ALICE.password,
            "https://app.example.org/x?y=1",
        )
        .await;

    answer.assert_status(StatusCode::SEE_OTHER);
    assert_page_policy(&answer);
    assert_eq!(answer.header("location"), "https://app.example.org/x?y=1");
    assert_eq!(answer.body, "");
    let cookie = answer.set_cookie(SESSION);
    assert_eq!(
        cookie.attribute_list(),
        [
            "domain=example.org",
            "httponly",
            "max-age=43200",
            "path=/",
            "samesite=Lax",
            "secure"
        ]
    );
    assert_eq!(answer.set_cookies().len(), 1);
    let session = claims(&cookie.value);
    assert_eq!(session.sub, "alice");
    assert!((before..=before + 5).contains(&session.iat));
    assert_eq!(session.exp, session.iat + 43200);

    // /auth/verify reads the cookie without verify.cookie_name.
    let verified = browser
        .send(&app, TestRequest::get().uri("/auth/verify"))
        .await;
    verified.assert_status(StatusCode::OK);
    assert_eq!(verified.header("remote-user"), "alice");
    assert_eq!(verified.header("remote-groups"), session.groups.join(","));

    // The form now says who is signed in.
    let page = browser.get(&app, "/auth/login").await;
    page.assert_status(StatusCode::OK);
    assert_page_headers(&page);
    page.assert_shows(&[
        "<title>Signed in · Latchkey</title>",
        "Signed in as <strong>Alice Liddell</strong> (alice).",
        "<li>staff</li>",
        "<li>admins</li>",
        "<form method=\"post\" action=\"/auth/logout\">",
        ">Sign out</button>",
    ]);
    assert!(!page.body.contains("Continue"), "{}", page.body);
}

#[actix_web::test]
async fn without_a_target_the_browser_lands_on_the_signed_in_page() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();

    let answer = browser.sign_in(&app, ALICE.login, ALICE.password, "").await;

    answer.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(
        answer.header("location"),
        "https://auth.example.org/auth/login"
    );
    claims(browser.cookie(SESSION).expect("the session cookie"));
}

#[actix_web::test]
async fn a_wrong_password_shows_the_form_again_with_the_login_kept() {
    let slapd = Slapd::start();
    let app = portal(&slapd).no_brute_force().app().await;
    let mut browser = FormClient::new();
    let wrong_password = "not-alice-password";

    let answer = browser
        .sign_in(
            &app,
            ALICE.login,
            wrong_password,
            "https://app.example.org/",
        )
        .await;

    answer.assert_status(StatusCode::UNAUTHORIZED);
    assert_page_headers(&answer);
    assert_eq!(answer.header("www-authenticate"), "");
    assert!(answer.set_cookies().is_empty(), "{:?}", answer.headers);
    answer.assert_shows(&[
        "<p class=\"error\" id=\"login-error\" role=\"alert\">The login or password is wrong.</p>",
        "value=\"alice\"",
        "aria-invalid=\"true\" aria-describedby=\"login-error\"",
    ]);
    assert!(!answer.body.contains(wrong_password), "{}", answer.body);
    assert_eq!(answer.hidden("rd"), "https://app.example.org/");
    // An unknown user reads the same.
    let unknown = browser.sign_in(&app, "nobody", "x", "").await;
    unknown.assert_status(StatusCode::UNAUTHORIZED);
    unknown.assert_shows(&[WRONG, "value=\"nobody\""]);

    // The login is echoed escaped.
    let hostile = "\"><script>alert(1)</script>";
    let escaped = browser.sign_in(&app, hostile, "x", "").await;
    escaped.assert_status(StatusCode::UNAUTHORIZED);
    escaped.assert_shows(&["value=\"&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;\""]);
    assert!(!escaped.body.contains("<script"), "{}", escaped.body);
    assert_eq!(browser.cookie(SESSION), None);
}

#[actix_web::test]
async fn refusals_are_pages_with_their_status() {
    let slapd = Slapd::start();
    let mut browser = FormClient::new();

    // Banned: 429 with the wait.
    let app = portal(&slapd)
        .brute_force("max_failures_per_login", 1)
        .brute_force("ban", "90s")
        .brute_force("min_failure_time", "0s")
        .app()
        .await;
    browser
        .sign_in(&app, BOB.login, "wrong", "")
        .await
        .assert_status(StatusCode::UNAUTHORIZED);
    let banned = browser.sign_in(&app, BOB.login, BOB.password, "").await;
    banned.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert_page_headers(&banned);
    let wait: u64 = banned.header("retry-after").parse().expect("seconds");
    assert!((89..=90).contains(&wait), "{wait}");
    banned.assert_shows(&[
        "<title>Too many attempts · Latchkey</title>",
        &format!("Too many failed logins; try again in {wait} seconds."),
        "<a class=\"button\" href=\"/auth/login\">",
    ]);
    assert!(banned.set_cookies().is_empty());

    // Refused by [access]: 403.
    let app = portal(&slapd)
        .access("require", "no-such-group")
        .app()
        .await;
    let denied = browser
        .sign_in(
            &app,
            ALICE.login,
            ALICE.password,
            "https://app.example.org/",
        )
        .await;
    denied.assert_status(StatusCode::FORBIDDEN);
    assert_page_headers(&denied);
    denied.assert_shows(&[
        "<title>Access denied · Latchkey</title>",
        "Your groups do not allow you a token from this service.",
        "href=\"/auth/login?rd=https%3A%2F%2Fapp.example.org%2F\"",
    ]);
    assert!(denied.set_cookies().is_empty());

    // The directory down: 503.
    let app = TestConfig::for_url("ldap://127.0.0.1:1")
        .portal("url", PORTAL)
        .portal("cookie_domain", "example.org")
        .portal("allowed_redirect_hosts", ["grafana.other.net"])
        .app()
        .await;
    let down = browser.sign_in(&app, ALICE.login, ALICE.password, "").await;
    down.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_page_headers(&down);
    assert_eq!(down.header("retry-after"), "5");
    down.assert_shows(&[
        "<title>Try again soon · Latchkey</title>",
        "The directory cannot be reached right now; try again in a few seconds.",
    ]);
    assert!(down.set_cookies().is_empty());
}

#[actix_web::test]
async fn a_post_without_this_browsers_csrf_token_changes_nothing() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut victim = FormClient::new();
    let victim_form = victim.get(&app, "/auth/login").await;
    let mut attacker = FormClient::new();
    let attacker_csrf = attacker.get(&app, "/auth/login").await.hidden("csrf");
    let victim_id = BrowserId::parse(victim.cookie(BROWSER).unwrap()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired =
        CsrfKey::derive(TEST_SECRET.as_bytes()).token(&victim_id, now - TOKEN_LIFETIME - 1);
    let forged = CsrfKey::derive(b"a-key-that-is-not-latchkeys-0123456789").token(&victim_id, now);

    for csrf in [
        None,
        Some(""),
        Some(attacker_csrf.as_str()),
        Some(&expired),
        Some(&forged),
    ] {
        let mut fields = vec![("username", ALICE.login), ("password", ALICE.password)];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let refused = victim.post(&app, "/auth/login", &fields).await;
        refused.assert_status(StatusCode::FORBIDDEN);
        assert_page_headers(&refused);
        refused.assert_shows(&[
            "<title>Form expired · Latchkey</title>",
            "This form has expired or was not sent from this browser.",
        ]);
        assert!(refused.set_cookies().is_empty(), "{csrf:?}");
    }
    // The victim's own token without its cookie.
    let mut cookieless = FormClient::new();
    let refused = cookieless
        .post(
            &app,
            "/auth/login",
            &[
                ("username", ALICE.login),
                ("password", ALICE.password),
                ("csrf", &victim_form.hidden("csrf")),
            ],
        )
        .await;
    refused.assert_status(StatusCode::FORBIDDEN);
    // No login was tried: the directory never saw alice's password.
    assert_eq!(slapd.binds_of(ALICE.dn), 0);
    assert_eq!(victim.cookie(SESSION), None);

    // Signing out needs the token too.
    victim
        .sign_in(&app, ALICE.login, ALICE.password, "")
        .await
        .assert_status(StatusCode::SEE_OTHER);
    let refused = victim
        .post(&app, "/auth/logout", &[("csrf", &attacker_csrf)])
        .await;
    refused.assert_status(StatusCode::FORBIDDEN);
    assert!(refused.set_cookies().is_empty());
    assert!(victim.cookie(SESSION).is_some());
}

#[actix_web::test]
async fn a_hostile_target_is_not_followed() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    for rd in [
        "//evil.net/",
        "/\\evil.net",
        "https:evil.net",
        "https://app.example.org@evil.net/",
        "https://app.example.org.evil.net/",
        "https://evil.net/",
        "http://app.example.org/",
        "javascript:alert(1)",
        "https://app.example.org\n.evil.net/",
        "HTTPS://EVIL%2Enet/",
    ] {
        let mut browser = FormClient::new();
        let form = browser
            .get(&app, &format!("/auth/login?rd={}", encode(rd)))
            .await;
        assert_eq!(form.hidden("rd"), "", "{rd:?}");
        // Posted directly, as a forged form would.
        let csrf = form.hidden("csrf");
        let answer = browser
            .post(
                &app,
                "/auth/login",
                &[
                    ("username", ALICE.login),
                    ("password", ALICE.password),
                    ("csrf", &csrf),
                    ("rd", rd),
                ],
            )
            .await;
        answer.assert_status(StatusCode::SEE_OTHER);
        assert_eq!(
            answer.header("location"),
            "https://auth.example.org/auth/login",
            "{rd:?}"
        );
    }
    // A listed host outside the cookie domain is followed.
    let mut browser = FormClient::new();
    let answer = browser
        .sign_in(
            &app,
            ALICE.login,
            ALICE.password,
            "https://grafana.other.net/d/1",
        )
        .await;
    assert_eq!(answer.header("location"), "https://grafana.other.net/d/1");
}

#[test]
fn head_answers_what_get_would_without_the_body() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = portal(&slapd).serve(dir.path(), "warn");

    // Fixed bodies: the same length announced, none sent.
    for path in ["/healthz", "/auth/portal.css", "/.well-known/latchkey"] {
        let get = request(served.port, "GET", path, &[]);
        let head = request(served.port, "HEAD", path, &[]);
        assert_eq!((get.status, head.status), (200, 200), "{path}");
        assert_eq!(head.body, "", "{path}");
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "{path}"
        );
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
    }
    // Pages and probes whose bodies change from one answer to the next.
    for (path, content_type) in [
        ("/auth/login", "text/html; charset=utf-8"),
        ("/auth/logout", "text/html; charset=utf-8"),
        ("/readyz", "application/json"),
        (
            "/metrics",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
    ] {
        let head = request(served.port, "HEAD", path, &[]);
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(head.body, "", "{path}");
        assert_eq!(head.header("content-type"), Some(content_type), "{path}");
    }
    // A request for a token is never a HEAD.
    assert_eq!(
        request(served.port, "HEAD", "/auth/request-token", &[]).status,
        405
    );
}

#[test]
fn a_hostile_target_is_logged() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = portal(&slapd).serve(dir.path(), "warn");

    let answer = request(
        served.port,
        "GET",
        "/auth/login?rd=https%3A%2F%2Fevil.net%2F%0Afake",
        &[],
    );

    assert_eq!(answer.status, 200, "{}", answer.body);
    let log = served.log();
    let line = log
        .lines()
        .find(|l| l.contains("ignored a redirect target the portal does not allow"))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(line.contains(r#"rd="https://evil.net/\nfake""#), "{line}");
}

#[actix_web::test]
async fn a_new_session_never_reuses_what_the_browser_brought() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut bob = FormClient::new();
    bob.sign_in(&app, BOB.login, BOB.password, "").await;
    let bobs_token = bob.cookie(SESSION).expect("bob's session").to_owned();

    for planted in [bobs_token.as_str(), "attacker-chosen-session-id"] {
        let mut browser = FormClient::new();
        browser.set_cookie(SESSION, planted);
        let answer = browser.sign_in(&app, ALICE.login, ALICE.password, "").await;
        answer.assert_status(StatusCode::SEE_OTHER);
        let issued = answer.set_cookie(SESSION).value;
        assert_ne!(issued, planted);
        assert_eq!(claims(&issued).sub, "alice");
    }
}

#[actix_web::test]
async fn signing_out_clears_the_cookie_as_it_was_set() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    browser.sign_in(&app, ALICE.login, ALICE.password, "").await;

    let confirm = browser
        .get(&app, "/auth/logout?rd=https%3A%2F%2Fevil.net%2F")
        .await;
    confirm.assert_status(StatusCode::OK);
    assert_page_headers(&confirm);
    confirm.assert_shows(&["<title>Sign out · Latchkey</title>", ">Sign out</button>"]);
    assert_eq!(confirm.hidden("rd"), "");
    let answer = browser
        .post(&app, "/auth/logout", &[("csrf", &confirm.hidden("csrf"))])
        .await;

    answer.assert_status(StatusCode::OK);
    assert_page_headers(&answer);
    answer.assert_shows(&[
        "<title>Signed out · Latchkey</title>",
        "You are signed out.",
    ]);
    let cleared = answer.set_cookie(SESSION);
    assert_eq!(cleared.value, "");
    assert_eq!(
        cleared.attribute_list(),
        [
            "domain=example.org",
            "httponly",
            "max-age=0",
            "path=/",
            "samesite=Lax",
            "secure"
        ]
    );
    assert_eq!(browser.cookie(SESSION), None);
    let form = browser.get(&app, "/auth/login").await;
    form.assert_shows(&["<title>Sign in · Latchkey</title>"]);

    // With an allowed target: 303 there.
    browser.sign_in(&app, ALICE.login, ALICE.password, "").await;
    let confirm = browser
        .get(&app, "/auth/logout?rd=https%3A%2F%2Fapp.example.org%2Fbye")
        .await;
    let answer = browser
        .post(
            &app,
            "/auth/logout",
            &[
                ("csrf", &confirm.hidden("csrf")),
                ("rd", &confirm.hidden("rd")),
            ],
        )
        .await;
    answer.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(answer.header("location"), "https://app.example.org/bye");
    assert_eq!(answer.set_cookie(SESSION).value, "");
    assert_eq!(browser.cookie(SESSION), None);
}

#[actix_web::test]
async fn a_loopback_demo_sends_cookies_without_secure() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .portal("url", "http://127.0.0.1:8080")
        .portal("cookie_secure", false)
        .portal("allowed_redirect_hosts", ["127.0.0.1"])
        .app()
        .await;
    let mut browser = FormClient::new();

    let form = browser.get(&app, "/auth/login").await;
    assert_eq!(
        form.set_cookie("latchkey_csrf").attribute_list(),
        ["httponly", "path=/", "samesite=Strict"]
    );
    assert_eq!(
        form.header("content-security-policy"),
        "default-src 'none'; style-src 'self'; form-action 'self' https://127.0.0.1:* http://127.0.0.1:*; frame-ancestors 'none'; base-uri 'none'"
    );
    let answer = browser
        .sign_in(
            &app,
            ALICE.login,
            ALICE.password,
            "http://127.0.0.1:9000/app",
        )
        .await;
    answer.assert_status(StatusCode::SEE_OTHER);
    assert_eq!(answer.header("location"), "http://127.0.0.1:9000/app");
    assert_eq!(
        answer.set_cookie(SESSION).attribute_list(),
        ["httponly", "max-age=43200", "path=/", "samesite=Lax"]
    );
}

#[actix_web::test]
async fn other_methods_are_refused_and_the_stylesheet_is_served() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    for (method, uri, allow) in [
        ("PUT", "/auth/login", "GET, HEAD, POST"),
        ("DELETE", "/auth/logout", "GET, HEAD, POST"),
        ("POST", "/auth/portal.css", "GET, HEAD"),
    ] {
        let req = TestRequest::default()
            .method(method.parse().unwrap())
            .uri(uri);
        let answer = send(&app, req).await;
        answer.assert_status(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(answer.header("allow"), allow, "{method} {uri}");
    }

    let mut browser = FormClient::new();
    let css = browser.get(&app, "/auth/portal.css?v=1").await;
    css.assert_status(StatusCode::OK);
    assert_eq!(css.header("content-type"), "text/css; charset=utf-8");
    assert_eq!(
        css.header("cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(css.header("x-content-type-options"), "nosniff");
    assert!(css.body.contains(":focus-visible"), "{}", css.body);
}

#[actix_web::test]
async fn a_form_that_is_not_url_encoding_is_a_bad_request() {
    let slapd = Slapd::start();
    let app = portal(&slapd).app().await;
    let mut browser = FormClient::new();
    browser.get(&app, "/auth/login").await;

    let req = TestRequest::post()
        .uri("/auth/login")
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload("username=a&username=b");
    let answer = browser.send(&app, req).await;

    answer.assert_status(StatusCode::BAD_REQUEST);
    assert_page_headers(&answer);
    answer.assert_shows(&["The form is not URL encoding, or repeats a field."]);
}
