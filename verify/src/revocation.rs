//! Tokens that end before they expire: revocations, and the set a verifier consults.
//!
//! A token is revoked in one of two ways ([`Revocation`]):
//!
//! - **by its id**: the token whose `jti` is named (a sign-out);
//! - **by its user**: every token of a user issued up to and including a second (`iat` ≤ that
//!   second): "sign out everywhere", a leaver. A token issued in the very second of the
//!   revocation is revoked too, since `iat` cannot tell before from after within a second; the
//!   user signs in again a second later.
//!
//! Users are compared by their `sub` in lower case ([`user_key`]): the directory's
//! usernames compare without regard to case, and an operator typing `Alice` means `alice`.
//!
//! **Expiry.** An entry is kept exactly as long as a token it covers could still be accepted
//! ([`ExpiryRules`]): a token id until the token's `exp` plus the verifier's leeway; a user's
//! cutoff until the cutoff plus the longest token lifetime the verifier accepts (the issuer's
//! `tokens.max_duration`) plus the leeway. After that every token it covers has expired and is
//! refused as expired anyway, so the set holds no more than the revoked tokens still alive.
//!
//! **Speed.** [`Revocations::is_revoked`] is on every verification's path: it is synchronous,
//! takes no lock at all while the set is empty, and otherwise a read lock that writers (rare:
//! a sign-out) hold only for a map insert. It never waits on the network; a networked source
//! (the `redis` feature's `RedisRevocations`) keeps a local [`RevocationSet`] as its mirror.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{PoisonError, RwLock};

use crate::Claims;

/// Where a verifier learns which tokens are revoked. Implementations answer from memory, in
/// microseconds; they never wait on the network.
pub trait Revocations: Send + Sync + fmt::Debug {
    /// Whether the verified `claims` belong to a revoked token.
    fn is_revoked(&self, claims: &Claims) -> bool;
}

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Revocation {
    /// The token with the id `jti`, which expires at `exp` (seconds since the Unix epoch).
    Token {
        /// The token's `jti`.
        jti: String,
        /// The token's `exp`.
        exp: i64,
    },
    /// Every token of `user` issued at or before `at` (seconds since the Unix epoch).
    User {
        /// The user's `sub` (compared in lower case).
        user: String,
        /// The cutoff: tokens with `iat` ≤ `at` are revoked.
        at: i64,
    },
}

/// How long revocations are kept: as long as a token they cover could still verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryRules {
    /// The longest token lifetime (`exp - iat`) the verifiers accept, in seconds: the issuer's
    /// `tokens.max_duration`.
    pub max_lifetime: u64,
    /// The clock skew the verifiers tolerate after `exp`, in seconds.
    pub leeway: u64,
}

impl ExpiryRules {
    /// The second after which `revocation` covers no token a verifier could still accept.
    pub fn kept_until(&self, revocation: &Revocation) -> i64 {
        let leeway = i64::try_from(self.leeway).unwrap_or(i64::MAX);
        match revocation {
            Revocation::Token { exp, .. } => exp.saturating_add(leeway),
            Revocation::User { at, .. } => at
                .saturating_add(i64::try_from(self.max_lifetime).unwrap_or(i64::MAX))
                .saturating_add(leeway),
        }
    }
}

/// The key a user's revocation is kept under: the `sub` in lower case.
pub fn user_key(sub: &str) -> String {
    sub.to_lowercase()
}

/// How often, at most, an insert sweeps expired entries out, in seconds.
const SWEEP_EVERY: i64 = 60;

#[derive(Debug, Default)]
struct Entries {
    /// Token id → kept until.
    tokens: HashMap<String, i64>,
    /// User key → (cutoff, kept until).
    users: HashMap<String, (i64, i64)>,
    /// No sweep before this second.
    next_sweep: i64,
}

