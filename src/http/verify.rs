//! Forward-auth for reverse proxies, and token introspection.
//!
//! `/auth/verify` (any method, since proxies forward the original one): 200 with the identity
//! in `Remote-User`, `Remote-Groups`, `Remote-Email` and `Remote-Name`, or 401 / 403. The
//! answer is built from the verified claims only; no header the client sent is echoed back.
//! `Remote-Groups` separates names with `,` and writes a `,` inside a name as `%2C` (and `%`
//! as `%25`).
//!
//! `GET /auth/token-info`: the verified claims as JSON.

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use latchkey_verify::actix::check_request;
use latchkey_verify::Claims;

use super::error::ApiError;
use super::AppState;
use crate::policy::{Expr, GroupSet};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/verify").to(verify)).service(
        web::resource("/token-info")
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
async fn verify(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let wanted = match requirements(req.query_string()) {
        Ok(wanted) => wanted,
        Err(e) => return e.error_response(),
    };
    let claims = match check_request(
        &req,
        &state.verifier,
        state.cookie_name.as_deref(),
        &wanted.groups,
    ) {
        Ok(claims) => claims,
        Err(rejection) => {
            tracing::debug!(reason = %rejection, "forward-auth refused");
            return rejection.error_response();
        }
    };
    if let Some(expr) = &wanted.expression {
        if !expr.eval(&GroupSet::new(&claims.groups)) {
            return ApiError::Forbidden(format!("The token's groups do not satisfy {expr}."))
                .error_response();
        }
    }
    match identity_headers(&claims) {
        Ok(headers) => {
            let mut response = HttpResponse::Ok();
            response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
            for header in headers {
                response.insert_header(header);
            }
            response.finish()
        }
        Err(e) => e.error_response(),
    }
}

/// The identity headers for `claims`; names and addresses may be UTF-8.
pub fn identity_headers(claims: &Claims) -> Result<Vec<(HeaderName, HeaderValue)>, ApiError> {
    let value = |name: &str, text: &str| {
        HeaderValue::from_bytes(text.as_bytes()).map_err(|_| {
            tracing::error!(
                claim = name,
                "a claim holds characters a header cannot carry"
            );
            ApiError::Internal
        })
    };
    let mut headers = vec![
        (
            HeaderName::from_static("remote-user"),
            value("sub", &claims.sub)?,
        ),
        (
            HeaderName::from_static("remote-groups"),
            value("groups", &groups_header(&claims.groups))?,
        ),
    ];
    if let Some(email) = &claims.email {
        headers.push((
            HeaderName::from_static("remote-email"),
            value("email", email)?,
        ));
    }
    if let Some(name) = &claims.name {
        headers.push((HeaderName::from_static("remote-name"), value("name", name)?));
    }
    Ok(headers)
}

/// The `Remote-Groups` value: names separated by `,`, with a `,` inside a name written `%2C`
/// and a `%` written `%25`, so that every name can be told apart (`Sales, EMEA` →
/// `Sales%2C EMEA`).
pub fn groups_header(groups: &[String]) -> String {
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for c in group.chars() {
            match c {
                ',' => out.push_str("%2C"),
                '%' => out.push_str("%25"),
                c => out.push(c),
            }
        }
    }
    out
}

#[tracing::instrument(name = "token_info", skip_all)]
async fn token_info(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match check_request(&req, &state.verifier, state.cookie_name.as_deref(), &[]) {
        Ok(claims) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .json(claims),
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

    #[test]
    fn identity_headers_carry_utf8_and_leave_out_absent_claims() {
        let mut claims = Claims::new("latchkey", "dreßler", 0, 1);
        claims.groups = vec!["staff".into(), "ops".into()];
        claims.name = Some("Wolfgang Dreßler".into());
        let headers = identity_headers(&claims).unwrap();
        let shown: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("remote-user".to_owned(), "dreßler".as_bytes().to_vec()),
                ("remote-groups".to_owned(), b"staff,ops".to_vec()),
                (
                    "remote-name".to_owned(),
                    "Wolfgang Dreßler".as_bytes().to_vec()
                ),
            ]
        );
        claims.groups = vec!["Sales, EMEA (*)".into(), "100%".into(), "Größe".into()];
        let headers = identity_headers(&claims).unwrap();
        assert_eq!(
            headers[1].1.as_bytes(),
            "Sales%2C EMEA (*),100%25,Größe".as_bytes()
        );
        claims.sub = "evil\r\nSet-Cookie: x=1".into();
        assert!(identity_headers(&claims).is_err());
    }
}
