//! A throwaway OpenLDAP server for integration tests.
//!
//! Every [`Slapd`] owns its own temporary directory (`slapd.conf` rendered from
//! `tests/fixtures/slapd.conf.in`, an mdb database, and the log file) and its
//! own `slapd` child process listening on `127.0.0.1:<free port>`. The users
//! (`directory.ldif`) are loaded offline with `slapadd`; the groups
//! (`groups.ldif`) online, in a short first run of slapd on a Unix socket, so
//! that the memberof overlay writes the members' `memberOf` and none of that
//! traffic shows in the log the tests read. Nothing is
//! shared between instances, so tests can run in parallel threads. Dropping a
//! `Slapd` kills the child and removes the directory, also when the test
//! panics.
//!
//! The API is blocking std code; calling it from `#[tokio::test]` or
//! `#[actix_web::test]` is fine (start-up takes a few tens of milliseconds).
//!
//! [`Slapd::start_tls`] starts the same directory serving TLS as well, with certificates made by
//! the test ([`TlsFiles`]): `ldap://127.0.0.1:<port>` offers StartTLS and
//! `ldaps://127.0.0.1:<another port>` speaks TLS from the first byte. The TLS directives are
//! put in front of the rendered template (they belong to slapd.conf's global section), so the
//! template and its other user, scripts/lib/dev-slapd.sh, know nothing of them. Debian's slapd
//! is built with GnuTLS, which reads the PEM certificates and PKCS#8 keys rcgen writes. A plain
//! [`Slapd::start`] has no TLS configured and refuses StartTLS.

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{find_tool, listening, Process, Spec, INSTALL_HINT};
use super::tls::TlsFiles;
use super::{ADMIN_DN, ADMIN_PASSWORD};

const SCHEMA_DIR: &str = "/etc/ldap/schema";
const MODULE_DIR: &str = "/usr/lib/ldap";
const SCHEMAS: [&str; 4] = ["core", "cosine", "inetorgperson", "nis"];
const MODULES: [&str; 3] = ["back_mdb", "memberof", "ppolicy"];
/// mdb maps this much address space per instance; small so that many
/// instances fit side by side.
const MDB_MAXSIZE: u64 = 64 * 1024 * 1024;
/// `-d 256` = stats: connections, operations and results.
const DEBUG_LEVEL: &str = "256";
/// slapd prints this (at any non-zero `-d` level; `-d 0` prints nothing)
/// once its listeners are bound, just before it starts listening.
const STARTED_MARKER: &str = "slapd starting";
const POLL_INTERVAL: Duration = Duration::from_millis(20);
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `restart` keeps retrying when the old port is not free yet.
const RESTART_BIND_RETRY: Duration = Duration::from_secs(3);

/// A running (or stopped) test slapd. See the module docs.
pub struct Slapd {
    /// Ports: `ldap://`, then `ldaps://` for a server started with TLS.
    process: Process,
    tls: bool,
    // Declared last so it is dropped last, after `process` has killed
    // the child that uses it.
    dir: TempDir,
}

/// Whether a TLS server asks clients for a certificate (`TLSVerifyClient`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyClient {
    /// Asks; a client without a certificate is let in, one with a bad certificate is not.
    Try,
    /// Asks and refuses the TLS session to a client without a valid certificate.
    Demand,
}

impl Slapd {
    /// Start a fresh slapd with `tests/fixtures/directory.ldif` loaded, on
    /// `127.0.0.1:<free port>`.
    pub fn start() -> Slapd {
        Self::start_inner(None)
    }

    /// Same as [`Slapd::start`], with `extra_ldif` entries loaded after the
    /// fixture. Their parents must exist (in the fixture or earlier in
    /// `extra_ldif`).
    pub fn start_with(extra_ldif: &str) -> Slapd {
        Self::start_inner(Some(extra_ldif))
    }

    /// Start a fresh slapd with the fixture loaded that also serves TLS with `files`'s server
    /// certificate: StartTLS on [`Slapd::url`] and TLS on [`Slapd::ldaps_url`]. Client
    /// certificates are checked against `files.ca`.
    pub fn start_tls(files: &TlsFiles, verify_client: VerifyClient) -> Slapd {
        Self::start_tls_with_conf(files, verify_client, "")
    }

    /// Same as [`Slapd::start_tls`], with `extra_conf` (more global directives, such as
    /// `TLSCipherSuite`) added after the TLS directives.
    pub fn start_tls_with_conf(
        files: &TlsFiles,
        verify_client: VerifyClient,
        extra_conf: &str,
    ) -> Slapd {
        let verify = match verify_client {
            VerifyClient::Try => "try",
            VerifyClient::Demand => "demand",
        };
        let conf = format!(
            "# TLS, added by the latchkey test harness\n\
             TLSCACertificateFile \"{}\"\n\
             TLSCertificateFile \"{}\"\n\
             TLSCertificateKeyFile \"{}\"\n\
             TLSVerifyClient {verify}\n\
             {extra_conf}\n\n",
            files.ca.display(),
            files.server_cert.display(),
            files.server_key.display(),
        );
        Self::start_full(None, Some(&conf))
    }

