//! Revocations shared through Redis (feature `redis`): [`RedisRevocations`] keeps a local
//! mirror that verification reads, and writes revocations for every process that mirrors the
//! same keys.
//!
//! # Key layout
//!
//! Under a prefix (default `latchkey:`, [`DEFAULT_PREFIX`]), see [`KeyLayout`]:
//!
//! - `<prefix>revocations`: a sorted set. Each member is one [`Revocation`], written as
//!   `t:<exp>:<jti>` (a token id and its `exp`) or `u:<at>:<user>` (a user's cutoff, the user in
//!   lower case); its score is the second after which it covers nothing
//!   ([`ExpiryRules::kept_until`] by the writer's rules). Every write and every full read drop
//!   the members whose score has passed, so the set holds the live revocations only, and
//!   Redis deletes it when it empties.
//! - `<prefix>revocations:changes`: the pub/sub channel each write publishes its member on.
//!
//! # The mirror
//!
//! A thread of its own (with a small Tokio runtime) subscribes to the channel, then reads the
//! whole set (after subscribing, so that nothing written in between is missed), then applies
//! every message as it comes and reads the whole set again every `full_sync` (a message lost
//! in a reconnection is caught there). [`Revocations::is_revoked`] reads only the mirror: a
//! verification never waits on the network.
//!
//! When Redis cannot be reached, the mirror is kept as it is — never emptied, so nothing
//! revoked before the outage is accepted during it — and the thread tries again every
//! `retry_after`, subscribing and reading the whole set again once Redis answers; it then
//! writes back (and publishes) what it holds and Redis lacks, so a Redis that lost its memory in
//! the outage, and every mirror, learn again what was revoked before or during it. A full read
//! only adds: revocations are never taken back, and entries leave the mirror only by expiring
//! (by the mirror's own [`ExpiryRules`]).
//!
//! Every change of connection state is told once to the caller's listener
//! ([`RedisOptions::on_change`], to log it); [`RedisRevocations::is_connected`] says whether
//! the mirror follows Redis now, [`RedisRevocations::since_full_read`] how long ago it last read
//! the whole set.
//!
//! [`publish`] is the write side alone, for a program that revokes without mirroring (an
//! operator's command).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
pub use redis::Client;
use redis::{AsyncCommands, RedisError};

use crate::{Claims, ExpiryRules, Revocation, RevocationSet, Revocations};

/// The key prefix unless configured otherwise.
pub const DEFAULT_PREFIX: &str = "latchkey:";

/// Where revocations live in Redis, under a prefix; and how a revocation is written there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLayout {
    /// The sorted set of revocations.
    pub set: String,
    /// The channel changes are published on.
    pub channel: String,
}

impl KeyLayout {
    /// The keys under `prefix` (such as `latchkey:`).
    pub fn new(prefix: &str) -> KeyLayout {
        KeyLayout {
            set: format!("{prefix}revocations"),
            channel: format!("{prefix}revocations:changes"),
        }
    }

    /// The sorted-set member (and channel message) for `revocation`.
    pub fn member(revocation: &Revocation) -> String {
        match revocation {
            Revocation::Token { jti, exp } => format!("t:{exp}:{jti}"),
            Revocation::User { user, at } => format!("u:{at}:{}", crate::user_key(user)),
        }
    }

    /// The revocation a member (or message) stands for; None for anything else.
    pub fn parse(member: &str) -> Option<Revocation> {
        let mut parts = member.splitn(3, ':');
        let (kind, time, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let time: i64 = time.parse().ok()?;
        if rest.is_empty() {
            return None;
        }
        match kind {
            "t" => Some(Revocation::Token {
                jti: rest.to_owned(),
                exp: time,
            }),
            "u" => Some(Revocation::User {
                user: rest.to_owned(),
                at: time,
            }),
            _ => None,
        }
    }
}

/// A change of the mirror's connection state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorState {
    /// Subscribed and read in full: the mirror follows Redis.
    Following,
    /// Redis failed (the reason); the mirror stays as it is until Redis is back.
    Lost(String),
}

/// What is told of each change of the mirror's connection state.
pub type StateListener = Arc<dyn Fn(MirrorState) + Send + Sync>;

