//! A whole login: a login name, a password and options in; an [`Identity`] or a [`Refusal`]
//! out.
//!
//! `POST /auth/request-token` calls [`Logins::log_in`], `latchkey check --user` calls
//! [`Logins::preview`] (the same lookup, without a password), and so will the sign-in form.
//! What this module enforces therefore holds for every way in:
//!
//! - brute-force protection ([`crate::state::BruteForce`]: shared counts, or [`crate::throttle`]'s
//!   local ones) admits the attempt for its login and its client address before any directory
//!   traffic (the shared counts: with the account, after the search, in one round trip; or
//!   before failing, when no entry was found), and for its account (the entry found, by its
//!   DN in lower case) before the password is tried; attempts in flight count, and a
//!   caller that finds every place taken waits for one (at most `busy_patience`);
//! - an empty password never reaches the directory;
//! - an unknown user, a wrong password and an unusable account are told apart only in the
//!   audit line; to the caller they are refusals that [`Refusal::is_bad_credentials`], answered
//!   no sooner than `brute_force.min_failure_time` after the attempt began;
//! - a directory that fails counts nothing against the client;
//! - `[access]` is applied only once the password is proven.
//!
//! Each attempt writes one audit line (target `latchkey::audit`) through [`LoginAttempt`]; a refusal's
//! line is written here, a success's by the caller once it has done its part (signed a token).
//! This module never speaks HTTP and never signs a token.
//!
//! [`Logins::refresh`] renews a session without a password: the token's user is read again
//! with the service account (the lookup `preview` uses, never the user cache), and the entry
//! must still exist, be usable and be the entry the token was issued for (its `entry` claim);
//! `[access]` is applied again; and no more than `tokens.max_session` may have passed since the
//! password was last checked (`auth_time`). Nothing is counted against brute-force limits:
//! no password is tried.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{AccessConfig, Config, Refusal as AccessRefusal, SearchMode};
use crate::credentials::{Login, Password};
use crate::directory::{Directory, DirectoryError, SearchAs};
use crate::identity::{entry_fingerprint, Identity};
use crate::metrics::{FailureReason, Metrics};
use crate::state::{BruteForce, Counted};
use crate::throttle::{BanKind, Refused};
use latchkey_verify::Claims;

/// How often a login waiting for a place in the shared counts asks again.
const BUSY_POLL: Duration = Duration::from_millis(20);

/// What a login may ask for besides its credentials, as the configuration allows it.
#[derive(Debug, Clone)]
pub struct LoginRules {
    search_attributes: Vec<String>,
    search_mode: SearchMode,
}

/// A login's options, checked against [`LoginRules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOptions {
    /// The one attribute the client chose to be found by; None: the configured login
    /// attributes.
    pub attribute: Option<String>,
    /// Whose rights find the entry (and nothing else: see [`Directory::find`]).
    pub search_as: SearchAs,
}

/// Options the configuration does not allow. The texts are the client's to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    #[error("search_criteria must be one of: {0}.")]
    UnknownAttribute(String),
    #[error("This server always searches with its service account; authenticated_search=false is not allowed.")]
    ServiceAccountOnly,
    #[error("This server only searches anonymously; authenticated_search=true is not allowed.")]
    AnonymousOnly,
}

impl LoginRules {
    /// What `config` allows.
    pub fn new(config: &Config) -> LoginRules {
        LoginRules::allowing(
            config.directory.users.search_attributes.clone(),
            config.directory.search_mode,
        )
    }

    /// Logins found by one of `search_attributes` when a client names one, with searches as
    /// `search_mode` allows.
    pub fn allowing(search_attributes: Vec<String>, search_mode: SearchMode) -> LoginRules {
        LoginRules {
            search_attributes,
            search_mode,
        }
    }

