//! The fixture users of `tests/fixtures/directory.ldif`, as the tests log in with them.

/// One fixture user ("" for an email the entry does not have).
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub login: &'static str,
    pub password: &'static str,
    pub dn: &'static str,
    pub email: &'static str,
}

const fn user(
    login: &'static str,
    password: &'static str,
    dn: &'static str,
    email: &'static str,
) -> User {
    User {
        login,
        password,
        dn,
        email,
    }
}

#[rustfmt::skip]
mod fixture {
    use super::{user, User};

    pub const ALICE: User = user("alice", "alice-password-1", "uid=alice,ou=people,dc=example,dc=org", "alice@example.org");
    pub const BOB: User = user("bob", "bob-password-1", "uid=bob,ou=people,dc=example,dc=org", "bob@example.org");
    /// Outside `ou=people`, hidden from anonymous searches.
    pub const CAROL: User = user("carol", "carol-password-1", "uid=carol,ou=staff,dc=example,dc=org", "carol@example.org");
    /// A login with a non-ASCII letter.
    pub const DRESSLER: User = user("dreßler", "dreßler-passwort-1", "uid=dreßler,ou=people,dc=example,dc=org", "dressler@example.org");
    /// A login with characters that need escaping in filters and DNs.
    pub const SMITH: User = user("smith, john (*)", "smith-password-1", "uid=smith\\, john (*),ou=people,dc=example,dc=org", "smith@example.org");
    /// In no group; no email; not a posixAccount.
    pub const USER1: User = user("user1", "user1-password", "uid=user1,ou=people,dc=example,dc=org", "");
    /// A member of 30 groups (listing them needs paging); no email.
    pub const PAGED: User = user("paged", "paged-password-1", "uid=paged,ou=people,dc=example,dc=org", "");
    /// Locked by the password policy.
    pub const LOCKED: User = user("locked", "locked-password-1", "uid=locked,ou=people,dc=example,dc=org", "locked@example.org");
}

#[allow(unused_imports)] // not every test file logs in
pub use fixture::*;

/// Two entries (`twin1`, `twin2`) share this email and password.
pub const TWINS_PASSWORD: &str = "twin-password-1";
