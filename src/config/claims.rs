//! `[claims]` and `[access]`: what goes into a token beyond the subject, and who may have one.

use std::collections::BTreeMap;

use latchkey_verify::RESERVED_CLAIMS;
use serde::Deserialize;

use super::check_attribute;
use crate::group_expr::{Expr, GroupSet};

/// `[claims]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimSettings {
    /// Only these groups go into the `groups` claim (compared without regard to case).
    #[serde(default)]
    pub groups_allow: Vec<String>,
    /// Only groups whose name matches this regular expression go into the `groups` claim.
    #[serde(default)]
    pub groups_pattern: Option<String>,
    /// Claim name → user attribute, or `{ attribute = "...", multi = true }` for an array.
    #[serde(default)]
    pub extra: BTreeMap<String, ExtraClaimSettings>,
    /// Claim name → group expression; the claim is `true` when the user's groups satisfy it.
    #[serde(default)]
    pub flags: BTreeMap<String, String>,
}

/// One `[claims.extra]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExtraClaimSettings {
    /// `department = "ou"`: the attribute's first value, as a string.
    Attribute(String),
    /// `phones = { attribute = "telephoneNumber", multi = true }`.
    Detailed {
        attribute: String,
        #[serde(default)]
        multi: bool,
    },
}

/// `[access]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessSettings {
    /// A user must satisfy this group expression to get a token.
    #[serde(default)]
    pub require: Option<String>,
    /// A user who satisfies this group expression gets no token.
    #[serde(default)]
    pub deny: Option<String>,
}

/// Which groups go into the `groups` claim.
#[derive(Debug, Clone, Default)]
pub struct GroupClaimFilter {
    allow: Option<GroupSet>,
    pattern: Option<regex::Regex>,
}

impl GroupClaimFilter {
    /// Whether `name` goes into the token. With both an allow-list and a pattern, a group
    /// listed in either goes in.
    pub fn keeps(&self, name: &str) -> bool {
        match (&self.allow, &self.pattern) {
            (None, None) => true,
            (allow, pattern) => {
                allow.as_ref().is_some_and(|a| a.contains(name))
                    || pattern.as_ref().is_some_and(|p| p.is_match(name))
            }
        }
    }
}

/// One attribute mapped to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraClaim {
    pub claim: String,
    pub attribute: String,
    pub multi: bool,
}

/// Validated `[claims]`.
#[derive(Debug, Clone, Default)]
pub struct ClaimConfig {
    pub groups: GroupClaimFilter,
    pub extra: Vec<ExtraClaim>,
    pub flags: Vec<(String, Expr)>,
}

/// Validated `[access]`.
#[derive(Debug, Clone, Default)]
pub struct AccessConfig {
    pub require: Option<Expr>,
    pub deny: Option<Expr>,
}

/// Why a user may not have a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `access.require` does not hold for the user's groups.
    NotRequired,
    /// `access.deny` holds for the user's groups.
    Denied,
}

impl AccessConfig {
    /// Whether a user in `groups` may have a token. Without rules, nothing is computed.
    pub fn decide<S: AsRef<str>>(&self, groups: &[S]) -> Result<(), Refusal> {
        if self.is_empty() {
            return Ok(());
        }
        let groups = GroupSet::new(groups);
        if self.require.as_ref().is_some_and(|e| !e.eval(&groups)) {
            return Err(Refusal::NotRequired);
        }
        if self.deny.as_ref().is_some_and(|e| e.eval(&groups)) {
            return Err(Refusal::Denied);
        }
        Ok(())
    }

    /// Whether any rule is configured.
    pub fn is_empty(&self) -> bool {
        self.require.is_none() && self.deny.is_none()
    }
}

/// Attributes holding binary data or secrets (password hashes and histories, Kerberos keys,
/// LAPS and managed service account passwords, BitLocker and TPM recovery data, trust and LSA
/// secrets, OTP seeds): never turned into claims. An attribute given by its numeric OID is
/// refused as well (see [`validate_claims`]), since this list names attributes by name.
const UNFIT_ATTRIBUTES: &[&str] = &[
    "audio",
    "authorityRevocationList",
    "authPassword",
    "cACertificate",
    "certificateRevocationList",
    "crossCertificatePair",
    "currentValue",
    "dBCSPwd",
    "deltaRevocationList",
    "initialAuthIncoming",
    "initialAuthOutgoing",
    "ipaNTHash",
    "ipatokenOTPkey",
    "jpegPhoto",
    "krbMKey",
    "krbPrincipalKey",
    "krbPwdHistory",
    "lmPwdHistory",
    "mS-DS-ConsistencyGuid",
    "ms-Mcs-AdmPwd",
    "msDS-ExecuteScriptPassword",
    "msDS-KeyCredentialLink",
    "msDS-ManagedPassword",
    "msExchMailboxGuid",
    "msFVE-KeyPackage",
    "msFVE-RecoveryPassword",
    "msLAPS-EncryptedDSRMPassword",
    "msLAPS-EncryptedDSRMPasswordHistory",
    "msLAPS-EncryptedPassword",
    "msLAPS-EncryptedPasswordHistory",
    "msLAPS-Password",
    "msPKIAccountCredentials",
    "msPKIDPAPIMasterKeys",
    "msTPM-OwnerInformation",
    "ntPwdHistory",
    "objectGUID",
    "objectSid",
    "photo",
    "priorValue",
    "pwdHistory",
    "sambaLMPassword",
    "sambaNTPassword",
    "sambaPasswordHistory",
    "sIDHistory",
    "supplementalCredentials",
    "supportedAlgorithms",
    "thumbnailLogo",
    "thumbnailPhoto",
    "tokenGroups",
    "trustAuthIncoming",
    "trustAuthOutgoing",
    "unicodePwd",
    "userCertificate",
    "userPassword",
    "userPKCS12",
    "userSMIMECertificate",
    "x500UniqueIdentifier",
];

