//! The `latchkey` binary as an operator runs it: `--help`, `check`, `serve`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::time::Duration;

use support::config::TestConfig;
use support::served::{latchkey, run};
use support::service::{basic, claims, TEST_KID};
use support::slapd::Slapd;
use support::users::ALICE;

#[test]
fn help_names_the_commands_and_the_config_variable() {
    let (code, out, _) = run(latchkey().arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("serve"), "{out}");
    assert!(out.contains("check"), "{out}");
    assert!(out.contains("LATCHKEY_CONFIG"), "{out}");
}

/// What `latchkey <args>` prints before its usage line, at 100 columns.
fn help_text(args: &[&str]) -> String {
    let (code, out, err) = run(latchkey().args(args).env("COLUMNS", "100"));
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    let (about, _) = out.split_once("Usage: ").expect("a usage line");
    about.to_owned()
}

#[test]
fn each_command_s_help_describes_that_command() {
    assert_eq!(
        help_text(&["check", "--help"]),
        "Check the configuration against every directory server, without serving.\n\n\
         Validate the configuration, then connect to every directory server: bind as the service account (if\n\
         any), read the RootDSE and look for the users' base entry. Exits non-zero with the reason on the\n\
         first failure.\n\n"
    );
    assert_eq!(
        help_text(&["healthcheck", "--help"]),
        "Ask the running service whether it is alive, for container health checks.\n\n\
         Sends GET /healthz to server.listen with a 2 s timeout; exits 0 when it answers 200.\n\n"
    );
    let (_, out, _) = run(latchkey().arg("--help").env("COLUMNS", "100"));
    let (_, commands) = out.split_once("Commands:\n").expect("a command list");
    let (commands, _) = commands.split_once("\n\n").expect("the end of the list");
    assert_eq!(
        commands,
        "  serve        Serve the HTTP API\n\
         \x20 healthcheck  Ask the running service whether it is alive, for container health checks\n\
         \x20 check        Check the configuration against every directory server, without serving\n\
         \x20 keygen       Make a key pair for tokens.algorithm = \"EdDSA\" or \"ES256\"\n\
         \x20 revoke       Revoke tokens on every replica, through the shared store\n\
         \x20 help         Print this message or the help of the given subcommand(s)"
    );
}

#[test]
fn check_reports_each_server_and_exits_zero() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(&slapd).write(dir.path());

    let (code, out, err) = run(latchkey().arg("--config").arg(&config).arg("check"));

    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.starts_with("configuration: ok\n"), "{out}");
    assert!(
        out.contains(&format!("{}: connected in", slapd.url())),
        "{out}"
    );
    assert!(
        out.contains("service bind as \"cn=latchkey,ou=services,dc=example,dc=org\": ok"),
        "{out}"
    );
    assert!(out.contains("naming contexts: dc=example,dc=org"), "{out}");
    assert!(
        out.contains("users' base \"dc=example,dc=org\": found"),
        "{out}"
    );
}

#[test]
fn check_user_shows_what_a_login_would_find_without_a_password() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(&slapd)
        .member_groups()
        .claims("groups_allow", ["staff", "admins"])
        .claim("surname", "sn")
        .flag("admin", "admins")
        .access("deny", "contractors")
        .write(dir.path());

    let (code, out, err) = run(latchkey()
        .arg("--config")
        .arg(&config)
        .args(["check", "--user", "alice"]));
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let report = out
        .split_once("user \"alice\"")
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("no user report in:\n{out}"));
    assert_eq!(
        report,
        concat!(
            " (searched as the service account):\n",
            "  dn: uid=alice,ou=people,dc=example,dc=org\n",
            "  sub: alice\n",
            "  name: Alice Liddell\n",
            "  email: alice@example.org\n",
            "  sn: Liddell\n",
            "  groups (4): admins; backend; cycle-a; staff\n",
            "  token claims: {\"admin\":true,\"email\":\"alice@example.org\",\"entry\":\"80d287583c9d7875f631c1b3300c4292\",\"groups\":[\"admins\",\"staff\"],\"iss\":\"latchkey-test\",\"name\":\"Alice Liddell\",\"sub\":\"alice\",\"surname\":\"Liddell\"}\n",
            "  access: allowed\n",
        )
    );
    // No bind as alice happened: check never sees a password.
    assert!(
        !slapd.log().contains("BIND dn=\"uid=alice"),
        "{}",
        slapd.log()
    );

    let (code, out, _) = run(latchkey()
        .arg("--config")
        .arg(&config)
        .args(["check", "--user", "bob"]));
    assert_eq!(code, 0);
    assert!(
        out.ends_with("  access: refused (403): the groups satisfy access.deny\n"),
        "{out}"
    );

    let (code, _, err) = run(latchkey().arg("--config").arg(&config).args([
        "check",
        "--user",
        "twins@example.org",
        "--search-criteria",
        "mail",
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "latchkey: no single entry matches \"twins@example.org\": none, or several (the log says which); a token request would get 401\n"
    );
    let (code, _, err) = run(latchkey().arg("--config").arg(&config).args([
        "check",
        "--user",
        "alice",
        "--search-criteria",
        "cn",
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "latchkey: --search-criteria: search_criteria must be one of: uid, mail.\n"
    );
}

#[test]
fn check_fails_with_the_reason_when_a_server_is_down() {
    let mut slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(&slapd).write(dir.path());
    slapd.stop();

    let (code, out, err) = run(latchkey().arg("--config").arg(&config).arg("check"));

    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.starts_with(&format!(
            "latchkey: {}: check failed: directory unavailable: cannot connect to {}",
            slapd.url(),
            slapd.url()
        )),
        "{err}"
    );
}

#[test]
fn check_fails_when_the_service_account_is_refused() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::new(&slapd)
        .directory("bind_password", "wrong")
        .write(dir.path());

    let (code, _, err) = run(latchkey().arg("--config").arg(&config).arg("check"));

    assert_eq!(code, 1, "{err}");
    assert!(err.contains("refused the service account bind"), "{err}");
    assert!(err.contains("result code 49"), "{err}");
    assert!(
        err.contains("check directory.bind_dn and bind_password"),
        "{err}"
    );
}

#[test]
fn a_bad_configuration_stops_the_start_listing_every_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TestConfig::for_url("ldap://127.0.0.1:1")
        .key(TEST_KID, "short")
        .users("base_dn", "example.org")
        .write(dir.path());

    for command in ["check", "serve"] {
        let (code, out, err) = run(latchkey().arg("--config").arg(&config).arg(command));
        assert_eq!(code, 1, "{command}: {out}{err}");
        assert_eq!(out, "", "{command}");
        assert!(err.contains("2 problems:"), "{command}: {err}");
        assert!(
            err.contains("- tokens.keys.test-1: the secret is 5 bytes long; at least 32 random bytes are needed (make one with `openssl rand -base64 48`)"),
            "{command}: {err}"
        );
        assert!(
            err.contains("- directory.users.base_dn = \"example.org\" is not a valid DN"),
            "{command}: {err}"
        );
    }
}

