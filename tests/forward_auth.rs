//! A real nginx and a real Caddy in front of an application, asking a real `latchkey serve`
//! (against a real slapd) through `auth_request` and `forward_auth`, with the configurations
//! shipped in `deploy/nginx/` and `deploy/caddy/`. The application is a tiny server that answers
//! with the header lines it received, so the tests see exactly what reaches it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_verify::Claims;
use serde_json::json;
use support::caddy::{self, Caddy};
use support::config::TestConfig;
use support::nginx::{self, Nginx};
use support::served::{request, Answer, Served};
use support::service::{basic, TEST_ISSUER, TEST_KID, TEST_SECRET};
use support::slapd::Slapd;
use support::users::ALICE;

/// An upstream that answers every request with the request's own header lines as its body.
fn echo_upstream() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the upstream");
    let port = listener.local_addr().expect("upstream address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = String::new();
            let mut reader = BufReader::new(&stream);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line == "\r\n" => break,
                    Ok(_) => head.push_str(&line),
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                head.len()
            );
        }
    });
    port
}

/// Header lines the upstream received named `name`.
fn received(answer: &Answer, name: &str) -> Vec<String> {
    answer
        .body
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

fn token_with_groups(sub: &str, groups: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Claims::new(TEST_ISSUER, sub, now, now + 600);
    claims.jti = "00000000000000000000000000000001".into();
    claims.groups = groups.iter().map(|g| g.to_string()).collect();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(TEST_KID.into());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("sign")
}

/// A slapd, and a `latchkey serve` in a temporary directory asking it; keep all three.
fn latchkey() -> (Slapd, tempfile::TempDir, Served) {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let latchkey = TestConfig::new(&slapd).serve(dir.path(), "info");
    (slapd, dir, latchkey)
}

#[test]
fn nginx_auth_request_lets_valid_tokens_through_with_identity_headers() {
    let (_slapd, _dir, latchkey) = latchkey();
    let app = echo_upstream();
    let nginx = Nginx::start(&nginx::deploy_example(latchkey.port, app));
    let port = nginx.port();

    // Tokens are requested through the proxy too.
    let issued = request(
        port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(ALICE.login, ALICE.password))],
    );
    assert_eq!(issued.status, 200, "{issued:?}\n{}", nginx.error_log());
    let json: serde_json::Value = serde_json::from_str(&issued.body).expect("JSON");
    let token = json["token"].as_str().expect("a token").to_owned();
    let bearer = format!("Bearer {token}");

    // A valid token reaches the upstream, with the identity set by nginx from Latchkey's answer;
    // what the client claimed about itself is replaced.
    let passed = request(
        port,
        "GET",
        "/reports/q3",
        &[
            ("Authorization", &bearer),
            ("Remote-User", "root"),
            ("Remote-Groups", "admins"),
        ],
    );
    assert_eq!(passed.status, 200, "{passed:?}\n{}", nginx.error_log());
    assert!(
        passed.body.starts_with("GET /reports/q3 HTTP/1."),
        "{}",
        passed.body
    );
    assert_eq!(received(&passed, "Remote-User"), ["alice"]);
    assert_eq!(received(&passed, "Remote-Groups"), Vec::<String>::new());
    assert_eq!(received(&passed, "Remote-Email"), ["alice@example.org"]);
    assert_eq!(received(&passed, "Remote-Name"), ["Alice Liddell"]);

    // The token as the Basic username works through the proxy as well.
    let by_basic = request(port, "GET", "/", &[("Authorization", &basic(&token, ""))]);
    assert_eq!(by_basic.status, 200);
    assert_eq!(received(&by_basic, "Remote-User"), ["alice"]);

    // No token, or a bad one: 401 at nginx with Latchkey's challenge; the upstream sees nothing.
    let missing = request(port, "GET", "/reports/q3", &[("Remote-User", "root")]);
    assert_eq!(missing.status, 401);
    assert_eq!(
        missing.header("WWW-Authenticate"),
        Some(r#"Bearer realm="latchkey""#)
    );
    assert!(!missing.body.contains("GET /reports"), "{}", missing.body);
    let forged = request(port, "GET", "/", &[("Authorization", "Bearer a.b.c")]);
    assert_eq!(forged.status, 401);
    assert_eq!(
        forged.header("WWW-Authenticate"),
        Some(r#"Bearer realm="latchkey", error="invalid_token""#)
    );

    // A route that needs a group: 403 without it, through with it.
    let no_group = request(port, "GET", "/admin/users", &[("Authorization", &bearer)]);
    assert_eq!(no_group.status, 403);
    assert!(!no_group.body.contains("GET /admin"), "{}", no_group.body);
    let admin = token_with_groups("carol", &["staff", "admins"]);
    let with_group = request(
        port,
        "GET",
        "/admin/users",
        &[("Authorization", &format!("Bearer {admin}"))],
    );
    assert_eq!(with_group.status, 200, "{with_group:?}");
    assert_eq!(received(&with_group, "Remote-User"), ["carol"]);
    assert_eq!(received(&with_group, "Remote-Groups"), ["staff,admins"]);
    assert_eq!(received(&with_group, "Remote-Email"), Vec::<String>::new());
}

/// The identity a client claims for itself; sent with every request of
/// [`a_forged_identity_never_reaches_the_upstream`].
const FORGED: [(&str, &str); 4] = [
    ("Remote-User", "root"),
    ("Remote-Groups", "admins"),
    ("Remote-Email", "root@example.org"),
    ("Remote-Name", "The Administrator"),
];

/// The same identity under names with `_` for `-`: other headers to a proxy, but the same
/// variable to CGI, PHP and WSGI applications. Sent with [`FORGED`], never received.
const FORGED_UNDERSCORE: [(&str, &str); 4] = [
    ("Remote_User", "root"),
    ("Remote_Groups", "admins"),
    ("Remote_Email", "root@example.org"),
    ("Remote_Name", "The Administrator"),
];

/// A request through the proxy on `port`, with the forged identity and `authorization` (if
/// not empty).
fn forged(port: u16, target: &str, authorization: &str) -> Answer {
    let mut headers = FORGED.to_vec();
    headers.extend(FORGED_UNDERSCORE);
    if !authorization.is_empty() {
        headers.push(("Authorization", authorization));
    }
    request(port, "GET", target, &headers)
}

/// A GET of `target` through the proxy on `port` with the forged identity and `authorization`
/// reaches the upstream, which receives `identity` (in the order of [`FORGED`]) and nothing
/// else in those headers; an empty value there stands for what the proxy passes on for an empty
/// header (`empty`).
fn reaches_the_upstream_as(
    port: u16,
    target: &str,
    authorization: &str,
    identity: [&str; 4],
    empty: &[&str],
) {
    let answer = forged(port, target, authorization);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.starts_with(&format!("GET {target} HTTP/1.")),
        "{}",
        answer.body
    );
    let want = identity.map(|value| match value {
        "" => empty.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        value => vec![value.to_owned()],
    });
    assert_eq!(
        FORGED.map(|(name, _)| received(&answer, name)),
        want,
        "{target}"
    );
    for (name, _) in FORGED_UNDERSCORE {
        assert_eq!(
            received(&answer, name),
            Vec::<String>::new(),
            "{target}: {name}"
        );
    }
}

