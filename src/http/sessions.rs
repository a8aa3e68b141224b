//! Tokens that end early: `POST /auth/refresh`, `POST /auth/logout` with a token, and
//! `POST /auth/revoke` for administrators.
//!
//! ```text
//! POST /auth/refresh?token_duration=N   a valid token (Bearer, Basic username or the cookie)
//!                                       in; a new one out, as /auth/request-token answers
//! POST /auth/logout                     a valid token in; revoked: 204. With the portal on, a
//!                                       form POST (application/x-www-form-urlencoded) is the
//!                                       sign-out page's form instead (http::portal)
//! GET  /auth/logout                     the portal's sign-out page (405 without the portal)
//! POST /auth/revoke                     {"user": ".."} or {"token_id": ".."}, with a token
//!                                       whose groups satisfy [admin] require: 204.
//!                                       Without [admin] require the route does not exist: 404
//! ```
//!
//! The rules live elsewhere: a refresh is `login::Logins::refresh`, a revocation
//! `revocation::RevocationStore`; this module reads requests and writes answers. The token of
//! `/auth/revoke` is read from the `Authorization` header only, never from a cookie, and its
//! body must be JSON: a page on another site cannot make a signed-in administrator's browser
//! revoke anything.
//!
//! `/auth/refresh` and `/auth/logout` also take the session cookie. `SameSite=Lax` keeps it
//! from other sites' requests, but not from a page of a sibling host (another subdomain is the
//! same *site*), which could sign a browser out or renew its session. So when the token would
//! come from the cookie, a browser's request sent by another origin is refused (403): its
//! `Sec-Fetch-Site` is other than `same-origin` or `none`, or, from a browser that sends no
//! such header, its `Origin` is not the service's own (`portal.url`, else
//! `server.public_url`, else the request's `Host`). Programs send neither header and are not
//! affected, nor is a token in `Authorization`, which no other page can add.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use latchkey_verify::actix::{token_of_request, Rejection};
use latchkey_verify::{Claims, VerifyError};
use serde::Deserialize;

use super::error::{self, ApiError};
use super::gate::paths;
use super::portal;
use super::request_token::{client_address, parse_duration, token_answer};
use super::AppState;
use crate::group_expr::GroupSet;
use crate::identity::Identity;
use crate::login;
use crate::revocation::{unix_now, Target};
use crate::tokens::{IssuedToken, TokenError};

/// The largest body `/auth/revoke` and `/auth/logout` read, in bytes.
const MAX_BODY_BYTES: usize = 16 * 1024;

/// Register the routes: `/auth/refresh` and `/auth/logout` always, `/auth/revoke` only with
/// `[admin] require`.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    let body_limit = web::PayloadConfig::new(MAX_BODY_BYTES);
    cfg.service(
        web::resource(paths::REFRESH)
            .route(web::post().to(refresh))
            .default_service(error::method_not_allowed(
                "POST",
                "Use POST with a valid token to refresh it.",
            )),
    );
    let logout = web::resource(paths::LOGOUT)
        .app_data(body_limit.clone())
        .route(web::post().to(log_out));
    cfg.service(if state.portal.is_some() {
        logout
            .route(error::get_or_head().to(portal::logout_page))
            .default_service(error::method_not_allowed(
                "GET, HEAD, POST",
                "Use GET for the sign-out page and POST to sign out.",
            ))
    } else {
        logout.default_service(error::method_not_allowed(
            "POST",
            "Use POST with a token to sign out.",
        ))
    });
    if state.admin.is_some() {
        cfg.service(
            web::resource(paths::REVOKE)
                .app_data(body_limit)
                .route(web::post().to(revoke))
                .default_service(error::method_not_allowed(
                    "POST",
                    "Use POST with a JSON body to revoke tokens.",
                )),
        );
    }
}

/// 403 when the token of a request to `/auth/refresh` or `/auth/logout` would come from the
/// session cookie and a page of another origin sent it (see the module documentation).
fn refuse_another_origin(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    // Without a cookie there is nothing to guard: such a request gets the usual 401.
    let headers = req.headers();
    let from_cookie = state.cookie_name.is_some()
        && !headers.contains_key(header::AUTHORIZATION)
        && headers.contains_key(header::COOKIE);
    if from_cookie && sent_by_another_origin(req, state.own_origin.as_deref()) {
        return Err(ApiError::Forbidden(
            "A page of another origin cannot use the session cookie here; send the token in \
             the Authorization header."
                .into(),
        ));
    }
    Ok(())
}

