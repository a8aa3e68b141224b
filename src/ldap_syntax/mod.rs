//! LDAP syntax, and nothing else: the string forms of distinguished names (RFC 4514), search
//! filters built around escaped values (RFC 4515), and server addresses.
//!
//! Everything here is a pure function of its arguments: no I/O, no configuration, no state.
//! This module imports nothing else of the crate, so that both `config` (checking what an
//! operator wrote) and `directory` (building what goes on the wire) can use it without
//! depending on each other.

pub mod dn;
pub mod filter;
pub mod server_url;

pub use server_url::{Scheme, ServerUrl};
