//! Accounts the directory marks as unusable, by the attributes each kind of server uses.
//!
//! These checks run after a successful bind, so their outcome is never a hint to someone who
//! does not know the password; the client gets the same 401 as for a wrong password.

use chrono::{DateTime, NaiveDateTime, Utc};
use ldap3::SearchEntry;

use super::first_value;
use crate::config::AccountStatus;

/// ppolicy's value of `pwdAccountLockedTime` for "locked by an administrator, for good".
const PERMANENTLY_LOCKED: &str = "000001010000Z";
/// Active Directory `userAccountControl` bits.
const ACCOUNTDISABLE: i64 = 0x2;
const LOCKOUT: i64 = 0x10;
/// Seconds between 1601-01-01 (Windows FILETIME epoch) and 1970-01-01.
const FILETIME_TO_UNIX: i64 = 11_644_473_600;

/// Why the account may not log in, or None when nothing says so.
pub fn refusal(
    status: AccountStatus,
    entry: &SearchEntry,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    match status {
        AccountStatus::None => None,
        AccountStatus::Ppolicy => {
            // A temporary lockout (any other time stamp) is enforced by the server's own
            // ppolicy overlay at bind time, which also knows the lockout duration.
            (first_value(entry, "pwdAccountLockedTime").as_deref() == Some(PERMANENTLY_LOCKED))
                .then_some("locked by an administrator (pwdAccountLockedTime)")
        }
        AccountStatus::ActiveDirectory => {
            let control = first_value(entry, "userAccountControl")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(0);
            if control & ACCOUNTDISABLE != 0 {
                return Some("disabled (userAccountControl)");
            }
            if control & LOCKOUT != 0 {
                return Some("locked out (userAccountControl)");
            }
            let expires = first_value(entry, "accountExpires")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .and_then(filetime_to_utc);
            expires
                .is_some_and(|at| at <= now)
                .then_some("expired (accountExpires)")
        }
        AccountStatus::Freeipa => {
            if first_value(entry, "nsAccountLock").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
                return Some("locked (nsAccountLock)");
            }
            first_value(entry, "krbPrincipalExpiration")
                .and_then(|v| generalized_time(&v))
                .is_some_and(|at| at <= now)
                .then_some("expired (krbPrincipalExpiration)")
        }
    }
}

/// AD's `accountExpires`: 100 ns intervals since 1601; 0 and i64::MAX mean "never".
fn filetime_to_utc(value: i64) -> Option<DateTime<Utc>> {
    if value <= 0 || value == i64::MAX {
        return None;
    }
    DateTime::from_timestamp(value / 10_000_000 - FILETIME_TO_UNIX, 0)
}

/// An LDAP GeneralizedTime in UTC, `YYYYMMDDHHMMSSZ` (fractions ignored).
fn generalized_time(value: &str) -> Option<DateTime<Utc>> {
    let digits = value.get(..14)?;
    NaiveDateTime::parse_from_str(digits, "%Y%m%d%H%M%S")
        .ok()
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(attrs: &[(&str, &str)]) -> SearchEntry {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in attrs {
            map.entry((*k).to_owned())
                .or_default()
                .push((*v).to_owned());
        }
        SearchEntry {
            dn: "uid=x,dc=example,dc=org".into(),
            attrs: map,
            bin_attrs: HashMap::new(),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn ppolicy_refuses_only_an_administrators_lock() {
        let s = AccountStatus::Ppolicy;
        assert_eq!(refusal(s, &entry(&[]), now()), None);
        assert_eq!(
            refusal(
                s,
                &entry(&[("pwdAccountLockedTime", "000001010000Z")]),
                now()
            ),
            Some("locked by an administrator (pwdAccountLockedTime)")
        );
        assert_eq!(
            refusal(
                s,
                &entry(&[("pwdAccountLockedTime", "20261123101500Z")]),
                now()
            ),
            None
        );
        // Attribute names are matched without regard to case.
        assert!(refusal(
            s,
            &entry(&[("PWDACCOUNTLOCKEDTIME", "000001010000Z")]),
            now()
        )
        .is_some());
    }

    #[test]
    fn active_directory_bits_and_expiry() {
        let s = AccountStatus::ActiveDirectory;
        assert_eq!(
            refusal(s, &entry(&[("userAccountControl", "512")]), now()),
            None
        );
        assert_eq!(
            refusal(s, &entry(&[("userAccountControl", "514")]), now()),
            Some("disabled (userAccountControl)")
        );
        assert_eq!(
            refusal(s, &entry(&[("userAccountControl", "528")]), now()),
            Some("locked out (userAccountControl)")
        );
        // 2020-01-01 as FILETIME, and "never" in both spellings.
        let past = (1_577_836_800 + FILETIME_TO_UNIX) * 10_000_000;
        assert_eq!(
            refusal(s, &entry(&[("accountExpires", &past.to_string())]), now()),
            Some("expired (accountExpires)")
        );
        let future = (1_900_000_000 + FILETIME_TO_UNIX) * 10_000_000;
        assert_eq!(
            refusal(s, &entry(&[("accountExpires", &future.to_string())]), now()),
            None
        );
        for never in ["0", "9223372036854775807", "garbage"] {
            assert_eq!(
                refusal(s, &entry(&[("accountExpires", never)]), now()),
                None
            );
        }
    }

    #[test]
    fn freeipa_lock_and_expiry() {
        let s = AccountStatus::Freeipa;
        assert_eq!(
            refusal(s, &entry(&[("nsAccountLock", "TRUE")]), now()),
            Some("locked (nsAccountLock)")
        );
        assert_eq!(
            refusal(s, &entry(&[("nsAccountLock", "false")]), now()),
            None
        );
        assert_eq!(
            refusal(
                s,
                &entry(&[("krbPrincipalExpiration", "20200101000000Z")]),
                now()
            ),
            Some("expired (krbPrincipalExpiration)")
        );
        assert_eq!(
            refusal(
                s,
                &entry(&[("krbPrincipalExpiration", "20991231235959Z")]),
                now()
            ),
            None
        );
        assert_eq!(
            refusal(
                AccountStatus::None,
                &entry(&[("nsAccountLock", "TRUE")]),
                now()
            ),
            None
        );
    }
}
