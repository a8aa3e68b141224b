//! Upper bounds on the durations of every section, checked together so that the problems
//! come in one order whatever the section.

use std::time::Duration;

use super::Settings;

/// The longest each duration of the configuration may be (`brute_force.min_failure_time`,
/// `directory.cache.ttl`, `tokens.max_duration` and `verify.leeway` are bounded where their
/// other rules are). More is a mistake, a unit
/// mixed up, and would overflow where it is added to a clock reading: refused at load, naming
/// the key, rather than failing later.
pub(super) fn validate_durations(s: &Settings, problems: &mut Vec<String>) {
    const MINUTE: u64 = 60;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;
    let d = &s.directory;
    let bounds = [
        (
            "server.keep_alive",
            s.server.keep_alive,
            HOUR,
            "an idle connection is not worth keeping that long",
        ),
        (
            "server.client_request_timeout",
            s.server.client_request_timeout,
            5 * MINUTE,
            "a slow client would hold a connection that long",
        ),
        (
            "server.shutdown_timeout",
            s.server.shutdown_timeout,
            HOUR,
            "a stop would wait that long",
        ),
        (
            "tokens.max_session",
            s.tokens.max_session,
            30 * DAY,
            "a password checked once would keep a session going that long",
        ),
        (
            "brute_force.window",
            s.brute_force.window,
            DAY,
            "failures are counted within a day at most",
        ),
        (
            "brute_force.ban",
            s.brute_force.ban,
            7 * DAY,
            "a ban lasts a week at most",
        ),
        (
            "directory.retry_down_after",
            d.retry_down_after,
            HOUR,
            "a recovered server would be passed over that long",
        ),
        (
            "directory.connect_timeout",
            d.connect_timeout,
            5 * MINUTE,
            "a request would wait that long for a dead server",
        ),
        (
            "directory.operation_timeout",
            d.operation_timeout,
            5 * MINUTE,
            "a request would wait that long for a stuck server",
        ),
        (
            "directory.pool.wait_timeout",
            d.pool.wait_timeout,
            5 * MINUTE,
            "a request would wait that long for a connection",
        ),
    ];
    for (key, value, max, why) in bounds {
        let max = Duration::from_secs(max);
        if value > max {
            problems.push(format!(
                "{key} = {} is more than {}; {why}",
                humantime::format_duration(value),
                humantime::format_duration(max)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    fn every_duration_is_bounded_naming_its_key() {
        let with = |directory: &str, pool: &str, tables: &str| {
            format!(
                "{}\n{tables}",
                GOOD.replace(
                    "[directory.users]",
                    &format!("{directory}\n[directory.pool]\n{pool}\n[directory.users]"),
                )
            )
        };
        let p = problems(&with(
            "retry_down_after = \"100000000 years\"\nconnect_timeout = \"301s\"\noperation_timeout = \"6m\"",
            "wait_timeout = \"1h\"",
            "[tokens]\nmax_duration = 31536001\nmax_session = \"31days\"\n[server]\nkeep_alive = \"61m\"\nclient_request_timeout = \"1h\"\nshutdown_timeout = \"2h\"\n[brute_force]\nwindow = \"25h\"\nban = \"8days\"",
        ));
        assert_eq!(
            p,
            vec![
                "server.keep_alive = 1h 1m is more than 1h; an idle connection is not worth keeping that long",
                "server.client_request_timeout = 1h is more than 5m; a slow client would hold a connection that long",
                "server.shutdown_timeout = 2h is more than 1h; a stop would wait that long",
                "tokens.max_session = 1month 13h 26m 24s is more than 30days; a password checked once would keep a session going that long",
                "brute_force.window = 1day 1h is more than 1day; failures are counted within a day at most",
                "brute_force.ban = 8days is more than 7days; a ban lasts a week at most",
                "directory.retry_down_after = 100000000years is more than 1h; a recovered server would be passed over that long",
                "directory.connect_timeout = 5m 1s is more than 5m; a request would wait that long for a dead server",
                "directory.operation_timeout = 6m is more than 5m; a request would wait that long for a stuck server",
                "directory.pool.wait_timeout = 1h is more than 5m; a request would wait that long for a connection",
                "tokens.max_duration = 31536001 is more than 31536000 seconds (a year); a token cannot be taken back before it expires",
            ]
        );
        // Each maximum itself is accepted.
        let c = parse(&with(
            "retry_down_after = \"1h\"\nconnect_timeout = \"5m\"\noperation_timeout = \"5m\"",
            "wait_timeout = \"5m\"",
            "[tokens]\nmax_duration = 31536000\nmax_session = \"30days\"\n[server]\nkeep_alive = \"1h\"\nclient_request_timeout = \"5m\"\nshutdown_timeout = \"1h\"\n[brute_force]\nwindow = \"1day\"\nban = \"7days\"",
        ))
        .unwrap();
        assert_eq!(c.directory.retry_down_after, Duration::from_secs(3600));
    }
}
