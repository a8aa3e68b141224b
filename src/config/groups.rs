//! `[directory.groups]` and `[directory.cache]`: how a user's groups are found, and how long
//! what the directory said about a user is remembered.

use std::time::Duration;

use serde::Deserialize;

use super::presets::{choose, Defaults, StrategyKind, STRATEGIES};
use super::{check_attribute, check_filter, SearchScope};
use crate::ldap_syntax::dn;

/// `[directory.groups]`, as written. Unset keys come from the preset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSettings {
    /// `none`, `member`, `posix` or `member-of`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// Where group entries live. Required by `member` and `posix`; with `member-of`, groups
    /// outside these bases are ignored (all are kept when the list is empty).
    #[serde(default)]
    pub base_dns: Vec<String>,
    #[serde(default)]
    pub scope: SearchScope,
    /// Which entries are groups.
    #[serde(default)]
    pub filter: Option<String>,
    /// The attribute holding a group's name (the token's `groups` entries).
    #[serde(default)]
    pub name_attribute: Option<String>,
    /// `member`: the attributes of a group entry that list member DNs.
    #[serde(default)]
    pub member_attributes: Option<Vec<String>>,
    /// `member-of`: the user attribute listing group DNs.
    #[serde(default)]
    pub member_of_attribute: Option<String>,
    /// Follow groups that are members of groups.
    #[serde(default)]
    pub nested: Option<bool>,
    /// How many levels of nesting are followed (1 = direct groups only).
    #[serde(default)]
    pub max_depth: Option<u32>,
    /// Active Directory: resolve nesting in one search with LDAP_MATCHING_RULE_IN_CHAIN.
    #[serde(default)]
    pub in_chain: Option<bool>,
    /// Entries per page of a group search (simple paged results control, RFC 2696).
    #[serde(default)]
    pub page_size: Option<u32>,
}

/// `[directory.cache]`, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// How long a user's DN, attributes and groups are remembered; 0 turns the cache off.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// At most this many users are remembered.
    pub max_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl: Duration::ZERO,
            max_entries: 10_000,
        }
    }
}

/// How membership is found, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// No groups.
    None,
    /// Search group entries whose member attributes hold the user's DN.
    Member { attributes: Vec<String> },
    /// Search `posixGroup` entries by `memberUid` (the username) and `gidNumber` (the user's).
    Posix,
    /// Read the group DNs from this attribute of the user entry.
    MemberOf { attribute: String },
}

/// How nested groups are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nesting {
    /// Direct groups only.
    Off,
    /// Level by level, at most this many levels, each group once.
    Recursive { max_depth: u32 },
    /// One search with the in-chain matching rule (Active Directory).
    InChain,
}

/// One base DN of group searches, as written and parsed.
#[derive(Debug, Clone)]
pub struct GroupBase {
    pub dn: String,
    pub parsed: dn::Dn,
}

/// Validated `[directory.groups]`.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub strategy: Strategy,
    pub bases: Vec<GroupBase>,
    pub scope: SearchScope,
    pub filter: String,
    pub name_attribute: String,
    pub nesting: Nesting,
    pub page_size: u32,
}

