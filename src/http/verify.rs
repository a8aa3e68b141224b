//! Forward-auth for reverse proxies, and token introspection.
//!
//! `/auth/verify` (any method, since proxies forward the original one): 200 with the identity
//! in `Remote-User`, `Remote-Groups`, `Remote-Email` and `Remote-Name` (all four always, empty
//! when the token lacks the claim), or 401 / 403. The answer is built from the verified claims
//! only; no header the client sent is echoed back.
//! `Remote-Groups` separates names with `,` and writes a `,` inside a name as `%2C` (and `%`
//! as `%25`). A token's verification and headers are kept for its next request, by each
//! worker (`verified.rs`).
//!
//! `GET /auth/token-info`: the verified claims as JSON.

use std::future::ready;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::{fn_service, ServiceRequest};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use latchkey_verify::actix::{require_groups, token_headers, token_of_request, Rejection};
use latchkey_verify::locate_token;

use super::error::ApiError;
use super::gate::paths;
use super::verified::{Verified, VerifiedTokens};
use super::AppState;
use crate::group_expr::{Expr, GroupSet};

/// Register the routes of one worker, with its own cache of verified tokens. `/auth/verify` is
/// a plain service over `state` rather than a handler with extractors: a proxy asks it on every
/// request it lets through, and it has nothing to extract but headers.
pub fn configure(cfg: &mut web::ServiceConfig, state: &Arc<AppState>) {
    let tokens = Rc::new(VerifiedTokens::new(state.verified_cache_bytes));
    let state = Arc::clone(state);
    let verify = fn_service(move |req: ServiceRequest| {
        let response = verify(req.request(), &state, &tokens);
        ready(Ok::<_, actix_web::Error>(req.into_response(response)))
    });
    cfg.service(web::service(paths::VERIFY).finish(verify))
        .service(
            web::resource(paths::TOKEN_INFO)
                .route(web::get().to(token_info))
                .default_service(web::to(|| async {
                    ApiError::MethodNotAllowed {
                        allow: "GET",
                        message: "Use GET to read a token's claims.".into(),
                    }
                    .error_response()
                })),
        );
}

/// What a route asks of the token's groups: `?group=a&group=b` (all required), and
/// `?require=<expression>` (the group expression language of `[access]`).
#[derive(Debug, Default)]
pub struct Requirements {
    pub groups: Vec<String>,
    pub expression: Option<Expr>,
}

/// Read the requirements from the query string.
pub fn requirements(query: &str) -> Result<Requirements, ApiError> {
    if query.is_empty() {
        return Ok(Requirements::default());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| {
        ApiError::InvalidParameter("The query string is not valid URL encoding.".into())
    })?;
    let mut wanted = Requirements::default();
    for (key, value) in pairs {
        match key.as_str() {
            "group" | "require" if value.chars().any(char::is_control) => {
                return Err(ApiError::InvalidParameter(format!(
                    "{key} holds a control character; group names have none."
                )))
            }
            "group" if value.is_empty() => {
                return Err(ApiError::InvalidParameter(
                    "group must name a group, e.g. ?group=admins.".into(),
                ))
            }
            "group" => wanted.groups.push(value),
            "require" if wanted.expression.is_some() => {
                return Err(ApiError::InvalidParameter(
                    "require is given more than once; combine the expressions with &.".into(),
                ))
            }
            "require" => {
                let expr = Expr::parse(&value).map_err(|e| {
                    ApiError::InvalidParameter(format!("require is not a group expression: {e}."))
                })?;
                wanted.expression = Some(expr);
            }
            _ => {}
        }
    }
    Ok(wanted)
}

#[tracing::instrument(name = "verify", skip_all)]
fn verify(req: &HttpRequest, state: &AppState, tokens: &VerifiedTokens) -> HttpResponse {
    let wanted = match requirements(req.query_string()) {
        Ok(wanted) => wanted,
        Err(e) => return e.error_response(),
    };
    let verified = match verified_token(req, state, tokens) {
        Ok(verified) => verified,
        Err(rejection) => {
            tracing::debug!(reason = %rejection, "forward-auth refused");
            return rejection.error_response();
        }
    };
    if let Err(rejection) = require_groups(&verified.claims, &wanted.groups) {
        return rejection.error_response();
    }
    if let Some(expr) = &wanted.expression {
        if !expr.eval(&GroupSet::new(&verified.claims.groups)) {
            return ApiError::Forbidden(format!("The token's groups do not satisfy {expr}."))
                .error_response();
        }
    }
    match &verified.headers {
        Ok(headers) => {
            // Into the header map of actix's pooled response head: no allocation per answer.
            let mut response = HttpResponse::new(StatusCode::OK);
            let map = response.headers_mut();
            map.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            for (name, value) in headers {
                map.insert(name.clone(), value.clone());
            }
            response
        }
        Err(claim) => {
            tracing::error!(claim, "a claim holds characters a header cannot carry");
            ApiError::Internal.error_response()
        }
    }
}

/// The request's token, verified (or found verified before by this worker).
fn verified_token(
    req: &HttpRequest,
    state: &AppState,
    tokens: &VerifiedTokens,
) -> Result<Rc<Verified>, Rejection> {
    let cookie_name = state.cookie_name.as_deref();
    let (authorization, cookie) = token_headers(req, cookie_name);
    let token = locate_token(authorization, cookie, cookie_name).map_err(Rejection::Token)?;
    tokens
        .verify(&state.verifier, &token)
        .map_err(Rejection::Token)
}

/// The claims of the request's token. Verified every time: introspection is not on the path of
/// every request, as `/auth/verify` is.
#[tracing::instrument(name = "token_info", skip_all)]
async fn token_info(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let claims = token_of_request(&req, state.cookie_name.as_deref())
        .and_then(|token| state.verifier.verify(&token).map_err(Rejection::Token));
    match claims {
        Ok(claims) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(&claims),
        Err(rejection) => rejection.error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_collected_and_empty_ones_refused() {
        assert_eq!(requirements("").unwrap().groups, Vec::<String>::new());
        assert_eq!(
            requirements("group=admins&x=1&group=ops%20team")
                .unwrap()
                .groups,
            vec!["admins", "ops team"]
        );
        assert_eq!(
            requirements("group=").unwrap_err().to_string(),
            "group must name a group, e.g. ?group=admins."
        );
        assert_eq!(
            requirements("group=ad%09mins").unwrap_err().to_string(),
            "group holds a control character; group names have none."
        );
        assert_eq!(
            requirements("require=%22a%0Ab%22").unwrap_err().to_string(),
            "require holds a control character; group names have none."
        );
    }

    #[test]
    fn require_takes_one_group_expression() {
        let wanted = requirements("require=staff%20%26%20!contractors").unwrap();
        assert_eq!(
            wanted.expression.unwrap().to_string(),
            "staff & !contractors"
        );
        assert_eq!(
            requirements("require=staff%20%26").unwrap_err().to_string(),
            "require is not a group expression: column 8: a group name, '!' or '(' expected at end of expression."
        );
        assert_eq!(
            requirements("require=a&require=b").unwrap_err().to_string(),
            "require is given more than once; combine the expressions with &."
        );
    }
}
