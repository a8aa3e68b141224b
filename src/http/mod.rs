//! The HTTP surface. Handlers translate requests into calls and results back into answers;
//! they hold no LDAP or token logic of their own.
//!
//! ```text
//! POST|GET /auth/request-token   request_token.rs
//! *        /auth/verify          verify.rs (forward-auth)
//! GET      /auth/token-info      verify.rs
//! GET      /healthz              health.rs
//! ```

pub mod basic;
pub mod error;
mod health;
pub mod request_token;
pub mod verify;

use std::sync::Arc;

use actix_web::web;

use crate::config::{AccessConfig, Config};
use crate::directory::{self as dir, Directory, DirectoryError, UserCache};
use crate::tokens::{self, TokenIssuer};
pub use error::ApiError;
use latchkey_verify::Verifier;
pub use request_token::RequestPolicy;

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
}

impl AppState {
    /// The states of `workers` HTTP workers: each has its own connection pools, so a request
    /// and its LDAP traffic stay on one thread; the user cache is shared.
    pub fn for_workers(config: &Config, workers: usize) -> Result<Vec<AppState>, DirectoryError> {
        let cache = dir::new_cache(&config.directory.cache);
        (0..workers)
            .map(|_| AppState::with_cache(config, workers, cache.clone()))
            .collect()
    }

    /// The state of a single worker (with its own cache).
    pub fn new(config: &Config, workers: usize) -> Result<AppState, DirectoryError> {
        AppState::with_cache(config, workers, dir::new_cache(&config.directory.cache))
    }

    fn with_cache(
        config: &Config,
        workers: usize,
        cache: Option<UserCache>,
    ) -> Result<AppState, DirectoryError> {
        Ok(AppState {
            directory: Directory::new(&config.directory, workers, cache)?,
            issuer: TokenIssuer::new(&config.tokens, &config.claims),
            access: config.access.clone(),
            policy: RequestPolicy {
                default_duration: config.tokens.default_duration,
                max_duration: config.tokens.max_duration,
                search_attributes: config.directory.users.search_attributes.clone(),
                search_mode: config.directory.search_mode,
            },
            verifier: tokens::verifier(&config.tokens, config.verify.leeway),
            cookie_name: config.verify.cookie_name.clone(),
        })
    }
}

/// Everything the app serves, for `App::configure`.
pub fn configure(state: Arc<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.app_data(web::Data::from(state))
            .service(
                web::scope("/auth")
                    .configure(request_token::configure)
                    .configure(verify::configure),
            )
            .configure(health::configure)
            .default_service(web::to(error::not_found));
    }
}
