//! `openapi.yaml` tells the truth: real answers for every documented status of every endpoint
//! are checked against it (documented status, required headers and their allowed values, the
//! JSON body against its schema, no body where none is documented).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use actix_web::http::header::HeaderMap;
use actix_web::test::{self, TestRequest};
use latchkey_verify::Algorithm;
use serde_json::Value;
use support::config::{Raw, TestConfig};
use support::keys::write_key_pair;
use support::portal::{FormClient, Page};
use support::service::{basic, login_as, token_request, TestApp};
use support::slapd::Slapd;
use support::users::{ALICE, BOB};

struct Spec(Value);

impl Spec {
    fn load() -> Spec {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
        let text = std::fs::read_to_string(&path).expect("read openapi.yaml");
        Spec(serde_norway::from_str(&text).unwrap_or_else(|e| panic!("openapi.yaml: {e}")))
    }

    /// Follow `$ref`s to the object they name.
    fn resolve<'a>(&'a self, mut v: &'a Value) -> &'a Value {
        while let Some(reference) = v.get("$ref").and_then(Value::as_str) {
            let pointer = reference.trim_start_matches('#');
            v = self
                .0
                .pointer(pointer)
                .unwrap_or_else(|| panic!("openapi.yaml: dangling $ref {reference}"));
        }
        v
    }

    /// Check one real answer against the operation `method path`.
    /// Sends each request of `cases` to `app`, asserts its status and checks the answer.
    async fn check_cases(&self, app: &impl TestApp, cases: Vec<(&str, &str, u16, TestRequest)>) {
        for (method, path, want, req) in cases {
            let response = test::call_service(app, req.to_request()).await;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = test::read_body(response).await;
            assert_eq!(
                status,
                want,
                "{method} {path}: {:?}",
                String::from_utf8_lossy(&body)
            );
            self.check(method, path, status, &headers, &body);
        }
    }

