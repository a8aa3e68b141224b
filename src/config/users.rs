//! `[directory.users]`: where user entries are, how a login finds one, and what is read from it.

use serde::Deserialize;

use super::{check_attribute, check_filter, presets, AccountStatus};
use crate::ldap_syntax::dn;

/// `[directory.users]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// Where user entries are searched.
    pub base_dn: String,
    #[serde(default)]
    pub scope: SearchScope,
    /// Which entries are users at all.
    #[serde(default)]
    pub filter: Option<String>,
    /// Attributes a login is looked up in when the request names none; several are or-ed.
    #[serde(default)]
    pub login_attributes: Option<Vec<String>>,
    /// Attributes a client may name in `search_criteria`. Default: the login attributes.
    #[serde(default)]
    pub search_attributes: Option<Vec<String>>,
    /// Domains whose `@domain` suffix is cut off a login before the lookup.
    #[serde(default)]
    pub strip_domains: Vec<String>,
    /// Bind straight to this DN (with `{login}` DN-escaped) instead of searching.
    #[serde(default)]
    pub dn_template: Option<String>,
    /// The attribute whose stored value becomes the token's `sub`.
    #[serde(default)]
    pub username_attribute: Option<String>,
    /// Attribute for the `name` claim; empty to leave the claim out.
    #[serde(default)]
    pub name_attribute: Option<String>,
    /// Attribute for the `email` claim; empty to leave the claim out.
    #[serde(default)]
    pub email_attribute: Option<String>,
    /// How the directory marks accounts that may not log in (`none`, `ppolicy`,
    /// `active-directory`, `freeipa`).
    #[serde(default)]
    pub account_status: Option<String>,
}

/// LDAP search scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchScope {
    Base,
    One,
    #[default]
    Sub,
}

/// How a login becomes an entry.
#[derive(Debug, Clone)]
pub enum UserLocator {
    /// Search `(&<filter>(<attribute>=<login>))` under the base.
    Search,
    /// Bind to the DN made from this template (`{login}` replaced, DN-escaped).
    Template(String),
}

/// Validated `[directory.users]`.
#[derive(Debug, Clone)]
pub struct UserConfig {
    pub base_dn: String,
    pub scope: SearchScope,
    pub filter: String,
    pub login_attributes: Vec<String>,
    pub search_attributes: Vec<String>,
    /// Lowercased, without the `@`.
    pub strip_domains: Vec<String>,
    pub locator: UserLocator,
    pub username_attribute: String,
    pub name_attribute: Option<String>,
    pub email_attribute: Option<String>,
    pub account_status: AccountStatus,
    /// Further attributes to read: those of `[claims.extra]` and of the group strategy.
    pub extra_attributes: Vec<String>,
}

impl UserConfig {
    /// The attributes read from a user entry, each once.
    pub fn read_attributes(&self) -> Vec<&str> {
        let mut attrs: Vec<&str> = vec![self.username_attribute.as_str()];
        let more = self
            .name_attribute
            .iter()
            .chain(&self.email_attribute)
            .map(String::as_str)
            .chain(self.account_status.attributes().iter().copied())
            .chain(self.extra_attributes.iter().map(String::as_str));
        for attr in more {
            if !attrs.iter().any(|a| a.eq_ignore_ascii_case(attr)) {
                attrs.push(attr);
            }
        }
        attrs
    }

    /// The login as looked up: with a configured `@domain` suffix cut off.
    pub fn lookup_login<'a>(&self, login: &'a str) -> &'a str {
        if let Some((local, domain)) = login.rsplit_once('@') {
            if !local.is_empty()
                && self
                    .strip_domains
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(domain))
            {
                return local;
            }
        }
        login
    }
}

