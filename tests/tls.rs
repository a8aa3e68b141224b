//! TLS to the directory against a real slapd serving TLS with certificates each test makes:
//! ldaps and StartTLS, the CA file, the server name, client certificates, the minimum version,
//! `insecure_skip_verify`, and what `latchkey check` says about each server.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use latchkey::config::INSECURE_WARNING;
use latchkey::directory::{probe, DirectoryError};
use serde_json::json;
use support::config::TestConfig;
use support::served::{latchkey, request, run, Served};
use support::service::{basic, login_as, send};
use support::slapd::{Slapd, VerifyClient};
use support::tls::TlsFiles;
use support::users::ALICE;

const STARTTLS_OID: &str = "1.3.6.1.4.1.1466.20037";

/// GnuTLS priority string for a slapd that speaks TLS 1.2 and nothing newer.
const TLS12_ONLY: &str = "TLSCipherSuite NORMAL:-VERS-TLS1.3";

/// The body of every 503.
fn unavailable_body() -> serde_json::Value {
    json!({
        "error": "directory_unavailable",
        "message": "The directory cannot be reached right now; try again in a few seconds.",
        "status": 503
    })
}

/// The standard test configuration for `url`, trusting `ca`.
fn tls(url: &str, ca: &Path) -> TestConfig {
    TestConfig::for_url(url).tls("ca_file", ca)
}

/// `config` with the client certificate and key `files` made for the test CA.
fn with_client(config: TestConfig, files: &TlsFiles) -> TestConfig {
    config
        .tls("client_cert_file", files.client_cert.as_path())
        .tls("client_key_file", files.client_key.as_path())
}

/// What `probe` (the connection `check` and the pools make) says about `url`.
async fn connect_error(url: &str, config: &TestConfig) -> String {
    let config = config.load();
    match probe(&config.directory, url).await {
        Ok(report) => panic!("{url} connected: {report:?}"),
        Err(DirectoryError::Unavailable(why)) => why,
        Err(other) => panic!("{url}: {other:?}"),
    }
}

/// alice's token request with `config`, in-process.
async fn alice(config: &TestConfig) -> support::service::Answer {
    send(&config.app().await, login_as(&ALICE, "")).await
}

fn assert_issued(answer: &support::service::Answer) {
    assert_eq!(answer.issued().sub, "alice");
}

fn assert_unavailable(answer: &support::service::Answer) {
    answer.assert_status(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body, unavailable_body());
    assert_eq!(answer.header("retry-after"), "5");
}

/// alice's token request to the served binary is the 503 of an unreachable directory.
fn assert_served_alice_unavailable(served: &Served) {
    let answer = request(
        served.port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(ALICE.login, ALICE.password))],
    );
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.header("Retry-After"), Some("5"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer.body).expect("a JSON body"),
        unavailable_body()
    );
}

/// The `BIND ... mech=SIMPLE` lines of slapd's log: each says the connection's `ssf`.
fn simple_binds(slapd: &Slapd) -> Vec<String> {
    slapd
        .log()
        .lines()
        .filter(|l| l.contains(" BIND dn=") && l.contains("mech=SIMPLE"))
        .map(str::to_owned)
        .collect()
}

/// What the served binary has logged once it contains `needle` (or after 5 s).
fn log_with(served: &Served, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = served.log();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[actix_web::test]
async fn ldaps_with_the_right_ca_issues_a_token_over_tls() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);

    let answer = alice(&tls(&slapd.ldaps_url(), &files.ca)).await;

    assert_issued(&answer);
    let binds = simple_binds(&slapd);
    // The service account's bind, then alice's.
    assert_eq!(binds.len(), 2, "{binds:?}");
    for bind in &binds {
        assert!(
            bind.ends_with("bind_ssf=0 ssf=256"),
            "a bind outside TLS: {bind}"
        );
    }
    assert!(slapd.log().contains("TLS established"), "{}", slapd.log());
}

#[test]
fn ldaps_with_the_wrong_ca_is_503_and_the_log_names_the_certificate_problem() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);
    let served = tls(&slapd.ldaps_url(), &files.other_ca).serve(files.dir(), "info");

    assert_served_alice_unavailable(&served);
    let why = format!(
        "cannot connect to {}: TLS certificate problem: invalid peer certificate: UnknownIssuer; check directory.tls.ca_file and server_name",
        slapd.ldaps_url()
    );
    let log = log_with(&served, "directory unavailable");
    assert!(
        log.lines().any(|l| l.contains(" WARN ")
            && l.contains("directory unavailable")
            && l.contains(&why)),
        "{log}"
    );
    // No LDAP operation reached the server: the handshake failed first.
    assert!(simple_binds(&slapd).is_empty(), "{}", slapd.log());
}

