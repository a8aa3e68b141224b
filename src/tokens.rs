//! Issuing tokens: an [`Identity`] and a duration in, a signed JWT out.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use latchkey_verify::{Claims, Revocations, Signer, SigningError, Verifier, MAX_TOKEN_LEN};

use crate::config::{ClaimConfig, TokenConfig};
use crate::group_expr::GroupSet;
use crate::identity::{entry_fingerprint, Identity};

/// Signs tokens with the configured signing key.
#[derive(Debug)]
pub struct TokenIssuer {
    signer: Signer,
    issuer: String,
    audience: Option<String>,
    claims: ClaimConfig,
}

/// A token and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    pub expires_at: DateTime<Utc>,
}

impl IssuedToken {
    /// `expires_at` as RFC 3339 in UTC, to the second.
    pub fn expires_at_rfc3339(&self) -> String {
        self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

/// Why no token could be made.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error("the token duration of {0} seconds is out of range")]
    Duration(u64),
    /// The signed token is longer than any verifier accepts ([`MAX_TOKEN_LEN`]): a user with
    /// many groups, or large `[claims.extra]` values. Only the configuration can fix that.
    #[error(
        "the token for {user:?} would be {size} bytes, more than the {limit} bytes verifiers \
         accept, with {groups} groups in it: let fewer groups into tokens with \
         claims.groups_allow or claims.groups_pattern (or drop large [claims.extra] attributes)"
    )]
    TooLarge {
        user: String,
        size: usize,
        limit: usize,
        groups: usize,
    },
}

impl TokenIssuer {
    pub fn new(cfg: &TokenConfig, claims: &ClaimConfig) -> Self {
        TokenIssuer {
            signer: Signer::new(&cfg.signing_key),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            claims: claims.clone(),
        }
    }

    /// The claims a token for `user` carries besides the times and its id.
    pub fn claims_for(&self, user: &Identity) -> Claims {
        let mut claims = Claims::new(self.issuer.clone(), user.username.clone(), 0, 0);
        claims.aud = self.audience.clone();
        claims.entry = Some(entry_fingerprint(&user.dn));
        claims.name = user.name.clone();
        claims.email = user.email.clone();
        claims.groups = user
            .groups
            .iter()
            .filter(|g| self.claims.groups.keeps(g))
            .cloned()
            .collect();
        for extra in &self.claims.extra {
            let values = user.attributes.get(&extra.attribute);
            let value = match (values, extra.multi) {
                (Some(v), true) => Some(serde_json::Value::from(v.clone())),
                (Some(v), false) => v
                    .first()
                    .map(|first| serde_json::Value::from(first.clone())),
                (None, _) => None,
            };
            if let Some(value) = value {
                claims.extra.insert(extra.claim.clone(), value);
            }
        }
        if !self.claims.flags.is_empty() {
            let groups = GroupSet::new(&user.groups);
            for (flag, expr) in &self.claims.flags {
                claims
                    .extra
                    .insert(flag.clone(), serde_json::Value::Bool(expr.eval(&groups)));
            }
        }
        claims
    }

    /// A token for `user`, valid for `duration` seconds from now. `auth_time` is when the
    /// user's password was checked: None for now (a login), the old token's for a refresh.
    pub fn issue(
        &self,
        user: &Identity,
        duration: u64,
        auth_time: Option<i64>,
    ) -> Result<IssuedToken, TokenError> {
        let now = Utc::now();
        let iat = now.timestamp();
        let exp = i64::try_from(duration)
            .ok()
            .and_then(|l| iat.checked_add(l))
            .ok_or(TokenError::Duration(duration))?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or(TokenError::Duration(duration))?;
        let claims = Claims {
            iat,
            nbf: iat,
            exp,
            jti: new_token_id(),
            auth_time: Some(auth_time.unwrap_or(iat)),
            ..self.claims_for(user)
        };
        let token = self.signer.sign(&claims)?;
        // A token no verifier would accept is refused here, where the cause can be named.
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge {
                user: claims.sub,
                size: token.len(),
                limit: MAX_TOKEN_LEN,
                groups: claims.groups.len(),
            });
        }
        Ok(IssuedToken {
            token,
            expires_in: duration,
            expires_at,
        })
    }
}