pub(super) fn validate_users(
    u: UserSettings,
    defaults: &presets::Defaults,
    problems: &mut Vec<String>,
) -> Option<UserConfig> {
    let before = problems.len();
    if let Err(e) = dn::validate(&u.base_dn) {
        problems.push(format!(
            "directory.users.base_dn = {:?} is not a valid DN: {e}",
            u.base_dn
        ));
    }
    let filter = u.filter.unwrap_or_else(|| defaults.user_filter.to_owned());
    check_filter("directory.users.filter", &filter, problems);
    let owned = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    // Without login_attributes, the first search attribute is the default (flask-ldap-auth's
    // behaviour); without either, the preset's.
    let login_attributes = match (&u.login_attributes, &u.search_attributes) {
        (Some(l), _) => l.clone(),
        (None, Some(s)) => s.iter().take(1).cloned().collect(),
        (None, None) => owned(defaults.login_attributes),
    };
    let search_attributes = u
        .search_attributes
        .clone()
        .unwrap_or_else(|| login_attributes.clone());
    // Login attributes taken from search_attributes are checked (once) as those.
    if u.login_attributes.is_some() {
        if login_attributes.is_empty() {
            problems.push("directory.users.login_attributes is empty; list the attributes a login may match, e.g. [\"uid\", \"mail\"]".into());
        }
        for attr in &login_attributes {
            check_attribute("directory.users.login_attributes", attr, problems);
        }
    }
    if u.search_attributes.is_some() || u.login_attributes.is_none() {
        if search_attributes.is_empty() {
            problems.push("directory.users.search_attributes is empty; list the attributes a login may match, e.g. [\"uid\"]".into());
        }
        for attr in &search_attributes {
            check_attribute("directory.users.search_attributes", attr, problems);
        }
    }
    let mut strip_domains = Vec::new();
    for domain in &u.strip_domains {
        let d = domain.trim_start_matches('@').to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if d.is_empty() || d.len() > 253 || !d.split('.').all(label_ok) {
            problems.push(format!(
                "directory.users.strip_domains: {domain:?} is not a domain name such as \"example.org\""
            ));
        }
        strip_domains.push(d);
    }
    let account_status = match u.account_status.as_deref() {
        None => defaults.account_status,
        Some(text) => presets::choose(
            "directory.users.account_status",
            text,
            presets::ACCOUNT_STATUSES,
        )
        .unwrap_or_else(|e| {
            problems.push(e);
            AccountStatus::None
        }),
    };
    let username_attribute = u
        .username_attribute
        .unwrap_or_else(|| defaults.username_attribute.to_owned());
    check_attribute(
        "directory.users.username_attribute",
        &username_attribute,
        problems,
    );
    let optional =
        |name: &str, value: Option<String>, default: &str, problems: &mut Vec<String>| {
            let value = value.unwrap_or_else(|| default.to_owned());
            if value.is_empty() {
                None
            } else {
                check_attribute(name, &value, problems);
                Some(value)
            }
        };
    let name_attribute = optional(
        "directory.users.name_attribute",
        u.name_attribute,
        defaults.name_attribute,
        problems,
    );
    let email_attribute = optional(
        "directory.users.email_attribute",
        u.email_attribute,
        defaults.email_attribute,
        problems,
    );
    let locator = match &u.dn_template {
        None => UserLocator::Search,
        Some(template) => {
            if template.matches("{login}").count() != 1 {
                problems.push(format!(
                    "directory.users.dn_template = {template:?} must contain {{login}} exactly once, e.g. \"uid={{login}},ou=people,dc=example,dc=org\""
                ));
            } else if let Err(e) = dn::validate(&template.replace("{login}", "x")) {
                problems.push(format!(
                    "directory.users.dn_template = {template:?} does not make a valid DN: {e}"
                ));
            }
            UserLocator::Template(template.clone())
        }
    };
    if problems.len() > before {
        return None;
    }
    Some(UserConfig {
        base_dn: u.base_dn,
        scope: u.scope,
        filter,
        login_attributes,
        search_attributes,
        strip_domains,
        locator,
        username_attribute,
        name_attribute,
        email_attribute,
        account_status,
        extra_attributes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    fn a_bad_filter_and_attribute_are_named() {
        let toml = GOOD.replace(
            "base_dn = ",
            "filter = \"objectClass=person\"\nsearch_attributes = [\"uid)(x\"]\nbase_dn = ",
        );
        let p = problems(&toml);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("is not a valid LDAP filter"));
        assert!(p[1].contains("\"uid)(x\" is not an LDAP attribute name"));
    }

    #[test]
    fn an_empty_allow_list_is_refused() {
        let p = problems(&GOOD.replace("base_dn = ", "search_attributes = []\nbase_dn = "));
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("directory.users.search_attributes is empty"));
    }

    #[test]
    fn a_dn_template_needs_exactly_one_login_placeholder() {
        let p = problems(&GOOD.replace("base_dn = ", "dn_template = \"uid=x,dc=org\"\nbase_dn = "));
        assert!(p[0].contains("must contain {login} exactly once"), "{p:?}");
        let ok = parse(&GOOD.replace(
            "base_dn = ",
            "dn_template = \"uid={login},ou=people,dc=example,dc=org\"\nbase_dn = ",
        ))
        .unwrap();
        assert!(matches!(
            ok.directory.users.locator,
            UserLocator::Template(_)
        ));
    }

    #[test]
    fn login_attributes_default_to_the_first_search_attribute() {
        let c = parse(&GOOD.replace(
            "base_dn = ",
            "search_attributes = [\"mail\", \"uid\"]\nbase_dn = ",
        ))
        .unwrap();
        assert_eq!(c.directory.users.login_attributes, vec!["mail"]);
        let c = parse(&GOOD.replace(
            "base_dn = ",
            "login_attributes = [\"uid\", \"mail\"]\nbase_dn = ",
        ))
        .unwrap();
        assert_eq!(c.directory.users.search_attributes, vec!["uid", "mail"]);
        let c = parse(&GOOD.replace(
            "base_dn = ",
            "strip_domains = [\"@Example.org\"]\nbase_dn = ",
        ))
        .unwrap();
        assert_eq!(c.directory.users.lookup_login("alice@EXAMPLE.ORG"), "alice");
        assert_eq!(
            c.directory.users.lookup_login("alice@example.com"),
            "alice@example.com"
        );
        assert_eq!(
            c.directory.users.lookup_login("@example.org"),
            "@example.org"
        );
        let p = problems(&GOOD.replace(
            "base_dn = ",
            "strip_domains = [\"exa mple\"]\nlogin_attributes = []\nbase_dn = ",
        ));
        assert_eq!(
            p,
            vec![
                "directory.users.login_attributes is empty; list the attributes a login may match, e.g. [\"uid\", \"mail\"]",
                "directory.users.strip_domains: \"exa mple\" is not a domain name such as \"example.org\"",
            ]
        );
    }
}
