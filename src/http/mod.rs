//! The HTTP surface. Handlers translate requests into calls and results back into answers;
//! they hold no LDAP or token logic of their own.
//!
//! ```text
//! POST|GET /auth/request-token   request_token.rs
//! *        /auth/verify          verify.rs (forward-auth)
//! GET      /auth/token-info      verify.rs
//! POST     /auth/refresh, /auth/logout, /auth/revoke
//!                                sessions.rs (refresh, sign-out, revocation)
//! GET|POST /auth/login, GET /auth/logout, GET /auth/portal.css
//!                                portal/ (the sign-in pages, when `portal.url` is set)
//! GET      /healthz              health.rs
//! GET      /readyz, /metrics     ops.rs
//! GET      /.well-known/jwks.json, /.well-known/latchkey
//!                                well_known.rs (public keys, discovery)
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
pub mod portal;
pub mod redirect;
pub mod request_token;
pub mod sessions;
pub mod span;
pub mod verified;
pub mod verify;
pub mod well_known;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::Condition;
use actix_web::{web, App};
use tracing_actix_web::TracingLogger;

use crate::client_ip::TrustedProxies;
use crate::config::{Config, StateConfig};
use crate::directory::{self as dir, Directory, DirectoryError};
use crate::group_expr::Expr;
use crate::login::Logins;
use crate::metrics::Metrics;
use crate::revocation::RevocationStore;
use crate::state::{BruteForce, SharedStore, StateError, StoreHealth};
use crate::throttle::{Throttle, ThrottleConfig};
use crate::tokens::{self, TokenIssuer};
pub use error::ApiError;
use latchkey_verify::Verifier;
pub use request_token::Durations;

/// What the workers share: caches, counters and health, created once per process.
#[derive(Clone)]
pub struct ProcessState {
    pub directory: dir::SharedDirectory,
    pub metrics: Arc<Metrics>,
    /// This process's brute-force counts: the only ones with the memory backend, the fallback
    /// with Redis.
    pub throttle: Arc<Throttle>,
    /// Whether the shared store answers; None with the memory backend.
    pub state_health: Option<Arc<StoreHealth>>,
    pub proxies: Arc<TrustedProxies>,
    pub readiness: Arc<ops::Readiness>,
    /// Revoked tokens: written by sign-outs and `/auth/revoke`, read by every verification.
    pub revocations: RevocationStore,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    /// The bodies of `/.well-known/jwks.json` and `/.well-known/latchkey`.
    pub well_known: Arc<well_known::WellKnown>,
}

impl ProcessState {
    pub fn new(config: &Config) -> Result<ProcessState, StateError> {
        let metrics = Arc::new(Metrics::new());
        let b = &config.brute_force;
        let state_health = match &config.state {
            StateConfig::Memory => None,
            StateConfig::Redis(redis) => Some(Arc::new(StoreHealth::new(
                redis.display_url(),
                Arc::clone(&metrics),
            ))),
        };
        Ok(ProcessState {
            directory: dir::SharedDirectory::new(&config.directory, Arc::clone(&metrics)),
            metrics,
            throttle: Arc::new(Throttle::new(ThrottleConfig {
                max_failures_per_login: b.max_failures_per_login,
                max_failures_per_address: b.max_failures_per_address,
                window: b.window,
                ban: b.ban,
                max_tracked: b.max_tracked,
            })),
            state_health,
            proxies: Arc::new(config.server.trusted_proxies.clone()),
            readiness: Arc::new(ops::Readiness::new(&config.directory)),
            revocations: RevocationStore::new(config)?,
            max_header_bytes: config.server.max_header_bytes,
            max_body_bytes: config.server.max_body_bytes,
            well_known: Arc::new(well_known::WellKnown::new(config)),
        })
    }
}

/// Why the app state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What every handler of one worker shares.
pub struct AppState {
    /// Logins on this worker's directory connections.
    pub logins: Logins,
    pub issuer: TokenIssuer,
    /// The token durations a request may ask for.
    pub durations: Durations,
    pub verifier: Verifier,
    /// The cookie a token may also come in, for forward-auth: `verify.cookie_name`, else the
    /// portal's session cookie when the portal is on.
    pub cookie_name: Option<String>,
    /// The sign-in pages, when `portal.url` is set.
    pub portal: Option<portal::Portal>,
    /// The origin of the service's public address (`portal.url`, else `server.public_url`),
    /// as browsers write it in `Origin`; see [`sessions`] for what it guards.
    pub own_origin: Option<String>,
    /// `admin.require`: the groups a token needs for `/auth/revoke` (None: no such route).
    pub admin: Option<Expr>,
    /// This worker's share of `verify.cache_max_bytes`, for its cache of verified tokens.
    pub verified_cache_bytes: u64,
    /// This worker's connections to the shared store; None with the memory backend.
    pub store: Option<SharedStore>,
    pub process: ProcessState,
}

impl AppState {
    /// The states of `workers` HTTP workers: each has its own connection pools, so a request
    /// and its LDAP traffic stay on one thread; everything in [`ProcessState`] is shared.
    pub fn for_workers(config: &Config, workers: usize) -> Result<Vec<AppState>, StartError> {
        let process = ProcessState::new(config)?;
        (0..workers)
            .map(|_| AppState::with_process(config, workers, process.clone()))
            .collect()
    }

    /// The state of a single worker, with a process state of its own.
    pub fn new(config: &Config, workers: usize) -> Result<AppState, StartError> {
        AppState::with_process(config, workers, ProcessState::new(config)?)
    }

    fn with_process(
        config: &Config,
        workers: usize,
        process: ProcessState,
    ) -> Result<AppState, StartError> {
        let directory = Directory::new(&config.directory, workers, &process.directory)?;
        let store = match (&config.state, &process.state_health) {
            (StateConfig::Redis(redis), Some(health)) => {
                Some(SharedStore::new(redis, Arc::clone(health))?)
            }
            _ => None,
        };
        let counts = match &store {
            Some(store) => BruteForce::shared(
                Arc::clone(&process.throttle),
                store.clone(),
                Logins::longest_attempt(config),
            ),
            None => BruteForce::local(Arc::clone(&process.throttle)),
        };
        Ok(AppState {
            logins: Logins::new(config, directory, counts, Arc::clone(&process.metrics)),
            issuer: TokenIssuer::new(&config.tokens, &config.claims),
            durations: Durations::new(config),
            verifier: tokens::verifier(
                &config.tokens,
                config.verify.leeway,
                Some(process.revocations.source()),
            ),
            cookie_name: config.verify.cookie_name.clone().or_else(|| {
                config
                    .portal
                    .as_ref()
                    .map(|portal| portal.cookie_name.clone())
            }),
            portal: config
                .portal
                .as_ref()
                .map(|portal| portal::Portal::new(portal, &config.tokens)),
            own_origin: config
                .public_base_url()
                .map(|url| url.origin().ascii_serialization()),
            admin: config.admin.require.clone(),
            verified_cache_bytes: config.verify.cache_max_bytes
                / u64::try_from(workers.max(1)).unwrap_or(u64::MAX),
            store,
            process,
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
    let process = &state.process;
    let gate = gate::Gate::new(
        process.max_header_bytes,
        process.max_body_bytes,
        Arc::clone(&process.metrics),
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
        .configure(well_known::configure)
        .configure(|cfg| portal::configure(cfg, &state))
        .configure(|cfg| sessions::configure(cfg, &state))
        .default_service(web::to(error::not_found))
}