/// How the mirror follows Redis.
#[derive(Clone)]
pub struct RedisOptions {
    /// The key prefix ([`DEFAULT_PREFIX`] by default).
    pub prefix: String,
    /// How often the whole set is read again while connected.
    pub full_sync: Duration,
    /// How long to wait before trying again after Redis failed.
    pub retry_after: Duration,
    /// The longest a connection, a read or a write may take.
    pub operation_timeout: Duration,
    /// Told of each change of the connection state, from the mirror's thread; None: nobody.
    pub on_change: Option<StateListener>,
}

impl std::fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisOptions")
            .field("prefix", &self.prefix)
            .field("full_sync", &self.full_sync)
            .field("retry_after", &self.retry_after)
            .field("operation_timeout", &self.operation_timeout)
            .field("on_change", &self.on_change.is_some())
            .finish()
    }
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: DEFAULT_PREFIX.to_owned(),
            full_sync: Duration::from_secs(30),
            retry_after: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(2),
            on_change: None,
        }
    }
}

/// Why a revocation could not be written to Redis (it holds in this process's mirror anyway).
#[derive(Debug, thiserror::Error)]
pub enum RedisRevocationError {
    /// Redis refused or failed.
    #[error("Redis failed: {0}")]
    Redis(#[from] RedisError),
    /// No answer within the operation timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// No thread could be started for the mirror.
    #[error("cannot start the revocation mirror: {0}")]
    Start(std::io::Error),
}

/// What the mirror thread and the handle share.
#[derive(Debug)]
struct Shared {
    mirror: Arc<RevocationSet>,
    connected: AtomicBool,
    /// When the mirror started.
    started: Instant,
    /// Milliseconds after `started` of the last full read; [`NEVER`] before the first.
    last_full_read: AtomicU64,
    layout: KeyLayout,
    options: RedisOptions,
}

/// Revocations shared through Redis, checked against a local mirror; see the
/// [module documentation](self). Dropping it stops the mirror's thread.
#[derive(Debug)]
pub struct RedisRevocations {
    client: Client,
    shared: Arc<Shared>,
    /// Dropped with the handle: the mirror's thread sees it and ends.
    _stop: tokio::sync::watch::Sender<()>,
}

impl RedisRevocations {
    /// Start mirroring the revocations `client` reaches, entries expiring by `rules` (the
    /// longest token lifetime and the leeway of the verifiers that read the mirror). Returns at
    /// once: the mirror fills in the background.
    pub fn start(
        client: Client,
        rules: ExpiryRules,
        options: RedisOptions,
    ) -> Result<RedisRevocations, RedisRevocationError> {
        let shared = Arc::new(Shared {
            mirror: Arc::new(RevocationSet::new(rules)),
            connected: AtomicBool::new(false),
            started: Instant::now(),
            last_full_read: AtomicU64::new(NEVER),
            layout: KeyLayout::new(&options.prefix),
            options,
        });
        let (stop, stopped) = tokio::sync::watch::channel(());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RedisRevocationError::Start)?;
        let (thread_client, thread_shared) = (client.clone(), Arc::clone(&shared));
        std::thread::Builder::new()
            .name("revocation-mirror".into())
            .spawn(move || runtime.block_on(follow(thread_client, thread_shared, stopped)))
            .map_err(RedisRevocationError::Start)?;
        Ok(RedisRevocations {
            client,
            shared,
            _stop: stop,
        })
    }

    /// The local mirror verification reads.
    pub fn mirror(&self) -> &Arc<RevocationSet> {
        &self.shared.mirror
    }

    /// Whether the mirror follows Redis now (subscribed and read in full since the last
    /// failure).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// How long ago the mirror last read the whole set from Redis (on connecting, then every
    /// `full_sync` while connected); None before its first full read.
    pub fn since_full_read(&self) -> Option<Duration> {
        let at = self.shared.last_full_read.load(Ordering::Relaxed);
        (at != NEVER).then(|| {
            self.shared
                .started
                .elapsed()
                .saturating_sub(Duration::from_millis(at))
        })
    }