    /// Check what a client asked for: `search_criteria` (an attribute name, matched without
    /// regard to case) and `authenticated_search`.
    pub fn options(
        &self,
        search_criteria: Option<&str>,
        authenticated_search: Option<bool>,
    ) -> Result<LoginOptions, OptionError> {
        let attribute = match search_criteria {
            None => None,
            Some(asked) => Some(
                self.search_attributes
                    .iter()
                    .find(|a| a.eq_ignore_ascii_case(asked))
                    .cloned()
                    .ok_or_else(|| {
                        OptionError::UnknownAttribute(self.search_attributes.join(", "))
                    })?,
            ),
        };
        let search_as = match (self.search_mode, authenticated_search) {
            (SearchMode::OnRequest | SearchMode::Always, None | Some(true)) => SearchAs::Service,
            (SearchMode::OnRequest, Some(false)) | (SearchMode::Never, None | Some(false)) => {
                SearchAs::Anonymous
            }
            (SearchMode::Always, Some(false)) => return Err(OptionError::ServiceAccountOnly),
            (SearchMode::Never, Some(true)) => return Err(OptionError::AnonymousOnly),
        };
        Ok(LoginOptions {
            attribute,
            search_as,
        })
    }
}

/// Why a login did not produce an identity: one value that carries its audit reason
/// ([`Refusal::reason`]) and its metric label ([`Refusal::metric`]); the HTTP layer maps it to
/// an answer in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Brute-force protection: a login, account or address is banned (`retry_after` whole
    /// seconds, at least one).
    Banned { retry_after: u64, by: BanKind },
    /// The attempts in flight held every place for longer than a caller waits.
    Busy,
    /// No password: never sent to the directory.
    EmptyPassword,
    /// No single entry matches the login (none, several, or one `users.filter` leaves out).
    UnknownUser,
    /// The directory refused the password.
    InvalidCredentials,
    /// The password was right, but the directory marks the account unusable (the reason).
    AccountDisabled(&'static str),
    /// `access.require` does not hold for the user's groups.
    NotRequired { username: String },
    /// `access.deny` holds for the user's groups.
    Denied { username: String },
    /// The directory failed (the detail, for operators; already logged).
    DirectoryUnavailable(String),
    /// The directory and the configuration disagree (the detail; already logged).
    DirectoryMisconfigured(String),
}

impl Refusal {
    /// The audit line's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Banned { by, .. } => match by {
                BanKind::Login => "banned_login",
                BanKind::Account => "banned_account",
                BanKind::Address => "banned_address",
            },
            Refusal::Busy => "attempts_in_flight",
            Refusal::EmptyPassword => "empty_password",
            Refusal::UnknownUser => "unknown_user",
            Refusal::InvalidCredentials => "invalid_credentials",
            Refusal::AccountDisabled(_) => "account_disabled",
            Refusal::NotRequired { .. } => "policy_require",
            Refusal::Denied { .. } => "policy_deny",
            Refusal::DirectoryUnavailable(_) => "directory_unavailable",
            Refusal::DirectoryMisconfigured(_) => "directory_misconfigured",
        }
    }

    /// The `latchkey_login_failures_total` label.
    pub fn metric(&self) -> FailureReason {
        match self {
            Refusal::Banned { .. } | Refusal::Busy => FailureReason::banned,
            Refusal::EmptyPassword | Refusal::InvalidCredentials => FailureReason::bad_credentials,
            Refusal::UnknownUser => FailureReason::unknown_user,
            Refusal::AccountDisabled(_) => FailureReason::account_disabled,
            Refusal::NotRequired { .. } | Refusal::Denied { .. } => FailureReason::policy,
            Refusal::DirectoryUnavailable(_) => FailureReason::directory_down,
            Refusal::DirectoryMisconfigured(_) => FailureReason::misconfigured,
        }
    }

    /// Whether the client is told only "the login or password is wrong".
    pub fn is_bad_credentials(&self) -> bool {
        matches!(
            self,
            Refusal::EmptyPassword
                | Refusal::UnknownUser
                | Refusal::InvalidCredentials
                | Refusal::AccountDisabled(_)
        )
    }

    /// The user the refusal names, once the password was proven.
    fn username(&self) -> Option<&str> {
        match self {
            Refusal::NotRequired { username } | Refusal::Denied { username } => Some(username),
            _ => None,
        }
    }
}

/// Why a session could not be refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRefusal {
    /// More than `tokens.max_session` seconds have passed since `auth_time`.
    SessionTooOld { max_session: u64 },
    /// The session's user cannot have a new token without a password: the entry is gone, the
    /// account is unusable, the username names another entry now, or the token predates the
    /// `entry` claim (the reason, for the audit line).
    Ended(&'static str),
    /// `[access]` refuses the user now, or the directory failed.
    Refused(Refusal),
}

