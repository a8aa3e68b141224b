//! `POST /auth/refresh` against a real slapd: a new token without the password, with the
//! entry, groups and `[access]` read again, `auth_time` kept, and every way a session ends.
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
    basic, bearer_post, claims, invalid_parameter, login_as, send, send_raw, TestApp,
};
use support::slapd::Slapd;
use support::users::{ALICE, BOB};

const ADMINS: &str = "cn=admins,ou=groups,dc=example,dc=org";

/// A token for `user` from the real token endpoint.
async fn token_of(app: &impl TestApp, user: &support::users::User) -> String {
    send(app, login_as(user, "")).await.token().to_owned()
}

fn refresh(token: &str, query: &str) -> TestRequest {
    bearer_post(&format!("/auth/refresh?{query}"), token)
}

/// Take `dn` out of the admins group (bob comes in: a group of names is never empty).
fn leave_admins(slapd: &Slapd, dn: &str) {
    slapd.modify(&format!(
        "dn: {ADMINS}\nchangetype: modify\nadd: member\nmember: {}\n-\ndelete: member\nmember: {dn}\n",
        BOB.dn
    ));
}

fn session_ended() -> serde_json::Value {
    json!({
        "error": "session_ended",
        "message": "This session cannot be renewed without your password; sign in again.",
        "status": 401
    })
}

#[actix_web::test]
async fn a_refresh_reads_the_groups_again_and_keeps_auth_time() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).member_groups().app().await;
    let first = send(&app, login_as(&ALICE, "")).await;
    let old = first.issued();
    assert_eq!(old.auth_time, Some(old.iat));
    assert!(
        old.groups.contains(&"admins".to_owned()),
        "{:?}",
        old.groups
    );

    leave_admins(&slapd, ALICE.dn);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let answer = send(&app, refresh(first.token(), "token_duration=120")).await;
    answer.assert_status(StatusCode::OK);
    assert_eq!(answer.header("cache-control"), "no-store");
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 120);
    let new = answer.issued();
    assert_eq!(new.sub, "alice");
    assert_eq!(
        new.auth_time, old.auth_time,
        "the password was not checked again"
    );
    assert!(new.iat > old.iat);
    assert_eq!(new.exp - new.iat, 120);
    assert_ne!(new.jti, old.jti);
    assert_eq!(new.entry, old.entry);
    assert!(
        !new.groups.contains(&"admins".to_owned()),
        "{:?}",
        new.groups
    );
    assert!(new.groups.contains(&"staff".to_owned()), "{:?}", new.groups);

    // The refreshed token refreshes in turn, still with the first auth_time.
    let again = send(&app, refresh(answer.token(), "")).await.issued();
    assert_eq!(again.auth_time, old.auth_time);
    assert_eq!(again.exp - again.iat, 3600);
}

#[actix_web::test]
async fn the_token_may_come_as_basic_username_or_cookie() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).cookie_name("lk").app().await;
    let token = token_of(&app, &BOB).await;
    let by_basic = TestRequest::post()
        .uri("/auth/refresh")
        .insert_header(("Authorization", basic(&token, "")));
    assert_eq!(send(&app, by_basic).await.issued().sub, "bob");
    let by_cookie = TestRequest::post()
        .uri("/auth/refresh")
        .insert_header(("Cookie", format!("other=1; lk={token}")));
    assert_eq!(send(&app, by_cookie).await.issued().sub, "bob");
}

#[actix_web::test]
async fn bad_requests_are_refused_with_their_reason() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = token_of(&app, &ALICE).await;

    let none = send(&app, TestRequest::post().uri("/auth/refresh")).await;
    none.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header("www-authenticate"),
        r#"Bearer realm="latchkey""#
    );
    assert_eq!(
        none.body,
        json!({"error": "missing_token", "message": "Send a token: Authorization: Bearer <token>.", "status": 401})
    );

    let forged = format!("{}x", &token[..token.len() - 1]);
    let bad = send(&app, refresh(&forged, "")).await;
    bad.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(bad.body["error"], "invalid_token");

    // A password is not a token.
    let password = send(
        &app,
        TestRequest::post()
            .uri("/auth/refresh")
            .insert_header(("Authorization", basic(ALICE.login, ALICE.password))),
    )
    .await;
    password.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(password.body["error"], "invalid_token");

    let duration = send(&app, refresh(&token, "token_duration=86401")).await;
    duration.assert_status(StatusCode::BAD_REQUEST);
    assert_eq!(
        duration.body,
        invalid_parameter("token_duration must be a whole number of seconds from 1 to 86400.")
    );

    let get = send_raw(
        &app,
        TestRequest::get()
            .uri("/auth/refresh")
            .insert_header(("Authorization", format!("Bearer {token}"))),
    )
    .await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(get.header("allow"), "POST");
}

