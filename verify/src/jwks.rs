//! Public keys that follow Latchkey's `jwks_uri` (feature `jwks`): fetched, cached, refreshed
//! in the background, so that a service verifies tokens signed with keys Latchkey rotates in
//! later, without a restart and without holding any secret.
//!
//! ```no_run
//! use latchkey_verify::{JwksSource, Verifier};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = JwksSource::builder("https://auth.example.org/.well-known/jwks.json")
//!     .verifier(Verifier::builder().issuer("https://auth.example.org"))
//!     .start()
//!     .await?;
//! # let token = "";
//! let claims = source.verify(token)?;
//! // or guard routes with it: RequireTokenLayer::new(source.clone()), RequireToken::new(source)
//! # Ok(()) }
//! ```
//!
//! The rules, and why:
//! - [`JwksSourceBuilder::start`] fetches the document once and fails if it cannot: a service
//!   should not start up refusing every token. It needs a tokio runtime, which runs the
//!   background task that keeps the keys fresh; the task ends when the last clone of the
//!   [`JwksSource`] is dropped.
//! - **The hot path never waits on the network.** [`JwksSource::verify`] reads the current
//!   [`Verifier`] (a pointer behind a lock held only to copy or replace it) and checks the
//!   token with it, synchronously. A token whose `kid` the keys do not hold is refused at once
//!   ([`VerifyError::UnknownKey`]) and wakes the background task.
//! - **Refresh before `max-age` ends.** The answer's `Cache-Control: max-age` says how long its
//!   keys may be kept; the task fetches again after nine tenths of it, bounded by
//!   [`JwksSourceBuilder::min_refresh`] and [`JwksSourceBuilder::max_refresh`] (without a
//!   `max-age`, five minutes; with `no-cache` or `no-store`, the minimum). Latchkey publishes a
//!   new key at least `max-age` before it signs with it, so a key is known before its first
//!   token arrives.
//! - **An unknown `kid` refetches at most once per `min_refresh`**, counted from the last fetch
//!   of any kind: a flood of tokens with made-up kids costs Latchkey one request per interval,
//!   not one per token. Unknown kids that arrive while a refetch is pending share it.
//! - **Failures keep the cached keys.** A fetch that fails (unreachable, not 200, too large, not
//!   a JWKS of usable keys) changes nothing but [`JwksSource::last_error`], and is retried after
//!   `min_refresh`. A document that is fetched and valid replaces the keys entirely, so a key
//!   Latchkey withdrew stops verifying at the next refresh.
//! - Documents over [`MAX_JWKS_LEN`] bytes are refused; redirects are not followed (the URL is
//!   configured, not discovered); every fetch has a timeout ([`JwksSourceBuilder::timeout`]).

use std::error::Error as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, CACHE_CONTROL};
use reqwest::{Client, StatusCode, Url};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Claims, IntoTokenVerifier, TokenVerifier, Verifier, VerifierBuilder, VerifyError};
use crate::{KeyError, VerifyingKey};

/// The largest JWKS document accepted, in bytes. Latchkey's has a few keys of well under a
/// kilobyte each.
pub const MAX_JWKS_LEN: usize = 64 * 1024;

/// The least time between two fetches, unless configured otherwise.
pub const DEFAULT_MIN_REFRESH: Duration = Duration::from_secs(30);

/// The longest time keys are kept without a fetch, unless configured otherwise.
pub const DEFAULT_MAX_REFRESH: Duration = Duration::from_secs(3600);

/// How long one fetch may take, unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The least `min_refresh` there is: a smaller one (zero included) is taken as this, so that no
/// setting lets unknown kids turn the task into a loop of fetches.
pub const LEAST_MIN_REFRESH: Duration = Duration::from_millis(100);