#[test]
fn a_missing_configuration_file_is_named() {
    let (code, _, err) = run(latchkey().args(["--config", "/nonexistent/latchkey.toml", "check"]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "latchkey: /nonexistent/latchkey.toml: the configuration file does not exist or is not a file\n"
    );
}

#[test]
fn environment_variables_override_the_file() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    // The file names a dead server and no key; the environment supplies both.
    let config = TestConfig::for_url("ldap://127.0.0.1:1")
        .without_test_key()
        .write(dir.path());
    let secret_file = dir.path().join("key");
    std::fs::write(&secret_file, "an-environment-secret-of-enough-length\n").expect("write key");

    let (code, out, err) = run(latchkey()
        .env("LATCHKEY_CONFIG", &config)
        .env("LATCHKEY__DIRECTORY__URLS", slapd.url())
        .env("LATCHKEY__TOKENS__KEYS__FROMENV__SECRET_FILE", &secret_file)
        .env("LATCHKEY__DIRECTORY__USERS__SEARCH_ATTRIBUTES", "mail,uid")
        .env("LATCHKEY__TOKENS__DEFAULT_DURATION", "120")
        .arg("check"));

    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("signing key \"fromenv\""), "{out}");
    assert!(out.contains("duration 120s"), "{out}");
    assert!(out.contains("for [\"mail\", \"uid\"]"), "{out}");
    assert!(
        out.contains(&format!("{}: connected in", slapd.url())),
        "{out}"
    );
}

#[test]
fn serve_issues_tokens_over_http_and_never_logs_secrets() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    // The most verbose level there is: nothing may leak even here.
    let served = TestConfig::new(&slapd).serve(dir.path(), "trace");

    let (status, body) = served.request(
        "POST",
        "/auth/request-token?token_duration=60",
        &basic(ALICE.login, ALICE.password),
    );
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    let token = json["token"].as_str().expect("a token");
    assert_eq!(claims(token).sub, "alice");

    let (status, body) = served.request(
        "POST",
        "/auth/request-token",
        &basic("bob", "bob-wrong-password"),
    );
    assert_eq!(status, 401, "{body}");
    let (status, _) = served.request("GET", "/healthz", "none");
    assert_eq!(status, 200);

    std::thread::sleep(Duration::from_millis(200));
    let log = served.log();
    assert!(log.contains("outcome=\"issued\""), "{log}");
    assert!(
        log.contains(
            "login=bob client=127.0.0.1 outcome=\"refused\" reason=\"invalid_credentials\""
        ),
        "{log}"
    );
    for secret in [
        ALICE.password,
        "bob-wrong-password",
        "service-password-1",
        "integration-test-secret-0123456789abcdef",
        token,
        // the Basic value and the token's signature, in case either is logged in pieces
        basic(ALICE.login, ALICE.password).trim_start_matches("Basic "),
        token.rsplit('.').next().expect("a signature"),
    ] {
        assert!(!log.contains(secret), "the log contains {secret:?}");
    }
    assert!(!log.contains("\u{1b}["), "colour codes in a log file");
}
