//! `openapi.yaml` against the real service, by an outside fuzzer: schemathesis generates
//! requests from the document (values it allows and values it forbids, and methods it does not
//! declare) and sends them to a served Latchkey on a real slapd. Every answer must be one the
//! document declares, with the declared headers and body; a value the document allows must not
//! be refused as malformed, one it forbids must be refused, and no answer may be a 5xx.
//!
//! schemathesis comes from PyPI, installed by `scripts/install-test-deps` into a virtualenv
//! under `.latchkey-dev/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use support::config::TestConfig;
use support::process::find_tool;
use support::served::request;
use support::service::basic;
use support::slapd::Slapd;
use support::users::ALICE;

/// Test cases per operation and phase: enough to find what the document gets wrong, few enough
/// for the run to stay well under two minutes.
const MAX_EXAMPLES: &str = "50";

/// The served configuration: the kit's (search attributes `uid` and `mail`, as the document
/// states them), with the brute-force protection off, so that the fuzzer's many wrong
/// credentials do not end in bans, and failures answered at once; the sign-in pages on (the
/// loopback demo's settings), so that their routes are fuzzed too.
///
/// `[admin] require` is set so that `/auth/revoke` exists; the fuzzer's token (alice's, with no
/// groups in this configuration) never satisfies it, so nothing is revoked through it. The
/// fuzzer may sign that token out (`POST /auth/logout`); every route then answers it with the
/// documented 401 `token_revoked`.
fn config(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd)
        .no_brute_force()
        .portal("url", "http://127.0.0.1")
        .portal("cookie_secure", false)
        .set("admin", "require", "admins")
}

/// schemathesis's configuration: which credentials go with which security scheme of the
/// document (a fixture user's login for `basic`, a token of theirs for `bearer`).
fn schemathesis_toml(token: &str) -> String {
    format!(
        "[auth.openapi.basic]\nusername = \"{}\"\npassword = \"{}\"\n\n\
         [auth.openapi.bearer]\nbearer = \"{token}\"\n",
        ALICE.login, ALICE.password
    )
}

#[test]
fn schemathesis_finds_no_difference_between_openapi_yaml_and_the_server() {
    let st = find_tool(
        "schemathesis",
        "the OpenAPI fuzz test runs schemathesis against the served API",
    );
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let served = config(&slapd).serve(dir.path(), "warn");

    let login = request(
        served.port,
        "POST",
        "/auth/request-token?token_duration=3600",
        &[("Authorization", &basic(ALICE.login, ALICE.password))],
    );
    assert_eq!(login.status, 200, "{}", login.body);
    let json: serde_json::Value = serde_json::from_str(&login.body).expect("JSON");
    let token = json["token"].as_str().expect("a token");
    let settings = dir.path().join("schemathesis.toml");
    std::fs::write(&settings, schemathesis_toml(token)).expect("write schemathesis.toml");

    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    let output = Command::new(&st)
        .arg("--no-color")
        .arg("--config-file")
        .arg(&settings)
        .arg("run")
        .arg(&spec)
        .args(["--url", &format!("http://127.0.0.1:{}", served.port)])
        .args(["--checks", "all"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        // One worker: hypothesis describes its filters by parsing their source with `ast`, and
        // Python 3.11's AST constructor fails its own recursion-depth check when two threads
        // do that at once ("AST constructor recursion depth mismatch"), a schemathesis Runtime
        // Error that says nothing of the API.
        .args(["--workers", "1"])
        .args(["--request-timeout", "10"])
        .args(["--generation-database", "none"])
        // Its working files (reports, caches) go to the temporary directory.
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "schemathesis found differences ({}):\n{stdout}\n{stderr}\n--- latchkey log ---\n{}",
        output.status,
        served.log()
    );
    // It did test something, and the service never failed.
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(!served.log().contains("panicked"), "{}", served.log());
}