/// What an answer without `max-age` is taken to allow.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// Why the keys could not be fetched; each says what to check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The configured URL is not an absolute http:// or https:// URL.
    #[error("the jwks_uri {uri:?} is not an http:// or https:// URL ({reason}); give the jwks_uri of Latchkey's /.well-known/latchkey")]
    BadUri {
        /// The URL as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No tokio runtime to run the background refresh on.
    #[error("JwksSource::start needs a tokio runtime (call it from async code run by tokio, e.g. under #[tokio::main] or #[actix_web::main])")]
    NoRuntime,
    /// The request failed: no connection, TLS, a timeout, or the answer broke off.
    #[error("cannot fetch {uri}: {reason}")]
    Unreachable {
        /// The jwks_uri.
        uri: String,
        /// What failed, with its causes.
        reason: String,
    },
    /// The answer's status is not 200.
    #[error("{uri} answered {status}, not 200 (is it Latchkey's jwks_uri, and does Latchkey sign with EdDSA or ES256? With HMAC keys only it answers 404)")]
    Status {
        /// The jwks_uri.
        uri: String,
        /// The status received.
        status: u16,
    },
    /// The document is larger than [`MAX_JWKS_LEN`].
    #[error("{uri} sent more than {MAX_JWKS_LEN} bytes, too much for a JWKS")]
    TooLarge {
        /// The jwks_uri.
        uri: String,
    },
    /// The document is not a JWKS of keys this crate verifies with.
    #[error("{uri} is not a usable JWKS: {reason}")]
    Document {
        /// The jwks_uri.
        uri: String,
        /// What is wrong with it.
        reason: KeyError,
    },
}

/// Public keys fetched from a `jwks_uri` and kept fresh; verifies tokens with them. Cheap to
/// clone (the clones share the keys and the background task).
#[derive(Clone)]
pub struct JwksSource {
    running: Arc<Running>,
}

