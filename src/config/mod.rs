//! Typed settings: one TOML file, every key overridable by `LATCHKEY__SECTION__KEY`, secrets
//! also readable from files. Everything is validated at start, and every problem is reported
//! at once with the key it concerns and what to do about it.
//!
//! Two layers: [`Settings`] is what serde reads (unknown keys refused); [`Config`] is what the
//! service runs on, built by [`Settings::validate`], with secrets loaded and values checked, so
//! that nothing downstream has to re-check them.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use latchkey_verify::{HmacAlgorithm, HmacKey, Secret};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::ldap_syntax::{dn, ServerUrl};

mod claims;
mod groups;
mod presets;
mod tls;

pub use claims::{
    validate_claims, AccessConfig, AccessSettings, ClaimConfig, ClaimSettings, ExtraClaim,
    ExtraClaimSettings, GroupClaimFilter, Refusal,
};
pub use groups::{CacheSettings, GroupBase, GroupConfig, GroupSettings, Nesting, Strategy};
pub use presets::{AccountStatus, Preset, StrategyKind};
pub use tls::{Encryption, TlsConfig, TlsSettings, TlsVersion, Trust, INSECURE_WARNING};

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
}

/// `[verify]`: how `/auth/verify` and `/auth/token-info` read tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VerifySettings {
    /// A cookie that may carry the token (after the `Authorization` header); unset: none.
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

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub listen: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// How long an idle keep-alive connection stays open; 0 turns keep-alive off.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// How long a client may take to send a request's headers.
    #[serde(with = "humantime_serde")]
    pub client_request_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Open connections per worker.
    pub max_connections: usize,
    /// The request line and headers, in bytes.
    pub max_header_bytes: usize,
    /// A request body, in bytes (no endpoint reads one).
    pub max_body_bytes: u64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            trusted_proxies: Vec::new(),
            keep_alive: Duration::from_secs(5),
            client_request_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            max_connections: 25_000,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 4 * 1024,
        }
    }
}

/// `[brute_force]`: failed logins counted per login and per client address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForceSettings {
    /// Failures of one login within `window` before it is banned; 0 turns this off.
    pub max_failures_per_login: u32,
    /// Failures from one address (IPv6: one /64) within `window` before it is banned; 0: off.
    pub max_failures_per_address: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long a ban lasts.
    #[serde(with = "humantime_serde")]
    pub ban: Duration,
    /// Logins and addresses remembered at most (each).
    pub max_tracked: usize,
    /// A failed login is answered no sooner than this after it arrived, so that timing does
    /// not tell an unknown user from a wrong password.
    #[serde(with = "humantime_serde")]
    pub min_failure_time: Duration,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        BruteForceSettings {
            max_failures_per_login: 5,
            max_failures_per_address: 20,
            window: Duration::from_secs(600),
            ban: Duration::from_secs(600),
            max_tracked: 100_000,
            min_failure_time: Duration::from_millis(250),
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A tracing filter (`info`, `latchkey=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

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

/// `[directory]`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// Defaults for a kind of directory (`openldap`, `active-directory`, `freeipa`, `lldap`,
    /// `rfc2307`); explicit keys override them.
    #[serde(default)]
    pub preset: Option<String>,
    /// Servers, tried in order when a connection is opened.
    pub urls: Vec<String>,
    /// `in-order`: the first server that answers; `round-robin`: new connections take turns.
    #[serde(default)]
    pub failover: Option<String>,
    /// A server that failed is tried again (before the others) only after this long.
    #[serde(default = "retry_down_after", with = "humantime_serde")]
    pub retry_down_after: Duration,
    #[serde(default = "connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(default = "operation_timeout", with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// The service account searches run as (when authenticated).
    #[serde(default)]
    pub bind_dn: Option<String>,
    #[serde(default)]
    pub bind_password: Option<String>,
    #[serde(default)]
    pub bind_password_file: Option<PathBuf>,
    /// `on-request`, `always` or `never`.
    #[serde(default)]
    pub authenticated_search: Option<SearchMode>,
    #[serde(default)]
    pub pool: PoolSettings,
    pub users: UserSettings,
    #[serde(default)]
    pub groups: GroupSettings,
    #[serde(default)]
    pub cache: CacheSettings,
    #[serde(default)]
    pub tls: TlsSettings,
}

impl fmt::Debug for DirectorySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectorySettings")
            .field("preset", &self.preset)
            .field("urls", &self.urls)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &self.bind_password.as_ref().map(|_| "***"))
            .field("bind_password_file", &self.bind_password_file)
            .finish_non_exhaustive()
    }
}

fn retry_down_after() -> Duration {
    Duration::from_secs(10)
}
fn connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn operation_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Whether user searches run bound as the service account or anonymously.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SearchMode {
    /// The client chooses with `authenticated_search`; without it, the service account is used.
    OnRequest,
    /// Always as the service account; a request asking for anonymous search is refused.
    Always,
    /// Always anonymous; a request asking for authenticated search is refused.
    Never,
}

/// `[directory.pool]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// Connections for user searches, in all workers together.
    pub search_size: usize,
    /// Connections for user binds, in all workers together.
    pub bind_size: usize,
    /// How long a request waits for a free connection before it is answered 503.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            search_size: 8,
            bind_size: 8,
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// `[directory.users]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// Where user entries are searched.
    pub base_dn: String,
    #[serde(default)]
    pub scope: SearchScope,
    /// Which entries are users at all.
    #[serde(default)]
    pub filter: Option<String>,
    /// Attributes a login is looked up in when the request names none; several are or-ed.
    #[serde(default)]
    pub login_attributes: Option<Vec<String>>,
    /// Attributes a client may name in `search_criteria`. Default: the login attributes.
    #[serde(default)]
    pub search_attributes: Option<Vec<String>>,
    /// Domains whose `@domain` suffix is cut off a login before the lookup.
    #[serde(default)]
    pub strip_domains: Vec<String>,
    /// Bind straight to this DN (with `{login}` DN-escaped) instead of searching.
    #[serde(default)]
    pub dn_template: Option<String>,
    /// The attribute whose stored value becomes the token's `sub`.
    #[serde(default)]
    pub username_attribute: Option<String>,
    /// Attribute for the `name` claim; empty to leave the claim out.
    #[serde(default)]
    pub name_attribute: Option<String>,
    /// Attribute for the `email` claim; empty to leave the claim out.
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// How the directory marks accounts that may not log in (`none`, `ppolicy`,
    /// `active-directory`, `freeipa`).
    #[serde(default)]
    pub account_status: Option<String>,
}

/// LDAP search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchScope {
    Base,
    One,
    #[default]
    Sub,
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
    /// What works but deserves an operator's attention (such as `insecure_skip_verify`):
    /// logged by `serve` at start, printed by `check`.
    pub warnings: Vec<String>,
}

