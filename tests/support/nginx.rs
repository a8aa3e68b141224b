//! A throwaway nginx for integration tests.
//!
//! Every [`Nginx`] owns its own temporary directory (generated `nginx.conf`,
//! pid file, error and access logs, and the `*_temp` directories) and its own
//! `nginx` master process, started in the foreground as our child and
//! listening on `127.0.0.1:<free port>`. Nothing is shared between instances,
//! so tests can run in parallel threads. Dropping an `Nginx` stops the master
//! (which stops its workers) and removes the directory, also when the test
//! panics.
//!
//! The test supplies one `server { ... }` block; the harness writes the rest
//! of the configuration. Only modules compiled into the nginx binary are
//! available (Debian's `nginx` package has `auth_request`, `proxy`,
//! `rewrite`, ...; `nginx -V` lists them): no dynamic modules are loaded.
//!
//! Mind nginx's phases when guarding a location with `auth_request`: a
//! `return` in the same location runs in the rewrite phase, before the
//! access phase where `auth_request` asks its backend, so the location
//! answers without asking. Produce the content in the content phase
//! instead (`proxy_pass`, a file, or `try_files /nonexistent @named;` with
//! the `return` in `location @named`): `tests/nginx_harness.rs` shows how.
//!
//! The API is blocking std code; calling it from `#[tokio::test]` or
//! `#[actix_web::test]` is fine (start-up takes a few tens of milliseconds).

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{find_tool, free_port, INSTALL_HINT};

/// Replaced with `127.0.0.1:<port>` in the caller's server block.
const LISTEN_PLACEHOLDER: &str = "{listen}";
/// The `*_temp_path` directives of the http modules compiled into nginx. Each
/// gets a directory of the same name in the temp dir (nginx creates it).
const TEMP_PATHS: [&str; 5] = [
    "client_body_temp",
    "proxy_temp",
    "fastcgi_temp",
    "uwsgi_temp",
    "scgi_temp",
];
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `Drop` waits for the master to exit after SIGTERM before it
/// kills it (and its workers) with SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Fresh ports tried by `start` before giving up.
const START_ATTEMPTS: usize = 5;
/// Lines of each log shown when a test panics while an `Nginx` is alive.
const LOG_TAIL_ON_PANIC: usize = 60;

/// A running test nginx. See the module docs.
pub struct Nginx {
    child: Option<Child>,
    port: u16,
    nginx_bin: PathBuf,
    conf_path: PathBuf,
    pid_path: PathBuf,
    error_log_path: PathBuf,
    access_log_path: PathBuf,
    // Declared last so it is dropped last, after `Drop::drop` has stopped
    // the processes that use it.
    dir: TempDir,
}

/// Why one launch attempt did not come up.
enum LaunchFailure {
    /// nginx exited before it was ready (typically: port taken).
    Exited(ExitStatus),
}

