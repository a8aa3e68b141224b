//! What the harnesses that run a server (slapd, nginx, latchkey) share: a free loopback port
//! and finding a system tool.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};

/// What to tell a user whose machine lacks a tool the tests run.
pub const INSTALL_HINT: &str = "install the test dependencies with `scripts/install-test-deps`";

/// A port on 127.0.0.1 that was free a moment ago. Another process may take it before the
/// server binds it; the harnesses retry with a new port in that case.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .expect("binding 127.0.0.1:0 to find a free port");
    listener
        .local_addr()
        .expect("reading the probe listener's address")
        .port()
}

/// Where `scripts/install-test-deps` puts the Python tools the tests run (a virtualenv).
pub const PYTHON_TOOLS: &str = ".latchkey-dev/venv/bin";

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
