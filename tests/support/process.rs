//! What the harnesses that run a server (slapd, nginx, Caddy, latchkey) share: a free loopback
//! port, finding a system tool, and [`Process`], the one child-process runner they all use.
//!
//! A [`Process`] starts a command on free loopback ports, tries new ports when the child exits
//! before it is ready (another process took the port meanwhile), polls a readiness check,
//! stops the child on drop, and prints the tail of its logs when the test is failing. What is
//! particular to one server (its configuration, its readiness check, extra logs) stays in that
//! server's file and reaches the runner through a [`Spec`].

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What to tell a user whose machine lacks a tool the tests run.
pub const INSTALL_HINT: &str = "install the test dependencies with `scripts/install-test-deps`";

/// Fresh ports tried by [`Process::start`] before giving up.
const START_ATTEMPTS: usize = 5;
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long a graceful stop waits before it kills the child and its children.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Lines of each log shown when a test panics while a [`Process`] is alive.
const LOG_TAIL_ON_PANIC: usize = 60;

/// A port on 127.0.0.1 that was free a moment ago. Another process may take it before the
/// server binds it; [`Process::start`] retries with a new port in that case.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("binding 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("reading the probe listener's address")
        .port()
}

/// Whether something accepts connections on `127.0.0.1:port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(250)).is_ok()
}

/// Where `scripts/install-test-deps` puts the Python tools the tests run (a virtualenv).
pub const PYTHON_TOOLS: &str = ".latchkey-dev/venv/bin";

/// The Python of the virtualenv `scripts/install-test-deps` makes, after checking that it can
/// import `modules`; `why` says what the tests need them for.
pub fn venv_python(modules: &[&str], why: &str) -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(PYTHON_TOOLS)
        .join("python");
    let imports = Command::new(&python)
        .arg("-c")
        .arg(format!("import {}", modules.join(", ")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !imports.is_ok_and(|status| status.success()) {
        panic!(
            "{} cannot import {} ({why}): {INSTALL_HINT}",
            python.display(),
            modules.join(", ")
        );
    }
    python
}

/// `/usr/sbin/NAME`, else NAME on `$PATH`, else in [`PYTHON_TOOLS`]; `why` says what the tests
/// need it for.
pub fn find_tool(name: &str, why: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(name);
    if sbin.is_file() {
        return sbin;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(PYTHON_TOOLS)
        .join(name);
    if venv.is_file() {
        return venv;
    }
    panic!("`{name}` not found in /usr/sbin or on PATH ({why}): {INSTALL_HINT}");
}

/// Everything in the file at `path` so far ("" when it does not exist yet).
pub fn read_log(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
        Err(e) => panic!("reading log {}: {e}", path.display()),
    }
}

/// What the readiness check of one launch sees.
pub struct Probe<'a> {
    /// The ports this launch was given.
    pub ports: &'a [u16],
    /// The child's PID.
    pub pid: u32,
    /// What the child has written to its log since this launch began.
    pub new_log: &'a str,
}

