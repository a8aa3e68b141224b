//! Brute-force counts on the shared store, with this replica's [`Throttle`] as the fallback.
//!
//! The rules are the throttle's (see [`crate::throttle`]): per login, per account and per
//! address; a fixed window opened by the first failure; the N-th failure bans; bans are not
//! extended; a success clears only its login and account; attempts in flight hold a place.
//! Here they are kept in Redis and applied by two Lua scripts, each one round trip, run
//! atomically by the server, so that every replica sees one count:
//!
//! * `RESERVE` checks every key of a step (login and address at the start, the account once
//!   the entry is found) and, only if none refuses, holds one place in each;
//! * `SETTLE` gives the places back and counts a failure, clears the failures or does
//!   neither, per key.
//!
//! # Key layout
//!
//! For a key of kind `login`, `account` or `addr` (see [`counter_key`]):
//!
//! * `{prefix}bf:{kind}:{id}`, a hash: `f` the failures of the current window, `b` present
//!   while banned. It expires with its window (set by the first failure) or, once banned,
//!   when the ban ends (set by the failure that bans), so an existing key is always live and
//!   the server's expiry is the only clock.
//! * `{prefix}bf:{kind}:{id}:inflight`, a sorted set of the attempts in flight: member the
//!   attempt's random id, score the time its lease ends. A replica that dies with attempts in
//!   flight leaves places that free themselves when their lease ends.
//!
//! A login's and an account's `id` is the SHA-256 of the counting key (the folded login, the
//! entry's DN in lower case), in hex: what a user typed in the login field (sometimes a
//! password) is never stored in clear. An address's `id` is the address, or the IPv6 /64,
//! as text, for operators to read.
//!
//! Time comes from the server (`TIME`), so replicas with skewed clocks still share one window.

use std::net::IpAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use deadpool_redis::redis::Script;
use sha2::{Digest, Sha256};

use super::store::{SharedStore, StateError};
use crate::throttle::{self, Attempt, BanKind, Refused, Throttle, ThrottleConfig};

/// Checks every key (pairs of counter and in-flight keys), then reserves a place in each.
/// ARGV: lease in ms, attempt id, then one limit per pair. Answers `{0,0,0}` (reserved),
/// `{1, i, pttl}` (pair `i` is banned for `pttl` ms more) or `{2, i, 0}` (pair `i` is busy).
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local member = ARGV[2]
local n = #KEYS / 2
for i = 1, n do
  local counter, inflight = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call('HEXISTS', counter, 'b') == 1 then
    return {1, i, redis.call('PTTL', counter)}
  end
  local failures = tonumber(redis.call('HGET', counter, 'f') or '0')
  redis.call('ZREMRANGEBYSCORE', inflight, '-inf', now)
  if failures + redis.call('ZCARD', inflight) >= tonumber(ARGV[2 + i]) then
    return {2, i, 0}
  end
end
for i = 1, n do
  redis.call('ZADD', KEYS[2 * i], now + lease, member)
  redis.call('PEXPIRE', KEYS[2 * i], lease)
end
return {0, 0, 0}
",
    )
});

/// Gives back the attempt's place in every pair and, per pair, counts a failure (`f`),
/// clears the failures (`c`) or does nothing more (`r`); a banned key is left as it is.
/// ARGV: window in ms, ban in ms, attempt id, then per pair its mode and limit.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local window, ban, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local n = #KEYS / 2
for i = 1, n do
  local counter, inflight = KEYS[2 * i - 1], KEYS[2 * i]
  local mode, limit = ARGV[2 + 2 * i], tonumber(ARGV[3 + 2 * i])
  redis.call('ZREM', inflight, member)
  if redis.call('HEXISTS', counter, 'b') == 0 then
    if mode == 'f' then
      local f = redis.call('HINCRBY', counter, 'f', 1)
      if f >= limit then
        redis.call('HSET', counter, 'b', '1')
        redis.call('PEXPIRE', counter, ban)
      elseif f == 1 then
        redis.call('PEXPIRE', counter, window)
      end
    elseif mode == 'c' then
      redis.call('DEL', counter)
    end
  end
end
return n
",
    )
});

/// The kind part of a key.
fn kind_name(kind: BanKind) -> &'static str {
    match kind {
        BanKind::Login => "login",
        BanKind::Account => "account",
        BanKind::Address => "addr",
    }
}

