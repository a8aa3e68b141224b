//! `directory.preset`: defaults for the directories people actually run.
//!
//! A preset only fills keys the file leaves out; any key written in the file wins. Without a
//! preset the defaults are those of a plain OpenLDAP tree that has no groups configured.

/// Which kind of directory the defaults are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// OpenLDAP with `inetOrgPerson` users and `groupOfNames` / `groupOfUniqueNames` groups.
    Openldap,
    /// Microsoft Active Directory: `sAMAccountName` logins, nested groups in one search.
    ActiveDirectory,
    /// FreeIPA / Red Hat IdM: `uid` logins, groups from the user's `memberOf`.
    Freeipa,
    /// lldap: `uid` logins, `groupOfUniqueNames` groups listing `member`.
    Lldap,
    /// RFC 2307 (NIS) schema: `posixAccount` users and `posixGroup` groups with `memberUid`.
    Rfc2307,
}

/// Parse one of `choices` (name, value) written at `key`, or say what the choices are.
pub fn choose<T: Copy>(key: &str, text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
            format!("{key} = {text:?} is not one of: {}", names.join(", "))
        })
}

/// The presets by name.
pub const PRESETS: &[(&str, Preset)] = &[
    ("openldap", Preset::Openldap),
    ("active-directory", Preset::ActiveDirectory),
    ("freeipa", Preset::Freeipa),
    ("lldap", Preset::Lldap),
    ("rfc2307", Preset::Rfc2307),
];

/// The group strategies by name.
pub const STRATEGIES: &[(&str, StrategyKind)] = &[
    ("none", StrategyKind::None),
    ("member", StrategyKind::Member),
    ("posix", StrategyKind::Posix),
    ("member-of", StrategyKind::MemberOf),
];

/// The account checks by name.
pub const ACCOUNT_STATUSES: &[(&str, AccountStatus)] = &[
    ("none", AccountStatus::None),
    ("ppolicy", AccountStatus::Ppolicy),
    ("active-directory", AccountStatus::ActiveDirectory),
    ("freeipa", AccountStatus::Freeipa),
];

impl Preset {
    /// The name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Openldap => "openldap",
            Preset::ActiveDirectory => "active-directory",
            Preset::Freeipa => "freeipa",
            Preset::Lldap => "lldap",
            Preset::Rfc2307 => "rfc2307",
        }
    }
}

/// How group membership is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    /// No groups: tokens carry none and policies see none.
    None,
    /// Group entries list their members by DN (`member`, `uniqueMember`).
    Member,
    /// `posixGroup` entries list members by `memberUid`; the user's `gidNumber` names the
    /// primary group.
    Posix,
    /// The user entry lists its groups' DNs in `memberOf`.
    MemberOf,
}

/// How the directory marks an account that may not log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Nothing is checked beyond the bind.
    None,
    /// OpenLDAP ppolicy: `pwdAccountLockedTime: 000001010000Z` (locked by an administrator).
    Ppolicy,
    /// Active Directory: `userAccountControl` bits ACCOUNTDISABLE (2) and LOCKOUT (16), and an
    /// `accountExpires` in the past.
    ActiveDirectory,
    /// FreeIPA: `nsAccountLock: TRUE`, or a `krbPrincipalExpiration` in the past.
    Freeipa,
}

impl AccountStatus {
    /// The user attributes the check reads.
    pub fn attributes(self) -> &'static [&'static str] {
        match self {
            AccountStatus::None => &[],
            AccountStatus::Ppolicy => &["pwdAccountLockedTime"],
            AccountStatus::ActiveDirectory => &["userAccountControl", "accountExpires"],
            AccountStatus::Freeipa => &["nsAccountLock", "krbPrincipalExpiration"],
        }
    }
}

/// The defaults one preset (or none) gives.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub user_filter: &'static str,
    pub login_attributes: &'static [&'static str],
    pub username_attribute: &'static str,
    pub name_attribute: &'static str,
    pub email_attribute: &'static str,
    pub account_status: AccountStatus,
    pub group_strategy: StrategyKind,
    pub group_filter: &'static str,
    pub member_attributes: &'static [&'static str],
    pub group_name_attribute: &'static str,
    pub nested: bool,
    pub in_chain: bool,
}

/// Defaults without a preset.
const PLAIN: Defaults = Defaults {
    user_filter: "(objectClass=*)",
    login_attributes: &["uid"],
    username_attribute: "uid",
    name_attribute: "cn",
    email_attribute: "mail",
    account_status: AccountStatus::None,
    group_strategy: StrategyKind::None,
    group_filter: "(objectClass=groupOfNames)",
    member_attributes: &["member"],
    group_name_attribute: "cn",
    nested: false,
    in_chain: false,
};

