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

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::process::{child_pids, find_tool, listening, read_log, Process, Spec, INSTALL_HINT};
use super::served::Served;

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
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running test nginx. See the module docs.
pub struct Nginx {
    /// The master, stopped with SIGTERM (and its workers with SIGKILL if need be).
    process: Process,
    error_log_path: PathBuf,
    access_log_path: PathBuf,
    // Declared last so it is dropped last, after `process` has stopped
    // the processes that use it.
    dir: TempDir,
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
        let root = dir.path().to_path_buf();
        let error_log_path = root.join("error.log");
        let access_log_path = root.join("access.log");
        let pid_path = root.join("nginx.pid");
        let server_block = server_block.to_owned();
        let mut checked = false;
        let command = move |ports: &[u16]| {
            let conf = nginx_conf(&root, ports[0], &server_block);
            let conf_path = root.join("nginx.conf");
            fs::write(&conf_path, &conf)
                .unwrap_or_else(|e| panic!("writing {}: {e}", conf_path.display()));
            if !checked {
                // `nginx -t` does not bind the listen address, so one check covers every port.
                check_config(&nginx_bin, &root, &conf);
                checked = true;
            }
            // `nginx -t` and earlier attempts leave a pid file behind; readiness looks for a
            // fresh one.
            remove_if_there(&root.join("nginx.pid"));
            let mut command = Command::new(&nginx_bin);
            command
                .args(common_args(&root))
                .arg("-g")
                .arg("daemon off;");
            command
        };
        // nginx writes its pid file only after it has bound its listen sockets, so our pid in
        // it proves that *our* nginx holds the port (the connect cannot reach some other
        // process); the connect proves it is listening.
        let ready = move |probe: &super::process::Probe<'_>| {
            fs::read_to_string(&pid_path).is_ok_and(|s| s.trim() == probe.pid.to_string())
                && listening(probe.ports[0])
        };
        let process = Process::start(Spec {
            name: "nginx",
            ports: 1,
            // nginx's own stdout/stderr (before it has opened the configured error log, and any
            // crash message) go to the error log too.
            log: error_log_path.clone(),
            other_logs: vec![("nginx access log", access_log_path.clone())],
            ready_timeout: READY_TIMEOUT,
            graceful_stop: true,
            command: Box::new(command),
            ready: Box::new(ready),
        });
        Nginx {
            process,
            error_log_path,
            access_log_path,
            dir,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// The temp dir holding the configuration, logs and temp files. It is
    /// removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PID of the nginx master process (our child).
    pub fn pid(&self) -> u32 {
        self.process.pid()
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
}

/// `deploy/nginx/latchkey.conf` (with the two files it includes) pointed at Latchkey on
/// `latchkey_port` and the application on `app_port`, for [`Nginx::start`]; the tests of
/// `tests/forward_auth.rs` and `tests/browser.rs` run the shipped example through it.
pub fn deploy_example(latchkey_port: u16, app_port: u16) -> String {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx");
    let conf = std::fs::read_to_string(deploy.join("latchkey.conf")).expect("read the example");
    let replaced = conf
        .replace(
            "server 127.0.0.1:8080;",
            &format!("server 127.0.0.1:{latchkey_port};"),
        )
        .replace(
            "server 127.0.0.1:9000;",
            &format!("server 127.0.0.1:{app_port};"),
        )
        .replace("listen 80;", "listen {listen};")
        .replace(
            "/etc/nginx/latchkey-identity.conf",
            &deploy.join("latchkey-identity.conf").display().to_string(),
        )
        .replace(
            "/etc/nginx/latchkey-original-url.conf",
            &deploy
                .join("latchkey-original-url.conf")
                .display()
                .to_string(),
        );
    // The application's server first (the default one, which the tests' `Host: 127.0.0.1`
    // reaches), the sign-in page's second.
    assert_eq!(
        replaced.matches("{listen}").count(),
        2,
        "the example changed shape"
    );
    replaced
}

/// `deploy/compose/nginx.conf` with its three replicas at `127.0.0.1:<port>` of `latchkey_ports`
/// (in order), for [`Nginx::start`]; `tests/shared_state.rs` runs it.
pub fn compose_example(latchkey_ports: &[u16]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/compose/nginx.conf");
    let mut conf = std::fs::read_to_string(path).expect("read the compose example's nginx.conf");
    assert_eq!(latchkey_ports.len(), 3, "the example has three replicas");
    for (i, port) in latchkey_ports.iter().enumerate() {
        let name = format!("server latchkey-{}:8080;", i + 1);
        assert!(conf.contains(&name), "the example changed shape: no {name}");
        conf = conf.replace(&name, &format!("server 127.0.0.1:{port};"));
    }
    assert_eq!(
        conf.matches("listen 80;").count(),
        1,
        "the example changed shape"
    );
    conf.replace("listen 80;", "listen {listen};")
}

/// `nginx -t` for the configuration in `root`: panic with nginx's message and `conf` if it fails.
fn check_config(nginx_bin: &Path, root: &Path, conf: &str) {
    let out = Command::new(nginx_bin)
        .arg("-t")
        .args(common_args(root))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {} -t: {e}", nginx_bin.display()));
    if !out.status.success() {
        panic!(
            "nginx rejected the generated configuration ({}):\n{}{}\n\
             (an \"unknown directive\" can also mean that this nginx was built without \
             the module: `nginx -V` lists them; {INSTALL_HINT})\n\
             --- {}/nginx.conf ---\n{conf}--- end of nginx.conf ---",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            root.display()
        );
    }
}

/// `-p <root>/ -c <root>/nginx.conf -e stderr`. `-e stderr` keeps messages from before the
/// configuration is read (and all of `nginx -t`'s) off the compiled-in error log path.
fn common_args(root: &Path) -> Vec<String> {
    vec![
        "-p".to_string(),
        format!("{}/", root.display()),
        "-c".to_string(),
        root.join("nginx.conf").display().to_string(),
        "-e".to_string(),
        "stderr".to_string(),
    ]
}

fn remove_if_there(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => panic!("removing {}: {e}", path.display()),
    }
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

/// nginx in front of Latchkey `replicas`, round robin, as a load balancer: what the shared-state
/// tests put replicas behind.
pub fn balancer(replicas: &[Served]) -> Nginx {
    let servers: String = replicas
        .iter()
        .map(|r| format!("        server 127.0.0.1:{};\n", r.port))
        .collect();
    Nginx::start(&format!(
        "upstream latchkey {{\n{servers}    }}\n\
         server {{\n        listen {{listen}};\n        location / {{\n            proxy_pass http://latchkey;\n        }}\n    }}\n"
    ))
}
