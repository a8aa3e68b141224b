//! `POST /auth/request-token` (GET too): Basic credentials in, a signed token out.

use std::net::{IpAddr, Ipv4Addr};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use super::basic;
use super::error::ApiError;
use super::gate::paths;
use super::AppState;
use crate::identity::Identity;
use crate::login::{LoginAttempt, LoginOptions, LoginRules};
use crate::tokens::{IssuedToken, TokenError};

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

/// The token durations a request may ask for: `tokens.default_duration` when it does not,
/// at most `tokens.max_duration`, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    pub default: u64,
    pub max: u64,
}

impl Durations {
    /// What `config` allows.
    pub fn new(config: &crate::config::Config) -> Durations {
        Durations {
            default: config.tokens.default_duration,
            max: config.tokens.max_duration,
        }
    }
}

/// A token request's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The token's duration in seconds (`token_duration`).
    pub duration: u64,
    /// `search_criteria` and `authenticated_search`.
    pub login: LoginOptions,
}

/// The query string's pairs.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    serde_urlencoded::from_str(query).map_err(|_| {
        ApiError::InvalidParameter("The query string is not valid URL encoding.".into())
    })
}

/// The value of the parameter `name`, when given once; given twice, refused.
fn single<'a>(pairs: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, ApiError> {
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
}

/// `token_duration`, or the default.
fn duration_of(pairs: &[(String, String)], durations: Durations) -> Result<u64, ApiError> {
    match single(pairs, "token_duration")? {
        None => Ok(durations.default),
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|d| (1..=durations.max).contains(d) && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                ApiError::InvalidParameter(format!(
                    "token_duration must be a whole number of seconds from 1 to {}.",
                    durations.max
                ))
            }),
    }
}

/// The `token_duration` of a query string where it is the only parameter that counts (a
/// refresh): the same rules as a token request's. Unknown parameters are ignored.
pub fn parse_duration(query: &str, durations: Durations) -> Result<u64, ApiError> {
    duration_of(&query_pairs(query)?, durations)
}

/// Parse the query string. Unknown parameters are ignored; a known one given twice is refused.
pub fn parse_query(
    query: &str,
    durations: Durations,
    rules: &LoginRules,
) -> Result<TokenRequest, ApiError> {
    let pairs = query_pairs(query)?;
    let single = |name: &str| single(&pairs, name);
    let duration = duration_of(&pairs, durations)?;
    let search_criteria = single("search_criteria")?;
    let authenticated_search = single("authenticated_search")?
        .map(|text| {
            parse_bool(text).ok_or_else(|| {
                ApiError::InvalidParameter(
                    "authenticated_search must be true or false (or 1/0, yes/no).".into(),
                )
            })
        })
        .transpose()?;
    let login = rules
        .options(search_criteria, authenticated_search)
        .map_err(|e| ApiError::InvalidParameter(e.to_string()))?;
    Ok(TokenRequest { duration, login })
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// The body of a token answer, for a token request and a refresh alike.
#[derive(Serialize)]
pub(crate) struct TokenResponse {
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
    let client = client_address(req, state);
    let (login, password) = basic::credentials(req)?;
    let asked = parse_query(req.query_string(), state.durations, state.logins.rules())?;
    let attempt = LoginAttempt::new(&login, client);
    let identity = state
        .logins
        .log_in(&attempt, password, &asked.login)
        .await?;
    let issued = issue_for(state, &attempt, &identity, asked.duration)?;
    Ok(token_answer(issued))
}

/// The 200 answer carrying `issued`.
pub(crate) fn token_answer(issued: IssuedToken) -> HttpResponse {
    let expires_at = issued.expires_at_rfc3339();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(TokenResponse {
            token: issued.token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            expires_at,
        })
}

/// The token of a login that succeeded, valid `duration` seconds: counted in the metrics and
/// the attempt's audit line written, whether it could be made or not. The sign-in form calls it
/// too.
pub(crate) fn issue_for(
    state: &AppState,
    attempt: &LoginAttempt<'_>,
    identity: &Identity,
    duration: u64,
) -> Result<IssuedToken, ApiError> {
    let issued = state.issuer.issue(identity, duration, None).map_err(|e| {
        tracing::error!(error = %e, "cannot issue a token");
        let reason = match e {
            TokenError::TooLarge { .. } => "token_too_large",
            TokenError::Signing(_) | TokenError::Duration(_) => "token_not_signed",
        };
        attempt.refused(reason, Some(&identity.username));
        ApiError::from(e)
    })?;
    state.process.metrics.token_issued();
    attempt.issued(&identity.username);
    Ok(issued)
}

/// The client's address: the TCP peer, or what a trusted proxy says it is.
pub(crate) fn client_address(req: &HttpRequest, state: &AppState) -> IpAddr {
    let peer = req
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let forwarded = req.headers().get_all(header::X_FORWARDED_FOR);
    state.process.proxies.client_ip(peer, forwarded)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::SearchMode;
    use crate::directory::SearchAs;

    const DURATIONS: Durations = Durations {
        default: 3600,
        max: 86400,
    };

    fn rules(mode: SearchMode) -> LoginRules {
        LoginRules::allowing(vec!["uid".into(), "mail".into()], mode)
    }

    fn parse(query: &str) -> Result<TokenRequest, String> {
        parse_query(query, DURATIONS, &rules(SearchMode::OnRequest)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_apply_when_nothing_is_asked() {
        assert_eq!(
            parse(""),
            Ok(TokenRequest {
                duration: 3600,
                login: LoginOptions {
                    attribute: None,
                    search_as: SearchAs::Service
                }
            })
        );
        assert_eq!(
            parse_query("", DURATIONS, &rules(SearchMode::Never))
                .unwrap()
                .login
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
            parse("search_criteria=mail")
                .unwrap()
                .login
                .attribute
                .as_deref(),
            Some("mail")
        );
        assert_eq!(
            parse("search_criteria=MAIL")
                .unwrap()
                .login
                .attribute
                .as_deref(),
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
                    .login
                    .search_as,
                want,
                "{text}"
            );
        }
        assert_eq!(
            parse("authenticated_search=maybe"),
            Err("authenticated_search must be true or false (or 1/0, yes/no).".into())
        );
        let always = parse_query(
            "authenticated_search=false",
            DURATIONS,
            &rules(SearchMode::Always),
        );
        assert_eq!(always.unwrap_err().to_string(), "This server always searches with its service account; authenticated_search=false is not allowed.");
        let never = parse_query(
            "authenticated_search=true",
            DURATIONS,
            &rules(SearchMode::Never),
        );
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
