//! `[admin]`: who may revoke other people's tokens (`POST /auth/revoke`).

use serde::Deserialize;

use super::claims::parse_expression;
use crate::group_expr::Expr;

/// `[admin]`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// The group expression a token's `groups` claim must satisfy to revoke tokens; unset:
    /// `POST /auth/revoke` does not exist.
    #[serde(default)]
    pub require: Option<String>,
}

/// Validated `[admin]`.
#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    pub require: Option<Expr>,
}

pub(super) fn validate_admin(a: AdminSettings, problems: &mut Vec<String>) -> AdminConfig {
    AdminConfig {
        require: a
            .require
            .and_then(|text| parse_expression("admin.require", &text, problems)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use crate::config::testing::{parse, problems, GOOD};

    #[test]
    fn admin_require_is_a_group_expression_and_off_by_default() {
        assert!(parse(GOOD).unwrap().admin.require.is_none());
        let on = parse(&format!(
            "{GOOD}\n[admin]\nrequire = \"latchkey-admins | ops\""
        ))
        .unwrap();
        assert_eq!(
            on.admin.require.unwrap().to_string(),
            "latchkey-admins | ops"
        );
        let p = problems(&format!("{GOOD}\n[admin]\nrequire = \"admins &\""));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("admin.require: column 9:"), "{p:?}");
        let typo = parse(&format!("{GOOD}\n[admin]\nrequires = \"admins\"")).unwrap_err();
        assert!(typo.to_string().contains("requires"), "{typo}");
    }
}
