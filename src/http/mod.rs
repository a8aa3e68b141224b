//! The HTTP surface. Handlers translate requests into calls and results back into answers;
//! they hold no LDAP or token logic of their own.
//!
//! ```text
//! POST|GET /auth/request-token   request_token.rs
//! *        /auth/verify          verify.rs (forward-auth)
//! GET      /auth/token-info      verify.rs
//! GET      /healthz              health.rs
//! GET      /readyz, /metrics     ops.rs
//! ```
//!
//! Every answer passes the gate first (`gate.rs`): it refuses requests whose headers or
//! declared body exceed the configured limits, and counts answers by route and status for
//! `/metrics`. Every request is logged in a span built by `span.rs`.

pub mod basic;
pub mod error;
pub mod gate;
mod health;
pub mod ops;
pub mod request_token;
pub mod span;
pub mod verified;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::Condition;
use actix_web::{web, App};
use tracing_actix_web::TracingLogger;

use crate::client_ip::TrustedProxies;
use crate::config::{AccessConfig, Config};
use crate::directory::{self as dir, Directory, DirectoryError};
use crate::metrics::Metrics;
use crate::throttle::{Throttle, ThrottleConfig};
use crate::tokens::{self, TokenIssuer};
pub use error::ApiError;
use latchkey_verify::Verifier;
pub use request_token::RequestPolicy;

/// What the workers share: caches, counters and health, created once per process.
#[derive(Clone)]
pub struct SharedState {
    pub directory: dir::Shared,
    pub metrics: Arc<Metrics>,
    pub throttle: Arc<Throttle>,
    pub proxies: Arc<TrustedProxies>,
    pub readiness: Arc<ops::Readiness>,
    /// A failed login is answered no sooner than this.
    pub min_failure_time: Duration,
    /// How long a login waits for a place in the brute-force counts while the attempts in
    /// flight hold them all: about the longest one attempt can take (a pooled connection,
    /// a search, a bind).
    pub busy_patience: Duration,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

impl SharedState {
    pub fn new(config: &Config) -> SharedState {
        let metrics = Arc::new(Metrics::new());
        let b = &config.brute_force;
        SharedState {
            directory: dir::Shared::new(&config.directory, Arc::clone(&metrics)),
            metrics,
            throttle: Arc::new(Throttle::new(ThrottleConfig {
                max_failures_per_login: b.max_failures_per_login,
                max_failures_per_address: b.max_failures_per_address,
                window: b.window,
                ban: b.ban,
                max_tracked: b.max_tracked,
            })),
            proxies: Arc::new(config.server.trusted_proxies.clone()),
            readiness: Arc::new(ops::Readiness::new(&config.directory)),
            min_failure_time: b.min_failure_time,
            busy_patience: config
                .directory
                .pool
                .wait_timeout
                .saturating_add(config.directory.operation_timeout.saturating_mul(2)),
            max_header_bytes: config.server.max_header_bytes,
            max_body_bytes: config.server.max_body_bytes,
        }
    }
}

/// What every handler of one worker shares.
pub struct AppState {
    pub directory: Directory,
    pub issuer: TokenIssuer,
    pub policy: RequestPolicy,
    /// Who may have a token at all (`[access]`).
    pub access: AccessConfig,
    pub verifier: Verifier,
    /// The cookie a token may also come in, for forward-auth.
    pub cookie_name: Option<String>,
    /// This worker's share of `verify.cache_max_bytes`, for its cache of verified tokens.
    pub verified_cache_bytes: u64,
    pub shared: SharedState,
}

impl AppState {
    /// The states of `workers` HTTP workers: each has its own connection pools, so a request
    /// and its LDAP traffic stay on one thread; everything in [`SharedState`] is shared.
    pub fn for_workers(config: &Config, workers: usize) -> Result<Vec<AppState>, DirectoryError> {
        let shared = SharedState::new(config);
        (0..workers)
            .map(|_| AppState::with_shared(config, workers, shared.clone()))
            .collect()
    }

    /// The state of a single worker, with its own shared state.
    pub fn new(config: &Config, workers: usize) -> Result<AppState, DirectoryError> {
        AppState::with_shared(config, workers, SharedState::new(config))
    }

    fn with_shared(
        config: &Config,
        workers: usize,
        shared: SharedState,
    ) -> Result<AppState, DirectoryError> {
        Ok(AppState {
            directory: Directory::new(&config.directory, workers, &shared.directory)?,
            issuer: TokenIssuer::new(&config.tokens, &config.claims),
            access: config.access.clone(),
            policy: RequestPolicy::new(config),
            verifier: tokens::verifier(&config.tokens, config.verify.leeway),
            cookie_name: config.verify.cookie_name.clone(),
            verified_cache_bytes: config.verify.cache_max_bytes
                / u64::try_from(workers.max(1)).unwrap_or(u64::MAX),
            shared,
        })
    }
}

/// The whole app of one worker: the request span layer (left out when `info` logging is off,
/// since its span would be disabled), the [`gate::Gate`] (limits and request counts), and every
/// route, registered flat so that a request is matched once. Called on the worker's thread,
/// which keeps its own cache of verified tokens.
pub fn app(
    state: Arc<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let shared = &state.shared;
    let gate = gate::Gate::new(
        shared.max_header_bytes,
        shared.max_body_bytes,
        Arc::clone(&shared.metrics),
    );
    let spans = Condition::new(
        tracing::level_enabled!(tracing::Level::INFO),
        TracingLogger::<span::RequestSpan>::new(),
    );
    App::new()
        .app_data(web::Data::from(Arc::clone(&state)))
        .wrap(gate)
        .wrap(spans)
        .configure(request_token::configure)
        .configure(|cfg| verify::configure(cfg, &state))
        .configure(health::configure)
        .configure(ops::configure)
        .default_service(web::to(error::not_found))
}