/// 128 random bits as 32 lowercase hex digits, from the thread's generator (ChaCha, seeded and
/// reseeded from the operating system): a token id needs to be unique and unguessable, not a
/// system call per token.
fn new_token_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A verifier that accepts exactly what this configuration issues, tolerating `leeway`
/// seconds of clock skew, and refusing what `revocations` holds revoked.
pub fn verifier(
    cfg: &TokenConfig,
    leeway: u64,
    revocations: Option<Arc<dyn Revocations>>,
) -> Verifier {
    let mut builder = Verifier::builder()
        .keys(&cfg.keys)
        .leeway(leeway)
        .issuer(cfg.issuer.clone());
    if let Some(revocations) = revocations {
        builder = builder.revocations(revocations);
    }
    if let Some(aud) = &cfg.audience {
        builder = builder.audience(aud.clone());
    }
    builder.build()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use latchkey_verify::{Algorithm, Secret, SigningKey};

    fn cfg(audience: Option<&str>) -> TokenConfig {
        let key =
            SigningKey::hmac("k1", Algorithm::HS384, Secret::new(vec![9; 32]).unwrap()).unwrap();
        TokenConfig {
            issuer: "https://auth.example.org".into(),
            audience: audience.map(str::to_owned),
            algorithm: Algorithm::HS384,
            default_duration: 3600,
            max_duration: 86400,
            max_session: 7 * 86400,
            keys: vec![key.verifying_key()],
            signing_key: key,
        }
    }

    fn alice() -> Identity {
        Identity {
            dn: "uid=alice,ou=people,dc=example,dc=org".into(),
            username: "alice".into(),
            name: Some("Alice Liddell".into()),
            email: None,
            groups: vec!["Admins".into(), "app-wiki".into(), "staff".into()],
            attributes: [
                ("ou".to_owned(), vec!["R&D".to_owned(), "Ops".to_owned()]),
                (
                    "telephoneNumber".to_owned(),
                    vec!["+49 1".to_owned(), "+49 2".to_owned()],
                ),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn claim_config(toml: &str) -> ClaimConfig {
        let settings: crate::config::ClaimSettings = toml_settings(toml);
        let mut problems = Vec::new();
        let c = crate::config::validate_claims(settings, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        c.unwrap()
    }

    fn toml_settings<T: serde::de::DeserializeOwned>(toml: &str) -> T {
        ::config::Config::builder()
            .add_source(::config::File::from_str(toml, ::config::FileFormat::Toml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn groups_extra_claims_and_flags_come_from_the_configuration() {
        let issuer = TokenIssuer::new(
            &cfg(None),
            &claim_config(
                r#"
                groups_allow = ["admins"]
                groups_pattern = "^app-"
                [extra]
                department = "ou"
                phones = { attribute = "telephoneNumber", multi = true }
                missing = "roomNumber"
                [flags]
                admin = "admins | ops"
                contractor = "contractors"
                "#,
            ),
        );
        let c = issuer.claims_for(&alice());
        assert_eq!(c.groups, vec!["Admins", "app-wiki"]);
        assert_eq!(
            serde_json::to_value(&c.extra).unwrap(),
            serde_json::json!({
                "admin": true,
                "contractor": false,
                "department": "R&D",
                "phones": ["+49 1", "+49 2"],
            })
        );
    }

    #[test]
    fn without_claim_settings_every_group_goes_in() {
        let c = TokenIssuer::new(&cfg(None), &ClaimConfig::default()).claims_for(&alice());
        assert_eq!(c.groups, vec!["Admins", "app-wiki", "staff"]);
        assert!(c.extra.is_empty());
    }

    #[test]
    fn an_issued_token_carries_the_claims_and_verifies() {
        let cfg = cfg(Some("wiki"));
        let issued = TokenIssuer::new(&cfg, &ClaimConfig::default())
            .issue(&alice(), 600, None)
            .unwrap();
        let claims = verifier(&cfg, 5, None).verify(&issued.token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.iss, "https://auth.example.org");
        assert_eq!(claims.aud.as_deref(), Some("wiki"));
        assert_eq!(claims.name.as_deref(), Some("Alice Liddell"));
        assert_eq!(claims.email, None);
        assert_eq!(claims.exp - claims.iat, 600);
        assert_eq!(claims.nbf, claims.iat);
        assert_eq!(claims.auth_time, Some(claims.iat));
        assert_eq!(
            claims.entry.as_deref(),
            Some(entry_fingerprint("UID=alice,ou=people,dc=example,dc=org").as_str())
        );
        assert_eq!(claims.entry.as_ref().unwrap().len(), 32);
        assert_ne!(
            entry_fingerprint("uid=alice,ou=people,dc=example,dc=org"),
            entry_fingerprint("uid=alice,ou=staff,dc=example,dc=org")
        );
        assert_eq!(claims.exp, issued.expires_at.timestamp());
        assert_eq!(claims.jti.len(), 32);
        assert!(claims.jti.bytes().all(|b| b.is_ascii_hexdigit()));
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, jsonwebtoken::Algorithm::HS384);
        assert_eq!(header.kid.as_deref(), Some("k1"));
    }

    #[test]
    fn a_refreshed_token_keeps_the_auth_time_it_is_given() {
        let cfg = cfg(None);
        let issued = TokenIssuer::new(&cfg, &ClaimConfig::default())
            .issue(&alice(), 60, Some(1_700_000_000))
            .unwrap();
        let claims = verifier(&cfg, 5, None).verify(&issued.token).unwrap();
        assert_eq!(claims.auth_time, Some(1_700_000_000));
    }

    #[test]
    fn each_token_has_its_own_id() {
        let issuer = TokenIssuer::new(&cfg(None), &ClaimConfig::default());
        let a = verifier(&cfg(None), 5, None)
            .verify(&issuer.issue(&alice(), 60, None).unwrap().token)
            .unwrap();
        let b = verifier(&cfg(None), 5, None)
            .verify(&issuer.issue(&alice(), 60, None).unwrap().token)
            .unwrap();
        assert_ne!(a.jti, b.jti);
    }

    #[test]
    fn a_token_longer_than_verifiers_accept_is_refused_naming_the_cause() {
        let cfg = cfg(None);
        let issuer = TokenIssuer::new(&cfg, &ClaimConfig::default());
        let mut user = alice();
        user.groups = (0..400).map(|i| format!("group-{i:04}")).collect();
        // One name grows a byte at a time: the last token issued is within the limit and
        // verifies, the first one past it is refused.
        let mut largest = None;
        let refused = (0..2000).find_map(|grow| {
            user.groups[0] = format!("group-{}", "x".repeat(grow));
            match issuer.issue(&user, 60, None) {
                Ok(issued) => {
                    largest = Some(issued.token);
                    None
                }
                Err(e) => Some(e),
            }
        });
        let largest = largest.unwrap();
        assert!(largest.len() <= MAX_TOKEN_LEN, "{}", largest.len());
        assert!(largest.len() > MAX_TOKEN_LEN - 4, "{}", largest.len());
        assert_eq!(
            verifier(&cfg, 5, None)
                .verify(&largest)
                .unwrap()
                .groups
                .len(),
            400
        );
        let refused = refused.unwrap();
        let TokenError::TooLarge { size, .. } = refused else {
            panic!("{refused:?}")
        };
        assert!(size > MAX_TOKEN_LEN && size <= MAX_TOKEN_LEN + 4, "{size}");
        assert_eq!(
            refused.to_string(),
            format!(
                "the token for \"alice\" would be {size} bytes, more than the 8192 bytes \
                 verifiers accept, with 400 groups in it: let fewer groups into tokens with \
                 claims.groups_allow or claims.groups_pattern (or drop large [claims.extra] \
                 attributes)"
            )
        );
    }

    #[test]
    fn expires_at_is_rfc3339_utc() {
        let issued = TokenIssuer::new(&cfg(None), &ClaimConfig::default())
            .issue(&alice(), 60, None)
            .unwrap();
        let text = issued.expires_at_rfc3339();
        assert!(text.ends_with('Z') && text.len() == 20, "{text}");
    }
}
