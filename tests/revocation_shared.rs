//! Revocation across replicas: three real `latchkey serve` processes behind a real nginx
//! (round robin), sharing one real redis-server. A token revoked through one replica is refused
//! by the others within a second, and by a service verifying in-process with the Redis source;
//! `latchkey revoke` reaches every replica; a Redis outage keeps what was revoked refused, and
//! sharing resumes when Redis is back, without restarting anything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::{Duration, Instant};

use latchkey_verify::redis::{Client, RedisOptions, RedisRevocations};
use latchkey_verify::{Algorithm, ExpiryRules, Secret, SigningKey, Verifier, VerifyError};
use support::config::TestConfig;
use support::nginx::balancer;
use support::redis::Redis;
use support::served::{latchkey, request, run, Answer, Served};
use support::service::{basic, TEST_ISSUER, TEST_KID, TEST_SECRET};
use support::slapd::Slapd;
use support::users::{ALICE, BOB};

const REVOKED: &str = r#"{"error":"token_revoked","message":"The token has been revoked; sign in again.","status":401}"#;

fn config(slapd: &Slapd, redis: &Redis) -> TestConfig {
    TestConfig::new(slapd)
        .shared_state(&redis.url())
        .brute_force("max_failures_per_address", 0)
}

fn token_of(port: u16, login: &str, password: &str) -> String {
    let answer = request(
        port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(login, password))],
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    json["token"].as_str().unwrap().to_owned()
}