/// Validated `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    pub keep_alive: Duration,
    pub client_request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
}

/// Validated `[tokens]`.
#[derive(Debug)]
pub struct TokenConfig {
    pub issuer: String,
    pub audience: Option<String>,
    pub algorithm: HmacAlgorithm,
    pub default_duration: u64,
    pub max_duration: u64,
    /// The key that signs.
    pub signing_key: HmacKey,
    /// Every key, the signing key included: all of them verify.
    pub keys: Vec<HmacKey>,
}

/// How new connections choose among several servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// The first server of the list that answers.
    InOrder,
    /// Each new connection starts with the next server of the list.
    RoundRobin,
}

/// Validated `[directory]`.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// The servers, parsed once here; their text is kept for logs and messages.
    pub urls: Vec<ServerUrl>,
    pub failover: Failover,
    pub retry_down_after: Duration,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    pub service_account: Option<ServiceAccount>,
    pub search_mode: SearchMode,
    pub pool: PoolSettings,
    pub users: UserConfig,
    pub groups: GroupConfig,
    pub cache: CacheSettings,
    pub tls: TlsConfig,
}

/// The account user searches run as.
#[derive(Clone)]
pub struct ServiceAccount {
    pub dn: String,
    pub password: Zeroizing<String>,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("dn", &self.dn)
            .field("password", &"***")
            .finish()
    }
}

/// How a login becomes an entry.
#[derive(Debug, Clone)]
pub enum UserLocator {
    /// Search `(&<filter>(<attribute>=<login>))` under the base.
    Search,
    /// Bind to the DN made from this template (`{login}` replaced, DN-escaped).
    Template(String),
}

/// Validated `[directory.users]`.
#[derive(Debug, Clone)]
pub struct UserConfig {
    pub base_dn: String,
    pub scope: SearchScope,
    pub filter: String,
    pub login_attributes: Vec<String>,
    pub search_attributes: Vec<String>,
    /// Lowercased, without the `@`.
    pub strip_domains: Vec<String>,
    pub locator: UserLocator,
    pub username_attribute: String,
    pub name_attribute: Option<String>,
    pub email_attribute: Option<String>,
    pub account_status: AccountStatus,
    /// Further attributes to read: those of `[claims.extra]` and of the group strategy.
    pub extra_attributes: Vec<String>,
}

impl UserConfig {
    /// The attributes read from a user entry, each once.
    pub fn read_attributes(&self) -> Vec<&str> {
        let mut attrs: Vec<&str> = vec![self.username_attribute.as_str()];
        let more = self
            .name_attribute
            .iter()
            .chain(&self.email_attribute)
            .map(String::as_str)
            .chain(self.account_status.attributes().iter().copied())
            .chain(self.extra_attributes.iter().map(String::as_str));
        for attr in more {
            if !attrs.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
                attrs.push(attr);
            }
        }
        attrs
    }

    /// The login as looked up: with a configured `@domain` suffix cut off.
    pub fn lookup_login<'a>(&self, login: &'a str) -> &'a str {
        if let Some((local, domain)) = login.rsplit_once('@') {
            if !local.is_empty()
                && self
                    .strip_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
            {
                return local;
            }
        }
        login
    }
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
        validate_durations(&self, &mut problems);
        let server = validate_server(&self.server, &mut problems);
        validate_verify(&self.verify, &mut problems);
        let tokens = validate_tokens(self.tokens, &mut problems);
        let directory = validate_directory(self.directory, &mut problems, &mut warnings);
        validate_brute_force(&self.brute_force, &mut problems);
        let claims = claims::validate_claims(self.claims, &mut problems);
        let access = claims::validate_access(self.access, &mut problems);
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
    /// Load and validate in one step.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let source = path.map_or_else(|| "environment".to_owned(), |p| p.display().to_string());
        Settings::load(path)?.validate(&source)
    }
}

