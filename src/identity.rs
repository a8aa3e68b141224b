//! Who a login proved to be: the [`Identity`] the directory describes, which claims, access
//! rules and pages are computed from. Plain data: it knows nothing of LDAP or HTTP.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A user as the directory knows them, after a successful login (or, for `check --user`, a
/// lookup without a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The entry's DN.
    pub dn: String,
    /// The username attribute's value as stored: the token's subject.
    pub username: String,
    /// Display name, when configured and present.
    pub name: Option<String>,
    /// Email address, when configured and present.
    pub email: Option<String>,
    /// Names of the user's groups (all of them, before `[claims]` filters), sorted, each once.
    pub groups: Vec<String>,
    /// Values of the further attributes read for claims, by attribute name as configured.
    pub attributes: BTreeMap<String, Vec<String>>,
}

/// The `entry` claim: which directory entry a token was issued for, without writing its DN
/// into the token: the first 128 bits of SHA-256 over the DN in lower case, in hex. DNs compare
/// without regard to case, as the brute-force counts key accounts.
pub fn entry_fingerprint(dn: &str) -> String {
    Sha256::digest(dn.to_lowercase().as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}
