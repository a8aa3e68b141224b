//! The claims of a Latchkey token.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

/// What a Latchkey token says about its holder.
///
/// Times are seconds since the Unix epoch. `sub` is the directory's canonical username (as
/// stored in the entry), never what the client typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// Issuer: the Latchkey instance that signed the token.
    pub iss: String,
    /// Subject: the canonical username from the directory entry.
    pub sub: String,
    /// Audience, when the issuer is configured with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Not valid before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// Unique token id (128 random bits, hex).
    pub jti: String,
    /// When the holder's password was last checked (OpenID Connect's `auth_time`): the login
    /// that started the session. A refreshed token keeps its predecessor's. None only in tokens
    /// issued before Latchkey wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// Which directory entry the token was issued for, as a fingerprint of its DN (the issuer
    /// computes it; verifiers only carry it): a refresh is refused when the username now names
    /// another entry. None only in tokens issued before Latchkey wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    /// Display name, when the entry has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email address, when the entry has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Group names, when group lookup is configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Every other claim: attributes mapped by the issuer's `[claims.extra]` and the booleans of
    /// its `[claims.flags]`, by claim name.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Claims {
    /// Claims for `sub` issued by `iss`, valid from `iat` until `exp`, with an empty `jti`.
    pub fn new(iss: impl Into<String>, sub: impl Into<String>, iat: i64, exp: i64) -> Self {
        Claims {
            iss: iss.into(),
            sub: sub.into(),
            aud: None,
            iat,
            nbf: iat,
            exp,
            jti: String::new(),
            auth_time: None,
            entry: None,
            name: None,
            email: None,
            groups: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// When the password was last checked: `auth_time`, or `iat` for a token without it.
    pub fn authenticated_at(&self) -> i64 {
        self.auth_time.unwrap_or(self.iat)
    }

    /// A claim beyond the standard ones, e.g. `claims.extra_claim("department")`.
    pub fn extra_claim(&self, name: &str) -> Option<&serde_json::Value> {
        self.extra.get(name)
    }

    /// The boolean claim `name` (a `[claims.flags]` entry); false when absent or not a boolean.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.extra.get(name), Some(serde_json::Value::Bool(true)))
    }

    /// Whether `groups` holds the group `name`, compared as Latchkey compares group names
    /// everywhere ([`fold_group`]: without regard to case or runs of whitespace).
    pub fn has_group(&self, name: &str) -> bool {
        if self.groups.iter().any(|g| g == name) {
            return true;
        }
        let key = fold_group(name);
        self.groups.iter().any(|g| fold_group(g) == key)
    }
}

/// The key under which a group name is compared, by Latchkey's `[access]` and `[claims]` rules,
/// `/auth/verify`'s `?group=` and `?require=`, and [`Claims::has_group`]: two names denote the
/// same group exactly when their keys are equal.
///
/// Runs of whitespace become one space, leading and trailing whitespace is dropped, and the
/// rest is lowercased with [`str::to_lowercase`] (Unicode, not only ASCII: `GRÖẞE` and
/// `größe` are one group). That is lowercasing, not full case folding: `GRÖSSE` stays
/// `grösse`, another group than `größe`.
pub fn fold_group(name: &str) -> String {
    let mut collapsed = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed.to_lowercase()
}

/// The names `Claims` holds in its own fields; an extra claim never takes one of them.
pub const RESERVED_CLAIMS: [&str; 12] = [
    "iss",
    "sub",
    "aud",
    "iat",
    "nbf",
    "exp",
    "jti",
    "auth_time",
    "entry",
    "name",
    "email",
    "groups",
];

// Written by hand rather than derived: `#[serde(flatten)]` would buffer the whole payload
// before reading it, and verification is on every guarded request's path.
impl<'de> Deserialize<'de> for Claims {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ClaimsVisitor)
    }
}

struct ClaimsVisitor;

/// A claim's name: the standard ones without allocating, any other as a string.
enum Field {
    Iss,
    Sub,
    Aud,
    Iat,
    Nbf,
    Exp,
    Jti,
    AuthTime,
    Entry,
    Name,
    Email,
    Groups,
    Other(String),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Field, E> {
                Ok(match name {
                    "iss" => Field::Iss,
                    "sub" => Field::Sub,
                    "aud" => Field::Aud,
                    "iat" => Field::Iat,
                    "nbf" => Field::Nbf,
                    "exp" => Field::Exp,
                    "jti" => Field::Jti,
                    "auth_time" => Field::AuthTime,
                    "entry" => Field::Entry,
                    "name" => Field::Name,
                    "email" => Field::Email,
                    "groups" => Field::Groups,
                    other => Field::Other(other.to_owned()),
                })
            }
        }
        deserializer.deserialize_identifier(FieldVisitor)
    }
}

