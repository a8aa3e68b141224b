//! Three real `latchkey serve` replicas behind a real nginx (round-robin upstream), sharing one
//! real redis-server for their brute-force counts, against a real slapd: the budget of a login
//! is the configured one for all of them together, and a Redis outage costs logins nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use support::config::TestConfig;
use support::nginx::{balancer, compose_example, Nginx};
use support::redis::Redis;
use support::served::{latchkey, request, run, Answer, Served};
use support::slapd::Slapd;
use support::tls::TlsFiles;
use support::users::{ALICE, BOB};

const REPLICAS: usize = 3;

/// Five failures per login ban it for two minutes; the address limit is off, since every
/// request reaches the replicas from nginx's one address.
fn config(slapd: &Slapd, redis: &Redis) -> TestConfig {
    TestConfig::new(slapd)
        .shared_state(&redis.url())
        .brute_force("max_failures_per_login", 5)
        .brute_force("max_failures_per_address", 0)
        .brute_force("window", "1m")
        .brute_force("ban", "2m")
        .brute_force("min_failure_time", "0s")
}

fn basic(login: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"));
    format!("Basic {encoded}")
}

fn log_in(port: u16, login: &str, password: &str) -> Answer {
    request(
        port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(login, password))],
    )
}

/// A 429 of a ban with at most `ban` left, and no less than ten seconds under it.
fn assert_banned(answer: &Answer, ban: u64) {
    assert_eq!(answer.status, 429, "{answer:?}");
    let retry_after: u64 = answer
        .header("Retry-After")
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds");
    assert!(
        (ban - 10..=ban).contains(&retry_after),
        "Retry-After {retry_after} for a ban of {ban}s"
    );
    assert_eq!(
        answer.body,
        format!(
            r#"{{"error":"too_many_attempts","message":"Too many failed logins; try again in {retry_after} seconds.","status":429}}"#
        )
    );
    assert_eq!(answer.header("Cache-Control"), Some("no-store"));
}

fn assert_wrong_password(answer: &Answer) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(
        answer.body,
        r#"{"error":"invalid_credentials","message":"The login or password is wrong.","status":401}"#
    );
}

/// The audit lines of failed logins in a replica's log.
fn failures_logged(replica: &Served) -> usize {
    replica
        .log()
        .lines()
        .filter(|l| l.contains("latchkey::audit") && l.contains("invalid_credentials"))
        .count()
}

fn metric(port: u16, name: &str) -> String {
    let answer = request(port, "GET", "/metrics", &[]);
    assert_eq!(answer.status, 200);
    answer
        .body
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_owned))
        .unwrap_or_else(|| panic!("{name} missing in:\n{}", answer.body))
}

