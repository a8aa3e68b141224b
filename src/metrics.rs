//! Prometheus metrics, served at `GET /metrics` (OpenMetrics text format).
//!
//! One [`Metrics`] is shared by every worker. Counters and histograms are recorded where things
//! happen; pool sizes, active bans and the revocations held (how many, whether in sync with the
//! shared store, and how long ago they were read from it in full) are gauges read when the
//! metrics are scraped.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of the answer.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `route` and `status` of an HTTP answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: &'static str,
    pub status: u16,
}

/// Why a login failed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum FailureReason {
    /// The directory refused the password.
    bad_credentials,
    /// No entry (or several) matched the login.
    unknown_user,
    /// The directory marks the account locked, disabled or expired.
    account_disabled,
    /// Refused by brute-force protection before any directory traffic.
    banned,
    /// Refused by the `[access]` rules.
    policy,
    /// The directory could not be reached or failed.
    directory_down,
    /// The directory and the configuration disagree.
    misconfigured,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: FailureReason,
}

/// An LDAP operation whose duration is measured.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Operation {
    /// Opening a connection (TCP, TLS, and the service bind when there is one).
    connect,
    /// The user search.
    search,
    /// The user bind.
    bind,
    /// One group search (a page counts as part of its search).
    group_search,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: Operation,
}

/// A connection pool's kind, for the pool gauges.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PoolKind {
    service_search,
    anonymous_search,
    bind,
}

/// In use or idle.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum PoolState {
    in_use,
    idle,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: PoolKind,
    state: PoolState,
}

type HistogramFamily = Family<OperationLabels, Histogram, fn() -> Histogram>;

/// Every metric Latchkey exports.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    tokens_issued: Counter,
    login_failures: Family<ReasonLabels, Counter>,
    ldap_seconds: HistogramFamily,
    pool_connections: Family<PoolLabels, Gauge>,
    bans_active: Gauge,
    state_backend_up: Gauge,
    state_errors: Counter,
    revocations: Gauge,
    revocations_synced: Gauge,
    revocations_sync_age: Gauge,
    /// Serialises scrapes: gauges are set, then encoded.
    scrape: Mutex<()>,
}

fn ldap_histogram() -> Histogram {
    // 50 µs to about 1.6 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("latchkey");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            http_requests.clone(),
        );
        let tokens_issued = Counter::default();
        registry.register("tokens_issued", "Tokens issued", tokens_issued.clone());
        let login_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "login_failures",
            "Token requests refused, by reason",
            login_failures.clone(),
        );
        let ldap_seconds: HistogramFamily = Family::new_with_constructor(ldap_histogram);
        registry.register(
            "ldap_operation_seconds",
            "Duration of LDAP operations, by operation",
            ldap_seconds.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "ldap_pool_connections",
            "Directory connections in the pools of all workers, by pool and state",
            pool_connections.clone(),
        );
        let bans_active = Gauge::default();
        registry.register(
            "bans_active",
            "Logins and client addresses currently banned by brute-force protection",
            bans_active.clone(),
        );
        let state_backend_up = Gauge::default();
        state_backend_up.set(1);
        registry.register(
            "state_backend_up",
            "1 while the shared state backend answers (always 1 for the memory backend), 0 while brute-force counts fall back to this replica's own",
            state_backend_up.clone(),
        );
        let state_errors = Counter::default();
        registry.register(
            "state_errors",
            "Operations on the shared state backend that failed or timed out",
            state_errors.clone(),
        );
        let revocations = Gauge::default();
        registry.register(
            "revocations",
            "Revocations this replica holds and checks every token against (the memory backend's set, or its mirror of the shared set), including expired ones swept at most a minute late",
            revocations.clone(),
        );
        let revocations_synced = Gauge::default();
        registry.register(
            "revocations_synced",
            "1 while this replica's revocations are the shared store's (always 1 for the memory backend; with Redis, subscribed and read in full since the last failure), 0 while it misses other replicas' new revocations",
            revocations_synced.clone(),
        );
        let revocations_sync_age = Gauge::default();
        registry.register_with_unit(
            "revocations_sync_age",
            "Seconds since this replica's mirror last read the shared revocation set in full (every 30 s while synced; 0 for the memory backend; -1 before the first full read)",
            Unit::Seconds,
            revocations_sync_age.clone(),
        );
        Metrics {
            registry,
            http_requests,
            tokens_issued,
            login_failures,
            ldap_seconds,
            pool_connections,
            bans_active,
            state_backend_up,
            state_errors,
            revocations,
            revocations_synced,
            revocations_sync_age,
            scrape: Mutex::new(()),
        }
    }

    /// The counter of answers with `status` on `route`, to keep and count with.
    pub fn http_requests(&self, route: &'static str, status: u16) -> Counter {
        self.http_requests
            .get_or_create(&HttpLabels { route, status })
            .clone()
    }

    pub fn token_issued(&self) {
        self.tokens_issued.inc();
    }

    pub fn login_failed(&self, reason: FailureReason) {
        self.login_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    pub fn ldap_operation(&self, operation: Operation, took: Duration) {
        self.ldap_seconds
            .get_or_create(&OperationLabels { operation })
            .observe(took.as_secs_f64());
    }

    /// Whether the shared state backend answers.
    pub fn state_backend(&self, up: bool) {
        self.state_backend_up.set(i64::from(up));
    }

    /// One failed or timed-out operation on the shared state backend.
    pub fn state_error(&self) {
        self.state_errors.inc();
    }

    /// The text for one scrape, with the gauges read by `gauges` just before.
    pub fn render(&self, gauges: impl FnOnce(&mut GaugeReadings)) -> String {
        let _one_at_a_time = self
            .scrape
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut readings = GaugeReadings::default();
        gauges(&mut readings);
        for (pool, (in_use, idle)) in [
            (PoolKind::service_search, readings.service_search),
            (PoolKind::anonymous_search, readings.anonymous_search),
            (PoolKind::bind, readings.bind),
        ] {
            for (state, value) in [(PoolState::in_use, in_use), (PoolState::idle, idle)] {
                self.pool_connections
                    .get_or_create(&PoolLabels { pool, state })
                    .set(i64::try_from(value).unwrap_or(i64::MAX));
            }
        }
        self.bans_active
            .set(i64::try_from(readings.bans_active).unwrap_or(i64::MAX));
        self.revocations
            .set(i64::try_from(readings.revocations).unwrap_or(i64::MAX));
        self.revocations_synced
            .set(i64::from(readings.revocations_synced));
        self.revocations_sync_age.set(
            readings
                .revocations_sync_age
                .map_or(-1, |age| i64::try_from(age.as_secs()).unwrap_or(i64::MAX)),
        );
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            tracing::error!("cannot encode the metrics");
        }
        out
    }
}