/// Revocations held in memory, shared by threads: the revocation source of one process, and
/// the mirror a networked source keeps. Expired entries are swept out by inserts (at most once
/// a minute), so the set holds the live revocations and at most a minute's worth of expired
/// ones.
#[derive(Debug)]
pub struct RevocationSet {
    rules: ExpiryRules,
    /// True while the set holds nothing: verification then takes no lock.
    empty: AtomicBool,
    entries: RwLock<Entries>,
}

impl RevocationSet {
    /// An empty set whose entries expire by `rules`.
    pub fn new(rules: ExpiryRules) -> RevocationSet {
        RevocationSet {
            rules,
            empty: AtomicBool::new(true),
            entries: RwLock::new(Entries::default()),
        }
    }

    /// The rules entries expire by.
    pub fn rules(&self) -> ExpiryRules {
        self.rules
    }

    /// Add `revocation` as of `now`; false when it changes nothing (already held, a user
    /// cutoff no later than the one held, or already expired).
    pub fn insert(&self, revocation: Revocation, now: i64) -> bool {
        let until = self.rules.kept_until(&revocation);
        if until < now {
            return false;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if now >= entries.next_sweep {
            entries.tokens.retain(|_, kept| *kept >= now);
            entries.users.retain(|_, (_, kept)| *kept >= now);
            entries.next_sweep = now.saturating_add(SWEEP_EVERY);
        }
        let changed = match revocation {
            Revocation::Token { jti, .. } => match entries.tokens.get_mut(&jti) {
                Some(kept) if *kept >= until => false,
                Some(kept) => {
                    *kept = until;
                    true
                }
                None => {
                    entries.tokens.insert(jti, until);
                    true
                }
            },
            Revocation::User { user, at } => match entries.users.get_mut(&user_key(&user)) {
                Some((cutoff, _)) if *cutoff >= at => false,
                Some(held) => {
                    *held = (at, until);
                    true
                }
                None => {
                    entries.users.insert(user_key(&user), (at, until));
                    true
                }
            },
        };
        self.empty.store(
            entries.tokens.is_empty() && entries.users.is_empty(),
            Ordering::Release,
        );
        changed
    }

    /// How many entries the set holds (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.tokens.len() + entries.users.len()
    }

    /// Whether the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.empty.load(Ordering::Acquire)
    }

    /// Every entry still in force at `now`.
    pub fn live(&self, now: i64) -> Vec<Revocation> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let leeway = i64::try_from(self.rules.leeway).unwrap_or(i64::MAX);
        let tokens = entries
            .tokens
            .iter()
            .filter(|(_, kept)| **kept >= now)
            .map(|(jti, kept)| Revocation::Token {
                jti: jti.clone(),
                exp: kept.saturating_sub(leeway),
            });
        let users = entries
            .users
            .iter()
            .filter(|(_, (_, kept))| *kept >= now)
            .map(|(user, (at, _))| Revocation::User {
                user: user.clone(),
                at: *at,
            });
        tokens.chain(users).collect()
    }
}

