//! A whole session against the real binary at the most verbose log level, in both log
//! formats: no password, secret or token may appear in the log, neither as sent nor in the
//! base64 forms a Basic header carries them in, and every request's lines carry its request id.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;

use support::config::TestConfig;
use support::served::request;
use support::service::{basic, TEST_SECRET};
use support::slapd::Slapd;
use support::users::{ALICE, BOB, CAROL, DRESSLER, LOCKED, SMITH, TWINS_PASSWORD, USER1};
use support::SERVICE_PASSWORD;

/// Every password of the fixture directory, and the service account's.
const PASSWORDS: [&str; 9] = [
    ALICE.password,
    BOB.password,
    USER1.password,
    CAROL.password,
    TWINS_PASSWORD,
    DRESSLER.password,
    SMITH.password,
    LOCKED.password,
    SERVICE_PASSWORD,
];

/// What a session sent and got: the tokens issued, and every (login, password) pair sent in a
/// Basic header (a token as the login included).
struct Session {
    tokens: Vec<String>,
    basic_pairs: Vec<(String, String)>,
}

/// Log in, verify and inspect in every way the service offers, right and wrong.
fn session(port: u16) -> Session {
    let mut basic_pairs = Vec::new();
    let post = |login: &str, password: &str, query: &str| {
        request(
            port,
            "POST",
            &format!("/auth/request-token{query}"),
            &[("Authorization", &basic(login, password))],
        )
    };
    let mut tokens = Vec::new();
    let logins = [
        (ALICE.login, ALICE.password),
        (BOB.login, BOB.password),
        (DRESSLER.login, DRESSLER.password),
        ("alice@example.org", ALICE.password),
    ];
    for (login, password) in logins {
        basic_pairs.push((login.to_owned(), password.to_owned()));
        let answer = post(login, password, "?token_duration=120");
        assert_eq!(answer.status, 200, "{login}: {}", answer.body);
        let json: serde_json::Value = serde_json::from_str(&answer.body).expect("JSON");
        tokens.push(json["token"].as_str().expect("a token").to_owned());
    }
    // Refusals of every kind: wrong password, unknown user, locked, empty password, policy,
    // then a ban.
    let refusals = [
        ("alice", "alice-password-2", 401),
        ("nobody", "nobody-password-1", 401),
        (LOCKED.login, LOCKED.password, 401),
        ("alice", "", 401),
        ("bob", "bob-password-1-but-wrong", 401),
        ("bob", "bob-password-1-but-wrong", 401),
        (BOB.login, BOB.password, 429),
    ];
    for (login, password, status) in refusals {
        basic_pairs.push((login.to_owned(), password.to_owned()));
        let answer = post(login, password, "");
        assert_eq!(answer.status, status, "{login}: {}", answer.body);
    }
    let token = tokens.first().cloned().unwrap_or_default();
    for (method, path, header) in [
        ("GET", "/auth/verify", format!("Bearer {token}")),
        (
            "POST",
            "/auth/verify?group=staff",
            format!("Bearer {token}"),
        ),
        ("GET", "/auth/verify?group=nope", format!("Bearer {token}")),
        ("GET", "/auth/verify", basic(&token, "")),
        ("GET", "/auth/verify", basic(&token, ALICE.password)),
        ("GET", "/auth/token-info", format!("Bearer {token}")),
        ("GET", "/auth/verify", format!("Bearer {token}x")),
        (
            "GET",
            "/auth/verify",
            format!("Bearer {}", &token[..token.len() / 2]),
        ),
        ("GET", "/metrics", String::new()),
        ("GET", "/readyz", String::new()),
    ] {
        let mut headers = vec![("Cookie", format!("latchkey={token}"))];
        if !header.is_empty() {
            headers.push(("Authorization", header));
        }
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = request(port, method, path, &headers);
        assert!(answer.status < 500, "{method} {path}: {}", answer.status);
    }
    basic_pairs.push((token.clone(), String::new()));
    basic_pairs.push((token, ALICE.password.to_owned()));
    Session {
        tokens,
        basic_pairs,
    }
}

