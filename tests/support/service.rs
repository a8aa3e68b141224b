//! Latchkey in-process for tests: a configuration pointed at a test slapd, the real app, and
//! small helpers to send a request and read the whole answer.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey::config::Config;
use latchkey::http::{self, AppState};
use latchkey_verify::{Claims, Verifier};

use super::users::User;

/// The token secret every test configuration uses.
pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";
/// Its key id.
pub const TEST_KID: &str = "test-1";
/// The issuer every test configuration uses.
pub const TEST_ISSUER: &str = "latchkey-test";

/// The app as the tests hold it: a service taking requests and answering with a body; one
/// name for the bound actix's test functions need.
pub trait TestApp:
    Service<actix_http::Request, Response = ServiceResponse<Self::Body>, Error = actix_web::Error>
{
    type Body: MessageBody;
}

impl<S, B> TestApp for S
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Body = B;
}

/// The real app for `config`, ready to take requests.
pub async fn app(config: &Config) -> impl TestApp {
    let state = Arc::new(AppState::new(config, 1).expect("the app state"));
    test::init_service(http::app(state)).await
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
}

impl Answer {
    /// A header's value, or "" when it is missing.
    pub fn header(&self, name: &str) -> &str {
        header_value(&self.headers, name)
    }

    /// Assert the status, showing the body when it is another.
    pub fn assert_status(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
    }

    /// The claims of the token in a 200 answer; panics with the body on any other status.
    pub fn issued(&self) -> Claims {
        self.assert_status(StatusCode::OK);
        claims(self.token())
    }

    /// The token in a 200 answer.
    pub fn token(&self) -> &str {
        self.body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {:?} {}", self.status, self.body))
    }
}

/// The value of header `name` in `headers`, or "" when it is missing.
pub fn header_value<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().expect("a visible header value"))
        .unwrap_or("")
}

/// Send `req` and read the answer; the body must be JSON.
pub async fn send(app: &impl TestApp, req: TestRequest) -> Answer {
    let response = test::call_service(app, req.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = test::read_body(response).await;
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "the body of a {status} answer is not JSON ({e}): {:?}",
            String::from_utf8_lossy(&bytes)
        )
    });
    Answer {
        status,
        headers,
        body,
    }
}

/// A whole answer whose body may be empty or not JSON (a 204, `/auth/verify`'s 200).
#[derive(Debug)]
pub struct RawAnswer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl RawAnswer {
    /// A header's value, or "" when it is missing.
    pub fn header(&self, name: &str) -> &str {
        header_value(&self.headers, name)
    }
}

/// Send `req` and read the answer, whatever its body.
pub async fn send_raw(app: &impl TestApp, req: TestRequest) -> RawAnswer {
    let response = test::call_service(app, req.to_request()).await;
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = test::read_body(response).await;
    RawAnswer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).expect("a UTF-8 body"),
    }
}

/// `POST uri` with `Authorization: Bearer <token>`.
pub fn bearer_post(uri: &str, token: &str) -> TestRequest {
    TestRequest::post()
        .uri(uri)
        .insert_header(("Authorization", format!("Bearer {token}")))
}

/// `GET /auth/verify` with `Authorization: Bearer <token>`.
pub fn verify_request(token: &str) -> TestRequest {
    TestRequest::get()
        .uri("/auth/verify")
        .insert_header(("Authorization", format!("Bearer {token}")))
}

/// The body of a 401 for a revoked token.
pub fn token_revoked_body() -> serde_json::Value {
    serde_json::json!({
        "error": "token_revoked",
        "message": "The token has been revoked; sign in again.",
        "status": 401
    })
}

/// `Basic base64(login:password)`.
pub fn basic(login: &str, password: &str) -> String {
    basic_raw(format!("{login}:{password}").as_bytes())
}

/// `Basic base64(raw)`, for bytes that are not `login:password` text.
pub fn basic_raw(raw: &[u8]) -> String {
    format!("Basic {}", STANDARD.encode(raw))
}

/// `POST /auth/request-token?<query>` with `user`'s login and password.
pub fn login_as(user: &User, query: &str) -> TestRequest {
    token_request(user.login, user.password, query)
}

/// `POST /auth/request-token?<query>` with Basic credentials.
pub fn token_request(login: &str, password: &str, query: &str) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/auth/request-token?{query}"))
        .insert_header(("Authorization", basic(login, password)))
}

/// A verifier holding the test key, as a service guarding its routes would configure it.
pub fn verifier() -> Verifier {
    let key = latchkey_verify::VerifyingKey::hmac(
        TEST_KID,
        latchkey_verify::Algorithm::HS256,
        latchkey_verify::Secret::new(TEST_SECRET.as_bytes().to_vec()).expect("a long secret"),
    )
    .expect("an HMAC key");
    Verifier::builder().key(&key).issuer(TEST_ISSUER).build()
}

/// Verify `token` with the test key.
pub fn claims(token: &str) -> Claims {
    verifier()
        .verify(token)
        .unwrap_or_else(|e| panic!("the token does not verify: {e}"))
}

/// The body every 401 for bad credentials has.
pub fn invalid_credentials_body() -> serde_json::Value {
    serde_json::json!({
        "error": "invalid_credentials",
        "message": "The login or password is wrong.",
        "status": 401
    })
}

/// The body of a 400 for a bad parameter.
pub fn invalid_parameter(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": "invalid_parameter", "message": message, "status": 400 })
}