/// The counter key of `id` (already a login key, a lower-case DN, or an address key).
pub fn counter_key(prefix: &str, kind: BanKind, id: &str) -> String {
    let id = match kind {
        BanKind::Login | BanKind::Account => hex_sha256(id),
        BanKind::Address => id.to_owned(),
    };
    format!("{prefix}bf:{}:{id}", kind_name(kind))
}

/// The in-flight key that goes with a counter key.
pub fn in_flight_key(counter: &str) -> String {
    format!("{counter}:inflight")
}

fn hex_sha256(text: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A duration as the whole milliseconds Redis expiries take, at least 1 (`PEXPIRE 0` would
/// delete the key at once).
pub fn expiry_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, i64::MAX.unsigned_abs())
}

/// `Retry-After` for a ban with `pttl_ms` left (Redis's `PTTL`): whole seconds rounded up, at
/// least one (a key about to expire, or without an expiry, still answers 1).
pub fn retry_after(pttl_ms: i64) -> Duration {
    let ms = u64::try_from(pttl_ms).unwrap_or(0);
    Duration::from_secs(ms.div_ceil(1000).max(1))
}

/// How long an attempt in flight holds its place if its replica never settles it: twice the
/// longest a login can take, and at least ten seconds.
pub fn lease(longest_login: Duration) -> Duration {
    longest_login.saturating_mul(2).max(Duration::from_secs(10))
}

/// One counted key of a shared attempt.
#[derive(Debug, Clone)]
struct HeldKey {
    kind: BanKind,
    counter: String,
    limit: u32,
}

/// What a step asks of a key at settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settle {
    Fail,
    Clear,
    Release,
}

impl Settle {
    fn mode(self, kind: BanKind) -> &'static str {
        match (self, kind) {
            (Settle::Fail, _) => "f",
            // A success never clears an address's failures.
            (Settle::Clear, BanKind::Address) | (Settle::Release, _) => "r",
            (Settle::Clear, _) => "c",
        }
    }
}

/// The shared counts of one worker.
#[derive(Clone, Debug)]
struct SharedCounts {
    store: SharedStore,
    config: ThrottleConfig,
    lease_ms: u64,
}

impl SharedCounts {
    fn limit(&self, kind: BanKind) -> u32 {
        match kind {
            BanKind::Login | BanKind::Account => self.config.max_failures_per_login,
            BanKind::Address => self.config.max_failures_per_address,
        }
    }

    /// The held key for `id` of `kind`, or None when that kind is off.
    fn key(&self, kind: BanKind, id: &str) -> Option<HeldKey> {
        let limit = self.limit(kind);
        (limit > 0).then(|| HeldKey {
            kind,
            counter: counter_key(self.store.prefix(), kind, id),
            limit,
        })
    }

    /// Reserves a place in every key of `keys`, or none.
    async fn reserve(&self, keys: &[HeldKey], id: &str) -> Result<Result<(), Refused>, StateError> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        let mut invocation = RESERVE.prepare_invoke();
        invocation.arg(self.lease_ms).arg(id);
        for key in keys {
            invocation
                .key(&key.counter)
                .key(in_flight_key(&key.counter));
        }
        for key in keys {
            invocation.arg(key.limit);
        }
        let answer: Vec<i64> = self
            .store
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        let refused_by = |i: i64| {
            usize::try_from(i)
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| keys.get(i))
                .map_or(BanKind::Login, |k| k.kind)
        };
        match answer.as_slice() {
            [0, ..] => Ok(Ok(())),
            [1, i, pttl] => Ok(Err(Refused::Banned {
                retry_after: retry_after(*pttl),
                by: refused_by(*i),
            })),
            [2, ..] => Ok(Err(Refused::Busy)),
            other => Err(StateError::Failed(format!(
                "the reservation script answered {other:?}"
            ))),
        }
    }

    async fn settle(&self, keys: &[HeldKey], id: &str, how: Settle) -> Result<(), StateError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut invocation = SETTLE.prepare_invoke();
        invocation
            .arg(expiry_ms(self.config.window))
            .arg(expiry_ms(self.config.ban))
            .arg(id);
        for key in keys {
            invocation
                .key(&key.counter)
                .key(in_flight_key(&key.counter))
                .arg(how.mode(key.kind))
                .arg(key.limit);
        }
        let _: i64 = self
            .store
            .run(|mut c| async move { invocation.invoke_async(&mut c).await })
            .await?;
        Ok(())
    }
}

