//! The claims of a Latchkey token.

use serde::{Deserialize, Serialize};

/// What a Latchkey token says about its holder.
///
/// Times are seconds since the Unix epoch. `sub` is the directory's canonical username (as
/// stored in the entry), never what the client typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the Latchkey instance that signed the token.
    pub iss: String,
    /// Subject: the canonical username from the directory entry.
    pub sub: String,
    /// Audience, when the issuer is configured with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Not valid before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// Unique token id (128 random bits, hex).
    pub jti: String,
    /// Display name, when the entry has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address, when the entry has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Group names, when group lookup is configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

impl Claims {
    /// Claims for `sub` issued by `iss`, valid from `iat` until `exp`, with an empty `jti`.
    pub fn new(iss: impl Into<String>, sub: impl Into<String>, iat: i64, exp: i64) -> Self {
        Claims {
            iss: iss.into(),
            sub: sub.into(),
            aud: None,
            iat,
            nbf: iat,
            exp,
            jti: String::new(),
            name: None,
            email: None,
            groups: Vec::new(),
        }
    }
}
