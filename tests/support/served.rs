//! The real `latchkey serve` binary on a free loopback port, stopped on drop, and a minimal
//! HTTP/1.1 client for talking to it (or to a proxy in front of it).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};

use super::process::free_port;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `latchkey serve`.
pub struct Served {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// Serve `config_toml` (its `[tokens]` table gets a `[server]` table before it) with
/// `RUST_LOG=rust_log`, logging to a file in `dir`.
pub fn serve(dir: &Path, config_toml: &str, rust_log: &str) -> Served {
    serve_with_server(dir, config_toml, rust_log, "")
}

/// [`serve`], with `server_lines` (such as `trusted_proxies = [...]`) added to the `[server]`
/// table.
pub fn serve_with_server(
    dir: &Path,
    config_toml: &str,
    rust_log: &str,
    server_lines: &str,
) -> Served {
    let port = free_port();
    let toml = config_toml.replacen(
        "[tokens]",
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nworkers = 2\n{server_lines}\n\n[tokens]"
        ),
        1,
    );
    let config = dir.join("latchkey-served.toml");
    std::fs::write(&config, toml).expect("write config");
    let log = dir.join("latchkey.log");
    let child = latchkey()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env("RUST_LOG", rust_log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log file")))
        .spawn()
        .expect("start latchkey serve");
    let served = Served { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "latchkey did not listen:\n{}",
            served.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    served
}

impl Served {
    /// Send SIGTERM (graceful shutdown) to the process this harness started.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Wait up to `limit` for the process to exit; its exit status, or None if it still runs.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll latchkey") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
