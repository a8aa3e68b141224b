//! Brute-force protection against a real slapd, as an attacker tries it: one account under
//! several spellings, and many guesses at once.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use support::config::TestConfig;
use support::service::{invalid_credentials_body, login_as, send, token_request, Answer, TestApp};
use support::slapd::Slapd;
use support::users::{ALICE, BOB};

/// Login by username or email, `@example.com` stripped, and a limit of `per_login` failures.
fn config(slapd: &Slapd, per_login: u32, per_address: u32) -> TestConfig {
    TestConfig::new(slapd)
        .login_attributes(&["uid", "mail"])
        .users("strip_domains", ["example.com"])
        .brute_force("max_failures_per_login", per_login)
        .brute_force("max_failures_per_address", per_address)
        .brute_force("window", "1m")
        .brute_force("ban", "2m")
        .brute_force("min_failure_time", "0s")
}

fn assert_banned(answer: &Answer) {
    answer.assert_status(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(answer.body["error"], "too_many_attempts", "{}", answer.body);
}

fn from(addr: &str) -> SocketAddr {
    addr.parse().expect("a socket address")
}

#[actix_web::test]
async fn every_spelling_of_an_account_shares_its_failures() {
    let slapd = Slapd::start();
    let app = config(&slapd, 3, 0).app().await;
    // Three spellings, three logins, one entry: username, email, username with a stripped
    // domain.
    for login in ["alice", "alice@example.org", "alice@example.com"] {
        let answer = send(&app, token_request(login, "guess", "")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{login}");
        assert_eq!(answer.body, invalid_credentials_body());
    }
    assert_eq!(slapd.binds_of(ALICE.dn), 3, "{}", slapd.log());
    // A fourth spelling has no failures of its own, but its account is banned: refused after
    // the search, before its password reaches the directory, even when it is right.
    for login in ["ALICE@Example.ORG", "Alice"] {
        assert_banned(&send(&app, token_request(login, ALICE.password, "")).await);
    }
    assert_eq!(slapd.binds_of(ALICE.dn), 3, "{}", slapd.log());
    // Another account is untouched.
    let bob = send(&app, login_as(&BOB, "")).await;
    bob.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn a_right_password_clears_the_account_for_every_spelling() {
    let slapd = Slapd::start();
    let app = config(&slapd, 3, 0).app().await;
    for login in ["alice@example.org", "alice@example.com"] {
        let answer = send(&app, token_request(login, "guess", "")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{login}");
    }
    let right = send(&app, login_as(&ALICE, "")).await;
    right.assert_status(StatusCode::OK);
    // The account starts again from nothing: two more failures do not ban it.
    for login in ["ALICE", "alice@EXAMPLE.com"] {
        let answer = send(&app, token_request(login, "guess", "")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{login}");
    }
    let again = send(&app, token_request("Alice@example.org", ALICE.password, "")).await;
    again.assert_status(StatusCode::OK);
}

/// `count` requests for `login` with a wrong password, all sent at once from `client`.
async fn burst(app: &impl TestApp, count: usize, login: &str, client: &str) -> Vec<Answer> {
    let requests = (0..count).map(|i| {
        send(
            app,
            token_request(login, &format!("guess-{i}"), "").peer_addr(from(client)),
        )
    });
    futures_util::future::join_all(requests).await
}

fn statuses(answers: &[Answer]) -> (usize, usize) {
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::UNAUTHORIZED)
        .count();
    let banned = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .count();
    let others: Vec<_> = answers
        .iter()
        .filter(|a| a.status.as_u16() != 401 && a.status.as_u16() != 429)
        .map(|a| a.body.to_string())
        .collect();
    assert_eq!(
        refused + banned,
        answers.len(),
        "only 401 and 429: {others:?}"
    );
    (refused, banned)
}

#[actix_web::test]
async fn a_burst_of_guesses_reaches_the_directory_no_more_than_the_login_limit() {
    let slapd = Slapd::start();
    let app = config(&slapd, 5, 0).app().await;
    let answers = burst(&app, 40, "alice", "198.51.100.7:4000").await;
    assert_eq!(statuses(&answers), (5, 35));
    for answer in answers.iter().filter(|a| a.status.as_u16() == 429) {
        assert_banned(answer);
    }
    assert_eq!(slapd.binds_of(ALICE.dn), 5, "{}", slapd.log());
}

#[actix_web::test]
async fn a_burst_under_many_spellings_reaches_the_directory_no_more_than_the_account_limit() {
    let slapd = Slapd::start();
    let app = config(&slapd, 5, 0).app().await;
    let spellings = ["alice", "ALICE", "alice@example.org", "alice@example.com"];
    let requests = (0..40).map(|i| {
        let login = spellings[i % spellings.len()];
        send(&app, token_request(login, &format!("guess-{i}"), ""))
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(statuses(&answers), (5, 35));
    assert_eq!(slapd.binds_of(ALICE.dn), 5, "{}", slapd.log());
}

#[actix_web::test]
async fn a_burst_from_one_address_reaches_the_directory_no_more_than_the_address_limit() {
    let slapd = Slapd::start();
    let app = config(&slapd, 0, 4).app().await;
    let client = from("203.0.113.9:5555");
    let requests = (0..30).map(|i| {
        let login = if i % 2 == 0 { "alice" } else { "bob" };
        send(&app, token_request(login, "guess", "").peer_addr(client))
    });
    let answers = futures_util::future::join_all(requests).await;
    assert_eq!(statuses(&answers), (4, 26));
    let binds = slapd.binds_of(ALICE.dn) + slapd.binds_of(BOB.dn);
    assert_eq!(binds, 4, "{}", slapd.log());
}

#[actix_web::test]
async fn right_passwords_sent_at_once_all_get_a_token() {
    // The limit holds places for attempts in flight; a burst of good logins waits for them
    // rather than being refused.
    let slapd = Slapd::start();
    let app = config(&slapd, 2, 3).app().await;
    let requests = (0..12).map(|_| send(&app, login_as(&ALICE, "")));
    let answers = futures_util::future::join_all(requests).await;
    for answer in &answers {
        answer.assert_status(StatusCode::OK);
    }
}
