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
use support::served::{latchkey, request, run, serve, Served};
use support::service::{app, basic, claims, config_toml, load_config, send, token_request, Extra};
use support::slapd::{Slapd, VerifyClient};
use support::tls::TlsFiles;

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

/// A path as a TOML string.
fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// `[directory.tls]` trusting `ca`, with more `lines`.
fn tls_section(ca: &Path, lines: &str) -> String {
    format!("[directory.tls]\nca_file = {}\n{lines}\n", quoted(ca))
}

/// `client_cert_file` and `client_key_file` lines.
fn client_lines(cert: &Path, key: &Path) -> String {
    format!(
        "client_cert_file = {}\nclient_key_file = {}\n",
        quoted(cert),
        quoted(key)
    )
}

/// The standard test configuration for `url`, with `tls` added.
fn toml(url: &str, tls: &str) -> String {
    config_toml(
        url,
        &Extra {
            sections: tls,
            ..Extra::default()
        },
    )
}

/// What `probe` (the connection `check` and the pools make) says about `url`.
async fn connect_error(url: &str, tls: &str) -> String {
    let config = load_config(&toml(url, tls));
    match probe(&config.directory, url).await {
        Ok(report) => panic!("{url} connected: {report:?}"),
        Err(DirectoryError::Unavailable(why)) => why,
        Err(other) => panic!("{url}: {other:?}"),
    }
}

/// alice's token request against `url` with `tls`, in-process.
async fn alice(url: &str, tls: &str) -> support::service::Answer {
    let app = app(&load_config(&toml(url, tls))).await;
    send(&app, token_request("alice", "alice-password-1", "")).await
}

fn assert_issued(answer: &support::service::Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(claims(answer.token()).sub, "alice");
}

fn assert_unavailable(answer: &support::service::Answer) {
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(answer.body, unavailable_body());
    assert_eq!(answer.header("retry-after"), "5");
}

/// alice's token request to the served binary is the 503 of an unreachable directory.
fn assert_served_alice_unavailable(served: &Served) {
    let answer = request(
        served.port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic("alice", "alice-password-1"))],
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

    let answer = alice(&slapd.ldaps_url(), &tls_section(&files.ca, "")).await;

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
    let served = serve(
        files.dir(),
        &toml(&slapd.ldaps_url(), &tls_section(&files.other_ca, "")),
        "info",
    );

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

    let answer = alice(&slapd.url(), &tls_section(&files.ca, "starttls = true")).await;

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
    let served = serve(
        files.dir(),
        &toml(&slapd.url(), &tls_section(&files.ca, "starttls = true")),
        "info",
    );

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
    let named = tls_section(&files.ca, "server_name = \"ldap.test\"");
    assert_issued(&alice(&url, &named).await);

    let wrong = tls_section(&files.ca, "server_name = \"directory.example.org\"");
    assert_unavailable(&alice(&url, &wrong).await);
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
    let tls = "[directory.tls]\ninsecure_skip_verify = true\n";
    let served = serve(files.dir(), &toml(&slapd.ldaps_url(), tls), "info");

    let (status, body) = served.request(
        "POST",
        "/auth/request-token",
        &basic("alice", "alice-password-1"),
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
    let without = tls_section(&files.ca, "");
    assert_unavailable(&alice(&url, &without).await);
    assert_eq!(connect_error(&url, &without).await, refused);
    assert!(
        slapd
            .log()
            .contains("TLS: can't accept: Certificate is required"),
        "{}",
        slapd.log()
    );

    // With one from a CA the server does not trust.
    let stranger = tls_section(
        &files.ca,
        &client_lines(&files.stranger_cert, &files.stranger_key),
    );
    assert_unavailable(&alice(&url, &stranger).await);
    assert_eq!(connect_error(&url, &stranger).await, refused);
    assert!(simple_binds(&slapd).is_empty(), "{}", slapd.log());

    // With the right one, over ldaps and over StartTLS.
    let client = client_lines(&files.client_cert, &files.client_key);
    assert_issued(&alice(&url, &tls_section(&files.ca, &client)).await);
    assert_issued(
        &alice(
            &slapd.url(),
            &tls_section(&files.ca, &format!("{client}starttls = true")),
        )
        .await,
    );
    assert_eq!(simple_binds(&slapd).len(), 4, "{}", slapd.log());
}