impl Revocations for RevocationSet {
    fn is_revoked(&self, claims: &Claims) -> bool {
        if self.empty.load(Ordering::Acquire) {
            return false;
        }
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        if entries.tokens.contains_key(&claims.jti) {
            return true;
        }
        if entries.users.is_empty() {
            return false;
        }
        // Usernames are mostly lower-case ASCII, their own key: fold (and allocate) only the
        // others.
        let plain = claims
            .sub
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
        let cutoff = if plain {
            entries.users.get(claims.sub.as_str())
        } else {
            entries.users.get(&user_key(&claims.sub))
        };
        cutoff.is_some_and(|(at, _)| claims.iat <= *at)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const RULES: ExpiryRules = ExpiryRules {
        max_lifetime: 3600,
        leeway: 5,
    };

    fn claims(sub: &str, jti: &str, iat: i64) -> Claims {
        let mut c = Claims::new("latchkey", sub, iat, iat + 600);
        c.jti = jti.into();
        c
    }

    fn token(jti: &str, exp: i64) -> Revocation {
        Revocation::Token {
            jti: jti.into(),
            exp,
        }
    }

    fn user(user: &str, at: i64) -> Revocation {
        Revocation::User {
            user: user.into(),
            at,
        }
    }

    #[test]
    fn entries_are_kept_while_a_token_they_cover_can_verify() {
        assert_eq!(RULES.kept_until(&token("j", 1_000)), 1_005);
        assert_eq!(RULES.kept_until(&user("alice", 1_000)), 1_000 + 3600 + 5);
        let huge = ExpiryRules {
            max_lifetime: u64::MAX,
            leeway: u64::MAX,
        };
        assert_eq!(huge.kept_until(&user("a", i64::MAX - 1)), i64::MAX);
        assert_eq!(huge.kept_until(&token("j", 0)), i64::MAX);
    }

    #[test]
    fn a_revoked_id_refuses_that_token_only() {
        let set = RevocationSet::new(RULES);
        assert!(set.is_empty());
        assert!(!set.is_revoked(&claims("alice", "j1", 100)));
        assert!(set.insert(token("j1", 700), 100));
        assert!(!set.is_empty());
        assert!(set.is_revoked(&claims("alice", "j1", 100)));
        assert!(!set.is_revoked(&claims("alice", "j2", 100)));
        assert!(!set.insert(token("j1", 700), 101), "held already");
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn a_user_cutoff_refuses_tokens_issued_up_to_that_second() {
        let set = RevocationSet::new(RULES);
        assert!(set.insert(user("Alice", 1_000), 1_000));
        assert!(set.is_revoked(&claims("alice", "a", 999)));
        assert!(set.is_revoked(&claims("alice", "b", 1_000)));
        assert!(set.is_revoked(&claims("ALICE", "c", 1_000)));
        // Titlecase letters fold too ('ǅ' is not uppercase, its lower case is 'ǆ').
        assert!(set.insert(user("ǆemal", 1_000), 1_000));
        assert!(set.is_revoked(&claims("ǅemal", "t", 1_000)));
        assert!(set.is_revoked(&claims("ǆemal", "t", 1_000)));
        assert!(!set.is_revoked(&claims("alice", "d", 1_001)));
        assert!(!set.is_revoked(&claims("bob", "e", 999)));
        // A later cutoff replaces an earlier one; an earlier one changes nothing.
        assert!(!set.insert(user("alice", 900), 1_000));
        assert!(set.insert(user("alice", 1_100), 1_100));
        assert!(set.is_revoked(&claims("alice", "d", 1_001)));
        assert_eq!(set.len(), 2);
        assert!(set.live(1_100).contains(&user("alice", 1_100)));
    }

    #[test]
    fn expired_entries_are_not_added_and_are_swept() {
        let set = RevocationSet::new(RULES);
        assert!(
            !set.insert(token("old", 100), 106),
            "expired with its leeway"
        );
        assert!(set.is_empty());
        assert!(
            set.insert(token("old", 100), 105),
            "the last second it can verify"
        );
        assert!(set.insert(user("bob", 100), 105));
        assert_eq!(set.live(105).len(), 2);
        assert_eq!(set.live(106), vec![user("bob", 100)]);
        // The next insert a minute on sweeps out what expired.
        assert!(set.insert(token("new", 10_000), 105 + SWEEP_EVERY));
        assert_eq!(set.len(), 2);
        assert!(set.insert(token("newer", 10_000), 100 + 3600 + 6 + SWEEP_EVERY));
        assert_eq!(set.len(), 2, "bob's cutoff has expired too");
        assert!(!set.is_revoked(&claims("bob", "x", 50)));
    }

    #[test]
    fn live_entries_give_back_what_was_inserted() {
        let set = RevocationSet::new(RULES);
        set.insert(token("j", 500), 100);
        set.insert(user("carol", 90), 100);
        let mut live = set.live(100);
        live.sort_by_key(|r| format!("{r:?}"));
        assert_eq!(live, vec![token("j", 500), user("carol", 90)]);
    }
}