#[actix_web::test]
async fn starttls_with_the_right_ca_upgrades_before_anything_else() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);

    let answer = alice(&tls(&slapd.url(), &files.ca).tls("starttls", true)).await;

    assert_issued(&answer);
    let log = slapd.log();
    // Every connection's first operation is StartTLS, which the server accepted.
    let first_ops: Vec<&str> = log.lines().filter(|l| l.contains(" op=0 ")).collect();
    assert!(!first_ops.is_empty(), "{log}");
    for line in first_ops {
        assert!(
            line.contains(&format!("op=0 EXT oid={STARTTLS_OID}"))
                || line.contains("op=0 STARTTLS")
                || line.contains("op=0 RESULT oid= err=0 "),
            "an operation before StartTLS: {line}"
        );
    }
    let binds = simple_binds(&slapd);
    assert_eq!(binds.len(), 2, "{binds:?}");
    assert!(
        binds.iter().all(|b| b.ends_with("bind_ssf=0 ssf=256")),
        "{binds:?}"
    );
}

#[test]
fn starttls_to_a_server_without_tls_is_503_and_never_falls_back_to_plaintext() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start();
    let served = tls(&slapd.url(), &files.ca)
        .tls("starttls", true)
        .serve(files.dir(), "info");

    assert_served_alice_unavailable(&served);
    let why = format!(
        "cannot connect to {}: the server refused StartTLS (result code 2: unsupported extended operation); configure TLS on the server, or use an ldaps:// URL",
        slapd.url()
    );
    let log = log_with(&served, "directory unavailable");
    assert!(log.contains(&why), "{log}");
    assert!(slapd.log().contains(&format!("EXT oid={STARTTLS_OID}")));
    // The password never went out in the clear: no bind at all.
    assert!(!slapd.log().contains(" BIND "), "{}", slapd.log());
}

#[actix_web::test]
async fn the_server_name_can_differ_from_the_host_connected_to() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);
    let url = slapd.ldaps_url();

    // Connect to 127.0.0.1 but verify the certificate as ldap.test.
    let named = tls(&url, &files.ca).tls("server_name", "ldap.test");
    assert_issued(&alice(&named).await);

    let wrong = tls(&url, &files.ca).tls("server_name", "directory.example.org");
    assert_unavailable(&alice(&wrong).await);
    assert_eq!(
        connect_error(&url, &wrong).await,
        format!(
            "cannot connect to {url}: TLS certificate problem: invalid peer certificate: certificate not valid for name \"directory.example.org\"; certificate is only valid for IpAddress(127.0.0.1), DnsName(\"localhost\") or DnsName(\"ldap.test\"); check directory.tls.ca_file and server_name"
        )
    );
}

#[test]
fn insecure_skip_verify_accepts_an_unknown_ca_and_warns_at_start() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);
    let served = TestConfig::for_url(&slapd.ldaps_url())
        .tls("insecure_skip_verify", true)
        .serve(files.dir(), "info");

    let (status, body) = served.request(
        "POST",
        "/auth/request-token",
        &basic(ALICE.login, ALICE.password),
    );

    assert_eq!(status, 200, "{body}");
    let log = served.log();
    let warning = log
        .lines()
        .find(|l| l.contains(INSECURE_WARNING))
        .unwrap_or_else(|| panic!("no warning in:\n{log}"));
    assert!(warning.contains(" WARN "), "{warning}");
    // Logged once, at start, before the first request.
    assert_eq!(log.matches(INSECURE_WARNING).count(), 1, "{log}");
    assert!(
        log.find(INSECURE_WARNING) < log.find("latchkey starting"),
        "{log}"
    );
    // Still encrypted.
    assert!(simple_binds(&slapd)
        .iter()
        .all(|b| b.ends_with("bind_ssf=0 ssf=256")));
}

#[actix_web::test]
async fn a_server_demanding_a_client_certificate_gets_one() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Demand);
    let url = slapd.ldaps_url();
    let refused = format!(
        "cannot connect to {url}: the server closed the connection right after the TLS handshake, which is how servers refuse a client certificate they do not trust (or the lack of one): check directory.tls.client_cert_file and client_key_file"
    );

    // Without a certificate.
    let without = tls(&url, &files.ca);
    assert_unavailable(&alice(&without).await);
    assert_eq!(connect_error(&url, &without).await, refused);
    assert!(
        slapd
            .log()
            .contains("TLS: can't accept: Certificate is required"),
        "{}",
        slapd.log()
    );

    // With one from a CA the server does not trust.
    let stranger = tls(&url, &files.ca)
        .tls("client_cert_file", files.stranger_cert.as_path())
        .tls("client_key_file", files.stranger_key.as_path());
    assert_unavailable(&alice(&stranger).await);
    assert_eq!(connect_error(&url, &stranger).await, refused);
    assert!(simple_binds(&slapd).is_empty(), "{}", slapd.log());

    // With the right one, over ldaps and over StartTLS.
    assert_issued(&alice(&with_client(tls(&url, &files.ca), &files)).await);
    assert_issued(
        &alice(&with_client(tls(&slapd.url(), &files.ca), &files).tls("starttls", true)).await,
    );
    assert_eq!(simple_binds(&slapd).len(), 4, "{}", slapd.log());
}

