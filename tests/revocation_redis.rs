//! `latchkey_verify::redis::RedisRevocations` against a real redis-server: a revocation
//! written through one mirror reaches another within a second, a mirror started later reads
//! what came before, the keys are laid out and pruned as documented, and an outage keeps every
//! mirror as it was until Redis is back (even when Redis lost its memory meanwhile).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use latchkey_verify::redis::{Client, RedisOptions, RedisRevocations};
use latchkey_verify::{
    Algorithm, Claims, ExpiryRules, Revocation, Revocations, Secret, Signer, SigningKey, Verifier,
    VerifyError,
};
use support::redis::Redis;

const RULES: ExpiryRules = ExpiryRules {
    max_lifetime: 3600,
    leeway: 5,
};

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn mirror(redis: &Redis, prefix: &str) -> RedisRevocations {
    let options = RedisOptions {
        prefix: prefix.to_owned(),
        retry_after: Duration::from_millis(200),
        operation_timeout: Duration::from_secs(1),
        ..RedisOptions::default()
    };
    RedisRevocations::start(Client::open(redis.url()).unwrap(), RULES, options).unwrap()
}

/// Wait up to `limit` for `condition`; how long it took.
fn within(limit: Duration, condition: impl Fn() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn connected(mirror: &RedisRevocations) {
    within(Duration::from_secs(5), || mirror.is_connected())
        .unwrap_or_else(|| panic!("the mirror never followed Redis"));
}

fn claims(sub: &str, jti: &str, iat: i64) -> Claims {
    let mut c = Claims::new("latchkey", sub, iat, iat + 600);
    c.jti = jti.into();
    c
}

fn token(jti: &str) -> Revocation {
    Revocation::Token {
        jti: jti.into(),
        exp: now() + 600,
    }
}

#[actix_web::test]
async fn a_revocation_reaches_every_mirror_within_a_second() {
    let redis = Redis::start();
    let (a, b) = (
        mirror(&redis, "latchkey:"),
        Arc::new(mirror(&redis, "latchkey:")),
    );
    connected(&a);
    connected(&b);
    let stolen = claims("alice", "j-stolen", now());
    assert!(!b.is_revoked(&stolen));

    let exp = now() + 600;
    a.revoke(
        Revocation::Token {
            jti: "j-stolen".into(),
            exp,
        },
        now(),
    )
    .await
    .unwrap();
    assert!(a.is_revoked(&stolen), "at once where it was written");
    let took = within(Duration::from_secs(1), || b.is_revoked(&stolen))
        .expect("the other mirror refuses it within a second");
    assert!(took < Duration::from_secs(1), "{took:?}");

    // The layout: one sorted set scored by when the entry stops mattering.
    assert_eq!(
        redis.cli(&["ZRANGE", "latchkey:revocations", "0", "-1", "WITHSCORES"]),
        format!("t:{exp}:j-stolen\n{}", exp + 5)
    );

    // A verifier given the mirror as its revocation source refuses the token.
    let key = SigningKey::hmac("k1", Algorithm::HS256, Secret::new(vec![3; 32]).unwrap()).unwrap();
    let verifier = Verifier::builder()
        .key(&key.verifying_key())
        .issuer("latchkey")
        .revocations(b.clone())
        .build();
    let signed = Signer::new(&key).sign(&stolen).unwrap();
    assert_eq!(verifier.verify(&signed), Err(VerifyError::Revoked));
    let other = Signer::new(&key)
        .sign(&claims("alice", "j-other", now()))
        .unwrap();
    assert_eq!(verifier.verify(&other).unwrap().jti, "j-other");
}

#[actix_web::test]
async fn a_mirror_started_later_reads_what_came_before_under_its_prefix() {
    let redis = Redis::start();
    let writer = mirror(&redis, "lk/prod:");
    connected(&writer);
    let cutoff = now();
    writer
        .revoke(
            Revocation::User {
                user: "Bob".into(),
                at: cutoff,
            },
            cutoff,
        )
        .await
        .unwrap();
    writer.revoke(token("j1"), now()).await.unwrap();
    assert_eq!(redis.cli(&["ZCARD", "lk/prod:revocations"]), "2");
    assert_eq!(redis.cli(&["EXISTS", "latchkey:revocations"]), "0");

    let later = mirror(&redis, "lk/prod:");
    connected(&later);
    assert!(later.is_revoked(&claims("bob", "any", cutoff)));
    assert!(!later.is_revoked(&claims("bob", "any", cutoff + 1)));
    assert!(later.is_revoked(&claims("carol", "j1", cutoff)));
    // Another prefix is another set of revocations.
    let elsewhere = mirror(&redis, "other:");
    connected(&elsewhere);
    assert!(!elsewhere.is_revoked(&claims("bob", "any", cutoff)));
}

#[actix_web::test]
async fn expired_entries_leave_redis() {
    let redis = Redis::start();
    let writer = mirror(&redis, "latchkey:");
    connected(&writer);
    // Planted as an older writer would have left it: expired a minute ago.
    redis.cli(&[
        "ZADD",
        "latchkey:revocations",
        &(now() - 60).to_string(),
        "t:1:j-old",
    ]);
    writer.revoke(token("j-new"), now()).await.unwrap();
    let members = redis.cli(&["ZRANGE", "latchkey:revocations", "0", "-1"]);
    assert_eq!(members.lines().count(), 1, "{members}");
    assert!(members.contains(":j-new"), "{members}");
    // A revocation that covers nothing any more is not written at all.
    writer
        .revoke(
            Revocation::Token {
                jti: "j-dead".into(),
                exp: now() - 100,
            },
            now(),
        )
        .await
        .unwrap();
    assert!(!redis
        .cli(&["ZRANGE", "latchkey:revocations", "0", "-1"])
        .contains("j-dead"));
}

#[actix_web::test]
async fn an_outage_keeps_the_mirrors_and_a_restart_resumes_and_restores() {
    let mut redis = Redis::start();
    let (a, b) = (mirror(&redis, "latchkey:"), mirror(&redis, "latchkey:"));
    connected(&a);
    connected(&b);
    a.revoke(token("before"), now()).await.unwrap();
    within(Duration::from_secs(1), || {
        b.is_revoked(&claims("x", "before", now()))
    })
    .expect("b heard of it");

    redis.stop();
    within(Duration::from_secs(5), || !b.is_connected()).expect("b notices the outage");
    assert!(
        b.is_revoked(&claims("x", "before", now())),
        "never emptied by an outage"
    );
    // A revocation during the outage holds where it was made, and says it was not shared.
    assert!(a.revoke(token("during"), now()).await.is_err());
    assert!(a.is_revoked(&claims("x", "during", now())));

    // Redis comes back empty: the mirrors follow it again and write back what they knew.
    redis.restart();
    connected(&a);
    connected(&b);
    assert!(b.is_revoked(&claims("x", "before", now())));
    a.revoke(token("after"), now()).await.unwrap();
    within(Duration::from_secs(1), || {
        b.is_revoked(&claims("x", "after", now()))
    })
    .expect("sharing resumes without a restart");
    let restored = redis.cli(&["ZRANGE", "latchkey:revocations", "0", "-1"]);
    let mut jtis: Vec<&str> = restored
        .lines()
        .map(|member| member.rsplit(':').next().unwrap())
        .collect();
    jtis.sort_unstable();
    assert_eq!(jtis, ["after", "before", "during"], "{restored}");
    // A mirror that starts now learns of the revocation made during the outage.
    let c = mirror(&redis, "latchkey:");
    connected(&c);
    assert!(c.is_revoked(&claims("x", "during", now())));
}

#[actix_web::test]
async fn a_mirror_tells_how_long_ago_it_read_the_set_in_full() {
    let mut redis = Redis::start();
    redis.stop();
    let m = mirror(&redis, "latchkey:");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!m.is_connected());
    assert_eq!(m.since_full_read(), None, "never read while Redis is down");
    redis.restart();
    connected(&m);
    let age = m.since_full_read().expect("read in full on connecting");
    assert!(age < Duration::from_secs(1), "{age:?}");
    redis.stop();
    within(Duration::from_secs(5), || !m.is_connected())
        .unwrap_or_else(|| panic!("the mirror never noticed the outage"));
    std::thread::sleep(Duration::from_millis(200));
    let later = m.since_full_read().expect("the last read is remembered");
    assert!(later > age, "{later:?} after {age:?}");
}
