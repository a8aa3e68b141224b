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

use super::{SERVICE_DN, SERVICE_PASSWORD};

/// The token secret every test configuration uses.
pub const TEST_SECRET: &str = "integration-test-secret-0123456789abcdef";
/// Its key id.
pub const TEST_KID: &str = "test-1";
/// The issuer every test configuration uses.
pub const TEST_ISSUER: &str = "latchkey-test";

/// Lines to add to each table of the standard test configuration.
#[derive(Debug, Default, Clone)]
pub struct Extra<'a> {
    pub tokens: &'a str,
    pub directory: &'a str,
    pub users: &'a str,
    /// Whole tables added at the end (`[directory.groups]`, `[claims]`, `[access]`, ...).
    pub sections: &'a str,
    /// Leave the service account out.
    pub anonymous_only: bool,
}

/// The standard test configuration for a directory at `url`, with `extra` lines added.
pub fn config_toml(url: &str, extra: &Extra<'_>) -> String {
    let account = if extra.anonymous_only {
        String::new()
    } else {
        format!("bind_dn = \"{SERVICE_DN}\"\nbind_password = \"{SERVICE_PASSWORD}\"\n")
    };
    format!(
        r#"
[tokens]
issuer = "{TEST_ISSUER}"
{tokens}
[tokens.keys.{TEST_KID}]
secret = "{TEST_SECRET}"

[directory]
urls = ["{url}"]
connect_timeout = "2s"
operation_timeout = "3s"
{account}{directory}
[directory.pool]
search_size = 2
bind_size = 2
wait_timeout = "2s"

[directory.users]
base_dn = "dc=example,dc=org"
filter = "(objectClass=inetOrgPerson)"
search_attributes = ["uid", "mail"]
{users}
{sections}
"#,
        tokens = extra.tokens,
        directory = extra.directory,
        users = extra.users,
        sections = extra.sections,
    )
}

/// Load `toml` the way the service does: from a file, through validation.
pub fn load_config(toml: &str) -> Config {
    let dir = tempfile::tempdir().expect("a temp dir for the config");
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, toml).expect("write the test config");
    Config::load(Some(&path)).unwrap_or_else(|e| panic!("the test config is refused: {e}"))
}

/// The real app for `config`, ready to take requests.
pub async fn app(
    config: &Config,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl MessageBody>,
    Error = actix_web::Error,
> {
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
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a visible header value"))
            .unwrap_or("")
    }

    /// The token in a 200 answer.
    pub fn token(&self) -> &str {
        self.body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {:?} {}", self.status, self.body))
    }
}

/// Send `req` and read the answer; the body must be JSON.
pub async fn send<S, B>(app: &S, req: TestRequest) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
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

/// `Basic base64(login:password)`.
pub fn basic(login: &str, password: &str) -> String {
    basic_raw(format!("{login}:{password}").as_bytes())
}

/// `Basic base64(raw)`, for bytes that are not `login:password` text.
pub fn basic_raw(raw: &[u8]) -> String {
    format!("Basic {}", STANDARD.encode(raw))
}

/// `POST /auth/request-token?<query>` with Basic credentials.
pub fn token_request(login: &str, password: &str, query: &str) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/auth/request-token?{query}"))
        .insert_header(("Authorization", basic(login, password)))
}

/// A verifier holding the test key, as a service guarding its routes would configure it.
pub fn verifier() -> Verifier {
    let key = latchkey_verify::HmacKey::new(
        TEST_KID,
        latchkey_verify::Secret::new(TEST_SECRET.as_bytes().to_vec()).expect("a long secret"),
    );
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
