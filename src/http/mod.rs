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
//! Every answer passes two layers first: one refuses requests whose headers or declared body
//! exceed the configured limits, one counts answers by route and status for `/metrics`.

pub mod basic;
pub mod error;
mod health;
pub mod ops;
pub mod request_token;
pub mod verified;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, ResponseError};

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
    /// Tokens that passed verification, for forward-auth.
    pub verified: verified::VerifiedTokens,
    /// A failed login is answered no sooner than this.
    pub min_failure_time: Duration,
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
            verified: verified::VerifiedTokens::new(config.verify.cache_max_bytes),
            min_failure_time: b.min_failure_time,
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
            shared,
        })
    }
}

/// Everything the app serves, for `App::configure`.
pub fn configure(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::from(state)).service(
            web::scope("")
                .wrap(from_fn(limits))
                .wrap(from_fn(count))
                .service(
                    web::scope("/auth")
                        .configure(request_token::configure)
                        .configure(verify::configure)
                        .default_service(web::to(error::not_found)),
                )
                .configure(health::configure)
                .configure(ops::configure)
                .default_service(web::to(error::not_found)),
        );
    }
}

/// Count every answer by route pattern and status.
async fn count(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        state
            .shared
            .metrics
            .http_request(&route, response.status().as_u16());
    }
    Ok(response)
}

/// Refuse oversized headers (431) and declared bodies (413) before any handler runs.
async fn limits(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>() {
        let shared = &state.shared;
        let header_bytes: usize = req.path().len()
            + req.query_string().len()
            + req
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>();
        if header_bytes > shared.max_header_bytes {
            let response = ApiError::HeadersTooLarge(shared.max_header_bytes).error_response();
            return Ok(req.into_response(response).map_into_right_body());
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > shared.max_body_bytes) {
            let response = ApiError::BodyTooLarge(shared.max_body_bytes).error_response();
            return Ok(req.into_response(response).map_into_right_body());
        }
    }
    Ok(next.call(req).await?.map_into_left_body())
}
