//! The axum example service (`examples/axum_service.rs`), started as its own process on a free
//! loopback port with a key file of its own, answering real HTTP requests: the answers of
//! `RequireTokenLayer` and the `Claims` extractor, status, headers and body, byte for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[cfg(feature = "jwks")]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey_verify::{Algorithm, Claims, Secret, Signer, SigningKey};

const KID: &str = "2026-11";
const SECRET: &[u8] = b"the-example-service-test-secret-0123456789";

/// The example's binary, built (or found up to date) once per test run with this test's
/// features, in this test's target directory and profile.
fn example_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let deps = std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .to_owned();
        let profile_dir = deps.parent().unwrap();
        let target_dir = profile_dir.parent().unwrap();
        let mut features = vec!["axum"];
        for (enabled, feature) in [
            (cfg!(feature = "actix"), "actix"),
            (cfg!(feature = "jwks"), "jwks"),
        ] {
            if enabled {
                features.push(feature);
            }
        }
        let mut cargo = Command::new(env!("CARGO"));
        cargo
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "--quiet", "-p", "latchkey-verify"])
            .args([
                "--example",
                "axum_service",
                "--features",
                &features.join(","),
            ])
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir.ends_with("release") {
            cargo.arg("--release");
        }
        let status = cargo.status().expect("running cargo to build the example");
        assert!(status.success(), "building examples/axum_service.rs failed");
        profile_dir
            .join("examples")
            .join(format!("axum_service{}", std::env::consts::EXE_SUFFIX))
    })
}

/// The example service, running until dropped.
struct ExampleService {
    child: Child,
    address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ExampleService {
    /// The service with the HMAC key [`SECRET`] as [`KID`], from a key file.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// The same, with more settings (which come first: `LATCHKEY_JWKS_URI` does).
    fn start_with(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("token-key");
        // With the line break an editor adds, which Secret::from_file drops.
        std::fs::write(&key_file, [SECRET, b"\n"].concat()).unwrap();
        let mut command = Command::new(example_binary());
        command
            .env("LATCHKEY_KEY_FILE", &key_file)
            .env("LATCHKEY_KEY_ID", KID)
            .env("LATCHKEY_ISSUER", "latchkey")
            .env_remove("LATCHKEY_COOKIE")
            .env_remove("LATCHKEY_PUBLIC_KEY_FILE")
            .env_remove("LATCHKEY_JWKS_URI")
            .env("LISTEN", "127.0.0.1:0");
        for (name, value) in settings {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let mut service = ExampleService {
            child,
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            _dir: dir,
        };
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the example did not say where it listens within 30 s");
        service.address = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        service
    }

    /// `GET path` with `headers`, over a connection of its own.
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.address);
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        Answer::parse(&raw)
    }
}

impl Drop for ExampleService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer: the status, the headers a refusal is judged by, and the body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    cache_control: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Answer {
    fn parse(raw: &str) -> Self {
        let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let header = |wanted: &str| {
            let mut values = headers.iter().filter(|(name, _)| name == wanted);
            let value = values.next().map(|(_, v)| v.clone());
            assert_eq!(values.next(), None, "{wanted} is sent once at most");
            value
        };
        Answer {
            status: status.parse().unwrap(),
            www_authenticate: header("www-authenticate"),
            cache_control: header("cache-control"),
            content_type: header("content-type"),
            body: body.to_owned(),
        }
    }

    fn text(body: &str) -> Self {
        Answer {
            status: 200,
            www_authenticate: None,
            cache_control: None,
            content_type: Some("text/plain; charset=utf-8".into()),
            body: body.into(),
        }
    }

    fn refusal(status: u16, challenge: Option<&str>, body: &str) -> Self {
        Answer {
            status,
            www_authenticate: challenge.map(str::to_owned),
            cache_control: Some("no-store".into()),
            content_type: Some("application/json".into()),
            body: body.into(),
        }
    }

