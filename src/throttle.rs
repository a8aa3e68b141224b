//! Counting failed logins, per login name, per account and per client address.
//!
//! `POST /auth/request-token` uses a [`Throttle`] like this:
//!
//! 1. Before any directory traffic, [`Throttle::begin`] admits the attempt or refuses it. A
//!    refusal is [`Refused::Banned`] (answer `429` with a `Retry-After` of `retry_after`, no
//!    LDAP traffic at all) or [`Refused::Busy`]: the attempts already in flight for this login
//!    or address could, if they all fail, use up its allowance. A busy caller waits for
//!    [`Throttle::released`] and asks again, so legitimate bursts queue briefly while guesses
//!    never outnumber the limit.
//! 2. Once the directory has found the entry, [`Attempt::add_account`] admits the attempt for
//!    that account (its DN, in lower case) the same way, before the password is tried. Every
//!    spelling of one entry (letter case, email or username, a stripped domain) shares this
//!    key.
//! 3. After the directory rejected the credentials, [`Attempt::failed`] counts a failure for
//!    every key the attempt holds; after a successful bind, [`Attempt::succeeded`] clears the
//!    login's and the account's failures. An attempt dropped unsettled (the directory was
//!    down, the client went away) just gives its places back.
//!
//! # In-flight attempts
//!
//! An admitted attempt holds a place in the count of each of its keys until it settles: a
//! key admits a new attempt only while `failures + attempts in flight < limit`. However many
//! requests arrive at once, at most `limit` of them reach the directory before the ban. (The
//! unit tests state the counting rules below through `check`, `record_failure` and
//! `record_success`, which count without reserving and exist for them only.) The in-flight
//! counts are kept apart
//! from the failure entries and hold one small entry per key with attempts in flight, so
//! their size is bounded by the number of requests in flight.
//!
//! # Keys
//!
//! Three kinds of key are counted independently of each other:
//!
//! * **Logins**, trimmed and case-folded with [`str::to_lowercase`], so
//!   `"Alice"`, `"alice "` and `" ALICE"` share one counter. Only the first
//!   256 bytes of a folded login are used as its key, so that an
//!   attacker sending enormous logins cannot make each tracked key costly.
//! * **Accounts**: the DN of the entry a login found, in lower case, with the
//!   per-login limit. A login and its account are both checked and both
//!   counted, so a guesser gains nothing by changing the spelling.
//! * **Client addresses**. IPv4 addresses are counted one by one. IPv6
//!   addresses are counted per /64 prefix, since a single host usually
//!   controls a whole /64 and could otherwise rotate through it. IPv4-mapped
//!   IPv6 addresses (`::ffff:a.b.c.d`, as seen on dual-stack sockets) are
//!   counted as the IPv4 address they carry, not as one shared /64.
//!
//! # Counting rules
//!
//! * **Window: fixed per key.** A key's window opens with its first failure
//!   and lasts [`ThrottleConfig::window`]. Failures inside it are counted; the
//!   first failure at or after its end opens a fresh window with a count of 1.
//!   This needs one counter and one timestamp per key. The price is that a
//!   patient attacker can place up to `2 * limit - 1` failures in a short span
//!   straddling the end of a window (`limit - 1` just before its end and
//!   `limit` just after) before being banned.
//! * **Limit: the N-th failure bans.** With a limit of `N`, at most `N`
//!   failures of one key are recorded per window: recording the `N`-th
//!   failure starts the ban. The first `N` attempts therefore reach the
//!   directory, and attempt `N + 1` is refused by [`Throttle::begin`].
//! * **A limit of 0 disables** that kind of key: nothing is counted or
//!   stored for it, and it never bans.
//! * **Bans are not extended.** A ban lasts exactly [`ThrottleConfig::ban`]
//!   from the failure that started it. Failures recorded for a key while it
//!   is banned are ignored: they neither count nor push the end of the ban
//!   back. Otherwise anyone could keep a victim's login locked forever by
//!   sending one bad password per ban period (the classic lockout
//!   denial-of-service). When a ban ends, the key starts over with no
//!   failures.
//! * **A success clears only that login's and that account's failures.**
//!   It never touches any other login, and never the address counter: an
//!   attacker who owns one valid account must not be able to reset their
//!   address counter by logging in as themselves between guesses. A success does not lift an
//!   active ban either (it can only happen if a request was already in
//!   flight when the ban began).
//!
//! # Memory
//!
//! Each kind of key holds at most [`ThrottleConfig::max_tracked`] entries.
//! When a new key must be stored and its map is full, expired entries are
//! dropped first. If that frees nothing, a batch of entries (an eighth of the
//! capacity, at least one) is evicted in one pass: entries that are not
//! banned go first, and among those with equal ban status, the ones closest
//! to expiry (for unbanned keys: the oldest windows) go first.
//!
//! Eviction forgets a key's failures (or, as a last resort, its ban), so the
//! key gets a fresh allowance of `limit` attempts. An attacker who can make
//! failures for more than `max_tracked` distinct logins per window can thus
//! get extra guesses on a login; the address counter is what stops such a
//! spray from one address (or one IPv6 /64), so size `max_tracked` well above
//! the number of distinct keys expected per window and keep the address limit
//! enabled. Maps use std's randomly keyed hasher, so crafted keys cannot
//! degrade lookups.
//!
//! # Cost and locking
//!
//! Every call is a few hash-map operations under a [`std::sync::Mutex`] (one
//! per kind of key, never two held at once, never held across anything
//! slow). Full scans happen only in [`Throttle::prune`],
//! [`Throttle::active_bans`], in the automatic prune (at most once per second
//! per map, and only when it is at least half full) and when a full map must
//! evict (at most once per `max_tracked / 8` new keys). A poisoned mutex is
//! recovered rather than propagated: the maps hold only counters, so their
//! contents stay usable.
//!
//! Time is passed in as an [`Instant`] so that callers decide the clock and
//! tests need no sleeping. Instants earlier than ones already seen are
//! treated as "no time has passed"; no arithmetic on them can panic.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Longest prefix of a (trimmed, case-folded) login, in bytes, used as its
/// key. Longer logins share the counter of their first
/// `MAX_LOGIN_KEY_BYTES` bytes (cut at a character boundary).
const MAX_LOGIN_KEY_BYTES: usize = 256;

