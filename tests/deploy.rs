//! The reverse-proxy examples in `deploy/` that the tests cannot run are at least checked:
//! Caddy's by Caddy itself, Traefik's for its structure. (nginx's is run for real in
//! `tests/forward_auth.rs`.)

use std::path::{Path, PathBuf};
use std::process::Command;

const IDENTITY: [&str; 4] = [
    "Remote-User",
    "Remote-Groups",
    "Remote-Email",
    "Remote-Name",
];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// `caddy adapt --validate` on `file`: Ok, or Caddy's complaint.
fn caddy_validate(file: &Path) -> Result<(), String> {
    let home = tempfile::tempdir().expect("a HOME for caddy");
    let output = Command::new("caddy")
        .args(["adapt", "--adapter", "caddyfile", "--validate", "--config"])
        .arg(file)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run caddy ({e}); run scripts/install-test-deps"));
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn the_caddyfile_is_valid_and_copies_the_identity_headers() {
    let caddyfile = deploy("caddy/Caddyfile");
    caddy_validate(&caddyfile).unwrap_or_else(|e| panic!("deploy/caddy/Caddyfile: {e}"));
    let text = std::fs::read_to_string(&caddyfile).expect("read the Caddyfile");
    assert_eq!(text.matches("uri /auth/verify").count(), 2, "{text}");
    assert_eq!(
        text.matches(&format!("copy_headers {}", IDENTITY.join(" ")))
            .count(),
        2
    );

    // The check can fail: the same file with a forward_auth that has lost its uri.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("Caddyfile");
    std::fs::write(&broken, text.replacen("uri /auth/verify", "", 1)).expect("write");
    let err = caddy_validate(&broken).expect_err("a forward_auth without uri is invalid");
    assert!(err.contains("'uri' subdirective is required"), "{err}");
}

#[test]
fn the_traefik_configuration_forwards_to_verify_and_copies_the_identity() {
    let text = std::fs::read_to_string(deploy("traefik/dynamic.yml")).expect("read");
    let config: serde_json::Value = serde_norway::from_str(&text).expect("valid YAML");
    let middlewares = config["http"]["middlewares"]
        .as_object()
        .expect("middlewares");
    assert_eq!(middlewares.len(), 2);
    for (name, middleware) in middlewares {
        let forward = &middleware["forwardAuth"];
        let address = forward["address"].as_str().expect("an address");
        assert!(
            address.starts_with("http://127.0.0.1:8080/auth/verify"),
            "{name}: {address}"
        );
        assert_eq!(forward["trustForwardHeader"], false, "{name}");
        assert_eq!(
            forward["authResponseHeaders"],
            serde_json::json!(IDENTITY),
            "{name}"
        );
    }
    let routers = config["http"]["routers"].as_object().expect("routers");
    for (name, router) in routers {
        let service = router["service"].as_str().expect("a service");
        assert!(
            config["http"]["services"][service].is_object(),
            "{name} -> {service}"
        );
        for m in router["middlewares"].as_array().into_iter().flatten() {
            let m = m.as_str().expect("a middleware name");
            assert!(
                middlewares.contains_key(m),
                "{name} uses unknown middleware {m}"
            );
        }
    }
    assert_eq!(
        routers["app-admin"]["middlewares"],
        serde_json::json!(["latchkey-admins"])
    );
}
