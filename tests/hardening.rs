//! Production hardening against a real slapd: brute-force protection, client addresses behind
//! proxies, the minimum failure time, failover, readiness, metrics, request limits, key
//! rotation, graceful shutdown and the container health check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use actix_web::http::header::HeaderValue;
use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use serde_json::json;
use support::config::TestConfig;
use support::served::request;
use support::service::{
    basic, claims, invalid_credentials_body, login_as, send, token_request, TestApp,
};
use support::slapd::Slapd;
use support::users::{ALICE, BOB};

/// No minimum failure time, so that failures are answered at once; [`TestConfig::brute_force`]
/// sets the limits.
fn fast_failures(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd).brute_force("min_failure_time", "0s")
}

/// Two failures per address, counted for the client the proxies in 10.0.0.0/8 vouch for.
fn behind_a_proxy(slapd: &Slapd) -> TestConfig {
    fast_failures(slapd)
        .brute_force("max_failures_per_login", 0)
        .brute_force("max_failures_per_address", 2)
        .server("trusted_proxies", ["10.0.0.0/8"])
}

fn from(addr: &str) -> SocketAddr {
    addr.parse().expect("a socket address")
}

fn too_many(retry_after_max: u64, answer: &support::service::Answer) {
    answer.assert_status(StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = answer
        .header("retry-after")
        .parse()
        .expect("Retry-After seconds");
    assert!(
        (1..=retry_after_max).contains(&retry),
        "Retry-After {retry}"
    );
    assert_eq!(answer.body["error"], "too_many_attempts");
    assert_eq!(answer.body["status"], 429);
    assert_eq!(
        answer.body["message"],
        format!("Too many failed logins; try again in {retry} seconds.")
    );
    assert_eq!(answer.header("cache-control"), "no-store");
}

#[actix_web::test]
async fn a_login_is_banned_after_its_failures_and_the_ban_costs_the_directory_nothing() {
    let slapd = Slapd::start();
    let app = fast_failures(&slapd)
        .brute_force("max_failures_per_login", 3)
        .brute_force("max_failures_per_address", 0)
        .brute_force("window", "1m")
        .brute_force("ban", "2m")
        .app()
        .await;
    let client = from("198.51.100.7:40000");

    for _ in 0..3 {
        let wrong = send(&app, token_request("alice", "wrong", "").peer_addr(client)).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body, invalid_credentials_body());
    }
    let before = slapd.ldap_operations();
    // Banned: even the right password, in any letter case, is refused without LDAP traffic.
    too_many(
        120,
        &send(&app, login_as(&ALICE, "").peer_addr(client)).await,
    );
    too_many(
        120,
        &send(
            &app,
            token_request("ALICE", ALICE.password, "").peer_addr(client),
        )
        .await,
    );
    assert_eq!(slapd.ldap_operations(), before, "{}", slapd.log());

    // Other users are not touched.
    let bob = send(&app, login_as(&BOB, "").peer_addr(client)).await;
    bob.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn an_address_is_banned_across_logins_and_a_success_does_not_clear_it() {
    let slapd = Slapd::start();
    let app = fast_failures(&slapd)
        .brute_force("max_failures_per_login", 0)
        .brute_force("max_failures_per_address", 3)
        .app()
        .await;
    let attacker = from("203.0.113.9:5555");

    for login in ["alice", "nobody"] {
        let answer = send(&app, token_request(login, "guess", "").peer_addr(attacker)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    // A login of the attacker's own account in between does not reset the address counter.
    let own = send(&app, login_as(&BOB, "").peer_addr(attacker)).await;
    assert_eq!(own.status, StatusCode::OK);
    let third = send(
        &app,
        token_request("carol", "guess", "").peer_addr(attacker),
    )
    .await;
    assert_eq!(third.status, StatusCode::UNAUTHORIZED);
    too_many(
        600,
        &send(&app, login_as(&BOB, "").peer_addr(attacker)).await,
    );

    // Someone else, from another address, logs in as alice.
    let alice = send(&app, login_as(&ALICE, "").peer_addr(from("192.0.2.1:1"))).await;
    alice.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let slapd = Slapd::start();
    let app = behind_a_proxy(&slapd).app().await;
    let guess = |peer: &str, forwarded: &str| {
        token_request("alice", "guess", "")
            .peer_addr(from(peer))
            .insert_header(("X-Forwarded-For", forwarded.to_owned()))
    };

    // An untrusted peer changing X-Forwarded-For on every try is still one address.
    for fake in ["1.1.1.1", "2.2.2.2"] {
        let answer = send(&app, guess("198.51.100.20:1000", fake)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    too_many(
        600,
        &send(&app, guess("198.51.100.20:1000", "3.3.3.3")).await,
    );

    // Behind the trusted proxy, clients are told apart by the right-most untrusted entry; a
    // client prepending fake entries changes nothing.
    for _ in 0..2 {
        let answer = send(&app, guess("10.1.2.3:80", "6.6.6.6, 203.0.113.50")).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    too_many(
        600,
        &send(&app, guess("10.1.2.3:80", "7.7.7.7, 203.0.113.50")).await,
    );
    let other_client = send(&app, guess("10.1.2.3:80", "203.0.113.51")).await;
    assert_eq!(other_client.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn a_byte_that_is_not_ascii_in_forwarded_for_does_not_move_the_failures_to_the_proxy() {
    let slapd = Slapd::start();
    let app = behind_a_proxy(&slapd).app().await;
    let guess = |forwarded: HeaderValue| {
        token_request("alice", "guess", "")
            .peer_addr(from("10.1.2.3:80"))
            .insert_header(("X-Forwarded-For", forwarded))
    };

    // The attacker sends a Latin-1 byte in its own X-Forwarded-For; the trusted proxy appends
    // the attacker's real address, as nginx's $proxy_add_x_forwarded_for does.
    for _ in 0..2 {
        let forged = HeaderValue::from_bytes(b"\xe9vil, 203.0.113.60").expect("obs-text value");
        let answer = send(&app, guess(forged)).await;
        answer.assert_status(StatusCode::UNAUTHORIZED);
        assert_eq!(answer.body, invalid_credentials_body());
    }
    // The failures were the attacker's: its address is banned, however it writes the header.
    too_many(
        600,
        &send(&app, guess(HeaderValue::from_static("203.0.113.60"))).await,
    );
    let again = HeaderValue::from_bytes(b"6.6.6.\xff6,203.0.113.60").expect("obs-text value");
    too_many(600, &send(&app, guess(again)).await);
    // Not the proxy's: another client behind it, and the proxy itself, may still try.
    let other_client = send(&app, guess(HeaderValue::from_static("203.0.113.61"))).await;
    assert_eq!(other_client.status, StatusCode::UNAUTHORIZED);
    assert_eq!(other_client.body, invalid_credentials_body());
    let from_the_proxy = send(
        &app,
        token_request("alice", "guess", "").peer_addr(from("10.1.2.3:80")),
    )
    .await;
    assert_eq!(from_the_proxy.status, StatusCode::UNAUTHORIZED);
    assert_eq!(from_the_proxy.body, invalid_credentials_body());
}

#[actix_web::test]
async fn a_failed_login_takes_the_minimum_time_whether_or_not_the_user_exists() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .brute_force("min_failure_time", "400ms")
        .app()
        .await;
    for (login, password) in [("nobody-at-all", "x"), ("alice", "wrong")] {
        let started = Instant::now();
        let answer = send(&app, token_request(login, password, "")).await;
        let took = started.elapsed();
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.body, invalid_credentials_body());
        assert!(took >= Duration::from_millis(400), "{login}: {took:?}");
    }
}

#[actix_web::test]
async fn a_dead_server_first_in_the_list_is_skipped() {
    let slapd = Slapd::start();
    // A port nobody listens on.
    let dead = format!("ldap://127.0.0.1:{}", support::process::free_port());
    let app = TestConfig::new(&slapd)
        .urls(&[&dead, &slapd.url()])
        .directory("failover", "round-robin")
        .app()
        .await;
    for login in ["alice", "bob", "alice", "bob"] {
        let password = format!("{login}-password-1");
        let answer = send(&app, token_request(login, &password, "")).await;
        answer.assert_status(StatusCode::OK);
    }
}

/// The exact answers of `/readyz`: callers are not authenticated, so neither names a server.
const READY: &str = r#"{"status":"ready"}"#;
const UNAVAILABLE: &str = r#"{"status":"unavailable"}"#;

#[actix_web::test]
async fn readyz_says_ready_or_unavailable_and_names_no_server() {
    let mut slapd = Slapd::start();
    let dead = format!("ldap://127.0.0.1:{}", support::process::free_port());
    let app = TestConfig::new(&slapd)
        .urls(&[&slapd.url(), &dead])
        .app()
        .await;

    let ready = send(&app, TestRequest::get().uri("/readyz")).await;
    ready.assert_status(StatusCode::OK);
    assert_eq!(ready.header("cache-control"), "no-store");
    assert_eq!(ready.header("content-type"), "application/json");
    assert_eq!(ready.body.to_string(), READY);

    slapd.stop();
    std::thread::sleep(Duration::from_millis(1100)); // past the one-second answer cache
    let down = send(&app, TestRequest::get().uri("/readyz")).await;
    down.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.header("cache-control"), "no-store");
    assert_eq!(down.header("content-type"), "application/json");
    assert_eq!(down.body.to_string(), UNAVAILABLE);

    // Liveness does no I/O: still fine.
    let live = send(&app, TestRequest::get().uri("/healthz")).await;
    assert_eq!(live.status, StatusCode::OK);
}

/// `n` concurrent `GET /readyz` to the served Latchkey on `port`, released at once.
fn readyz_burst(port: u16, n: usize) -> Vec<support::served::Answer> {
    let start = std::sync::Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let start = std::sync::Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                request(port, "GET", "/readyz", &[])
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("a request thread"))
        .collect()
}

/// Connections slapd accepted and binds it received (slapd logs a bind's `method=` line
/// once, then its `mech=` line).
fn connections_and_binds(slapd: &Slapd) -> (usize, usize) {
    let log = slapd.log();
    let count = |a: &str, b: &str| {
        log.lines()
            .filter(|l| l.contains(a) && l.contains(b))
            .count()
    };
    (count(" ACCEPT ", ""), count(" BIND ", " method="))
}

#[test]
fn a_burst_of_readyz_makes_one_probe_and_its_answers_name_no_server() {
    let mut slapd = Slapd::start();
    let dead = format!("ldap://127.0.0.1:{}", support::process::free_port());
    let dir = tempfile::tempdir().expect("temp dir");
    // Two workers (the kit's default): the probe is shared across workers too.
    let served = TestConfig::new(&slapd)
        .urls(&[&slapd.url(), &dead])
        .serve(dir.path(), "warn");
    let before = connections_and_binds(&slapd);

    let answers = readyz_burst(served.port, 50);
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body, READY);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
        assert_eq!(answer.header("content-type"), Some("application/json"));
    }
    std::thread::sleep(Duration::from_millis(200)); // slapd logs a moment after it answers
    let after = connections_and_binds(&slapd);
    // One probe: one connection to the live server and its one service bind.
    assert_eq!((after.0 - before.0, after.1 - before.1), (1, 1));

    // The detail is in the log, once per probe and down server, not once per request.
    let down_lines = |log: &str, url: &str| {
        log.lines()
            .filter(|l| l.contains("WARN") && l.contains("directory server is down"))
            .filter(|l| l.contains(url))
            .count()
    };
    let log = served.log();
    assert_eq!(down_lines(&log, &dead), 1, "{log}");
    assert_eq!(down_lines(&log, &slapd.url()), 0, "{log}");

    // Nothing answers: 503, and still no URL or error text.
    slapd.stop();
    std::thread::sleep(Duration::from_millis(1100)); // past the one-second answer cache
    let answers = readyz_burst(served.port, 50);
    for answer in &answers {
        assert_eq!(answer.status, 503, "{}", answer.body);
        assert_eq!(answer.body, UNAVAILABLE);
        assert_eq!(answer.header("cache-control"), Some("no-store"));
    }
    std::thread::sleep(Duration::from_millis(200));
    let log = served.log();
    assert_eq!(down_lines(&log, &dead), 2, "{log}");
    assert_eq!(down_lines(&log, &slapd.url()), 1, "{log}");
}

#[actix_web::test]
async fn metrics_count_requests_tokens_failures_and_ldap_operations() {
    let slapd = Slapd::start();
    let app = fast_failures(&slapd).app().await;
    send(&app, login_as(&ALICE, "")).await;
    send(&app, token_request("alice", "wrong", "")).await;
    send(&app, token_request("nobody", "wrong", "")).await;
    // Each answer is counted under the route that gave it, or `unmatched`.
    for (req, status) in [
        (TestRequest::get().uri("/healthz"), 200),
        (TestRequest::post().uri("/auth/token-info"), 405),
        (TestRequest::get().uri("/auth/nope"), 404),
        (TestRequest::get().uri("/healthz/"), 404),
    ] {
        assert_eq!(send(&app, req).await.status.as_u16(), status);
    }

    let response =
        actix_web::test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("")),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let text = String::from_utf8(actix_web::test::read_body(response).await.to_vec())
        .expect("UTF-8 metrics");
    for line in [
        "latchkey_http_requests_total{route=\"/auth/request-token\",status=\"200\"} 1",
        "latchkey_http_requests_total{route=\"/auth/request-token\",status=\"401\"} 2",
        "latchkey_http_requests_total{route=\"/healthz\",status=\"200\"} 1",
        "latchkey_http_requests_total{route=\"/auth/token-info\",status=\"405\"} 1",
        "latchkey_http_requests_total{route=\"unmatched\",status=\"404\"} 2",
        "latchkey_tokens_issued_total 1",
        "latchkey_login_failures_total{reason=\"bad_credentials\"} 1",
        "latchkey_login_failures_total{reason=\"unknown_user\"} 1",
        "latchkey_ldap_operation_seconds_count{operation=\"search\"} 3",
        "latchkey_ldap_operation_seconds_count{operation=\"bind\"} 2",
        "latchkey_ldap_operation_seconds_count{operation=\"connect\"} 2",
        "latchkey_ldap_pool_connections{pool=\"service_search\",state=\"idle\"} 1",
        "latchkey_ldap_pool_connections{pool=\"bind\",state=\"idle\"} 1",
        "latchkey_ldap_pool_connections{pool=\"bind\",state=\"in_use\"} 0",
        "latchkey_bans_active 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
}

#[actix_web::test]
async fn oversized_headers_and_bodies_are_refused_before_any_work() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .server("max_header_bytes", 2048)
        .server("max_body_bytes", 100)
        .app()
        .await;
    let big = send(
        &app,
        login_as(&ALICE, "").insert_header(("X-Padding", "a".repeat(3000))),
    )
    .await;
    assert_eq!(big.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(
        big.body,
        json!({
            "error": "headers_too_large",
            "message": "The request's headers are larger than the 2048 bytes this server accepts.",
            "status": 431
        })
    );
    let body = send(
        &app,
        login_as(&ALICE, "")
            .insert_header(("Content-Length", "101"))
            .set_payload("a".repeat(101)),
    )
    .await;
    assert_eq!(body.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body.body,
        json!({
            "error": "body_too_large",
            "message": "The request's body is larger than the 100 bytes this server accepts.",
            "status": 413
        })
    );
    assert_eq!(slapd.ldap_operations(), 0);
}

#[actix_web::test]
async fn rotating_keys_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let slapd = Slapd::start();
    let old_secret = "the-old-secret-0123456789abcdefghijklmnop";
    let new_secret = "the-new-secret-0123456789abcdefghijklmnop";
    let signing = |kid: &str| {
        TestConfig::new(&slapd)
            .without_test_key()
            .tokens("signing_key", kid)
    };
    // Before: 2026-05 signs.
    let before = signing("2026-05").key("2026-05", old_secret).app().await;
    let old_token = send(&before, login_as(&ALICE, "")).await;
    let old_token = old_token.token().to_owned();

    // Rotation: 2026-11 signs, 2026-05 still verifies.
    let during = signing("2026-11")
        .key("2026-05", old_secret)
        .key("2026-11", new_secret)
        .app()
        .await;
    let verify = |token: &str| {
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(("Authorization", format!("Bearer {token}")))
    };
    let answer = send_raw(&during, verify(&old_token)).await;
    assert_eq!(answer, 200);
    let new_token = send(&during, login_as(&ALICE, "")).await;
    let new_token = new_token.token().to_owned();
    let header = jsonwebtoken::decode_header(&new_token).expect("a JWT header");
    assert_eq!(header.kid.as_deref(), Some("2026-11"));
    assert_eq!(send_raw(&during, verify(&new_token)).await, 200);

    // After the old tokens' lifetime: 2026-05 removed; its tokens are refused.
    let after = signing("2026-11").key("2026-11", new_secret).app().await;
    let refused = send(&after, verify(&old_token)).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["error"], "invalid_token");
    assert_eq!(send_raw(&after, verify(&new_token)).await, 200);
}

