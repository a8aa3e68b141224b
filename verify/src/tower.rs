//! tower integration (feature `tower`): guard a tower HTTP service (axum, or hyper with tower)
//! with Latchkey tokens, no network call.
//!
//! ```
//! use std::sync::Arc;
//! use latchkey_verify::tower::RequireTokenLayer;
//! use latchkey_verify::{Verifier, VerifyingKey};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let signing = latchkey_verify::SigningKey::generate("2026-11", latchkey_verify::Algorithm::EdDSA)?;
//! # let jwks = serde_json::json!({ "keys": [signing.verifying_key().to_jwk()] }).to_string();
//! // Latchkey's public keys, from its /.well-known/jwks.json (with feature `jwks`, a
//! // JwksSource follows that document instead).
//! let keys = VerifyingKey::from_jwks_json(jwks.as_bytes())?;
//! let verifier = Arc::new(Verifier::builder().keys(&keys).issuer("latchkey").build());
//! // Bearer or Basic-username token, or the cookie `latchkey`; members of `staff` only.
//! let layer = RequireTokenLayer::new(verifier).cookie("latchkey").group("staff");
//! // axum: Router::new().route("/api/hello", get(hello)).route_layer(layer)
//! # let _ = layer;
//! # Ok(()) }
//! ```
//!
//! [`RequireTokenLayer`] makes exactly the decision of the actix middleware (the crate's
//! [`Requirement`]) and answers as it does: a request without a valid token gets 401 with
//! `WWW-Authenticate: Bearer realm="latchkey"` (plus `error="invalid_token"` when a token was
//! sent), one whose token lacks a required group 403; both with `Cache-Control: no-store` and
//! Latchkey's JSON error body. An accepted request reaches the inner service with the verified
//! [`Claims`] in its extensions (`request.extensions().get::<Claims>()`; with the `axum`
//! feature, a `Claims` argument of the handler).
//!
//! The refusal's body is made with the inner service's own body type, which must be
//! constructible `From<String>` (axum's `Body`, http-body-util's `Full<Bytes>` are).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

pub use crate::{require_groups, Rejection};
use crate::{Claims, IntoTokenVerifier, Requirement};

/// A layer that lets through only requests with a valid token (and the required groups).
#[derive(Debug, Clone)]
pub struct RequireTokenLayer {
    requirement: Arc<Requirement>,
}

impl RequireTokenLayer {
    /// Require a token that `verifier` accepts.
    pub fn new(verifier: impl IntoTokenVerifier) -> Self {
        Requirement::new(verifier).into()
    }

    /// Also accept the token from the cookie `name` (after the `Authorization` header).
    pub fn cookie(self, name: impl Into<String>) -> Self {
        self.with(|r| r.cookie(name))
    }

    /// Require membership of `group` too (every group named is required), compared by
    /// [`Claims::has_group`]: `.group("Admins")` accepts a token with the group `admins`.
    pub fn group(self, group: impl Into<String>) -> Self {
        self.with(|r| r.group(group))
    }

    fn with(self, change: impl FnOnce(Requirement) -> Requirement) -> Self {
        let requirement = Arc::unwrap_or_clone(self.requirement);
        change(requirement).into()
    }
}

impl From<Requirement> for RequireTokenLayer {
    fn from(requirement: Requirement) -> Self {
        RequireTokenLayer {
            requirement: Arc::new(requirement),
        }
    }
}

impl<S> Layer<S> for RequireTokenLayer {
    type Service = RequireToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireToken {
            inner,
            requirement: self.requirement.clone(),
        }
    }
}

/// The service [`RequireTokenLayer`] wraps around another: cheap to clone (the requirement is
/// shared), as tower stacks clone services per connection or request.
#[derive(Debug, Clone)]
pub struct RequireToken<S> {
    inner: S,
    requirement: Arc<Requirement>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireToken<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let verdict = check_headers(&self.requirement, request.headers());
        match verdict {
            Ok(claims) => {
                request.extensions_mut().insert(claims);
                ResponseFuture {
                    state: State::Admitted {
                        future: self.inner.call(request),
                    },
                }
            }
            Err(rejection) => ResponseFuture {
                state: State::Refused { rejection },
            },
        }
    }
}

