//! `[brute_force]`: failed logins counted per login and per client address, and bans.

use std::time::Duration;

use serde::Deserialize;

/// `[brute_force]`: failed logins counted per login and per client address.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BruteForceSettings {
    /// Failures of one login within `window` before it is banned; 0 turns this off.
    pub max_failures_per_login: u32,
    /// Failures from one address (IPv6: one /64) within `window` before it is banned; 0: off.
    pub max_failures_per_address: u32,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// How long a ban lasts.
    #[serde(with = "humantime_serde")]
    pub ban: Duration,
    /// Logins and addresses remembered at most (each).
    pub max_tracked: usize,
    /// A failed login is answered no sooner than this after it arrived, so that timing does
    /// not tell an unknown user from a wrong password.
    #[serde(with = "humantime_serde")]
    pub min_failure_time: Duration,
}

impl Default for BruteForceSettings {
    fn default() -> Self {
        BruteForceSettings {
            max_failures_per_login: 5,
            max_failures_per_address: 20,
            window: Duration::from_secs(600),
            ban: Duration::from_secs(600),
            max_tracked: 100_000,
            min_failure_time: Duration::from_millis(250),
        }
    }
}

pub(super) fn validate_brute_force(b: &BruteForceSettings, problems: &mut Vec<String>) {
    let on = b.max_failures_per_login > 0 || b.max_failures_per_address > 0;
    if on && (b.window.is_zero() || b.ban.is_zero()) {
        problems.push("brute_force.window and brute_force.ban must be more than 0 (set both max_failures_* to 0 to turn the protection off)".into());
    }
    if on && b.max_tracked == 0 {
        problems.push("brute_force.max_tracked must be at least 1".into());
    }
    if b.min_failure_time > Duration::from_secs(10) {
        problems.push(format!(
            "brute_force.min_failure_time = {} is more than 10 seconds; clients would time out",
            humantime::format_duration(b.min_failure_time)
        ));
    }
}
