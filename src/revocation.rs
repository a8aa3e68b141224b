//! The service's revocations: where a sign-out or an operator's "revoke" is written, and the
//! source every verification reads ([`latchkey_verify::Revocations`]).
//!
//! With the memory backend the store is one [`RevocationSet`] for the whole process: every
//! worker's verifier reads it, a revocation is in force on every worker the moment it is
//! written, and it lasts until the process stops (a restart forgets it; several replicas need
//! a shared store).
//!
//! With `[state] backend = "redis"` it is a [`RedisRevocations`]: the verifiers read its local
//! mirror (the same kind of set), which follows the sorted set `<state.redis.key_prefix>
//! revocations` through a subscription and a full read every 30 seconds; a revocation is written
//! to the mirror at once and to Redis for every other replica, which hear of it within a second.
//! While Redis is unreachable the mirror is kept (nothing revoked before is accepted), a
//! revocation made here holds here and is refused with 503 `revocations_unavailable` (the other
//! replicas have not heard of it), and when Redis is back the mirror follows it again and
//! writes back what Redis lost. Each change is logged once.
//!
//! What this module guarantees, whatever the backend:
//!
//! - reading never waits on the network or on a lock held for longer than a map insert;
//! - entries expire by [`ExpiryRules`] built from the configuration: a token id kept until the
//!   token's `exp` plus `verify.leeway`, a user's cutoff until the cutoff plus
//!   `tokens.max_duration` plus `verify.leeway`: no token it covers can verify after that;
//! - a revocation by token id whose `exp` is not known (an operator names only the id) is kept
//!   for `tokens.max_duration` from now, the longest the token could still live.
//!
//! It never speaks HTTP and never decides who may revoke: that is `http::sessions`, with
//! `[admin]`.

use std::sync::Arc;
use std::time::Duration;

use latchkey_verify::redis::{Client, KeyLayout, MirrorState, RedisOptions, RedisRevocations};
use latchkey_verify::{ExpiryRules, Revocation, RevocationSet, Revocations};

use crate::config::{Config, RedisConfig, StateConfig};
use crate::state::store::{connection_info, RETRY_INTERVAL};
use crate::state::StateError;

/// How often a replica reads the whole revocation set again (besides the subscription).
pub const FULL_SYNC: Duration = Duration::from_secs(30);

/// The longest a token id may be in a revocation: Latchkey's are 32 hex digits.
pub const MAX_TOKEN_ID_LEN: usize = 128;

/// The longest a username may be in a revocation.
pub const MAX_USER_LEN: usize = 256;

/// Where revocations are written and read.
#[derive(Debug, Clone)]
pub struct RevocationStore {
    backend: Backend,
    rules: ExpiryRules,
}

#[derive(Debug, Clone)]
enum Backend {
    Memory(Arc<RevocationSet>),
    Redis(Arc<RedisRevocations>),
}

/// Why a revocation could not be written.
#[derive(Debug, thiserror::Error)]
pub enum RevocationError {
    /// The shared store could not be written (the detail, for operators).
    #[error("the revocation store cannot be written: {0}")]
    Unavailable(String),
}

/// A revocation a client asked for, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Every token of this user issued up to now.
    User(String),
    /// The token with this id.
    TokenId(String),
}

/// Why a [`Target`] cannot be revoked. The texts are the client's to read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "user must be a username of 1 to {MAX_USER_LEN} characters without control characters."
    )]
    BadUser,
    #[error("token_id must be 1 to {MAX_TOKEN_ID_LEN} letters, digits, '-' or '_'.")]
    BadTokenId,
}

impl Target {
    /// Check the target's text.
    pub fn checked(self) -> Result<Target, TargetError> {
        match &self {
            Target::User(user) => {
                let ok = !user.trim().is_empty()
                    && user.chars().count() <= MAX_USER_LEN
                    && !user.chars().any(char::is_control);
                if !ok {
                    return Err(TargetError::BadUser);
                }
            }
            Target::TokenId(id) => {
                let ok = !id.is_empty()
                    && id.len() <= MAX_TOKEN_ID_LEN
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !ok {
                    return Err(TargetError::BadTokenId);
                }
            }
        }
        Ok(self)
    }
}