impl RefreshRefusal {
    /// The audit line's `reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            RefreshRefusal::SessionTooOld { .. } => "session_too_old",
            RefreshRefusal::Ended(reason) => reason,
            RefreshRefusal::Refused(refusal) => refusal.reason(),
        }
    }
}

impl From<DirectoryError> for Refusal {
    fn from(e: DirectoryError) -> Refusal {
        match e {
            DirectoryError::InvalidCredentials => Refusal::InvalidCredentials,
            DirectoryError::UnknownUser => Refusal::UnknownUser,
            DirectoryError::AccountDisabled(why) => Refusal::AccountDisabled(why),
            DirectoryError::Unavailable(why) => Refusal::DirectoryUnavailable(why),
            DirectoryError::Misconfigured(why) => Refusal::DirectoryMisconfigured(why),
        }
    }
}

impl From<Refused> for Refusal {
    fn from(refused: Refused) -> Refusal {
        match refused {
            Refused::Banned { retry_after, by } => Refusal::Banned {
                retry_after: retry_after.as_secs().max(1),
                by,
            },
            Refused::Busy => Refusal::Busy,
        }
    }
}

/// One login attempt: who, from where, since when; it writes the attempt's audit line.
pub struct LoginAttempt<'a> {
    login: &'a Login,
    client: IpAddr,
    started: Instant,
}

impl<'a> LoginAttempt<'a> {
    /// An attempt by `login` from `client`, starting now.
    pub fn new(login: &'a Login, client: IpAddr) -> LoginAttempt<'a> {
        LoginAttempt {
            login,
            client,
            started: Instant::now(),
        }
    }

    /// When the attempt began.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The line for an attempt that ended well for `sub`.
    pub fn issued(&self, sub: &str) {
        self.write("issued", None, Some(sub));
    }

    /// The line for a refused attempt; `sub` once the user is known.
    pub fn refused(&self, reason: &str, sub: Option<&str>) {
        self.write("refused", Some(reason), sub);
    }

    fn write(&self, outcome: &str, reason: Option<&str>, sub: Option<&str>) {
        // The fields are only evaluated when the audit target is on.
        tracing::info!(
            target: "latchkey::audit",
            login = %self.login,
            client = %self.client,
            sub,
            outcome,
            reason,
            elapsed_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "login"
        );
    }
}

/// The audit line of a refresh that gave `sub` a new token.
pub fn refreshed(sub: &str, client: IpAddr) {
    tracing::info!(
        target: "latchkey::audit",
        sub,
        client = %client,
        outcome = "issued",
        "refresh"
    );
}

/// Everything a worker needs to run logins: its directory, the shared brute-force counts and
/// metrics, and the rules.
pub struct Logins {
    directory: Directory,
    rules: LoginRules,
    access: AccessConfig,
    counts: BruteForce,
    metrics: Arc<Metrics>,
    /// A refused login is answered no sooner than this after it began.
    min_failure_time: Duration,
    /// How long a login waits for a place in the brute-force counts while attempts in flight
    /// hold them all: about the longest one attempt can take (a pooled connection, a search,
    /// a bind).
    busy_patience: Duration,
    /// Seconds after `auth_time` a session may still be refreshed.
    max_session: u64,
}

impl Logins {
    /// Logins on `directory` as `config` says, counted in `counts`.
    pub fn new(
        config: &Config,
        directory: Directory,
        counts: BruteForce,
        metrics: Arc<Metrics>,
    ) -> Logins {
        Logins {
            directory,
            rules: LoginRules::new(config),
            access: config.access.clone(),
            counts,
            metrics,
            min_failure_time: config.brute_force.min_failure_time,
            busy_patience: Logins::longest_attempt(config),
            max_session: config.tokens.max_session,
        }
    }

    /// About the longest one attempt can take: a pooled connection, a search, a bind.
    pub fn longest_attempt(config: &Config) -> Duration {
        let d = &config.directory;
        d.pool
            .wait_timeout
            .saturating_add(d.operation_timeout.saturating_mul(2))
    }

