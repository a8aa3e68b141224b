//! Tests of the nginx test harness itself: start-up, configuration errors,
//! clean shutdown, and the `auth_request` set-up the proxy tests build on.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::panic;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use support::nginx::Nginx;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP response read off a raw socket.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send one HTTP/1.1 request (with `Connection: close`) to 127.0.0.1:`port`
/// over a plain `TcpStream` and read the whole response.
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> Response {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}"));
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("setting the read timeout");
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .expect("setting the write timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .unwrap_or_else(|e| panic!("sending {method} {path}: {e}"));
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading the response to {method} {path}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("response to {method} {path} has no end of headers: {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in response to {method} {path}: {text:?}"));
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

fn get(port: u16, path: &str) -> Response {
    request(port, "GET", path, b"")
}

/// Polls `log()` until it has a line containing all of `parts`.
fn wait_for_line(log: impl Fn() -> String, parts: &[&str]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(line) = log().lines().find(|l| parts.iter().all(|p| l.contains(p))) {
            return Some(line.to_string());
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// What the backend saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body_len: usize,
}

/// A tiny HTTP backend on 127.0.0.1:<free port> that gives every request
/// the same canned `response` (which must close the connection), and
/// records what it saw. Stops on drop; also by itself after a minute.
struct Backend {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn start(response: &'static str) -> Backend {
        let listener =
            TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding the backend listener");
        listener
            .set_nonblocking(true)
            .expect("making the backend listener non-blocking");
        let port = listener
            .local_addr()
            .expect("reading the backend's address")
            .port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let seen = Arc::clone(&seen);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let give_up = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < give_up {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            // Errors only lose this request: nginx then
                            // answers 502, which the test reports.
                            let _ = serve(stream, response, &seen);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        Backend {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read one request (head and `Content-Length` body), record it, then
/// answer it (in that order, so that the test sees the record as soon as it
/// has nginx's response).
fn serve(mut stream: TcpStream, response: &str, seen: &Mutex<Vec<Seen>>) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let content_length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body_len = raw.len() - head_end;
    while body_len < content_length {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        body_len += n;
    }
    seen.lock().ok()?.push(Seen { head, body_len });
    stream.write_all(response.as_bytes()).ok()
}

const AUTH_OK: &str =
    "HTTP/1.1 200 OK\r\nRemote-User: alice\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const AUTH_DENIED: &str =
    "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
const BACKEND_OK: &str =
    "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nuploaded\n";

/// `/protected` is guarded by `auth_request` against `backend_port`.
///
/// The content comes from a named location reached through `try_files`,
/// not from a `return` in `/protected`: `return` runs in the rewrite phase,
/// before `auth_request` (access phase) is ever consulted, so it would
/// answer 200 whatever the backend says.
fn auth_server_block(backend_port: u16) -> String {
    format!(
        r#"server {{
    listen {{listen}};

    location = /_auth {{
        internal;
        proxy_pass http://127.0.0.1:{backend_port}/check;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-URI $request_uri;
    }}

    location /protected {{
        auth_request /_auth;
        auth_request_set $user $upstream_http_remote_user;
        try_files /nonexistent @ok;
    }}

    location @ok {{
        add_header X-User $user;
        return 200 "ok\n";
    }}
}}
"#
    )
}

#[test]
fn serves_a_fixed_body_over_raw_http() {
    let nginx = Nginx::start(
        r#"server {
    listen {listen};
    location / {
        return 200 "hello\n";
    }
}"#,
    );
    assert_eq!(nginx.url(), format!("http://127.0.0.1:{}", nginx.port()));

    let res = get(nginx.port(), "/greeting");
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, "hello\n", "{res:?}");
    assert_eq!(
        res.header("Server").map(|s| s.starts_with("nginx")),
        Some(true),
        "{res:?}"
    );

    assert!(
        wait_for_line(|| nginx.access_log(), &["\"GET /greeting HTTP/1.1\" 200"]).is_some(),
        "no access log line for the request:\n{}",
        nginx.access_log()
    );
    // `info` level: start-up notices are there.
    assert!(
        nginx.error_log().contains("start worker process"),
        "error log:\n{}",
        nginx.error_log()
    );
}