    /// Revoke: in this process's mirror at once, and in Redis for every other mirror. An error
    /// means the others have not heard of it (this process refuses the token anyway).
    pub async fn revoke(
        &self,
        revocation: Revocation,
        now: i64,
    ) -> Result<(), RedisRevocationError> {
        let mirror = &self.shared.mirror;
        let rules = mirror.rules();
        mirror.insert(revocation.clone(), now);
        publish(
            &self.client,
            &self.shared.layout,
            rules,
            &revocation,
            now,
            self.shared.options.operation_timeout,
        )
        .await
    }
}

/// Write `revocation` to Redis as of `now`, scored by `rules`, and tell every mirror, within
/// `timeout`: the write side of [`RedisRevocations::revoke`] alone, without a mirror. In one
/// transaction: the member added (a revocation already covering nothing is not), the expired
/// members dropped, the member published.
pub async fn publish(
    client: &Client,
    layout: &KeyLayout,
    rules: ExpiryRules,
    revocation: &Revocation,
    now: i64,
    timeout: Duration,
) -> Result<(), RedisRevocationError> {
    let until = rules.kept_until(revocation);
    let member = KeyLayout::member(revocation);
    let write = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::pipe()
            .atomic()
            .zadd(&layout.set, &member, until)
            .ignore()
            .zrembyscore(&layout.set, "-inf", format!("({now}"))
            .ignore()
            .publish(&layout.channel, &member)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
    };
    tokio::time::timeout(timeout, write)
        .await
        .map_err(|_| RedisRevocationError::Timeout(timeout))??;
    Ok(())
}