#[actix_web::test]
async fn a_server_demanding_a_client_certificate_over_tls_1_2_refuses_in_the_handshake() {
    let files = TlsFiles::generate();
    let slapd = Slapd::start_tls_with_conf(&files, VerifyClient::Demand, TLS12_ONLY);
    let url = slapd.ldaps_url();

    let without = tls_section(&files.ca, "");
    assert_unavailable(&alice(&url, &without).await);
    assert_eq!(
        connect_error(&url, &without).await,
        format!(
            "cannot connect to {url}: TLS handshake failed: the server closed the connection (tls handshake eof); it may want a client certificate it trusts (directory.tls.client_cert_file), or not speak TLS on this port"
        )
    );

    let client = client_lines(&files.client_cert, &files.client_key);
    assert_issued(&alice(&url, &tls_section(&files.ca, &client)).await);
    assert!(slapd.log().contains("tls_proto=TLS1.2"), "{}", slapd.log());
}

#[actix_web::test]
async fn min_version_1_3_is_kept_to() {
    let files = TlsFiles::generate();
    let min13 = tls_section(&files.ca, "min_version = \"1.3\"");

    // This slapd (GnuTLS) speaks TLS 1.3.
    let modern = Slapd::start_tls(&files, VerifyClient::Try);
    assert_issued(&alice(&modern.ldaps_url(), &min13).await);
    assert!(
        modern.log().contains("tls_proto=TLS1.3"),
        "{}",
        modern.log()
    );

    // This one stops at TLS 1.2: fine by default, refused with min_version = "1.3".
    let old = Slapd::start_tls_with_conf(&files, VerifyClient::Try, TLS12_ONLY);
    let url = old.ldaps_url();
    assert_issued(&alice(&url, &tls_section(&files.ca, "")).await);
    assert!(old.log().contains("tls_proto=TLS1.2"), "{}", old.log());
    assert_unavailable(&alice(&url, &min13).await);
    assert_eq!(
        connect_error(&url, &min13).await,
        format!(
            "cannot connect to {url}: TLS handshake failed: peer is incompatible: ServerTlsVersionIsDisabledByOurConfig; the server and Latchkey share no TLS version or cipher (directory.tls.min_version = \"1.3\")"
        )
    );
}

// ---------------------------------------------------------------------------------------------
// latchkey check
// ---------------------------------------------------------------------------------------------

/// Run `latchkey --config <toml> check`: (exit code, stdout, stderr).
fn check(dir: &Path, toml: &str) -> (i32, String, String) {
    let config = dir.join("check.toml");
    std::fs::write(&config, toml).expect("write config");
    run(latchkey().arg("--config").arg(&config).arg("check"))
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
    let toml = toml(
        &ldaps,
        &tls_section(
            &files.ca,
            &client_lines(&files.client_cert, &files.client_key),
        ),
    )
    .replace(
        &format!("urls = [\"{ldaps}\"]"),
        &format!("urls = [\"{ldaps}\", \"{plain}\"]"),
    );

    let (code, out, err) = check(files.dir(), &toml);

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
    let toml = self::toml(
        &plain,
        &tls_section(
            &files.ca,
            "starttls = true\nserver_name = \"ldap.test\"\nmin_version = \"1.3\"",
        ),
    );
    let (code, out, err) = check(files.dir(), &toml);
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

    let insecure = "[directory.tls]\ninsecure_skip_verify = true\n";
    let (code, out, err) = check(files.dir(), &toml(&ldaps, insecure));
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

    let (code, out, err) = check(
        files.dir(),
        &toml(&ldaps, &tls_section(&files.other_ca, "")),
    );
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(
        err,
        format!(
            "latchkey: {ldaps}: check failed: directory unavailable: cannot connect to {ldaps}: TLS certificate problem: invalid peer certificate: UnknownIssuer; check directory.tls.ca_file and server_name\n"
        )
    );
}
