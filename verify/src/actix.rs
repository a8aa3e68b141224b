//! actix-web integration (feature `actix`): guard routes with Latchkey tokens, no network call.
//!
//! ```no_run
//! use std::sync::Arc;
//! use actix_web::{web, App, HttpServer};
//! use latchkey_verify::actix::RequireToken;
//! use latchkey_verify::{Claims, Verifier, VerifyingKey};
//!
//! async fn hello(claims: Claims) -> String {
//!     format!("Hello, {}!", claims.sub)
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Latchkey's public key (`tokens.algorithm = "EdDSA"` or `"ES256"`), as a PEM file.
//! let key = VerifyingKey::from_public_key_pem_file("2026-11", "/etc/latchkey/2026-11.pub")?;
//! let verifier = Arc::new(Verifier::builder().key(&key).issuer("latchkey").build());
//! HttpServer::new(move || {
//!     App::new().service(
//!         web::scope("/api")
//!             .wrap(RequireToken::new(verifier.clone()).group("staff"))
//!             .route("/hello", web::get().to(hello)),
//!     )
//! })
//! .bind("127.0.0.1:8000")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! [`RequireToken::new`] takes a [`Verifier`], or anything else that verifies
//! ([`IntoTokenVerifier`]: with feature `jwks`, a `JwksSource` that follows Latchkey's published
//! keys). [`RequireToken`] verifies the token of every request to what it wraps and puts the
//! [`Claims`] into the request; handlers take them as an argument. A request without a valid
//! token gets 401 with `WWW-Authenticate: Bearer`, one whose token lacks a required group gets
//! 403; both with Latchkey's JSON error body.

use std::borrow::Cow;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::body::EitherBody;
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

pub use crate::{require_groups, Rejection};
use crate::{token_in_headers, Claims, IntoTokenVerifier, Requirement, Verifier, VerifyError};

/// The answer is [`Rejection`]'s own (status, challenge, JSON body), in actix's types.
impl ResponseError for Rejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        if let Some(challenge) = self.challenge() {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        response.json(self.body())
    }
}

/// Check a request: find its token, verify it, and require every group in `groups`.
pub fn check_request(
    req: &HttpRequest,
    verifier: &Verifier,
    cookie_name: Option<&str>,
    groups: &[String],
) -> Result<Claims, Rejection> {
    let token = token_of_request(req, cookie_name)?;
    let claims = verifier.verify(&token).map_err(Rejection::Token)?;
    require_groups(&claims, groups)?;
    Ok(claims)
}

/// The text of the token a request carries ([`token_in_headers`] on its headers), not yet
/// verified.
pub fn token_of_request<'a>(
    req: &'a HttpRequest,
    cookie_name: Option<&str>,
) -> Result<Cow<'a, str>, Rejection> {
    let (authorization, cookie) = token_headers(req, cookie_name);
    token_in_headers(authorization, cookie, cookie_name).map_err(Rejection::Token)
}

/// The values of the headers a token may come in: `Authorization`, and `Cookie` when a cookie
/// name is configured. For [`crate::locate_token`] and [`token_in_headers`].
pub fn token_headers<'a>(
    req: &'a HttpRequest,
    cookie_name: Option<&str>,
) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    let headers = req.headers();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let cookie = cookie_name
        .and_then(|_| headers.get(header::COOKIE))
        .map(HeaderValue::as_bytes);
    (authorization, cookie)
}

/// Middleware that lets through only requests with a valid token (and the required groups):
/// a [`Requirement`] in actix's clothes.
#[derive(Clone)]
pub struct RequireToken {
    requirement: Requirement,
}

impl RequireToken {
    /// Require a token that `verifier` accepts.
    pub fn new(verifier: impl IntoTokenVerifier) -> Self {
        RequireToken {
            requirement: Requirement::new(verifier),
        }
    }

    /// Also accept the token from the cookie `name` (after the `Authorization` header).
    pub fn cookie(mut self, name: impl Into<String>) -> Self {
        self.requirement = self.requirement.cookie(name);
        self
    }

    /// Require membership of `group` too (every group named is required), compared by
    /// [`Claims::has_group`]: `.group("Admins")` accepts a token with the group `admins`.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.requirement = self.requirement.group(group);
        self
    }
}

impl From<Requirement> for RequireToken {
    fn from(requirement: Requirement) -> Self {
        RequireToken { requirement }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireToken
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireTokenMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireTokenMiddleware {
            service: Rc::new(service),
            requirement: Rc::new(self.requirement.clone()),
        }))
    }
}

/// The service [`RequireToken`] wraps around a route or scope.
pub struct RequireTokenMiddleware<S> {
    service: Rc<S>,
    requirement: Rc<Requirement>,
}

type BoxedResponse<B> =
    Pin<Box<dyn Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>>>;

impl<S, B> Service<ServiceRequest> for RequireTokenMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = BoxedResponse<B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let r = &self.requirement;
        let (authorization, cookie) = token_headers(req.request(), r.cookie_name());
        match r.check(authorization, cookie) {
            Ok(claims) => {
                req.extensions_mut().insert(claims);
                let response = self.service.call(req);
                Box::pin(async move { Ok(response.await?.map_into_left_body()) })
            }
            Err(rejection) => {
                let response = req.into_response(rejection.error_response());
                Box::pin(ready(Ok(response.map_into_right_body())))
            }
        }
    }
}

