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

/// An attribute description: a name (letter, then letters, digits, '-') or a numeric OID.
pub fn is_attribute_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {
            s.len() <= 64 && chars.all(|c| c.is_ascii_alphanumeric() || c == '-')
        }
        Some(c) if c.is_ascii_digit() => s
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names() {
        for good in ["uid", "mail", "sAMAccountName", "x-custom-1", "2.5.4.3"] {
            assert!(is_attribute_name(good), "{good}");
        }
        for bad in ["", "1uid", "uid=", "u id", "uid)(", "*", "2.5..4", "ä"] {
            assert!(!is_attribute_name(bad), "{bad}");
        }
    }
}