impl Revocations for RedisRevocations {
    fn is_revoked(&self, claims: &Claims) -> bool {
        self.shared.mirror.is_revoked(claims)
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The mirror's thread: follow Redis until the handle is dropped, trying again after each
/// failure.
async fn follow(
    client: Client,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::watch::Receiver<()>,
) {
    loop {
        let error = tokio::select! {
            outcome = follow_once(&client, &shared) => outcome,
            _ = stopped.changed() => return,
        };
        if shared.connected.swap(false, Ordering::Relaxed) {
            if let Some(listener) = &shared.options.on_change {
                listener(MirrorState::Lost(error.to_string()));
            }
        }
        tokio::select! {
            () = tokio::time::sleep(shared.options.retry_after) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// Subscribe, read everything, then apply changes and read everything again periodically,
/// until something fails: the failure.
async fn follow_once(client: &Client, shared: &Shared) -> RedisRevocationError {
    match follow_inner(client, shared).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

enum Never {}

async fn follow_inner(client: &Client, shared: &Shared) -> Result<Never, RedisRevocationError> {
    let timeout = shared.options.operation_timeout;
    let bounded = |e: tokio::time::error::Elapsed| {
        let _ = e;
        RedisRevocationError::Timeout(timeout)
    };
    let mut pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
        .await
        .map_err(bounded)??;
    tokio::time::timeout(timeout, pubsub.subscribe(&shared.layout.channel))
        .await
        .map_err(bounded)??;
    let mut conn = tokio::time::timeout(timeout, client.get_multiplexed_async_connection())
        .await
        .map_err(bounded)??;
    let known = read_all(&mut conn, shared).await?;
    reseed(&mut conn, shared, &known).await?;
    if !shared.connected.swap(true, Ordering::Relaxed) {
        if let Some(listener) = &shared.options.on_change {
            listener(MirrorState::Following);
        }
    }
    let mut messages = pubsub.into_on_message();
    let mut full_sync = tokio::time::interval(shared.options.full_sync);
    full_sync.tick().await; // the first tick is now: the set was just read
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else {
                    return Err(RedisRevocationError::Redis(RedisError::from(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "the subscription ended",
                    ))));
                };
                if let Some(revocation) = message
                    .get_payload::<String>()
                    .ok()
                    .and_then(|m| KeyLayout::parse(&m))
                {
                    shared.mirror.insert(revocation, unix_now());
                }
            }
            _ = full_sync.tick() => {
                read_all(&mut conn, shared).await?;
            }
        }
    }
}

/// [`Shared::last_full_read`] before the first full read.
const NEVER: u64 = u64::MAX;

/// How many members one write of [`reseed`] carries.
const RESEED_BATCH: usize = 1000;

/// Write back what the mirror holds and Redis lacks (`ZADD NX`, and publish it): after an outage in which Redis
/// lost its memory (no persistence, a failover to an empty replica), the first mirror to
/// reconnect restores the revocations it knew, for every other mirror and for processes that
/// start later.
async fn reseed(
    conn: &mut redis::aio::MultiplexedConnection,
    shared: &Shared,
    known: &HashSet<String>,
) -> Result<(), RedisRevocationError> {
    let timeout = shared.options.operation_timeout;
    let rules = shared.mirror.rules();
    let missing: Vec<(i64, String)> = shared
        .mirror
        .live(unix_now())
        .iter()
        .map(|revocation| (rules.kept_until(revocation), KeyLayout::member(revocation)))
        .filter(|(_, member)| !known.contains(member))
        .collect();
    // Published too: the mirrors that reconnected first have read the set already.
    for batch in missing.chunks(RESEED_BATCH) {
        let mut pipe = redis::pipe();
        for (until, member) in batch {
            pipe.cmd("ZADD")
                .arg(&shared.layout.set)
                .arg("NX")
                .arg(until)
                .arg(member)
                .ignore()
                .publish(&shared.layout.channel, member)
                .ignore();
        }
        tokio::time::timeout(timeout, pipe.query_async::<()>(conn))
            .await
            .map_err(|_| RedisRevocationError::Timeout(timeout))??;
    }
    Ok(())
}

/// Read the whole set into the mirror (adding only), dropping what has expired from Redis;
/// the members read.
async fn read_all(
    conn: &mut redis::aio::MultiplexedConnection,
    shared: &Shared,
) -> Result<HashSet<String>, RedisRevocationError> {
    let timeout = shared.options.operation_timeout;
    let now = unix_now();
    let set = &shared.layout.set;
    let read = async {
        let _: () = conn.zrembyscore(set, "-inf", format!("({now}")).await?;
        conn.zrangebyscore::<_, _, _, Vec<String>>(set, now, "+inf")
            .await
    };
    let members = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| RedisRevocationError::Timeout(timeout))??;
    for member in &members {
        if let Some(revocation) = KeyLayout::parse(member) {
            shared.mirror.insert(revocation, now);
        }
    }
    let read_at = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(NEVER - 1);
    shared.last_full_read.store(read_at, Ordering::Relaxed);
    Ok(members.into_iter().collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_prefix() {
        let layout = KeyLayout::new("lk/prod:");
        assert_eq!(layout.set, "lk/prod:revocations");
        assert_eq!(layout.channel, "lk/prod:revocations:changes");
        assert_eq!(KeyLayout::new(DEFAULT_PREFIX).set, "latchkey:revocations");
    }

    #[test]
    fn members_round_trip_and_fold_users() {
        let token = Revocation::Token {
            jti: "0123abcd".into(),
            exp: 1_700_000_600,
        };
        assert_eq!(KeyLayout::member(&token), "t:1700000600:0123abcd");
        assert_eq!(KeyLayout::parse("t:1700000600:0123abcd"), Some(token));
        let user = Revocation::User {
            user: "Smith, John: (*)".into(),
            at: 1_700_000_000,
        };
        let member = KeyLayout::member(&user);
        assert_eq!(member, "u:1700000000:smith, john: (*)");
        assert_eq!(
            KeyLayout::parse(&member),
            Some(Revocation::User {
                user: "smith, john: (*)".into(),
                at: 1_700_000_000
            })
        );
        for junk in ["", "t", "t:1", "t:1:", "x:1:a", "t:soon:a", "u:-:bob"] {
            assert_eq!(KeyLayout::parse(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_member_scores_the_second_it_stops_covering_anything() {
        let rules = ExpiryRules {
            max_lifetime: 86_400,
            leeway: 5,
        };
        let token = KeyLayout::parse("t:1000:j").unwrap();
        let user = KeyLayout::parse("u:1000:bob").unwrap();
        assert_eq!(rules.kept_until(&token), 1_005);
        assert_eq!(rules.kept_until(&user), 1_000 + 86_400 + 5);
    }
}
