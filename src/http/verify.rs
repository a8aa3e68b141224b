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
//! Browsers, when the portal is on: a request without a valid token that looks like a browser
//! opening a page (no `Authorization`, no `X-Requested-With: XMLHttpRequest`, `text/html` in
//! `Accept`), relayed by one of `server.trusted_proxies`, is sent to `<portal.url>/auth/login`
//! with its original URL as `rd`: a 302 (GET, HEAD) or 303 when Traefik or Caddy describe that
//! URL in `X-Forwarded-Proto`, `-Host`, `-Uri` and `-Method`; the usual 401 with a `Location`
//! when nginx sends it in `X-Original-URL` (the nginx example turns that into the redirect).
//! The original URL must pass the portal's redirect rule; anything else gets the plain 401.
//! This is decided only after a refusal: the path of a valid token does not change.
//!
//! `GET /auth/token-info`: the verified claims as JSON.

use std::future::ready;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::{fn_service, ServiceRequest};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use latchkey_verify::actix::{require_groups, token_headers, token_of_request, Rejection};
use latchkey_verify::locate_token;

use super::error::ApiError;
use super::gate::paths;
use super::portal::Portal;
use super::verified::{Verified, VerifiedTokens};
use super::AppState;
use crate::client_ip::TrustedProxies;
use crate::group_expr::{Expr, GroupSet};

// The headers forward-auth reads, named once: a lookup by `&str` parses the name every time.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_REQUESTED_WITH: HeaderName = HeaderName::from_static("x-requested-with");

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
            let sign_in = state
                .portal
                .as_ref()
                .and_then(|portal| sign_in(req, portal, &state.process.proxies));
            return match sign_in {
                Some(sign_in) => sign_in.response(&rejection),
                None => rejection.error_response(),
            };
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

/// How a browser that came without a valid token is sent to the sign-in page.
#[derive(Debug, PartialEq, Eq)]
struct SignIn {
    /// 302 or 303 for a proxy that passes a redirect on (Traefik, Caddy); 401 for nginx, whose
    /// `auth_request` turns it into the redirect.
    status: StatusCode,
    /// The sign-in page, with the original URL as `rd`.
    location: HeaderValue,
}

impl SignIn {
    /// The answer: the refusal's own 401 with a `Location` for nginx, a bare redirect otherwise.
    fn response(&self, rejection: &Rejection) -> HttpResponse {
        let mut response = if self.status == StatusCode::UNAUTHORIZED {
            rejection.error_response()
        } else {
            HttpResponse::new(self.status)
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::LOCATION, self.location.clone());
        response
    }
}