/// Polls `check` every 50 ms for up to `limit`.
fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn five_wrong_passwords_spread_over_the_replicas_ban_the_login_on_all_of_them() {
    let slapd = Slapd::start();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let replicas = config(&slapd, &redis).serve_replicas(dir.path(), REPLICAS, "info");
    let nginx = balancer(&replicas);

    for _ in 0..5 {
        assert_wrong_password(&log_in(nginx.port(), "alice", "guess"));
    }
    // Round robin: two, two and one; no replica saw all five.
    let mut seen: Vec<usize> = replicas.iter().map(failures_logged).collect();
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2, 2]);
    assert_eq!(slapd.binds_of(ALICE.dn), 5);

    // The sixth attempt is refused by every replica, even with the right password, and never
    // reaches the directory.
    for replica in &replicas {
        assert_banned(&log_in(replica.port, "Alice", ALICE.password), 120);
    }
    assert_banned(&log_in(nginx.port(), "alice", ALICE.password), 120);
    assert_eq!(slapd.binds_of(ALICE.dn), 5);

    // Another login is untouched, on every replica.
    for replica in &replicas {
        assert_eq!(log_in(replica.port, "bob", BOB.password).status, 200);
    }
    // The ban is in Redis, under the prefix, with the login hashed and its expiry set.
    let keys = redis.cli(&["--scan", "--pattern", "latchkey:bf:login:*"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    assert!(!keys.contains("alice"), "{keys}");
    let ttl: i64 = redis.cli(&["TTL", keys.trim()]).parse().unwrap();
    assert!((100..=120).contains(&ttl), "TTL {ttl}");
    assert_eq!(redis.cli(&["HGET", keys.trim(), "f"]), "5");
}

#[test]
fn a_concurrent_burst_over_the_replicas_does_not_get_past_the_limit() {
    let slapd = Slapd::start();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let replicas = config(&slapd, &redis).serve_replicas(dir.path(), REPLICAS, "info");
    let nginx = balancer(&replicas);
    let port = nginx.port();

    // Twenty at once: nginx's test configuration has 64 connections, two per request.
    let burst: Vec<_> = (0..20)
        .map(|_| std::thread::spawn(move || log_in(port, "alice", "guess")))
        .collect();
    let answers: Vec<Answer> = burst.into_iter().map(|t| t.join().unwrap()).collect();
    let refused = answers.iter().filter(|a| a.status == 401).count();
    let held_back = answers.iter().filter(|a| a.status == 429).count();
    assert_eq!((refused, held_back), (5, 15), "{answers:#?}");
    for answer in answers.iter().filter(|a| a.status == 401) {
        assert_wrong_password(answer);
    }
    // Exactly the budget reached the directory, over all replicas together.
    assert_eq!(slapd.binds_of(ALICE.dn), 5, "{}", slapd.log());
    for replica in &replicas {
        assert_banned(&log_in(replica.port, "alice", ALICE.password), 120);
    }
    // Nothing is left in flight.
    let in_flight = redis.cli(&["--scan", "--pattern", "latchkey:bf:*:inflight"]);
    assert_eq!(in_flight, "", "places still held: {in_flight}");
}

#[test]
fn a_redis_outage_costs_logins_nothing_and_sharing_resumes_when_it_is_back() {
    let slapd = Slapd::start();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let replicas = config(&slapd, &redis).serve_replicas(dir.path(), REPLICAS, "info");
    let nginx = balancer(&replicas);
    for replica in &replicas {
        let ready = request(replica.port, "GET", "/readyz", &[]);
        assert_eq!(
            (ready.status, ready.body.as_str()),
            (200, r#"{"status":"ready"}"#)
        );
        assert_eq!(metric(replica.port, "latchkey_state_backend_up"), "1");
    }

    redis.stop();
    // Logins go on, on every replica.
    for replica in &replicas {
        assert_eq!(log_in(replica.port, "alice", ALICE.password).status, 200);
        assert_eq!(metric(replica.port, "latchkey_state_backend_up"), "0");
    }
    // Readiness says degraded, but stays 200: the load balancer keeps every replica.
    for replica in &replicas {
        eventually(Duration::from_secs(3), "/readyz degraded", || {
            let ready = request(replica.port, "GET", "/readyz", &[]);
            assert_eq!(ready.status, 200, "{ready:?}");
            ready.body == r#"{"status":"degraded"}"#
        });
    }
    // Counting falls back to each replica's own: a replica still bans after five failures.
    let first = &replicas[0];
    for _ in 0..5 {
        assert_wrong_password(&log_in(first.port, "bob", "guess"));
    }
    assert_banned(&log_in(first.port, "bob", BOB.password), 120);
    // The change of state is logged once per replica, not once per request.
    for replica in &replicas {
        let log = replica.log();
        assert_eq!(
            log.matches("shared state store unreachable").count(),
            1,
            "{log}"
        );
        assert!(!log.contains("redis://127.0.0.1:0"), "{log}");
    }

    redis.restart();
    // Without a restart of any replica: within the retry interval, the store is used again.
    for replica in &replicas {
        eventually(Duration::from_secs(5), "/readyz ready again", || {
            request(replica.port, "GET", "/readyz", &[]).body == r#"{"status":"ready"}"#
        });
        assert_eq!(metric(replica.port, "latchkey_state_backend_up"), "1");
        assert!(replica.log().contains("shared state store reachable again"));
    }
    // Shared counting resumed: five failures over the replicas ban on all of them.
    let carol_like = "nobody-such";
    for _ in 0..5 {
        assert_wrong_password(&log_in(nginx.port(), carol_like, "guess"));
    }
    for replica in &replicas {
        assert_banned(&log_in(replica.port, carol_like, "guess"), 120);
    }
    assert_eq!(
        redis
            .cli(&["--scan", "--pattern", "latchkey:bf:login:*"])
            .lines()
            .count(),
        1
    );
}

#[test]
fn the_compose_examples_nginx_balances_three_replicas_that_share_one_ban() {
    let slapd = Slapd::start();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    // As in deploy/compose: nginx says who the client is, so the address is counted too.
    let replicas = config(&slapd, &redis)
        .server("trusted_proxies", ["127.0.0.1/32"])
        .brute_force("max_failures_per_address", 20)
        .serve_replicas(dir.path(), REPLICAS, "info");
    let ports: Vec<u16> = replicas.iter().map(|r| r.port).collect();
    let nginx = Nginx::start(&compose_example(&ports));

    assert_eq!(log_in(nginx.port(), "alice", ALICE.password).status, 200);
    for _ in 0..5 {
        assert_wrong_password(&log_in(nginx.port(), "bob", "guess"));
    }
    let mut seen: Vec<usize> = replicas.iter().map(failures_logged).collect();
    seen.sort_unstable();
    assert_eq!(seen, vec![1, 2, 2], "round robin over the three");
    for _ in 0..REPLICAS {
        assert_banned(&log_in(nginx.port(), "bob", BOB.password), 120);
    }
    assert_eq!(slapd.binds_of(BOB.dn), 5);
}

/// A Redis that wants a password, and the URL that gives it.
fn with_password(redis: &Redis) -> String {
    redis.cli(&["CONFIG", "SET", "requirepass", "redis-pass-7f3a"]);
    format!("redis://:redis-pass-7f3a@127.0.0.1:{}/0", redis.port())
}

#[test]
fn check_pings_redis_without_showing_its_password_and_fails_when_it_is_down() {
    let slapd = Slapd::start();
    let mut redis = Redis::start();
    let url = with_password(&redis);
    let dir = tempfile::tempdir().unwrap();
    let config = config(&slapd, &redis).shared_state(&url).write(dir.path());
    let shown = format!("redis://127.0.0.1:{}/0 (credentials hidden)", redis.port());

    let (code, out, err) = run(latchkey().arg("--config").arg(&config).arg("check"));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains(&format!("state: redis {shown}: PING answered in ")),
        "{out}"
    );
    assert!(
        out.contains("  key prefix \"latchkey:\", TLS off\n"),
        "{out}"
    );
    assert!(!format!("{out}{err}").contains("redis-pass-7f3a"));

    redis.stop();
    let (code, out, err) = run(latchkey().arg("--config").arg(&config).arg("check"));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.starts_with(&format!(
            "latchkey: state.redis {shown}: PING failed; logins would count on each replica alone: the shared state store failed: "
        )),
        "{err}"
    );
    assert!(!format!("{out}{err}").contains("redis-pass-7f3a"));
}

