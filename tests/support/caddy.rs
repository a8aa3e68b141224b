//! A throwaway Caddy for integration tests.
//!
//! Every [`Caddy`] runs its own `caddy run --config <dir>/Caddyfile --adapter caddyfile` as our
//! child, in its own temporary directory (which also serves as its home, so nothing is written
//! to the user's `~/.config/caddy` or `~/.local/share/caddy`), listening on
//! `127.0.0.1:<free port>`. The admin endpoint and automatic HTTPS are off, so instances never
//! share a port and can run in parallel threads. Dropping a `Caddy` kills the process and
//! removes the directory, also when the test panics (the log is printed then).
//!
//! The test supplies the site blocks; every `{listen}` in them becomes `127.0.0.1:<port>`. The
//! harness writes the global options block in front of them, so the test's text must not have
//! one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::process::{find_tool, listening, Process, Spec};

/// Replaced with `127.0.0.1:<port>` in the caller's site blocks.
const LISTEN_PLACEHOLDER: &str = "{listen}";
/// What Caddy logs once it serves the configuration, that is once it holds the port.
const READY_LINE: &str = "serving initial configuration";
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A running test Caddy. See the module docs.
pub struct Caddy {
    process: Process,
    // Dropped last, after `process` has stopped the child that uses it.
    dir: TempDir,
}

/// The `caddy` binary.
fn caddy_bin() -> PathBuf {
    find_tool("caddy", "the integration tests run it as a reverse proxy")
}

/// The installed Caddy's version as (major, minor, patch), from `caddy version` (which prints
/// `2.6.2` or `v2.10.0 h1:...`).
pub fn version() -> (u32, u32, u32) {
    let out = Command::new(caddy_bin())
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .expect("run caddy version");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let first = text.split_whitespace().next().unwrap_or_default();
    let mut numbers = first
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map(|n| n.parse::<u32>().ok());
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Some(major)), Some(Some(minor)), Some(Some(patch))) => (major, minor, patch),
        _ => panic!("cannot read a version in `caddy version`'s output: {text:?}"),
    }
}

impl Caddy {
    /// Start Caddy with `site_blocks` (Caddyfile text, every `{listen}` replaced with
    /// `127.0.0.1:<port>`) and wait until it serves them. Panics with Caddy's log if it does
    /// not come up.
    pub fn start(site_blocks: &str) -> Caddy {
        assert!(
            site_blocks.contains(LISTEN_PLACEHOLDER),
            "the Caddyfile has no `{LISTEN_PLACEHOLDER}` placeholder, so it would not listen on \
             the test port:\n{site_blocks}"
        );
        let dir = tempfile::Builder::new()
            .prefix("latchkey-caddy-")
            .tempdir()
            .expect("creating a temp dir for caddy");
        let home = dir.path().to_path_buf();
        let site_blocks = site_blocks.to_owned();
        let command = move |ports: &[u16]| {
            let path = home.join("Caddyfile");
            fs::write(&path, caddyfile(&home, ports[0], &site_blocks))
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            let mut command = Command::new(caddy_bin());
            command
                .arg("run")
                .arg("--config")
                .arg(&path)
                .arg("--adapter")
                .arg("caddyfile")
                .env("HOME", &home)
                .env("XDG_CONFIG_HOME", home.join("config"))
                .env("XDG_DATA_HOME", home.join("data"))
                .current_dir(&home);
            command
        };
        let process = Process::start(Spec {
            name: "caddy",
            ports: 1,
            log: dir.path().join("caddy.log"),
            other_logs: Vec::new(),
            ready_timeout: READY_TIMEOUT,
            graceful_stop: false,
            command: Box::new(command),
            ready: Box::new(|probe| {
                probe.new_log.contains(READY_LINE) && listening(probe.ports[0])
            }),
        });
        Caddy { process, dir }
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Everything Caddy has written to its standard error so far.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// `deploy/caddy/Caddyfile` pointed at Latchkey on `latchkey_port` and the application on
/// `app_port`, its application site served over plain HTTP on the harness's port, for
/// [`Caddy::start`]; the tests of `tests/forward_auth.rs` and `tests/browser.rs` run the shipped
/// example through it.
pub fn deploy_example(latchkey_port: u16, app_port: u16) -> String {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/caddy/Caddyfile");
    let text = std::fs::read_to_string(example).expect("read the example");
    assert_eq!(text.matches("127.0.0.1:8080").count(), 4, "{text}");
    assert_eq!(text.matches("127.0.0.1:9000").count(), 2, "{text}");
    assert_eq!(text.matches("app.example.org {").count(), 1, "{text}");
    // The sign-in page's own site would listen on port 443: left out here.
    let (text, signin_site) = text
        .split_once("\n# The sign-in page, on a host of its own")
        .expect("the sign-in page's site comes last");
    assert!(signin_site.contains("auth.example.org {"), "{signin_site}");
    text.replace("127.0.0.1:8080", &format!("127.0.0.1:{latchkey_port}"))
        .replace("127.0.0.1:9000", &format!("127.0.0.1:{app_port}"))
        .replace("app.example.org {", "http://{listen} {")
}

/// The global options (no admin endpoint, no automatic HTTPS, storage in `dir`) and the
/// caller's site blocks listening on `port`.
fn caddyfile(dir: &Path, port: u16, site_blocks: &str) -> String {
    format!(
        "# Generated by the latchkey test harness (tests/support/caddy.rs).\n\
         {{\n\tadmin off\n\tauto_https off\n\tstorage file_system {}\n}}\n\n{}",
        dir.join("data").display(),
        site_blocks.replace(LISTEN_PLACEHOLDER, &format!("127.0.0.1:{port}"))
    )
}