    /// What a login may ask for.
    pub fn rules(&self) -> &LoginRules {
        &self.rules
    }

    /// Check `password` for the attempt's login and return who they are; see the
    /// [module documentation](self) for the rules. A refusal is counted in the metrics and
    /// has its audit line already; a success's line is the caller's ([`LoginAttempt::issued`]).
    #[tracing::instrument(name = "login", skip_all)]
    pub async fn log_in(
        &self,
        attempt: &LoginAttempt<'_>,
        password: Option<Password>,
        options: &LoginOptions,
    ) -> Result<Identity, Refusal> {
        let outcome = self.attempt(attempt, password, options).await;
        if let Err(refusal) = &outcome {
            self.metrics.login_failed(refusal.metric());
            attempt.refused(refusal.reason(), refusal.username());
            match refusal {
                Refusal::AccountDisabled(why) => {
                    tracing::info!(login = %attempt.login, "the account is {why}");
                }
                Refusal::DirectoryUnavailable(why) => {
                    tracing::warn!(error = %why, "directory unavailable");
                }
                Refusal::DirectoryMisconfigured(why) => {
                    tracing::error!(error = %why, "directory misconfigured");
                }
                _ => {}
            }
            if refusal.is_bad_credentials() {
                self.slow_down(attempt.started).await;
            }
        }
        outcome
    }

    async fn attempt(
        &self,
        attempt: &LoginAttempt<'_>,
        password: Option<Password>,
        options: &LoginOptions,
    ) -> Result<Identity, Refusal> {
        // Before any directory traffic: the attempt holds a place in its login's and its
        // address's counts until it settles.
        let mut counted = self.begin(attempt).await?;
        // An empty password would be an anonymous bind on many servers.
        let Some(password) = password else {
            self.admit(&mut counted).await?;
            counted.failed().await;
            return Err(Refusal::EmptyPassword);
        };
        let outcome = match self
            .directory
            .find(
                attempt.login,
                options.attribute.as_deref(),
                options.search_as,
            )
            .await
        {
            Ok(candidate) => {
                // Every spelling that reaches this entry shares its count, checked before the
                // password is tried.
                let account = candidate.account_key();
                self.add_account(&mut counted, &account).await?;
                self.directory.verify(candidate, &password).await
            }
            Err(e) => {
                // No entry: the login's and the address's places, if the counts are shared
                // and have not taken them yet (a banned login is 429 whether or not it exists).
                self.admit(&mut counted).await?;
                Err(e)
            }
        };
        drop(password);
        let identity = match outcome {
            Ok(identity) => identity,
            Err(e) => {
                let refusal = Refusal::from(e);
                if refusal.is_bad_credentials() {
                    counted.failed().await;
                }
                // Otherwise dropping the attempt counts nothing: the directory, not the client,
                // failed.
                return Err(refusal);
            }
        };
        // The password is right: this login's and this account's failures are forgotten (never
        // anyone else's, never the address's).
        counted.succeeded().await;
        // Only now, with the password proven, may an answer depend on who the user is.
        self.decide(identity)
    }

    /// What a login would find, without a password and without counting anything: the entry,
    /// its groups and whether the account is usable. For `latchkey check --user`; `[access]`
    /// is left to the caller, which shows the groups either way.
    pub async fn preview(&self, login: &str, options: &LoginOptions) -> Result<Identity, Refusal> {
        Ok(self
            .directory
            .lookup(login, options.attribute.as_deref(), options.search_as)
            .await?)
    }

    /// Who the holder of the verified `claims` is now, without a password, as of `now`; see
    /// the [module documentation](self). Writes the refresh's audit line when it is refused; a
    /// success's is the caller's ([`refreshed`]).
    #[tracing::instrument(name = "refresh", skip_all)]
    pub async fn refresh(
        &self,
        claims: &Claims,
        client: IpAddr,
        now: i64,
    ) -> Result<Identity, RefreshRefusal> {
        let outcome = self.renew(claims, now).await;
        if let Err(refusal) = &outcome {
            if let RefreshRefusal::Refused(Refusal::DirectoryUnavailable(why)) = refusal {
                tracing::warn!(error = %why, "directory unavailable");
            }
            if let RefreshRefusal::Refused(Refusal::DirectoryMisconfigured(why)) = refusal {
                tracing::error!(error = %why, "directory misconfigured");
            }
            tracing::info!(
                target: "latchkey::audit",
                sub = %claims.sub,
                client = %client,
                outcome = "refused",
                reason = refusal.reason(),
                "refresh"
            );
        }
        outcome
    }