#[test]
fn the_password_in_the_url_is_used_and_never_logged() {
    let slapd = Slapd::start();
    let redis = Redis::start();
    let url = with_password(&redis);
    let dir = tempfile::tempdir().unwrap();
    let replica = config(&slapd, &redis)
        .shared_state(&url)
        .serve(dir.path(), "trace");
    assert_wrong_password(&log_in(replica.port, "alice", "guess"));
    assert_eq!(log_in(replica.port, "bob", BOB.password).status, 200);
    let ready = request(replica.port, "GET", "/readyz", &[]);
    assert_eq!(ready.body, r#"{"status":"ready"}"#);
    // Counted in Redis, so the password was right.
    let counted = redis.cli(&[
        "--no-auth-warning",
        "-a",
        "redis-pass-7f3a",
        "--scan",
        "--pattern",
        "latchkey:bf:login:*",
    ]);
    assert_eq!(counted.lines().count(), 1, "{counted}");
    let log = replica.log();
    assert!(
        log.contains(&format!(
            "state=\"redis://127.0.0.1:{}/0 (credentials hidden)\"",
            redis.port()
        )),
        "{log}"
    );
    assert!(!log.contains("redis-pass-7f3a"), "{log}");
}

#[test]
fn rediss_trusts_the_configured_ca_and_presents_the_client_certificate() {
    let slapd = Slapd::start();
    let files = TlsFiles::generate();
    let redis = Redis::start_tls(&files);
    let dir = tempfile::tempdir().unwrap();
    let with_tls = |ca: &std::path::Path, client: bool| {
        let mut c = config(&slapd, &redis).shared_state(&redis.tls_url()).set(
            "state.redis.tls",
            "ca_file",
            ca,
        );
        if client {
            c = c
                .set(
                    "state.redis.tls",
                    "client_cert_file",
                    files.client_cert.as_path(),
                )
                .set(
                    "state.redis.tls",
                    "client_key_file",
                    files.client_key.as_path(),
                );
        }
        c
    };

    let replica = with_tls(&files.ca, true).serve(dir.path(), "info");
    assert_wrong_password(&log_in(replica.port, "alice", "guess"));
    let ready = request(replica.port, "GET", "/readyz", &[]);
    assert_eq!(ready.body, r#"{"status":"ready"}"#);
    assert_eq!(metric(replica.port, "latchkey_state_backend_up"), "1");
    assert_eq!(metric(replica.port, "latchkey_state_errors_total"), "0");

    // Trusting another CA, or without the client certificate Redis asks for: no connection.
    for (ca, client) in [(&files.other_ca, true), (&files.ca, false)] {
        let cfg = with_tls(ca, client).write(dir.path());
        let (code, out, err) = run(latchkey().arg("--config").arg(&cfg).arg("check"));
        assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
        assert!(err.contains("PING failed"), "{err}");
    }
}