/// Least time between two automatic prunes of one map.
const AUTO_PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of a [`Throttle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures of one login per window; recording the last of them bans the
    /// login, so attempt `max_failures_per_login + 1` is refused. 0 disables
    /// per-login counting.
    pub max_failures_per_login: u32,
    /// Failures from one client address (IPv4 address or IPv6 /64) per
    /// window; recording the last of them bans the address. 0 disables
    /// per-address counting.
    pub max_failures_per_address: u32,
    /// Length of a key's counting window, which opens with its first failure.
    pub window: Duration,
    /// How long a key stays banned once its limit is reached.
    pub ban: Duration,
    /// Most keys kept per kind (logins, addresses). 0 stores nothing, which
    /// turns throttling off; use a limit of 0 to turn one kind off instead.
    pub max_tracked: usize,
}

/// Outcome of `Throttle::check` (tests only).
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Neither the login nor the address is banned: go ahead and ask the
    /// directory.
    Allowed,
    /// Refuse the attempt without asking the directory.
    Banned {
        /// Time left until the ban ends, rounded up to whole seconds and at
        /// least one second: the value for a `Retry-After` header. When both
        /// the login and the address are banned, the longer of the two.
        retry_after: Duration,
        /// Which ban `retry_after` belongs to (on equal times: the login).
        by: BanKind,
    },
}

/// The kind of key that is banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanKind {
    /// The login name has too many recent failures.
    Login,
    /// The entry the login found has too many recent failures, under any spelling.
    Account,
    /// The client address (or its IPv6 /64) has too many recent failures.
    Address,
}

/// Why [`Throttle::begin`] or [`Attempt::add_account`] did not admit an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A key is banned: answer with `retry_after` (whole seconds, at least one) and do not
    /// ask the directory.
    Banned {
        /// Time left until the ban ends, rounded up to whole seconds.
        retry_after: Duration,
        /// Which key is banned.
        by: BanKind,
    },
    /// The attempts already in flight for a key could use up its allowance: wait for
    /// [`Throttle::released`] and ask again.
    Busy,
}

/// A refusal for one key, before it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRefusal {
    Banned(Duration),
    Busy,
}

impl KeyRefusal {
    fn named(self, by: BanKind) -> Refused {
        match self {
            KeyRefusal::Banned(left) => Refused::Banned {
                retry_after: round_up_to_seconds(left),
                by,
            },
            KeyRefusal::Busy => Refused::Busy,
        }
    }
}

/// Failure counters and bans for logins, accounts and client addresses.
///
/// Shared between request handlers (it is `Send + Sync`); see the
/// [module documentation](self) for the exact rules.
#[derive(Debug)]
pub struct Throttle {
    config: ThrottleConfig,
    logins: Mutex<Tracker<String>>,
    accounts: Mutex<Tracker<String>>,
    addresses: Mutex<Tracker<AddrKey>>,
    /// Woken whenever an attempt settles, for callers told [`Refused::Busy`].
    released: tokio::sync::Notify,
}

// Compile-time proof that a `Throttle` can be shared between threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Throttle>();
};

/// Counting key of a client address: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum AddrKey {
    V4(u32),
    V6Prefix(u64),
}

impl AddrKey {
    fn of(addr: IpAddr) -> AddrKey {
        match addr.to_canonical() {
            IpAddr::V4(v4) => AddrKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                // The upper 64 bits always fit in a u64.
                AddrKey::V6Prefix(u64::try_from(bits >> 64).unwrap_or(u64::MAX))
            }
        }
    }
}

impl std::fmt::Display for AddrKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            AddrKey::V4(v4) => write!(f, "{}", std::net::Ipv4Addr::from(v4)),
            AddrKey::V6Prefix(prefix) => {
                write!(
                    f,
                    "{}/64",
                    std::net::Ipv6Addr::from(u128::from(prefix) << 64)
                )
            }
        }
    }
}

/// The text of the key `addr` is counted under: an IPv4 address, or an IPv6 /64 such as
/// `2001:db8::/64` (what the shared counts store in Redis).
pub fn address_key(addr: IpAddr) -> String {
    AddrKey::of(addr).to_string()
}

/// Builds the counting key of a login: trimmed, case-folded, and cut to at
/// most [`MAX_LOGIN_KEY_BYTES`] bytes at a character boundary.
pub fn login_key(login: &str) -> String {
    // Cut before folding too, so an enormous login is never copied whole.
    let trimmed = truncate_at_char_boundary(login.trim(), MAX_LOGIN_KEY_BYTES * 4);
    let folded = trimmed.to_lowercase();
    let kept = truncate_at_char_boundary(&folded, MAX_LOGIN_KEY_BYTES);
    kept.trim_end().to_owned()
}

/// The longest prefix of `s` of at most `max` bytes ending on a character
/// boundary.
fn truncate_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// Rounds a remaining ban time up to whole seconds, at least one.
fn round_up_to_seconds(remaining: Duration) -> Duration {
    let mut secs = remaining.as_secs();
    if remaining.subsec_nanos() > 0 {
        secs = secs.saturating_add(1);
    }
    Duration::from_secs(secs.max(1))
}

/// Limits that apply to one kind of key.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_failures: u32,
    window: Duration,
    ban: Duration,
    capacity: usize,
}

impl Limits {
    fn enabled(&self) -> bool {
        self.max_failures > 0 && self.capacity > 0
    }
}

/// State of one key.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Failures counted in the current window.
    failures: u32,
    /// When the current window opened.
    window_start: Instant,
    /// When the ban started, if the key is (or was) banned.
    banned_at: Option<Instant>,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            failures: 0,
            window_start: now,
            banned_at: None,
        }
    }

    /// Time until this entry stops mattering: the rest of the ban if banned,
    /// the rest of the window otherwise. Zero means expired.
    fn remaining(&self, now: Instant, limits: &Limits) -> Duration {
        match self.banned_at {
            Some(at) => limits.ban.saturating_sub(now.saturating_duration_since(at)),
            None => limits
                .window
                .saturating_sub(now.saturating_duration_since(self.window_start)),
        }
    }

    fn is_expired(&self, now: Instant, limits: &Limits) -> bool {
        self.remaining(now, limits).is_zero()
    }

    /// Remaining ban time, if the entry is banned right now.
    fn ban_remaining(&self, now: Instant, limits: &Limits) -> Option<Duration> {
        self.banned_at?;
        let left = self.remaining(now, limits);
        (!left.is_zero()).then_some(left)
    }

    /// Eviction order: unbanned before banned, then closest to expiry first.
    fn eviction_rank(&self, now: Instant, limits: &Limits) -> (bool, Duration) {
        (self.banned_at.is_some(), self.remaining(now, limits))
    }
}

/// Counters of one kind of key.
#[derive(Debug)]
struct Tracker<K> {
    entries: HashMap<K, Entry>,
    /// Admitted attempts not settled yet, by key; a key with none has no entry.
    in_flight: HashMap<K, u32>,
    last_prune: Option<Instant>,
}

impl<K: Eq + Hash> Tracker<K> {
    fn new() -> Tracker<K> {
        Tracker {
            entries: HashMap::new(),
            in_flight: HashMap::new(),
            last_prune: None,
        }
    }

    /// Admits one more attempt for `key` unless it is banned or its failures plus the
    /// attempts in flight already reach the limit. `Ok(true)`: a place is held and must be
    /// given back with [`Tracker::release`]; `Ok(false)`: this kind of key is off.
    fn reserve(&mut self, key: &K, now: Instant, limits: &Limits) -> Result<bool, KeyRefusal>
    where
        K: Clone,
    {
        if !limits.enabled() {
            return Ok(false);
        }
        if let Some(left) = self.ban_remaining(key, now, limits) {
            return Err(KeyRefusal::Banned(left));
        }
        let failures = self
            .entries
            .get(key)
            .filter(|entry| !entry.is_expired(now, limits))
            .map_or(0, |entry| entry.failures);
        let pending = self.in_flight.get(key).copied().unwrap_or(0);
        if failures.saturating_add(pending) >= limits.max_failures {
            return Err(KeyRefusal::Busy);
        }
        *self.in_flight.entry(key.clone()).or_insert(0) += 1;
        Ok(true)
    }

    /// Gives back a place taken by [`Tracker::reserve`].
    fn release(&mut self, key: &K) {
        if let Some(pending) = self.in_flight.get_mut(key) {
            *pending = pending.saturating_sub(1);
            if *pending == 0 {
                self.in_flight.remove(key);
            }
        }
    }

    /// Remaining ban of `key`, dropping its entry if it has expired.
    fn ban_remaining(&mut self, key: &K, now: Instant, limits: &Limits) -> Option<Duration> {
        let entry = self.entries.get(key)?;
        if entry.is_expired(now, limits) {
            self.entries.remove(key);
            return None;
        }
        entry.ban_remaining(now, limits)
    }

    fn record_failure(&mut self, key: K, now: Instant, limits: &Limits) {
        if !limits.enabled() {
            return;
        }
        self.maybe_auto_prune(now, limits);
        let entry = match self.entries.get_mut(&key) {
            Some(entry) => entry,
            None => {
                self.make_room(now, limits);
                if self.entries.len() >= limits.capacity {
                    return;
                }
                self.entries.entry(key).or_insert_with(|| Entry::fresh(now))
            }
        };
        if entry.is_expired(now, limits) {
            // Window over, or ban over: start again from nothing.
            *entry = Entry::fresh(now);
        } else if entry.banned_at.is_some() {
            // Still banned: neither count nor extend.
            return;
        }
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= limits.max_failures {
            entry.banned_at = Some(now);
        }
    }

    /// Forgets the failures of `key` unless it is banned right now.
    fn clear(&mut self, key: &K, now: Instant, limits: &Limits) {
        let banned = self
            .entries
            .get(key)
            .is_some_and(|entry| entry.ban_remaining(now, limits).is_some());
        if !banned {
            self.entries.remove(key);
        }
    }

    fn prune(&mut self, now: Instant, limits: &Limits) {
        self.entries
            .retain(|_, entry| !entry.is_expired(now, limits));
        self.last_prune = Some(now);
    }

    /// Prunes when the map is at least half full and the last prune is at
    /// least [`AUTO_PRUNE_INTERVAL`] old.
    fn maybe_auto_prune(&mut self, now: Instant, limits: &Limits) {
        if self.entries.len() < limits.capacity / 2 {
            return;
        }
        let due = self
            .last_prune
            .is_none_or(|last| now.saturating_duration_since(last) >= AUTO_PRUNE_INTERVAL);
        if due {
            self.prune(now, limits);
        }
    }

    /// Makes space for one new entry if the map is full: prunes, then evicts
    /// a batch of the least valuable entries.
    fn make_room(&mut self, now: Instant, limits: &Limits) {
        if self.entries.len() < limits.capacity {
            return;
        }
        self.prune(now, limits);
        let len = self.entries.len();
        if len < limits.capacity || len == 0 {
            return;
        }
        let batch = (len - limits.capacity)
            .saturating_add(1)
            .max(limits.capacity / 8)
            .clamp(1, len);

        let mut ranks: Vec<(bool, Duration)> = self
            .entries
            .values()
            .map(|entry| entry.eviction_rank(now, limits))
            .collect();
        // `batch - 1 < len`, so this cannot panic.
        let (_, pivot, _) = ranks.select_nth_unstable(batch - 1);
        let pivot = *pivot;
        let below = ranks.iter().filter(|rank| **rank < pivot).count();
        let mut equal_quota = batch.saturating_sub(below);
        self.entries.retain(|_, entry| {
            let rank = entry.eviction_rank(now, limits);
            if rank < pivot {
                false
            } else if rank == pivot && equal_quota > 0 {
                equal_quota -= 1;
                false
            } else {
                true
            }
        });
    }

    fn count_banned(&self, now: Instant, limits: &Limits) -> usize {
        self.entries
            .values()
            .filter(|entry| entry.ban_remaining(now, limits).is_some())
            .count()
    }
}

/// Locks `mutex`, recovering the data if another thread panicked while
/// holding it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => {
            mutex.clear_poison();
            poisoned.into_inner()
        }
    }
}

impl Throttle {
    /// Creates a throttle with no recorded failures.
    pub fn new(config: ThrottleConfig) -> Throttle {
        Throttle {
            config,
            logins: Mutex::new(Tracker::new()),
            accounts: Mutex::new(Tracker::new()),
            addresses: Mutex::new(Tracker::new()),
            released: tokio::sync::Notify::new(),
        }
    }

    /// A throttle that counts nothing and refuses nothing (every limit 0), for logins that try
    /// no password.
    pub fn off() -> Throttle {
        Throttle::new(ThrottleConfig {
            max_failures_per_login: 0,
            max_failures_per_address: 0,
            window: Duration::ZERO,
            ban: Duration::ZERO,
            max_tracked: 0,
        })
    }

    /// Admits an attempt for `login` from `addr`, holding a place in both counts until the
    /// attempt settles; see the [module documentation](self).
    pub fn begin(&self, login: &str, addr: IpAddr, now: Instant) -> Result<Attempt<'_>, Refused> {
        let mut attempt = Attempt {
            throttle: self,
            login: None,
            account: None,
            address: None,
            settled: false,
        };
        let login_limits = self.login_limits();
        let key = login_key(login);
        if lock(&self.logins)
            .reserve(&key, now, &login_limits)
            .map_err(|r| r.named(BanKind::Login))?
        {
            attempt.login = Some(key);
        }
        let address_limits = self.address_limits();
        let key = AddrKey::of(addr);
        if lock(&self.addresses)
            .reserve(&key, now, &address_limits)
            .map_err(|r| r.named(BanKind::Address))?
        {
            attempt.address = Some(key);
        }
        Ok(attempt)
    }

    /// Woken each time an admitted attempt settles: what a caller told [`Refused::Busy`]
    /// waits for. Create the `notified()` future before calling [`Throttle::begin`] again,
    /// so a release between the two is not missed.
    pub fn released(&self) -> &tokio::sync::Notify {
        &self.released
    }

    fn login_limits(&self) -> Limits {
        Limits {
            max_failures: self.config.max_failures_per_login,
            window: self.config.window,
            ban: self.config.ban,
            capacity: self.config.max_tracked,
        }
    }

    fn address_limits(&self) -> Limits {
        Limits {
            max_failures: self.config.max_failures_per_address,
            ..self.login_limits()
        }
    }

    #[cfg(test)]
    /// Says whether an attempt for `login` from `addr` may go to the
    /// directory. Checked before any directory traffic; does not count
    /// anything itself.
    pub fn check(&self, login: &str, addr: IpAddr, now: Instant) -> Verdict {
        let login_limits = self.login_limits();
        let login_ban = if login_limits.enabled() {
            lock(&self.logins).ban_remaining(&login_key(login), now, &login_limits)
        } else {
            None
        };
        let address_limits = self.address_limits();
        let address_ban = if address_limits.enabled() {
            lock(&self.addresses).ban_remaining(&AddrKey::of(addr), now, &address_limits)
        } else {
            None
        };
        let (remaining, by) = match (login_ban, address_ban) {
            (None, None) => return Verdict::Allowed,
            (Some(l), None) => (l, BanKind::Login),
            (None, Some(a)) => (a, BanKind::Address),
            (Some(l), Some(a)) if a > l => (a, BanKind::Address),
            (Some(l), Some(_)) => (l, BanKind::Login),
        };
        Verdict::Banned {
            retry_after: round_up_to_seconds(remaining),
            by,
        }
    }

    #[cfg(test)]
    /// Counts a failed login for both `login` and `addr`. Reaching a limit
    /// bans that key for [`ThrottleConfig::ban`]; a key that is already
    /// banned is left alone (its ban is not extended).
    pub fn record_failure(&self, login: &str, addr: IpAddr, now: Instant) {
        let login_limits = self.login_limits();
        if login_limits.enabled() {
            lock(&self.logins).record_failure(login_key(login), now, &login_limits);
        }
        let address_limits = self.address_limits();
        if address_limits.enabled() {
            lock(&self.addresses).record_failure(AddrKey::of(addr), now, &address_limits);
        }
    }

    #[cfg(test)]
    /// Records a successful login: forgets the failures of `login` (and of
    /// no other login). The address counter of `addr` is deliberately left
    /// as it is, and an active ban of `login` is not lifted.
    pub fn record_success(&self, login: &str, addr: IpAddr, now: Instant) {
        // The address is accepted for symmetry with the other calls, but a
        // success must never clear the address counter.
        let _ = addr;
        let login_limits = self.login_limits();
        if login_limits.enabled() {
            lock(&self.logins).clear(&login_key(login), now, &login_limits);
        }
    }

    /// Counts one failed attempt that was not admitted here: the shared counts admitted it,
    /// then could not be reached to count its failure. Same rules as [`Attempt::failed`].
    pub fn record_failed_attempt(
        &self,
        login: &str,
        account: Option<&str>,
        addr: IpAddr,
        now: Instant,
    ) {
        let login_limits = self.login_limits();
        if login_limits.enabled() {
            lock(&self.logins).record_failure(login_key(login), now, &login_limits);
            if let Some(account) = account {
                lock(&self.accounts).record_failure(account.to_owned(), now, &login_limits);
            }
        }
        let address_limits = self.address_limits();
        if address_limits.enabled() {
            lock(&self.addresses).record_failure(AddrKey::of(addr), now, &address_limits);
        }
    }

    /// The settings this throttle counts with.
    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// Number of keys (logins plus addresses) banned at `now`, for a metrics
    /// gauge. Scans every entry: meant for occasional scrapes.
    pub fn active_bans(&self, now: Instant) -> usize {
        let logins = lock(&self.logins).count_banned(now, &self.login_limits());
        let accounts = lock(&self.accounts).count_banned(now, &self.login_limits());
        let addresses = lock(&self.addresses).count_banned(now, &self.address_limits());
        logins.saturating_add(accounts).saturating_add(addresses)
    }

    /// Drops every expired entry (windows over without a ban, bans over).
    /// The throttle also does this by itself when a map is at least half
    /// full, at most once per second per map.
    pub fn prune(&self, now: Instant) {
        lock(&self.logins).prune(now, &self.login_limits());
        lock(&self.accounts).prune(now, &self.login_limits());
        lock(&self.addresses).prune(now, &self.address_limits());
    }

    /// Number of stored (login, address) entries, for tests.
    #[cfg(test)]
    fn tracked(&self) -> (usize, usize) {
        (
            lock(&self.logins)
                .entries
                .len()
                .saturating_add(lock(&self.accounts).entries.len()),
            lock(&self.addresses).entries.len(),
        )
    }
}

/// An attempt admitted by [`Throttle::begin`]: it holds a place in the count of each of its
/// keys until [`Attempt::failed`] or [`Attempt::succeeded`] settles it, or it is dropped
/// (which counts nothing).
#[derive(Debug)]
#[must_use = "an attempt holds places in the counts until it is settled or dropped"]
pub struct Attempt<'t> {
    throttle: &'t Throttle,
    login: Option<String>,
    account: Option<String>,
    address: Option<AddrKey>,
    /// Settled by `failed` or `succeeded`, which gave its places back.
    settled: bool,
}

impl Attempt<'_> {
    /// Admits the attempt for the account it found (`account`: the entry's DN in lower case),
    /// before the password is tried. Refused like [`Throttle::begin`]; on
    /// [`Refused::Busy`] the caller may wait and call again.
    pub fn add_account(&mut self, account: &str, now: Instant) -> Result<(), Refused> {
        if self.account.is_some() {
            return Ok(());
        }
        let limits = self.throttle.login_limits();
        let key = account.to_owned();
        if lock(&self.throttle.accounts)
            .reserve(&key, now, &limits)
            .map_err(|r| r.named(BanKind::Account))?
        {
            self.account = Some(key);
        }
        Ok(())
    }

    /// The credentials were wrong (or the account unusable): one failure for every key held.
    pub fn failed(mut self, now: Instant) {
        self.settled = true;
        let t = self.throttle;
        if let Some(key) = self.login.take() {
            let mut logins = lock(&t.logins);
            logins.release(&key);
            logins.record_failure(key, now, &t.login_limits());
        }
        if let Some(key) = self.account.take() {
            let mut accounts = lock(&t.accounts);
            accounts.release(&key);
            accounts.record_failure(key, now, &t.login_limits());
        }
        if let Some(key) = self.address.take() {
            let mut addresses = lock(&t.addresses);
            addresses.release(&key);
            addresses.record_failure(key, now, &t.address_limits());
        }
        // Dropping wakes the waiters.
    }

    /// The password was right: the login's and the account's failures are forgotten (not an
    /// active ban, never the address's).
    pub fn succeeded(mut self, now: Instant) {
        self.settled = true;
        let t = self.throttle;
        if let Some(key) = self.login.take() {
            let mut logins = lock(&t.logins);
            logins.release(&key);
            logins.clear(&key, now, &t.login_limits());
        }
        if let Some(key) = self.account.take() {
            let mut accounts = lock(&t.accounts);
            accounts.release(&key);
            accounts.clear(&key, now, &t.login_limits());
        }
        // Dropping gives the address's place back.
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let t = self.throttle;
        let mut gave_back = self.settled;
        if let Some(key) = self.login.take() {
            lock(&t.logins).release(&key);
            gave_back = true;
        }
        if let Some(key) = self.account.take() {
            lock(&t.accounts).release(&key);
            gave_back = true;
        }
        if let Some(key) = self.address.take() {
            lock(&t.addresses).release(&key);
            gave_back = true;
        }
        // Only a place given back can admit a waiter. (A waiter woken for nothing would ask
        // again at once, and so would every attempt refused on its way in.)
        if gave_back {
            t.released.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::Arc;

    const WINDOW: Duration = Duration::from_secs(60);
    const BAN: Duration = Duration::from_secs(300);

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            max_failures_per_login: 3,
            max_failures_per_address: 10,
            window: WINDOW,
            ban: BAN,
            max_tracked: 1000,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn banned(retry_after: u64, by: BanKind) -> Verdict {
        Verdict::Banned {
            retry_after: secs(retry_after),
            by,
        }
    }

    #[test]
    fn nth_failure_bans_so_attempt_n_plus_one_is_refused() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        // Attempts 1..=3 are allowed; the third failure starts the ban.
        for i in 1..=3u32 {
            assert_eq!(t.check("alice", a, t0), Verdict::Allowed, "attempt {i}");
            t.record_failure("alice", a, t0);
        }
        // Attempt 4 (N + 1) is refused.
        assert_eq!(t.check("alice", a, t0), banned(300, BanKind::Login));
    }

    #[test]
    fn n_minus_one_failures_do_not_ban() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        t.record_failure("alice", a, t0);
        t.record_failure("alice", a, t0);
        // After N - 1 = 2 failures, attempt N is still allowed.
        assert_eq!(t.check("alice", a, t0), Verdict::Allowed);
        assert_eq!(t.active_bans(t0), 0);
    }

    #[test]
    fn address_limit_spans_logins() {
        let t = Throttle::new(config());
        let a = ip("198.51.100.9");
        let t0 = Instant::now();
        for i in 0..9 {
            t.record_failure(&format!("user{i}"), a, t0);
        }
        assert_eq!(t.check("someone-else", a, t0), Verdict::Allowed);
        t.record_failure("user9", a, t0);
        assert_eq!(
            t.check("someone-else", a, t0),
            banned(300, BanKind::Address)
        );
        // Another address is unaffected.
        assert_eq!(
            t.check("someone-else", ip("198.51.100.10"), t0),
            Verdict::Allowed
        );
    }

    #[test]
    fn window_expiry_starts_a_fresh_count() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        t.record_failure("alice", a, t0);
        t.record_failure("alice", a, t0 + secs(30));
        // Exactly at the end of the window, the failure opens a new window.
        t.record_failure("alice", a, t0 + WINDOW);
        assert_eq!(t.check("alice", a, t0 + WINDOW), Verdict::Allowed);
        // The new window counts from 1: two more failures ban.
        t.record_failure("alice", a, t0 + WINDOW + secs(1));
        assert_eq!(t.check("alice", a, t0 + WINDOW + secs(1)), Verdict::Allowed);
        t.record_failure("alice", a, t0 + WINDOW + secs(2));
        assert!(matches!(
            t.check("alice", a, t0 + WINDOW + secs(2)),
            Verdict::Banned {
                by: BanKind::Login,
                ..
            }
        ));
    }

    #[test]
    fn failure_just_inside_window_still_counts() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        t.record_failure("alice", a, t0);
        t.record_failure("alice", a, t0);
        let late = t0 + WINDOW - Duration::from_nanos(1);
        t.record_failure("alice", a, late);
        assert_eq!(t.check("alice", a, late), banned(300, BanKind::Login));
    }

    #[test]
    fn ban_expires_after_exactly_ban_duration() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        let just_before = t0 + BAN - Duration::from_nanos(1);
        assert_eq!(t.check("alice", a, just_before), banned(1, BanKind::Login));
        assert_eq!(t.check("alice", a, t0 + BAN), Verdict::Allowed);
        // After the ban the login starts from zero failures.
        t.record_failure("alice", a, t0 + BAN);
        t.record_failure("alice", a, t0 + BAN);
        assert_eq!(t.check("alice", a, t0 + BAN), Verdict::Allowed);
        t.record_failure("alice", a, t0 + BAN);
        assert_eq!(t.check("alice", a, t0 + BAN), banned(300, BanKind::Login));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        let at = |d: Duration| match t.check("alice", a, t0 + d) {
            Verdict::Banned { retry_after, .. } => retry_after,
            Verdict::Allowed => panic!("expected a ban"),
        };
        assert_eq!(at(Duration::ZERO), secs(300));
        assert_eq!(at(Duration::from_millis(1)), secs(300));
        assert_eq!(at(Duration::from_millis(500)), secs(300));
        assert_eq!(at(secs(1)), secs(299));
        assert_eq!(at(Duration::from_millis(1001)), secs(299));
        assert_eq!(at(Duration::from_millis(299_100)), secs(1));
        assert_eq!(at(BAN - Duration::from_nanos(1)), secs(1));
    }

    #[test]
    fn round_up_helper() {
        assert_eq!(round_up_to_seconds(Duration::ZERO), secs(1));
        assert_eq!(round_up_to_seconds(Duration::from_nanos(1)), secs(1));
        assert_eq!(round_up_to_seconds(secs(1)), secs(1));
        assert_eq!(round_up_to_seconds(Duration::from_millis(1500)), secs(2));
        assert_eq!(round_up_to_seconds(secs(7)), secs(7));
        assert_eq!(round_up_to_seconds(Duration::MAX), secs(u64::MAX));
    }

    #[test]
    fn sub_second_ban_reports_one_second() {
        let t = Throttle::new(ThrottleConfig {
            ban: Duration::from_millis(200),
            ..config()
        });
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        assert_eq!(t.check("alice", a, t0), banned(1, BanKind::Login));
        assert_eq!(
            t.check("alice", a, t0 + Duration::from_millis(200)),
            Verdict::Allowed
        );
    }

    #[test]
    fn success_resets_only_that_login() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        let t0 = Instant::now();
        t.record_failure("alice", a, t0);
        t.record_failure("alice", a, t0);
        t.record_failure("bob", b, t0);
        t.record_failure("bob", b, t0);
        t.record_success("alice", a, t0);
        // Alice has her full allowance again.
        t.record_failure("alice", a, t0);
        t.record_failure("alice", a, t0);
        assert_eq!(t.check("alice", a, t0), Verdict::Allowed);
        // Bob's failures were kept: one more bans him.
        t.record_failure("bob", b, t0);
        assert_eq!(t.check("bob", b, t0), banned(300, BanKind::Login));
    }

    #[test]
    fn success_does_not_reset_address() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_address: 4,
            ..config()
        });
        let attacker = ip("203.0.113.66");
        let t0 = Instant::now();
        for victim in ["v1", "v2", "v3"] {
            t.record_failure(victim, attacker, t0);
            // The attacker logs in with their own valid account in between.
            t.record_success("mallory", attacker, t0);
        }
        assert_eq!(t.check("v4", attacker, t0), Verdict::Allowed);
        t.record_failure("v4", attacker, t0);
        t.record_success("mallory", attacker, t0);
        assert_eq!(t.check("v5", attacker, t0), banned(300, BanKind::Address));
        assert_eq!(
            t.check("mallory", attacker, t0),
            banned(300, BanKind::Address)
        );
    }

    #[test]
    fn success_does_not_lift_an_active_ban() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        t.record_success("alice", a, t0 + secs(1));
        assert_eq!(
            t.check("alice", a, t0 + secs(1)),
            banned(299, BanKind::Login)
        );
    }

    #[test]
    fn logins_are_trimmed_and_case_folded() {
        let t = Throttle::new(config());
        let t0 = Instant::now();
        t.record_failure("Alice", ip("192.0.2.1"), t0);
        t.record_failure("alice ", ip("192.0.2.2"), t0);
        t.record_failure("\t ALICE", ip("192.0.2.3"), t0);
        assert_eq!(
            t.check("aLiCe", ip("192.0.2.4"), t0),
            banned(300, BanKind::Login)
        );
        assert_eq!(t.check("alicea", ip("192.0.2.4"), t0), Verdict::Allowed);
        assert_eq!(t.tracked().0, 1);
        // Non-ASCII case folding too.
        t.record_failure("ÉMILE", ip("192.0.2.5"), t0);
        t.record_failure("émile", ip("192.0.2.5"), t0);
        t.record_failure(" Émile ", ip("192.0.2.5"), t0);
        assert!(matches!(
            t.check("émile", ip("192.0.2.6"), t0),
            Verdict::Banned { .. }
        ));
    }

    #[test]
    fn login_keys_are_bounded() {
        let huge = "A".repeat(1_000_000);
        let key = login_key(&huge);
        assert_eq!(key.len(), MAX_LOGIN_KEY_BYTES);
        assert_eq!(key, "a".repeat(MAX_LOGIN_KEY_BYTES));
        // Multi-byte characters are never cut in half.
        let wide = "é".repeat(1000);
        let key = login_key(&wide);
        assert!(key.len() <= MAX_LOGIN_KEY_BYTES);
        assert!(key.chars().all(|c| c == 'é'));
        // Characters whose lowercase form is longer than themselves.
        let growing = "İ".repeat(1000);
        assert!(login_key(&growing).len() <= MAX_LOGIN_KEY_BYTES);
        assert_eq!(login_key(""), "");
        assert_eq!(login_key("   "), "");
        assert_eq!(truncate_at_char_boundary("héllo", 2), "h");
        assert_eq!(truncate_at_char_boundary("héllo", 0), "");
    }

    #[test]
    fn ipv6_counted_per_64() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 0,
            max_failures_per_address: 3,
            ..config()
        });
        let t0 = Instant::now();
        t.record_failure("x", ip("2001:db8:1:2::1"), t0);
        t.record_failure("x", ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), t0);
        t.record_failure("x", ip("2001:db8:1:2:1234::abcd"), t0);
        assert_eq!(
            t.check("x", ip("2001:db8:1:2::99"), t0),
            banned(300, BanKind::Address)
        );
        // The neighbouring /64 is another key.
        assert_eq!(t.check("x", ip("2001:db8:1:3::1"), t0), Verdict::Allowed);
        assert_eq!(t.tracked().1, 1);
    }

    #[test]
    fn ipv4_counted_per_address_and_mapped_as_ipv4() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 0,
            max_failures_per_address: 2,
            ..config()
        });
        let t0 = Instant::now();
        t.record_failure("x", ip("192.0.2.1"), t0);
        t.record_failure("x", ip("::ffff:192.0.2.1"), t0);
        assert_eq!(
            t.check("x", ip("192.0.2.1"), t0),
            banned(300, BanKind::Address)
        );
        // Neighbouring IPv4 addresses, mapped or not, are separate keys:
        // mapped addresses do not all share the ::ffff:0:0/64 prefix.
        assert_eq!(t.check("x", ip("192.0.2.2"), t0), Verdict::Allowed);
        assert_eq!(t.check("x", ip("::ffff:192.0.2.2"), t0), Verdict::Allowed);
        assert_eq!(
            AddrKey::of(ip("::ffff:10.1.2.3")),
            AddrKey::of(ip("10.1.2.3"))
        );
        assert_ne!(
            AddrKey::of(ip("::ffff:10.1.2.3")),
            AddrKey::of(ip("::ffff:10.1.2.4"))
        );
        assert_eq!(
            AddrKey::of(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 1, 2, 3, 4))),
            AddrKey::V6Prefix(0x2001_0db8_0000_0000)
        );
    }

    #[test]
    fn zero_login_limit_disables_login_counting() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 0,
            max_failures_per_address: 0,
            ..config()
        });
        let t0 = Instant::now();
        for _ in 0..1000 {
            t.record_failure("alice", ip("192.0.2.1"), t0);
        }
        assert_eq!(t.check("alice", ip("192.0.2.1"), t0), Verdict::Allowed);
        assert_eq!(t.tracked(), (0, 0));
        assert_eq!(t.active_bans(t0), 0);
    }

    #[test]
    fn zero_address_limit_keeps_login_limit() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_address: 0,
            ..config()
        });
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for i in 0..100 {
            t.record_failure(&format!("u{i}"), a, t0);
        }
        assert_eq!(t.check("fresh", a, t0), Verdict::Allowed);
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        assert_eq!(t.check("alice", a, t0), banned(300, BanKind::Login));
        assert_eq!(t.tracked().1, 0);
    }

    #[test]
    fn zero_login_limit_keeps_address_limit() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 0,
            max_failures_per_address: 2,
            ..config()
        });
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        t.record_failure("alice", a, t0);
        t.record_failure("alice", a, t0);
        assert_eq!(t.check("bob", a, t0), banned(300, BanKind::Address));
        assert_eq!(t.check("alice", ip("192.0.2.2"), t0), Verdict::Allowed);
        assert_eq!(t.tracked().0, 0);
    }

    #[test]
    fn banned_attempts_do_not_extend_the_ban() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_address: 3,
            ..config()
        });
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        // An attacker keeps failing during the ban, up to its last moment.
        for s in (10..300).step_by(10) {
            t.record_failure("alice", a, t0 + secs(s));
        }
        t.record_failure("alice", a, t0 + BAN - Duration::from_nanos(1));
        assert_eq!(
            t.check("alice", a, t0 + secs(299)),
            banned(1, BanKind::Login)
        );
        // The ban still ends when it was due to, and nothing carried over.
        assert_eq!(t.check("alice", a, t0 + BAN), Verdict::Allowed);
        t.record_failure("alice", a, t0 + BAN);
        assert_eq!(t.check("alice", a, t0 + BAN), Verdict::Allowed);
    }

    #[test]
    fn both_banned_reports_the_longer_wait() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_address: 3,
            ..config()
        });
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", a, t0);
        }
        // Equal bans: the login is reported.
        assert_eq!(t.check("alice", a, t0), banned(300, BanKind::Login));
        // Address banned later than the login: the address wait is longer.
        let t1 = Instant::now();
        let u = Throttle::new(ThrottleConfig {
            max_failures_per_address: 4,
            ..config()
        });
        for _ in 0..3 {
            u.record_failure("alice", a, t1);
        }
        // Still inside the address window (60 s), so this is failure 4.
        u.record_failure("bob", a, t1 + secs(50));
        assert_eq!(
            u.check("alice", a, t1 + secs(50)),
            banned(300, BanKind::Address)
        );
        assert_eq!(
            u.check("bob", a, t1 + secs(50)),
            banned(300, BanKind::Address)
        );
        // The login ban ends at 300 s, the address ban 50 s later.
        assert_eq!(
            u.check("alice", a, t1 + secs(300)),
            banned(50, BanKind::Address)
        );
    }

    #[test]
    fn active_bans_counts_both_kinds_and_expires() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_address: 3,
            ..config()
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            t.record_failure("alice", ip("192.0.2.1"), t0);
        }
        assert_eq!(t.active_bans(t0), 2);
        for _ in 0..3 {
            t.record_failure("bob", ip("2001:db8::1"), t0 + secs(10));
        }
        assert_eq!(t.active_bans(t0 + secs(10)), 4);
        assert_eq!(t.active_bans(t0 + BAN), 2);
        assert_eq!(t.active_bans(t0 + BAN + secs(10)), 0);
    }

    #[test]
    fn prune_drops_expired_entries_only() {
        let t = Throttle::new(config());
        let t0 = Instant::now();
        t.record_failure("old", ip("192.0.2.1"), t0);
        for _ in 0..3 {
            t.record_failure("banned", ip("192.0.2.2"), t0);
        }
        t.record_failure("recent", ip("192.0.2.3"), t0 + secs(50));
        assert_eq!(t.tracked(), (3, 3));
        t.prune(t0 + WINDOW);
        // "old" window is over; "banned" is still banned; "recent" is live.
        // Only 192.0.2.3 stays among the addresses: 192.0.2.2 was never
        // banned (3 of 10 failures) and its window is over.
        assert_eq!(t.tracked(), (2, 1));
        t.prune(t0 + BAN);
        assert_eq!(t.tracked(), (0, 0));
    }

    #[test]
    fn spray_of_distinct_logins_stays_bounded() {
        let max_tracked = 1000;
        let t = Throttle::new(ThrottleConfig {
            max_tracked,
            ..config()
        });
        let t0 = Instant::now();
        let victim_addr = ip("198.51.100.1");
        for _ in 0..3 {
            t.record_failure("victim", victim_addr, t0);
        }
        for i in 0u32..100_000 {
            // Distinct logins from distinct addresses (a botnet spray).
            let addr = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            let now = t0 + Duration::from_millis(u64::from(i));
            t.record_failure(&format!("user{i}"), addr, now);
            let (logins, addresses) = t.tracked();
            assert!(logins <= max_tracked, "{logins} logins tracked");
            assert!(addresses <= max_tracked, "{addresses} addresses tracked");
        }
        // Unbanned entries are evicted before banned ones, and the spray ran
        // for 100 s, inside the 300 s ban.
        assert!(matches!(
            t.check("victim", victim_addr, t0 + secs(100)),
            Verdict::Banned {
                by: BanKind::Login,
                ..
            }
        ));
        // The most recent sprayed logins are still counted.
        let last = t0 + Duration::from_millis(99_999);
        t.record_failure("user99999", ip("192.0.2.1"), last);
        t.record_failure("user99999", ip("192.0.2.1"), last);
        assert!(matches!(
            t.check("user99999", ip("192.0.2.2"), last),
            Verdict::Banned { .. }
        ));
    }

    #[test]
    fn spray_at_one_instant_stays_bounded() {
        // All entries tie on eviction rank; eviction must still make room.
        let t = Throttle::new(ThrottleConfig {
            max_tracked: 10,
            ..config()
        });
        let t0 = Instant::now();
        for i in 0..1000 {
            t.record_failure(&format!("u{i}"), ip("192.0.2.1"), t0);
            assert!(t.tracked().0 <= 10);
        }
        // A new login can still be counted after the spray.
        t.record_failure("fresh", ip("192.0.2.2"), t0);
        t.record_failure("fresh", ip("192.0.2.2"), t0);
        t.record_failure("fresh", ip("192.0.2.2"), t0);
        assert_eq!(
            t.check("fresh", ip("192.0.2.3"), t0),
            banned(300, BanKind::Login)
        );
    }

    #[test]
    fn eviction_prefers_expired_then_unbanned_then_nearest_expiry() {
        let limits = Limits {
            max_failures: 2,
            window: WINDOW,
            ban: BAN,
            capacity: 4,
        };
        let mut tracker: Tracker<u32> = Tracker::new();
        let t0 = Instant::now();
        tracker.record_failure(1, t0, &limits); // unbanned, window ends t0+60
        tracker.record_failure(2, t0, &limits);
        tracker.record_failure(2, t0, &limits); // banned until t0+300
        tracker.record_failure(3, t0 + secs(10), &limits); // unbanned, ends t0+70
        tracker.record_failure(4, t0 + secs(20), &limits); // unbanned, ends t0+80
        assert_eq!(tracker.entries.len(), 4);
        // Full: the entry closest to expiry (1) goes, the ban stays.
        tracker.record_failure(5, t0 + secs(30), &limits);
        assert_eq!(tracker.entries.len(), 4);
        assert!(!tracker.entries.contains_key(&1));
        assert!(tracker.entries.contains_key(&2));
        // At t0+75, key 3 has expired: pruning makes room without evicting.
        tracker.record_failure(6, t0 + secs(75), &limits);
        assert!(!tracker.entries.contains_key(&3));
        assert!(tracker.entries.contains_key(&4));
        assert!(tracker.entries.contains_key(&5));
        assert!(tracker.entries.contains_key(&6));
        assert!(tracker.entries.contains_key(&2));
    }

    #[test]
    fn zero_max_tracked_tracks_nothing() {
        let t = Throttle::new(ThrottleConfig {
            max_tracked: 0,
            ..config()
        });
        let t0 = Instant::now();
        for _ in 0..10 {
            t.record_failure("alice", ip("192.0.2.1"), t0);
        }
        assert_eq!(t.tracked(), (0, 0));
        assert_eq!(t.check("alice", ip("192.0.2.1"), t0), Verdict::Allowed);
    }

    #[test]
    fn max_tracked_one_works() {
        let t = Throttle::new(ThrottleConfig {
            max_tracked: 1,
            ..config()
        });
        let t0 = Instant::now();
        for i in 0..50 {
            t.record_failure(&format!("u{i}"), ip("192.0.2.1"), t0);
            assert!(t.tracked().0 <= 1);
        }
    }

    #[test]
    fn extreme_durations_and_backwards_time_do_not_panic() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 1,
            max_failures_per_address: 1,
            window: Duration::MAX,
            ban: Duration::MAX,
            max_tracked: usize::MAX,
        });
        let t0 = Instant::now();
        t.record_failure("alice", ip("192.0.2.1"), t0);
        match t.check("alice", ip("192.0.2.1"), t0) {
            Verdict::Banned { retry_after, .. } => assert!(retry_after >= secs(1)),
            Verdict::Allowed => panic!("expected a ban"),
        }
        // A `now` earlier than anything recorded counts as no time passed.
        let earlier = t0.checked_sub(secs(1)).unwrap_or(t0);
        assert!(matches!(
            t.check("alice", ip("192.0.2.1"), earlier),
            Verdict::Banned { .. }
        ));
        t.record_failure("bob", ip("192.0.2.9"), earlier);
        t.prune(earlier);
        assert_eq!(t.active_bans(earlier), 4);

        // Zero window and zero ban: nothing ever sticks.
        let z = Throttle::new(ThrottleConfig {
            max_failures_per_login: 1,
            max_failures_per_address: 1,
            window: Duration::ZERO,
            ban: Duration::ZERO,
            max_tracked: 10,
        });
        z.record_failure("alice", ip("192.0.2.1"), t0);
        assert_eq!(z.check("alice", ip("192.0.2.1"), t0), Verdict::Allowed);
        assert_eq!(z.active_bans(t0), 0);
    }

    #[test]
    fn max_failures_u32_max_does_not_overflow() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: u32::MAX,
            ..config()
        });
        let t0 = Instant::now();
        for _ in 0..100 {
            t.record_failure("alice", ip("192.0.2.1"), t0);
        }
        let mut tracker: Tracker<u8> = Tracker::new();
        let limits = Limits {
            max_failures: u32::MAX,
            window: WINDOW,
            ban: BAN,
            capacity: 1,
        };
        tracker.entries.insert(
            0,
            Entry {
                failures: u32::MAX - 1,
                window_start: t0,
                banned_at: None,
            },
        );
        tracker.record_failure(0, t0, &limits);
        assert!(tracker.ban_remaining(&0, t0, &limits).is_some());
    }

    #[test]
    fn recovers_from_a_poisoned_lock() {
        let t = Arc::new(Throttle::new(config()));
        let t0 = Instant::now();
        t.record_failure("alice", ip("192.0.2.1"), t0);
        for which in 0..2 {
            let shared = Arc::clone(&t);
            let result = std::thread::spawn(move || {
                let _guard_logins;
                let _guard_addresses;
                if which == 0 {
                    _guard_logins = shared.logins.lock();
                } else {
                    _guard_addresses = shared.addresses.lock();
                }
                panic!("poisoning the throttle on purpose");
            })
            .join();
            assert!(result.is_err());
        }
        assert!(t.logins.is_poisoned());
        assert!(t.addresses.is_poisoned());
        // Every method still works, and the recorded failure survived.
        t.record_failure("alice", ip("192.0.2.1"), t0);
        t.record_failure("alice", ip("192.0.2.1"), t0);
        assert_eq!(
            t.check("alice", ip("192.0.2.1"), t0),
            banned(300, BanKind::Login)
        );
        assert_eq!(t.active_bans(t0), 1);
        t.record_success("bob", ip("192.0.2.1"), t0);
        t.prune(t0);
        assert!(!t.logins.is_poisoned());
        assert!(!t.addresses.is_poisoned());
    }

    #[test]
    fn concurrent_failures_are_all_counted() {
        let t = Arc::new(Throttle::new(ThrottleConfig {
            max_failures_per_login: 400,
            max_failures_per_address: 0,
            ..config()
        }));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..4)
            .map(|n| {
                let shared = Arc::clone(&t);
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        shared.record_failure("Alice", ip("192.0.2.1"), t0);
                        let _ = shared.check(&format!("other{n}"), ip("192.0.2.1"), t0);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        assert_eq!(
            t.check("alice", ip("192.0.2.1"), t0),
            banned(300, BanKind::Login)
        );
    }

    #[test]
    fn attempts_in_flight_count_against_the_limit() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        let first = t.begin("alice", a, t0).unwrap();
        let second = t.begin("ALICE ", a, t0).unwrap();
        let third = t.begin("alice", a, t0).unwrap();
        // Three in flight with a limit of three: a fourth could be a fourth failure.
        assert_eq!(t.begin("alice", a, t0).unwrap_err(), Refused::Busy);
        // Another login from the same address is not held up (address limit 10).
        drop(t.begin("bob", a, t0).unwrap());
        first.failed(t0);
        second.failed(t0);
        assert_eq!(t.begin("alice", a, t0).unwrap_err(), Refused::Busy);
        third.failed(t0);
        assert_eq!(
            t.begin("alice", a, t0).unwrap_err(),
            Refused::Banned {
                retry_after: secs(300),
                by: BanKind::Login
            }
        );
        assert_eq!(t.check("alice", a, t0), banned(300, BanKind::Login));
    }

    #[test]
    fn a_dropped_attempt_counts_nothing_and_a_success_clears_the_login() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        for _ in 0..10 {
            drop(t.begin("alice", a, t0).unwrap());
        }
        assert_eq!(t.tracked(), (0, 0));
        t.begin("alice", a, t0).unwrap().failed(t0);
        t.begin("alice", a, t0).unwrap().failed(t0);
        t.begin("Alice", a, t0).unwrap().succeeded(t0);
        // The login starts again from nothing; the address keeps its two failures.
        assert_eq!(t.tracked(), (0, 1));
        for _ in 0..3 {
            let attempt = t.begin("alice", a, t0).unwrap();
            attempt.failed(t0);
        }
        assert!(matches!(
            t.begin("alice", a, t0),
            Err(Refused::Banned {
                by: BanKind::Login,
                ..
            })
        ));
        assert!(lock(&t.logins).in_flight.is_empty());
        assert!(lock(&t.addresses).in_flight.is_empty());
    }

    #[test]
    fn every_spelling_of_one_account_shares_its_count() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        let dn = "uid=alice,ou=people,dc=example,dc=org";
        for login in ["alice", "alice@example.org", "alice@example.com"] {
            let mut attempt = t.begin(login, a, t0).unwrap();
            attempt.add_account(dn, t0).unwrap();
            attempt.failed(t0);
        }
        // A fourth spelling is admitted as a login, then refused for its account.
        let mut fourth = t.begin("ALICE@EXAMPLE.NET", a, t0).unwrap();
        assert_eq!(
            fourth.add_account(dn, t0).unwrap_err(),
            Refused::Banned {
                retry_after: secs(300),
                by: BanKind::Account
            }
        );
        drop(fourth);
        assert_eq!(t.active_bans(t0), 1);
        // Attempts in flight count for the account too.
        let other = "uid=bob,ou=people,dc=example,dc=org";
        let mut held = Vec::new();
        for login in ["bob", "bob@example.org", "BOB"] {
            let mut attempt = t.begin(login, a, t0).unwrap();
            attempt.add_account(other, t0).unwrap();
            held.push(attempt);
        }
        let mut late = t.begin("bob@example.com", a, t0).unwrap();
        assert_eq!(late.add_account(other, t0).unwrap_err(), Refused::Busy);
        // A success clears the account for every spelling.
        held.pop().unwrap().succeeded(t0);
        late.add_account(other, t0).unwrap();
        late.succeeded(t0);
        drop(held);
        assert!(lock(&t.accounts).in_flight.is_empty());
        assert!(!lock(&t.accounts).entries.contains_key(other));
    }

    #[test]
    fn the_address_limit_holds_for_attempts_in_flight() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 0,
            max_failures_per_address: 2,
            ..config()
        });
        let a = ip("2001:db8::1");
        let t0 = Instant::now();
        let one = t.begin("u1", a, t0).unwrap();
        let _two = t.begin("u2", ip("2001:db8::2"), t0).unwrap();
        assert_eq!(t.begin("u3", a, t0).unwrap_err(), Refused::Busy);
        one.failed(t0);
        assert_eq!(t.begin("u3", a, t0).unwrap_err(), Refused::Busy);
        assert!(t.begin("u3", ip("2001:db8:0:1::1"), t0).is_ok());
    }

    #[tokio::test]
    async fn a_busy_caller_is_woken_when_an_attempt_settles() {
        let t = Throttle::new(ThrottleConfig {
            max_failures_per_login: 1,
            ..config()
        });
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        let held = t.begin("alice", a, t0).unwrap();
        let notified = t.released().notified();
        tokio::pin!(notified);
        assert_eq!(t.begin("alice", a, t0).unwrap_err(), Refused::Busy);
        assert!(
            futures_util::FutureExt::now_or_never(notified.as_mut()).is_none(),
            "a refused attempt gives nothing back and wakes nobody"
        );
        drop(held);
        // Created before the release, the future is woken by it.
        notified.await;
        assert!(t.begin("alice", a, t0).is_ok());
    }

    #[test]
    fn address_keys_read_as_addresses_and_prefixes() {
        assert_eq!(address_key(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(address_key(ip("2001:db8:1:2:3:4:5:6")), "2001:db8:1:2::/64");
        assert_eq!(address_key(ip("2001:db8:1:2::9")), "2001:db8:1:2::/64");
    }

    #[test]
    fn a_failure_counted_without_an_attempt_follows_the_same_rules() {
        let t = Throttle::new(config());
        let a = ip("192.0.2.1");
        let t0 = Instant::now();
        let dn = "uid=alice,ou=people,dc=example,dc=org";
        for _ in 0..3 {
            t.record_failed_attempt("Alice", Some(dn), a, t0);
        }
        assert_eq!(t.active_bans(t0), 2);
        let mut other = t.begin("alice@example.org", a, t0).unwrap();
        assert_eq!(
            other.add_account(dn, t0).unwrap_err(),
            Refused::Banned {
                retry_after: secs(300),
                by: BanKind::Account
            }
        );
    }

    #[test]
    fn throttle_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Throttle>();
        assert_send_sync::<Verdict>();
        assert_send_sync::<ThrottleConfig>();
    }
}