    /// `ldap://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port())
    }

    /// `ldaps://127.0.0.1:PORT` of a server started with [`Slapd::start_tls`].
    pub fn ldaps_url(&self) -> String {
        assert!(self.tls, "ldaps_url() of a slapd started without TLS");
        format!("ldaps://127.0.0.1:{}", self.process.ports()[1])
    }

    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Kill our slapd child (by its PID, via `Child::kill`) and reap it. The
    /// data directory is kept, so [`Slapd::restart`] brings the same data
    /// back. Calling it on a stopped server does nothing.
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Start slapd again on the same port with the same data, and wait
    /// until it accepts connections. Stops it first if it is running.
    pub fn restart(&mut self) {
        self.process.restart(RESTART_BIND_RETRY);
    }

    /// Apply `ldif` (records with a `changetype`) as the rootdn, over the network.
    pub fn modify(&self, ldif: &str) {
        let tool = find_tool(
            "ldapmodify",
            "ldap-utils' ldapmodify changes the test directory",
        );
        let path = self.dir.path().join("modify.ldif");
        fs::write(&path, ldif).expect("writing modify.ldif");
        let out = Command::new(&tool)
            .args([
                "-x",
                "-H",
                &self.url(),
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PASSWORD,
                "-f",
            ])
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", tool.display()));
        assert!(
            out.status.success(),
            "ldapmodify failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Everything slapd has logged so far (stats level), across restarts.
    ///
    /// Lines look like
    /// `<hex time> <thread> conn=1001 op=0 BIND dn="uid=alice,..." mech=SIMPLE bind_ssf=0 ssf=0`.
    /// slapd writes the request lines (`BIND`, `SRCH`, ...) before it
    /// answers, but a `RESULT` line only after it has sent the result, so a
    /// client may see a response before its `RESULT` line is in the log:
    /// poll for those.
    /// The readiness probe also shows up as one short connection.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The binds and searches slapd has logged so far: the LDAP operations that were made.
    pub fn ldap_operations(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(" BIND ") || l.contains(" SRCH "))
            .count()
    }

    /// The binds slapd has logged for `dn` (in any letter case): the attempts that reached
    /// the directory.
    pub fn binds_of(&self, dn: &str) -> usize {
        let wanted = format!(" BIND dn=\"{dn}\"").to_lowercase();
        self.log()
            .lines()
            .filter(|l| l.to_lowercase().contains(&wanted))
            .count()
    }

    fn start_inner(extra_ldif: Option<&str>) -> Slapd {
        Self::start_full(extra_ldif, None)
    }

    /// `tls_conf`: global directives put before the rendered template; with them slapd also
    /// listens for `ldaps://`.
    fn start_full(extra_ldif: Option<&str>, tls_conf: Option<&str>) -> Slapd {
        let slapd_bin = find_tool(
            "slapd",
            "OpenLDAP's slapd is needed by the integration tests",
        );
        let slapadd_bin = find_tool("slapadd", "OpenLDAP's slapadd loads the test directory");
        let ldapmodify_bin =
            find_tool("ldapmodify", "ldap-utils' ldapmodify loads the test groups");
        check_install();

        let dir = tempfile::Builder::new()
            .prefix("latchkey-slapd-")
            .tempdir()
            .expect("creating a temp dir for slapd");
        let db_dir = dir.path().join("db");
        fs::create_dir(&db_dir).expect("creating the slapd database dir");
        let conf_path = dir.path().join("slapd.conf");
        let conf = format!(
            "{}{}",
            tls_conf.unwrap_or(""),
            slapd_conf(dir.path(), &db_dir)
        );
        fs::write(&conf_path, conf).expect("writing slapd.conf");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");

        let fixture = fixtures.join("directory.ldif");
        if !fixture.is_file() {
            panic!("test fixture {} is missing", fixture.display());
        }
        slapadd(&slapadd_bin, &conf_path, &fixture);
        if let Some(extra) = extra_ldif {
            let extra_path = dir.path().join("extra.ldif");
            fs::write(&extra_path, extra).expect("writing extra.ldif");
            slapadd(&slapadd_bin, &conf_path, &extra_path);
        }
        load_groups(
            &slapd_bin,
            &ldapmodify_bin,
            &conf_path,
            dir.path(),
            &fixtures.join("groups.ldif"),
        );

        let tls = tls_conf.is_some();
        let process = Process::start(Spec {
            name: "slapd",
            ports: if tls { 2 } else { 1 },
            log: dir.path().join("slapd.log"),
            other_logs: Vec::new(),
            ready_timeout: READY_TIMEOUT,
            graceful_stop: false,
            command: Box::new(move |ports| {
                slapd_command(&slapd_bin, &conf_path, &listen_urls(ports))
            }),
            // The marker proves *our* slapd bound the port (so the connect
            // cannot reach some other process); the connect proves it is listening.
            ready: Box::new(|probe| {
                probe.new_log.contains(STARTED_MARKER) && listening(probe.ports[0])
            }),
        });
        Slapd { process, tls, dir }
    }
}