fn config(slapd: &Slapd, format: &str) -> TestConfig {
    TestConfig::new(slapd)
        .login_attributes(&["uid", "mail"])
        .users("account_status", "ppolicy")
        .member_groups()
        .access("deny", "nobody-group")
        .brute_force("max_failures_per_login", 2)
        .brute_force("min_failure_time", "0s")
        .cookie_name("latchkey")
        .log("format", format)
}

/// `data` in base64 as a Basic header or a JWT would carry it, without padding (so that a
/// padded copy in the log matches too).
fn base64_forms(data: &str) -> [String; 2] {
    [STANDARD_NO_PAD.encode(data), URL_SAFE_NO_PAD.encode(data)]
}

/// Every string the log must not hold, each with what it is (the string itself is never
/// printed): passwords and the signing secret, as they are and in base64; each Basic
/// header's `login:password` in base64; each token whole and its signature.
fn forbidden(session: &Session) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for secret in PASSWORDS.iter().copied().chain([TEST_SECRET]) {
        out.push((secret.to_owned(), format!("{secret:?}")));
        for encoded in base64_forms(secret) {
            out.push((encoded, format!("the base64 of {secret:?}")));
        }
    }
    for (login, password) in &session.basic_pairs {
        for encoded in base64_forms(&format!("{login}:{password}")) {
            out.push((
                encoded,
                format!("the base64 Basic credentials of {login:.20}"),
            ));
        }
    }
    for token in &session.tokens {
        let signature = token.rsplit('.').next().unwrap_or_default();
        out.push((token.clone(), "a token".to_owned()));
        out.push((signature.to_owned(), "a token's signature".to_owned()));
    }
    out
}

/// Every string value in a JSON log line, decoded, one a line: a secret JSON-escaped in the
/// raw line would be found here.
fn json_strings(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(fields) => fields.values().for_each(|v| json_strings(v, out)),
        _ => {}
    }
}

fn assert_clean(log: &str, session: &Session) {
    assert!(log.lines().count() > 100, "suspiciously short log:\n{log}");
    for (secret, what) in forbidden(session) {
        assert!(!log.contains(&secret), "{what} is in the log");
    }
}

#[test]
fn a_whole_session_at_trace_level_logs_no_secret_and_tags_lines_with_the_request_id() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = config(&slapd, "text").serve(dir.path(), "trace");
    let session = session(served.port);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = served.log();
    assert_clean(&log, &session);

    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("latchkey::audit"))
        .collect();
    assert_eq!(audit.len(), 11, "{}", audit.join("\n"));
    for line in &audit {
        assert!(line.contains("request_id="), "{line}");
    }
    assert!(
        audit.iter().any(|l| l
            .contains("login=nobody client=127.0.0.1 outcome=\"refused\" reason=\"unknown_user\"")),
        "{}",
        audit.join("\n")
    );
    assert!(
        audit.iter().any(|l| l.contains("reason=\"banned_login\"")),
        "{}",
        audit.join("\n")
    );
}

#[test]
fn the_json_log_is_clean_too_and_every_line_is_json() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = config(&slapd, "json").serve(dir.path(), "trace");
    let session = session(served.port);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = served.log();
    assert_clean(&log, &session);
    let mut audits = 0;
    let mut decoded = String::new();
    for line in log.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        json_strings(&value, &mut decoded);
        if value["target"] == "latchkey::audit" {
            audits += 1;
            let spans = value["spans"].as_array().cloned().unwrap_or_default();
            assert!(
                spans.iter().any(|s| s["request_id"].is_string()),
                "no request id in {line}"
            );
        }
    }
    assert_eq!(audits, 11);
    assert_clean(&decoded, &session);
}

#[test]
fn the_check_finds_each_form_of_a_credential_or_token() {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ";
    let session = Session {
        tokens: vec![token.to_owned()],
        basic_pairs: vec![("alice".to_owned(), ALICE.password.to_owned())],
    };
    let filler = "a harmless line\n".repeat(101);
    let planted = [
        ALICE.password.to_owned(),
        STANDARD_NO_PAD.encode(ALICE.password),
        // What an `Authorization: Basic …` header holds, padding and all.
        "YWxpY2U6YWxpY2UtcGFzc3dvcmQtMQ==".to_owned(),
        URL_SAFE_NO_PAD.encode("alice:alice-password-1"),
        token.to_owned(),
        "signature=c2lnbmF0dXJlLXBhcnQ".to_owned(),
    ];
    for plant in planted {
        let log = format!("{filler}header=\"{plant}\"\n");
        let caught = std::panic::catch_unwind(|| assert_clean(&log, &session));
        assert!(caught.is_err(), "{plant} was not caught");
    }
    assert_clean(&filler, &session);
}

