//! The connection to the shared store and its health: one pool of multiplexed Redis
//! connections per HTTP worker ([`SharedStore`]), one [`StoreHealth`] per process.
//!
//! Every operation goes through [`SharedStore::run`], which bounds it by
//! `state.redis.operation_timeout` (the pool's wait and the command together) and reports its
//! outcome to the health: a failure marks the store down, a success marks it up, and only a
//! change of state is logged. While the store is down, [`SharedStore::available`] lets one
//! caller a second try it again; everyone else goes straight to the local fallback.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_redis::redis::{self, IntoConnectionInfo, RedisError, RedisResult};
use deadpool_redis::{Connection, Manager, Pool, Runtime};

use crate::config::RedisConfig;
use crate::metrics::Metrics;

/// How often a store marked down is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Why the shared store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store refused, failed or could not be reached.
    #[error("the shared state store failed: {0}")]
    Failed(String),
    /// No answer within `state.redis.operation_timeout`.
    #[error("the shared state store did not answer within {0:?}")]
    Timeout(Duration),
    /// The settings cannot make a client (reported by `latchkey check` and at start).
    #[error("cannot set up the shared state store: {0}")]
    Setup(String),
    /// Marked down and not due for another try: use the local fallback.
    #[error("the shared state store is down")]
    Down,
}

impl From<RedisError> for StateError {
    fn from(e: RedisError) -> StateError {
        StateError::Failed(e.to_string())
    }
}

/// Whether the shared store answers, for every worker of the process: the metric, the log
/// line of each change, and when a store marked down may be tried again.
pub struct StoreHealth {
    up: AtomicBool,
    /// Milliseconds after `epoch` before which a store marked down is not tried.
    next_try_ms: AtomicU64,
    epoch: Instant,
    /// The URL without credentials, for the log lines.
    shown_url: String,
    metrics: Arc<Metrics>,
}

impl StoreHealth {
    /// A store presumed up until an operation says otherwise.
    pub fn new(shown_url: &str, metrics: Arc<Metrics>) -> StoreHealth {
        metrics.state_backend(true);
        StoreHealth {
            up: AtomicBool::new(true),
            next_try_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            shown_url: shown_url.to_owned(),
            metrics,
        }
    }

    /// Whether the last operation succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a caller may use the store now: always while it is up; while it is down, one
    /// caller per [`RETRY_INTERVAL`] (the one that moves the next try on).
    pub fn may_try(&self) -> bool {
        if self.is_up() {
            return true;
        }
        let now = self.now_ms();
        let due = self.next_try_ms.load(Ordering::Relaxed);
        now >= due
            && self
                .next_try_ms
                .compare_exchange(
                    due,
                    now.saturating_add(retry_ms()),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// An operation succeeded.
    pub fn succeeded(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            self.metrics.state_backend(true);
            tracing::info!(
                url = %self.shown_url,
                "shared state store reachable again: brute-force counts are shared again"
            );
        }
    }

    /// An operation failed with `error`.
    pub fn failed(&self, error: &StateError) {
        self.metrics.state_error();
        self.next_try_ms
            .store(self.now_ms().saturating_add(retry_ms()), Ordering::Relaxed);
        if self.up.swap(false, Ordering::Relaxed) {
            self.metrics.state_backend(false);
            tracing::warn!(
                url = %self.shown_url,
                error = %error,
                "shared state store unreachable: brute-force counts fall back to this replica's own until it is back"
            );
        }
    }
}

impl std::fmt::Debug for StoreHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHealth")
            .field("url", &self.shown_url)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

fn retry_ms() -> u64 {
    u64::try_from(RETRY_INTERVAL.as_millis()).unwrap_or(u64::MAX)
}

/// One worker's connections to the shared store. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SharedStore {
    pool: Pool,
    prefix: Arc<str>,
    operation_timeout: Duration,
    health: Arc<StoreHealth>,
}

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore")
            .field("url", &self.health.shown_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The connection settings of `config`, TLS files included: for a pool, or for a client of
/// its own (a subscription needs a dedicated connection).
pub fn connection_info(config: &RedisConfig) -> Result<redis::ConnectionInfo, StateError> {
    let setup = |e: RedisError| StateError::Setup(e.to_string());
    match &config.tls {
        None => config.url().into_connection_info().map_err(setup),
        Some(tls) => {
            let certificates = redis::TlsCertificates {
                client_tls: tls
                    .client
                    .as_ref()
                    .map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.to_vec(),
                    }),
                root_cert: tls.ca_pem.clone(),
            };
            let client =
                redis::Client::build_with_tls(config.url(), certificates).map_err(setup)?;
            Ok(client.get_connection_info().clone())
        }
    }
}

impl SharedStore {
    /// A pool for one worker; no connection opens until the first operation.
    pub fn new(config: &RedisConfig, health: Arc<StoreHealth>) -> Result<SharedStore, StateError> {
        let manager =
            Manager::new(connection_info(config)?).map_err(|e| StateError::Setup(e.to_string()))?;
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(config.connect_timeout))
            .wait_timeout(Some(config.operation_timeout))
            .recycle_timeout(Some(config.operation_timeout))
            .build()
            .map_err(|e| StateError::Setup(e.to_string()))?;
        Ok(SharedStore {
            pool,
            prefix: Arc::from(config.key_prefix.as_str()),
            operation_timeout: config.operation_timeout,
            health,
        })
    }

    /// `state.redis.key_prefix`, which every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The health shared by every worker.
    pub fn health(&self) -> &StoreHealth {
        &self.health
    }

    /// Whether to use the store now (see [`StoreHealth::may_try`]).
    pub fn available(&self) -> bool {
        self.health.may_try()
    }

    /// Runs `operation` on a pooled connection, within the operation timeout (taking a
    /// connection, opening one if needed within `connect_timeout`, included), and reports its
    /// outcome to the health.
    pub async fn run<T, F, Fut>(&self, operation: F) -> Result<T, StateError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let outcome = tokio::time::timeout(self.operation_timeout, async {
            let connection = self
                .pool
                .get()
                .await
                .map_err(|e| StateError::Failed(e.to_string()))?;
            operation(connection).await.map_err(StateError::from)
        })
        .await
        .unwrap_or(Err(StateError::Timeout(self.operation_timeout)));
        match &outcome {
            Ok(_) => self.health.succeeded(),
            Err(e) => self.health.failed(e),
        }
        outcome
    }

    /// PING, whatever the health says (for `/readyz` and `latchkey check`): how long the
    /// answer took.
    pub async fn ping(&self) -> Result<Duration, StateError> {
        let started = Instant::now();
        let pong: String = self
            .run(|mut c| async move { redis::cmd("PING").query_async(&mut c).await })
            .await?;
        if pong == "PONG" {
            Ok(started.elapsed())
        } else {
            let e = StateError::Failed(format!("PING answered {pong:?}"));
            self.health.failed(&e);
            Err(e)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_store_marked_down_is_tried_by_one_caller_a_second() {
        let health = StoreHealth::new("redis://h:6379", Arc::new(Metrics::new()));
        assert!(health.may_try() && health.may_try());
        health.failed(&StateError::Timeout(Duration::from_millis(1)));
        assert!(!health.is_up());
        assert!(!health.may_try(), "the next try is a second away");
        // Once due, exactly one caller gets the try.
        health.next_try_ms.store(0, Ordering::Relaxed);
        assert!(health.may_try());
        assert!(!health.may_try());
        health.succeeded();
        assert!(health.is_up() && health.may_try());
    }
}