/// Whether a browser says that a page of another origin sent `req`: by `Sec-Fetch-Site`, or
/// by `Origin` when it sends no `Sec-Fetch-Site`. `own_origin` is the service's public origin,
/// when configured; otherwise `Origin` is compared with `Host`.
fn sent_by_another_origin(req: &HttpRequest, own_origin: Option<&str>) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get(SEC_FETCH_SITE) {
        // `none`: the person typed the address or followed a bookmark.
        return !matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return true;
    };
    match own_origin {
        Some(own) => !origin.eq_ignore_ascii_case(own),
        None => {
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            !matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
    }
}

const SEC_FETCH_SITE: header::HeaderName = header::HeaderName::from_static("sec-fetch-site");

/// The verified claims of the request's token (Bearer, Basic username, or the cookie when
/// `cookie_name` is given).
fn claims_of(
    req: &HttpRequest,
    state: &AppState,
    cookie_name: Option<&str>,
) -> Result<Claims, Rejection> {
    let token = token_of_request(req, cookie_name)?;
    state.verifier.verify(&token).map_err(Rejection::Token)
}

#[tracing::instrument(name = "refresh", skip_all)]
async fn refresh(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(e) = refuse_another_origin(&req, &state) {
        return e.error_response();
    }
    let claims = match claims_of(&req, &state, state.cookie_name.as_deref()) {
        Ok(claims) => claims,
        Err(rejection) => return rejection.error_response(),
    };
    let outcome = match parse_duration(req.query_string(), state.durations) {
        Ok(duration) => {
            let client = client_address(&req, &state);
            Box::pin(refresh_session(&state, &claims, client, duration)).await
        }
        Err(e) => Err(e),
    };
    match outcome {
        Ok((issued, _)) => token_answer(issued),
        Err(e) => e.error_response(),
    }
}

/// A new token for the holder of `claims`, valid `duration` seconds, with their entry, groups
/// and `[access]` read again and `auth_time` kept; and who they are now. The sign-in page
/// renews its session cookie with it.
pub(crate) async fn refresh_session(
    state: &AppState,
    claims: &Claims,
    client: IpAddr,
    duration: u64,
) -> Result<(IssuedToken, Identity), ApiError> {
    let identity = state.logins.refresh(claims, client, unix_now()).await?;
    let issued = state
        .issuer
        .issue(&identity, duration, Some(claims.authenticated_at()))
        .map_err(|e| {
            tracing::error!(error = %e, "cannot issue a token");
            let reason = match e {
                TokenError::TooLarge { .. } => "token_too_large",
                TokenError::Signing(_) | TokenError::Duration(_) => "token_not_signed",
            };
            tracing::info!(
                target: "latchkey::audit",
                sub = %claims.sub,
                client = %client,
                outcome = "refused",
                reason,
                "refresh"
            );
            ApiError::from(e)
        })?;
    state.process.metrics.token_issued();
    login::refreshed(&identity.username, client);
    Ok((issued, identity))
}

/// Whether the request's body is a form (the sign-in pages' sign-out form).
fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[tracing::instrument(name = "logout", skip_all)]
async fn log_out(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    if let Some(portal) = &state.portal {
        if is_form(&req) {
            return portal::log_out(&req, &body, &state, portal).await;
        }
    }
    if let Err(e) = refuse_another_origin(&req, &state) {
        return e.error_response();
    }
    let claims = match claims_of(&req, &state, state.cookie_name.as_deref()) {
        Ok(claims) => claims,
        // Signed out already: the token is genuine (every other check passed first).
        Err(Rejection::Token(VerifyError::Revoked)) => return signed_out(&state),
        Err(rejection) => return rejection.error_response(),
    };
    if let Err(e) = state
        .process
        .revocations
        .revoke_token(&claims.jti, claims.exp)
        .await
    {
        return ApiError::from(e).error_response();
    }
    tracing::info!(
        target: "latchkey::audit",
        sub = %claims.sub,
        jti = %claims.jti,
        client = %client_address(&req, &state),
        outcome = "revoked",
        "logout"
    );
    signed_out(&state)
}

/// 204, clearing the portal's session cookie when the portal is on.
fn signed_out(state: &AppState) -> HttpResponse {
    let mut response = HttpResponse::NoContent();
    response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
    if let Some(portal) = &state.portal {
        response.append_header((header::SET_COOKIE, portal.cleared_session_cookie()));
    }
    response.finish()
}

/// The body of `/auth/revoke`: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    token_id: Option<String>,
}

const REVOKE_BODY_HINT: &str =
    r#"Send a JSON object with one of "user" or "token_id", e.g. {"user": "alice"}."#;