/// The audit lines of `log`.
fn audit_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("latchkey::audit"))
        .collect()
}

#[test]
fn a_login_that_looks_like_fields_is_logged_as_one_quoted_value() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = config(&slapd, "text").serve(dir.path(), "info");
    let forged = "x outcome=issued sub=admin";
    let answer = request(
        served.port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(forged, "a-password-1"))],
    );
    assert_eq!(answer.status, 401, "{}", answer.body);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = served.log();
    let audit = audit_lines(&log);
    assert_eq!(audit.len(), 1, "{log}");
    let quoted = " login=\"x outcome=issued sub=admin\" client=127.0.0.1 outcome=\"refused\" \
                  reason=\"unknown_user\" elapsed_ms=";
    assert!(audit[0].contains(quoted), "{}", audit[0]);
    // Nowhere else does the login's text pass for a field.
    let rest = log.replacen("login=\"x outcome=issued sub=admin\"", "", 1);
    for forged in ["login=x", "issued", "sub=admin"] {
        assert!(!rest.contains(forged), "{forged}: {log}");
    }
}

#[test]
fn the_request_span_names_the_client_the_trusted_proxies_vouch_for() {
    let slapd = Slapd::start();
    // A failed login with forged client addresses in every header that names one, and a
    // forged host and scheme; the log must name `client` (and `scheme`, `host`) in the span and
    // the audit line, and none of the values in `absent`.
    let check =
        |trusted_proxies: &[&str], client: &str, scheme_host: (&str, &str), absent: &[&str]| {
            let dir = tempfile::tempdir().expect("temp dir");
            let served = config(&slapd, "text")
                .server("trusted_proxies", trusted_proxies)
                .serve(dir.path(), "info");
            let answer = request(
                served.port,
                "POST",
                "/auth/request-token",
                &[
                    ("Authorization", &basic("alice", "wrong-password-1")),
                    ("X-Forwarded-For", "6.6.6.6, 203.0.113.9"),
                    ("Forwarded", "for=7.7.7.7"),
                    ("X-Real-IP", "8.8.8.8"),
                    ("X-Forwarded-Host", "forged.example"),
                    ("X-Forwarded-Proto", "https"),
                ],
            );
            assert_eq!(answer.status, 401, "{}", answer.body);
            std::thread::sleep(std::time::Duration::from_millis(200));
            let log = served.log();
            let audit = audit_lines(&log);
            assert_eq!(audit.len(), 1, "{log}");
            let (scheme, host) = scheme_host;
            for field in [
                format!(" http.client_ip={client} "),
                format!(" client={client} "),
                format!(" http.scheme={scheme} "),
                format!(" http.host={host} "),
            ] {
                assert!(audit[0].contains(&field), "{field}: {}", audit[0]);
            }
            for forged in absent {
                assert!(!log.contains(forged), "{forged} is in the log:\n{log}");
            }
        };

    // No trusted proxy: the peer is the client, and the Host header and the connection's own
    // scheme are the request's, whatever the headers say.
    let every_forged = [
        "6.6.6.6",
        "203.0.113.9",
        "7.7.7.7",
        "8.8.8.8",
        "forged.example",
    ];
    check(&[], "127.0.0.1", ("http", "127.0.0.1"), &every_forged);
    // Behind a trusted proxy (this test, on 127.0.0.1): the right-most untrusted entry of
    // X-Forwarded-For, as for the audit line and the brute-force protection; the host and
    // scheme the proxy forwards.
    check(
        &["127.0.0.1"],
        "203.0.113.9",
        ("https", "forged.example"),
        &["6.6.6.6", "7.7.7.7", "8.8.8.8"],
    );
}
