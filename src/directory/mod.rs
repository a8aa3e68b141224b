//! The directory: the only code in Latchkey that speaks LDAP.
//!
//! A login is two calls, so that brute-force protection can look at the entry in between (see
//! the login module): [`Directory::find`] finds the entry a login names (a search with an
//! escaped filter, or a DN template with the login DN-escaped, both with `users.filter`), and
//! [`Directory::verify`] binds as it with the password on a bind connection, then reads the
//! account's status, its attributes and its groups into an [`Identity`].
//!
//! Rules kept here:
//! - every value from a client is escaped before it enters a filter (RFC 4515) or a DN
//!   (RFC 4514);
//! - bind connections are never used for searches, search connections never carry user binds;
//! - a search that finds several entries is a failed login, never "take the first";
//! - no single entry is [`DirectoryError::UnknownUser`], a refused user bind
//!   [`DirectoryError::InvalidCredentials`]; anything the directory does wrong is
//!   [`DirectoryError::Unavailable`];
//! - whatever rights found the entry, its status, attributes and groups are read with the
//!   service account when one is configured.

pub mod account_status;
pub mod groups;
mod pool;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use ldap3::{Scope, SearchEntry, SearchOptions, SearchResult};

use crate::config::{
    CacheSettings, DirectoryConfig, Encryption, GroupConfig, SearchScope, UserConfig, UserLocator,
};
use crate::credentials::{Login, Password};
use crate::identity::Identity;
use crate::ldap_syntax::dn;
use crate::ldap_syntax::filter::login_filter;
use crate::metrics::{GaugeReadings, Metrics, Operation, PoolKind};
use pool::{checkout_error, discard, RC_INVALID_CREDENTIALS};
pub use pool::{BindPool, Connector, SearchPool, ServerSet};

/// What went wrong talking to the directory.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DirectoryError {
    /// The bind was refused: the client gets one answer for this and [`Self::UnknownUser`].
    #[error("the login or password is wrong")]
    InvalidCredentials,
    /// No entry matches the login, or several do.
    #[error("no single entry matches the login")]
    UnknownUser,
    /// The directory cannot be reached or did not do its part: try again later.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The directory works but does not match the configuration; an operator must act.
    #[error("directory and configuration disagree: {0}")]
    Misconfigured(String),
    /// The password was right but the directory marks the account as unusable. The client
    /// gets the same answer as for a wrong password; the reason goes to the audit log.
    #[error("the account is {0}")]
    AccountDisabled(&'static str),
}

/// Whose rights a user search runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchAs {
    /// Bound as the configured service account.
    Service,
    /// Anonymously.
    Anonymous,
}

impl SearchAs {
    /// `"service"` or `"anonymous"`, for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchAs::Service => "service",
            SearchAs::Anonymous => "anonymous",
        }
    }
}

/// The entry a login names, found before its password is tried.
#[derive(Debug)]
pub struct Candidate {
    dn: String,
    found: Found,
}

#[derive(Debug)]
enum Found {
    /// A complete answer from the cache.
    Cached(Arc<Identity>),
    /// Found just now with `search_as` rights; `key`: where to cache the complete answer.
    Entry {
        entry: SearchEntry,
        search_as: SearchAs,
        key: Option<CacheKey>,
    },
}

impl Candidate {
    /// The entry's DN, as the directory spells it.
    pub fn dn(&self) -> &str {
        &self.dn
    }

    /// The key that counts failures against this entry whatever login spelling found it: its
    /// DN in lower case. The DN is always the directory's own spelling (a search result, the
    /// entry read at a template's DN, or the cache of either), so every login that reaches the
    /// entry gets the same key without parsing the DN (a full RFC 4514 normalisation cost more
    /// than a tenth of a warm login's instructions).
    pub fn account_key(&self) -> String {
        self.dn.to_lowercase()
    }
}

/// Who asked for whom: a login as typed, the attribute it was looked up in (None: the login
/// attributes), and whose rights the search ran with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    login: String,
    attribute: Option<String>,
    search_as: SearchAs,
}

