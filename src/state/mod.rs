//! State that every replica shares: the connection to the shared store and its health
//! ([`store`]), and the brute-force counts kept there ([`brute_force`]).
//!
//! # The outage rules
//!
//! The shared store (Redis or Valkey) is an accelerator of safety, never a single point of
//! failure:
//!
//! * while it answers, every replica counts failed logins in it, so N replicas together allow
//!   exactly the configured number of failures;
//! * when an operation fails or takes longer than `state.redis.operation_timeout`, the store
//!   is marked down (logged once, `latchkey_state_backend_up 0`, `/readyz` says `degraded`)
//!   and logins go on with this replica's own counts ([`crate::throttle`]), as with the
//!   memory backend;
//! * while it is down, at most one operation a second tries it again (a login, a readiness
//!   probe), so a dead store costs logins nothing; the first that succeeds marks it up again
//!   (logged once), and shared counting resumes without a restart.
//!
//! What a replica counted locally during an outage stays local: it is not copied to the store
//! when it comes back (the local counts keep applying on that replica until they expire).
//!
//! This module never speaks LDAP or HTTP, and never logs the store's URL with its password.

pub mod brute_force;
pub mod store;

pub use brute_force::{BruteForce, Counted};
pub use store::{SharedStore, StateError, StoreHealth};
