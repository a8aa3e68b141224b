//! `POST /auth/request-token` (GET too): Basic credentials in, a signed token out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use super::basic;
use super::error::ApiError;
use super::gate::paths;
use super::AppState;
use crate::config::{Refusal, SearchMode};
use crate::directory::{DirectoryError, SearchAs};
use crate::metrics::FailureReason;
use crate::throttle::{BanKind, Refused, Throttle};
use crate::tokens::TokenError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(paths::REQUEST_TOKEN)
            .route(web::post().to(request_token))
            .route(web::get().to(request_token))
            .default_service(web::to(|| async {
                ApiError::MethodNotAllowed {
                    allow: "GET, POST",
                    message: "Use POST (or GET) to request a token.".into(),
                }
                .error_response()
            })),
    );
}

/// What the server allows a token request to ask for.
#[derive(Debug, Clone)]
pub struct RequestPolicy {
    pub default_duration: u64,
    pub max_duration: u64,
    pub search_attributes: Vec<String>,
    pub search_mode: SearchMode,
}

impl RequestPolicy {
    /// What `config` allows.
    pub fn new(config: &crate::config::Config) -> RequestPolicy {
        RequestPolicy {
            default_duration: config.tokens.default_duration,
            max_duration: config.tokens.max_duration,
            search_attributes: config.directory.users.search_attributes.clone(),
            search_mode: config.directory.search_mode,
        }
    }
}

/// A token request's options, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOptions {
    pub duration: u64,
    /// The one attribute the client chose; None: the configured login attributes.
    pub attribute: Option<String>,
    pub search_as: SearchAs,
}

/// Parse the query string. Unknown parameters are ignored; a known one given twice is refused.
pub fn parse_options(query: &str, policy: &RequestPolicy) -> Result<TokenOptions, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
        ApiError::InvalidParameter("The query string is not valid URL encoding.".into())
    })?;
    let single = |name: &str| -> Result<Option<&str>, ApiError> {
        let mut values = pairs
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str());
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::InvalidParameter(format!(
                "{name} is given more than once."
            )));
        }
        Ok(first)
    };

    let duration = match single("token_duration")? {
        None => policy.default_duration,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|d| {
                (1..=policy.max_duration).contains(d) && text.bytes().all(|b| b.is_ascii_digit())
            })
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "token_duration must be a whole number of seconds from 1 to {}.",
                    policy.max_duration
                ))
            })?,
    };

    let attribute = match single("search_criteria")? {
        None => None,
        Some(asked) => policy
            .search_attributes
            .iter()
            .find(|a| a.eq_ignore_ascii_case(asked))
            .cloned()
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "search_criteria must be one of: {}.",
                    policy.search_attributes.join(", ")
                ))
            })
            .map(Some)?,
    };

    let asked = match single("authenticated_search")? {
        None => None,
        Some(text) => Some(parse_bool(text).ok_or_else(|| {
            ApiError::InvalidParameter(
                "authenticated_search must be true or false (or 1/0, yes/no).".into(),
            )
        })?),
    };
    let search_as = match (policy.search_mode, asked) {
        (SearchMode::OnRequest, None | Some(true)) | (SearchMode::Always, None | Some(true)) => {
            SearchAs::Service
        }
        (SearchMode::OnRequest, Some(false)) | (SearchMode::Never, None | Some(false)) => {
            SearchAs::Anonymous
        }
        (SearchMode::Always, Some(false)) => {
            return Err(ApiError::InvalidParameter(
                "This server always searches with its service account; authenticated_search=false is not allowed.".into(),
            ))
        }
        (SearchMode::Never, Some(true)) => {
            return Err(ApiError::InvalidParameter(
                "This server only searches anonymously; authenticated_search=true is not allowed.".into(),
            ))
        }
    };
    Ok(TokenOptions {
        duration,
        attribute,
        search_as,
    })
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    token_type: &'static str,
    expires_in: u64,
    expires_at: String,
}

/// The handler: every outcome, error or not, is rendered here, so refusals (which are the
/// service doing its job) are not logged as request errors by the tracing middleware.
#[tracing::instrument(name = "request_token", skip_all)]
async fn request_token(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    // Boxed, so that the future actix-web moves around (several times per request) is a
    // pointer rather than the whole login's state machine.
    match Box::pin(issue_token(&req, &state)).await {
        Ok(response) => response,
        Err(e) => e.error_response(),
    }
}

