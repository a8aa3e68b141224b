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
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::nginx::print_tail;
use super::process::{find_tool, free_port};

/// Replaced with `127.0.0.1:<port>` in the caller's site blocks.
const LISTEN_PLACEHOLDER: &str = "{listen}";
/// What Caddy logs once it serves the configuration, that is once it holds the port.
const READY_LINE: &str = "serving initial configuration";
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// Fresh ports tried by `start` before giving up.
const START_ATTEMPTS: usize = 5;

/// A running test Caddy. See the module docs.
pub struct Caddy {
    child: Option<Child>,
    port: u16,
    log_path: PathBuf,
    // Dropped last, after `Drop::drop` has stopped the process that uses it.
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
        let mut caddy = Caddy {
            child: None,
            port: 0,
            log_path: dir.path().join("caddy.log"),
            dir,
        };
        for _ in 0..START_ATTEMPTS {
            caddy.port = free_port();
            let config = caddyfile(caddy.dir.path(), caddy.port, site_blocks);
            let path = caddy.dir.path().join("Caddyfile");
            fs::write(&path, &config).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            if caddy.launch(&path) {
                return caddy;
            }
        }
        panic!(
            "caddy did not start after {START_ATTEMPTS} attempts; log {}:\n{}",
            caddy.log_path.display(),
            caddy.log()
        );
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Everything Caddy has written to its standard error so far.
    pub fn log(&self) -> String {
        fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Spawn Caddy with the Caddyfile at `path` and wait until it serves: true, or false if it
    /// exited first (typically: the port was taken meanwhile). Panics when it neither serves nor
    /// exits within `READY_TIMEOUT`.
    fn launch(&mut self, path: &Path) -> bool {
        let log = fs::File::create(&self.log_path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", self.log_path.display()));
        let home = self.dir.path();
        let child = Command::new(caddy_bin())
            .arg("run")
            .arg("--config")
            .arg(path)
            .arg("--adapter")
            .arg("caddyfile")
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .current_dir(home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning caddy");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self.child.as_mut().expect("caddy child while launching");
            if child.try_wait().expect("polling the caddy child").is_some() {
                self.child = None;
                return false;
            }
            if self.log().contains(READY_LINE)
                && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok()
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "caddy on port {} was not ready after {READY_TIMEOUT:?}:\n{}",
                self.port,
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        if thread::panicking() {
            print_tail(
                "caddy log",
                &self.log_path,
                &format!("http://127.0.0.1:{}", self.port),
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