/// Brute-force protection for one worker: the shared counts while the store answers, this
/// process's [`Throttle`] otherwise (and always with the memory backend).
#[derive(Debug)]
pub struct BruteForce {
    local: Arc<Throttle>,
    shared: Option<SharedCounts>,
}

impl BruteForce {
    /// Local counting only (the memory backend).
    pub fn local(throttle: Arc<Throttle>) -> BruteForce {
        BruteForce {
            local: throttle,
            shared: None,
        }
    }

    /// Shared counting on `store`, falling back to `throttle`; `longest_login` sets the lease
    /// of an attempt in flight.
    pub fn shared(
        throttle: Arc<Throttle>,
        store: SharedStore,
        longest_login: Duration,
    ) -> BruteForce {
        let config = *throttle.config();
        BruteForce {
            local: throttle,
            shared: Some(SharedCounts {
                store,
                config,
                lease_ms: expiry_ms(lease(longest_login)),
            }),
        }
    }

    /// The local counts (also the fallback).
    pub fn throttle(&self) -> &Throttle {
        &self.local
    }

    /// Whether a caller told [`Refused::Busy`] must poll: attempts on other replicas settle
    /// without waking this one.
    pub fn polls_when_busy(&self) -> bool {
        self.shared.is_some()
    }

    /// Admits an attempt for `login` from `addr` (see [`Throttle::begin`]).
    pub async fn begin(&self, login: &str, addr: IpAddr) -> Result<Counted<'_>, Refused> {
        if let Some(shared) = self.shared.as_ref().filter(|s| s.store.available()) {
            let keys: Vec<HeldKey> = [
                shared.key(BanKind::Login, &throttle::login_key(login)),
                shared.key(BanKind::Address, &throttle::address_key(addr)),
            ]
            .into_iter()
            .flatten()
            .collect();
            let id = format!("{:016x}", rand::random::<u64>());
            match shared.reserve(&keys, &id).await {
                Ok(Ok(())) => {
                    return Ok(Counted {
                        owner: self,
                        how: How::Shared(SharedAttempt {
                            counts: shared.clone(),
                            id,
                            keys,
                            login: login.to_owned(),
                            account: None,
                            addr,
                        }),
                    })
                }
                Ok(Err(refused)) => return Err(refused),
                // Counted locally: the failure is logged and measured by the store.
                Err(_) => {}
            }
        }
        let attempt = self.local.begin(login, addr, Instant::now())?;
        Ok(Counted {
            owner: self,
            how: How::Local(attempt),
        })
    }
}

/// A shared attempt's places, for settling.
#[derive(Debug)]
struct SharedAttempt {
    counts: SharedCounts,
    id: String,
    keys: Vec<HeldKey>,
    login: String,
    account: Option<String>,
    addr: IpAddr,
}

#[derive(Debug)]
enum How<'t> {
    Local(Attempt<'t>),
    Shared(SharedAttempt),
    /// Settled (or moved to `Local`): nothing to give back.
    Done,
}

/// An admitted attempt: settle it with [`Counted::failed`] or [`Counted::succeeded`]; dropped
/// unsettled, it gives its places back and counts nothing.
#[derive(Debug)]
#[must_use = "an attempt holds places in the counts until it is settled or dropped"]
pub struct Counted<'t> {
    owner: &'t BruteForce,
    how: How<'t>,
}