fn verify(port: u16, token: &str) -> Answer {
    request(
        port,
        "GET",
        "/auth/verify",
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

fn logout(port: u16, token: &str) -> Answer {
    request(
        port,
        "POST",
        "/auth/logout",
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

/// Polls `check` every 20 ms for up to `limit`; how long it took.
fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

fn refused_as_revoked(answer: &Answer) -> bool {
    answer.status == 401 && answer.body == REVOKED
}

/// Wait until every replica's mirror follows Redis (each logs it once per connection).
fn following(replicas: &[Served], times: usize) {
    for replica in replicas {
        within(Duration::from_secs(10), "the mirror follows Redis", || {
            replica
                .log()
                .matches("revocations follow the shared state store")
                .count()
                >= times
        });
    }
}

#[test]
fn a_token_revoked_through_one_replica_is_refused_by_all_within_a_second() {
    let slapd = Slapd::start();
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let replicas = config(&slapd, &redis).serve_replicas(dir.path(), 3, "info");
    let nginx = balancer(&replicas);
    following(&replicas, 1);

    // A service that verifies in-process, with the Redis source.
    let mirror = std::sync::Arc::new(
        RedisRevocations::start(
            Client::open(redis.url()).unwrap(),
            ExpiryRules {
                max_lifetime: 86_400,
                leeway: 5,
            },
            RedisOptions::default(),
        )
        .unwrap(),
    );
    within(
        Duration::from_secs(5),
        "the service's mirror follows",
        || mirror.is_connected(),
    );
    let key = SigningKey::hmac(
        TEST_KID,
        Algorithm::HS256,
        Secret::new(TEST_SECRET.as_bytes().to_vec()).unwrap(),
    )
    .unwrap()
    .verifying_key();
    let service = Verifier::builder()
        .key(&key)
        .issuer(TEST_ISSUER)
        .revocations(mirror.clone())
        .build();

    let token = token_of(nginx.port(), ALICE.login, ALICE.password);
    for replica in &replicas {
        // Verified (and kept by the worker) before the revocation.
        assert_eq!(verify(replica.port, &token).status, 200);
    }
    assert_eq!(service.verify(&token).unwrap().sub, "alice");

    let out = logout(replicas[0].port, &token);
    assert_eq!(out.status, 204, "{out:?}");
    for replica in &replicas[1..] {
        let took = within(Duration::from_secs(1), "another replica refuses it", || {
            refused_as_revoked(&verify(replica.port, &token))
        });
        assert!(took < Duration::from_secs(1), "{took:?}");
    }
    within(
        Duration::from_secs(1),
        "the in-process verifier refuses it",
        || service.verify(&token) == Err(VerifyError::Revoked),
    );
    for _ in 0..3 {
        assert!(refused_as_revoked(&verify(nginx.port(), &token)));
    }

    // The operator's command, for every token of a user.
    let bob = token_of(nginx.port(), BOB.login, BOB.password);
    let path = config(&slapd, &redis).write(dir.path());
    let (code, out, err) = run(latchkey()
        .arg("--config")
        .arg(&path)
        .args(["revoke", "--user", "Bob"]));
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert_eq!(
        out,
        "revoked every token of \"Bob\" issued up to now, on every replica\n"
    );
    for replica in &replicas {
        within(Duration::from_secs(1), "bob's token is refused", || {
            refused_as_revoked(&verify(replica.port, &bob))
        });
    }
}

/// A replica's `/metrics` lines about revocations: the number held and whether in sync, exactly,
/// and the seconds since the last full read.
fn revocation_metrics(port: u16) -> (Vec<String>, i64) {
    let answer = request(port, "GET", "/metrics", &[]);
    assert_eq!(answer.status, 200);
    let mut lines: Vec<String> = answer
        .body
        .lines()
        .filter(|l| l.starts_with("latchkey_revocations"))
        .map(str::to_owned)
        .collect();
    let age = lines
        .pop()
        .and_then(|l| {
            l.strip_prefix("latchkey_revocations_sync_age_seconds ")
                .map(|v| v.parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no sync age last in:\n{}", answer.body));
    (lines, age)
}

#[test]
fn a_redis_outage_forgets_nothing_and_sharing_resumes_afterwards() {
    let slapd = Slapd::start();
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let replicas = config(&slapd, &redis).serve_replicas(dir.path(), 3, "info");
    following(&replicas, 1);
    let revoked = token_of(replicas[0].port, ALICE.login, ALICE.password);
    let during = token_of(replicas[0].port, ALICE.login, ALICE.password);
    let later = token_of(replicas[0].port, BOB.login, BOB.password);
    assert_eq!(logout(replicas[0].port, &revoked).status, 204);
    for replica in &replicas {
        within(Duration::from_secs(1), "refused everywhere", || {
            refused_as_revoked(&verify(replica.port, &revoked))
        });
    }

    for replica in &replicas {
        let (lines, age) = revocation_metrics(replica.port);
        assert_eq!(
            lines,
            ["latchkey_revocations 1", "latchkey_revocations_synced 1"]
        );
        assert!((0..=30).contains(&age), "read in full every 30 s: {age}");
    }

    redis.stop();
    for replica in &replicas {
        within(Duration::from_secs(10), "the outage is logged", || {
            replica
                .log()
                .contains("revocations no longer follow the shared state store")
        });
        // Verifies go on; what was revoked before stays refused.
        assert_eq!(verify(replica.port, &later).status, 200);
        assert!(refused_as_revoked(&verify(replica.port, &revoked)));
    }
    // A sign-out during the outage holds where it was made and says it was not shared.
    let out = logout(replicas[1].port, &during);
    assert_eq!(out.status, 503, "{out:?}");
    assert_eq!(
        out.body,
        r#"{"error":"revocations_unavailable","message":"The revocation holds on this server but could not be shared with the others; try again in a few seconds.","status":503}"#
    );
    assert!(refused_as_revoked(&verify(replicas[1].port, &during)));
    for (n, replica) in replicas.iter().enumerate() {
        let (lines, _) = revocation_metrics(replica.port);
        let held = if n == 1 { 2 } else { 1 };
        assert_eq!(
            lines,
            [
                format!("latchkey_revocations {held}"),
                "latchkey_revocations_synced 0".to_owned()
            ]
        );
    }

    // Back, empty: the mirrors follow it again without a restart, and restore what they knew.
    redis.restart();
    following(&replicas, 2);
    assert_eq!(logout(replicas[2].port, &later).status, 204);
    for replica in &replicas {
        within(Duration::from_secs(1), "shared again", || {
            refused_as_revoked(&verify(replica.port, &later))
        });
        assert!(refused_as_revoked(&verify(replica.port, &revoked)));
        within(
            Duration::from_secs(1),
            "the outage's sign-out reaches everyone",
            || refused_as_revoked(&verify(replica.port, &during)),
        );
        let (lines, age) = revocation_metrics(replica.port);
        assert_eq!(
            lines,
            ["latchkey_revocations 3", "latchkey_revocations_synced 1"]
        );
        assert!(
            (0..=5).contains(&age),
            "read in full on reconnecting: {age}"
        );
    }
}

#[test]
fn the_revoke_command_needs_the_shared_store() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().unwrap();
    let path = TestConfig::new(&slapd).write(dir.path());
    let (code, out, err) = run(latchkey().arg("--config").arg(&path).args([
        "revoke",
        "--token-id",
        "0123456789abcdef0123456789abcdef",
    ]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        "latchkey: revoking from the command line needs the shared store ([state] backend = \"redis\"): with the memory backend revocations live inside the running service; use its POST /auth/revoke with an administrator's token ([admin] require)\n"
    );
    let (code, _, err) =
        run(latchkey()
            .arg("--config")
            .arg(&path)
            .args(["revoke", "--token-id", "a b"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "latchkey: token_id must be 1 to 128 letters, digits, '-' or '_'.\n"
    );
    let (code, _, err) = run(latchkey().arg("--config").arg(&path).arg("revoke"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--user <USER>"), "{err}");
}