/// Decide a request by its headers: `Authorization`, and `Cookie` when the requirement names a
/// cookie. Several `Cookie` headers (as HTTP/2 clients send them) count as one, joined by `; `
/// as RFC 9113 says.
pub fn check_headers(requirement: &Requirement, headers: &HeaderMap) -> Result<Claims, Rejection> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    let cookie = match requirement.cookie_name() {
        Some(_) => cookie_header(headers),
        None => None,
    };
    requirement.check(authorization, cookie.as_deref())
}

/// The `Cookie` header's value: borrowed when there is one, joined when there are several.
fn cookie_header(headers: &HeaderMap) -> Option<Cow<'_, [u8]>> {
    let mut values = headers.get_all(header::COOKIE).iter();
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(Cow::Borrowed(first.as_bytes()));
    };
    let mut joined = first.as_bytes().to_vec();
    for value in std::iter::once(second).chain(values) {
        joined.extend_from_slice(b"; ");
        joined.extend_from_slice(value.as_bytes());
    }
    Some(Cow::Owned(joined))
}

/// The answer to a refused request, in `http`'s types with body type `B`: the status, the
/// `WWW-Authenticate` challenge of a 401, `Cache-Control: no-store` and the JSON body, as the
/// actix middleware and Latchkey itself answer.
pub fn rejection_response<B: From<String>>(rejection: &Rejection) -> Response<B> {
    let mut response = Response::new(B::from(rejection.body_json()));
    *response.status_mut() =
        StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(challenge) = rejection.challenge() {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
}

pin_project_lite::pin_project! {
    /// The answer of [`RequireToken`]: the inner service's, or the refusal.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProjection]
    enum State<F> {
        Admitted { #[pin] future: F },
        Refused { rejection: Rejection },
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProjection::Admitted { future } => future.poll(cx),
            StateProjection::Refused { rejection } => {
                Poll::Ready(Ok(rejection_response(rejection)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Verifier;
    use std::convert::Infallible;
    use tower::ServiceExt;

    use crate::test_keys::{key, token};

    fn layer() -> RequireTokenLayer {
        RequireTokenLayer::new(Verifier::builder().key(&key()).issuer("latchkey").build())
    }

    /// The inner service: says hello to the claims' subject, or "no claims".
    async fn hello(request: Request<()>) -> Result<Response<String>, Infallible> {
        let text = match request.extensions().get::<Claims>() {
            Some(claims) => format!("hello {}", claims.sub),
            None => "no claims".to_owned(),
        };
        Ok(Response::new(text))
    }

    /// Status, the headers a refusal sets, and the body.
    type Answer = (u16, Option<String>, Option<String>, Option<String>, String);

    async fn call(layer: RequireTokenLayer, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::builder().uri("/hello");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let service = layer.layer(tower::service_fn(hello));
        let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
        let header = |name| {
            response
                .headers()
                .get(name)
                .map(|v: &HeaderValue| v.to_str().unwrap().to_owned())
        };
        (
            response.status().as_u16(),
            header(header::WWW_AUTHENTICATE),
            header(header::CACHE_CONTROL),
            header(header::CONTENT_TYPE),
            response.into_body(),
        )
    }

    fn refusal(status: u16, challenge: Option<&str>, body: &str) -> Answer {
        (
            status,
            challenge.map(str::to_owned),
            Some("no-store".into()),
            Some("application/json".into()),
            body.into(),
        )
    }

    #[tokio::test]
    async fn a_valid_bearer_token_reaches_the_service_with_its_claims() {
        let bearer = format!("Bearer {}", token(&[], 60));
        assert_eq!(
            call(layer(), &[("authorization", &bearer)]).await,
            (200, None, None, None, "hello alice".into())
        );
    }

    #[tokio::test]
    async fn the_token_may_be_the_basic_username_or_the_named_cookie() {
        use base64::Engine;
        let good = token(&[], 60);
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{good}:"))
        );
        assert_eq!(
            call(layer(), &[("authorization", &basic)]).await.4,
            "hello alice"
        );
        let cookie = format!("theme=dark; lk={good}");
        assert_eq!(
            call(layer().cookie("lk"), &[("cookie", &cookie)]).await.4,
            "hello alice"
        );
        // HTTP/2 clients may send each cookie in a header of its own.
        let own = format!("lk={good}");
        assert_eq!(
            call(
                layer().cookie("lk"),
                &[("cookie", "theme=dark"), ("cookie", &own)]
            )
            .await
            .4,
            "hello alice"
        );
        // No cookie configured: the cookie is not read.
        assert_eq!(
            call(layer(), &[("cookie", &cookie)]).await,
            refusal(
                401,
                Some(r#"Bearer realm="latchkey""#),
                r#"{"error":"missing_token","message":"Send a token: Authorization: Bearer <token>.","status":401}"#
            )
        );
    }

    #[tokio::test]
    async fn no_token_is_401_with_a_bearer_challenge_and_json() {
        assert_eq!(
            call(layer(), &[]).await,
            refusal(
                401,
                Some(r#"Bearer realm="latchkey""#),
                r#"{"error":"missing_token","message":"Send a token: Authorization: Bearer <token>.","status":401}"#
            )
        );
    }

    #[tokio::test]
    async fn bad_and_expired_tokens_are_401_invalid_token() {
        let expired = format!("Bearer {}", token(&[], -60));
        assert_eq!(
            call(layer(), &[("authorization", &expired)]).await,
            refusal(
                401,
                Some(r#"Bearer realm="latchkey", error="invalid_token""#),
                r#"{"error":"invalid_token","message":"The token has expired; request a new one.","status":401}"#
            )
        );
        let mut forged = token(&[], 60);
        forged.push('A');
        let forged = format!("Bearer {forged}");
        assert_eq!(
            call(layer(), &[("authorization", &forged)]).await,
            refusal(
                401,
                Some(r#"Bearer realm="latchkey", error="invalid_token""#),
                r#"{"error":"invalid_token","message":"The token's signature is not valid.","status":401}"#
            )
        );
        assert_eq!(
            call(layer(), &[("authorization", "Bearer not-a-token")]).await,
            refusal(
                401,
                Some(r#"Bearer realm="latchkey", error="invalid_token""#),
                r#"{"error":"invalid_token","message":"The token is malformed.","status":401}"#
            )
        );
    }

    #[tokio::test]
    async fn a_missing_group_is_403_and_present_ones_pass_without_regard_to_case() {
        let staff = format!("Bearer {}", token(&["staff"], 60));
        assert_eq!(
            call(layer().group("admins"), &[("authorization", &staff)]).await,
            refusal(
                403,
                None,
                r#"{"error":"forbidden","message":"This needs membership of the group \"admins\".","status":403}"#
            )
        );
        let both = format!("Bearer {}", token(&["Admins", "Größe"], 60));
        let layer = layer().group("admins").group("GRÖẞE");
        assert_eq!(
            call(layer, &[("authorization", &both)]).await,
            (200, None, None, None, "hello alice".into())
        );
    }

    #[cfg(feature = "actix")]
    #[tokio::test]
    async fn the_layer_answers_exactly_as_the_actix_middleware() {
        use crate::VerifyError;
        use actix_web::ResponseError;
        let cases = [
            Rejection::Token(VerifyError::Missing),
            Rejection::Token(VerifyError::Expired),
            Rejection::Token(VerifyError::UnknownKey),
            Rejection::MissingGroup("admins".into()),
        ];
        for rejection in cases {
            let ours: Response<String> = rejection_response(&rejection);
            let theirs = rejection.error_response();
            assert_eq!(ours.status().as_u16(), theirs.status().as_u16());
            for name in ["www-authenticate", "cache-control", "content-type"] {
                assert_eq!(
                    ours.headers().get(name).map(|v| v.as_bytes()),
                    theirs.headers().get(name).map(|v| v.as_bytes()),
                    "{name} of {rejection:?}"
                );
            }
            let body = actix_web::body::to_bytes(theirs.into_body()).await.unwrap();
            assert_eq!(ours.body().as_bytes(), &body[..]);
        }
    }

    #[test]
    fn several_cookie_headers_are_joined_and_one_is_borrowed() {
        let mut headers = HeaderMap::new();
        assert_eq!(cookie_header(&headers), None);
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        assert_eq!(cookie_header(&headers), Some(Cow::Borrowed(&b"a=1"[..])));
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert_eq!(
            cookie_header(&headers),
            Some(Cow::Owned(b"a=1; b=2; c=3".to_vec()))
        );
    }
}