/// What the directory said about users, by [`CacheKey`]; never a password or its outcome.
/// Shared by all workers.
pub type UserCache = moka::sync::Cache<CacheKey, Arc<Identity>>;

/// A cache as configured, or None when `ttl` is 0.
pub fn new_cache(cfg: &CacheSettings) -> Option<UserCache> {
    if cfg.ttl.is_zero() {
        return None;
    }
    Some(
        moka::sync::Cache::builder()
            .max_capacity(cfg.max_entries)
            .time_to_live(cfg.ttl)
            .build(),
    )
}

/// What the directories of all workers share: the user cache, the servers' health, the
/// metrics, and (for the pool gauges) every pool.
#[derive(Clone)]
pub struct SharedDirectory {
    pub cache: Option<UserCache>,
    pub servers: Arc<ServerSet>,
    pub metrics: Arc<Metrics>,
    pools: Arc<Mutex<Vec<(PoolKind, SearchPool)>>>,
}

impl SharedDirectory {
    pub fn new(cfg: &DirectoryConfig, metrics: Arc<Metrics>) -> SharedDirectory {
        SharedDirectory {
            cache: new_cache(&cfg.cache),
            servers: ServerSet::new(cfg),
            metrics,
            pools: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Connections in use and idle in every pool, by kind.
    pub fn read_pools(&self, readings: &mut GaugeReadings) {
        let pools = self
            .pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for (kind, pool) in pools.iter() {
            let status = pool.status();
            let slot = match kind {
                PoolKind::service_search => &mut readings.service_search,
                PoolKind::anonymous_search => &mut readings.anonymous_search,
                PoolKind::bind => &mut readings.bind,
            };
            slot.0 += status.size.saturating_sub(status.available);
            slot.1 += status.available;
        }
    }

    fn remember(&self, kind: PoolKind, pool: &SearchPool) {
        self.pools
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push((kind, pool.clone()));
    }
}

/// The directory with its connection pools.
pub struct Directory {
    users: UserConfig,
    groups: GroupConfig,
    cache: Option<UserCache>,
    metrics: Arc<Metrics>,
    operation_timeout: std::time::Duration,
    service_searches: Option<SearchPool>,
    anonymous_searches: SearchPool,
    binds: BindPool,
}

impl Directory {
    /// Pools for one HTTP worker of `workers`: the configured sizes are shared out among them.
    /// Opens no connection.
    pub fn new(
        cfg: &DirectoryConfig,
        workers: usize,
        shared: &SharedDirectory,
    ) -> Result<Directory, DirectoryError> {
        let share = |total: usize| total.div_ceil(workers.max(1)).max(1);
        let metrics = Some(&shared.metrics);
        let build = |account: Option<&crate::config::ServiceAccount>, size: usize| {
            pool::build(cfg, &shared.servers, account.cloned(), share(size), metrics)
        };
        let service_searches = cfg
            .service_account
            .as_ref()
            .map(|account| build(Some(account), cfg.pool.search_size))
            .transpose()?;
        let anonymous_searches = build(None, cfg.pool.search_size)?;
        let binds = build(None, cfg.pool.bind_size)?;
        if let Some(p) = &service_searches {
            shared.remember(PoolKind::service_search, p);
        }
        shared.remember(PoolKind::anonymous_search, &anonymous_searches);
        shared.remember(PoolKind::bind, &binds);
        Ok(Directory {
            users: cfg.users.clone(),
            groups: cfg.groups.clone(),
            cache: shared.cache.clone(),
            metrics: Arc::clone(&shared.metrics),
            operation_timeout: cfg.operation_timeout,
            service_searches,
            anonymous_searches,
            binds,
        })
    }

    /// Find the entry `login` names, before any password is tried: the cached entry, or the
    /// one entry a search (or the DN template's entry) matching `directory.users.filter`.
    /// `attribute` is the one search attribute the client chose (None: the login attributes;
    /// ignored with a DN template); `search_as` says whose rights find the entry. Nothing
    /// else depends on `search_as`: [`Directory::verify`] reads the account's status, its
    /// attributes and its groups with the service account when one is configured.
    #[tracing::instrument(skip_all, fields(login = %login, search_as = search_as.as_str()))]
    pub async fn find(
        &self,
        login: &Login,
        attribute: Option<&str>,
        search_as: SearchAs,
    ) -> Result<Candidate, DirectoryError> {
        // Without a cache, no key is built.
        let key = self.cache.as_ref().map(|_| CacheKey {
            login: login.as_str().to_owned(),
            attribute: attribute.map(str::to_owned),
            search_as,
        });
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(user) = cache.get(key) {
                tracing::debug!("user entry from the cache");
                return Ok(Candidate {
                    dn: user.dn.clone(),
                    found: Found::Cached(user),
                });
            }
        }
        let entry = self.locate(login.as_str(), attribute, search_as).await?;
        Ok(Candidate {
            dn: entry.dn.clone(),
            found: Found::Entry {
                entry,
                search_as,
                key,
            },
        })
    }

    /// Check `password` by binding as `candidate`, then read the account's status, attributes
    /// and groups; with the cache on, a complete answer is kept for the next login.
    pub async fn verify(
        &self,
        candidate: Candidate,
        password: &Password,
    ) -> Result<Identity, DirectoryError> {
        self.bind(&candidate.dn, password).await?;
        match candidate.found {
            Found::Cached(user) => Ok(Identity::clone(&user)),
            Found::Entry {
                entry,
                search_as,
                key,
            } => {
                let user = self.complete(entry, search_as).await?;
                if let (Some(cache), Some(key)) = (&self.cache, key) {
                    cache.insert(key, Arc::new(user.clone()));
                }
                Ok(user)
            }
        }
    }

    /// What a login would find, without a password: the entry, its groups and whether the
    /// account is usable. For `latchkey check --user`; never used by requests.
    pub async fn lookup(
        &self,
        login: &str,
        attribute: Option<&str>,
        search_as: SearchAs,
    ) -> Result<Identity, DirectoryError> {
        let entry = self.locate(login, attribute, search_as).await?;
        self.complete(entry, search_as).await
    }

    /// The one entry `login` names, matching `directory.users.filter`, read with `search_as`
    /// rights: by search, or at the DN template's DN.
    async fn locate(
        &self,
        login: &str,
        attribute: Option<&str>,
        search_as: SearchAs,
    ) -> Result<SearchEntry, DirectoryError> {
        let lookup = self.users.lookup_login(login);
        match &self.users.locator {
            UserLocator::Search => self.find_by_login(lookup, attribute, search_as).await,
            UserLocator::Template(template) => {
                let dn = dn::from_template(template, lookup);
                // The filter applies here as it does to a search: an entry it excludes is no
                // user, whatever its password.
                self.find_user(search_as, &dn, SearchScope::Base, &self.users.filter)
                    .await
            }
        }
    }

    async fn find_by_login(
        &self,
        login: &str,
        attribute: Option<&str>,
        search_as: SearchAs,
    ) -> Result<SearchEntry, DirectoryError> {
        let attributes: Vec<&str> = match attribute {
            Some(a) => vec![a],
            None => self
                .users
                .login_attributes
                .iter()
                .map(String::as_str)
                .collect(),
        };
        let filter = login_filter(&self.users.filter, &attributes, login);
        self.find_user(search_as, &self.users.base_dn, self.users.scope, &filter)
            .await
    }

    /// The account check, the groups and the claims' attributes of a found entry, all read
    /// with the service account when one is configured: the client's choice of
    /// `authenticated_search` changed only whose rights found the entry, so it cannot hide
    /// groups, attributes or a lock from `[access]`.
    async fn complete(
        &self,
        found: SearchEntry,
        found_as: SearchAs,
    ) -> Result<Identity, DirectoryError> {
        let reader = self.reader();
        let entry = if found_as == reader {
            found
        } else {
            self.find_user(reader, &found.dn, SearchScope::Base, &self.users.filter)
                .await
                .inspect_err(|e| {
                    if matches!(e, DirectoryError::UnknownUser) {
                        tracing::warn!(
                            dn = %found.dn,
                            "an entry found with {} rights does not match directory.users.filter when read with {} rights (or cannot be read with them); refusing the login",
                            found_as.as_str(),
                            reader.as_str()
                        );
                    }
                })?
        };
        if let Some(reason) =
            account_status::refusal(self.users.account_status, &entry, chrono::Utc::now())
        {
            return Err(DirectoryError::AccountDisabled(reason));
        }
        let mut user = self.user_entry(&entry)?;
        if self.groups.strategy != crate::config::Strategy::None {
            let mut conn = self
                .search_pool(reader)?
                .get()
                .await
                .map_err(checkout_error)?;
            let started = Instant::now();
            let member = groups::Member {
                dn: &entry.dn,
                username: &user.username,
                entry: &entry,
            };
            match groups::resolve(
                &self.groups,
                &mut conn,
                self.operation_timeout,
                &self.metrics,
                &member,
            )
            .await
            {
                Ok(found) => {
                    tracing::debug!(
                        elapsed_us = started.elapsed().as_micros() as u64,
                        groups = found.len(),
                        "group lookup"
                    );
                    user.groups = found;
                }
                Err(e) => {
                    if matches!(e, DirectoryError::Unavailable(_)) {
                        discard(conn);
                    }
                    return Err(e);
                }
            }
        }
        Ok(user)
    }

    /// Whose rights read what a login needs beyond finding the entry: the service account
    /// when one is configured.
    fn reader(&self) -> SearchAs {
        if self.service_searches.is_some() {
            SearchAs::Service
        } else {
            SearchAs::Anonymous
        }
    }

    fn search_pool(&self, search_as: SearchAs) -> Result<&SearchPool, DirectoryError> {
        match search_as {
            SearchAs::Anonymous => Ok(&self.anonymous_searches),
            SearchAs::Service => self.service_searches.as_ref().ok_or_else(|| {
                DirectoryError::Misconfigured("no service account is configured".into())
            }),
        }
    }

    /// The one entry matching `filter`; none or several is [`DirectoryError::UnknownUser`].
    async fn find_user(
        &self,
        search_as: SearchAs,
        base: &str,
        scope: SearchScope,
        filter: &str,
    ) -> Result<SearchEntry, DirectoryError> {
        let mut conn = self
            .search_pool(search_as)?
            .get()
            .await
            .map_err(checkout_error)?;
        let started = Instant::now();
        let outcome = conn
            .with_timeout(self.operation_timeout)
            .with_search_options(SearchOptions::new().sizelimit(2))
            .search(
                base,
                ldap_scope(scope),
                filter,
                self.users.read_attributes(),
            )
            .await;
        let SearchResult(found, result) = match outcome {
            Ok(r) => r,
            Err(e) => {
                discard(conn);
                return Err(DirectoryError::Unavailable(format!(
                    "user search failed: {e}"
                )));
            }
        };
        self.metrics
            .ldap_operation(Operation::search, started.elapsed());
        tracing::debug!(
            elapsed_us = started.elapsed().as_micros() as u64,
            rc = result.rc,
            "user search"
        );
        let mut entries: Vec<SearchEntry> = found
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(SearchEntry::construct)
            .collect();
        match result.rc {
            // success
            0 => {}
            // sizeLimitExceeded: more entries matched than came back (our limit of 2, or a
            // smaller one of the server's), so even a single entry returned is not a unique match
            4 => {
                tracing::warn!(
                    filter = %filter,
                    returned = entries.len(),
                    "the login matches more entries than the directory returned; refusing it (make the attribute unique, narrow directory.users.filter, or raise the service account's size limit)"
                );
                return Err(DirectoryError::UnknownUser);
            }
            // noSuchObject: the base does not exist (or is hidden from this account)
            32 => {
                tracing::warn!(base = %base, "the search base does not exist or cannot be seen; check directory.users.base_dn");
                return Err(DirectoryError::UnknownUser);
            }
            rc => {
                discard(conn);
                return Err(DirectoryError::Unavailable(format!(
                    "the directory answered the user search with result code {rc} ({})",
                    result.text
                )));
            }
        }
        match entries.len() {
            0 => Err(DirectoryError::UnknownUser),
            1 => entries.pop().ok_or(DirectoryError::UnknownUser),
            n => {
                tracing::warn!(
                    filter = %filter,
                    matches = n,
                    "the login matches several entries; refusing it (make the attribute unique or narrow directory.users.filter)"
                );
                Err(DirectoryError::UnknownUser)
            }
        }
    }

    /// Bind as `dn` with `password` on a bind connection.
    async fn bind(&self, dn: &str, password: &Password) -> Result<(), DirectoryError> {
        let mut conn = self.binds.get().await.map_err(checkout_error)?;
        let started = Instant::now();
        let outcome = conn
            .with_timeout(self.operation_timeout)
            .simple_bind(dn, password.expose())
            .await;
        self.metrics
            .ldap_operation(Operation::bind, started.elapsed());
        match outcome {
            Ok(r) if r.rc == 0 => Ok(()),
            // invalidCredentials, inappropriateAuthentication, insufficientAccessRights,
            // unwillingToPerform: this user may not log in with this password.
            Ok(r) if matches!(r.rc, 48 | RC_INVALID_CREDENTIALS | 50 | 53) => {
                tracing::debug!(rc = r.rc, "user bind refused");
                Err(DirectoryError::InvalidCredentials)
            }
            Ok(r) => {
                discard(conn);
                Err(DirectoryError::Unavailable(format!(
                    "the directory answered the user bind with result code {} ({})",
                    r.rc, r.text
                )))
            }
            Err(e) => {
                discard(conn);
                Err(DirectoryError::Unavailable(format!(
                    "user bind failed: {e}"
                )))
            }
        }
    }

    fn user_entry(&self, entry: &SearchEntry) -> Result<Identity, DirectoryError> {
        let username = first_value(entry, &self.users.username_attribute).ok_or_else(|| {
            DirectoryError::Misconfigured(format!(
                "the entry {:?} has no {} attribute; check directory.users.username_attribute",
                entry.dn, self.users.username_attribute
            ))
        })?;
        let name = self
            .users
            .name_attribute
            .as_deref()
            .and_then(|a| first_value(entry, a));
        let email = self
            .users
            .email_attribute
            .as_deref()
            .and_then(|a| first_value(entry, a));
        let attributes = self
            .users
            .extra_attributes
            .iter()
            .filter_map(|attr| Some((attr.clone(), values(entry, attr)?.clone())))
            .collect();
        Ok(Identity {
            dn: entry.dn.clone(),
            username,
            name,
            email,
            groups: Vec::new(),
            attributes,
        })
    }
}

/// The values of `attribute`, its name matched without regard to case as LDAP does.
pub(crate) fn values<'e>(entry: &'e SearchEntry, attribute: &str) -> Option<&'e Vec<String>> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
        .map(|(_, values)| values)
}