/// What slapd listens on for `ports`, as its `-h` option takes it: `ldap://`, and `ldaps://`
/// on the second port if there is one.
fn listen_urls(ports: &[u16]) -> String {
    match ports {
        [ldap] => format!("ldap://127.0.0.1:{ldap}/"),
        [ldap, ldaps, ..] => format!("ldap://127.0.0.1:{ldap}/ ldaps://127.0.0.1:{ldaps}/"),
        [] => unreachable!("slapd needs a port"),
    }
}

/// slapd in the foreground (`-d`, stats level) with configuration `conf`, listening on `urls`.
fn slapd_command(slapd_bin: &Path, conf: &Path, urls: &str) -> Command {
    let mut command = Command::new(slapd_bin);
    command
        .arg("-f")
        .arg(conf)
        .arg("-h")
        .arg(urls)
        .arg("-d")
        .arg(DEBUG_LEVEL);
    command
}

/// `tests/fixtures/slapd.conf.in` with this instance's paths and size.
fn slapd_conf(dir: &Path, db_dir: &Path) -> String {
    let template = include_str!("../fixtures/slapd.conf.in");
    let conf = template
        .replace("@DIR@", &dir.display().to_string())
        .replace("@DB@", &db_dir.display().to_string())
        .replace("@MAXSIZE@", &MDB_MAXSIZE.to_string());
    assert!(
        !conf.contains('@'),
        "tests/fixtures/slapd.conf.in has a placeholder the harness does not fill"
    );
    conf
}

/// Add `groups.ldif` as the rootdn through a slapd of its own on a Unix socket, then stop it.
fn load_groups(slapd_bin: &Path, ldapmodify_bin: &Path, conf: &Path, dir: &Path, ldif: &Path) {
    let socket = dir.join("ldapi");
    let url = format!(
        "ldapi://{}",
        socket.display().to_string().replace('/', "%2F")
    );
    let log_path = dir.join("bootstrap.log");
    let log = fs::File::create(&log_path).expect("creating the bootstrap log");
    let stderr = log
        .try_clone()
        .expect("duplicating the bootstrap log handle");
    let mut child: Child = slapd_command(slapd_bin, conf, &url)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", slapd_bin.display()));
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let started = fs::read_to_string(&log_path).is_ok_and(|t| t.contains(STARTED_MARKER));
        if started && UnixStream::connect(&socket).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "slapd for loading the groups exited ({status}):\n{}",
                fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("slapd for loading the groups was not ready after {READY_TIMEOUT:?}");
        }
        thread::sleep(POLL_INTERVAL);
    }
    let out = Command::new(ldapmodify_bin)
        .args(["-x", "-H", &url, "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f"])
        .arg(ldif)
        .stdin(Stdio::null())
        .output();
    let _ = child.kill();
    let _ = child.wait();
    let out = out.unwrap_or_else(|e| panic!("running {}: {e}", ldapmodify_bin.display()));
    if !out.status.success() {
        panic!(
            "ldapmodify -f {} failed ({}):\n{}{}",
            ldif.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn slapadd(slapadd_bin: &Path, conf: &Path, ldif: &Path) {
    let out = Command::new(slapadd_bin)
        .arg("-f")
        .arg(conf)
        .arg("-l")
        .arg(ldif)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", slapadd_bin.display()));
    if !out.status.success() {
        panic!(
            "slapadd -l {} failed ({}):\n{}{}",
            ldif.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn check_install() {
    for schema in SCHEMAS {
        let path = Path::new(SCHEMA_DIR).join(format!("{schema}.schema"));
        if !path.is_file() {
            panic!("LDAP schema {} is missing: {INSTALL_HINT}", path.display());
        }
    }
    for name in MODULES {
        let module = Path::new(MODULE_DIR).join(format!("{name}.so"));
        if !module.exists() {
            panic!(
                "slapd module {} is missing: {INSTALL_HINT}",
                module.display()
            );
        }
    }
}