async fn issue_token(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let shared = &state.shared;
    let throttle = &shared.throttle;
    let client = client_address(req, state);
    let (login, password) = basic::credentials(req)?;
    let options = parse_options(req.query_string(), &state.policy)?;
    // The fields are only evaluated when the audit target is on.
    let audit = |outcome: &str, reason: &str, sub: Option<&str>| {
        tracing::info!(
            target: "latchkey::audit",
            login = %login,
            client = %client,
            sub,
            outcome,
            reason = (!reason.is_empty()).then_some(reason),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "login"
        );
    };
    let refuse = |refused: Refused| {
        shared.metrics.login_failed(FailureReason::banned);
        let (reason, retry_after) = match refused {
            Refused::Banned { retry_after, by } => (
                match by {
                    BanKind::Login => "banned_login",
                    BanKind::Account => "banned_account",
                    BanKind::Address => "banned_address",
                },
                retry_after.as_secs().max(1),
            ),
            // The attempts in flight did not settle in time; they may end in a ban.
            Refused::Busy => ("attempts_in_flight", 1),
        };
        audit("refused", reason, None);
        ApiError::TooManyAttempts { retry_after }
    };

    // Brute-force protection comes before any directory traffic: the attempt holds a place
    // in the login's and the address's counts until it settles.
    let mut attempt = admitted(throttle, shared.busy_patience, || {
        throttle.begin(login.as_str(), client, Instant::now())
    })
    .await
    .map_err(refuse)?;

    // An empty password would be an anonymous bind on many servers: refused here, counted.
    let Some(password) = password else {
        shared.metrics.login_failed(FailureReason::bad_credentials);
        audit("refused", "empty_password", None);
        attempt.failed(Instant::now());
        slow_down(started, shared.min_failure_time).await;
        return Err(ApiError::InvalidCredentials);
    };

    let candidate = state
        .directory
        .find(&login, options.attribute.as_deref(), options.search_as)
        .await;
    let outcome = match candidate {
        Ok(candidate) => {
            // Every spelling that reaches this entry shares its count, checked before the
            // password is tried.
            let account = candidate.account_key();
            admitted(throttle, shared.busy_patience, || {
                attempt.add_account(&account, Instant::now())
            })
            .await
            .map_err(refuse)?;
            state.directory.verify(candidate, &password).await
        }
        Err(e) => Err(e),
    };
    drop(password);
    let user = match outcome {
        Ok(user) => user,
        Err(e) => {
            let (reason, metric) = match &e {
                DirectoryError::InvalidCredentials => {
                    ("invalid_credentials", FailureReason::bad_credentials)
                }
                DirectoryError::UnknownUser => ("unknown_user", FailureReason::unknown_user),
                DirectoryError::AccountDisabled(_) => {
                    ("account_disabled", FailureReason::account_disabled)
                }
                DirectoryError::Unavailable(_) => {
                    ("directory_unavailable", FailureReason::directory_down)
                }
                DirectoryError::Misconfigured(_) => {
                    ("directory_misconfigured", FailureReason::misconfigured)
                }
            };
            shared.metrics.login_failed(metric);
            audit("refused", reason, None);
            return Err(match e {
                DirectoryError::InvalidCredentials
                | DirectoryError::UnknownUser
                | DirectoryError::AccountDisabled(_) => {
                    if let DirectoryError::AccountDisabled(why) = e {
                        tracing::info!(login = %login, "the account is {why}");
                    }
                    attempt.failed(Instant::now());
                    slow_down(started, shared.min_failure_time).await;
                    ApiError::InvalidCredentials
                }
                // The attempt counts nothing: the directory, not the client, failed.
                DirectoryError::Unavailable(why) => {
                    drop(attempt);
                    tracing::warn!(error = %why, "directory unavailable");
                    ApiError::DirectoryUnavailable
                }
                DirectoryError::Misconfigured(why) => {
                    drop(attempt);
                    tracing::error!(error = %why, "directory misconfigured");
                    ApiError::Internal
                }
            });
        }
    };
    // The password is right: this login's and this account's failures are forgotten (never
    // anyone else's, never the address's).
    attempt.succeeded(Instant::now());
    // Only now, with the password proven, may an answer depend on who the user is.
    if let Err(refusal) = state.access.decide(&user.groups) {
        let reason = match refusal {
            Refusal::NotRequired => "policy_require",
            Refusal::Denied => "policy_deny",
        };
        shared.metrics.login_failed(FailureReason::policy);
        audit("refused", reason, Some(&user.username));
        return Err(ApiError::Forbidden(
            "Your groups do not allow you a token from this service.".into(),
        ));
    }
    let issued = state.issuer.issue(&user, options.duration).map_err(|e| {
        tracing::error!(error = %e, "cannot issue a token");
        let reason = match e {
            TokenError::TooLarge { .. } => "token_too_large",
            TokenError::Signing(_) | TokenError::Lifetime(_) => "token_not_signed",
        };
        audit("refused", reason, Some(&user.username));
        ApiError::from(e)
    })?;
    shared.metrics.token_issued();
    audit("issued", "", Some(&user.username));
    let expires_at = issued.expires_at_rfc3339();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(TokenResponse {
            token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            expires_at,
        }))
}