fn validate_server(s: &ServerSettings, problems: &mut Vec<String>) -> Option<ServerConfig> {
    let before = problems.len();
    let listen = s.listen.parse::<SocketAddr>().map_err(|_| {
        problems.push(format!(
            "server.listen = {:?} is not an address and port such as \"127.0.0.1:8080\" or \"[::]:8080\"",
            s.listen
        ))
    });
    let trusted_proxies = crate::client_ip::TrustedProxies::parse(&s.trusted_proxies)
        .map_err(|e| problems.push(format!("server.trusted_proxies: {e}")));
    if s.client_request_timeout.is_zero() {
        problems.push("server.client_request_timeout must be more than 0 (e.g. \"5s\")".into());
    }
    if s.max_connections == 0 {
        problems.push("server.max_connections must be at least 1".into());
    }
    if !(1024..=131_072).contains(&s.max_header_bytes) {
        problems.push(format!(
            "server.max_header_bytes = {} must be from 1024 to 131072",
            s.max_header_bytes
        ));
    }
    let (listen, trusted_proxies) = (listen.ok()?, trusted_proxies.ok()?);
    if problems.len() > before {
        return None;
    }
    Some(ServerConfig {
        listen,
        workers: s.workers,
        trusted_proxies,
        keep_alive: s.keep_alive,
        client_request_timeout: s.client_request_timeout,
        shutdown_timeout: s.shutdown_timeout,
        max_connections: s.max_connections,
        max_header_bytes: s.max_header_bytes,
        max_body_bytes: s.max_body_bytes,
    })
}

/// The longest token lifetime `tokens.max_duration` may allow, in seconds: a year.
const MAX_TOKEN_LIFETIME: u64 = 365 * 86_400;

/// The longest each duration of the configuration may be (`brute_force.min_failure_time`,
/// `directory.cache.ttl`, `tokens.max_duration` and `verify.leeway` are bounded where their
/// other rules are). More is a mistake, a unit
/// mixed up, and would overflow where it is added to a clock reading: refused at load, naming
/// the key, rather than failing later.
fn validate_durations(s: &Settings, problems: &mut Vec<String>) {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let d = &s.directory;
    let bounds = [
        (
            "server.keep_alive",
            s.server.keep_alive,
            HOUR,
            "an idle connection is not worth keeping that long",
        ),
        (
            "server.client_request_timeout",
            s.server.client_request_timeout,
            5 * MINUTE,
            "a slow client would hold a connection that long",
        ),
        (
            "server.shutdown_timeout",
            s.server.shutdown_timeout,
            HOUR,
            "a stop would wait that long",
        ),
        (
            "brute_force.window",
            s.brute_force.window,
            DAY,
            "failures are counted within a day at most",
        ),
        (
            "brute_force.ban",
            s.brute_force.ban,
            7 * DAY,
            "a ban lasts a week at most",
        ),
        (
            "directory.retry_down_after",
            d.retry_down_after,
            HOUR,
            "a recovered server would be passed over that long",
        ),
        (
            "directory.connect_timeout",
            d.connect_timeout,
            5 * MINUTE,
            "a request would wait that long for a dead server",
        ),
        (
            "directory.operation_timeout",
            d.operation_timeout,
            5 * MINUTE,
            "a request would wait that long for a stuck server",
        ),
        (
            "directory.pool.wait_timeout",
            d.pool.wait_timeout,
            5 * MINUTE,
            "a request would wait that long for a connection",
        ),
    ];
    for (key, value, max, why) in bounds {
        let max = Duration::from_secs(max);
        if value > max {
            problems.push(format!(
                "{key} = {} is more than {}; {why}",
                humantime::format_duration(value),
                humantime::format_duration(max)
            ));
        }
    }
}

fn validate_brute_force(b: &BruteForceSettings, problems: &mut Vec<String>) {
    let on = b.max_failures_per_login > 0 || b.max_failures_per_address > 0;
    if on && (b.window.is_zero() || b.ban.is_zero()) {
        problems.push("brute_force.window and brute_force.ban must be more than 0 (set both max_failures_* to 0 to turn the protection off)".into());
    }
    if on && b.max_tracked == 0 {
        problems.push("brute_force.max_tracked must be at least 1".into());
    }
    if b.min_failure_time > Duration::from_secs(10) {
        problems.push(format!(
            "brute_force.min_failure_time = {} is more than 10 seconds; clients would time out",
            humantime::format_duration(b.min_failure_time)
        ));
    }
}

