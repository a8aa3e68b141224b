//! `[directory]`: the servers, how they are reached, the service account, and the pools;
//! its subsections are checked in `users`, `groups` (with `[directory.cache]`) and `tls`.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::users::{validate_users, UserConfig, UserSettings};
use super::{
    groups, presets, read_secret_file, tls, CacheSettings, GroupConfig, GroupSettings, Strategy,
    TlsConfig, TlsSettings,
};
use crate::ldap_syntax::{dn, ServerUrl};

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

pub(super) fn validate_directory(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, GOOD};

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
}