impl Nginx {
    /// Start nginx with `server_block` (the text of one `server { ... }`
    /// block, every `{listen}` in it replaced with `127.0.0.1:<port>`) and
    /// wait until it accepts connections. The text goes verbatim into the
    /// `http { ... }` block, so `upstream` or `map` blocks may come with it.
    ///
    /// Panics with nginx's message and the generated configuration if
    /// `nginx -t` rejects it.
    pub fn start(server_block: &str) -> Nginx {
        if !server_block.contains(LISTEN_PLACEHOLDER) {
            panic!(
                "the nginx server block has no `{LISTEN_PLACEHOLDER}` placeholder \
                 (write `listen {LISTEN_PLACEHOLDER};`), so it would not listen on the \
                 test port:\n{server_block}"
            );
        }
        let nginx_bin = find_tool("nginx", "the integration tests run it as a reverse proxy");

        let dir = tempfile::Builder::new()
            .prefix("latchkey-nginx-")
            .tempdir()
            .expect("creating a temp dir for nginx");
        // Private whatever the umask, so that what the workers may do in it
        // does not depend on the environment (see `nginx_conf`).
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("chmod 700 {}: {e}", dir.path().display()));
        let mut nginx = Nginx {
            child: None,
            port: 0,
            nginx_bin,
            conf_path: dir.path().join("nginx.conf"),
            pid_path: dir.path().join("nginx.pid"),
            error_log_path: dir.path().join("error.log"),
            access_log_path: dir.path().join("access.log"),
            dir,
        };
        // From here on a panic drops `nginx`, which stops any child.
        let mut last_exit = None;
        for attempt in 0..START_ATTEMPTS {
            nginx.port = free_port();
            let conf = nginx_conf(nginx.dir.path(), nginx.port, server_block);
            fs::write(&nginx.conf_path, &conf)
                .unwrap_or_else(|e| panic!("writing {}: {e}", nginx.conf_path.display()));
            if attempt == 0 {
                // `nginx -t` does not bind the listen address, so one check
                // covers every port.
                nginx.check_config(&conf);
            }
            match nginx.launch() {
                Ok(()) => return nginx,
                // Most likely another process grabbed the port between our
                // probe and nginx's bind: try another one.
                Err(LaunchFailure::Exited(status)) => last_exit = Some(status),
            }
        }
        panic!(
            "nginx did not start after {START_ATTEMPTS} attempts (last exit: {}); error log {}:\n{}",
            last_exit.map_or_else(|| "none".to_string(), |s| s.to_string()),
            nginx.error_log_path.display(),
            nginx.error_log()
        );
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp dir holding the configuration, logs and temp files. It is
    /// removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PID of the nginx master process (our child).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("nginx child present while the Nginx is alive")
            .id()
    }

    /// PIDs of the master's children (the worker processes), from `/proc`.
    pub fn worker_pids(&self) -> Vec<u32> {
        child_pids(self.pid())
    }

    /// Everything nginx has logged so far, at level `info` and above
    /// (plus anything nginx printed to stdout or stderr).
    ///
    /// nginx writes a request's problems (`[error] ... upstream ...`) while
    /// it handles it, usually before the client has the whole response, but
    /// poll if a test depends on a line being there.
    pub fn error_log(&self) -> String {
        read_log(&self.error_log_path)
    }

    /// The access log, one line per finished request in the `combined`
    /// format: `127.0.0.1 - - [time] "GET / HTTP/1.1" 200 6 "-" "-"`.
    /// Subrequests (such as `auth_request`'s) are not logged.
    ///
    /// nginx writes the line when it finishes the request, which can be
    /// after the client has its response: poll for it.
    pub fn access_log(&self) -> String {
        read_log(&self.access_log_path)
    }

    /// `nginx -t`: panic with nginx's message and `conf` if it fails.
    fn check_config(&self, conf: &str) {
        let out = Command::new(&self.nginx_bin)
            .arg("-t")
            .args(self.common_args())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {} -t: {e}", self.nginx_bin.display()));
        if !out.status.success() {
            panic!(
                "nginx rejected the generated configuration ({}):\n{}{}\n\
                 (an \"unknown directive\" can also mean that this nginx was built without \
                 the module: `nginx -V` lists them; {INSTALL_HINT})\n\
                 --- {} ---\n{conf}--- end of nginx.conf ---",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.conf_path.display()
            );
        }
    }

    /// `-p <dir>/ -c <dir>/nginx.conf -e stderr`. `-e stderr` keeps
    /// messages from before the configuration is read (and all of `nginx
    /// -t`'s) off the compiled-in error log path.
    fn common_args(&self) -> Vec<String> {
        vec![
            "-p".to_string(),
            format!("{}/", self.dir.path().display()),
            "-c".to_string(),
            self.conf_path.display().to_string(),
            "-e".to_string(),
            "stderr".to_string(),
        ]
    }

    /// Spawn nginx on `self.port` and wait until it is ready. Returns `Err`
    /// if it exits early; panics if it neither exits nor becomes ready
    /// within `READY_TIMEOUT` (Drop then stops it).
    fn launch(&mut self) -> Result<(), LaunchFailure> {
        assert!(self.child.is_none(), "launch() with nginx still running");
        // `nginx -t` and earlier attempts leave a pid file behind; readiness
        // below looks for a fresh one.
        match fs::remove_file(&self.pid_path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => panic!("removing {}: {e}", self.pid_path.display()),
        }
        // nginx's own stdout/stderr (before it has opened the configured
        // error log, and any crash message) go to the error log too.
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.error_log_path)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.error_log_path.display()));
        let stderr = stdout
            .try_clone()
            .expect("duplicating the nginx error log handle");

        let child = Command::new(&self.nginx_bin)
            .args(self.common_args())
            .arg("-g")
            .arg("daemon off;")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", self.nginx_bin.display()));
        let pid = child.id().to_string();
        self.child = Some(child);

        let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let child = self
                .child
                .as_mut()
                .expect("nginx child present while launching");
            if let Some(status) = child.try_wait().expect("polling the nginx child") {
                self.child = None;
                return Err(LaunchFailure::Exited(status));
            }
            // nginx writes its pid file only after it has bound its listen
            // sockets, so our pid in it proves that *our* nginx holds the
            // port (the connect below cannot reach some other process); the
            // connect proves it is listening.
            let pid_written = fs::read_to_string(&self.pid_path).is_ok_and(|s| s.trim() == pid);
            if pid_written && TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                panic!(
                    "nginx on {} was not ready after {READY_TIMEOUT:?}; error log {}:\n{}",
                    self.url(),
                    self.error_log_path.display(),
                    self.error_log()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if thread::panicking() {
            // Shown with the failing test's output: upstream errors and the
            // requests nginx saw are usually the quickest clue.
            print_tail("nginx error log", &self.error_log_path, &self.url());
            print_tail("nginx access log", &self.access_log_path, &self.url());
        }
        if let Some(child) = self.child.take() {
            stop(child);
        }
        // `self.dir` (TempDir) is dropped after this and removes everything.
    }
}