    async fn renew(&self, claims: &Claims, now: i64) -> Result<Identity, RefreshRefusal> {
        let since = now.saturating_sub(claims.authenticated_at());
        if since > i64::try_from(self.max_session).unwrap_or(i64::MAX) {
            return Err(RefreshRefusal::SessionTooOld {
                max_session: self.max_session,
            });
        }
        let Some(entry) = &claims.entry else {
            return Err(RefreshRefusal::Ended("token_without_entry"));
        };
        let options = self
            .rules
            .options(None, None)
            .map_err(|e| RefreshRefusal::Refused(Refusal::DirectoryMisconfigured(e.to_string())))?;
        let identity = match self
            .directory
            .lookup(&claims.sub, options.attribute.as_deref(), options.search_as)
            .await
        {
            Ok(identity) => identity,
            Err(DirectoryError::UnknownUser) => return Err(RefreshRefusal::Ended("entry_gone")),
            Err(DirectoryError::AccountDisabled(why)) => {
                tracing::info!(sub = %claims.sub, "the account is {why}");
                return Err(RefreshRefusal::Ended("account_disabled"));
            }
            Err(e) => return Err(RefreshRefusal::Refused(Refusal::from(e))),
        };
        // Constant-time is not needed: the fingerprint is in the client's own token.
        if entry_fingerprint(&identity.dn) != *entry || identity.username != claims.sub {
            return Err(RefreshRefusal::Ended("entry_changed"));
        }
        self.decide(identity).map_err(RefreshRefusal::Refused)
    }

    /// `[access]` for a proven identity.
    fn decide(&self, identity: Identity) -> Result<Identity, Refusal> {
        match self.access.decide(&identity.groups) {
            Ok(()) => Ok(identity),
            Err(AccessRefusal::NotRequired) => Err(Refusal::NotRequired {
                username: identity.username,
            }),
            Err(AccessRefusal::Denied) => Err(Refusal::Denied {
                username: identity.username,
            }),
        }
    }

