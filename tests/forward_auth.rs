//! A real nginx in front of an application, asking a real `latchkey serve` (against a real
//! slapd) through `auth_request`, with the configuration shipped in `deploy/nginx/`.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey_verify::Claims;
use support::nginx::Nginx;
use support::served::{request, serve, Answer};
use support::service::{basic, config_toml, Extra, TEST_ISSUER, TEST_KID, TEST_SECRET};
use support::slapd::Slapd;

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

/// `deploy/nginx/latchkey.conf` pointed at this test's Latchkey and upstream.
fn nginx_config(latchkey_port: u16, app_port: u16) -> String {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx");
    let conf = std::fs::read_to_string(deploy.join("latchkey.conf")).expect("read the example");
    let replaced = conf
        .replace(
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{latchkey_port};"),
        )
        .replace(
            "server 127.0.0.1:9000;",
            &format!("server 127.0.0.1:{app_port};"),
        )
        .replace("listen 80;", "listen {listen};")
        .replace(
            "/etc/nginx/latchkey-identity.conf",
            &deploy.join("latchkey-identity.conf").display().to_string(),
        );
    assert_eq!(
        replaced.matches("{listen}").count(),
        1,
        "the example changed shape"
    );
    replaced
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

#[test]
fn nginx_auth_request_lets_valid_tokens_through_with_identity_headers() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let latchkey = serve(
        dir.path(),
        &config_toml(&slapd.url(), &Extra::default()),
        "info",
    );
    let app = echo_upstream();
    let nginx = Nginx::start(&nginx_config(latchkey.port, app));
    let port = nginx.port();

    // Tokens are requested through the proxy too.
    let issued = request(
        port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic("alice", "alice-password-1"))],
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
