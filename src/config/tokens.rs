//! `[tokens]`: who issues tokens, for how long, and the keys that sign and verify them.
//!
//! Keys are of one kind, the kind `tokens.algorithm` names: HMAC secrets (`secret`,
//! `secret_file`) for HS256/384/512, or key pairs for EdDSA and ES256 (`private_key_file`, a
//! PKCS#8 PEM; `public_key_file`, an SPKI PEM, for a retired key that still verifies after its
//! private part was destroyed). A configuration mixing them is refused: the point of a key pair
//! is that no verifying service holds anything that can sign, and one secret beside it would
//! undo that. A private key file other users of the machine can read is refused too.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use latchkey_verify::{Algorithm, Secret, SigningKey, VerifyingKey};
use serde::Deserialize;

/// `[tokens]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(default = "default_issuer")]
    pub issuer: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default, deserialize_with = "algorithm_name")]
    pub algorithm: Algorithm,
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

/// `tokens.algorithm`, by its exact JWS name; a wrong name is answered with the right ones.
fn algorithm_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
    let name = String::deserialize(d)?;
    name.parse().map_err(serde::de::Error::custom)
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

/// `[tokens.keys.<id>]`: exactly one of the four.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// An HMAC secret, inline.
    #[serde(default)]
    pub secret: Option<String>,
    /// An HMAC secret, in a file.
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// An Ed25519 or P-256 private key, PKCS#8 PEM.
    #[serde(default)]
    pub private_key_file: Option<PathBuf>,
    /// An Ed25519 or P-256 public key, SPKI PEM: verifies, never signs.
    #[serde(default)]
    pub public_key_file: Option<PathBuf>,
}

impl fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySettings")
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_file", &self.secret_file)
            .field("private_key_file", &self.private_key_file)
            .field("public_key_file", &self.public_key_file)
            .finish()
    }
}

