//! Typed settings: one TOML file, every key overridable by `LATCHKEY__SECTION__KEY`, secrets
//! also readable from files. Everything is validated at start, and every problem is reported
//! at once with the key it concerns and what to do about it.
//!
//! Two layers: [`Settings`] is what serde reads (unknown keys refused); [`Config`] is what the
//! service runs on, built by [`Settings::validate`], with secrets loaded and values checked, so
//! that nothing downstream has to re-check them.
//!
//! This file holds the loading (file, environment, the collected [`ConfigError`]) and what the
//! sections share. Each section has a file of its own with its settings, their defaults, its
//! validated form and its checks: `server`, `log`, `tokens`, `verify`, `brute_force`,
//! `directory` (with `users`, `groups` and the cache, `tls`, and the `presets` they start
//! from), `claims` (with `[access]`), `portal` (the sign-in pages), `admin` (who may revoke
//! tokens), `state` (where replicas share their counts); `durations` bounds the
//! durations of them all. Nothing here imports the directory, HTTP or token code: LDAP syntax
//! comes from [`crate::ldap_syntax`].

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use zeroize::Zeroizing;

mod admin;
mod brute_force;
mod claims;
mod directory;
mod durations;
mod groups;
mod log;
mod portal;
mod presets;
mod server;
mod state;
mod tls;
mod tokens;
mod users;
mod verify;

pub use admin::{AdminConfig, AdminSettings};
pub use brute_force::BruteForceSettings;
pub use claims::{
    validate_claims, AccessConfig, AccessSettings, ClaimConfig, ClaimSettings, ExtraClaim,
    ExtraClaimSettings, GroupClaimFilter, Refusal,
};
pub use directory::{
    DirectoryConfig, DirectorySettings, Failover, PoolSettings, SearchMode, ServiceAccount,
};
pub use groups::{CacheSettings, GroupBase, GroupConfig, GroupSettings, Nesting, Strategy};
pub use log::{LogFormat, LogSettings};
pub use portal::{PortalConfig, PortalSettings};
pub use presets::{AccountStatus, Preset, StrategyKind};
pub use server::{ServerConfig, ServerSettings};
pub use state::{
    Backend, RedisConfig, RedisSettings, RedisTls, RedisTlsSettings, StateConfig, StateSettings,
};
pub use tls::{Encryption, TlsConfig, TlsSettings, TlsVersion, Trust, INSECURE_WARNING};
pub use tokens::{valid_key_id, KeySettings, TokenConfig, TokenSettings};
pub use users::{SearchScope, UserConfig, UserLocator, UserSettings};
pub use verify::VerifySettings;

/// The environment variable prefix for overrides: `LATCHKEY__DIRECTORY__URLS=ldap://a,ldap://b`.
pub const ENV_PREFIX: &str = "LATCHKEY";

/// A configuration that cannot be used, with every problem found.
#[derive(Debug)]
pub struct ConfigError {
    source: String,
    problems: Vec<String>,
}

impl ConfigError {
    fn one(source: &str, problem: impl Into<String>) -> Self {
        ConfigError {
            source: source.to_owned(),
            problems: vec![problem.into()],
        }
    }