/// Stop the nginx master `child` and reap it. Never panics (it may run
/// during unwinding).
///
/// SIGTERM makes the master stop its workers, wait for them and exit. If it
/// has not exited within `STOP_TIMEOUT`, it gets SIGKILL, and so do its
/// workers, which would otherwise outlive it.
fn stop(mut child: Child) {
    let pid = child.id();
    if send_signal("TERM", pid) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
    }
    let workers = child_pids(pid);
    // Err here only means it has already exited; wait() reaps it either way.
    let _ = child.kill();
    let _ = child.wait();
    for worker in workers {
        send_signal("KILL", worker);
    }
}

/// `kill -SIGNAL PID` (the shell's builtin `kill` if there is no `kill`
/// binary); true if the signal was sent.
fn send_signal(signal: &str, pid: u32) -> bool {
    let run = |command: &mut Command| {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    let status = run(Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string()))
    .or_else(|_| {
        run(Command::new("sh")
            .arg("-c")
            .arg(format!("kill -{signal} {pid}")))
    });
    status.is_ok_and(|s| s.success())
}

/// PIDs of the live processes whose parent is `parent`, from `/proc/*/stat`.
fn child_pids(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may contain spaces and ')'.
            let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
            let state = fields.next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (ppid == parent && state != "Z").then_some(pid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The main and http context around `server_block`, everything nginx writes
/// pointed into `dir`.
fn nginx_conf(dir: &Path, port: u16, server_block: &str) -> String {
    let path = |name: &str| format!("\"{}\"", dir.join(name).display());
    // As root, the workers would run as `nobody`, which cannot enter the
    // (0700) temp dir: request bodies bigger than client_body_buffer_size
    // would fail with 500 when nginx buffers them in client_body_temp.
    // Anyone else runs the workers as themselves (and nginx would warn
    // that `user` is ignored), so it is left out.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    let temp_paths: String = TEMP_PATHS
        .iter()
        .map(|name| format!("    {name}_path {};\n", path(name)))
        .collect();
    let server = server_block.replace(LISTEN_PLACEHOLDER, &format!("127.0.0.1:{port}"));
    format!(
        r#"# Generated by the latchkey test harness (tests/support/nginx.rs).
{user}worker_processes 1;
pid {pid};
lock_file {lock};
error_log {error_log} info;

events {{
    worker_connections 64;
}}

http {{
    access_log {access_log};
{temp_paths}
{server}
}}
"#,
        pid = path("nginx.pid"),
        lock = path("nginx.lock"),
        error_log = path("error.log"),
        access_log = path("access.log"),
    )
}

/// Whether this process's effective uid is 0, from `/proc/self/status`.
fn running_as_root() -> bool {
    fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|uids| uids.split_whitespace().nth(1))
            == Some("0")
    })
}

fn read_log(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => panic!("reading nginx log {}: {e}", path.display()),
    }
}

pub fn print_tail(what: &str, path: &Path, url: &str) {
    if let Ok(bytes) = fs::read(path) {
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_ON_PANIC);
        eprintln!(
            "--- last {} lines of the {what} ({url}) ---\n{}\n--- end of {what} ---",
            lines.len() - from,
            lines[from..].join("\n")
        );
    }
}
