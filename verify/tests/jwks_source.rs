//! `JwksSource` against a real HTTP server on loopback, served by the test, that publishes a
//! JWKS with a chosen `Cache-Control` and counts the requests it gets: the first fetch, the
//! refresh before `max-age` ends and its bounds, a flood of made-up kids, a rotation, and
//! Latchkey being down.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use latchkey_verify::{
    Algorithm, Claims, JwksError, JwksSource, Secret, Signer, SigningKey, Verifier, VerifyError,
};
use support::key_server::KeyServer;
use tokio::time::{sleep, Instant};

fn key(kid: &str, algorithm: Algorithm) -> SigningKey {
    SigningKey::generate(kid, algorithm).unwrap()
}

fn token(key: &SigningKey) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Claims::new("latchkey", "alice", now, now + 600);
    claims.jti = "0123456789abcdef0123456789abcdef".into();
    Signer::new(key).sign(&claims).unwrap()
}

async fn source(server: &KeyServer, min: u64, max: u64) -> JwksSource {
    JwksSource::builder(server.uri())
        .verifier(Verifier::builder().issuer("latchkey"))
        .min_refresh(Duration::from_millis(min))
        .max_refresh(Duration::from_millis(max))
        .start()
        .await
        .unwrap()
}

/// Sleep until `at` after `start`.
async fn at(start: Instant, millis: u64) {
    tokio::time::sleep_until(start + Duration::from_millis(millis)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_are_fetched_once_and_verify_every_token_without_another_fetch() {
    let (ed, es) = (
        key("2026-11", Algorithm::EdDSA),
        key("2026-12", Algorithm::ES256),
    );
    let server = KeyServer::start(&[&ed, &es], "public, max-age=600").await;
    let source = source(&server, 30_000, 3_600_000).await;
    assert_eq!(server.requests(), 1);
    for _ in 0..100 {
        assert_eq!(source.verify(&token(&ed)).unwrap().sub, "alice");
        assert_eq!(source.verify(&token(&es)).unwrap().sub, "alice");
    }
    // A token with a known kid but another algorithm is refused, and fetches nothing.
    let hmac = SigningKey::hmac(
        "2026-11",
        Algorithm::HS256,
        Secret::new(vec![1; 32]).unwrap(),
    )
    .unwrap();
    assert_eq!(
        source.verify(&token(&hmac)),
        Err(VerifyError::DisallowedAlgorithm)
    );
    sleep(Duration::from_millis(300)).await;
    assert_eq!(server.requests(), 1);
    assert_eq!(source.last_error(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_are_fetched_again_before_max_age_ends() {
    let k = key("2026-11", Algorithm::EdDSA);
    let server = KeyServer::start(&[&k], "max-age=2").await;
    let start = Instant::now();
    let source = source(&server, 200, 3_600_000).await;
    // Nine tenths of max-age: at 1.8 s, 3.6 s, 5.4 s, 7.2 s.
    at(start, 1_500).await;
    assert_eq!(server.requests(), 1);
    at(start, 2_300).await;
    assert_eq!(server.requests(), 2);
    at(start, 4_000).await;
    assert_eq!(server.requests(), 3);
    // The task ends with the last clone of the source.
    let clone = source.clone();
    drop(source);
    at(start, 5_700).await;
    assert_eq!(server.requests(), 4, "a clone keeps the refresh going");
    drop(clone);
    sleep(Duration::from_millis(2_500)).await;
    assert_eq!(server.requests(), 4, "no fetch once every clone is dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_is_bounded_by_the_least_and_the_longest_refresh() {
    let k = key("2026-11", Algorithm::EdDSA);
    let day = KeyServer::start(&[&k], "max-age=86400").await;
    let never = KeyServer::start(&[&k], "no-store").await;
    let start = Instant::now();
    // A day's max-age, but no more than a second between fetches.
    let _long = source(&day, 200, 1_000).await;
    // no-store, but no less than a second between fetches.
    let _short = source(&never, 1_000, 3_600_000).await;
    at(start, 600).await;
    assert_eq!((day.requests(), never.requests()), (1, 1));
    at(start, 1_500).await;
    assert_eq!((day.requests(), never.requests()), (2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_kids_refetches_at_most_once_per_interval() {
    let k = key("2026-11", Algorithm::EdDSA);
    let server = KeyServer::start(&[&k], "max-age=3600").await;
    let start = Instant::now();
    let source = source(&server, 1_000, 3_600_000).await;
    let made_up: Vec<String> = (0..50)
        .map(|i| token(&key(&format!("made-up-{i}"), Algorithm::EdDSA)))
        .collect();
    let mut refused = 0;
    while start.elapsed() < Duration::from_millis(2_500) {
        let batch = Instant::now();
        for forged in &made_up {
            assert_eq!(source.verify(forged), Err(VerifyError::UnknownKey));
            refused += 1;
        }
        // Refused at once: nothing waited for a fetch.
        assert!(batch.elapsed() < Duration::from_millis(500));
        sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed().as_millis() as usize;
    let requests = server.requests();
    assert!(refused > 1_000, "{refused} tokens sent");
    // The first fetch, then one per second of flood at most.
    assert!(
        (2..=1 + elapsed.div_ceil(1_000)).contains(&requests),
        "{requests} requests in {elapsed} ms"
    );
    // The refetch the last tokens asked for, then quiet: no unknown kid, no fetch.
    sleep(Duration::from_millis(1_200)).await;
    let settled = server.requests();
    assert!(settled <= requests + 1, "{requests} then {settled}");
    sleep(Duration::from_millis(1_500)).await;
    assert_eq!(server.requests(), settled);
    // The good key was never in doubt.
    assert!(source.verify(&token(&k)).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_picked_up_from_its_first_token_without_a_restart() {
    let old = key("2026-11", Algorithm::EdDSA);
    let new = key("2026-12", Algorithm::ES256);
    let server = KeyServer::start(&[&old], "max-age=3600").await;
    let source = source(&server, 500, 3_600_000).await;
    let old_token = token(&old);
    let new_token = token(&new);
    assert!(source.verify(&old_token).is_ok());

    // Latchkey publishes the new key (and soon signs with it).
    server.publish(&[&old, &new]);
    assert_eq!(source.verify(&new_token), Err(VerifyError::UnknownKey));
    let asked = Instant::now();
    while source.verify(&new_token).is_err() {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the new key was not picked up"
        );
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(source.verify(&new_token).unwrap().sub, "alice");
    assert_eq!(server.requests(), 2, "one refetch for the new kid");
    assert!(source.verify(&old_token).is_ok());

    // The old key withdrawn: gone from the next fetch on (this one for an unknown kid).
    server.publish(&[&new]);
    let other = token(&key("2027-01", Algorithm::EdDSA));
    assert_eq!(source.verify(&other), Err(VerifyError::UnknownKey));
    let asked = Instant::now();
    while source.verify(&old_token).is_ok() {
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "the old key stayed"
        );
        sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(source.verify(&old_token), Err(VerifyError::UnknownKey));
    assert!(source.verify(&new_token).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_latchkey_fails_or_is_down_the_cached_keys_stay() {
    let k = key("2026-11", Algorithm::EdDSA);
    let mut server = KeyServer::start(&[&k], "max-age=1").await;
    let start = Instant::now();
    let source = source(&server, 200, 3_600_000).await;
    let good = token(&k);

    // Failing answers: 503, then a document that is no JWKS. Each is retried after 200 ms.
    server.answer_with(503);
    at(start, 1_200).await;
    assert!(server.requests() >= 2);
    assert_eq!(
        source.last_error(),
        Some(JwksError::Status {
            uri: server.uri(),
            status: 503
        })
    );
    assert!(source.verify(&good).is_ok());
    server.answer_with(200);
    server.publish_raw("<html>maintenance</html>".into());
    at(start, 1_700).await;
    assert!(
        matches!(source.last_error(), Some(JwksError::Document { .. })),
        "{:?}",
        source.last_error()
    );
    assert!(source.verify(&good).is_ok());

    // Recovered: the error is cleared.
    server.publish(&[&k]);
    at(start, 2_200).await;
    assert_eq!(source.last_error(), None);

    // Down: nothing listens any more.
    server.stop().await;
    let before = server.requests();
    sleep(Duration::from_millis(1_500)).await;
    assert_eq!(server.requests(), before);
    let error = source.last_error().expect("the fetches fail");
    assert!(
        matches!(&error, JwksError::Unreachable { uri, .. } if *uri == server.uri()),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot fetch {}: ", server.uri())),
        "{error}"
    );
    assert_eq!(source.verify(&good).unwrap().sub, "alice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_refuses_what_it_cannot_use_and_says_what_to_check() {
    let k = key("2026-11", Algorithm::EdDSA);
    let start = |uri: String| async move { JwksSource::builder(uri).start().await.unwrap_err() };

    let error = start("ftp://127.0.0.1/jwks.json".into()).await;
    assert!(matches!(error, JwksError::BadUri { .. }), "{error:?}");
    assert!(error.to_string().contains("its scheme is ftp"), "{error}");
    assert!(matches!(
        start("not a url".into()).await,
        JwksError::BadUri { .. }
    ));

    let mut server = KeyServer::start(&[&k], "max-age=600").await;
    server.answer_with(404);
    let error = start(server.uri()).await;
    assert_eq!(
        error,
        JwksError::Status {
            uri: server.uri(),
            status: 404
        }
    );
    assert!(error
        .to_string()
        .contains("With HMAC keys only it answers 404"));

    server.answer_with(200);
    server.publish_raw(format!(
        r#"{{"keys": [], "padding": "{}"}}"#,
        "x".repeat(70_000)
    ));
    assert_eq!(
        start(server.uri()).await,
        JwksError::TooLarge { uri: server.uri() }
    );
    server.publish_raw(r#"{"keys": [{"kty": "oct", "kid": "k", "k": "c2VjcmV0"}]}"#.into());
    let error = start(server.uri()).await;
    assert!(matches!(error, JwksError::Document { .. }), "{error:?}");

    server.stop().await;
    let error = start(server.uri()).await;
    assert!(matches!(error, JwksError::Unreachable { .. }), "{error:?}");

    // Outside a tokio runtime.
    let uri = server.uri();
    let error =
        std::thread::spawn(move || block_on_without_tokio(JwksSource::builder(uri).start()))
            .join()
            .unwrap();
    assert_eq!(error.unwrap_err(), JwksError::NoRuntime);
}

/// The least executor there is, without tokio: to show what `start` says outside a runtime.
fn block_on_without_tokio<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tower_layer_verifies_with_the_source() {
    use latchkey_verify::tower::RequireTokenLayer;
    use tower::{Layer, ServiceExt};

    let k = key("2026-11", Algorithm::EdDSA);
    let server = KeyServer::start(&[&k], "max-age=600").await;
    let source = source(&server, 30_000, 3_600_000).await;
    let service = RequireTokenLayer::new(source).layer(tower::service_fn(
        |request: axum::http::Request<()>| async move {
            let claims = request.extensions().get::<Claims>().unwrap();
            Ok::<_, std::convert::Infallible>(axum::http::Response::new(format!(
                "hello {}",
                claims.sub
            )))
        },
    ));
    let call = |token: String| {
        let service = service.clone();
        async move {
            let request = axum::http::Request::builder()
                .header("authorization", format!("Bearer {token}"))
                .body(())
                .unwrap();
            let response = service.oneshot(request).await.unwrap();
            (response.status().as_u16(), response.into_body())
        }
    };
    assert_eq!(call(token(&k)).await, (200, "hello alice".to_owned()));
    let stranger = token(&key("2027-01", Algorithm::EdDSA));
    assert_eq!(
        call(stranger).await,
        (
            401,
            r#"{"error":"invalid_token","message":"The token was signed with a key this server does not hold.","status":401}"#
                .to_owned()
        )
    );
}
