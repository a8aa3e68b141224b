//! The real `latchkey serve` binary on a free loopback port, stopped on drop, and a minimal
//! HTTP/1.1 client for talking to it (or to a proxy in front of it).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::process::{listening, Process, Spec};

/// A running `latchkey serve`, stopped on drop.
pub struct Served {
    process: Process,
    pub port: u16,
}

/// The `latchkey` binary, with none of the caller's `LATCHKEY*` or `RUST_LOG` variables: only
/// what a test sets reaches its configuration.
pub fn latchkey() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_latchkey"));
    for (name, _) in std::env::vars() {
        if name.starts_with("LATCHKEY") || name == "RUST_LOG" {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Run `cmd` to its end with no input: (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().expect("run latchkey");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `latchkey serve` with the configuration `render(port)` (written to
/// `dir/latchkey-served.toml`) and `RUST_LOG=rust_log`, logging to `dir/latchkey.log`.
pub fn serve(dir: &Path, render: impl Fn(u16) -> String + 'static, rust_log: &str) -> Served {
    let config = dir.join("latchkey-served.toml");
    let rust_log = rust_log.to_owned();
    let command = move |ports: &[u16]| {
        std::fs::write(&config, render(ports[0])).expect("write config");
        let mut command = latchkey();
        command
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .env("RUST_LOG", &rust_log);
        command
    };
    let process = Process::start(Spec {
        name: "latchkey",
        ports: 1,
        log: dir.join("latchkey.log"),
        other_logs: Vec::new(),
        ready_timeout: Duration::from_secs(10),
        graceful_stop: false,
        command: Box::new(command),
        ready: Box::new(|probe| listening(probe.ports[0])),
    });
    let port = process.port();
    Served { process, port }
}

impl Served {
    /// Send SIGTERM (graceful shutdown) to the process this harness started.
    pub fn terminate(&self) {
        self.process.signal("TERM");
    }

    /// Wait up to `limit` for the process to exit; its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_exit(limit)
    }

    /// Stop it and start it again on the same port, its configuration rendered anew (a
    /// test whose render closure reads shared state changes the configuration this way).
    pub fn restart(&mut self) {
        self.process.restart(Duration::from_secs(10));
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// One request to it; see [`request`].
    pub fn request(&self, method: &str, target: &str, authorization: &str) -> (u16, String) {
        let answer = request(
            self.port,
            method,
            target,
            &[("Authorization", authorization)],
        );
        (answer.status, answer.body)
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header lines as sent, `Name: value`.
    pub headers: Vec<String>,
    pub body: String,
}

impl Answer {
    /// The value of header `name` (case-insensitive), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// One HTTP/1.1 request over a fresh connection to 127.0.0.1:`port`, `Connection: close`.
pub fn request(port: u16, method: &str, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send request");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.get(9..12))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    Answer {
        status,
        headers: lines.map(str::to_owned).collect(),
        body: body.to_owned(),
    }
}
