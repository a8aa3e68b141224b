//! Latchkey: an LDAP token service.
//!
//! A client sends directory credentials with HTTP Basic to `POST /auth/request-token`;
//! Latchkey finds the user in the directory, binds as them, and answers with a signed (HMAC,
//! EdDSA or ES256), expiring JWT that services and reverse proxies verify without asking the
//! directory again.
//!
//! Layers, each depending only on those before it (ARCHITECTURE.md draws them):
//! - [`ldap_syntax`], [`group_expr`]: DNs, filters, server addresses and group expressions as
//!   text; pure, and importing nothing of the crate;
//! - [`credentials`], [`identity`]: a login and a password parsed at the edge; who a login
//!   proved to be;
//! - [`config`]: typed settings, loaded and checked once;
//! - [`client_ip`], [`throttle`], [`metrics`], [`telemetry`]: the trusted client address,
//!   brute-force counts, metrics, log set-up;
//! - [`state`]: the store replicas share (Redis), its health, and the brute-force counts on
//!   it, with [`throttle`] as the fallback;
//! - [`directory`]: the only code that speaks LDAP;
//! - [`tokens`]: an identity in, a signed token out (with `latchkey-verify`);
//! - [`login`]: a whole login, from credentials to an identity or a refusal;
//! - [`http`]: requests to calls, results to answers.

pub mod client_ip;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod group_expr;
pub mod http;
pub mod identity;
pub mod ldap_syntax;
pub mod login;
pub mod metrics;
pub mod revocation;
pub mod state;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