/// Values read at scrape time: (in use, idle) per pool kind, bans, and the revocations held,
/// whether they are in sync with the shared store and how long ago they were read from it in
/// full (None: never).
#[derive(Debug, Default, Clone, Copy)]
pub struct GaugeReadings {
    pub service_search: (usize, usize),
    pub anonymous_search: (usize, usize),
    pub bind: (usize, usize),
    pub bans_active: usize,
    pub revocations: usize,
    pub revocations_synced: bool,
    pub revocations_sync_age: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_shows_every_family_with_its_labels() {
        let m = Metrics::new();
        m.http_requests("/auth/request-token", 200).inc();
        m.http_requests("/auth/request-token", 200).inc();
        m.token_issued();
        m.login_failed(FailureReason::unknown_user);
        m.ldap_operation(Operation::bind, Duration::from_micros(300));
        m.state_backend(false);
        m.state_error();
        m.state_error();
        let text = m.render(|g| {
            g.bind = (1, 3);
            g.bans_active = 2;
            g.revocations = 100_000;
            g.revocations_synced = true;
            g.revocations_sync_age = Some(Duration::from_millis(12_700));
        });
        for line in [
            "latchkey_http_requests_total{route=\"/auth/request-token\",status=\"200\"} 2",
            "latchkey_tokens_issued_total 1",
            "latchkey_login_failures_total{reason=\"unknown_user\"} 1",
            "latchkey_ldap_operation_seconds_count{operation=\"bind\"} 1",
            "latchkey_ldap_operation_seconds_bucket{le=\"0.0004\",operation=\"bind\"} 1",
            "latchkey_ldap_pool_connections{pool=\"bind\",state=\"in_use\"} 1",
            "latchkey_ldap_pool_connections{pool=\"bind\",state=\"idle\"} 3",
            "latchkey_bans_active 2",
            "latchkey_state_backend_up 0",
            "latchkey_state_errors_total 2",
            "latchkey_revocations 100000",
            "latchkey_revocations_synced 1",
            "# TYPE latchkey_revocations_sync_age_seconds gauge",
            "# UNIT latchkey_revocations_sync_age_seconds seconds",
            "latchkey_revocations_sync_age_seconds 12",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }

    #[test]
    fn a_mirror_never_read_in_full_shows_its_age_as_minus_one() {
        let text = Metrics::new().render(|_| {});
        for line in [
            "latchkey_revocations 0",
            "latchkey_revocations_synced 0",
            "latchkey_revocations_sync_age_seconds -1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
    }
}
