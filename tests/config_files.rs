//! The configuration files shipped in `config/` load and validate.

use latchkey::config::{Config, SearchMode, Settings};

fn root(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

#[test]
fn the_example_configuration_parses_with_its_documented_defaults() {
    let settings = Settings::load(Some(&root("config/latchkey.example.toml")))
        .unwrap_or_else(|e| panic!("{e}"));
    // Its secret file lives on the operator's machine; everything else must validate.
    let err = settings
        .validate("example")
        .expect_err("the example's secret file does not exist here");
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(
        err.problems()[0]
            .starts_with("tokens.keys.2026-11.secret_file: cannot read /etc/latchkey/token-key"),
        "{err}"
    );
}

#[test]
fn the_example_configuration_is_complete_with_a_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("token-key");
    std::fs::write(&key, "an-example-secret-that-is-long-enough-to-sign\n").expect("write key");
    let text = std::fs::read_to_string(root("config/latchkey.example.toml"))
        .expect("read example")
        .replace("/etc/latchkey/token-key", &key.display().to_string());
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.tokens.default_duration, 3600);
    assert_eq!(config.tokens.max_duration, 86400);
    assert_eq!(config.tokens.signing_key.id(), "2026-11");
    assert_eq!(config.directory.search_mode, SearchMode::Never);
    assert_eq!(config.directory.pool.search_size, 8);
    assert_eq!(config.server.listen.to_string(), "127.0.0.1:8080");
    // The example's ldap:// server is plaintext: its [directory.tls] only holds defaults.
    assert!(config.directory.tls.client.is_none());
    assert_eq!(
        config.directory.tls.min_version,
        latchkey::config::TlsVersion::Tls12
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.portal, None);

    // Its [portal] example, turned on.
    let text = std::fs::read_to_string(&path)
        .expect("read config")
        .replace(
            "# url = \"https://auth.example.org\"",
            "url = \"https://auth.example.org\"",
        )
        .replace(
            "# cookie_domain = \"example.org\"",
            "cookie_domain = \"example.org\"",
        );
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    let portal = config.portal.expect("the portal is on");
    assert_eq!(portal.url.as_str(), "https://auth.example.org/");
    assert_eq!(portal.cookie_domain.as_deref(), Some("example.org"));
    assert_eq!(portal.cookie_name, "latchkey_session");
    assert!(portal.cookie_secure);
    assert_eq!(portal.session_duration, 12 * 3600);
    assert!(portal.allowed_redirect_hosts.is_empty());
}

#[test]
fn an_unknown_key_in_a_file_is_named_with_its_section() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("latchkey.toml");
    std::fs::write(
        &path,
        "[tokens.keys.a]\nsecret = \"0123456789abcdef0123456789abcdef\"\n[directory]\nurls = [\"ldap://x\"]\n[directory.users]\nbase_dn = \"dc=x\"\nusername_atribute = \"uid\"\n",
    )
    .expect("write config");
    let err = Config::load(Some(&path))
        .expect_err("a typo is an error")
        .to_string();
    assert!(err.contains("username_atribute"), "{err}");
    assert!(err.contains("directory.users"), "{err}");
}

#[test]
fn the_demo_configuration_loads_with_the_secret_the_demo_adds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string(root("config/dev.toml")).expect("read dev.toml")
        + "\n[tokens.keys.dev]\nsecret = \"a-demo-secret-that-is-long-enough-to-sign\"\n";
    let path = dir.path().join("dev.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    let d = &config.directory;
    assert_eq!(d.users.login_attributes, vec!["uid", "mail"]);
    assert_eq!(
        d.groups.nesting,
        latchkey::config::Nesting::Recursive { max_depth: 8 }
    );
    assert_eq!(config.claims.flags.len(), 1);
    assert_eq!(d.cache.ttl, std::time::Duration::from_secs(30));
    // The sign-in page on the demo's loopback address, its cookies without Secure.
    let portal = config.portal.expect("the demo serves the sign-in page");
    assert_eq!(portal.url.as_str(), "http://127.0.0.1:8080/");
    assert!(!portal.cookie_secure);
    assert_eq!(portal.cookie_name, "latchkey_session");
    assert_eq!(portal.session_duration, 12 * 3600);
}