impl KeySettings {
    /// The settings given, by name.
    fn given(&self) -> Vec<&'static str> {
        [
            ("secret", self.secret.is_some()),
            ("secret_file", self.secret_file.is_some()),
            ("private_key_file", self.private_key_file.is_some()),
            ("public_key_file", self.public_key_file.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// Whether this key is an HMAC secret (false: a key pair, or nothing).
    fn is_secret(&self) -> bool {
        self.secret.is_some() || self.secret_file.is_some()
    }
}

/// Validated `[tokens]`.
#[derive(Debug)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: Option<String>,
    pub algorithm: Algorithm,
    pub default_duration: u64,
    pub max_duration: u64,
    /// Seconds after `auth_time` a token may still be refreshed.
    pub max_session: u64,
    /// The key that signs.
    pub signing_key: SigningKey,
    /// Every key, the signing key included: all of them verify.
    pub keys: Vec<VerifyingKey>,
}

impl TokenConfig {
    /// The public JWKs of every key that verifies, for `/.well-known/jwks.json`; empty when
    /// the keys are HMAC secrets, which are never published.
    pub fn public_jwks(&self) -> Vec<latchkey_verify::Jwk> {
        self.keys.iter().filter_map(VerifyingKey::to_jwk).collect()
    }
}

/// The longest token lifetime `tokens.max_duration` may allow, in seconds: a year.
const MAX_TOKEN_LIFETIME: u64 = 365 * 86_400;

/// How to make a secret, repeated wherever a secret is missing or weak.
const SECRET_HINT: &str = "make one with `openssl rand -base64 48` and put it in \
     tokens.keys.<id>.secret_file (or LATCHKEY__TOKENS__KEYS__<ID>__SECRET)";

/// How to make a key pair, repeated wherever a private key is missing.
fn key_pair_hint(algorithm: Algorithm) -> String {
    format!(
        "make one with `latchkey keygen --algorithm {algorithm} --out FILE` and name FILE in \
         tokens.keys.<id>.private_key_file"
    )
}

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
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut public_keys: Vec<VerifyingKey> = Vec::new();
    if t.keys.is_empty() {
        problems.push(if t.algorithm.is_hmac() {
            format!("no token key is configured; {SECRET_HINT}")
        } else {
            format!("no token key is configured; {}", key_pair_hint(t.algorithm))
        });
    }
    // Keys with one setting each, by kind (a key with several is a problem of its own).
    let single = || t.keys.iter().filter(|(_, k)| k.given().len() == 1);
    let secrets: Vec<&str> = single()
        .filter(|(_, k)| k.is_secret())
        .map(|(id, _)| id.as_str())
        .collect();
    let pairs: Vec<&str> = single()
        .filter(|(_, k)| !k.is_secret())
        .map(|(id, _)| id.as_str())
        .collect();
    let mixed = !secrets.is_empty() && !pairs.is_empty();
    if mixed {
        problems.push(format!(
            "tokens.keys mixes HMAC secrets ({}) with key pairs ({}); all keys are of the kind \
             tokens.algorithm names (now {:?}): secrets for HS256/HS384/HS512, \
             private_key_file/public_key_file for EdDSA/ES256 (a service that holds a secret can \
             mint tokens, which a key pair is there to prevent)",
            secrets.join(", "),
            pairs.join(", "),
            t.algorithm.name()
        ));
    }
    for (id, key) in &t.keys {
        let where_ = format!("tokens.keys.{id}");
        if !valid_key_id(id) {
            problems.push(format!(
                "{where_}: a key id may hold only letters, digits, '-', '_' and '.' (at most 64)"
            ));
        }
        let given = key.given();
        if given.len() > 1 {
            problems.push(format!("{where_} has {}; keep one", given.join(" and ")));
            continue;
        }
        if mixed {
            continue;
        }
        match (t.algorithm.is_hmac(), given.first().copied()) {
            (true, None) => problems.push(format!("{where_} has no secret; {SECRET_HINT}")),
            (false, None) => problems.push(format!(
                "{where_} has no private_key_file; {}",
                key_pair_hint(t.algorithm)
            )),
            (true, Some(file @ ("private_key_file" | "public_key_file"))) => {
                problems.push(format!(
                    "{where_}.{file} is a key pair's, but tokens.algorithm = {:?} signs with \
                     HMAC secrets; set tokens.algorithm = \"EdDSA\" or \"ES256\" to match the key",
                    t.algorithm.name()
                ))
            }
            (false, Some(secret @ ("secret" | "secret_file"))) => problems.push(format!(
                "{where_}.{secret} is an HMAC secret, but tokens.algorithm = {:?} signs with \
                 key pairs; {}",
                t.algorithm.name(),
                key_pair_hint(t.algorithm)
            )),
            (true, Some(_)) => {
                let secret = match (&key.secret, &key.secret_file) {
                    (Some(s), _) => {
                        Secret::new(s.as_bytes().to_vec()).map_err(|e| format!("{where_}: {e}"))
                    }
                    (None, Some(path)) => {
                        Secret::from_file(path).map_err(|e| format!("{where_}.secret_file: {e}"))
                    }
                    (None, None) => Err(format!("{where_} has no secret; {SECRET_HINT}")),
                };
                match secret.and_then(|secret| {
                    SigningKey::hmac(id.clone(), t.algorithm, secret)
                        .map_err(|e| format!("{where_}: {e}"))
                }) {
                    Ok(key) => keys.push(key),
                    Err(problem) => problems.push(problem),
                }
            }
            (false, Some(_)) => match load_key_pair(id, key, t.algorithm, &where_) {
                Ok(KeyPair::Private(key)) => keys.push(key),
                Ok(KeyPair::Public(key)) => public_keys.push(key),
                Err(problem) => problems.push(problem),
            },
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
    if let Some(id) = &signing_id {
        if public_keys.iter().any(|k| k.id() == id) {
            problems.push(format!(
                "tokens.keys.{id} has only a public_key_file, so it cannot sign; name a key with \
                 a private_key_file in tokens.signing_key ({})",
                key_pair_hint(t.algorithm)
            ));
        }
    }
    if problems.len() > before {
        return None;
    }
    let signing_key = keys
        .iter()
        .find(|k| Some(k.id()) == signing_id.as_deref())?
        .clone();
    let mut verifying: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    verifying.extend(public_keys);
    verifying.sort_by(|a, b| a.id().cmp(b.id()));
    Some(TokenConfig {
        issuer: t.issuer,
        audience: t.audience,
        algorithm: t.algorithm,
        default_duration: t.default_duration,
        max_duration: t.max_duration,
        max_session: t.max_session.as_secs(),
        signing_key,
        keys: verifying,
    })
}

/// A key pair's key, as configured: one that signs, or one that only verifies.
enum KeyPair {
    Private(SigningKey),
    Public(VerifyingKey),
}

/// Read the `private_key_file` or `public_key_file` of key `id`, checking that its type is
/// `algorithm` and that no other user can read a private key.
fn load_key_pair(
    id: &str,
    key: &KeySettings,
    algorithm: Algorithm,
    where_: &str,
) -> Result<KeyPair, String> {
    let (loaded, file, path) = match (&key.private_key_file, &key.public_key_file) {
        (Some(path), _) => {
            let key = SigningKey::from_pkcs8_pem_file(id, path)
                .map_err(|e| format!("{where_}.private_key_file: {e}"))?;
            // After reading, so that a file that is no private key is named as such first.
            check_private(path).map_err(|e| format!("{where_}.private_key_file: {e}"))?;
            (Ok(KeyPair::Private(key)), "private_key_file", path)
        }
        (None, Some(path)) => (
            VerifyingKey::from_public_key_pem_file(id, path).map(KeyPair::Public),
            "public_key_file",
            path,
        ),
        (None, None) => {
            return Err(format!(
                "{where_} has no private_key_file; {}",
                key_pair_hint(algorithm)
            ))
        }
    };
    let loaded = loaded.map_err(|e| format!("{where_}.{file}: {e}"))?;
    let found = match &loaded {
        KeyPair::Private(k) => k.algorithm(),
        KeyPair::Public(k) => k.algorithm(),
    };
    if found != algorithm {
        return Err(format!(
            "{where_}.{file}: {} is {} key ({found}), but tokens.algorithm = {:?}; every key \
             must be of that algorithm ({})",
            path.display(),
            key_kind(found),
            algorithm.name(),
            key_pair_hint(algorithm)
        ));
    }
    Ok(loaded)
}

/// "an Ed25519" or "a P-256", for messages.
fn key_kind(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::EdDSA => "an Ed25519",
        Algorithm::ES256 => "a P-256",
        _ => "an HMAC",
    }
}

/// Refuse a private key file that every user of the machine may read (group access is left
/// to the operator: a `latchkey` group, or Kubernetes' `fsGroup`).
#[cfg(unix)]
fn check_private(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o004 != 0 {
        return Err(format!(
            "{} can be read by every user of this machine (mode {:04o}); make it private with \
             `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &std::path::Path) -> Result<(), String> {
    Ok(())
}

/// Whether `id` can name a key: letters, digits, '-', '_' and '.', at most 64.
pub fn valid_key_id(id: &str) -> bool {
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
    fn a_secret_beside_a_key_pair_is_refused_naming_both() {
        let mixed = GOOD.replace(
            "[directory]",
            "[tokens.keys.k2]\nprivate_key_file = \"/nonexistent/k2.pem\"\n[directory]",
        );
        assert_eq!(
            problems(&mixed),
            vec![
                "tokens.keys mixes HMAC secrets (k1) with key pairs (k2); all keys are of the kind \
                 tokens.algorithm names (now \"HS256\"): secrets for HS256/HS384/HS512, \
                 private_key_file/public_key_file for EdDSA/ES256 (a service that holds a secret \
                 can mint tokens, which a key pair is there to prevent)",
                "several token keys are configured; say which one signs with tokens.signing_key"
            ]
        );
        let both = GOOD.replace(
            "[directory]",
            "private_key_file = \"/nonexistent/k1.pem\"\n[directory]",
        );
        assert_eq!(
            problems(&both),
            vec!["tokens.keys.k1 has secret and private_key_file; keep one"]
        );
        let none = GOOD
            .replace(
                "[tokens.keys.k1]",
                "[tokens]\nalgorithm = \"EdDSA\"\n[tokens.keys.k1]",
            )
            .replace("secret = \"0123456789abcdef0123456789abcdef\"", "");
        assert_eq!(
            problems(&none),
            vec![
                "tokens.keys.k1 has no private_key_file; make one with `latchkey keygen \
                 --algorithm EdDSA --out FILE` and name FILE in tokens.keys.<id>.private_key_file"
            ]
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