    /// The problems, one sentence each.
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "{}: {one}", self.source),
            many => {
                write!(f, "{}: {} problems:", self.source, many.len())?;
                for p in many {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------------------------
// What the file says
// ---------------------------------------------------------------------------------------------

/// The configuration file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub log: LogSettings,
    pub tokens: TokenSettings,
    #[serde(default)]
    pub verify: VerifySettings,
    pub directory: DirectorySettings,
    #[serde(default)]
    pub brute_force: BruteForceSettings,
    #[serde(default)]
    pub claims: ClaimSettings,
    #[serde(default)]
    pub access: AccessSettings,
    #[serde(default)]
    pub portal: PortalSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub state: StateSettings,
}

// ---------------------------------------------------------------------------------------------
// What the service runs on
// ---------------------------------------------------------------------------------------------

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerConfig,
    pub brute_force: BruteForceSettings,
    pub log: LogSettings,
    pub tokens: TokenConfig,
    pub verify: VerifySettings,
    pub directory: DirectoryConfig,
    pub claims: ClaimConfig,
    pub access: AccessConfig,
    /// The sign-in pages; None: off.
    pub portal: Option<PortalConfig>,
    /// Who may revoke other people's tokens.
    pub admin: AdminConfig,
    /// Where the state replicas share lives.
    pub state: StateConfig,
    /// What works but deserves an operator's attention (such as `insecure_skip_verify`):
    /// logged by `serve` at start, printed by `check`.
    pub warnings: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------

/// Keys whose environment values are comma-separated lists.
const LIST_KEYS: &[&str] = &[
    "directory.urls",
    "directory.users.search_attributes",
    "directory.users.login_attributes",
    "directory.users.strip_domains",
    "directory.groups.base_dns",
    "directory.groups.member_attributes",
    "claims.groups_allow",
    "server.trusted_proxies",
    "portal.allowed_redirect_hosts",
];

impl Settings {
    /// Read `path` (when given) and the `LATCHKEY__*` environment.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let source = path.map_or_else(
            || "configuration (environment only)".to_owned(),
            |p| p.display().to_string(),
        );
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            if !path.is_file() {
                return Err(ConfigError::one(
                    &source,
                    "the configuration file does not exist or is not a file",
                ));
            }
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let mut env = config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",");
        for key in LIST_KEYS {
            env = env.with_list_parse_key(key);
        }
        let loaded = builder
            .add_source(env)
            .build()
            .map_err(|e| ConfigError::one(&source, e.to_string()))?;
        loaded.try_deserialize().map_err(|e| {
            let mut msg = e.to_string();
            if path.is_none() {
                msg.push_str(
                    " (no configuration file was given: pass --config PATH or set LATCHKEY_CONFIG)",
                );
            }
            ConfigError::one(&source, msg)
        })
    }

    /// Check everything and load the secrets. `source` names the configuration in messages.
    pub fn validate(self, source: &str) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        durations::validate_durations(&self, &mut problems);
        let server = server::validate_server(&self.server, &mut problems);
        verify::validate_verify(&self.verify, &mut problems);
        let portal = portal::validate_portal(&self.portal, self.tokens.max_duration, &mut problems);
        if let (Some(p), Some(name)) = (&portal, &self.verify.cookie_name) {
            if *name != p.cookie_name {
                warnings.push(format!(
                    "verify.cookie_name = {name:?} is not portal.cookie_name = {:?}: /auth/verify does not read the sign-in page's session cookie",
                    p.cookie_name
                ));
            }
        }
        let tokens = tokens::validate_tokens(self.tokens, &mut problems);
        if let (Some(server), Some(portal)) = (&server, &portal) {
            if server
                .public_url
                .as_ref()
                .is_some_and(|public| public != &portal.url)
            {
                problems.push(format!(
                    "server.public_url = {:?} is not portal.url = {:?}; both name where clients reach this Latchkey: keep portal.url and drop server.public_url",
                    server.public_url.as_ref().map(url::Url::as_str).unwrap_or_default(),
                    portal.url.as_str()
                ));
            }
        }
        if let (Some(server), Some(tokens)) = (&server, &tokens) {
            if !tokens.algorithm.is_hmac() && server.public_url.is_none() && portal.is_none() {
                warnings.push(
                    "neither server.public_url nor portal.url is set: /.well-known/latchkey names its endpoints and jwks_uri by path only; set server.public_url to the URL clients reach Latchkey at".into(),
                );
            }
        }
        let directory = directory::validate_directory(self.directory, &mut problems, &mut warnings);
        brute_force::validate_brute_force(&self.brute_force, &mut problems);
        let claims = claims::validate_claims(self.claims, &mut problems);
        let access = claims::validate_access(self.access, &mut problems);
        let admin = admin::validate_admin(self.admin, &mut problems);
        let state = state::validate_state(self.state, &mut problems, &mut warnings);
        match (server, tokens, directory, claims) {
            (Some(server), Some(tokens), Some(mut directory), Some(claims))
                if problems.is_empty() =>
            {
                directory
                    .users
                    .extra_attributes
                    .extend(claims.extra.iter().map(|e| e.attribute.clone()));
                Ok(Config {
                    server,
                    brute_force: self.brute_force,
                    log: self.log,
                    tokens,
                    verify: self.verify,
                    directory,
                    claims,
                    access,
                    portal,
                    admin,
                    state,
                    warnings,
                })
            }
            _ => Err(ConfigError {
                source: source.to_owned(),
                problems,
            }),
        }
    }
}