    fn check(&self, method: &str, path: &str, status: u16, headers: &HeaderMap, body: &[u8]) {
        let at = format!("{method} {path} -> {status}");
        let path_item = self
            .0
            .pointer(&format!("/paths/{}", path.replace('/', "~1")))
            .unwrap_or_else(|| panic!("{at}: the path is not in openapi.yaml"));
        // A 405 answers a method the path does not serve: it is documented on the methods it does.
        let operation = path_item.get(method).or_else(|| {
            (status == 405).then(|| {
                path_item.as_object().and_then(|ops| {
                    ops.values()
                        .find(|op| op.pointer("/responses/405").is_some())
                })
            })?
        });
        let operation =
            operation.unwrap_or_else(|| panic!("{at}: the operation is not in openapi.yaml"));
        let response = self.resolve(
            operation
                .pointer(&format!("/responses/{status}"))
                .unwrap_or_else(|| panic!("{at}: the status is not documented")),
        );
        for (name, header) in response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let header = self.resolve(header);
            let actual = headers
                .get(name.as_str())
                .map(|v| v.to_str().unwrap_or("<bytes>"));
            match actual {
                None if header.get("required") == Some(&Value::Bool(true)) => {
                    panic!("{at}: required header {name} is missing")
                }
                None => {}
                Some(value) => {
                    if let Some(schema) = header.get("schema") {
                        let value = match self.resolve(schema).get("type").and_then(Value::as_str) {
                            Some("integer") => {
                                value.parse::<i64>().map(Value::from).unwrap_or_else(|_| {
                                    panic!("{at}: {name}: {value:?} is not an integer")
                                })
                            }
                            _ => Value::from(value),
                        };
                        self.validate(schema, &value, &format!("{at}: header {name}"));
                    }
                }
            }
        }
        // A response documented with several media types (the sign-out's 403: a page for the
        // form, JSON for a program) is checked as the one the answer says it is.
        let answered = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .unwrap_or("")
            .trim()
            .to_owned();
        let json_schema =
            match response.pointer(&format!("/content/{}", answered.replace('/', "~1"))) {
                Some(_) if answered != "application/json" => None,
                _ => response.pointer("/content/application~1json/schema"),
            };
        match json_schema {
            Some(schema) => {
                let content_type = headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap_or(""));
                assert_eq!(content_type, Some("application/json"), "{at}");
                let json: Value = serde_json::from_slice(body)
                    .unwrap_or_else(|e| panic!("{at}: the body is not JSON: {e}"));
                self.validate(schema, &json, &at);
                // Error bodies repeat their status (the readiness report has its own).
                if status >= 400 && json.get("error").is_some() {
                    assert_eq!(
                        json.get("status"),
                        Some(&Value::from(status)),
                        "{at}: body status"
                    );
                }
            }
            None => match response
                .get("content")
                .and_then(Value::as_object)
                .and_then(|c| {
                    c.keys()
                        .find(|k| **k == answered)
                        .or_else(|| c.keys().next())
                }) {
                // Another media type: the answer must say it is that.
                Some(media) => {
                    let content_type = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    assert!(
                        content_type.starts_with(media.as_str()),
                        "{at}: Content-Type {content_type:?} is not {media}"
                    );
                }
                None => assert!(body.is_empty(), "{at}: undocumented body {body:?}"),
            },
        }
    }

    /// The subset of JSON Schema that openapi.yaml uses.
    fn validate(&self, schema: &Value, v: &Value, at: &str) {
        let schema = self.resolve(schema);
        if let Some(choices) = schema.get("oneOf").and_then(Value::as_array) {
            // The alternatives openapi.yaml uses differ by JSON type.
            let kind = match v {
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Array(_) => "array",
                Value::Object(_) => "object",
                Value::Number(_) => "integer",
                Value::Null => "null",
            };
            let choice = choices
                .iter()
                .find(|c| self.resolve(c).get("type").and_then(Value::as_str) == Some(kind))
                .unwrap_or_else(|| panic!("{at}: {v} matches none of {choices:?}"));
            return self.validate(choice, v, at);
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
            assert!(allowed.contains(v), "{at}: {v} is not one of {allowed:?}");
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("object") => {
                let object = v
                    .as_object()
                    .unwrap_or_else(|| panic!("{at}: {v} is not an object"));
                let properties = schema.get("properties").and_then(Value::as_object);
                for required in schema
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = required.as_str().unwrap_or_default();
                    assert!(
                        object.contains_key(name),
                        "{at}: required {name} is missing from {v}"
                    );
                }
                for (name, value) in object {
                    match (
                        properties.and_then(|p| p.get(name)),
                        schema.get("additionalProperties"),
                    ) {
                        (Some(property), _) => {
                            self.validate(property, value, &format!("{at}.{name}"))
                        }
                        (None, Some(Value::Bool(false))) => {
                            panic!("{at}: {name} is not documented")
                        }
                        (None, Some(extra)) if extra.is_object() => {
                            self.validate(extra, value, &format!("{at}.{name}"))
                        }
                        (None, _) => {}
                    }
                }
            }
            Some("array") => {
                let items = v
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: {v} is not an array"));
                if let Some(item_schema) = schema.get("items") {
                    for item in items {
                        self.validate(item_schema, item, at);
                    }
                }
            }
            Some("string") => {
                let text = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{at}: {v} is not a string"));
                if schema.get("format").and_then(Value::as_str) == Some("date-time") {
                    assert!(
                        chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                        "{at}: {text} is not RFC 3339"
                    );
                }
            }
            Some("integer") => {
                let n = v
                    .as_i64()
                    .unwrap_or_else(|| panic!("{at}: {v} is not an integer"));
                if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
                    assert!(n >= min, "{at}: {n} < {min}");
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
                    assert!(n <= max, "{at}: {n} > {max}");
                }
            }
            _ => {}
        }
    }
}

