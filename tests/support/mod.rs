#![allow(dead_code)]
//! Shared helpers for the integration tests (`mod support;` in a test file).

pub mod browser;
pub mod caddy;
pub mod config;
pub mod keys;
pub mod nginx;
pub mod portal;
pub mod process;
pub mod redis;
pub mod served;
pub mod service;
pub mod slapd;
pub mod tls;
pub mod users;

pub const BASE_DN: &str = "dc=example,dc=org";
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
pub const SERVICE_DN: &str = "cn=latchkey,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service-password-1";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=org";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
