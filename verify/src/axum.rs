//! axum integration (feature `axum`, axum 0.8): handlers behind
//! [`RequireTokenLayer`](crate::tower::RequireTokenLayer) take the verified [`Claims`] as an
//! argument, and a [`Rejection`] is an axum response.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{routing::get, Router};
//! use latchkey_verify::tower::RequireTokenLayer;
//! use latchkey_verify::{Algorithm, Claims, Secret, Verifier, VerifyingKey};
//!
//! async fn hello(claims: Claims) -> String {
//!     format!("Hello, {}!", claims.sub)
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = VerifyingKey::hmac("2026-11", Algorithm::HS256, Secret::new(vec![7; 32])?)?;
//! let verifier = Arc::new(Verifier::builder().key(&key).issuer("latchkey").build());
//! let app: Router = Router::new()
//!     .route("/api/hello", get(hello))
//!     .route_layer(RequireTokenLayer::new(verifier).group("staff"))
//!     .route("/", get(|| async { "public" }));
//! # let _ = app;
//! # Ok(()) }
//! ```
//!
//! The extractor does not verify anything itself: it hands over the claims the layer verified.
//! A handler that takes `Claims` on a route without the layer refuses every request with 401
//! `missing_token`, as the actix extractor does. So a route that forgot its layer is closed, never
//! open, and its first test shows it. (Verifying in the extractor would need the verifier in the
//! router's state, and would let a route guard itself differently from its neighbours.)

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use crate::tower::rejection_response;
use crate::{Claims, Rejection, VerifyError};

/// The claims [`RequireTokenLayer`](crate::tower::RequireTokenLayer) verified for this request;
/// refused with 401 `missing_token` when no layer put any there.
impl<S: Send + Sync> FromRequestParts<S> for Claims {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Claims>()
            .cloned()
            .ok_or(Rejection::Token(VerifyError::Missing))
    }
}

/// The answer the layer gives ([`rejection_response`]): for handlers that refuse in the same
/// words, e.g. `return Err(Rejection::MissingGroup("admins".into()))`.
impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        rejection_response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tower::RequireTokenLayer;
    use crate::{Algorithm, Secret, Signer, SigningKey, Verifier, VerifyingKey};
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use http::Request;
    use tower::ServiceExt;

    fn signing_key() -> SigningKey {
        SigningKey::hmac("k1", Algorithm::HS256, Secret::new(vec![3; 32]).unwrap()).unwrap()
    }

    fn key() -> VerifyingKey {
        signing_key().verifying_key()
    }

    fn bearer(groups: &[&str]) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = Claims::new("latchkey", "alice", now, now + 60);
        claims.groups = groups.iter().map(|g| g.to_string()).collect();
        let token = Signer::new(&signing_key()).sign(&claims).unwrap();
        format!("Bearer {token}")
    }

    async fn hello(claims: Claims) -> String {
        format!("hello {}", claims.sub)
    }

    fn app() -> Router {
        let verifier = Verifier::builder().key(&key()).issuer("latchkey").build();
        Router::new()
            .route("/hello", get(hello))
            .route_layer(RequireTokenLayer::new(verifier).group("staff"))
            .route("/unguarded", get(hello))
            .route("/open", get(|| async { "open" }))
    }

    async fn get_text(uri: &str, authorization: Option<&str>) -> (u16, String) {
        let mut request = Request::builder().uri(uri);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_handler_behind_the_layer_gets_the_claims() {
        assert_eq!(
            get_text("/hello", Some(&bearer(&["staff"]))).await,
            (200, "hello alice".into())
        );
        assert_eq!(get_text("/open", None).await, (200, "open".into()));
        assert_eq!(
            get_text("/hello", Some(&bearer(&["guests"]))).await,
            (
                403,
                r#"{"error":"forbidden","message":"This needs membership of the group \"staff\".","status":403}"#
                    .into()
            )
        );
    }

    #[tokio::test]
    async fn claims_without_the_layer_are_refused_even_with_a_valid_token() {
        assert_eq!(
            get_text("/unguarded", Some(&bearer(&["staff"]))).await,
            (
                401,
                r#"{"error":"missing_token","message":"Send a token: Authorization: Bearer <token>.","status":401}"#
                    .into()
            )
        );
    }
}