/// The status of an answer that may have no body.
async fn send_raw(app: &impl TestApp, req: TestRequest) -> u16 {
    actix_web::test::call_service(app, req.to_request())
        .await
        .status()
        .as_u16()
}

/// A TCP server that accepts connections and never answers: a directory that hangs.
fn hanging_directory() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "ldap://127.0.0.1:{}",
        listener.local_addr().expect("address").port()
    );
    (listener, url)
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits() {
    let (listener, url) = hanging_directory();
    // Accept (and hold) every connection, so the service bind waits for its timeout.
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        listener.set_nonblocking(false).expect("blocking listener");
        for conn in listener.incoming().take(4) {
            conns.push(conn);
        }
        conns
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let mut served = TestConfig::for_url(&url)
        .directory("operation_timeout", "2s")
        .serve(dir.path(), "info");
    let port = served.port;
    let in_flight = std::thread::spawn(move || {
        request(
            port,
            "POST",
            "/auth/request-token",
            &[("Authorization", &basic(ALICE.login, ALICE.password))],
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    served.terminate();

    let answer = in_flight.join().expect("the request thread");
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.header("Retry-After"), Some("5"));
    let status = served
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after SIGTERM:\n{}", served.log()));
    assert!(status.success(), "{status}\n{}", served.log());
    drop(held);
}

#[test]
fn healthcheck_asks_the_running_service() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = TestConfig::new(&slapd).serve(dir.path(), "warn");
    let config = dir.path().join("latchkey-served.toml");
    let run = |config: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .env_remove("LATCHKEY_CONFIG")
            .arg("--config")
            .arg(config)
            .arg("healthcheck")
            .output()
            .expect("run latchkey healthcheck")
    };
    let ok = run(&config);
    assert!(ok.status.success(), "{ok:?}");
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        format!("127.0.0.1:{}: healthy\n", served.port)
    );
    let port = served.port;
    drop(served);
    let down = run(&config);
    assert_eq!(down.status.code(), Some(1));
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.starts_with(&format!("latchkey: cannot connect to 127.0.0.1:{port}: ")),
        "{err}"
    );
}

#[actix_web::test]
async fn verify_still_needs_no_directory() {
    // Tokens are checked without LDAP: a stopped directory does not matter to /auth/verify.
    let mut slapd = Slapd::start();
    let app = TestConfig::new(&slapd).app().await;
    let token = send(&app, login_as(&ALICE, "")).await;
    let token = token.token().to_owned();
    slapd.stop();
    let answer = actix_web::test::call_service(
        &app,
        TestRequest::get()
            .uri("/auth/verify")
            .insert_header(("Authorization", format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(claims(&token).sub, "alice");
}