/// The shared state and the task that refreshes it; the task is stopped when this is dropped.
struct Running {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the verifying side and the background task share.
struct Shared {
    uri: Url,
    template: VerifierBuilder,
    client: Client,
    min_refresh: Duration,
    max_refresh: Duration,
    /// The verifier of the last good document: replaced whole, never changed in place.
    current: RwLock<Arc<Verifier>>,
    /// Why the last fetch failed; `None` after a good one.
    last_error: Mutex<Option<JwksError>>,
    /// A token named a kid the keys lack since the last fetch began.
    unknown_kid: AtomicBool,
    wake: Notify,
}

/// Configures a [`JwksSource`].
#[derive(Debug, Clone)]
pub struct JwksSourceBuilder {
    uri: String,
    template: VerifierBuilder,
    min_refresh: Duration,
    max_refresh: Duration,
    timeout: Duration,
}

impl JwksSource {
    /// Start configuring a source of the keys at `jwks_uri` (the `jwks_uri` of Latchkey's
    /// `/.well-known/latchkey`).
    pub fn builder(jwks_uri: impl Into<String>) -> JwksSourceBuilder {
        JwksSourceBuilder {
            uri: jwks_uri.into(),
            template: Verifier::builder(),
            min_refresh: DEFAULT_MIN_REFRESH,
            max_refresh: DEFAULT_MAX_REFRESH,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Check `token` with the current keys, without waiting for anything. A token signed with a
    /// key they do not hold is refused now ([`VerifyError::UnknownKey`]) and makes the keys be
    /// fetched again in the background (at most once per `min_refresh`).
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let shared = &self.running.shared;
        let result = shared.verifier().verify(token);
        if matches!(result, Err(VerifyError::UnknownKey)) {
            shared.unknown_kid.store(true, Ordering::Release);
            shared.wake.notify_one();
        }
        result
    }

    /// The verifier of the keys fetched last (it does not change when the keys do).
    pub fn verifier(&self) -> Arc<Verifier> {
        self.running.shared.verifier()
    }

    /// Why the last fetch failed, while the keys from the one before are still in use; `None`
    /// once a fetch succeeds again. For a health check or a log line.
    pub fn last_error(&self) -> Option<JwksError> {
        self.running
            .shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl std::fmt::Debug for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shared = &self.running.shared;
        f.debug_struct("JwksSource")
            .field("uri", &shared.uri.as_str())
            .field("verifier", &shared.verifier())
            .field("min_refresh", &shared.min_refresh)
            .field("max_refresh", &shared.max_refresh)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier for JwksSource {
    fn verify_token(&self, token: &str) -> Result<Claims, VerifyError> {
        self.verify(token)
    }
}

impl IntoTokenVerifier for JwksSource {
    fn into_token_verifier(self) -> Arc<dyn TokenVerifier> {
        Arc::new(self)
    }
}

impl JwksSourceBuilder {
    /// What the verifiers check besides the keys: issuer, audience, leeway (and any keys given
    /// here, which are kept beside the fetched ones). Default: [`Verifier::builder`] as it comes.
    pub fn verifier(mut self, template: VerifierBuilder) -> Self {
        self.template = template;
        self
    }

    /// The least time between two fetches (default [`DEFAULT_MIN_REFRESH`], at least
    /// [`LEAST_MIN_REFRESH`]): the shortest `max-age` honoured, and the interval of refetches
    /// for unknown kids and of retries.
    pub fn min_refresh(mut self, interval: Duration) -> Self {
        self.min_refresh = interval;
        self
    }

    /// The longest time keys are kept without a fetch, whatever `max-age` allows (default
    /// [`DEFAULT_MAX_REFRESH`]). Taken as `min_refresh` if smaller.
    pub fn max_refresh(mut self, interval: Duration) -> Self {
        self.max_refresh = interval;
        self
    }

    /// How long one fetch may take, connection included (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fetch the keys, and keep them fresh in a tokio task from then on. Fails when the first
    /// fetch does (with what to check), or outside a tokio runtime.
    pub async fn start(self) -> Result<JwksSource, JwksError> {
        let bad_uri = |reason: String| JwksError::BadUri {
            uri: self.uri.clone(),
            reason,
        };
        let uri = Url::parse(&self.uri).map_err(|e| bad_uri(e.to_string()))?;
        if !matches!(uri.scheme(), "http" | "https") {
            return Err(bad_uri(format!("its scheme is {}", uri.scheme())));
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| JwksError::NoRuntime)?;
        let client = Client::builder()
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            // One fetch per interval at most: a kept-alive connection would only sit idle.
            .pool_max_idle_per_host(0)
            .user_agent(concat!("latchkey-verify/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| JwksError::Unreachable {
                uri: self.uri.clone(),
                reason: with_causes(&e),
            })?;
        let min_refresh = self.min_refresh.max(LEAST_MIN_REFRESH);
        let mut shared = Shared {
            uri,
            template: self.template,
            client,
            min_refresh,
            max_refresh: self.max_refresh.max(min_refresh),
            current: RwLock::new(Arc::new(Verifier::builder().build())),
            last_error: Mutex::new(None),
            unknown_kid: AtomicBool::new(false),
            wake: Notify::new(),
        };
        let fetched_at = Instant::now();
        let (verifier, max_age) = shared.fetch().await?;
        shared.current = RwLock::new(Arc::new(verifier));
        let next = fetched_at + shared.refresh_after(max_age);
        let shared = Arc::new(shared);
        let task = runtime.spawn(refresh(shared.clone(), fetched_at, next));
        Ok(JwksSource {
            running: Arc::new(Running { shared, task }),
        })
    }
}

impl Shared {
    fn verifier(&self) -> Arc<Verifier> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How long the keys of an answer with `max_age` are kept: nine tenths of it, within the
    /// bounds.
    fn refresh_after(&self, max_age: Option<Duration>) -> Duration {
        let max_age = max_age.unwrap_or(DEFAULT_MAX_AGE);
        (max_age / 10 * 9).clamp(self.min_refresh, self.max_refresh)
    }

    /// One fetch: the verifier of the document's keys, and the answer's `max-age`.
    async fn fetch(&self) -> Result<(Verifier, Option<Duration>), JwksError> {
        let uri = || self.uri.to_string();
        let unreachable = |e: reqwest::Error| JwksError::Unreachable {
            uri: uri(),
            reason: with_causes(&e),
        };
        let mut response = self
            .client
            .get(self.uri.clone())
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(unreachable)?;
        if response.status() != StatusCode::OK {
            return Err(JwksError::Status {
                uri: uri(),
                status: response.status().as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|length| length > MAX_JWKS_LEN as u64)
        {
            return Err(JwksError::TooLarge { uri: uri() });
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_JWKS_LEN {
                return Err(JwksError::TooLarge { uri: uri() });
            }
            body.extend_from_slice(&chunk);
        }
        let keys = VerifyingKey::from_jwks_json(&body)
            .map_err(|reason| JwksError::Document { uri: uri(), reason })?;
        Ok((self.template.clone().keys(&keys).build(), max_age))
    }
}

/// The background task: fetch when the keys are due, or (at most once per `min_refresh`) when
/// a token named an unknown kid; keep the old keys when a fetch fails.
async fn refresh(shared: Arc<Shared>, mut last_fetch: Instant, mut next: Instant) {
    loop {
        let woken = tokio::time::timeout_at(next, shared.wake.notified()).await;
        if woken.is_ok() {
            if !shared.unknown_kid.load(Ordering::Acquire) {
                continue;
            }
            tokio::time::sleep_until(next.min(last_fetch + shared.min_refresh)).await;
        }
        shared.unknown_kid.store(false, Ordering::Release);
        last_fetch = Instant::now();
        let outcome = shared.fetch().await;
        let mut last_error = shared
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        next = match outcome {
            Ok((verifier, max_age)) => {
                *shared
                    .current
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Arc::new(verifier);
                *last_error = None;
                last_fetch + shared.refresh_after(max_age)
            }
            Err(error) => {
                *last_error = Some(error);
                last_fetch + shared.min_refresh
            }
        };
    }
}

/// The `max-age` of a `Cache-Control` header: zero for `no-cache` or `no-store`, `None` when it
/// says nothing about it (or is not readable).
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age = None;
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, argument) = directive.split_once('=').unwrap_or((directive, ""));
            let name = name.trim();
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                return Some(Duration::ZERO);
            }
            if name.eq_ignore_ascii_case("max-age") && max_age.is_none() {
                max_age = argument
                    .trim()
                    .trim_matches('"')
                    .parse::<u64>()
                    .ok()
                    .map(Duration::from_secs);
            }
        }
    }
    max_age
}

/// An error's message followed by its causes: reqwest's own says only "error sending request".
fn with_causes(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(CACHE_CONTROL, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(max_age(&headers(&[])), None);
        assert_eq!(max_age(&headers(&["public, max-age=600"])), secs(600));
        assert_eq!(
            max_age(&headers(&["Max-Age = 60 , must-revalidate"])),
            secs(60)
        );
        assert_eq!(max_age(&headers(&["max-age=\"90\""])), secs(90));
        assert_eq!(max_age(&headers(&["public", "max-age=30"])), secs(30));
        assert_eq!(max_age(&headers(&["max-age=30, no-cache"])), secs(0));
        assert_eq!(max_age(&headers(&["no-store"])), secs(0));
        assert_eq!(max_age(&headers(&["max-age=soon"])), None);
        assert_eq!(max_age(&headers(&["max-age=-1"])), None);
    }

    #[test]
    fn keys_are_kept_nine_tenths_of_max_age_within_the_bounds() {
        let shared = Shared {
            uri: Url::parse("http://127.0.0.1/").unwrap(),
            template: Verifier::builder(),
            client: Client::new(),
            min_refresh: Duration::from_secs(30),
            max_refresh: Duration::from_secs(3600),
            current: RwLock::new(Arc::new(Verifier::builder().build())),
            last_error: Mutex::new(None),
            unknown_kid: AtomicBool::new(false),
            wake: Notify::new(),
        };
        let after = |s: Option<u64>| shared.refresh_after(s.map(Duration::from_secs)).as_secs();
        assert_eq!(after(Some(600)), 540);
        assert_eq!(after(Some(0)), 30);
        assert_eq!(after(Some(20)), 30);
        assert_eq!(after(Some(86_400)), 3600);
        assert_eq!(after(None), 270);
    }
}