impl RevocationStore {
    /// The store `config` describes: entries expire by its token lifetime and leeway. With the
    /// Redis backend the mirror starts following Redis now, on a thread of its own.
    pub fn new(config: &Config) -> Result<RevocationStore, StateError> {
        let rules = expiry_rules(config);
        match &config.state {
            StateConfig::Memory => Ok(RevocationStore::memory(rules)),
            StateConfig::Redis(redis) => {
                let options = RedisOptions {
                    prefix: redis.key_prefix.clone(),
                    full_sync: FULL_SYNC,
                    retry_after: RETRY_INTERVAL,
                    operation_timeout: redis.operation_timeout,
                    on_change: Some(Arc::new(log_mirror_state)),
                };
                let mirror = RedisRevocations::start(client(redis)?, rules, options)
                    .map_err(|e| StateError::Setup(e.to_string()))?;
                Ok(RevocationStore {
                    backend: Backend::Redis(Arc::new(mirror)),
                    rules,
                })
            }
        }
    }

    /// A store in this process's memory.
    pub fn memory(rules: ExpiryRules) -> RevocationStore {
        RevocationStore {
            backend: Backend::Memory(Arc::new(RevocationSet::new(rules))),
            rules,
        }
    }

    fn set(&self) -> &Arc<RevocationSet> {
        match &self.backend {
            Backend::Memory(set) => set,
            Backend::Redis(redis) => redis.mirror(),
        }
    }

    /// What verifiers read: the set itself, or the Redis backend's mirror.
    pub fn source(&self) -> Arc<dyn Revocations> {
        Arc::clone(self.set()) as Arc<dyn Revocations>
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.set().len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.set().is_empty()
    }

    /// Whether the entries held are the shared store's (always with the memory backend, whose
    /// set is the store; with Redis while the mirror follows it), and how long ago the mirror
    /// last read the shared set in full (zero with the memory backend; None before the mirror's
    /// first full read).
    pub fn sync_status(&self) -> (bool, Option<Duration>) {
        match &self.backend {
            Backend::Memory(_) => (true, Some(Duration::ZERO)),
            Backend::Redis(redis) => (redis.is_connected(), redis.since_full_read()),
        }
    }

    /// Revoke the token `jti`, which expires at `exp`.
    pub async fn revoke_token(&self, jti: &str, exp: i64) -> Result<(), RevocationError> {
        self.write(Revocation::Token {
            jti: jti.to_owned(),
            exp,
        })
        .await
    }

    /// Revoke what `target` names, as of `now`: a user's tokens issued up to `now`, or a token
    /// by id, kept as long as a token could live from `now`.
    pub async fn revoke(&self, target: &Target, now: i64) -> Result<(), RevocationError> {
        self.write(revocation_of(target, now, self.rules)).await
    }

    async fn write(&self, revocation: Revocation) -> Result<(), RevocationError> {
        match &self.backend {
            Backend::Memory(set) => {
                set.insert(revocation, unix_now());
                Ok(())
            }
            Backend::Redis(redis) => redis
                .revoke(revocation, unix_now())
                .await
                .map_err(|e| RevocationError::Unavailable(e.to_string())),
        }
    }
}

/// A client for the shared store `redis` describes (TLS files included).
fn client(redis: &RedisConfig) -> Result<Client, StateError> {
    Client::open(connection_info(redis)?).map_err(|e| StateError::Setup(e.to_string()))
}

fn log_mirror_state(state: MirrorState) {
    match state {
        MirrorState::Following => {
            tracing::info!("revocations follow the shared state store");
        }
        MirrorState::Lost(error) => tracing::warn!(
            %error,
            "revocations no longer follow the shared state store: this replica keeps refusing the revocations it \
             knows and misses other replicas' new ones until it is back"
        ),
    }
}