impl Config {
    /// Where clients reach this Latchkey (`portal.url`, else `server.public_url`), for the
    /// absolute URLs of the discovery document; None: paths only.
    pub fn public_base_url(&self) -> Option<&url::Url> {
        self.portal
            .as_ref()
            .map(|p| &p.url)
            .or(self.server.public_url.as_ref())
    }

    /// Load and validate in one step.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let source = path.map_or_else(|| "environment".to_owned(), |p| p.display().to_string());
        Settings::load(path)?.validate(&source)
    }
}

/// A secret file's content, without the trailing newline editors and `echo` add.
fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let raw = Zeroizing::new(raw);
    let text =
        std::str::from_utf8(&raw).map_err(|_| format!("{} is not UTF-8 text", path.display()))?;
    Ok(Zeroizing::new(
        text.trim_end_matches(['\r', '\n']).to_owned(),
    ))
}

/// Check an LDAP filter written in the configuration.
pub(crate) fn check_filter(key: &str, filter: &str, problems: &mut Vec<String>) {
    let parenthesized = filter.starts_with('(') && filter.ends_with(')');
    if !parenthesized || ldap3::parse_filter(filter).is_err() {
        problems.push(format!(
            "{key} = {filter:?} is not a valid LDAP filter (RFC 4515); it needs parentheses, e.g. \"(objectClass=inetOrgPerson)\""
        ));
    }
}

pub use crate::ldap_syntax::is_attribute_name;

pub(crate) fn check_attribute(key: &str, attr: &str, problems: &mut Vec<String>) {
    if !is_attribute_name(attr) {
        problems.push(format!(
            "{key}: {attr:?} is not an LDAP attribute name (letters, digits and '-', starting with a letter)"
        ));
    }
}

/// What the unit tests of every section start from: the smallest valid configuration, and
/// loading from a string.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Config, ConfigError, Settings};

    pub const GOOD: &str = r#"
        [tokens.keys.k1]
        secret = "0123456789abcdef0123456789abcdef"
        [directory]
        urls = ["ldap://127.0.0.1:389"]
        [directory.users]
        base_dn = "ou=people,dc=example,dc=org"
    "#;

    pub fn parse(toml: &str) -> Result<Config, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::one("test", e.to_string()))?
            .try_deserialize()
            .map_err(|e| ConfigError::one("test", e.to_string()))?;
        settings.validate("test")
    }

    pub fn problems(toml: &str) -> Vec<String> {
        parse(toml)
            .expect_err("the config should be refused")
            .problems
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::testing::{parse, problems, GOOD};
    use super::*;

    #[test]
    fn a_minimal_config_has_the_documented_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.tokens.default_duration, 3600);
        assert_eq!(c.tokens.max_duration, 86400);
        assert_eq!(c.tokens.max_session, 7 * 86400);
        assert_eq!(c.tokens.signing_key.id(), "k1");
        assert_eq!(c.directory.search_mode, SearchMode::Never);
        assert_eq!(c.directory.users.search_attributes, vec!["uid"]);
        assert_eq!(
            c.directory.users.read_attributes(),
            vec!["uid", "cn", "mail"]
        );
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = parse(&format!("{GOOD}\nbind_passwrd = \"x\""))
            .err()
            .unwrap();
        assert!(err.to_string().contains("bind_passwrd"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let toml = GOOD
            .replace("ou=people,dc=example,dc=org", "people")
            .replace("ldap://127.0.0.1:389", "http://x")
            .replace(
                "[directory.users]",
                "authenticated_search = \"always\"\n[directory.users]",
            );
        let p = problems(&toml);
        assert_eq!(p.len(), 3, "{p:?}");
        assert_eq!(
            p[0],
            "directory.urls: \"http://x\" has the scheme http:, not ldap: or ldaps:"
        );
        assert!(
            p[1].starts_with("directory.authenticated_search = \"always\" needs a service account")
        );
        assert!(p[2].starts_with("directory.users.base_dn = \"people\" is not a valid DN"));
    }
}
