//! `[server]`: where Latchkey listens and how it treats HTTP connections.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub listen: String,
    /// HTTP worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// How long an idle keep-alive connection stays open; 0 turns keep-alive off.
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    /// How long a client may take to send a request's headers.
    #[serde(with = "humantime_serde")]
    pub client_request_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Open connections per worker.
    pub max_connections: usize,
    /// The request line and headers, in bytes.
    pub max_header_bytes: usize,
    /// A request body, in bytes (only the sign-in forms read one).
    pub max_body_bytes: u64,
    /// The base URL clients reach Latchkey at, such as `https://auth.example.org`, for the
    /// absolute URLs of `/.well-known/latchkey`; `portal.url` serves when it is set.
    pub public_url: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            listen: "127.0.0.1:8080".into(),
            workers: 0,
            trusted_proxies: Vec::new(),
            keep_alive: Duration::from_secs(5),
            client_request_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            max_connections: 25_000,
            max_header_bytes: 16 * 1024,
            max_body_bytes: 4 * 1024,
            public_url: None,
        }
    }
}

/// Validated `[server]`.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub workers: usize,
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    pub keep_alive: Duration,
    pub client_request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    pub max_body_bytes: u64,
    /// `scheme://host[:port]`, without path.
    pub public_url: Option<Url>,
}

pub(super) fn validate_server(
    s: &ServerSettings,
    problems: &mut Vec<String>,
) -> Option<ServerConfig> {
    let before = problems.len();
    let listen = s.listen.parse::<SocketAddr>().map_err(|_| {
        problems.push(format!(
            "server.listen = {:?} is not an address and port such as \"127.0.0.1:8080\" or \"[::]:8080\"",
            s.listen
        ))
    });
    let trusted_proxies = crate::client_ip::TrustedProxies::parse(&s.trusted_proxies)
        .map_err(|e| problems.push(format!("server.trusted_proxies: {e}")));
    if s.client_request_timeout.is_zero() {
        problems.push("server.client_request_timeout must be more than 0 (e.g. \"5s\")".into());
    }
    if s.max_connections == 0 {
        problems.push("server.max_connections must be at least 1".into());
    }
    if !(1024..=131_072).contains(&s.max_header_bytes) {
        problems.push(format!(
            "server.max_header_bytes = {} must be from 1024 to 131072",
            s.max_header_bytes
        ));
    }
    let public_url = s.public_url.as_deref().and_then(|url| {
        let parsed = super::portal::base_url(url);
        if parsed.is_none() {
            problems.push(format!(
                "server.public_url = {url:?} is not a base URL such as \"https://auth.example.org\" (http or https, a host, an optional port, no path)"
            ));
        }
        parsed
    });
    if let Some(u) = &public_url {
        if u.scheme() == "http" && !super::portal::is_loopback_url(u) {
            problems.push(format!(
                "server.public_url = {:?} is http:// on a host that is not loopback; clients would send passwords in clear: use https://",
                u.as_str()
            ));
        }
    }
    let (listen, trusted_proxies) = (listen.ok()?, trusted_proxies.ok()?);
    if problems.len() > before {
        return None;
    }
    Some(ServerConfig {
        listen,
        workers: s.workers,
        trusted_proxies,
        keep_alive: s.keep_alive,
        client_request_timeout: s.client_request_timeout,
        shutdown_timeout: s.shutdown_timeout,
        max_connections: s.max_connections,
        max_header_bytes: s.max_header_bytes,
        max_body_bytes: s.max_body_bytes,
        public_url,
    })
}