/// Handlers behind [`RequireToken`] take the verified claims as an argument. Without the
/// middleware in front, the request is refused as having no token.
impl FromRequest for Claims {
    type Error = Rejection;
    type Future = Ready<Result<Claims, Rejection>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Claims>()
                .cloned()
                .ok_or(Rejection::Token(VerifyError::Missing)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::{self, TestRequest};
    use actix_web::{web, App};

    use crate::test_keys::{key, token};

    async fn hello(claims: Claims) -> String {
        format!("hello {}", claims.sub)
    }

    async fn call(req: TestRequest) -> (StatusCode, Option<String>, String) {
        let verifier =
            std::sync::Arc::new(Verifier::builder().key(&key()).issuer("latchkey").build());
        let app = test::init_service(
            App::new()
                .route("/open", web::get().to(|| async { "open" }))
                .service(
                    web::scope("/api")
                        .wrap(RequireToken::new(verifier.clone()).cookie("lk"))
                        .route("/hello", web::get().to(hello))
                        .service(
                            web::resource("/admin")
                                .wrap(RequireToken::new(verifier).group("admins"))
                                .to(hello),
                        ),
                ),
        )
        .await;
        let response = test::call_service(&app, req.to_request()).await;
        let status = response.status();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = String::from_utf8(test::read_body(response).await.to_vec()).unwrap();
        (status, challenge, body)
    }

    #[actix_web::test]
    async fn a_valid_token_reaches_the_handler_with_its_claims() {
        let req = TestRequest::get()
            .uri("/api/hello")
            .insert_header(("Authorization", format!("Bearer {}", token(&[], 60))));
        assert_eq!(
            call(req).await,
            (StatusCode::OK, None, "hello alice".into())
        );
        let by_cookie = TestRequest::get()
            .uri("/api/hello")
            .insert_header(("Cookie", format!("lk={}", token(&[], 60))));
        assert_eq!(call(by_cookie).await.0, StatusCode::OK);
        assert_eq!(
            call(TestRequest::get().uri("/open")).await.0,
            StatusCode::OK
        );
    }

    #[actix_web::test]
    async fn no_token_is_401_with_a_bearer_challenge_and_json() {
        let (status, challenge, body) = call(TestRequest::get().uri("/api/hello")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some(r#"Bearer realm="latchkey""#));
        assert_eq!(
            body,
            r#"{"error":"missing_token","message":"Send a token: Authorization: Bearer <token>.","status":401}"#
        );
    }

    #[actix_web::test]
    async fn an_expired_token_is_401_invalid_token() {
        let req = TestRequest::get()
            .uri("/api/hello")
            .insert_header(("Authorization", format!("Bearer {}", token(&[], -60))));
        let (status, challenge, body) = call(req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            challenge.as_deref(),
            Some(r#"Bearer realm="latchkey", error="invalid_token""#)
        );
        assert_eq!(
            body,
            r#"{"error":"invalid_token","message":"The token has expired; request a new one.","status":401}"#
        );
    }

    #[actix_web::test]
    async fn a_missing_group_is_403_and_a_present_one_passes() {
        let without = TestRequest::get()
            .uri("/api/admin")
            .insert_header(("Authorization", format!("Bearer {}", token(&["staff"], 60))));
        let (status, challenge, body) = call(without).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(challenge, None);
        assert_eq!(
            body,
            r#"{"error":"forbidden","message":"This needs membership of the group \"admins\".","status":403}"#
        );
        let with = TestRequest::get().uri("/api/admin").insert_header((
            "Authorization",
            format!("Bearer {}", token(&["admins"], 60)),
        ));
        assert_eq!(call(with).await.0, StatusCode::OK);
    }

    #[actix_web::test]
    async fn required_groups_are_compared_without_regard_to_case() {
        let verifier =
            std::sync::Arc::new(Verifier::builder().key(&key()).issuer("latchkey").build());
        let app = test::init_service(
            App::new().service(
                web::resource("/eu")
                    .wrap(
                        RequireToken::new(verifier)
                            .group("SALES, EMEA (*)")
                            .group("GRÖẞE"),
                    )
                    .to(hello),
            ),
        )
        .await;
        let call = |groups: &[&str]| {
            TestRequest::get()
                .uri("/eu")
                .insert_header(("Authorization", format!("Bearer {}", token(groups, 60))))
                .to_request()
        };
        let both = test::call_service(&app, call(&["Sales, EMEA (*)", "Größe"])).await;
        assert_eq!(both.status(), StatusCode::OK);
        assert_eq!(test::read_body(both).await, "hello alice");
        // "SS" is not a lowercase sharp s: another group.
        let other = test::call_service(&app, call(&["sales, emea (*)", "GRÖSSE"])).await;
        assert_eq!(other.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            test::read_body(other).await,
            r#"{"error":"forbidden","message":"This needs membership of the group \"GRÖẞE\".","status":403}"#
        );
    }

    #[test]
    fn the_cookie_header_is_read_only_when_a_cookie_is_configured() {
        let req = TestRequest::get()
            .insert_header(("Authorization", "Bearer a.b.c"))
            .insert_header(("Cookie", "lk=d.e.f"))
            .to_http_request();
        assert_eq!(
            token_headers(&req, Some("lk")),
            (Some(&b"Bearer a.b.c"[..]), Some(&b"lk=d.e.f"[..]))
        );
        assert_eq!(
            token_headers(&req, None),
            (Some(&b"Bearer a.b.c"[..]), None)
        );
        let bare = TestRequest::get().to_http_request();
        assert_eq!(token_headers(&bare, Some("lk")), (None, None));
    }

    #[actix_web::test]
    async fn claims_without_the_middleware_are_refused() {
        let app = test::init_service(App::new().route("/bare", web::get().to(hello))).await;
        let response = test::call_service(&app, TestRequest::get().uri("/bare").to_request()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}