/// Builds the command for one launch on `ports` (and writes any configuration that names them).
pub type MakeCommand = Box<dyn FnMut(&[u16]) -> Command>;
/// True once the child of a launch is ready.
pub type IsReady = Box<dyn FnMut(&Probe<'_>) -> bool>;

/// One kind of server as the runner sees it.
pub struct Spec {
    /// Shown in messages: `slapd`, `nginx`, ...
    pub name: &'static str,
    /// How many free ports each launch gets; the first one is [`Process::port`].
    pub ports: usize,
    /// The child's standard output and error are appended here.
    pub log: PathBuf,
    /// Other files the server writes that help when a test fails (shown after `log`).
    pub other_logs: Vec<(&'static str, PathBuf)>,
    pub ready_timeout: Duration,
    /// Stop with SIGTERM first, then SIGKILL the child and its children (for a master process
    /// with workers); otherwise SIGKILL the child alone.
    pub graceful_stop: bool,
    pub command: MakeCommand,
    pub ready: IsReady,
}

/// A server child process started by [`Process::start`]. See the module docs.
pub struct Process {
    spec: Spec,
    child: Option<Child>,
    ports: Vec<u16>,
}

impl Process {
    /// Launch `spec` on free ports until it is ready, trying new ports when it exits first.
    /// Panics with its log when it never comes up.
    pub fn start(spec: Spec) -> Process {
        let mut process = Process {
            spec,
            child: None,
            ports: Vec::new(),
        };
        // From here on a panic drops `process`, which stops any child.
        let mut last_exit = None;
        for _ in 0..START_ATTEMPTS {
            process.ports = distinct_free_ports(process.spec.ports);
            match process.launch() {
                Ok(()) => return process,
                Err(status) => last_exit = Some(status),
            }
        }
        panic!(
            "{} did not start after {START_ATTEMPTS} attempts (last exit: {}); log {}:\n{}",
            process.spec.name,
            last_exit.map_or_else(|| "none".to_string(), |s| s.to_string()),
            process.spec.log.display(),
            process.log()
        );
    }

    /// The first port.
    pub fn port(&self) -> u16 {
        self.ports[0]
    }

    /// All the ports of this process.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// PID of the running child.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.spec.name))
            .id()
    }

    /// PID of the child if it is running (for a `Drop` that must not panic).
    pub fn running_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the child has written to its standard output and error, across restarts.
    pub fn log(&self) -> String {
        read_log(&self.spec.log)
    }

    /// Send `signal` (`TERM`, `HUP`, ...) to the child; panics if it cannot be sent.
    pub fn signal(&self, signal: &str) {
        assert!(
            send_signal(signal, self.pid()),
            "kill -{signal} {} ({}) failed",
            self.pid(),
            self.spec.name
        );
    }

    /// Wait up to `limit` for the child to exit: its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let child = self.child.as_mut()?;
        loop {
            if let Some(status) = child.try_wait().expect("polling a child process") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Stop the child (see [`Spec::graceful_stop`]) and reap it; nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(child) = self.child.take() {
            stop(child, self.spec.graceful_stop);
        }
    }

    /// Start the child again on the same ports, retrying for up to `retry` while the old ports
    /// are not free yet. Stops it first if it is running.
    pub fn restart(&mut self, retry: Duration) {
        self.stop();
        let deadline = Instant::now() + retry;
        loop {
            match self.launch() {
                Ok(()) => return,
                Err(status) if Instant::now() >= deadline => panic!(
                    "{} did not come back on ports {:?} within {retry:?} (last exit: {status}); \
                     log {}:\n{}",
                    self.spec.name,
                    self.ports,
                    self.spec.log.display(),
                    self.log()
                ),
                Err(_) => thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Spawn the child on `self.ports` and wait until it is ready. Returns its exit status if
    /// it exits first; panics if it is neither ready nor gone within the ready timeout (Drop
    /// then stops it).
    fn launch(&mut self) -> Result<(), ExitStatus> {
        assert!(
            self.child.is_none(),
            "launch() with the child still running"
        );
        let name = self.spec.name;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.spec.log.display()));
        // Readiness only looks at what this launch writes.
        let offset = log.metadata().expect("reading log metadata").len() as usize;
        let stderr = log.try_clone().expect("duplicating a log handle");
        let mut command = (self.spec.command)(&self.ports);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name} ({command:?}): {e}"));
        let pid = child.id();
        let child = self.child.insert(child);
        let deadline = Instant::now() + self.spec.ready_timeout;
        loop {
            if let Some(status) = child.try_wait().expect("polling a child process") {
                self.child = None;
                return Err(status);
            }
            let text = read_log(&self.spec.log);
            let probe = Probe {
                ports: &self.ports,
                pid,
                new_log: text.get(offset..).unwrap_or(""),
            };
            if (self.spec.ready)(&probe) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                panic!(
                    "{name} on ports {:?} was not ready after {:?}; log {}:\n{text}",
                    self.ports,
                    self.spec.ready_timeout,
                    self.spec.log.display()
                );
            }
            thread::sleep(POLL_INTERVAL);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if thread::panicking() {
            // Shown with the failing test's output: the server's own view is usually the
            // quickest clue.
            let at = format!("{} on {:?}", self.spec.name, self.ports);
            print_tail(&format!("{} log", self.spec.name), &self.spec.log, &at);
            for (what, path) in &self.spec.other_logs {
                print_tail(what, path, &at);
            }
        }
        self.stop();
    }
}

/// `count` distinct free ports.
fn distinct_free_ports(count: usize) -> Vec<u16> {
    let mut ports: Vec<u16> = Vec::with_capacity(count);
    while ports.len() < count {
        let port = free_port();
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}

/// Stop `child` and reap it. Never panics (it may run during unwinding). Gracefully: SIGTERM,
/// then after [`STOP_TIMEOUT`] SIGKILL for it and its children, which would otherwise outlive
/// it.
fn stop(mut child: Child, graceful: bool) {
    let pid = child.id();
    if graceful && send_signal("TERM", pid) {
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
    }
    let children = if graceful {
        child_pids(pid)
    } else {
        Vec::new()
    };
    // Err here only means it has already exited; wait() reaps it either way.
    let _ = child.kill();
    let _ = child.wait();
    for pid in children {
        send_signal("KILL", pid);
    }
}

/// `kill -SIGNAL PID` (the shell's builtin `kill` if there is no `kill` binary); true if the
/// signal was sent.
pub fn send_signal(signal: &str, pid: u32) -> bool {
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
pub fn child_pids(parent: u32) -> Vec<u32> {
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

/// Print the last lines of the file at `path` (`what`, of the server at `at`) to stderr.
pub fn print_tail(what: &str, path: &Path, at: &str) {
    if let Ok(bytes) = fs::read(path) {
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_ON_PANIC);
        eprintln!(
            "--- last {} lines of the {what} ({at}) ---\n{}\n--- end of {what} ---",
            lines.len() - from,
            lines[from..].join("\n")
        );
    }
}