#[actix_web::test]
async fn a_locked_account_gets_no_new_token() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .directory("preset", "openldap")
        .groups("base_dns", ["ou=groups,dc=example,dc=org"])
        .app()
        .await;
    let token = token_of(&app, &BOB).await;
    send(&app, refresh(&token, ""))
        .await
        .assert_status(StatusCode::OK);
    slapd.modify(
        "dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: modify\nadd: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n",
    );
    let answer = send(&app, refresh(&token, "")).await;
    answer.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.header("www-authenticate"),
        r#"Bearer realm="latchkey", error="invalid_token""#
    );
    assert_eq!(answer.body, session_ended());
}

#[actix_web::test]
async fn an_entry_gone_or_moved_ends_the_session() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let alice = token_of(&app, &ALICE).await;
    let bob = token_of(&app, &BOB).await;

    // Moved: "alice" now names an entry at another DN.
    slapd.modify(
        "dn: uid=alice,ou=people,dc=example,dc=org\nchangetype: modrdn\nnewrdn: uid=alice\ndeleteoldrdn: 1\nnewsuperior: ou=staff,dc=example,dc=org\n",
    );
    let moved = send(&app, refresh(&alice, "")).await;
    moved.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(moved.body, session_ended());

    // Gone.
    slapd.modify("dn: uid=bob,ou=people,dc=example,dc=org\nchangetype: delete\n");
    let gone = send(&app, refresh(&bob, "")).await;
    gone.assert_status(StatusCode::UNAUTHORIZED);
    assert_eq!(gone.body, session_ended());
}

#[actix_web::test]
async fn access_rules_apply_again() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .member_groups()
        .access("require", "admins")
        .app()
        .await;
    let token = token_of(&app, &ALICE).await;
    leave_admins(&slapd, ALICE.dn);
    let answer = send(&app, refresh(&token, "")).await;
    answer.assert_status(StatusCode::FORBIDDEN);
    assert_eq!(
        answer.body,
        json!({"error": "forbidden", "message": "Your groups do not allow you a token from this service.", "status": 403})
    );
}

#[actix_web::test]
async fn no_refresh_once_max_session_has_passed() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .tokens("max_session", "2s")
        .app()
        .await;
    let first = send(&app, login_as(&ALICE, "")).await;
    let renewed = send(&app, refresh(first.token(), "")).await;
    renewed.assert_status(StatusCode::OK);
    std::thread::sleep(std::time::Duration::from_millis(3100));
    for token in [first.token(), renewed.token()] {
        let answer = send(&app, refresh(token, "")).await;
        answer.assert_status(StatusCode::UNAUTHORIZED);
        assert_eq!(
            answer.body,
            json!({
                "error": "session_too_old",
                "message": "You signed in with your password more than 2s ago (tokens.max_session); sign in again.",
                "status": 401
            })
        );
    }
    // A new login starts a new session.
    let fresh = send(&app, login_as(&ALICE, "")).await;
    send(&app, refresh(fresh.token(), ""))
        .await
        .assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn a_directory_that_is_down_is_503_not_401() {
    let mut slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = token_of(&app, &ALICE).await;
    slapd.stop();
    let answer = send(&app, refresh(&token, "")).await;
    answer.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header("retry-after"), "5");
    assert_eq!(
        answer.body,
        json!({"error": "directory_unavailable", "message": "The directory cannot be reached right now; try again in a few seconds.", "status": 503})
    );
    assert_eq!(claims(&token).sub, "alice");
}
