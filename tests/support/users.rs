//! The fixture users of `tests/fixtures/directory.ldif`, as the tests log in with them.

/// One fixture user.
#[derive(Debug, Clone, Copy)]
pub struct User {
    pub login: &'static str,
    pub password: &'static str,
    pub dn: &'static str,
    pub email: &'static str,
}

pub const ALICE: User = User {
    login: "alice",
    password: "alice-password-1",
    dn: "uid=alice,ou=people,dc=example,dc=org",
    email: "alice@example.org",
};

pub const BOB: User = User {
    login: "bob",
    password: "bob-password-1",
    dn: "uid=bob,ou=people,dc=example,dc=org",
    email: "bob@example.org",
};

/// Outside `ou=people`.
pub const CAROL: User = User {
    login: "carol",
    password: "carol-password-1",
    dn: "uid=carol,ou=staff,dc=example,dc=org",
    email: "carol@example.org",
};

/// A login with a non-ASCII letter.
pub const DRESSLER: User = User {
    login: "dreßler",
    password: "dreßler-passwort-1",
    dn: "uid=dreßler,ou=people,dc=example,dc=org",
    email: "dressler@example.org",
};

/// A DN with characters that need escaping in filters and DNs.
pub const SMITH: User = User {
    login: "smith, john (*)",
    password: "smith-password-1",
    dn: "uid=smith\\, john (*),ou=people,dc=example,dc=org",
    email: "smith@example.org",
};

/// In no group, no email, not a posixAccount.
pub const USER1: User = User {
    login: "user1",
    password: "user1-password",
    dn: "uid=user1,ou=people,dc=example,dc=org",
    email: "",
};

/// A member of 30 groups (listing them needs paging); no email.
pub const PAGED: User = User {
    login: "paged",
    password: "paged-password-1",
    dn: "uid=paged,ou=people,dc=example,dc=org",
    email: "",
};

/// Locked by the password policy.
pub const LOCKED: User = User {
    login: "locked",
    password: "locked-password-1",
    dn: "uid=locked,ou=people,dc=example,dc=org",
    email: "locked@example.org",
};

/// Two entries (`twin1`, `twin2`) share this email and password.
pub const TWINS_PASSWORD: &str = "twin-password-1";