#[test]
fn the_example_configuration_s_key_pairs_load_when_turned_on() {
    use latchkey_verify::{Algorithm, SigningKey};
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let private = dir.path().join("2026-12.pem");
    let key = SigningKey::generate("2026-12", Algorithm::EdDSA).expect("a key pair");
    std::io::Write::write_all(
        &mut std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&private)
            .expect("a key file"),
        key.to_pkcs8_pem().expect("PEM").as_bytes(),
    )
    .expect("write the key");
    let retired = SigningKey::generate("2026-06", Algorithm::EdDSA).expect("a key pair");
    let public = dir.path().join("2026-06.pub");
    std::fs::write(
        &public,
        retired.verifying_key().to_public_key_pem().expect("PEM"),
    )
    .expect("write the public key");
    let text = std::fs::read_to_string(root("config/latchkey.example.toml"))
        .expect("read example")
        .replace("algorithm = \"HS256\"", "algorithm = \"EdDSA\"")
        .replace("# signing_key = \"2026-11\"", "signing_key = \"2026-12\"")
        .replace(
            "[tokens.keys.2026-11]\nsecret_file = \"/etc/latchkey/token-key\"\n",
            "",
        )
        .replace("# [tokens.keys.", "[tokens.keys.")
        .replace("# private_key_file = ", "private_key_file = ")
        .replace("# public_key_file = ", "public_key_file = ")
        .replace("/etc/latchkey/2026-12.pem", &private.display().to_string())
        .replace("/etc/latchkey/2026-06.pub", &public.display().to_string())
        .replace(
            "# public_url = \"https://auth.example.org\"",
            "public_url = \"https://auth.example.org\"",
        );
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.tokens.algorithm, Algorithm::EdDSA);
    assert_eq!(config.tokens.signing_key.id(), "2026-12");
    let ids: Vec<&str> = config.tokens.keys.iter().map(|k| k.id()).collect();
    assert_eq!(ids, ["2026-06", "2026-12"]);
    assert_eq!(config.tokens.public_jwks().len(), 2);
    assert_eq!(
        config.public_base_url().map(url::Url::as_str),
        Some("https://auth.example.org/")
    );
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

#[test]
fn the_example_state_redis_section_turned_on_has_its_documented_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("token-key");
    std::fs::write(&key, "an-example-secret-that-is-long-enough-to-sign\n").expect("write key");
    let mut text = std::fs::read_to_string(root("config/latchkey.example.toml"))
        .expect("read example")
        .replace("/etc/latchkey/token-key", &key.display().to_string())
        .replace("backend = \"memory\"", "backend = \"redis\"");
    for line in [
        "[state.redis]",
        "url = \"redis://redis.internal:6379/0\"",
        "key_prefix = \"latchkey:\"",
        "connect_timeout = \"2s\"",
        "operation_timeout = \"500ms\"",
        "pool_size = 1",
    ] {
        let commented = format!("# {line}\n");
        assert!(text.contains(&commented), "{line} is not in the example");
        text = text.replace(&commented, &format!("{line}\n"));
    }
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, text).expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    let latchkey::config::StateConfig::Redis(redis) = &config.state else {
        panic!("the example's [state.redis] did not turn redis on");
    };
    assert_eq!(redis.display_url(), "redis://redis.internal:6379/0");
    assert_eq!(redis.key_prefix, "latchkey:");
    assert_eq!(redis.pool_size, 1);
    assert_eq!(redis.connect_timeout, std::time::Duration::from_secs(2));
    assert_eq!(
        redis.operation_timeout,
        std::time::Duration::from_millis(500)
    );
    assert!(redis.tls.is_none());
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}
