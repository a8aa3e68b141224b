//! What the verifier crate's integration tests share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod key_server;