#[actix_web::test]
async fn every_status_of_every_endpoint_matches_openapi_yaml() {
    let spec = Spec::load();
    let mut slapd = Slapd::start();
    let broken = TestConfig::new(&slapd)
        .users("username_attribute", "employeeNumber")
        .app()
        .await;
    let app = TestConfig::new(&slapd).app().await;

    let token = {
        let response = test::call_service(&app, login_as(&ALICE, "").to_request()).await;
        let body: Value = test::read_body_json(response).await;
        body["token"].as_str().expect("a token").to_owned()
    };
    let bearer = ("Authorization", format!("Bearer {token}"));
    let rt = "/auth/request-token";

    let cases: Vec<(&str, &str, u16, TestRequest)> = vec![
        ("post", rt, 200, login_as(&ALICE, "token_duration=60")),
        (
            "get",
            rt,
            200,
            TestRequest::get()
                .uri(rt)
                .insert_header(("Authorization", basic(BOB.login, BOB.password))),
        ),
        (
            "post",
            rt,
            400,
            token_request("alice", "x", "token_duration=0"),
        ),
        (
            "post",
            rt,
            400,
            TestRequest::post()
                .uri(rt)
                .insert_header(("Authorization", "Basic %%%")),
        ),
        ("post", rt, 401, TestRequest::post().uri(rt)),
        ("post", rt, 401, token_request("alice", "wrong", "")),
        ("put", rt, 405, TestRequest::put().uri(rt)),
        (
            "get",
            "/auth/verify",
            200,
            TestRequest::get()
                .uri("/auth/verify")
                .insert_header(bearer.clone()),
        ),
        (
            "post",
            "/auth/verify",
            200,
            TestRequest::post()
                .uri("/auth/verify")
                .insert_header(bearer.clone()),
        ),
        (
            "get",
            "/auth/verify",
            400,
            TestRequest::get()
                .uri("/auth/verify?group=")
                .insert_header(bearer.clone()),
        ),
        (
            "get",
            "/auth/verify",
            401,
            TestRequest::get().uri("/auth/verify"),
        ),
        (
            "get",
            "/auth/verify",
            401,
            TestRequest::get()
                .uri("/auth/verify")
                .insert_header(("Authorization", "Bearer a.b.c")),
        ),
        (
            "get",
            "/auth/verify",
            403,
            TestRequest::get()
                .uri("/auth/verify?group=admins")
                .insert_header(bearer.clone()),
        ),
        (
            "get",
            "/auth/token-info",
            200,
            TestRequest::get()
                .uri("/auth/token-info")
                .insert_header(bearer.clone()),
        ),
        (
            "get",
            "/auth/token-info",
            401,
            TestRequest::get().uri("/auth/token-info"),
        ),
        (
            "post",
            "/auth/token-info",
            405,
            TestRequest::post().uri("/auth/token-info"),
        ),
        ("get", "/healthz", 200, TestRequest::get().uri("/healthz")),
        ("get", "/readyz", 200, TestRequest::get().uri("/readyz")),
        ("get", "/metrics", 200, TestRequest::get().uri("/metrics")),
        ("post", "/healthz", 405, TestRequest::post().uri("/healthz")),
        (
            "delete",
            "/readyz",
            405,
            TestRequest::delete().uri("/readyz"),
        ),
        ("put", "/metrics", 405, TestRequest::put().uri("/metrics")),
        (
            "get",
            "/.well-known/jwks.json",
            404,
            TestRequest::get().uri("/.well-known/jwks.json"),
        ),
        (
            "post",
            "/.well-known/jwks.json",
            405,
            TestRequest::post().uri("/.well-known/jwks.json"),
        ),
        (
            "get",
            "/.well-known/latchkey",
            200,
            TestRequest::get().uri("/.well-known/latchkey"),
        ),
        (
            "put",
            "/.well-known/latchkey",
            405,
            TestRequest::put().uri("/.well-known/latchkey"),
        ),
        (
            "post",
            rt,
            431,
            token_request("alice", "x", "").insert_header(("X-Padding", "a".repeat(20_000))),
        ),
        (
            "post",
            rt,
            413,
            token_request("alice", "x", "").insert_header(("Content-Length", "5000")),
        ),
    ];
    spec.check_cases(&app, cases).await;

    // 403 at request-token: the password is right, the groups are not; and a token with
    // extra claims, as token-info shows it.
    let policed = TestConfig::new(&slapd)
        .member_groups()
        .claim("surname", "sn")
        .claim(
            "classes",
            Raw(r#"{ attribute = "objectClass", multi = true }"#),
        )
        .flag("admin", "admins")
        .access("deny", "contractors")
        .app()
        .await;
    let response = test::call_service(&policed, login_as(&BOB, "").to_request()).await;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = test::read_body(response).await;
    assert_eq!(status, 403);
    spec.check("post", rt, status, &headers, &body);
    let response = test::call_service(&policed, login_as(&ALICE, "").to_request()).await;
    let rich: Value = test::read_body_json(response).await;
    let rich = rich["token"].as_str().expect("a token").to_owned();
    let response = test::call_service(
        &policed,
        TestRequest::get()
            .uri("/auth/token-info")
            .insert_header(("Authorization", format!("Bearer {rich}")))
            .to_request(),
    )
    .await;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = test::read_body(response).await;
    assert_eq!(status, 200);
    let shown: Value = serde_json::from_slice(&body).expect("JSON claims");
    assert_eq!(shown["admin"], Value::Bool(true));
    assert_eq!(shown["surname"], "Liddell");
    assert_eq!(
        shown["groups"],
        serde_json::json!(["admins", "backend", "cycle-a", "staff"])
    );
    spec.check("get", "/auth/token-info", status, &headers, &body);

    // The key set and the discovery document of key pairs, with the sign-in pages on.
    let keys = tempfile::tempdir().unwrap();
    let (_, file) = write_key_pair(keys.path(), "ec-1", Algorithm::ES256);
    let paired = with_portal(TestConfig::new(&slapd).key_pair("ES256", "ec-1", &file))
        .tokens("audience", "wiki")
        .app()
        .await;
    for path in ["/.well-known/jwks.json", "/.well-known/latchkey"] {
        let response = test::call_service(&paired, TestRequest::get().uri(path).to_request()).await;
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let body = test::read_body(response).await;
        assert_eq!(status, 200, "{path}");
        spec.check("get", path, status, &headers, &body);
    }

    // Refresh, sign-out and revocation.
    let sessions = TestConfig::new(&slapd)
        .member_groups()
        .set("admin", "require", "admins")
        .app()
        .await;
    let token_of = |user| {
        let app = &sessions;
        async move {
            let response = test::call_service(app, login_as(user, "").to_request()).await;
            let body: Value = test::read_body_json(response).await;
            body["token"].as_str().expect("a token").to_owned()
        }
    };
    let (admin, bob, doomed) = (
        token_of(&ALICE).await,
        token_of(&BOB).await,
        token_of(&BOB).await,
    );
    let now = chrono::Utc::now().timestamp();
    let mut old = latchkey_verify::Claims::new(support::service::TEST_ISSUER, "bob", now, now + 60);
    old.jti = "0123456789abcdef0123456789abcdef".into();
    let key = latchkey_verify::SigningKey::hmac(
        support::service::TEST_KID,
        latchkey_verify::Algorithm::HS256,
        latchkey_verify::Secret::new(support::service::TEST_SECRET.as_bytes().to_vec()).unwrap(),
    )
    .unwrap();
    let without_entry = latchkey_verify::Signer::new(&key).sign(&old).unwrap();
    let auth = |token: &str| ("Authorization", format!("Bearer {token}"));
    let json = ("Content-Type", "application/json");
    let (refresh, logout, revoke) = ("/auth/refresh", "/auth/logout", "/auth/revoke");
    let cases: Vec<(&str, &str, u16, TestRequest)> = vec![
        (
            "post",
            refresh,
            200,
            TestRequest::post().uri(refresh).insert_header(auth(&bob)),
        ),
        (
            "post",
            refresh,
            400,
            TestRequest::post()
                .uri("/auth/refresh?token_duration=0")
                .insert_header(auth(&bob)),
        ),
        ("post", refresh, 401, TestRequest::post().uri(refresh)),
        (
            "post",
            refresh,
            401,
            TestRequest::post()
                .uri(refresh)
                .insert_header(auth(&without_entry)),
        ),
        ("get", refresh, 405, TestRequest::get().uri(refresh)),
        (
            "post",
            revoke,
            403,
            TestRequest::post()
                .uri(revoke)
                .insert_header(auth(&bob))
                .insert_header(json)
                .set_payload(r#"{"user":"alice"}"#),
        ),
        (
            "post",
            revoke,
            400,
            TestRequest::post()
                .uri(revoke)
                .insert_header(auth(&admin))
                .insert_header(json)
                .set_payload("{}"),
        ),
        ("post", revoke, 401, TestRequest::post().uri(revoke)),
        ("get", revoke, 405, TestRequest::get().uri(revoke)),
        (
            "post",
            logout,
            204,
            TestRequest::post().uri(logout).insert_header(auth(&doomed)),
        ),
        ("post", logout, 401, TestRequest::post().uri(logout)),
        ("get", logout, 405, TestRequest::get().uri(logout)),
        (
            "get",
            "/auth/token-info",
            401,
            TestRequest::get()
                .uri("/auth/token-info")
                .insert_header(auth(&doomed)),
        ),
        (
            "post",
            refresh,
            401,
            TestRequest::post()
                .uri(refresh)
                .insert_header(auth(&doomed)),
        ),
        (
            "post",
            revoke,
            204,
            TestRequest::post()
                .uri(revoke)
                .insert_header(auth(&admin))
                .insert_header(json)
                .set_payload(r#"{"user":"bob"}"#),
        ),
    ];
    spec.check_cases(&sessions, cases).await;
    let off = test::call_service(
        &app,
        TestRequest::post()
            .uri(revoke)
            .insert_header(auth(&token))
            .insert_header(json)
            .set_payload(r#"{"user":"bob"}"#)
            .to_request(),
    )
    .await;
    let (status, headers) = (off.status().as_u16(), off.headers().clone());
    let body = test::read_body(off).await;
    assert_eq!(status, 404);
    spec.check("post", revoke, status, &headers, &body);

    // 429: a login banned after its failures.
    let strict = TestConfig::new(&slapd)
        .brute_force("max_failures_per_login", 1)
        .brute_force("min_failure_time", "0s")
        .app()
        .await;
    let _ = test::call_service(&strict, token_request("bob", "wrong", "").to_request()).await;
    let response =
        test::call_service(&strict, token_request("bob", "wrong", "").to_request()).await;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = test::read_body(response).await;
    assert_eq!(status, 429);
    spec.check("post", rt, status, &headers, &body);

    // 500: the directory and the configuration disagree.
    let response = test::call_service(&broken, login_as(&ALICE, "").to_request()).await;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = test::read_body(response).await;
    assert_eq!(status, 500);
    spec.check("post", rt, status, &headers, &body);

    // 503: the directory is down.
    slapd.stop();
    let response = test::call_service(&app, login_as(&ALICE, "").to_request()).await;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = test::read_body(response).await;
    assert_eq!(status, 503);
    spec.check("post", rt, status, &headers, &body);

    std::thread::sleep(std::time::Duration::from_millis(1100)); // past /readyz's answer cache
    let response = test::call_service(&app, TestRequest::get().uri("/readyz").to_request()).await;
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let body = test::read_body(response).await;
    assert_eq!(status, 503);
    spec.check("get", "/readyz", status, &headers, &body);
}

/// The sign-in pages on `auth.example.org`, for `config`.
fn with_portal(config: TestConfig) -> TestConfig {
    config
        .portal("url", "https://auth.example.org")
        .portal("cookie_domain", "example.org")
}

/// Check a page of the portal against the document.
fn check_page(spec: &Spec, method: &str, path: &str, page: &Page, status: u16) {
    assert_eq!(
        page.status.as_u16(),
        status,
        "{method} {path}: {}",
        page.body
    );
    spec.check(method, path, status, &page.headers, page.body.as_bytes());
}

#[actix_web::test]
async fn every_status_of_the_sign_in_pages_matches_openapi_yaml() {
    let spec = Spec::load();
    let slapd = Slapd::start();
    let app = with_portal(TestConfig::new(&slapd)).app().await;
    let (login, logout) = ("/auth/login", "/auth/logout");
    let mut browser = FormClient::new();

    let form = browser.get(&app, login).await;
    check_page(&spec, "get", login, &form, 200);
    let csrf = form.hidden("csrf");
    let fields = |password: &'static str| {
        [
            ("username", ALICE.login),
            ("password", password),
            ("csrf", ""),
        ]
    };
    let mut wrong = fields("wrong");
    wrong[2].1 = &csrf;
    let page = browser.post(&app, login, &wrong).await;
    check_page(&spec, "post", login, &page, 401);
    let page = browser.post(&app, login, &fields(ALICE.password)).await;
    check_page(&spec, "post", login, &page, 403);
    let broken = TestRequest::post().uri(login).set_payload("csrf=a&csrf=b");
    let page = browser.send(&app, broken).await;
    check_page(&spec, "post", login, &page, 400);
    let mut right = fields(ALICE.password);
    right[2].1 = &csrf;
    let page = browser.post(&app, login, &right).await;
    check_page(&spec, "post", login, &page, 303);
    let signed_in = browser.get(&app, login).await;
    check_page(&spec, "get", login, &signed_in, 200);

    let confirm = browser.get(&app, logout).await;
    check_page(&spec, "get", logout, &confirm, 200);
    let page = browser.post(&app, logout, &[("csrf", "1.2")]).await;
    check_page(&spec, "post", logout, &page, 403);
    let page = browser.post(&app, logout, &[("csrf", &csrf)]).await;
    check_page(&spec, "post", logout, &page, 200);
    let page = browser
        .post(
            &app,
            logout,
            &[("csrf", &csrf), ("rd", "https://app.example.org/")],
        )
        .await;
    check_page(&spec, "post", logout, &page, 303);

    let css = browser.get(&app, "/auth/portal.css").await;
    check_page(&spec, "get", "/auth/portal.css", &css, 200);
    for (method, path) in [
        ("put", login),
        ("delete", logout),
        ("post", "/auth/portal.css"),
    ] {
        let req = TestRequest::default()
            .method(method.to_uppercase().parse().expect("a method"))
            .uri(path);
        let page = browser.send(&app, req).await;
        check_page(&spec, method, path, &page, 405);
    }

    // 429, 500 and 503 from configurations that give them.
    let strict = with_portal(TestConfig::new(&slapd))
        .brute_force("max_failures_per_login", 1)
        .brute_force("min_failure_time", "0s")
        .app()
        .await;
    let mut bob = [("username", BOB.login), ("password", "wrong"), ("csrf", "")];
    let form = browser.get(&strict, login).await;
    let csrf = form.hidden("csrf");
    bob[2].1 = &csrf;
    browser.post(&strict, login, &bob).await;
    let page = browser.post(&strict, login, &bob).await;
    check_page(&spec, "post", login, &page, 429);
    let misconfigured = with_portal(TestConfig::new(&slapd))
        .users("username_attribute", "employeeNumber")
        .app()
        .await;
    let page = browser.post(&misconfigured, login, &right).await;
    check_page(&spec, "post", login, &page, 500);
    let down = with_portal(TestConfig::for_url("ldap://127.0.0.1:1"))
        .app()
        .await;
    let page = browser.post(&down, login, &right).await;
    check_page(&spec, "post", login, &page, 503);
}

#[test]
fn every_error_code_the_service_can_answer_is_in_openapi_yaml() {
    let spec = Spec::load();
    let documented = spec
        .0
        .pointer("/components/schemas/Error/properties/error/enum")
        .and_then(Value::as_array)
        .expect("the Error schema lists its codes")
        .clone();
    for code in [
        "missing_credentials",
        "malformed_credentials",
        "invalid_credentials",
        "invalid_parameter",
        "missing_token",
        "invalid_token",
        "forbidden",
        "too_many_attempts",
        "headers_too_large",
        "body_too_large",
        "directory_unavailable",
        "internal_error",
        "token_too_large",
        "not_found",
        "no_public_keys",
        "method_not_allowed",
        "token_revoked",
        "session_too_old",
        "session_ended",
        "revocations_unavailable",
    ] {
        assert!(
            documented.contains(&Value::from(code)),
            "{code} is not documented"
        );
    }
    assert_eq!(
        documented.len(),
        20,
        "openapi.yaml documents codes the service never sends"
    );
}
