//! `[state]`: where the state replicas share lives. `backend = "memory"` (the default) keeps
//! the brute-force counts in the process, as one replica needs; `backend = "redis"` shares
//! them through `[state.redis]` with every replica that names the same server and prefix.
//!
//! The Redis URL may carry a password, so it is a secret like the others: `url`, `url_file`
//! or `LATCHKEY__STATE__REDIS__URL`; it is never logged, and [`RedisConfig::display_url`] is
//! the form with the password cut out that logs and `latchkey check` show.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{read_secret_file, tls};

/// `[state]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    pub backend: Backend,
    pub redis: Option<RedisSettings>,
}

/// Where the shared state lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In this process only: each replica counts for itself.
    #[default]
    Memory,
    /// On a Redis (or Valkey) server every replica shares.
    Redis,
}

/// `[state.redis]`, as written.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSettings {
    /// `redis://[user:password@]host[:port][/db]` or `rediss://...` for TLS.
    pub url: Option<String>,
    /// A file holding the URL (for a password kept out of the configuration).
    pub url_file: Option<PathBuf>,
    /// Put before every key Latchkey writes, so that one server can hold several deployments.
    pub key_prefix: String,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub operation_timeout: Duration,
    /// Connections per HTTP worker, kept open and used in turn. Each is multiplexed: the
    /// requests of a worker share its writes and reads, which is why one (the default) used
    /// the least CPU per login in benches/README.
    pub pool_size: usize,
    pub tls: RedisTlsSettings,
}

impl Default for RedisSettings {
    fn default() -> Self {
        RedisSettings {
            url: None,
            url_file: None,
            key_prefix: "latchkey:".to_owned(),
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_millis(500),
            pool_size: 1,
            tls: RedisTlsSettings::default(),
        }
    }
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &self.url.as_ref().map(|_| "***"))
            .field("url_file", &self.url_file)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("pool_size", &self.pool_size)
            .field("tls", &self.tls)
            .finish()
    }
}

/// `[state.redis.tls]`: what a `rediss://` connection trusts and presents.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisTlsSettings {
    /// PEM bundle of the CAs to trust; unset: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) presented to a server that asks for one.
    pub client_cert_file: Option<PathBuf>,
    /// Its PEM private key.
    pub client_key_file: Option<PathBuf>,
}

/// Validated `[state]`.
#[derive(Debug, Clone, Default)]
pub enum StateConfig {
    /// Counts stay in the process.
    #[default]
    Memory,
    /// Counts are shared on a Redis server.
    Redis(RedisConfig),
}

/// Validated `[state.redis]`, files read.
#[derive(Clone)]
pub struct RedisConfig {
    url: Zeroizing<String>,
    display_url: String,
    pub key_prefix: String,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    pub pool_size: usize,
    /// PEM bytes for `rediss://`; None for `redis://`.
    pub tls: Option<RedisTls>,
}

impl RedisConfig {
    /// The URL as written, password included: for the connection only, never for a log.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL without user name or password: for logs and `latchkey check`.
    pub fn display_url(&self) -> &str {
        &self.display_url
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.display_url)
            .field("key_prefix", &self.key_prefix)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("pool_size", &self.pool_size)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The PEM files of `[state.redis.tls]`, read and checked at start.
#[derive(Clone)]
pub struct RedisTls {
    /// CA certificates to trust; None: the system's store.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and private key.
    pub client: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca", &self.ca_pem.as_ref().map(|_| "(file)"))
            .field(
                "client",
                &self.client.as_ref().map(|_| "(certificate, key ***)"),
            )
            .finish()
    }
}

/// The longest prefix accepted: it is repeated in every key.
const MAX_PREFIX_BYTES: usize = 64;

