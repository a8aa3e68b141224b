//! `[verify]`: how `/auth/verify` and `/auth/token-info` read tokens.

use serde::Deserialize;

/// `[verify]`: how `/auth/verify` and `/auth/token-info` read tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySettings {
    /// A cookie that may carry the token (after the `Authorization` header); unset: none, or
    /// the portal's session cookie when the portal is on.
    pub cookie_name: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway: u64,
    /// About how much memory the tokens kept after verification may take, in bytes, divided
    /// among the workers (each keeps its own); 0: none are kept.
    pub cache_max_bytes: u64,
}

impl Default for VerifySettings {
    fn default() -> Self {
        VerifySettings {
            cookie_name: None,
            leeway: latchkey_verify::DEFAULT_LEEWAY,
            cache_max_bytes: 16 * 1024 * 1024,
        }
    }
}

pub(super) fn validate_verify(v: &VerifySettings, problems: &mut Vec<String>) {
    if let Some(name) = &v.cookie_name {
        if !super::portal::is_cookie_name(name) {
            problems.push(format!(
                "verify.cookie_name = {name:?} is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
            ));
        }
    }
    if v.leeway > latchkey_verify::MAX_LEEWAY {
        problems.push(format!(
            "verify.leeway = {} is more than {} seconds; fix the clocks instead (NTP)",
            v.leeway,
            latchkey_verify::MAX_LEEWAY
        ));
    }
    if v.cache_max_bytes > 1 << 32 {
        problems.push(format!(
            "verify.cache_max_bytes = {} is more than 4 GiB; a few MiB hold thousands of tokens",
            v.cache_max_bytes
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    fn verification_settings_are_bounded() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.verify.cache_max_bytes, 16 * 1024 * 1024);
        assert_eq!(c.verify.leeway, 5);
        let p = problems(&format!(
            "{GOOD}\n[verify]\nleeway = 301\ncache_max_bytes = 8589934592\ncookie_name = \"a b\""
        ));
        assert_eq!(
            p,
            vec![
                "verify.cookie_name = \"a b\" is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)",
                "verify.leeway = 301 is more than 300 seconds; fix the clocks instead (NTP)",
                "verify.cache_max_bytes = 8589934592 is more than 4 GiB; a few MiB hold thousands of tokens",
            ]
        );
    }
}
