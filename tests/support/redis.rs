//! A throwaway redis-server for integration tests.
//!
//! Every [`Redis`] owns a temporary directory (its log and nothing else: persistence is off)
//! and its own `redis-server` child listening on `127.0.0.1:<free port>`, with no password and
//! protected mode off (it only listens on loopback). Dropping it kills the child and removes
//! the directory, also when the test panics. [`Redis::stop`] and [`Redis::restart`] let a test
//! take the server away and bring it back on the same port, as an outage would; the data does
//! not survive a restart (an outage that loses Redis's memory is the harder case).
//!
//! The API is blocking std code; [`Redis::cli`] runs `redis-cli` against the server, for
//! tests that look at or change the keys directly.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::process::{find_tool, listening, Process, Spec};

const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Redis::restart`] retries while the old port is not free yet.
const RESTART_BIND_RETRY: Duration = Duration::from_secs(10);
/// What redis-server logs once it accepts connections.
const READY_MARKER: &str = "Ready to accept connections";
/// Replaced with the port in the extra arguments of `start_with`.
const PORT_PLACEHOLDER: &str = "{port}";

/// A running test redis-server. See the module docs.
pub struct Redis {
    process: Process,
    // Declared last so it is dropped last, after `process` has killed the child that uses it.
    dir: TempDir,
}

impl Redis {
    /// Start a fresh, empty redis-server on a free loopback port.
    pub fn start() -> Redis {
        Redis::start_with(Vec::new())
    }

    /// [`Redis::start`] speaking TLS only (`rediss://`, see [`Redis::tls_url`]) with the
    /// server certificate of `files`, and requiring a client certificate signed by its CA.
    /// [`Redis::cli`] does not speak TLS.
    pub fn start_tls(files: &super::tls::TlsFiles) -> Redis {
        let path = |p: &Path| p.display().to_string();
        Redis::start_with(vec![
            "--tls-port".into(),
            PORT_PLACEHOLDER.into(),
            "--port".into(),
            "0".into(),
            "--tls-cert-file".into(),
            path(&files.server_cert),
            "--tls-key-file".into(),
            path(&files.server_key),
            "--tls-ca-cert-file".into(),
            path(&files.ca),
            "--tls-auth-clients".into(),
            "yes".into(),
        ])
    }

    /// `extra` goes after the usual arguments; `{port}` in it is the port.
    fn start_with(extra: Vec<String>) -> Redis {
        let bin = find_tool("redis-server", "the shared-state tests need a Redis server");
        let dir = tempfile::Builder::new()
            .prefix("latchkey-redis-")
            .tempdir()
            .expect("creating a temp dir for redis-server");
        let work = dir.path().to_path_buf();
        let process = Process::start(Spec {
            name: "redis-server",
            ports: 1,
            log: dir.path().join("redis.log"),
            other_logs: Vec::new(),
            ready_timeout: READY_TIMEOUT,
            graceful_stop: false,
            command: Box::new(move |ports| {
                let mut command = redis_command(&bin, &work, ports[0]);
                let port = ports[0].to_string();
                command.args(extra.iter().map(|a| a.replace(PORT_PLACEHOLDER, &port)));
                command
            }),
            ready: Box::new(|probe| {
                probe.new_log.contains(READY_MARKER) && listening(probe.ports[0])
            }),
        });
        Redis { process, dir }
    }

    /// `rediss://127.0.0.1:PORT`, for a server of [`Redis::start_tls`].
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port())
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Kill the server (SIGKILL, by its PID): an outage. Nothing if it is not running.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Start the server again on the same port, empty, and wait until it accepts connections.
    pub fn restart(&mut self) {
        self.process.restart(RESTART_BIND_RETRY);
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Run `redis-cli` with `args` against this server and return its standard output,
    /// trimmed; panics when it fails.
    pub fn cli(&self, args: &[&str]) -> String {
        let cli = find_tool(
            "redis-cli",
            "the shared-state tests read keys with redis-cli",
        );
        let out = Command::new(&cli)
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", cli.display()));
        assert!(
            out.status.success(),
            "redis-cli {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

fn redis_command(bin: &PathBuf, dir: &Path, port: u16) -> Command {
    let mut command = Command::new(bin);
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "no",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
    ]);
    command.arg(dir);
    command
}