impl Counted<'_> {
    /// Admits the attempt for the account it found (see [`Attempt::add_account`]).
    pub async fn add_account(&mut self, account: &str) -> Result<(), Refused> {
        match &mut self.how {
            How::Local(attempt) => attempt.add_account(account, Instant::now()),
            How::Shared(shared) => {
                if shared.account.is_some() {
                    return Ok(());
                }
                let Some(key) = shared.counts.key(BanKind::Account, account) else {
                    shared.account = Some(account.to_owned());
                    return Ok(());
                };
                match shared
                    .counts
                    .reserve(std::slice::from_ref(&key), &shared.id)
                    .await
                {
                    Ok(Ok(())) => {
                        shared.keys.push(key);
                        shared.account = Some(account.to_owned());
                        Ok(())
                    }
                    Ok(Err(refused)) => Err(refused),
                    Err(_) => {
                        // The store went away mid-attempt: go on with local counts for all
                        // three keys, giving the shared places back when it answers again
                        // (or when their lease ends).
                        let login = shared.login.clone();
                        let addr = shared.addr;
                        self.release_shared();
                        let mut local = self.owner.local.begin(&login, addr, Instant::now())?;
                        local.add_account(account, Instant::now())?;
                        self.how = How::Local(local);
                        Ok(())
                    }
                }
            }
            How::Done => Ok(()),
        }
    }

    /// The credentials were wrong: one failure for every key held.
    pub async fn failed(mut self) {
        match std::mem::replace(&mut self.how, How::Done) {
            How::Local(attempt) => attempt.failed(Instant::now()),
            How::Shared(shared) => {
                let outcome = shared
                    .counts
                    .settle(&shared.keys, &shared.id, Settle::Fail)
                    .await;
                if outcome.is_err() {
                    // Not lost: counted here instead.
                    self.owner.local.record_failed_attempt(
                        &shared.login,
                        shared.account.as_deref(),
                        shared.addr,
                        Instant::now(),
                    );
                }
            }
            How::Done => {}
        }
    }

    /// The password was right: the login's and the account's failures are forgotten.
    pub async fn succeeded(mut self) {
        match std::mem::replace(&mut self.how, How::Done) {
            How::Local(attempt) => attempt.succeeded(Instant::now()),
            How::Shared(shared) => {
                // A failure to clear leaves the failures to expire with their window.
                let _ = shared
                    .counts
                    .settle(&shared.keys, &shared.id, Settle::Clear)
                    .await;
            }
            How::Done => {}
        }
    }

    /// Gives a shared attempt's places back in the background.
    fn release_shared(&mut self) {
        if let How::Shared(shared) = std::mem::replace(&mut self.how, How::Done) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let _ = shared
                        .counts
                        .settle(&shared.keys, &shared.id, Settle::Release)
                        .await;
                });
            }
            // Without a runtime the places free themselves when their lease ends.
        }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.release_shared();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_logins_and_accounts_and_show_addresses() {
        let login = counter_key("latchkey:", BanKind::Login, "alice");
        assert_eq!(
            login,
            "latchkey:bf:login:2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"
        );
        assert_eq!(in_flight_key(&login), format!("{login}:inflight"));
        // The same DN as an account is another key than as a login.
        let account = counter_key("lk/", BanKind::Account, "alice");
        assert!(account.starts_with("lk/bf:account:2bd806c9"), "{account}");
        assert_eq!(
            counter_key("latchkey:", BanKind::Address, "2001:db8::/64"),
            "latchkey:bf:addr:2001:db8::/64"
        );
        // What was typed is never in a key.
        assert!(!counter_key("p:", BanKind::Login, "hunter2").contains("hunter2"));
    }

    #[test]
    fn expiries_are_whole_milliseconds_and_never_zero() {
        assert_eq!(expiry_ms(Duration::from_secs(600)), 600_000);
        assert_eq!(expiry_ms(Duration::from_micros(1500)), 1);
        assert_eq!(expiry_ms(Duration::ZERO), 1);
        assert_eq!(expiry_ms(Duration::MAX), i64::MAX.unsigned_abs());
    }

    #[test]
    fn retry_after_rounds_the_ban_left_up_to_seconds() {
        assert_eq!(retry_after(600_000), Duration::from_secs(600));
        assert_eq!(retry_after(599_001), Duration::from_secs(600));
        assert_eq!(retry_after(1), Duration::from_secs(1));
        // An expiring key (-2) or one without expiry (-1) still says one second.
        assert_eq!(retry_after(-2), Duration::from_secs(1));
        assert_eq!(retry_after(-1), Duration::from_secs(1));
    }

    #[test]
    fn a_lease_outlasts_the_longest_login() {
        assert_eq!(lease(Duration::from_secs(3)), Duration::from_secs(10));
        assert_eq!(lease(Duration::from_secs(30)), Duration::from_secs(60));
        assert_eq!(lease(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn a_success_never_clears_an_address() {
        assert_eq!(Settle::Clear.mode(BanKind::Login), "c");
        assert_eq!(Settle::Clear.mode(BanKind::Account), "c");
        assert_eq!(Settle::Clear.mode(BanKind::Address), "r");
        assert_eq!(Settle::Fail.mode(BanKind::Address), "f");
        assert_eq!(Settle::Release.mode(BanKind::Login), "r");
    }
}