#[test]
fn bad_directive_panics_at_start_with_nginx_message() {
    let result = panic::catch_unwind(|| {
        Nginx::start(
            r#"server {
    listen {listen};
    no_such_directive on;
}"#,
        )
    });
    let payload = match result {
        Ok(nginx) => panic!("nginx started on {} despite a bad directive", nginx.url()),
        Err(payload) => payload,
    };
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(
        message.contains("unknown directive \"no_such_directive\""),
        "panic message lacks nginx's complaint:\n{message}"
    );
    // The generated configuration is shown, with the port filled in.
    assert!(message.contains("worker_processes 1;"), "{message}");
    assert!(message.contains("listen 127.0.0.1:"), "{message}");
}

#[test]
fn server_block_without_listen_placeholder_panics() {
    let result = panic::catch_unwind(|| {
        Nginx::start(r#"server { listen 127.0.0.1:8080; return 200 "x"; }"#)
    });
    let payload = result
        .err()
        .expect("start accepted a block without {listen}");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("{listen}"), "{message}");
}

#[test]
fn drop_stops_master_and_workers_and_removes_temp_dir() {
    let nginx = Nginx::start(
        r#"server {
    listen {listen};
    return 204;
}"#,
    );
    let port = nginx.port();
    let dir = nginx.dir().to_path_buf();
    let master = nginx.pid();
    // The master forks its worker after it listens; on a busy machine that can lag.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut workers = nginx.worker_pids();
    while workers.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        workers = nginx.worker_pids();
    }
    assert_eq!(workers.len(), 1, "expected one worker process");
    assert_eq!(get(port, "/").status, 204);
    assert!(dir.join("nginx.conf").is_file());

    drop(nginx);

    assert!(
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))
            .is_err(),
        "port {port} still accepts connections after drop"
    );
    assert!(!dir.exists(), "{} still exists after drop", dir.display());
    for pid in std::iter::once(master).chain(workers) {
        let proc_dir = format!("/proc/{pid}");
        assert!(
            !Path::new(&proc_dir).exists(),
            "nginx process {pid} still exists after drop"
        );
    }
}

#[test]
fn auth_request_passes_the_backends_user_on_200() {
    let backend = Backend::start(AUTH_OK);
    let nginx = Nginx::start(&auth_server_block(backend.port));

    let res = get(nginx.port(), "/protected/thing?x=1");
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("X-User"), Some("alice"), "{res:?}");
    assert_eq!(res.body, "ok\n", "{res:?}");

    let seen = backend.seen();
    assert_eq!(seen.len(), 1, "auth backend requests: {seen:?}");
    assert!(
        seen[0].head.starts_with("GET /check HTTP/1.0\r\n"),
        "{seen:?}"
    );
    assert!(
        seen[0]
            .head
            .contains("X-Original-URI: /protected/thing?x=1\r\n"),
        "{seen:?}"
    );
}

#[test]
fn auth_request_denies_when_the_backend_says_401() {
    let backend = Backend::start(AUTH_DENIED);
    let nginx = Nginx::start(&auth_server_block(backend.port));

    let res = get(nginx.port(), "/protected/thing");
    assert_eq!(res.status, 401, "{res:?}");
    assert_eq!(res.header("X-User"), None, "{res:?}");
    assert!(!res.body.contains("ok\n"), "{res:?}");
    assert_eq!(backend.seen().len(), 1, "{:?}", backend.seen());
}

/// Bodies bigger than `client_body_buffer_size` go through
/// `client_body_temp` in the temp dir: the workers must be able to write
/// there (as root they would run as `nobody` without `user root;`).
#[test]
fn large_request_bodies_are_buffered_in_the_temp_dir() {
    let backend = Backend::start(BACKEND_OK);
    let nginx = Nginx::start(&format!(
        r#"server {{
    listen {{listen}};
    client_body_buffer_size 1k;
    location / {{
        proxy_pass http://127.0.0.1:{};
    }}
}}"#,
        backend.port
    ));

    let body = vec![b'x'; 64 * 1024];
    let res = request(nginx.port(), "POST", "/upload", &body);
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.body, "uploaded\n", "{res:?}");
    let seen = backend.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body_len, body.len());
    assert!(
        nginx
            .error_log()
            .contains("a client request body is buffered to a temporary file"),
        "the body did not go through client_body_temp:\n{}",
        nginx.error_log()
    );
}