#[actix_web::test]
async fn a_server_demanding_a_client_certificate_over_tls_1_2_refuses_in_the_handshake() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls_with_conf(&files, VerifyClient::Demand, TLS12_ONLY);
    let url = slapd.ldaps_url();

    let without = tls(&url, &files.ca);
    assert_unavailable(&alice(&without).await);
    assert_eq!(
        connect_error(&url, &without).await,
        format!(
            "cannot connect to {url}: TLS handshake failed: the server closed the connection (tls handshake eof); it may want a client certificate it trusts (directory.tls.client_cert_file), or not speak TLS on this port"
        )
    );

    assert_issued(&alice(&with_client(tls(&url, &files.ca), &files)).await);
    assert!(slapd.log().contains("tls_proto=TLS1.2"), "{}", slapd.log());
}

#[actix_web::test]
async fn min_version_1_3_is_kept_to() {
    let files = TlsFiles::generate();
    let min13 = |url: &str| tls(url, &files.ca).tls("min_version", "1.3");

    // This slapd (GnuTLS) speaks TLS 1.3.
    let modern = Slapd::start_tls(&files, VerifyClient::Try);
    assert_issued(&alice(&min13(&modern.ldaps_url())).await);
    assert!(
        modern.log().contains("tls_proto=TLS1.3"),
        "{}",
        modern.log()
    );

    // This one stops at TLS 1.2: fine by default, refused with min_version = "1.3".
    let old = Slapd::start_tls_with_conf(&files, VerifyClient::Try, TLS12_ONLY);
    let url = old.ldaps_url();
    assert_issued(&alice(&tls(&url, &files.ca)).await);
    assert!(old.log().contains("tls_proto=TLS1.2"), "{}", old.log());
    assert_unavailable(&alice(&min13(&url)).await);
    assert_eq!(
        connect_error(&url, &min13(&url)).await,
        format!(
            "cannot connect to {url}: TLS handshake failed: peer is incompatible: ServerTlsVersionIsDisabledByOurConfig; the server and Latchkey share no TLS version or cipher (directory.tls.min_version = \"1.3\")"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// latchkey check
// ---------------------------------------------------------------------------------------------

/// Run `latchkey --config <config> check`: (exit code, stdout, stderr).
fn check(dir: &Path, config: &TestConfig) -> (i32, String, String) {
    let path = config.write(dir);
    run(latchkey().arg("--config").arg(&path).arg("check"))
}

/// The lines of `out` about `url`: from its "connected" line to the next server's.
fn server_lines<'a>(out: &'a str, url: &str) -> Vec<&'a str> {
    let mut lines = out
        .lines()
        .skip_while(|l| !l.starts_with(&format!("{url}: connected in ")));
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no report for {url} in:\n{out}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| l.starts_with("  ")))
        .collect()
}

#[test]
fn check_reports_the_encryption_of_every_server() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);
    let ldaps = slapd.ldaps_url();
    let plain = slapd.url();
    let config = with_client(tls(&ldaps, &files.ca), &files).urls(&[&ldaps, &plain]);

    let (code, out, err) = check(files.dir(), &config);

    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.starts_with(&format!(
            "configuration: ok\n  warning: directory.urls: \"{plain}\" is plaintext (ldap:// without directory.tls.starttls) while other servers use TLS; passwords sent to it cross the network unencrypted\n"
        )),
        "{out}"
    );
    assert_eq!(
        server_lines(&out, &ldaps)[1],
        format!(
            "  encryption: ldaps (TLS 1.2 or 1.3); server certificate verified for \"127.0.0.1\" against {}; client certificate {}",
            files.ca.display(),
            files.client_cert.display()
        )
    );
    assert_eq!(
        server_lines(&out, &plain)[1],
        "  encryption: none (ldap:// without StartTLS): passwords cross the network unencrypted"
    );

    // StartTLS, verified as another name, TLS 1.3 only.
    let config = tls(&plain, &files.ca)
        .tls("starttls", true)
        .tls("server_name", "ldap.test")
        .tls("min_version", "1.3");
    let (code, out, err) = check(files.dir(), &config);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        server_lines(&out, &plain)[1],
        format!(
            "  encryption: StartTLS (TLS 1.3); server certificate verified for \"ldap.test\" against {}",
            files.ca.display()
        )
    );
    assert!(out.contains("\n  StartTLS offered: yes\n"), "{out}");
}

#[test]
fn check_warns_about_insecure_skip_verify_and_fails_on_a_certificate_problem() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls(&files, VerifyClient::Try);
    let ldaps = slapd.ldaps_url();

    let insecure = TestConfig::for_url(&ldaps).tls("insecure_skip_verify", true);
    let (code, out, err) = check(files.dir(), &insecure);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.starts_with(&format!(
            "configuration: ok\n  warning: {INSECURE_WARNING}\n"
        )),
        "{out}"
    );
    assert_eq!(
        server_lines(&out, &ldaps)[1],
        "  encryption: ldaps (TLS 1.2 or 1.3); server certificate NOT verified (directory.tls.insecure_skip_verify)"
    );

    let (code, out, err) = check(files.dir(), &tls(&ldaps, &files.other_ca));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        err,
        format!(
            "latchkey: {ldaps}: check failed: directory unavailable: cannot connect to {ldaps}: TLS certificate problem: invalid peer certificate: UnknownIssuer; check directory.tls.ca_file and server_name\n"
        )
    );
}