fn set<T, E: de::Error>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Visitor<'de> for ClaimsVisitor {
    type Value = Claims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of token claims")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Claims, A::Error> {
        let (mut iss, mut sub, mut aud, mut iat, mut nbf, mut exp, mut jti) =
            (None, None, None, None, None, None, None);
        let (mut auth_time, mut entry) = (None, None);
        let (mut name, mut email, mut groups) = (None, None, None);
        let mut extra = BTreeMap::new();
        while let Some(key) = map.next_key::<Field>()? {
            match key {
                Field::Iss => set(&mut iss, map.next_value()?, "iss")?,
                Field::Sub => set(&mut sub, map.next_value()?, "sub")?,
                Field::Aud => set(&mut aud, map.next_value::<Option<String>>()?, "aud")?,
                Field::Iat => set(&mut iat, map.next_value()?, "iat")?,
                Field::Nbf => set(&mut nbf, map.next_value()?, "nbf")?,
                Field::Exp => set(&mut exp, map.next_value()?, "exp")?,
                Field::Jti => set(&mut jti, map.next_value()?, "jti")?,
                Field::AuthTime => set(
                    &mut auth_time,
                    map.next_value::<Option<i64>>()?,
                    "auth_time",
                )?,
                Field::Entry => set(&mut entry, map.next_value::<Option<String>>()?, "entry")?,
                Field::Name => set(&mut name, map.next_value::<Option<String>>()?, "name")?,
                Field::Email => set(&mut email, map.next_value::<Option<String>>()?, "email")?,
                Field::Groups => set(&mut groups, map.next_value::<Vec<String>>()?, "groups")?,
                Field::Other(other) => {
                    let value = map.next_value::<serde_json::Value>()?;
                    match extra.entry(other) {
                        Entry::Vacant(slot) => {
                            slot.insert(value);
                        }
                        Entry::Occupied(slot) => {
                            return Err(de::Error::custom(format_args!(
                                "duplicate claim `{}`",
                                slot.key()
                            )));
                        }
                    }
                }
            }
        }
        Ok(Claims {
            iss: iss.ok_or_else(|| de::Error::missing_field("iss"))?,
            sub: sub.ok_or_else(|| de::Error::missing_field("sub"))?,
            aud: aud.flatten(),
            iat: iat.ok_or_else(|| de::Error::missing_field("iat"))?,
            nbf: nbf.ok_or_else(|| de::Error::missing_field("nbf"))?,
            exp: exp.ok_or_else(|| de::Error::missing_field("exp"))?,
            jti: jti.ok_or_else(|| de::Error::missing_field("jti"))?,
            auth_time: auth_time.flatten(),
            entry: entry.flatten(),
            name: name.flatten(),
            email: email.flatten(),
            groups: groups.unwrap_or_default(),
            extra,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn group_names_fold_by_whitespace_and_unicode_lowercase() {
        assert_eq!(fold_group("Admins"), "admins");
        assert_eq!(fold_group("  Domain \t  Admins\n"), "domain admins");
        assert_eq!(fold_group(""), "");
        assert_eq!(fold_group(" \t "), "");
        assert_eq!(fold_group("Sales, EMEA (*)"), "sales, emea (*)");
        // Unicode lowercasing: Ö and the capital sharp s too; "SS" stays "ss".
        assert_eq!(fold_group("GRÖẞE"), "größe");
        assert_eq!(fold_group("GRÖSSE"), "grösse");
        // Whole-string str::to_lowercase: a word-final capital sigma becomes 'ς'.
        assert_eq!(fold_group("ΟΔΟΣ   ΜΑΣ"), "οδος μας");
        assert_eq!(fold_group("ΟΔΟΣ"), "ΟΔΟΣ".to_lowercase());
    }

    #[test]
    fn has_group_compares_folded_names() {
        let mut c = Claims::new("iss-1", "dreßler", 10, 20);
        c.groups = vec!["Größe".into(), "Sales, EMEA (*)".into(), "ops".into()];
        for name in [
            "Größe",
            "GRÖẞE",
            "größe",
            "SALES,  EMEA (*)",
            " sales, emea (*) ",
            "OPS",
        ] {
            assert!(c.has_group(name), "{name}");
        }
        for name in ["GRÖSSE", "grosse", "Sales, EMEA", "op", ""] {
            assert!(!c.has_group(name), "{name}");
        }
    }

    #[test]
    fn extra_claims_round_trip_beside_the_standard_ones() {
        let mut c = Claims::new("iss-1", "alice", 10, 20);
        c.jti = "j".into();
        c.auth_time = Some(5);
        c.groups = vec!["staff".into()];
        c.extra.insert("department".into(), json!("R&D"));
        c.extra.insert("phones".into(), json!(["1", "2"]));
        c.extra.insert("admin".into(), json!(true));
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"iss":"iss-1","sub":"alice","iat":10,"nbf":10,"exp":20,"jti":"j","auth_time":5,"groups":["staff"],"admin":true,"department":"R&D","phones":["1","2"]}"#
        );
        let back: Claims = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.authenticated_at(), 5);
        assert!(back.flag("admin"));
        assert!(!back.flag("department"));
        assert!(!back.flag("absent"));
        assert_eq!(back.extra_claim("department"), Some(&json!("R&D")));
    }

    #[test]
    fn missing_and_duplicate_claims_are_refused() {
        let missing =
            serde_json::from_str::<Claims>(r#"{"iss":"i","sub":"s","iat":1,"nbf":1,"jti":"j"}"#);
        assert_eq!(
            missing.unwrap_err().to_string(),
            "missing field `exp` at line 1 column 47"
        );
        let twice = serde_json::from_str::<Claims>(
            r#"{"iss":"i","sub":"s","sub":"t","iat":1,"nbf":1,"exp":2,"jti":"j"}"#,
        );
        assert!(twice
            .unwrap_err()
            .to_string()
            .starts_with("duplicate field `sub`"));
        let extra_twice = serde_json::from_str::<Claims>(
            r#"{"iss":"i","sub":"s","iat":1,"nbf":1,"exp":2,"jti":"j","x":1,"x":2}"#,
        );
        assert!(extra_twice
            .unwrap_err()
            .to_string()
            .starts_with("duplicate claim `x`"));
        let null_name = serde_json::from_str::<Claims>(
            r#"{"iss":"i","sub":"s","iat":1,"nbf":1,"exp":2,"jti":"j","name":null,"aud":null}"#,
        )
        .unwrap();
        assert_eq!(null_name.name, None);
        assert_eq!(null_name.aud, None);
        // A token from before auth_time was written: the password was checked when it was
        // issued.
        assert_eq!(null_name.auth_time, None);
        assert_eq!(null_name.authenticated_at(), 1);
    }
}