/// Ask `ask` for a place until it gives one or refuses for good: while the attempts in
/// flight hold every place ([`Refused::Busy`]), wait for one of them to settle, for at most
/// `patience` (about the longest an attempt can take).
async fn admitted<T>(
    throttle: &Throttle,
    patience: Duration,
    mut ask: impl FnMut() -> Result<T, Refused>,
) -> Result<T, Refused> {
    let deadline = Instant::now().checked_add(patience);
    loop {
        // Made before asking, so a release between the answer and the wait is not missed.
        let released = throttle.released().notified();
        match ask() {
            Err(Refused::Busy) => {}
            answer => return answer,
        }
        let left = deadline.map_or(patience, |d| d.saturating_duration_since(Instant::now()));
        if left.is_zero() || actix_web::rt::time::timeout(left, released).await.is_err() {
            return Err(Refused::Busy);
        }
    }
}

/// The client's address: the TCP peer, or what a trusted proxy says it is.
pub(crate) fn client_address(req: &HttpRequest, state: &AppState) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let forwarded = req.headers().get_all("x-forwarded-for");
    state.shared.proxies.client_ip(peer, forwarded)
}

/// Wait until `min` has passed since `started`, so a refusal takes as long whether or not the
/// login exists. The worker serves other requests meanwhile.
async fn slow_down(started: Instant, min: Duration) {
    if let Some(rest) = min.checked_sub(started.elapsed()) {
        actix_web::rt::time::sleep(rest).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(mode: SearchMode) -> RequestPolicy {
        RequestPolicy {
            default_duration: 3600,
            max_duration: 86400,
            search_attributes: vec!["uid".into(), "mail".into()],
            search_mode: mode,
        }
    }

    fn parse(query: &str) -> Result<TokenOptions, String> {
        parse_options(query, &policy(SearchMode::OnRequest)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_apply_when_nothing_is_asked() {
        assert_eq!(
            parse(""),
            Ok(TokenOptions {
                duration: 3600,
                attribute: None,
                search_as: SearchAs::Service
            })
        );
        assert_eq!(
            parse_options("", &policy(SearchMode::Never))
                .unwrap()
                .search_as,
            SearchAs::Anonymous
        );
    }

    #[test]
    fn token_duration_bounds() {
        assert_eq!(parse("token_duration=1").unwrap().duration, 1);
        assert_eq!(parse("token_duration=86400").unwrap().duration, 86400);
        for bad in [
            "0",
            "86401",
            "-1",
            "+5",
            "1.5",
            "1e3",
            "",
            "abc",
            "99999999999999999999999",
            " 60",
        ] {
            assert_eq!(
                parse(&format!("token_duration={}", urlencode(bad))),
                Err("token_duration must be a whole number of seconds from 1 to 86400.".into()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn search_criteria_must_be_allowed() {
        assert_eq!(
            parse("search_criteria=mail").unwrap().attribute.as_deref(),
            Some("mail")
        );
        assert_eq!(
            parse("search_criteria=MAIL").unwrap().attribute.as_deref(),
            Some("mail")
        );
        assert_eq!(
            parse("search_criteria=userPassword"),
            Err("search_criteria must be one of: uid, mail.".into())
        );
    }

    #[test]
    fn authenticated_search_spellings_and_modes() {
        for (text, want) in [
            ("true", SearchAs::Service),
            ("YES", SearchAs::Service),
            ("1", SearchAs::Service),
            ("False", SearchAs::Anonymous),
            ("no", SearchAs::Anonymous),
            ("0", SearchAs::Anonymous),
        ] {
            assert_eq!(
                parse(&format!("authenticated_search={text}"))
                    .unwrap()
                    .search_as,
                want,
                "{text}"
            );
        }
        assert_eq!(
            parse("authenticated_search=maybe"),
            Err("authenticated_search must be true or false (or 1/0, yes/no).".into())
        );
        let always = parse_options("authenticated_search=false", &policy(SearchMode::Always));
        assert_eq!(always.unwrap_err().to_string(), "This server always searches with its service account; authenticated_search=false is not allowed.");
        let never = parse_options("authenticated_search=true", &policy(SearchMode::Never));
        assert_eq!(
            never.unwrap_err().to_string(),
            "This server only searches anonymously; authenticated_search=true is not allowed."
        );
    }

    #[test]
    fn repeated_and_broken_parameters_are_refused() {
        assert_eq!(
            parse("token_duration=60&token_duration=70"),
            Err("token_duration is given more than once.".into())
        );
        // Stray '%' and bytes that are not UTF-8 decode leniently; the values stay refused.
        assert_eq!(
            parse("token_duration=%zz"),
            Err("token_duration must be a whole number of seconds from 1 to 86400.".into())
        );
        assert_eq!(
            parse("search_criteria=%ff"),
            Err("search_criteria must be one of: uid, mail.".into())
        );
        assert_eq!(parse("unrelated=1&_=123").unwrap().duration, 3600);
    }

    fn urlencode(s: &str) -> String {
        serde_urlencoded::to_string([("v", s)])
            .unwrap()
            .trim_start_matches("v=")
            .to_owned()
    }
}