/// Through the proxy on `port`, whatever identity the client claims for itself, the upstream
/// receives Latchkey's values only: for a user with every claim, for users lacking some, and
/// not at all without a token. `empty` is what the upstream receives for a header Latchkey
/// answered empty (nginx leaves such a header out, some Caddy versions pass it on empty).
/// Returns the 401 answer for a request with no token, for the caller to check.
fn a_forged_identity_never_reaches_the_upstream(port: u16, empty: &[&str]) -> Answer {
    let token = |login: &str, password: &str| -> String {
        let issued = request(
            port,
            "POST",
            "/auth/request-token",
            &[("Authorization", &basic(login, password))],
        );
        assert_eq!(issued.status, 200, "{login}: {issued:?}");
        let json: serde_json::Value = serde_json::from_str(&issued.body).expect("JSON");
        format!("Bearer {}", json["token"].as_str().expect("a token"))
    };

    // alice has an email and a name, and no groups.
    let alice = token(ALICE.login, ALICE.password);
    let full = ["alice", "", "alice@example.org", "Alice Liddell"];
    reaches_the_upstream_as(port, "/reports/q3", &alice, full, empty);

    // user1 has no email in the directory.
    let user1 = token("user1", "user1-password");
    reaches_the_upstream_as(port, "/", &user1, ["user1", "", "", "User One"], empty);

    // carol's token has groups, and neither an email nor a name; the admin route asks for
    // the group admins.
    let carol = format!(
        "Bearer {}",
        token_with_groups("carol", &["staff", "admins"])
    );
    let groups_only = ["carol", "staff,admins", "", ""];
    reaches_the_upstream_as(port, "/admin/users", &carol, groups_only, empty);

    // Without a token the request stops at the proxy: the upstream sees nothing.
    let refused = forged(port, "/reports/q3", "");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(
        refused.header("WWW-Authenticate"),
        Some(r#"Bearer realm="latchkey""#)
    );
    assert!(!refused.body.contains("Remote-"), "{}", refused.body);
    refused
}

#[test]
fn nginx_replaces_every_identity_header_the_client_sends() {
    let (_slapd, _dir, latchkey) = latchkey();
    let nginx = Nginx::start(&nginx::deploy_example(latchkey.port, echo_upstream()));
    // nginx leaves out a header set to an empty value.
    let refused = a_forged_identity_never_reaches_the_upstream(nginx.port(), &[]);
    // nginx answers a refusal from auth_request with its own page.
    assert_eq!(refused.header("Content-Type"), Some("text/html"));
    assert!(
        refused
            .body
            .contains("<title>401 Authorization Required</title>"),
        "{}",
        refused.body
    );
}

#[test]
fn caddy_replaces_every_identity_header_the_client_sends() {
    let (major, minor, patch) = caddy::version();
    println!("caddy {major}.{minor}.{patch}");
    let (_slapd, _dir, latchkey) = latchkey();
    let caddy = Caddy::start(&caddy::deploy_example(latchkey.port, echo_upstream()));
    // Before 2.9, copy_headers sets every header it names, empty ones too; from 2.9 on it
    // skips those that are empty in Latchkey's answer.
    let empty: &[&str] = if (major, minor) < (2, 9) { &[""] } else { &[] };
    let refused = a_forged_identity_never_reaches_the_upstream(caddy.port(), empty);
    // forward_auth passes Latchkey's refusal on as it is.
    assert_eq!(refused.header("Content-Type"), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&refused.body).expect("JSON"),
        json!({"error": "missing_token", "message": "Send a token: Authorization: Bearer <token>.", "status": 401}),
        "{}",
        caddy.log()
    );
    drop(caddy);

    // Caddy versions differ in what copy_headers does with a header the client sent and
    // Latchkey's answer leaves empty; the example removes the client's copies before it asks, so
    // they never pass. Shown here with the example copying Remote-User only, as a version that
    // keeps the client's copy of an empty header would treat the other three.
    let copy_all = "copy_headers Remote-User Remote-Groups Remote-Email Remote-Name";
    let user_only = caddy::deploy_example(latchkey.port, echo_upstream())
        .replace(copy_all, "copy_headers Remote-User");
    let caddy = Caddy::start(&user_only);
    let carol = format!(
        "Bearer {}",
        token_with_groups("carol", &["staff", "admins"])
    );
    for target in ["/", "/admin/users"] {
        reaches_the_upstream_as(caddy.port(), target, &carol, ["carol", "", "", ""], &[]);
    }
}