/// Revoke from outside the service (`latchkey revoke`): written to the shared store, where
/// every replica's mirror hears of it. Only with the Redis backend: with the memory backend
/// revocations live in the running process, which only its own `/auth/revoke` reaches.
pub async fn revoke_shared(config: &Config, target: &Target, now: i64) -> Result<(), String> {
    let StateConfig::Redis(redis) = &config.state else {
        return Err(
            "revoking from the command line needs the shared store ([state] backend = \"redis\"): \
             with the memory backend revocations live inside the running service; use its \
             POST /auth/revoke with an administrator's token ([admin] require)"
                .to_owned(),
        );
    };
    let rules = expiry_rules(config);
    let revocation = revocation_of(target, now, rules);
    let client = client(redis).map_err(|e| e.to_string())?;
    latchkey_verify::redis::publish(
        &client,
        &KeyLayout::new(&redis.key_prefix),
        rules,
        &revocation,
        now,
        redis.operation_timeout.max(redis.connect_timeout),
    )
    .await
    .map_err(|e| {
        format!(
            "cannot write the revocation to {}: {e}",
            redis.display_url()
        )
    })
}

/// The revocation `target` asks for, as of `now`.
fn revocation_of(target: &Target, now: i64, rules: ExpiryRules) -> Revocation {
    match target {
        Target::User(user) => Revocation::User {
            user: user.clone(),
            at: now,
        },
        Target::TokenId(jti) => Revocation::Token {
            jti: jti.clone(),
            exp: now.saturating_add(i64::try_from(rules.max_lifetime).unwrap_or(i64::MAX)),
        },
    }
}

/// How long entries are kept for `config`: `tokens.max_duration` is the longest lifetime a
/// token of this service has, `verify.leeway` the skew its verifiers tolerate.
pub fn expiry_rules(config: &Config) -> ExpiryRules {
    ExpiryRules {
        max_lifetime: config.tokens.max_duration,
        leeway: config.verify.leeway,
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use latchkey_verify::Claims;

    const RULES: ExpiryRules = ExpiryRules {
        max_lifetime: 86400,
        leeway: 5,
    };

    fn claims(sub: &str, jti: &str, iat: i64) -> Claims {
        let mut c = Claims::new("latchkey", sub, iat, iat + 600);
        c.jti = jti.into();
        c
    }

    #[test]
    fn targets_are_checked() {
        for good in ["alice", "Dreßler", "a b"] {
            assert!(Target::User(good.into()).checked().is_ok(), "{good}");
        }
        for bad in ["", "  ", "a\nb", &"x".repeat(257)] {
            assert_eq!(
                Target::User(bad.into()).checked(),
                Err(TargetError::BadUser),
                "{bad:?}"
            );
        }
        assert!(Target::TokenId("0123456789abcdef".into()).checked().is_ok());
        for bad in ["", "a b", "a:b", &"f".repeat(129)] {
            assert_eq!(
                Target::TokenId(bad.into()).checked(),
                Err(TargetError::BadTokenId),
                "{bad:?}"
            );
        }
        assert_eq!(
            TargetError::BadTokenId.to_string(),
            "token_id must be 1 to 128 letters, digits, '-' or '_'."
        );
    }

    #[tokio::test]
    async fn a_revocation_is_read_by_every_holder_of_the_source() {
        let store = RevocationStore::memory(RULES);
        let source = store.source();
        let now = unix_now();
        assert!(store.is_empty());
        store
            .revoke(&Target::TokenId("j1".into()), now)
            .await
            .unwrap();
        assert!(source.is_revoked(&claims("alice", "j1", now)));
        store.revoke_token("j2", now + 60).await.unwrap();
        assert!(source.is_revoked(&claims("bob", "j2", now)));
        store
            .revoke(&Target::User("Carol".into()), now)
            .await
            .unwrap();
        assert!(source.is_revoked(&claims("carol", "x", now)));
        assert!(!source.is_revoked(&claims("carol", "x", now + 1)));
        assert_eq!(store.len(), 3);
    }
}