    fn invalid_token(message: &str) -> Self {
        Answer::refusal(
            401,
            Some(r#"Bearer realm="latchkey", error="invalid_token""#),
            &format!(r#"{{"error":"invalid_token","message":"{message}","status":401}}"#),
        )
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn alice(groups: &[&str]) -> Claims {
    let mut claims = Claims::new("latchkey", "alice", now(), now() + 600);
    claims.jti = "0123456789abcdef0123456789abcdef".into();
    claims.name = Some("Alice Liddell".into());
    claims.groups = groups.iter().map(|g| g.to_string()).collect();
    claims
}

fn sign_with(claims: &Claims, kid: &str, secret: &[u8]) -> String {
    let key =
        SigningKey::hmac(kid, Algorithm::HS256, Secret::new(secret.to_vec()).unwrap()).unwrap();
    Signer::new(&key).sign(claims).unwrap()
}

fn sign(claims: &Claims) -> String {
    sign_with(claims, KID, SECRET)
}

#[test]
fn the_public_route_needs_no_token() {
    let service = ExampleService::start();
    assert_eq!(
        service.get("/", &[]),
        Answer::text("Anyone may read this.\n")
    );
}

#[test]
fn no_token_is_401_with_a_bearer_challenge_and_json() {
    let service = ExampleService::start();
    let missing = Answer::refusal(
        401,
        Some(r#"Bearer realm="latchkey""#),
        r#"{"error":"missing_token","message":"Send a token: Authorization: Bearer <token>.","status":401}"#,
    );
    assert_eq!(service.get("/hello", &[]), missing);
    assert_eq!(service.get("/admin", &[]), missing);
    // A cookie of another name is no token.
    let other = format!("other={}", sign(&alice(&[])));
    assert_eq!(service.get("/hello", &[("Cookie", &other)]), missing);
}

#[test]
fn a_valid_token_is_let_through_by_bearer_basic_username_or_cookie() {
    let service = ExampleService::start();
    let token = sign(&alice(&[]));
    let hello = Answer::text("Hello, Alice Liddell!\n");
    let bearer = format!("Bearer {token}");
    assert_eq!(service.get("/hello", &[("Authorization", &bearer)]), hello);
    let basic = format!("Basic {}", STANDARD.encode(format!("{token}:")));
    assert_eq!(service.get("/hello", &[("Authorization", &basic)]), hello);
    let cookie = format!("theme=dark; latchkey_session={token}");
    assert_eq!(service.get("/hello", &[("Cookie", &cookie)]), hello);
}

#[test]
fn bad_expired_and_foreign_tokens_are_401_invalid_token() {
    let service = ExampleService::start();
    let get = |token: &str| service.get("/hello", &[("Authorization", &format!("Bearer {token}"))]);

    let mut expired = alice(&[]);
    expired.exp = now() - 60;
    assert_eq!(
        get(&sign(&expired)),
        Answer::invalid_token("The token has expired; request a new one.")
    );
    let forged = sign_with(&alice(&[]), KID, b"another-secret-of-at-least-32-bytes!!");
    assert_eq!(
        get(&forged),
        Answer::invalid_token("The token's signature is not valid.")
    );
    let unknown_key = sign_with(&alice(&[]), "2025-01", SECRET);
    assert_eq!(
        get(&unknown_key),
        Answer::invalid_token("The token was signed with a key this server does not hold.")
    );
    let mut foreign = alice(&[]);
    foreign.iss = "someone-else".into();
    assert_eq!(
        get(&sign(&foreign)),
        Answer::invalid_token("The token was issued by another issuer.")
    );
    assert_eq!(
        get("not-a-token"),
        Answer::invalid_token("The token is malformed.")
    );
}

#[test]
fn the_admin_route_is_403_without_the_group_and_200_with_it() {
    let service = ExampleService::start();
    let staff = format!("Bearer {}", sign(&alice(&["staff"])));
    assert_eq!(
        service.get("/admin", &[("Authorization", &staff)]),
        Answer::refusal(
            403,
            None,
            r#"{"error":"forbidden","message":"This needs membership of the group \"admins\".","status":403}"#
        )
    );
    // Group names compare without regard to case, as everywhere in Latchkey.
    let admin = format!("Bearer {}", sign(&alice(&["staff", "Admins"])));
    assert_eq!(
        service.get("/admin", &[("Authorization", &admin)]),
        Answer::text("alice is an admin.\n")
    );
    // The group is required on /admin only.
    assert_eq!(
        service.get("/hello", &[("Authorization", &staff)]),
        Answer::text("Hello, Alice Liddell!\n")
    );
}

/// With `LATCHKEY_JWKS_URI`, the service follows the published keys: a key Latchkey rotates in
/// is accepted from its first tokens on, without a restart.
#[cfg(feature = "jwks")]
#[test]
fn with_a_jwks_uri_a_rotated_key_is_accepted_without_a_restart() {
    use support::key_server::KeyServer;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let old = SigningKey::generate("2026-11", Algorithm::EdDSA).unwrap();
    let new = SigningKey::generate("2026-12", Algorithm::ES256).unwrap();
    let keys = runtime.block_on(KeyServer::start(&[&old], "max-age=3600"));
    let uri = keys.uri();
    let service = ExampleService::start_with(&[
        ("LATCHKEY_JWKS_URI", &uri),
        ("LATCHKEY_JWKS_MIN_REFRESH", "1"),
    ]);
    let hello = |key: &SigningKey| {
        let bearer = format!("Bearer {}", Signer::new(key).sign(&alice(&[])).unwrap());
        service.get("/hello", &[("Authorization", &bearer)])
    };
    assert_eq!(hello(&old), Answer::text("Hello, Alice Liddell!\n"));
    // The HMAC key file is not used once a jwks_uri is given.
    let hmac = format!("Bearer {}", sign(&alice(&[])));
    assert_eq!(
        service.get("/hello", &[("Authorization", &hmac)]),
        Answer::invalid_token("The token's signing algorithm is not allowed.")
    );
    assert_eq!(keys.requests(), 1);

    keys.publish(&[&old, &new]);
    assert_eq!(
        hello(&new),
        Answer::invalid_token("The token was signed with a key this server does not hold.")
    );
    let asked = std::time::Instant::now();
    while hello(&new).status != 200 {
        assert!(
            asked.elapsed() < Duration::from_secs(10),
            "the new key was not picked up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(hello(&new), Answer::text("Hello, Alice Liddell!\n"));
    assert_eq!(hello(&old), Answer::text("Hello, Alice Liddell!\n"));
    drop(service);
    drop(keys);
}