/// A browser's `Accept` as Chromium sends it when it opens a page.
const BROWSER: (&str, &str) = (
    "Accept",
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
);

/// A guarded page, with a query.
const GUARDED: &str = "/reports/q3?year=2025&tab=a+b";

/// The sign-in page with [`GUARDED`] as `rd`, as the tests' proxies see it (`Host: 127.0.0.1`,
/// plain http).
const SIGN_IN: &str = "http://127.0.0.1/auth/login?rd=http%3A%2F%2F127.0.0.1%2Freports%2Fq3%3Fyear%3D2025%26tab%3Da%2Bb";

/// A slapd and a `latchkey serve` with the sign-in page on (the loopback demo's settings),
/// trusting the proxies at `trusted_proxies` and letting `rd` name 127.0.0.1; keep all three.
fn latchkey_with_portal(trusted_proxies: &[&str]) -> (Slapd, tempfile::TempDir, Served) {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let latchkey = TestConfig::new(&slapd)
        .server("trusted_proxies", trusted_proxies)
        .portal("url", "http://127.0.0.1")
        .portal("cookie_secure", false)
        .portal("allowed_redirect_hosts", ["127.0.0.1"])
        .serve(dir.path(), "info");
    (slapd, dir, latchkey)
}

/// Through the proxy on `port`: a browser without a session is sent to sign in with `GUARDED`
/// as `rd` (a 302 for a GET, `post_status` for a POST), with a broken session cookie too; API
/// callers get the 401 with the challenge; a browser with a session cookie reaches the upstream
/// with its identity. Returns the redirect of the GET, for the caller to check.
fn browsers_are_sent_to_sign_in(port: u16, post_status: u16) -> Answer {
    let redirected = |method: &str, headers: &[(&str, &str)], status: u16| {
        let answer = request(port, method, GUARDED, headers);
        assert_eq!(answer.status, status, "{method} {headers:?}: {answer:?}");
        assert_eq!(answer.header("Location"), Some(SIGN_IN), "{answer:?}");
        assert_eq!(
            answer.header("Cache-Control"),
            Some("no-store"),
            "{answer:?}"
        );
        assert!(!answer.body.contains("/reports/q3"), "{}", answer.body);
        answer
    };
    let get = redirected("GET", &[BROWSER], 302);
    redirected("POST", &[BROWSER], post_status);
    redirected("GET", &[BROWSER, ("Cookie", "latchkey_session=a.b.c")], 302);

    // Programs keep the 401 and its challenge, and are sent nowhere.
    for headers in [
        vec![("Accept", "application/json")],
        vec![],
        vec![BROWSER, ("X-Requested-With", "XMLHttpRequest")],
        vec![BROWSER, ("Authorization", "Bearer a.b.c")],
    ] {
        let refused = request(port, "GET", GUARDED, &headers);
        assert_eq!(refused.status, 401, "{headers:?}: {refused:?}");
        assert_eq!(refused.header("Location"), None, "{refused:?}");
        let challenge = if headers.iter().any(|(name, _)| *name == "Authorization") {
            r#"Bearer realm="latchkey", error="invalid_token""#
        } else {
            r#"Bearer realm="latchkey""#
        };
        let challenges: Vec<&str> = refused
            .headers
            .iter()
            .filter_map(|line| line.split_once(':'))
            .filter(|(name, _)| name.eq_ignore_ascii_case("WWW-Authenticate"))
            .map(|(_, value)| value.trim())
            .collect();
        assert_eq!(challenges, [challenge], "{refused:?}");
        assert!(!refused.body.contains("/reports/q3"), "{}", refused.body);
    }

    // A browser with a session passes, with its identity, to the page it asked for.
    let issued = request(
        port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(ALICE.login, ALICE.password))],
    );
    assert_eq!(issued.status, 200, "{issued:?}");
    let json: serde_json::Value = serde_json::from_str(&issued.body).expect("JSON");
    let session = format!(
        "latchkey_session={}",
        json["token"].as_str().expect("a token")
    );
    let passed = request(port, "GET", GUARDED, &[BROWSER, ("Cookie", &session)]);
    assert_eq!(passed.status, 200, "{passed:?}");
    assert!(
        passed.body.starts_with(&format!("GET {GUARDED} HTTP/1.")),
        "{}",
        passed.body
    );
    assert_eq!(received(&passed, "Remote-User"), ["alice"]);
    assert_eq!(received(&passed, "Remote-Email"), ["alice@example.org"]);
    assert_eq!(received(&passed, "Remote-Name"), ["Alice Liddell"]);
    get
}

