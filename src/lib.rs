//! Latchkey: an LDAP token service.
//!
//! A client sends directory credentials with HTTP Basic to `POST /auth/request-token`;
//! Latchkey finds the user in the directory, binds as them, and answers with an HMAC-signed,
//! expiring JWT that services and reverse proxies verify without asking the directory again.
//!
//! Layers, each depending only on those before it:
//! - [`credentials`], [`config`]: values parsed and checked at the edge;
//! - [`policy`]: boolean expressions over group names (access rules, flag claims);
//! - [`directory`]: the only code that speaks LDAP;
//! - [`tokens`]: claims in, signed token out (with `latchkey-verify`);
//! - [`http`]: requests to calls, results to answers.

pub mod client_ip;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