/// The first value of `attribute`.
pub(crate) fn first_value(entry: &SearchEntry, attribute: &str) -> Option<String> {
    values(entry, attribute).and_then(|v| v.first().cloned())
}

pub(crate) fn ldap_scope(scope: SearchScope) -> Scope {
    match scope {
        SearchScope::Base => Scope::Base,
        SearchScope::One => Scope::OneLevel,
        SearchScope::Sub => Scope::Subtree,
    }
}

/// One server's state for `/readyz`.
#[derive(Debug, Clone)]
pub struct ServerHealth {
    pub url: String,
    /// `up`: a connection (and the service bind, when configured) succeeded.
    pub status: &'static str,
    /// How long connecting took, in milliseconds.
    pub elapsed_ms: u64,
    /// Why the server is down.
    pub error: Option<String>,
}

/// Open a fresh connection to every server at once (binding as the service account when one
/// is configured), and close it again.
pub async fn server_health(cfg: &DirectoryConfig) -> Vec<ServerHealth> {
    let connector = Connector::for_probe(cfg);
    let checks = cfg.urls.iter().map(|url| {
        let connector = &connector;
        async move {
            let started = Instant::now();
            let outcome = connector.open(url).await;
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match outcome {
                Ok(mut ldap) => {
                    let _ = ldap.unbind().await;
                    ServerHealth {
                        url: url.to_string(),
                        status: "up",
                        elapsed_ms,
                        error: None,
                    }
                }
                Err(e) => ServerHealth {
                    url: url.to_string(),
                    status: "down",
                    elapsed_ms,
                    error: Some(e.to_string()),
                },
            }
        }
    });
    futures_util::future::join_all(checks).await
}