/// A claim name: letters, digits, `_`, `-`, `.`, `:`; at most 64 bytes.
fn valid_claim_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn check_claim_name(key: &str, name: &str, problems: &mut Vec<String>) -> bool {
    if !valid_claim_name(name) {
        problems.push(format!(
            "{key}: {name:?} is not a claim name (letters, digits, '_', '-', '.', ':'; at most 64)"
        ));
        false
    } else if RESERVED_CLAIMS.contains(&name) {
        problems.push(format!(
            "{key}: {name:?} is a claim Latchkey sets itself; choose another name"
        ));
        false
    } else {
        true
    }
}

/// A group expression, or a problem with the column and a pointer at it.
pub fn parse_expression(key: &str, text: &str, problems: &mut Vec<String>) -> Option<Expr> {
    match Expr::parse(text) {
        Ok(expr) => Some(expr),
        Err(e) => {
            let pointer = e.pointer(text).replace('\n', "\n      ");
            problems.push(format!("{key}: {e}\n      {pointer}"));
            None
        }
    }
}

/// Validate `[claims]`.
pub fn validate_claims(c: ClaimSettings, problems: &mut Vec<String>) -> Option<ClaimConfig> {
    let before = problems.len();
    let allow = if c.groups_allow.is_empty() {
        None
    } else {
        if c.groups_allow.iter().any(|g| g.trim().is_empty()) {
            problems.push("claims.groups_allow holds an empty group name".into());
        }
        Some(GroupSet::new(&c.groups_allow))
    };
    let pattern = match c.groups_pattern.as_deref() {
        None => None,
        // Group names are compared without regard to case everywhere else (allow-lists, access
        // rules, flags), as the directory compares them: the pattern too.
        Some(text) => match regex::RegexBuilder::new(text)
            .case_insensitive(true)
            .build()
        {
            Ok(re) => Some(re),
            Err(e) => {
                problems.push(format!(
                    "claims.groups_pattern = {text:?} is not a regular expression: {}",
                    e.to_string().replace('\n', " ")
                ));
                None
            }
        },
    };
    let mut extra = Vec::new();
    for (claim, settings) in c.extra {
        let key = format!("claims.extra.{claim}");
        check_claim_name("claims.extra", &claim, problems);
        let (attribute, multi) = match settings {
            ExtraClaimSettings::Attribute(a) => (a, false),
            ExtraClaimSettings::Detailed { attribute, multi } => (attribute, multi),
        };
        check_attribute(&key, &attribute, problems);
        // A numeric OID names any attribute, userPassword (2.5.4.35) as well as one this list
        // does not know by number: only names are accepted, and checked against the list.
        if attribute.starts_with(|c: char| c.is_ascii_digit()) {
            problems.push(format!(
                "{key}: {attribute:?} is a numeric OID; give the attribute's name (OIDs are refused, as secret attributes such as userPassword, 2.5.4.35, could hide behind one)"
            ));
        }
        if let Some(unfit) = UNFIT_ATTRIBUTES
            .iter()
            .find(|u| u.eq_ignore_ascii_case(&attribute))
        {
            problems.push(format!(
                "{key}: {unfit} holds binary data or a secret and cannot become a claim"
            ));
        }
        extra.push(ExtraClaim {
            claim,
            attribute,
            multi,
        });
    }
    let mut flags = Vec::new();
    for (claim, text) in c.flags {
        let key = format!("claims.flags.{claim}");
        check_claim_name("claims.flags", &claim, problems);
        if extra.iter().any(|e| e.claim == claim) {
            problems.push(format!(
                "{key}: {claim:?} is also in [claims.extra]; a claim has one source"
            ));
        }
        if let Some(expr) = parse_expression(&key, &text, problems) {
            flags.push((claim, expr));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(ClaimConfig {
        groups: GroupClaimFilter { allow, pattern },
        extra,
        flags,
    })
}

/// Validate `[access]`.
pub fn validate_access(a: AccessSettings, problems: &mut Vec<String>) -> AccessConfig {
    let mut parse =
        |key: &str, text: Option<String>| text.and_then(|t| parse_expression(key, &t, problems));
    AccessConfig {
        require: parse("access.require", a.require),
        deny: parse("access.deny", a.deny),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    #[allow(clippy::unwrap_used)]
    fn the_group_pattern_ignores_case_like_every_group_comparison() {
        let config = parse(&format!(
            "{GOOD}\n[claims]\ngroups_pattern = \"^app-\"\ngroups_allow = [\"Staff\"]"
        ))
        .unwrap();
        let keeps = |name: &str| config.claims.groups.keeps(name);
        assert!(keeps("app-wiki"));
        assert!(keeps("APP-Wiki"));
        assert!(keeps("staff"));
        assert!(!keeps("myapp-wiki"));
        assert!(!keeps("admins"));
    }

    #[test]
    fn claims_refuse_binary_attributes_reserved_names_and_bad_expressions() {
        let with = |sections: &str| format!("{GOOD}\n{sections}");
        let p = problems(&with(
            "[claims.extra]\nphoto = \"jpegPhoto\"\nsub = \"uid\"\n\"bad name\" = \"cn\"\nok = { attribute = \"ou\", multi = true }\n[claims.flags]\nadmin = \"admins | (ops\"\nok = \"x\"",
        ));
        assert_eq!(
            p,
            vec![
                "claims.extra: \"bad name\" is not a claim name (letters, digits, '_', '-', '.', ':'; at most 64)",
                "claims.extra.photo: jpegPhoto holds binary data or a secret and cannot become a claim",
                "claims.extra: \"sub\" is a claim Latchkey sets itself; choose another name",
                "claims.flags.admin: column 14: ')' expected at end of expression to close the '(' at column 10\n      admins | (ops\n                   ^",
                "claims.flags.ok: \"ok\" is also in [claims.extra]; a claim has one source",
            ]
        );
        let p = problems(&with("[claims]\ngroups_pattern = \"(unclosed\""));
        assert_eq!(p.len(), 1);
        assert!(p[0].starts_with("claims.groups_pattern = \"(unclosed\" is not a regular expression: regex parse error:"), "{p:?}");
        let p = problems(&with("[access]\nrequire = \"staff &\"\ndeny = \"a b\""));
        assert_eq!(
            p,
            vec![
                "access.require: column 8: a group name, '!' or '(' expected at end of expression\n      staff &\n             ^",
                "access.deny: column 3: an operator '&' or '|' expected before \"b\"\n      a b\n        ^",
            ]
        );
        // The example in the README.
        assert_eq!(
            problems(&with("[access]\nrequire = \"staff & (admins | ops\"")),
            vec!["access.require: column 22: ')' expected at end of expression to close the '(' at column 9\n      staff & (admins | ops\n                           ^"]
        );
        let c = parse(&with("[access]\nrequire = \"staff & !contractors\"")).unwrap();
        assert_eq!(c.access.decide(&["Staff"]), Ok(()));
        assert_eq!(
            c.access.decide(&["staff", "contractors"]),
            Err(Refusal::NotRequired)
        );
        assert!(c.directory.users.extra_attributes.is_empty());
    }

    #[test]
    fn claims_refuse_secret_attributes_in_any_case_and_numeric_oids() {
        let extra =
            |attribute: &str| problems(&format!("{GOOD}\n[claims.extra]\nx = \"{attribute}\""));
        for secret in [
            "authPassword",
            "AUTHPASSWORD",
            "msDS-ManagedPassword",
            "unicodePwd",
            "ntPwdHistory",
            "lmPwdHistory",
            "supplementalCredentials",
            "sambaNTPassword",
            "sambaLMPassword",
            "krbPrincipalKey",
            "msDS-KeyCredentialLink",
            "ms-Mcs-AdmPwd",
            "msLAPS-Password",
            "msFVE-RecoveryPassword",
        ] {
            let p = extra(secret);
            assert_eq!(p.len(), 1, "{secret}: {p:?}");
            assert!(
                p[0].starts_with("claims.extra.x: ")
                    && p[0].ends_with(" holds binary data or a secret and cannot become a claim")
                    && p[0].to_lowercase().contains(&secret.to_lowercase()),
                "{secret}: {p:?}"
            );
        }
        for oid in [
            "2.5.4.35",
            "1.3.6.1.4.1.4203.1.3.4",
            "0.9.2342.19200300.100.1.3",
        ] {
            assert_eq!(
                extra(oid),
                vec![format!("claims.extra.x: {oid:?} is a numeric OID; give the attribute's name (OIDs are refused, as secret attributes such as userPassword, 2.5.4.35, could hide behind one)")],
            );
        }
        // Names are fine, including ones beginning with a secret's name.
        let c = parse(&format!(
            "{GOOD}\n[claims.extra]\nx = \"userPasswordHint\"\ny = \"mail\""
        ))
        .unwrap();
        assert_eq!(c.claims.extra.len(), 2);
    }
}