fn validate_verify(v: &VerifySettings, problems: &mut Vec<String>) {
    if let Some(name) = &v.cookie_name {
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token_char) {
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

/// How to make a secret, repeated wherever a secret is missing or weak.
const SECRET_HINT: &str = "make one with `openssl rand -base64 48` and put it in \
     tokens.keys.<id>.secret_file (or LATCHKEY__TOKENS__KEYS__<ID>__SECRET)";

fn validate_tokens(t: TokenSettings, problems: &mut Vec<String>) -> Option<TokenConfig> {
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

fn validate_directory(
    d: DirectorySettings,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<DirectoryConfig> {
    let before = problems.len();
    if d.urls.is_empty() {
        problems.push(
            "directory.urls is empty; list at least one server, e.g. [\"ldap://ldap.example.org\"]"
                .into(),
        );
    }
    let mut urls = Vec::new();
    for text in &d.urls {
        match ServerUrl::parse(text) {
            Ok(url) => urls.push(url),
            Err(e) => problems.push(format!("directory.urls: {e}")),
        }
    }
    let urls_ok = urls.len() == d.urls.len();
    let failover = d.failover.as_deref().map_or(Failover::InOrder, |text| {
        presets::choose(
            "directory.failover",
            text,
            &[
                ("in-order", Failover::InOrder),
                ("round-robin", Failover::RoundRobin),
            ],
        )
        .unwrap_or_else(|e| {
            problems.push(e);
            Failover::InOrder
        })
    });
    if d.connect_timeout.is_zero() {
        problems.push("directory.connect_timeout must be more than 0 (e.g. \"5s\")".into());
    }
    if d.operation_timeout.is_zero() {
        problems.push("directory.operation_timeout must be more than 0 (e.g. \"10s\")".into());
    }
    if d.pool.search_size == 0 || d.pool.bind_size == 0 {
        problems.push("directory.pool.search_size and bind_size must be at least 1".into());
    }
    if d.pool.wait_timeout.is_zero() {
        problems.push("directory.pool.wait_timeout must be more than 0 (e.g. \"5s\")".into());
    }

    let password = match (&d.bind_password, &d.bind_password_file) {
        (Some(_), Some(_)) => {
            problems
                .push("directory has both bind_password and bind_password_file; keep one".into());
            None
        }
        (Some(p), None) => Some(Zeroizing::new(p.clone())),
        (None, Some(path)) => match read_secret_file(path) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(format!("directory.bind_password_file: {e}"));
                None
            }
        },
        (None, None) => None,
    };
    let service_account = match (&d.bind_dn, password) {
        (Some(dn_text), Some(password)) => {
            if let Err(e) = dn::validate(dn_text) {
                problems.push(format!(
                    "directory.bind_dn = {dn_text:?} is not a valid DN: {e}"
                ));
            }
            if password.is_empty() {
                problems.push("directory.bind_password is empty; an empty password makes an anonymous bind on most servers".into());
            }
            Some(ServiceAccount {
                dn: dn_text.clone(),
                password,
            })
        }
        (Some(_), None) => {
            if d.bind_password.is_none() && d.bind_password_file.is_none() {
                problems.push(
                    "directory.bind_dn is set but neither bind_password nor bind_password_file is"
                        .into(),
                );
            }
            None
        }
        (None, Some(_)) => {
            problems.push("directory.bind_password is set but directory.bind_dn is not".into());
            None
        }
        (None, None) => None,
    };
    let search_mode = match (d.authenticated_search, d.bind_dn.is_some()) {
        (None, true) => SearchMode::OnRequest,
        (None, false) => SearchMode::Never,
        (Some(SearchMode::Never), _) => SearchMode::Never,
        (Some(mode), true) => mode,
        (Some(mode), false) => {
            let name = if mode == SearchMode::Always {
                "always"
            } else {
                "on-request"
            };
            problems.push(format!(
                "directory.authenticated_search = \"{name}\" needs a service account: set directory.bind_dn and bind_password (or bind_password_file), or use \"never\""
            ));
            SearchMode::Never
        }
    };
    let preset = d.preset.as_deref().and_then(|text| {
        presets::choose("directory.preset", text, presets::PRESETS)
            .map_err(|e| problems.push(e))
            .ok()
    });
    let defaults = presets::defaults(preset);
    let users = validate_users(d.users, &defaults, problems);
    let groups = groups::validate_groups(d.groups, &defaults, problems);
    groups::validate_cache(&d.cache, problems);
    // TLS is checked against the URLs, so only once they are known to be good.
    let tls = if urls_ok {
        tls::validate_tls(d.tls, &urls, problems, warnings)
    } else {
        TlsConfig::default()
    };
    if problems.len() > before {
        return None;
    }
    let mut users = users?;
    let groups = groups?;
    match &groups.strategy {
        Strategy::Posix => users.extra_attributes.push("gidNumber".into()),
        Strategy::MemberOf { attribute } => users.extra_attributes.push(attribute.clone()),
        Strategy::None | Strategy::Member { .. } => {}
    }
    Some(DirectoryConfig {
        urls,
        failover,
        retry_down_after: d.retry_down_after,
        connect_timeout: d.connect_timeout,
        operation_timeout: d.operation_timeout,
        service_account,
        search_mode,
        pool: d.pool,
        users,
        groups,
        cache: d.cache,
        tls,
    })
}

fn validate_users(
    u: UserSettings,
    defaults: &presets::Defaults,
    problems: &mut Vec<String>,
) -> Option<UserConfig> {
    let before = problems.len();
    if let Err(e) = dn::validate(&u.base_dn) {
        problems.push(format!(
            "directory.users.base_dn = {:?} is not a valid DN: {e}",
            u.base_dn
        ));
    }
    let filter = u.filter.unwrap_or_else(|| defaults.user_filter.to_owned());
    check_filter("directory.users.filter", &filter, problems);
    let owned = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    // Without login_attributes, the first search attribute is the default (flask-ldap-auth's
    // behaviour); without either, the preset's.
    let login_attributes = match (&u.login_attributes, &u.search_attributes) {
        (Some(l), _) => l.clone(),
        (None, Some(s)) => s.iter().take(1).cloned().collect(),
        (None, None) => owned(defaults.login_attributes),
    };
    let search_attributes = u
        .search_attributes
        .clone()
        .unwrap_or_else(|| login_attributes.clone());
    // Login attributes taken from search_attributes are checked (once) as those.
    if u.login_attributes.is_some() {
        if login_attributes.is_empty() {
            problems.push("directory.users.login_attributes is empty; list the attributes a login may match, e.g. [\"uid\", \"mail\"]".into());
        }
        for attr in &login_attributes {
            check_attribute("directory.users.login_attributes", attr, problems);
        }
    }
    if u.search_attributes.is_some() || u.login_attributes.is_none() {
        if search_attributes.is_empty() {
            problems.push("directory.users.search_attributes is empty; list the attributes a login may match, e.g. [\"uid\"]".into());
        }
        for attr in &search_attributes {
            check_attribute("directory.users.search_attributes", attr, problems);
        }
    }
    let mut strip_domains = Vec::new();
    for domain in &u.strip_domains {
        let d = domain.trim_start_matches('@').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
            problems.push(format!(
                "directory.users.strip_domains: {domain:?} is not a domain name such as \"example.org\""
            ));
        }
        strip_domains.push(d);
    }
    let account_status = match u.account_status.as_deref() {
        None => defaults.account_status,
        Some(text) => presets::choose(
            "directory.users.account_status",
            text,
            presets::ACCOUNT_STATUSES,
        )
        .unwrap_or_else(|e| {
            problems.push(e);
            AccountStatus::None
        }),
    };
    let username_attribute = u
        .username_attribute
        .unwrap_or_else(|| defaults.username_attribute.to_owned());
    check_attribute(
        "directory.users.username_attribute",
        &username_attribute,
        problems,
    );
    let optional =
        |name: &str, value: Option<String>, default: &str, problems: &mut Vec<String>| {
            let value = value.unwrap_or_else(|| default.to_owned());
            if value.is_empty() {
                None
            } else {
                check_attribute(name, &value, problems);
                Some(value)
            }
        };
    let name_attribute = optional(
        "directory.users.name_attribute",
        u.name_attribute,
        defaults.name_attribute,
        problems,
    );
    let email_attribute = optional(
        "directory.users.email_attribute",
        u.email_attribute,
        defaults.email_attribute,
        problems,
    );
    let locator = match &u.dn_template {
        None => UserLocator::Search,
        Some(template) => {
            if template.matches("{login}").count() != 1 {
                problems.push(format!(
                    "directory.users.dn_template = {template:?} must contain {{login}} exactly once, e.g. \"uid={{login}},ou=people,dc=example,dc=org\""
                ));
            } else if let Err(e) = dn::validate(&template.replace("{login}", "x")) {
                problems.push(format!(
                    "directory.users.dn_template = {template:?} does not make a valid DN: {e}"
                ));
            }
            UserLocator::Template(template.clone())
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(UserConfig {
        base_dn: u.base_dn,
        scope: u.scope,
        filter,
        login_attributes,
        search_attributes,
        strip_domains,
        locator,
        username_attribute,
        name_attribute,
        email_attribute,
        account_status,
        extra_attributes: Vec::new(),
    })
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

pub(crate) fn check_attribute(key: &str, attr: &str, problems: &mut Vec<String>) {
    if !is_attribute_name(attr) {
        problems.push(format!(
            "{key}: {attr:?} is not an LDAP attribute name (letters, digits and '-', starting with a letter)"
        ));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [tokens.keys.k1]
        secret = "0123456789abcdef0123456789abcdef"
        [directory]
        urls = ["ldap://127.0.0.1:389"]
        [directory.users]
        base_dn = "ou=people,dc=example,dc=org"
    "#;

    fn parse(toml: &str) -> Result<Config, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::one("test", e.to_string()))?
            .try_deserialize()
            .map_err(|e| ConfigError::one("test", e.to_string()))?;
        settings.validate("test")
    }

    fn problems(toml: &str) -> Vec<String> {
        parse(toml)
            .expect_err("the config should be refused")
            .problems
    }

    #[test]
    fn a_minimal_config_has_the_documented_defaults() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.tokens.default_duration, 3600);
        assert_eq!(c.tokens.max_duration, 86400);
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

    #[test]
    fn a_bad_filter_and_attribute_are_named() {
        let toml = GOOD.replace(
            "base_dn = ",
            "filter = \"objectClass=person\"\nsearch_attributes = [\"uid)(x\"]\nbase_dn = ",
        );
        let p = problems(&toml);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("is not a valid LDAP filter"));
        assert!(p[1].contains("\"uid)(x\" is not an LDAP attribute name"));
    }

    #[test]
    fn an_empty_allow_list_is_refused() {
        let p = problems(&GOOD.replace("base_dn = ", "search_attributes = []\nbase_dn = "));
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("directory.users.search_attributes is empty"));
    }

    #[test]
    fn a_dn_template_needs_exactly_one_login_placeholder() {
        let p = problems(&GOOD.replace("base_dn = ", "dn_template = \"uid=x,dc=org\"\nbase_dn = "));
        assert!(p[0].contains("must contain {login} exactly once"), "{p:?}");
        let ok = parse(&GOOD.replace(
            "base_dn = ",
            "dn_template = \"uid={login},ou=people,dc=example,dc=org\"\nbase_dn = ",
        ))
        .unwrap();
        assert!(matches!(
            ok.directory.users.locator,
            UserLocator::Template(_)
        ));
    }

    #[test]
    fn a_service_account_turns_on_request_search_on() {
        let c = parse(&GOOD.replace(
            "[directory.users]",
            "bind_dn = \"cn=svc,dc=example,dc=org\"\nbind_password = \"pw\"\n[directory.users]",
        ))
        .unwrap();
        assert_eq!(c.directory.search_mode, SearchMode::OnRequest);
        assert_eq!(
            format!("{:?}", c.directory.service_account.unwrap()),
            "ServiceAccount { dn: \"cn=svc,dc=example,dc=org\", password: \"***\" }"
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

    #[test]
    fn presets_fill_what_the_file_leaves_out() {
        let ad = parse(&GOOD.replace(
            "[directory.users]",
            "preset = \"active-directory\"\n[directory.groups]\nbase_dns = [\"dc=corp,dc=example\"]\n[directory.users]",
        ))
        .unwrap();
        let d = &ad.directory;
        assert_eq!(d.users.login_attributes, vec!["sAMAccountName"]);
        assert_eq!(d.users.username_attribute, "sAMAccountName");
        assert!(d
            .users
            .filter
            .contains("userAccountControl:1.2.840.113556.1.4.803:=2"));
        assert_eq!(d.users.account_status, AccountStatus::ActiveDirectory);
        assert_eq!(d.groups.nesting, Nesting::InChain);
        assert_eq!(d.groups.filter, "(objectClass=group)");
        assert_eq!(
            d.users.read_attributes(),
            vec![
                "sAMAccountName",
                "displayName",
                "mail",
                "userAccountControl",
                "accountExpires"
            ]
        );

        // An explicit key wins over the preset.
        let ipa = parse(&GOOD.replace(
            "[directory.users]",
            "preset = \"freeipa\"\n[directory.users]\nusername_attribute = \"krbPrincipalName\"",
        ))
        .unwrap();
        assert_eq!(ipa.directory.users.username_attribute, "krbPrincipalName");
        assert_eq!(
            ipa.directory.groups.strategy,
            Strategy::MemberOf {
                attribute: "memberOf".into()
            }
        );
        assert!(ipa.directory.users.read_attributes().contains(&"memberOf"));

        let posix = parse(&GOOD.replace(
            "[directory.users]",
            "preset = \"rfc2307\"\n[directory.groups]\nbase_dns = [\"ou=groups,dc=example,dc=org\"]\n[directory.users]",
        ))
        .unwrap();
        assert_eq!(posix.directory.groups.strategy, Strategy::Posix);
        assert!(posix
            .directory
            .users
            .read_attributes()
            .contains(&"gidNumber"));

        let p = problems(&GOOD.replace(
            "[directory.users]",
            "preset = \"novell\"\n[directory.users]",
        ));
        assert_eq!(
            p,
            vec!["directory.preset = \"novell\" is not one of: openldap, active-directory, freeipa, lldap, rfc2307"]
        );
        assert_eq!(
            problems(&GOOD.replace(
                "[directory.users]",
                "failover = \"random\"\n[directory.users]"
            )),
            vec!["directory.failover = \"random\" is not one of: in-order, round-robin"]
        );
        let p =
            problems(&GOOD.replace("base_dn = ", "account_status = \"eDirectory\"\nbase_dn = "));
        assert_eq!(
            p,
            vec!["directory.users.account_status = \"eDirectory\" is not one of: none, ppolicy, active-directory, freeipa"]
        );
    }

    #[test]
    fn group_settings_that_cannot_work_are_refused() {
        let with = |groups: &str| {
            GOOD.replace(
                "[directory.users]",
                &format!("[directory.groups]\n{groups}\n[directory.users]"),
            )
        };
        assert_eq!(
            problems(&with("strategy = \"member\"")),
            vec!["directory.groups.base_dns is empty; strategy = \"member\" searches for groups there, e.g. [\"ou=groups,dc=example,dc=org\"]"]
        );
        assert_eq!(
            problems(&with("strategy = \"posix\"\nbase_dns = [\"ou=g,dc=org\"]\nnested = true")),
            vec!["directory.groups.nested: posix groups list users by memberUid and cannot contain groups; use strategy = \"member\" for RFC 2307bis groups"]
        );
        assert_eq!(
            problems(&with("strategy = \"member-of\"\nin_chain = true")),
            vec!["directory.groups.in_chain works with strategy = \"member\" on Active Directory only (the strategy is \"member-of\")"]
        );
        assert_eq!(
            problems(&with("strategy = \"member\"\nbase_dns = [\"groups\"]\nmax_depth = 0\nnested = true\npage_size = 0\nfilter = \"objectClass=x\"")),
            vec![
                "directory.groups.base_dns: \"groups\" is not a valid DN: '=' expected after the attribute type at position 7",
                "directory.groups.filter = \"objectClass=x\" is not a valid LDAP filter (RFC 4515); it needs parentheses, e.g. \"(objectClass=inetOrgPerson)\"",
                "directory.groups.max_depth = 0 must be from 1 (direct groups only) to 64",
                "directory.groups.page_size = 0 must be from 1 to 10000",
            ]
        );
        assert_eq!(
            problems(&with(
                "strategy = \"member\"\nbase_dns = [\"ou=g,dc=org\"]\nmax_depth = 3"
            )),
            vec!["directory.groups.max_depth only applies when nested = true without in_chain"]
        );
        let nested = parse(&with(
            "strategy = \"member\"\nbase_dns = [\"ou=g,dc=org\"]\nnested = true\nmax_depth = 3",
        ))
        .unwrap();
        assert_eq!(
            nested.directory.groups.nesting,
            Nesting::Recursive { max_depth: 3 }
        );
    }

    #[test]
    fn claims_refuse_binary_attributes_reserved_names_and_bad_expressions() {
        let with = |sections: &str| format!("{GOOD}\n{sections}");
        let p = problems(&with(
            "[claims.extra]\nphoto = \"jpegPhoto\"\nsub = \"uid\"\n\"bad name\" = \"cn\"\nok = { attribute = \"ou\", multi = true }\n[claims.flags]\nadmin = \"admins | (ops\"\nok = \"x\"",
        ));
        assert_eq!(
            p,
            vec![
                "claims.extra: \"bad name\" is not a claim name (letters, digits, '_', '-', '.', ':'; at most 64)",
                "claims.extra.photo: jpegPhoto holds binary data or a secret and cannot become a claim",
                "claims.extra: \"sub\" is a claim Latchkey sets itself; choose another name",
                "claims.flags.admin: column 14: ')' expected at end of expression to close the '(' at column 10\n      admins | (ops\n                   ^",
                "claims.flags.ok: \"ok\" is also in [claims.extra]; a claim has one source",
            ]
        );
        let p = problems(&with("[claims]\ngroups_pattern = \"(unclosed\""));
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("claims.groups_pattern = \"(unclosed\" is not a regular expression: regex parse error:"), "{p:?}");
        let p = problems(&with("[access]\nrequire = \"staff &\"\ndeny = \"a b\""));
        assert_eq!(
            p,
            vec![
                "access.require: column 8: a group name, '!' or '(' expected at end of expression\n      staff &\n             ^",
                "access.deny: column 3: an operator '&' or '|' expected before \"b\"\n      a b\n        ^",
            ]
        );
        // The example in the README.
        assert_eq!(
            problems(&with("[access]\nrequire = \"staff & (admins | ops\"")),
            vec!["access.require: column 22: ')' expected at end of expression to close the '(' at column 9\n      staff & (admins | ops\n                           ^"]
        );
        let c = parse(&with("[access]\nrequire = \"staff & !contractors\"")).unwrap();
        assert_eq!(c.access.decide(&["Staff"]), Ok(()));
        assert_eq!(
            c.access.decide(&["staff", "contractors"]),
            Err(Refusal::NotRequired)
        );
        assert!(c.directory.users.extra_attributes.is_empty());
    }

    #[test]
    fn claims_refuse_secret_attributes_in_any_case_and_numeric_oids() {
        let extra =
            |attribute: &str| problems(&format!("{GOOD}\n[claims.extra]\nx = \"{attribute}\""));
        for secret in [
            "authPassword",
            "AUTHPASSWORD",
            "msDS-ManagedPassword",
            "unicodePwd",
            "ntPwdHistory",
            "lmPwdHistory",
            "supplementalCredentials",
            "sambaNTPassword",
            "sambaLMPassword",
            "krbPrincipalKey",
            "msDS-KeyCredentialLink",
            "ms-Mcs-AdmPwd",
            "msLAPS-Password",
            "msFVE-RecoveryPassword",
        ] {
            let p = extra(secret);
            assert_eq!(p.len(), 1, "{secret}: {p:?}");
            assert!(
                p[0].starts_with("claims.extra.x: ")
                    && p[0].ends_with(" holds binary data or a secret and cannot become a claim")
                    && p[0].to_lowercase().contains(&secret.to_lowercase()),
                "{secret}: {p:?}"
            );
        }
        for oid in [
            "2.5.4.35",
            "1.3.6.1.4.1.4203.1.3.4",
            "0.9.2342.19200300.100.1.3",
        ] {
            assert_eq!(
                extra(oid),
                vec![format!("claims.extra.x: {oid:?} is a numeric OID; give the attribute's name (OIDs are refused, as secret attributes such as userPassword, 2.5.4.35, could hide behind one)")],
            );
        }
        // Names are fine, including ones beginning with a secret's name.
        let c = parse(&format!(
            "{GOOD}\n[claims.extra]\nx = \"userPasswordHint\"\ny = \"mail\""
        ))
        .unwrap();
        assert_eq!(c.claims.extra.len(), 2);
    }

    #[test]
    fn login_attributes_default_to_the_first_search_attribute() {
        let c = parse(&GOOD.replace(
            "base_dn = ",
            "search_attributes = [\"mail\", \"uid\"]\nbase_dn = ",
        ))
        .unwrap();
        assert_eq!(c.directory.users.login_attributes, vec!["mail"]);
        let c = parse(&GOOD.replace(
            "base_dn = ",
            "login_attributes = [\"uid\", \"mail\"]\nbase_dn = ",
        ))
        .unwrap();
        assert_eq!(c.directory.users.search_attributes, vec!["uid", "mail"]);
        let c = parse(&GOOD.replace(
            "base_dn = ",
            "strip_domains = [\"@Example.org\"]\nbase_dn = ",
        ))
        .unwrap();
        assert_eq!(c.directory.users.lookup_login("alice@EXAMPLE.ORG"), "alice");
        assert_eq!(
            c.directory.users.lookup_login("alice@example.com"),
            "alice@example.com"
        );
        assert_eq!(
            c.directory.users.lookup_login("@example.org"),
            "@example.org"
        );
        let p = problems(&GOOD.replace(
            "base_dn = ",
            "strip_domains = [\"exa mple\"]\nlogin_attributes = []\nbase_dn = ",
        ));
        assert_eq!(
            p,
            vec![
                "directory.users.login_attributes is empty; list the attributes a login may match, e.g. [\"uid\", \"mail\"]",
                "directory.users.strip_domains: \"exa mple\" is not a domain name such as \"example.org\"",
            ]
        );
    }

    #[test]
    fn the_cache_is_off_by_default_and_bounded() {
        let c = parse(GOOD).unwrap();
        assert!(c.directory.cache.ttl.is_zero());
        let p = problems(&GOOD.replace(
            "[directory.users]",
            "[directory.cache]\nttl = \"2d\"\nmax_entries = 0\n[directory.users]",
        ));
        assert_eq!(
            p,
            vec![
                "directory.cache.max_entries is 0 while ttl is set; give a size, or set ttl = \"0s\" to turn the cache off",
                "directory.cache.ttl = 2days is more than a day; group changes would take that long to be seen",
            ]
        );
    }

    #[test]
    fn every_duration_is_bounded_naming_its_key() {
        let with = |directory: &str, pool: &str, tables: &str| {
            format!(
                "{}\n{tables}",
                GOOD.replace(
                    "[directory.users]",
                    &format!("{directory}\n[directory.pool]\n{pool}\n[directory.users]"),
                )
            )
        };
        let p = problems(&with(
            "retry_down_after = \"100000000 years\"\nconnect_timeout = \"301s\"\noperation_timeout = \"6m\"",
            "wait_timeout = \"1h\"",
            "[tokens]\nmax_duration = 31536001\n[server]\nkeep_alive = \"61m\"\nclient_request_timeout = \"1h\"\nshutdown_timeout = \"2h\"\n[brute_force]\nwindow = \"25h\"\nban = \"8days\"",
        ));
        assert_eq!(
            p,
            vec![
                "server.keep_alive = 1h 1m is more than 1h; an idle connection is not worth keeping that long",
                "server.client_request_timeout = 1h is more than 5m; a slow client would hold a connection that long",
                "server.shutdown_timeout = 2h is more than 1h; a stop would wait that long",
                "brute_force.window = 1day 1h is more than 1day; failures are counted within a day at most",
                "brute_force.ban = 8days is more than 7days; a ban lasts a week at most",
                "directory.retry_down_after = 100000000years is more than 1h; a recovered server would be passed over that long",
                "directory.connect_timeout = 5m 1s is more than 5m; a request would wait that long for a dead server",
                "directory.operation_timeout = 6m is more than 5m; a request would wait that long for a stuck server",
                "directory.pool.wait_timeout = 1h is more than 5m; a request would wait that long for a connection",
                "tokens.max_duration = 31536001 is more than 31536000 seconds (a year); a token cannot be taken back before it expires",
            ]
        );
        // Each maximum itself is accepted.
        let c = parse(&with(
            "retry_down_after = \"1h\"\nconnect_timeout = \"5m\"\noperation_timeout = \"5m\"",
            "wait_timeout = \"5m\"",
            "[tokens]\nmax_duration = 31536000\n[server]\nkeep_alive = \"1h\"\nclient_request_timeout = \"5m\"\nshutdown_timeout = \"1h\"\n[brute_force]\nwindow = \"1day\"\nban = \"7days\"",
        ))
        .unwrap();
        assert_eq!(c.directory.retry_down_after, Duration::from_secs(3600));
    }

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