/// The defaults for `preset` (`None`: no preset).
pub fn defaults(preset: Option<Preset>) -> Defaults {
    match preset {
        None => PLAIN,
        Some(Preset::Openldap) => Defaults {
            user_filter: "(objectClass=inetOrgPerson)",
            account_status: AccountStatus::Ppolicy,
            group_strategy: StrategyKind::Member,
            group_filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
            member_attributes: &["member", "uniqueMember"],
            ..PLAIN
        },
        Some(Preset::ActiveDirectory) => Defaults {
            // Disabled accounts (userAccountControl bit 2) are not even found.
            user_filter: "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
            login_attributes: &["sAMAccountName"],
            username_attribute: "sAMAccountName",
            name_attribute: "displayName",
            email_attribute: "mail",
            account_status: AccountStatus::ActiveDirectory,
            group_strategy: StrategyKind::Member,
            group_filter: "(objectClass=group)",
            member_attributes: &["member"],
            group_name_attribute: "cn",
            nested: true,
            in_chain: true,
        },
        Some(Preset::Freeipa) => Defaults {
            user_filter: "(objectClass=person)",
            account_status: AccountStatus::Freeipa,
            // FreeIPA's memberOf already lists indirect groups.
            group_strategy: StrategyKind::MemberOf,
            ..PLAIN
        },
        Some(Preset::Lldap) => Defaults {
            user_filter: "(objectClass=person)",
            group_strategy: StrategyKind::Member,
            group_filter: "(objectClass=groupOfUniqueNames)",
            ..PLAIN
        },
        Some(Preset::Rfc2307) => Defaults {
            user_filter: "(objectClass=posixAccount)",
            group_strategy: StrategyKind::Posix,
            group_filter: "(objectClass=posixGroup)",
            member_attributes: &[],
            ..PLAIN
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, problems, GOOD};
    use crate::config::{Nesting, Strategy};

    #[test]
    fn presets_fill_what_the_file_leaves_out() {
        let ad = parse(&GOOD.replace(
            "[directory.users]",
            "preset = \"active-directory\"\n[directory.groups]\nbase_dns = [\"dc=corp,dc=example\"]\n[directory.users]",
        ))
        .unwrap();
        let d = &ad.directory;
        assert_eq!(d.users.login_attributes, vec!["sAMAccountName"]);
        assert_eq!(d.users.username_attribute, "sAMAccountName");
        assert!(d
            .users
            .filter
            .contains("userAccountControl:1.2.840.113556.1.4.803:=2"));
        assert_eq!(d.users.account_status, AccountStatus::ActiveDirectory);
        assert_eq!(d.groups.nesting, Nesting::InChain);
        assert_eq!(d.groups.filter, "(objectClass=group)");
        assert_eq!(
            d.users.read_attributes(),
            vec![
                "sAMAccountName",
                "displayName",
                "mail",
                "userAccountControl",
                "accountExpires"
            ]
        );

        // An explicit key wins over the preset.
        let ipa = parse(&GOOD.replace(
            "[directory.users]",
            "preset = \"freeipa\"\n[directory.users]\nusername_attribute = \"krbPrincipalName\"",
        ))
        .unwrap();
        assert_eq!(ipa.directory.users.username_attribute, "krbPrincipalName");
        assert_eq!(
            ipa.directory.groups.strategy,
            Strategy::MemberOf {
                attribute: "memberOf".into()
            }
        );
        assert!(ipa.directory.users.read_attributes().contains(&"memberOf"));

        let posix = parse(&GOOD.replace(
            "[directory.users]",
            "preset = \"rfc2307\"\n[directory.groups]\nbase_dns = [\"ou=groups,dc=example,dc=org\"]\n[directory.users]",
        ))
        .unwrap();
        assert_eq!(posix.directory.groups.strategy, Strategy::Posix);
        assert!(posix
            .directory
            .users
            .read_attributes()
            .contains(&"gidNumber"));

        let p = problems(&GOOD.replace(
            "[directory.users]",
            "preset = \"novell\"\n[directory.users]",
        ));
        assert_eq!(
            p,
            vec!["directory.preset = \"novell\" is not one of: openldap, active-directory, freeipa, lldap, rfc2307"]
        );
        assert_eq!(
            problems(&GOOD.replace(
                "[directory.users]",
                "failover = \"random\"\n[directory.users]"
            )),
            vec!["directory.failover = \"random\" is not one of: in-order, round-robin"]
        );
        let p =
            problems(&GOOD.replace("base_dn = ", "account_status = \"eDirectory\"\nbase_dn = "));
        assert_eq!(
            p,
            vec!["directory.users.account_status = \"eDirectory\" is not one of: none, ppolicy, active-directory, freeipa"]
        );
    }
}
