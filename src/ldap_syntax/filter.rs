//! Search filters built from a configured base filter and values that may come from a client.
//!
//! Every value put into a filter here is escaped per RFC 4515 (`*`, `(`, `)`, `\` and NUL as
//! `\hh`), so a login such as `*)(uid=*` matches only an entry whose attribute holds exactly
//! that text. Attribute names and base filters come from the validated configuration and are
//! used as written.

/// The in-chain matching rule of Active Directory (LDAP_MATCHING_RULE_IN_CHAIN).
pub const IN_CHAIN_RULE: &str = "1.2.840.113556.1.4.1941";

/// `(&<base filter>(<attribute>=<login>))`, or with several attributes
/// `(&<base filter>(|(<a1>=<login>)(<a2>=<login>)))`; the login escaped per RFC 4515.
pub fn login_filter(base_filter: &str, attributes: &[&str], login: &str) -> String {
    let value = ldap3::ldap_escape(login);
    match attributes {
        [one] => format!("(&{base_filter}({one}={value}))"),
        many => {
            let any: String = many.iter().map(|a| format!("({a}={value})")).collect();
            format!("(&{base_filter}(|{any}))")
        }
    }
}

/// `(&<filter>(|(a1=dn1)(a2=dn1)(a1=dn2)...))`, every DN escaped per RFC 4515.
pub fn member_filter(filter: &str, attributes: &[String], dns: &[&str]) -> String {
    let mut any = String::new();
    for dn in dns {
        let value = ldap3::ldap_escape(*dn);
        for attr in attributes {
            any.push_str(&format!("({attr}={value})"));
        }
    }
    format!("(&{filter}(|{any}))")
}

/// `(&<filter>(|(member:1.2.840.113556.1.4.1941:=<dn>)...))`.
pub fn in_chain_filter(filter: &str, attributes: &[String], dn: &str) -> String {
    let value = ldap3::ldap_escape(dn);
    let any: String = attributes
        .iter()
        .map(|a| format!("({a}:{IN_CHAIN_RULE}:={value})"))
        .collect();
    format!("(&{filter}(|{any}))")
}

/// `(&<filter>(|(memberUid=<username>)(gidNumber=<gid>)))`.
pub fn posix_filter(filter: &str, username: &str, gid: Option<&str>) -> String {
    let mut any = format!("(memberUid={})", ldap3::ldap_escape(username));
    if let Some(gid) = gid {
        any.push_str(&format!("(gidNumber={})", ldap3::ldap_escape(gid)));
    }
    format!("(&{filter}(|{any}))")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_is_escaped_inside_the_user_filter() {
        let cases = [
            ("alice", "(&(objectClass=person)(uid=alice))"),
            ("*", "(&(objectClass=person)(uid=\\2a))"),
            (
                "user1)(uid=*",
                "(&(objectClass=person)(uid=user1\\29\\28uid=\\2a))",
            ),
            ("\\2a", "(&(objectClass=person)(uid=\\5c2a))"),
            ("a\0b", "(&(objectClass=person)(uid=a\\00b))"),
            ("dreßler", "(&(objectClass=person)(uid=dreßler))"),
        ];
        for (login, want) in cases {
            let got = login_filter("(objectClass=person)", &["uid"], login);
            assert_eq!(got, want, "{login:?}");
            assert!(ldap3::parse_filter(&got).is_ok(), "{got}");
        }
    }

    #[test]
    fn several_login_attributes_are_or_ed() {
        let got = login_filter("(objectClass=person)", &["uid", "mail"], "a*)(uid=b");
        assert_eq!(
            got,
            "(&(objectClass=person)(|(uid=a\\2a\\29\\28uid=b)(mail=a\\2a\\29\\28uid=b)))"
        );
        assert!(ldap3::parse_filter(&got).is_ok(), "{got}");
    }

    #[test]
    fn member_filters_escape_every_dn() {
        let attrs = vec!["member".to_owned(), "uniqueMember".to_owned()];
        let got = member_filter(
            "(objectClass=groupOfNames)",
            &attrs,
            &[
                "uid=smith\\, john (*),ou=people,dc=example,dc=org",
                "cn=a,dc=org",
            ],
        );
        assert_eq!(
            got,
            "(&(objectClass=groupOfNames)(|(member=uid=smith\\5c, john \\28\\2a\\29,ou=people,dc=example,dc=org)(uniqueMember=uid=smith\\5c, john \\28\\2a\\29,ou=people,dc=example,dc=org)(member=cn=a,dc=org)(uniqueMember=cn=a,dc=org)))"
        );
        assert!(ldap3::parse_filter(&got).is_ok());
    }

    #[test]
    fn in_chain_and_posix_filters() {
        let got = in_chain_filter(
            "(objectClass=group)",
            &["member".to_owned()],
            "CN=Bob (ext),OU=Users,DC=corp,DC=example",
        );
        assert_eq!(
            got,
            "(&(objectClass=group)(|(member:1.2.840.113556.1.4.1941:=CN=Bob \\28ext\\29,OU=Users,DC=corp,DC=example)))"
        );
        assert!(ldap3::parse_filter(&got).is_ok());
        assert_eq!(
            posix_filter("(objectClass=posixGroup)", "dreßler*", Some("5000")),
            "(&(objectClass=posixGroup)(|(memberUid=dreßler\\2a)(gidNumber=5000)))"
        );
        assert_eq!(
            posix_filter("(objectClass=posixGroup)", "bob", None),
            "(&(objectClass=posixGroup)(|(memberUid=bob)))"
        );
    }
}