pub(super) fn validate_state(
    s: StateSettings,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> StateConfig {
    match (s.backend, s.redis) {
        (Backend::Memory, None) => StateConfig::Memory,
        (Backend::Memory, Some(_)) => {
            // A warning, not an error: switching an incident back to local counting is one
            // variable (LATCHKEY__STATE__BACKEND=memory), without editing the file.
            warnings.push(
                "[state.redis] is set but state.backend is \"memory\": brute-force counts stay in this process and are not shared with other replicas; set state.backend = \"redis\" to share them"
                    .into(),
            );
            StateConfig::Memory
        }
        (Backend::Redis, None) => {
            problems.push(
                "state.backend = \"redis\" needs [state.redis] with url (or url_file, or LATCHKEY__STATE__REDIS__URL)"
                    .into(),
            );
            StateConfig::Memory
        }
        (Backend::Redis, Some(r)) => match validate_redis(r, problems) {
            Some(redis) => StateConfig::Redis(redis),
            None => StateConfig::Memory,
        },
    }
}

fn validate_redis(r: RedisSettings, problems: &mut Vec<String>) -> Option<RedisConfig> {
    let before = problems.len();
    let url = match (&r.url, &r.url_file) {
        (Some(_), Some(_)) => {
            problems.push("state.redis has both url and url_file; keep one".into());
            None
        }
        (Some(url), None) => Some(Zeroizing::new(url.trim().to_owned())),
        (None, Some(path)) => match read_secret_file(path) {
            Ok(url) => Some(Zeroizing::new(url.trim().to_owned())),
            Err(e) => {
                problems.push(format!("state.redis.url_file: {e}"));
                None
            }
        },
        (None, None) => {
            problems.push(
                "state.redis.url is not set: give redis://host:port (or rediss:// for TLS) as url, url_file or LATCHKEY__STATE__REDIS__URL"
                    .into(),
            );
            None
        }
    };
    let checked = url.as_ref().and_then(|u| check_url(u, problems));
    let prefix = &r.key_prefix;
    if prefix.is_empty()
        || prefix.len() > MAX_PREFIX_BYTES
        || !prefix.chars().all(|c| c.is_ascii_graphic())
    {
        problems.push(format!(
            "state.redis.key_prefix = {prefix:?} must be 1 to {MAX_PREFIX_BYTES} printable ASCII characters without spaces, such as \"latchkey:\""
        ));
    }
    for (key, value, max) in [
        (
            "state.redis.connect_timeout",
            r.connect_timeout,
            Duration::from_secs(60),
        ),
        (
            "state.redis.operation_timeout",
            r.operation_timeout,
            Duration::from_secs(10),
        ),
    ] {
        if value.is_zero() || value > max {
            problems.push(format!(
                "{key} = {} must be more than 0 and at most {}; a login may wait that long for Redis before counting locally",
                humantime::format_duration(value),
                humantime::format_duration(max)
            ));
        }
    }
    if !(1..=64).contains(&r.pool_size) {
        problems.push(format!(
            "state.redis.pool_size = {} must be between 1 and 64 (connections per worker; each is multiplexed)",
            r.pool_size
        ));
    }
    let tls = match &checked {
        Some(Scheme::Tls) => read_tls(&r.tls, problems),
        Some(Scheme::Plain) => {
            let t = &r.tls;
            if t.ca_file.is_some() || t.client_cert_file.is_some() || t.client_key_file.is_some() {
                problems.push(
                    "[state.redis.tls] is set but state.redis.url is redis://, which is not encrypted; use rediss://"
                        .into(),
                );
            }
            None
        }
        None => None,
    };
    let url = url?;
    checked?;
    if problems.len() > before {
        return None;
    }
    let display_url = redacted(&url);
    Some(RedisConfig {
        url,
        display_url,
        key_prefix: r.key_prefix,
        connect_timeout: r.connect_timeout,
        operation_timeout: r.operation_timeout,
        pool_size: r.pool_size,
        tls,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Plain,
    Tls,
}

/// Checks a Redis URL; the messages never quote it, since it may hold a password.
fn check_url(text: &str, problems: &mut Vec<String>) -> Option<Scheme> {
    let Ok(url) = url::Url::parse(text) else {
        problems.push(
            "state.redis.url is not a URL; write redis://[user:password@]host[:port][/db] or rediss://..."
                .into(),
        );
        return None;
    };
    let scheme = match url.scheme() {
        "redis" => Scheme::Plain,
        "rediss" => Scheme::Tls,
        other => {
            problems.push(format!(
                "state.redis.url has the scheme {other}:, not redis: or rediss: (a Unix socket is not supported)"
            ));
            return None;
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        problems.push("state.redis.url has no host".into());
        return None;
    }
    let db = url.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        problems.push(format!(
            "state.redis.url: the path {db:?} is not a database number; write /0 to /15 or nothing"
        ));
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        problems.push(
            "state.redis.url has a query or fragment; Latchkey's settings go in [state.redis], not in the URL"
                .into(),
        );
        return None;
    }
    Some(scheme)
}

/// `scheme://host:port/db` of a URL already checked, without user name or password.
fn redacted(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut url) => {
            let had_user = !url.username().is_empty() || url.password().is_some();
            let _ = url.set_username("");
            let _ = url.set_password(None);
            let mut shown = url.to_string();
            if had_user {
                shown.push_str(" (credentials hidden)");
            }
            shown
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

fn read_tls(t: &RedisTlsSettings, problems: &mut Vec<String>) -> Option<RedisTls> {
    let ca_pem = match &t.ca_file {
        Some(path) => match tls::read_certificates(path) {
            Ok(_) => match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    problems.push(format!(
                        "state.redis.tls.ca_file: cannot read {}: {e}",
                        path.display()
                    ));
                    None
                }
            },
            Err(e) => {
                problems.push(format!("state.redis.tls.ca_file: {e}"));
                None
            }
        },
        None => None,
    };
    let client = match (&t.client_cert_file, &t.client_key_file) {
        (None, None) => None,
        (Some(cert), Some(key)) => match tls::client_identity_of("state.redis.tls", cert, key) {
            Ok(_) => match (std::fs::read(cert), std::fs::read(key)) {
                (Ok(c), Ok(k)) => Some((c, Zeroizing::new(k))),
                _ => {
                    problems.push(
                        "state.redis.tls: the client certificate or key could not be read again"
                            .into(),
                    );
                    None
                }
            },
            Err(e) => {
                problems.push(e);
                None
            }
        },
        _ => {
            problems.push(
                "state.redis.tls needs both client_cert_file and client_key_file, or neither"
                    .into(),
            );
            None
        }
    };
    Some(RedisTls { ca_pem, client })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, problems, GOOD};

    fn with(state: &str) -> String {
        format!("{GOOD}\n{state}")
    }

    #[test]
    fn the_default_is_memory() {
        assert!(matches!(parse(GOOD).unwrap().state, StateConfig::Memory));
    }

    #[test]
    fn a_redis_backend_has_the_documented_defaults_and_hides_the_password() {
        let c = parse(&with(
            "[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://app:s3cret@127.0.0.1:6379/2\"",
        ))
        .unwrap();
        let StateConfig::Redis(r) = &c.state else {
            panic!("expected redis: {:?}", c.state);
        };
        assert_eq!(r.url(), "redis://app:s3cret@127.0.0.1:6379/2");
        assert_eq!(
            r.display_url(),
            "redis://127.0.0.1:6379/2 (credentials hidden)"
        );
        assert_eq!(r.key_prefix, "latchkey:");
        assert_eq!(r.connect_timeout, Duration::from_secs(2));
        assert_eq!(r.operation_timeout, Duration::from_millis(500));
        assert_eq!(r.pool_size, 1);
        assert!(r.tls.is_none());
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn settings_debug_hides_the_url() {
        let s = RedisSettings {
            url: Some("redis://:pw@h".into()),
            ..RedisSettings::default()
        };
        assert!(!format!("{s:?}").contains("pw@"));
    }

    #[test]
    fn a_redis_section_with_the_memory_backend_is_a_warning() {
        let c = parse(&with("[state.redis]\nurl = \"redis://127.0.0.1\"")).unwrap();
        assert!(matches!(c.state, StateConfig::Memory));
        assert!(
            c.warnings
                .iter()
                .any(|w| w.starts_with("[state.redis] is set but state.backend is \"memory\"")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn bad_redis_settings_are_each_reported_without_the_password() {
        let p = problems(&with(
            "[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"http://u:hunter2@x\"\nkey_prefix = \"a b\"\noperation_timeout = \"0s\"\nconnect_timeout = \"2m\"\npool_size = 0",
        ));
        assert_eq!(
            p,
            vec![
                "state.redis.url has the scheme http:, not redis: or rediss: (a Unix socket is not supported)",
                "state.redis.key_prefix = \"a b\" must be 1 to 64 printable ASCII characters without spaces, such as \"latchkey:\"",
                "state.redis.connect_timeout = 2m must be more than 0 and at most 1m; a login may wait that long for Redis before counting locally",
                "state.redis.operation_timeout = 0s must be more than 0 and at most 10s; a login may wait that long for Redis before counting locally",
                "state.redis.pool_size = 0 must be between 1 and 64 (connections per worker; each is multiplexed)",
            ]
        );
        assert_eq!(
            problems(&with("[state]\nbackend = \"redis\"")),
            vec!["state.backend = \"redis\" needs [state.redis] with url (or url_file, or LATCHKEY__STATE__REDIS__URL)"]
        );
        assert_eq!(
            problems(&with("[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://h/x?a=1\"")),
            vec!["state.redis.url: the path \"x\" is not a database number; write /0 to /15 or nothing"]
        );
        assert_eq!(
            problems(&with(
                "[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://h\"\n[state.redis.tls]\nca_file = \"/nonexistent\""
            )),
            vec!["[state.redis.tls] is set but state.redis.url is redis://, which is not encrypted; use rediss://"]
        );
        let p = problems(&with(
            "[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"rediss://h\"\n[state.redis.tls]\nca_file = \"/nonexistent/ca.pem\"\nclient_cert_file = \"/nonexistent/c.pem\"",
        ));
        assert_eq!(
            p,
            vec![
                "state.redis.tls.ca_file: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)",
                "state.redis.tls needs both client_cert_file and client_key_file, or neither",
            ]
        );
    }

    #[test]
    fn the_url_can_come_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url");
        std::fs::write(&path, "rediss://:pw@cache.example:6380/1\n").unwrap();
        let c = parse(&with(&format!(
            "[state]\nbackend = \"redis\"\n[state.redis]\nurl_file = {:?}\nkey_prefix = \"lk/prod:\"",
            path
        )))
        .unwrap();
        let StateConfig::Redis(r) = &c.state else {
            panic!("expected redis");
        };
        assert_eq!(r.url(), "rediss://:pw@cache.example:6380/1");
        assert_eq!(r.key_prefix, "lk/prod:");
        let tls = r.tls.as_ref().unwrap();
        assert!(tls.ca_pem.is_none() && tls.client.is_none());
    }

    #[test]
    fn an_unknown_key_is_refused() {
        let err = parse(&with(
            "[state]\nbackend = \"redis\"\n[state.redis]\nurl = \"redis://h\"\npassword = \"x\"",
        ))
        .err()
        .unwrap();
        assert!(err.to_string().contains("password"), "{err}");
    }
}