    /// A place for `attempt` in its login's and its address's counts: while the attempts in
    /// flight hold every place ([`Refused::Busy`]), wait for one of them to settle, for at most
    /// `busy_patience`.
    async fn begin(&self, attempt: &LoginAttempt<'_>) -> Result<Counted<'_>, Refusal> {
        let deadline = self.busy_deadline();
        loop {
            // Made before asking, so a release between the answer and the wait is not missed.
            let released = self.counts.throttle().released().notified();
            match self
                .counts
                .begin(attempt.login.as_str(), attempt.client)
                .await
            {
                Err(Refused::Busy) => {}
                answer => return answer.map_err(Refusal::from),
            }
            self.wait_for_a_place(deadline, released).await?;
        }
    }

    /// [`Logins::begin`] for an attempt whose places the shared counts have not taken yet.
    async fn admit(&self, counted: &mut Counted<'_>) -> Result<(), Refusal> {
        let deadline = self.busy_deadline();
        loop {
            let released = self.counts.throttle().released().notified();
            match counted.admit().await {
                Err(Refused::Busy) => {}
                answer => return answer.map_err(Refusal::from),
            }
            self.wait_for_a_place(deadline, released).await?;
        }
    }

    /// [`Logins::begin`] for the account the attempt found.
    async fn add_account(&self, counted: &mut Counted<'_>, account: &str) -> Result<(), Refusal> {
        let deadline = self.busy_deadline();
        loop {
            let released = self.counts.throttle().released().notified();
            match counted.add_account(account).await {
                Err(Refused::Busy) => {}
                answer => return answer.map_err(Refusal::from),
            }
            self.wait_for_a_place(deadline, released).await?;
        }
    }

    fn busy_deadline(&self) -> Option<Instant> {
        Instant::now().checked_add(self.busy_patience)
    }

    /// Wait until an attempt of this process settles, or (with shared counts, where attempts
    /// of other replicas settle without a word) [`BUSY_POLL`] has passed; [`Refusal::Busy`]
    /// once `deadline` has passed.
    async fn wait_for_a_place(
        &self,
        deadline: Option<Instant>,
        released: tokio::sync::futures::Notified<'_>,
    ) -> Result<(), Refusal> {
        let left = deadline.map_or(self.busy_patience, |d| {
            d.saturating_duration_since(Instant::now())
        });
        if left.is_zero() {
            return Err(Refusal::Busy);
        }
        if self.counts.polls_when_busy() {
            let _ = tokio::time::timeout(left.min(BUSY_POLL), released).await;
            Ok(())
        } else if tokio::time::timeout(left, released).await.is_err() {
            Err(Refusal::Busy)
        } else {
            Ok(())
        }
    }

    /// Wait until `min_failure_time` has passed since `started`, so a refusal takes as long
    /// whether or not the login exists. The worker serves other requests meanwhile.
    async fn slow_down(&self, started: Instant) {
        if let Some(rest) = self.min_failure_time.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(mode: SearchMode) -> LoginRules {
        LoginRules::allowing(vec!["uid".into(), "mail".into()], mode)
    }

    #[test]
    fn the_service_account_is_the_default_where_there_is_one() {
        let on_request = rules(SearchMode::OnRequest).options(None, None).unwrap();
        assert_eq!(
            on_request,
            LoginOptions {
                attribute: None,
                search_as: SearchAs::Service
            }
        );
        let never = rules(SearchMode::Never).options(None, None).unwrap();
        assert_eq!(never.search_as, SearchAs::Anonymous);
    }

    #[test]
    fn search_criteria_must_be_allowed() {
        let r = rules(SearchMode::OnRequest);
        assert_eq!(
            r.options(Some("MAIL"), None).unwrap().attribute.as_deref(),
            Some("mail")
        );
        assert_eq!(
            r.options(Some("userPassword"), None)
                .unwrap_err()
                .to_string(),
            "search_criteria must be one of: uid, mail."
        );
    }

    #[test]
    fn authenticated_search_obeys_the_mode() {
        let on_request = rules(SearchMode::OnRequest);
        assert_eq!(
            on_request.options(None, Some(false)).unwrap().search_as,
            SearchAs::Anonymous
        );
        assert_eq!(
            on_request.options(None, Some(true)).unwrap().search_as,
            SearchAs::Service
        );
        assert_eq!(
            rules(SearchMode::Always).options(None, Some(false)),
            Err(OptionError::ServiceAccountOnly)
        );
        assert_eq!(
            rules(SearchMode::Never).options(None, Some(true)),
            Err(OptionError::AnonymousOnly)
        );
    }

    #[test]
    fn each_refusal_has_its_reason_and_metric() {
        let cases = [
            (
                Refusal::Banned {
                    retry_after: 3,
                    by: BanKind::Account,
                },
                "banned_account",
                FailureReason::banned,
                false,
            ),
            (
                Refusal::Busy,
                "attempts_in_flight",
                FailureReason::banned,
                false,
            ),
            (
                Refusal::EmptyPassword,
                "empty_password",
                FailureReason::bad_credentials,
                true,
            ),
            (
                Refusal::UnknownUser,
                "unknown_user",
                FailureReason::unknown_user,
                true,
            ),
            (
                Refusal::AccountDisabled("locked"),
                "account_disabled",
                FailureReason::account_disabled,
                true,
            ),
            (
                Refusal::Denied {
                    username: "bob".into(),
                },
                "policy_deny",
                FailureReason::policy,
                false,
            ),
            (
                Refusal::DirectoryUnavailable("down".into()),
                "directory_unavailable",
                FailureReason::directory_down,
                false,
            ),
        ];
        for (refusal, reason, metric, bad_credentials) in cases {
            assert_eq!(refusal.reason(), reason);
            assert_eq!(refusal.metric(), metric, "{reason}");
            assert_eq!(refusal.is_bad_credentials(), bad_credentials, "{reason}");
        }
    }
}