#[test]
fn nginx_sends_a_browser_to_sign_in_and_lets_its_session_through() {
    let (_slapd, _dir, latchkey) = latchkey_with_portal(&["127.0.0.1"]);
    let nginx = Nginx::start(&nginx::deploy_example(latchkey.port, echo_upstream()));
    // nginx redirects every method with its own 302 (Latchkey answered it a 401 with Location).
    let get = browsers_are_sent_to_sign_in(nginx.port(), 302);
    // auth_request keeps the challenge of Latchkey's 401 on the answer; browsers ignore it on a
    // redirect.
    assert_eq!(
        get.header("WWW-Authenticate"),
        Some(r#"Bearer realm="latchkey""#),
        "{get:?}"
    );
    assert!(
        get.body.contains("<title>302 Found</title>"),
        "{}",
        get.body
    );

    // A client's own X-Forwarded-* never reach Latchkey through nginx: the URL is nginx's.
    let forged = request(
        nginx.port(),
        "GET",
        GUARDED,
        &[
            BROWSER,
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "evil.net"),
            ("X-Forwarded-Uri", "/"),
            ("X-Forwarded-Method", "GET"),
        ],
    );
    assert_eq!(forged.status, 302, "{forged:?}");
    assert_eq!(forged.header("Location"), Some(SIGN_IN));
}

#[test]
fn caddy_sends_a_browser_to_sign_in_and_lets_its_session_through() {
    let (_slapd, _dir, latchkey) = latchkey_with_portal(&["127.0.0.1"]);
    let caddy = Caddy::start(&caddy::deploy_example(latchkey.port, echo_upstream()));
    // forward_auth passes Latchkey's redirect on: 302 for a GET, 303 for a POST.
    let get = browsers_are_sent_to_sign_in(caddy.port(), 303);
    assert_eq!(get.body, "", "{}", caddy.log());
    assert_eq!(get.header("WWW-Authenticate"), None, "{get:?}");
}

#[test]
fn without_the_proxy_in_trusted_proxies_a_browser_gets_the_plain_401() {
    let (_slapd, _dir, latchkey) = latchkey_with_portal(&[]);
    let caddy = Caddy::start(&caddy::deploy_example(latchkey.port, echo_upstream()));
    let refused = request(caddy.port(), "GET", GUARDED, &[BROWSER]);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.header("Location"), None);
    assert_eq!(
        refused.header("WWW-Authenticate"),
        Some(r#"Bearer realm="latchkey""#)
    );
}
