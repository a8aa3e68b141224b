//! Latchkey: an LDAP token service.
//!
//! A client sends directory credentials with HTTP Basic to `POST /auth/request-token`;
//! Latchkey finds the user in the directory, binds as them, and answers with an HMAC-signed,
//! expiring JWT that services and reverse proxies verify without asking the directory again.
//!
//! Layers, each depending only on those before it:
//! - [`ldap_syntax`]: DNs, filters and server addresses as text; imports nothing of the crate;
//! - [`group_expr`]: boolean expressions over group names (access rules, flag claims);
//! - [`credentials`], [`client_ip`], [`config`]: values parsed and checked at the edge;
//! - [`directory`]: the only code that speaks LDAP;
//! - [`tokens`]: claims in, signed token out (with `latchkey-verify`);
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
pub mod telemetry;
pub mod throttle;
pub mod tokens;