/// What `latchkey check` learns about one server.
#[derive(Debug, Clone)]
pub struct ServerReport {
    pub url: String,
    /// How the connection was protected (it was set up that way, or it failed).
    pub encryption: Encryption,
    pub connect_ms: u128,
    pub service_bind: Option<String>,
    pub vendor: Option<String>,
    pub version: Option<String>,
    pub naming_contexts: Vec<String>,
    pub starttls: bool,
    pub users_base_found: bool,
}

/// Connect to `url` (binding as the service account when configured), read the RootDSE and
/// look for the users' base entry. Used by `latchkey check`, never by requests. `url` is one of
/// `directory.urls`, as written there.
pub async fn probe(cfg: &DirectoryConfig, url: &str) -> Result<ServerReport, DirectoryError> {
    let url = cfg.urls.iter().find(|u| *u == url).ok_or_else(|| {
        DirectoryError::Misconfigured(format!("{url:?} is not one of directory.urls"))
    })?;
    let connector = Connector::for_probe(cfg);
    let started = Instant::now();
    let mut ldap = connector.open(url).await?;
    let connect_ms = started.elapsed().as_millis();
    let rootdse = ldap
        .with_timeout(cfg.operation_timeout)
        .search(
            "",
            Scope::Base,
            "(objectClass=*)",
            vec![
                "vendorName",
                "vendorVersion",
                "namingContexts",
                "supportedExtension",
            ],
        )
        .await
        .map_err(|e| DirectoryError::Unavailable(format!("reading the RootDSE of {url}: {e}")))?;
    let root = rootdse.0.into_iter().next().map(SearchEntry::construct);
    let get = |attr: &str| -> Vec<String> {
        root.as_ref()
            .and_then(|e| e.attrs.get(attr).cloned())
            .unwrap_or_default()
    };
    let base = ldap
        .with_timeout(cfg.operation_timeout)
        .search(
            &cfg.users.base_dn,
            Scope::Base,
            "(objectClass=*)",
            vec!["1.1"],
        )
        .await
        .map_err(|e| {
            DirectoryError::Unavailable(format!("looking up the users' base on {url}: {e}"))
        })?;
    let _ = ldap.unbind().await;
    Ok(ServerReport {
        url: url.to_string(),
        encryption: cfg.tls.encryption(url),
        connect_ms,
        service_bind: cfg.service_account.as_ref().map(|a| a.dn.clone()),
        vendor: get("vendorName").into_iter().next(),
        version: get("vendorVersion").into_iter().next(),
        naming_contexts: get("namingContexts"),
        starttls: get("supportedExtension")
            .iter()
            .any(|oid| oid == "1.3.6.1.4.1.1466.20037"),
        users_base_found: base.1.rc == 0 && !base.0.is_empty(),
    })
}