/// Where to send a request without a valid token when the portal is on, or None for a plain
/// 401: an API caller, a peer that is not one of `server.trusted_proxies`, no original URL, or
/// one the portal's redirect rule would not return to.
fn sign_in(req: &HttpRequest, portal: &Portal, proxies: &TrustedProxies) -> Option<SignIn> {
    if is_api_caller(req) || !proxies.contains(req.peer_addr()?.ip()) {
        return None;
    }
    let (original, status) = match forwarded_url(req) {
        Some(url) => {
            let status = match single_header(req, &X_FORWARDED_METHOD) {
                Some("GET" | "HEAD") => StatusCode::FOUND,
                _ => StatusCode::SEE_OTHER,
            };
            (url, status)
        }
        None => (
            single_header(req, &X_ORIGINAL_URL)?.to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
    };
    let Some(original) = portal.rule.allowed_text(&original) else {
        tracing::debug!("no sign-in redirect: the redirect rule does not allow the original URL");
        return None;
    };
    // `login_url` comes from the parsed `portal.url` and has no query: appending the encoded
    // `rd` is what `Url::query_pairs_mut` would do, without parsing it again per request.
    let rd: &str = &original;
    let mut location = String::with_capacity(portal.login_url().len() + 4 + rd.len() * 2);
    location.push_str(portal.login_url());
    location.push_str("?rd=");
    location.extend(url::form_urlencoded::byte_serialize(rd.as_bytes()));
    let location = HeaderValue::from_maybe_shared(location).ok()?;
    Some(SignIn { status, location })
}

/// Whether the request comes from a program rather than a browser opening a page: it sent an
/// `Authorization` header or `X-Requested-With: XMLHttpRequest`, or its `Accept` lacks
/// `text/html`.
fn is_api_caller(req: &HttpRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::AUTHORIZATION)
        || headers
            .get_all(&X_REQUESTED_WITH)
            .any(|value| value.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"))
        || !headers
            .get_all(header::ACCEPT)
            .any(|value| accepts_html(value.as_bytes()))
}

/// Whether an `Accept` value lists `text/html` (not with `q=0`). Wildcards do not count: a
/// browser opening a page names `text/html`.
fn accepts_html(accept: &[u8]) -> bool {
    let Ok(accept) = std::str::from_utf8(accept) else {
        return false;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim();
        media.eq_ignore_ascii_case("text/html")
            && parts.all(|param| {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                !(name.trim().eq_ignore_ascii_case("q")
                    && value.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            })
    })
}

/// The original URL Traefik and Caddy describe in `X-Forwarded-Proto`, `X-Forwarded-Host` and
/// `X-Forwarded-Uri`, when each is there once, the scheme is http(s), the host has only the
/// characters of a host and port, and the URI is a path.
fn forwarded_url(req: &HttpRequest) -> Option<String> {
    let proto = single_header(req, &X_FORWARDED_PROTO)?;
    let host = single_header(req, &X_FORWARDED_HOST)?;
    let uri = single_header(req, &X_FORWARDED_URI)?;
    let scheme_ok = proto.eq_ignore_ascii_case("https") || proto.eq_ignore_ascii_case("http");
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !(scheme_ok && host_ok && uri.starts_with('/')) {
        return None;
    }
    let mut url = String::with_capacity(proto.len() + 3 + host.len() + uri.len());
    for part in [proto, "://", host, uri] {
        url.push_str(part);
    }
    Some(url)
}

/// The value of header `name` when the request has it exactly once, in visible ASCII.
fn single_header<'a>(req: &'a HttpRequest, name: &HeaderName) -> Option<&'a str> {
    let mut values = req.headers().get_all(name);
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::testing::{parse, GOOD};
    use crate::config::PortalConfig;
    use actix_web::test::TestRequest;
    use latchkey_verify::VerifyError;

    const PROXY: &str = "10.0.0.1:40000";
    const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

    fn portal() -> (Portal, TrustedProxies) {
        let config = parse(&format!(
            "{GOOD}\n[portal]\nurl = \"https://auth.example.org\"\ncookie_domain = \"example.org\"\n"
        ))
        .unwrap();
        let portal_config: &PortalConfig = config.portal.as_ref().unwrap();
        (
            Portal::new(portal_config, &config.tokens),
            TrustedProxies::parse(&["10.0.0.0/8"]).unwrap(),
        )
    }

    /// A request from `peer` with a browser's `Accept` and `headers`.
    fn browser(peer: &str, headers: &[(&str, &str)]) -> HttpRequest {
        let mut req = TestRequest::get()
            .uri("/auth/verify")
            .peer_addr(peer.parse().unwrap())
            .insert_header((header::ACCEPT, BROWSER_ACCEPT));
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        req.to_http_request()
    }

    /// Traefik's or Caddy's description of `method https://app.example.org<uri>`.
    fn forwarded<'a>(method: &'a str, uri: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.org"),
            ("X-Forwarded-Uri", uri),
            ("X-Forwarded-Method", method),
        ]
    }

    fn decide(req: &HttpRequest) -> Option<(u16, String)> {
        let (portal, proxies) = portal();
        sign_in(req, &portal, &proxies)
            .map(|s| (s.status.as_u16(), s.location.to_str().unwrap().to_owned()))
    }

    const TO_Q3: &str =
        "https://auth.example.org/auth/login?rd=https%3A%2F%2Fapp.example.org%2Freports%2Fq3%3Fyear%3D2025%26tab%3Da%2Bb";

    #[test]
    fn a_browser_behind_traefik_or_caddy_is_redirected_by_method() {
        let uri = "/reports/q3?year=2025&tab=a+b";
        for (method, status) in [
            ("GET", 302),
            ("HEAD", 302),
            ("POST", 303),
            ("PUT", 303),
            ("DELETE", 303),
            ("get", 303),
        ] {
            let req = browser(PROXY, &forwarded(method, uri));
            assert_eq!(decide(&req), Some((status, TO_Q3.into())), "{method}");
        }
        // No method at all: a 303, which every method may follow with a GET.
        let mut headers = forwarded("GET", uri);
        headers.pop();
        assert_eq!(decide(&browser(PROXY, &headers)), Some((303, TO_Q3.into())));
    }

    #[test]
    fn a_browser_behind_nginx_gets_a_401_with_the_location() {
        let req = browser(
            PROXY,
            &[(
                "X-Original-URL",
                "https://app.example.org/reports/q3?year=2025&tab=a+b",
            )],
        );
        assert_eq!(decide(&req), Some((401, TO_Q3.into())));
        let (portal, proxies) = portal();
        let answer = sign_in(&req, &portal, &proxies)
            .unwrap()
            .response(&Rejection::Token(VerifyError::Missing));
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
        let headers = answer.headers();
        assert_eq!(headers.get(header::LOCATION).unwrap(), TO_Q3);
        assert_eq!(headers.get(header::CACHE_CONTROL).unwrap(), "no-store");
        assert_eq!(
            headers.get(header::WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="latchkey""#
        );
        let redirect = sign_in(&browser(PROXY, &forwarded("GET", "/")), &portal, &proxies)
            .unwrap()
            .response(&Rejection::Token(VerifyError::Missing));
        assert_eq!(redirect.status(), StatusCode::FOUND);
        assert_eq!(
            redirect.headers().get(header::LOCATION).unwrap(),
            "https://auth.example.org/auth/login?rd=https%3A%2F%2Fapp.example.org%2F"
        );
        assert_eq!(
            redirect.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        assert_eq!(redirect.headers().get(header::WWW_AUTHENTICATE), None);
    }

    #[test]
    fn api_callers_get_the_plain_401() {
        let uri = "/reports/q3";
        let mut cases: Vec<Vec<(&str, &str)>> = Vec::new();
        for extra in [
            ("Authorization", "Bearer a.b.c"),
            ("Authorization", "Basic Zm9vOg=="),
            ("X-Requested-With", "XMLHttpRequest"),
            ("x-requested-with", "xmlhttprequest"),
        ] {
            let mut headers = forwarded("GET", uri);
            headers.push(extra);
            cases.push(headers);
        }
        for headers in cases {
            assert_eq!(decide(&browser(PROXY, &headers)), None, "{headers:?}");
        }
        for accept in [
            None,
            Some("application/json"),
            Some("*/*"),
            Some("text/*"),
            Some("text/htmlx"),
            Some("text/html;q=0"),
            Some("text/html; q=0.000, application/json"),
        ] {
            let mut req = TestRequest::get()
                .uri("/auth/verify")
                .peer_addr(PROXY.parse().unwrap());
            if let Some(accept) = accept {
                req = req.insert_header((header::ACCEPT, accept));
            }
            for (name, value) in forwarded("GET", uri) {
                req = req.insert_header((name, value));
            }
            assert_eq!(decide(&req.to_http_request()), None, "{accept:?}");
        }
        assert!(accepts_html(b"TEXT/HTML ; level=1"));
        assert!(accepts_html(b"application/json, text/html;q=0.1"));
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
        for peer in ["192.0.2.9:40000", "127.0.0.1:40000", "[::1]:40000"] {
            let req = browser(peer, &forwarded("GET", "/reports/q3"));
            assert_eq!(decide(&req), None, "{peer}");
            let req = browser(peer, &[("X-Original-URL", "https://app.example.org/")]);
            assert_eq!(decide(&req), None, "{peer}");
        }
        assert!(decide(&browser("[::ffff:10.0.0.1]:1", &forwarded("GET", "/"))).is_some());
    }

    #[test]
    fn a_hostile_or_incomplete_original_url_gets_the_plain_401() {
        for (proto, host, uri) in [
            ("https", "evil.net", "/"),
            ("https", "app.example.org.evil.net", "/"),
            ("https", "app.example.org@evil.net", "/"),
            ("https", "app.example.org", "@evil.net/"),
            ("https", "app.example.org", ".evil.net/"),
            ("https", "evil.net/x", "/"),
            ("https", "app.example.org", "x"),
            ("https", "", "/"),
            ("http", "app.example.org", "/"),
            ("javascript", "app.example.org", "/"),
            ("https://app.example.org/#", "evil.net", "/"),
            ("https", "app.example.org", "/a\tb"),
        ] {
            let headers = [
                ("X-Forwarded-Proto", proto),
                ("X-Forwarded-Host", host),
                ("X-Forwarded-Uri", uri),
                ("X-Forwarded-Method", "GET"),
            ];
            assert_eq!(
                decide(&browser(PROXY, &headers)),
                None,
                "{proto} {host} {uri}"
            );
        }
        for original in [
            "//evil.net/",
            "/reports/q3",
            "https://evil.net/",
            "https://good@evil.net/",
            "https:evil.net",
            "javascript:alert(1)",
            "https://app.example.org\\@evil.net/",
        ] {
            let req = browser(PROXY, &[("X-Original-URL", original)]);
            assert_eq!(decide(&req), None, "{original}");
        }
        // Missing pieces, or a header sent twice.
        assert_eq!(decide(&browser(PROXY, &[])), None);
        let mut twice = forwarded("GET", "/");
        twice.push(("X-Forwarded-Host", "evil.net"));
        assert_eq!(decide(&browser(PROXY, &twice)), None);
        let twice = [
            ("X-Original-URL", "https://app.example.org/"),
            ("X-Original-URL", "https://evil.net/"),
        ];
        assert_eq!(decide(&browser(PROXY, &twice)), None);
    }

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