impl GroupConfig {
    /// Group lookup turned off.
    pub fn none() -> GroupConfig {
        GroupConfig {
            strategy: Strategy::None,
            bases: Vec::new(),
            scope: SearchScope::Sub,
            filter: "(objectClass=groupOfNames)".into(),
            name_attribute: "cn".into(),
            nesting: Nesting::Off,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

const DEFAULT_MAX_DEPTH: u32 = 8;
const MAX_MAX_DEPTH: u32 = 64;
const DEFAULT_PAGE_SIZE: u32 = 500;
const MAX_PAGE_SIZE: u32 = 10_000;

/// Validate `[directory.groups]` with the preset's defaults.
pub fn validate_groups(
    g: GroupSettings,
    defaults: &Defaults,
    problems: &mut Vec<String>,
) -> Option<GroupConfig> {
    let before = problems.len();
    let explicit = match g.strategy.as_deref() {
        None => None,
        Some(text) => match choose("directory.groups.strategy", text, STRATEGIES) {
            Ok(kind) => Some(kind),
            Err(e) => {
                problems.push(e);
                return None;
            }
        },
    };
    let kind = explicit.unwrap_or(defaults.group_strategy);
    let mut bases = Vec::new();
    for text in &g.base_dns {
        match dn::parse(text) {
            Ok(parsed) => bases.push(GroupBase {
                dn: text.clone(),
                parsed,
            }),
            Err(e) => problems.push(format!(
                "directory.groups.base_dns: {text:?} is not a valid DN: {e}"
            )),
        }
    }
    if g.base_dns.is_empty() && matches!(kind, StrategyKind::Member | StrategyKind::Posix) {
        problems.push(format!(
            "directory.groups.base_dns is empty; strategy = \"{}\" searches for groups there, e.g. [\"ou=groups,dc=example,dc=org\"]",
            strategy_name(kind)
        ));
    }
    let filter = g.filter.unwrap_or_else(|| defaults.group_filter.to_owned());
    check_filter("directory.groups.filter", &filter, problems);
    let name_attribute = g
        .name_attribute
        .unwrap_or_else(|| defaults.group_name_attribute.to_owned());
    check_attribute("directory.groups.name_attribute", &name_attribute, problems);

    let strategy = match kind {
        StrategyKind::None => Strategy::None,
        StrategyKind::Posix => Strategy::Posix,
        StrategyKind::Member => {
            let attributes = g.member_attributes.clone().unwrap_or_else(|| {
                let d = defaults.member_attributes;
                if d.is_empty() { &["member"][..] } else { d }
                    .iter()
                    .map(|a| (*a).to_owned())
                    .collect()
            });
            if attributes.is_empty() {
                problems.push("directory.groups.member_attributes is empty; name the attributes that list members, e.g. [\"member\"]".into());
            }
            for attr in &attributes {
                check_attribute("directory.groups.member_attributes", attr, problems);
            }
            Strategy::Member { attributes }
        }
        StrategyKind::MemberOf => {
            let attribute = g
                .member_of_attribute
                .clone()
                .unwrap_or_else(|| "memberOf".into());
            check_attribute("directory.groups.member_of_attribute", &attribute, problems);
            Strategy::MemberOf { attribute }
        }
    };
    if g.member_attributes.is_some() && kind != StrategyKind::Member {
        problems.push(format!(
            "directory.groups.member_attributes only applies to strategy = \"member\" (the strategy is \"{}\")",
            strategy_name(kind)
        ));
    }
    if g.member_of_attribute.is_some() && kind != StrategyKind::MemberOf {
        problems.push(format!(
            "directory.groups.member_of_attribute only applies to strategy = \"member-of\" (the strategy is \"{}\")",
            strategy_name(kind)
        ));
    }

    // An explicit `strategy` drops the preset's nesting defaults that belong to another one.
    let preset_applies = explicit.is_none() || explicit == Some(defaults.group_strategy);
    let in_chain = g.in_chain.unwrap_or(preset_applies && defaults.in_chain);
    let nested = g.nested.unwrap_or(preset_applies && defaults.nested) || in_chain;
    if g.nested == Some(false) && g.in_chain == Some(true) {
        problems.push("directory.groups.in_chain = true resolves nested groups; it cannot go with nested = false".into());
    }
    if in_chain && kind != StrategyKind::Member {
        problems.push(format!(
            "directory.groups.in_chain works with strategy = \"member\" on Active Directory only (the strategy is \"{}\")",
            strategy_name(kind)
        ));
    }
    if nested && kind == StrategyKind::Posix {
        problems.push("directory.groups.nested: posix groups list users by memberUid and cannot contain groups; use strategy = \"member\" for RFC 2307bis groups".into());
    }
    let max_depth = g.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
    if !(1..=MAX_MAX_DEPTH).contains(&max_depth) {
        problems.push(format!(
            "directory.groups.max_depth = {max_depth} must be from 1 (direct groups only) to {MAX_MAX_DEPTH}"
        ));
    }
    if g.max_depth.is_some() && (!nested || in_chain) {
        problems.push(
            "directory.groups.max_depth only applies when nested = true without in_chain".into(),
        );
    }
    let nesting = match (nested, in_chain) {
        (_, true) => Nesting::InChain,
        (true, false) => Nesting::Recursive { max_depth },
        (false, false) => Nesting::Off,
    };
    let page_size = g.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        problems.push(format!(
            "directory.groups.page_size = {page_size} must be from 1 to {MAX_PAGE_SIZE}"
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(GroupConfig {
        strategy,
        bases,
        scope: g.scope,
        filter,
        name_attribute,
        nesting,
        page_size,
    })
}

fn strategy_name(kind: StrategyKind) -> &'static str {
    match kind {
        StrategyKind::None => "none",
        StrategyKind::Member => "member",
        StrategyKind::Posix => "posix",
        StrategyKind::MemberOf => "member-of",
    }
}

/// Validate `[directory.cache]`.
pub fn validate_cache(c: &CacheSettings, problems: &mut Vec<String>) {
    if !c.ttl.is_zero() && c.max_entries == 0 {
        problems.push(
            "directory.cache.max_entries is 0 while ttl is set; give a size, or set ttl = \"0s\" to turn the cache off"
                .into(),
        );
    }
    if c.ttl > Duration::from_secs(86_400) {
        problems.push(format!(
            "directory.cache.ttl = {} is more than a day; group changes would take that long to be seen",
            humantime::format_duration(c.ttl)
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    fn group_settings_that_cannot_work_are_refused() {
        let with = |groups: &str| {
            GOOD.replace(
                "[directory.users]",
                &format!("[directory.groups]\n{groups}\n[directory.users]"),
            )
        };
        assert_eq!(
            problems(&with("strategy = \"member\"")),
            vec!["directory.groups.base_dns is empty; strategy = \"member\" searches for groups there, e.g. [\"ou=groups,dc=example,dc=org\"]"]
        );
        assert_eq!(
            problems(&with("strategy = \"posix\"\nbase_dns = [\"ou=g,dc=org\"]\nnested = true")),
            vec!["directory.groups.nested: posix groups list users by memberUid and cannot contain groups; use strategy = \"member\" for RFC 2307bis groups"]
        );
        assert_eq!(
            problems(&with("strategy = \"member-of\"\nin_chain = true")),
            vec!["directory.groups.in_chain works with strategy = \"member\" on Active Directory only (the strategy is \"member-of\")"]
        );
        assert_eq!(
            problems(&with("strategy = \"member\"\nbase_dns = [\"groups\"]\nmax_depth = 0\nnested = true\npage_size = 0\nfilter = \"objectClass=x\"")),
            vec![
                "directory.groups.base_dns: \"groups\" is not a valid DN: '=' expected after the attribute type at position 7",
                "directory.groups.filter = \"objectClass=x\" is not a valid LDAP filter (RFC 4515); it needs parentheses, e.g. \"(objectClass=inetOrgPerson)\"",
                "directory.groups.max_depth = 0 must be from 1 (direct groups only) to 64",
                "directory.groups.page_size = 0 must be from 1 to 10000",
            ]
        );
        assert_eq!(
            problems(&with(
                "strategy = \"member\"\nbase_dns = [\"ou=g,dc=org\"]\nmax_depth = 3"
            )),
            vec!["directory.groups.max_depth only applies when nested = true without in_chain"]
        );
        let nested = parse(&with(
            "strategy = \"member\"\nbase_dns = [\"ou=g,dc=org\"]\nnested = true\nmax_depth = 3",
        ))
        .unwrap();
        assert_eq!(
            nested.directory.groups.nesting,
            Nesting::Recursive { max_depth: 3 }
        );
    }

    #[test]
    fn the_cache_is_off_by_default_and_bounded() {
        let c = parse(GOOD).unwrap();
        assert!(c.directory.cache.ttl.is_zero());
        let p = problems(&GOOD.replace(
            "[directory.users]",
            "[directory.cache]\nttl = \"2d\"\nmax_entries = 0\n[directory.users]",
        ));
        assert_eq!(
            p,
            vec![
                "directory.cache.max_entries is 0 while ttl is set; give a size, or set ttl = \"0s\" to turn the cache off",
                "directory.cache.ttl = 2days is more than a day; group changes would take that long to be seen",
            ]
        );
    }
}