#[tracing::instrument(name = "revoke", skip_all)]
async fn revoke(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    match revoke_inner(&req, &body, &state).await {
        Ok(()) => HttpResponse::build(StatusCode::NO_CONTENT)
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .finish(),
        Err(response) => response,
    }
}

async fn revoke_inner(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
) -> Result<(), HttpResponse> {
    let Some(require) = &state.admin else {
        return Err(ApiError::NotFound.error_response());
    };
    // From the Authorization header only: see the module documentation.
    let admin = claims_of(req, state, None).map_err(|r| r.error_response())?;
    if !require.eval(&GroupSet::new(&admin.groups)) {
        return Err(ApiError::Forbidden(
            "Revoking tokens needs a token whose groups satisfy admin.require.".into(),
        )
        .error_response());
    }
    let bad = |text: String| ApiError::InvalidParameter(text).error_response();
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(bad(format!(
            "The body must be JSON (Content-Type: application/json). {REVOKE_BODY_HINT}"
        )));
    }
    let parsed: RevokeBody = serde_json::from_slice(body).map_err(|_| {
        bad(format!(
            "The body is not the JSON expected. {REVOKE_BODY_HINT}"
        ))
    })?;
    let target = match (parsed.user, parsed.token_id) {
        (Some(user), None) => Target::User(user),
        (None, Some(id)) => Target::TokenId(id),
        _ => return Err(bad(REVOKE_BODY_HINT.to_owned())),
    }
    .checked()
    .map_err(|e| bad(e.to_string()))?;
    state
        .process
        .revocations
        .revoke(&target, unix_now())
        .await
        .map_err(|e| ApiError::from(e).error_response())?;
    let (user, token_id) = match &target {
        Target::User(user) => (Some(user.as_str()), None),
        Target::TokenId(id) => (None, Some(id.as_str())),
    };
    tracing::info!(
        target: "latchkey::audit",
        by = %admin.sub,
        user,
        token_id,
        client = %client_address(req, state),
        outcome = "revoked",
        "revoke"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn a_browser_request_of_another_origin_is_told_apart_from_ours_and_from_programs() {
        let sent_by = |headers: &[(&str, &str)], own: Option<&str>| {
            let mut req = TestRequest::post().insert_header((header::HOST, "auth.example.org"));
            for &(name, value) in headers {
                req = req.insert_header((name, value));
            }
            sent_by_another_origin(&req.to_http_request(), own)
        };
        let own = Some("https://auth.example.org");
        // Programs (curl, a service) send neither header.
        assert!(!sent_by(&[], own));
        assert!(!sent_by(&[], None));
        // Sec-Fetch-Site decides when a browser sends it, whatever Origin says.
        assert!(!sent_by(&[("Sec-Fetch-Site", "same-origin")], own));
        assert!(!sent_by(&[("Sec-Fetch-Site", "none")], own));
        assert!(sent_by(&[("Sec-Fetch-Site", "same-site")], own));
        assert!(sent_by(&[("Sec-Fetch-Site", "cross-site")], own));
        assert!(sent_by(
            &[
                ("Sec-Fetch-Site", "same-site"),
                ("Origin", "https://auth.example.org")
            ],
            own
        ));
        // Without it, Origin against the configured origin...
        assert!(!sent_by(&[("Origin", "https://auth.example.org")], own));
        assert!(!sent_by(&[("Origin", "https://AUTH.example.org")], own));
        assert!(sent_by(&[("Origin", "https://wiki.example.org")], own));
        assert!(sent_by(&[("Origin", "http://auth.example.org")], own));
        assert!(sent_by(&[("Origin", "null")], own));
        // ... or against Host when none is configured.
        assert!(!sent_by(&[("Origin", "https://auth.example.org")], None));
        assert!(sent_by(&[("Origin", "https://wiki.example.org")], None));
        assert!(sent_by(&[("Origin", "null")], None));
    }

    #[test]
    fn only_url_encoded_bodies_are_the_portal_form() {
        let with = |ct: &str| {
            is_form(
                &TestRequest::post()
                    .insert_header((header::CONTENT_TYPE, ct))
                    .to_http_request(),
            )
        };
        assert!(with("application/x-www-form-urlencoded"));
        assert!(with("Application/X-WWW-Form-Urlencoded; charset=UTF-8"));
        assert!(!with("application/json"));
        assert!(!with("multipart/form-data; boundary=x"));
        assert!(!is_form(&TestRequest::post().to_http_request()));
    }
}
