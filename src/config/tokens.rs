//! `[tokens]`: who issues tokens, for how long, and the keys that sign and verify them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use latchkey_verify::{HmacAlgorithm, HmacKey, Secret};
use serde::Deserialize;

/// `[tokens]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub algorithm: HmacAlgorithm,
    #[serde(default = "default_duration")]
    pub default_duration: u64,
    #[serde(default = "max_duration")]
    pub max_duration: u64,
    /// How long after a password check (`auth_time`) a token may still be refreshed.
    #[serde(default = "max_session", with = "humantime_serde")]
    pub max_session: Duration,
    /// Which key signs; may be left out when there is only one key.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// Keys by id. All of them verify; `signing_key` signs.
    #[serde(default)]
    pub keys: BTreeMap<String, KeySettings>,
}

fn default_issuer() -> String {
    "latchkey".into()
}
fn default_duration() -> u64 {
    3600
}
fn max_duration() -> u64 {
    86400
}
fn max_session() -> Duration {
    Duration::from_secs(7 * 86400)
}

/// `[tokens.keys.<id>]`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_file", &self.secret_file)
            .finish()
    }
}

/// Validated `[tokens]`.
#[derive(Debug)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: Option<String>,
    pub algorithm: HmacAlgorithm,
    pub default_duration: u64,
    pub max_duration: u64,
    /// Seconds after `auth_time` a token may still be refreshed.
    pub max_session: u64,
    /// The key that signs.
    pub signing_key: HmacKey,
    /// Every key, the signing key included: all of them verify.
    pub keys: Vec<HmacKey>,
}

/// The longest token lifetime `tokens.max_duration` may allow, in seconds: a year.
const MAX_TOKEN_LIFETIME: u64 = 365 * 86_400;

/// How to make a secret, repeated wherever a secret is missing or weak.
const SECRET_HINT: &str = "make one with `openssl rand -base64 48` and put it in \
     tokens.keys.<id>.secret_file (or LATCHKEY__TOKENS__KEYS__<ID>__SECRET)";

pub(super) fn validate_tokens(t: TokenSettings, problems: &mut Vec<String>) -> Option<TokenConfig> {
    let before = problems.len();
    if t.issuer.trim().is_empty() {
        problems.push(
            "tokens.issuer is empty; name this Latchkey (e.g. \"latchkey\" or its URL)".into(),
        );
    }
    if t.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        problems.push("tokens.audience is empty; remove the key or name the audience".into());
    }
    if t.max_duration == 0 {
        problems.push("tokens.max_duration is 0; it must be at least 1 second".into());
    }
    if t.max_duration > MAX_TOKEN_LIFETIME {
        problems.push(format!(
            "tokens.max_duration = {} is more than {MAX_TOKEN_LIFETIME} seconds (a year); a token cannot be taken back before it expires",
            t.max_duration
        ));
    }
    if t.max_session.is_zero() {
        problems.push(
            "tokens.max_session is 0; it must be at least 1 second (the default is 7 days)".into(),
        );
    }
    if t.default_duration == 0 || t.default_duration > t.max_duration {
        problems.push(format!(
            "tokens.default_duration = {} must be from 1 to tokens.max_duration ({})",
            t.default_duration, t.max_duration
        ));
    }
    let mut keys = Vec::new();
    if t.keys.is_empty() {
        problems.push(format!("no token key is configured; {SECRET_HINT}"));
    }
    for (id, key) in &t.keys {
        let where_ = format!("tokens.keys.{id}");
        if !valid_key_id(id) {
            problems.push(format!(
                "{where_}: a key id may hold only letters, digits, '-', '_' and '.' (at most 64)"
            ));
        }
        let secret = match (&key.secret, &key.secret_file) {
            (Some(_), Some(_)) => Err(format!(
                "{where_} has both secret and secret_file; keep one"
            )),
            (None, None) => Err(format!("{where_} has no secret; {SECRET_HINT}")),
            (Some(s), None) => {
                Secret::new(s.as_bytes().to_vec()).map_err(|e| format!("{where_}: {e}"))
            }
            (None, Some(path)) => {
                Secret::from_file(path).map_err(|e| format!("{where_}.secret_file: {e}"))
            }
        };
        match secret {
            Ok(secret) => keys.push(HmacKey::new(id.clone(), secret)),
            Err(problem) => problems.push(problem),
        }
    }
    let signing_id = match (&t.signing_key, t.keys.len()) {
        (Some(id), _) => {
            if !t.keys.contains_key(id) {
                problems.push(format!(
                    "tokens.signing_key = {id:?} names no key in [tokens.keys] (there are: {})",
                    t.keys.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            Some(id.clone())
        }
        (None, 1) => t.keys.keys().next().cloned(),
        (None, 0) => None,
        (None, _) => {
            problems.push(
                "several token keys are configured; say which one signs with tokens.signing_key"
                    .into(),
            );
            None
        }
    };
    if problems.len() > before {
        return None;
    }
    let signing_key = keys
        .iter()
        .find(|k| Some(k.id()) == signing_id.as_deref())?
        .clone();
    Some(TokenConfig {
        issuer: t.issuer,
        audience: t.audience,
        algorithm: t.algorithm,
        default_duration: t.default_duration,
        max_duration: t.max_duration,
        max_session: t.max_session.as_secs(),
        signing_key,
        keys,
    })
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    fn a_short_secret_says_how_to_make_a_good_one() {
        let p = problems(&GOOD.replace("0123456789abcdef0123456789abcdef", "short"));
        assert_eq!(p.len(), 1);
        assert!(
            p[0].starts_with("tokens.keys.k1: the secret is 5 bytes long"),
            "{p:?}"
        );
        assert!(p[0].contains("openssl rand"), "{p:?}");
    }

    #[test]
    fn a_missing_key_says_how_to_make_one() {
        let toml = GOOD
            .replace("[tokens.keys.k1]", "[tokens]")
            .replace("secret = ", "issuer = ");
        let p = problems(&toml);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("no token key is configured"), "{p:?}");
    }

    #[test]
    fn durations_must_be_in_order() {
        let p = problems(&GOOD.replace(
            "[tokens.keys.k1]",
            "[tokens]\ndefault_duration = 90000\n[tokens.keys.k1]",
        ));
        assert_eq!(
            p,
            vec!["tokens.default_duration = 90000 must be from 1 to tokens.max_duration (86400)"]
        );
    }

    #[test]
    fn several_keys_need_a_signing_key() {
        let two = GOOD.replace(
            "[directory]",
            "[tokens.keys.k2]\nsecret = \"abcdefghijklmnopqrstuvwxyz0123456789\"\n[directory]",
        );
        let p = problems(&two);
        assert_eq!(
            p,
            vec!["several token keys are configured; say which one signs with tokens.signing_key"]
        );
        let chosen = parse(&format!("[tokens]\nsigning_key = \"k2\"\n{two}").replace(
            "[tokens]\nsigning_key = \"k2\"\n\n        [tokens.keys.k1]",
            "[tokens]\nsigning_key = \"k2\"\n[tokens.keys.k1]",
        ))
        .unwrap();
        assert_eq!(chosen.tokens.signing_key.id(), "k2");
        assert_eq!(chosen.tokens.keys.len(), 2);
    }
}
