//! Pooled LDAP connections.
//!
//! Two kinds of pool, never mixed: a [`SearchPool`] holds connections bound once as the service
//! account (or left anonymous) and only ever searches; a [`BindPool`] holds connections that
//! only ever carry user binds. A connection's identity changes with every bind, so a bind
//! connection must never be used to search, and a search connection must never carry a user
//! bind. deadpool hands each connection to one request at a time, so two binds are never in
//! flight on one connection.
//!
//! A connection that fails an operation is taken out of its pool (see [`discard`]); one that the
//! server closed is refused at checkout by `recycle` and replaced.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool::managed::{
    self, Metrics as PoolMetrics, Object, PoolError, RecycleError, RecycleResult, Timeouts,
};
use ldap3::exop::WhoAmI;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, StdStream};
use tokio::net::TcpStream;

use super::DirectoryError;
use crate::config::{DirectoryConfig, Encryption, Failover, ServiceAccount, TlsConfig};
use crate::ldap_syntax::ServerUrl;
use crate::metrics::{Metrics, Operation};

/// LDAP result code: the credentials are wrong.
pub(crate) const RC_INVALID_CREDENTIALS: u32 = 49;

/// The directory servers and what is known of their health, shared by every pool of every
/// worker. A server that failed is put at the end of the order for `retry_down_after`, so new
/// connections do not wait for it while another server answers; when all have failed, all are
/// tried.
#[derive(Debug)]
pub struct ServerSet {
    urls: Vec<ServerUrl>,
    failover: Failover,
    retry_down_after: Duration,
    next: AtomicUsize,
    down_until: Mutex<Vec<Option<Instant>>>,
}

impl ServerSet {
    pub fn new(cfg: &DirectoryConfig) -> Arc<ServerSet> {
        Arc::new(ServerSet {
            urls: cfg.urls.clone(),
            failover: cfg.failover,
            retry_down_after: cfg.retry_down_after,
            next: AtomicUsize::new(0),
            down_until: Mutex::new(vec![None; cfg.urls.len()]),
        })
    }

    /// The servers, as configured.
    pub fn urls(&self) -> &[ServerUrl] {
        &self.urls
    }

    /// The order in which one new connection tries the servers: those not known to be down
    /// first (from the next in turn with round-robin), then the others.
    pub fn order(&self, now: Instant) -> Vec<usize> {
        let n = self.urls.len();
        let start = match self.failover {
            Failover::InOrder => 0,
            Failover::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n.max(1),
        };
        let down = self
            .down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let is_down = |i: usize| down.get(i).copied().flatten().is_some_and(|t| t > now);
        let rotated = (0..n).map(|k| (start + k) % n);
        let mut order: Vec<usize> = rotated.clone().filter(|&i| !is_down(i)).collect();
        order.extend(rotated.filter(|&i| is_down(i)));
        order
    }

    fn mark(&self, index: usize, down: bool, now: Instant) {
        let mut marks = self
            .down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = marks.get_mut(index) {
            *slot = down.then(|| now + self.retry_down_after);
        }
    }
}

/// Opens connections to the first server of the list that answers.
pub struct Connector {
    servers: Arc<ServerSet>,
    connect_timeout: Duration,
    operation_timeout: Duration,
    /// Bind as this account right after connecting (search pools with a service account).
    account: Option<ServiceAccount>,
    metrics: Option<Arc<Metrics>>,
    /// Which servers use TLS, and the rustls configuration they all share.
    tls: TlsConfig,
}

impl Connector {
    fn new(
        cfg: &DirectoryConfig,
        servers: Arc<ServerSet>,
        account: Option<ServiceAccount>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Connector {
            servers,
            connect_timeout: cfg.connect_timeout,
            operation_timeout: cfg.operation_timeout,
            account,
            metrics,
            tls: cfg.tls.clone(),
        }
    }

    /// A connector for a one-off check: binds as the service account when one is configured.
    pub fn for_probe(cfg: &DirectoryConfig) -> Self {
        Connector::new(cfg, ServerSet::new(cfg), cfg.service_account.clone(), None)
    }

    /// A connection to `url`, bound as the account when there is one.
    pub async fn open(&self, url: &ServerUrl) -> Result<Ldap, DirectoryError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            DirectoryError::Unavailable(format!("cannot connect to {url}: {e}"))
        };
        // The socket is opened here rather than by ldap3 so that Nagle's algorithm is off:
        // with it on, small LDAP requests can wait for the peer's delayed ACK.
        let socket = tokio::time::timeout(self.connect_timeout, TcpStream::connect(url.address()))
            .await
            .map_err(|_| unavailable(&"timed out (directory.connect_timeout)"))?
            .map_err(|e| unavailable(&e))?;
        socket.set_nodelay(true).map_err(|e| unavailable(&e))?;
        let socket = socket.into_std().map_err(|e| unavailable(&e))?;
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_std_stream(StdStream::Tcp(socket));
        let encryption = self.tls.encryption(url);
        // ldap3 takes the scheme, and for TLS the server name, from the URL it is given; the
        // socket is already connected, so the host there only names the server for SNI and
        // certificate verification.
        let target = match encryption {
            Encryption::Plaintext => url.to_string(),
            Encryption::Ldaps | Encryption::StartTls => {
                let client = self.tls.client.clone().ok_or_else(|| {
                    DirectoryError::Misconfigured(format!("{url} needs TLS, which is not set up"))
                })?;
                settings = settings
                    .set_config(client)
                    .set_starttls(encryption == Encryption::StartTls);
                tls_target(url, self.tls.server_name.as_deref())?
            }
        };
        let (driver, mut ldap) = tokio::time::timeout(
            self.connect_timeout,
            LdapConnAsync::with_settings(settings, &target),
        )
        .await
        .map_err(|_| {
            unavailable(&match encryption {
                Encryption::Plaintext => "timed out (directory.connect_timeout)",
                Encryption::Ldaps => "the TLS handshake timed out (directory.connect_timeout)",
                Encryption::StartTls => {
                    "StartTLS and the TLS handshake timed out (directory.connect_timeout)"
                }
            })
        })?
        .map_err(|e| unavailable(&connect_error(&e, encryption, &self.tls)))?;
        // Each connection's protocol driver runs as its own task until the connection closes.
        tokio::spawn(async move {
            if let Err(e) = driver.drive().await {
                tracing::debug!(error = %e, "directory connection ended");
            }
        });
        let encrypted = encryption != Encryption::Plaintext;
        if let Some(account) = &self.account {
            let result = ldap
                .with_timeout(self.operation_timeout)
                .simple_bind(&account.dn, &account.password)
                .await
                .map_err(|e| match e {
                    e if encrypted && closed(&e) => unavailable(&CLOSED_AFTER_HANDSHAKE),
                    e => DirectoryError::Unavailable(format!("service bind to {url} failed: {e}")),
                })?;
            if result.rc != 0 {
                let hint = if result.rc == RC_INVALID_CREDENTIALS {
                    "; check directory.bind_dn and bind_password"
                } else {
                    ""
                };
                return Err(DirectoryError::Unavailable(format!(
                    "{url} refused the service account bind as {:?} (result code {}: {}){hint}",
                    account.dn, result.rc, result.text
                )));
            }
        } else if encrypted {
            // With TLS 1.3 the client's side of the handshake ends before the server has
            // judged the client certificate, and a server that refuses it just closes the
            // connection. One round trip here (Who am I?, RFC 4532; a server without it still
            // answers) makes that a failed connect, reported as such, instead of the first
            // user's search or bind failing on a connection that was never usable.
            ldap.with_timeout(self.operation_timeout)
                .extended(WhoAmI)
                .await
                .map_err(|e| match e {
                    e if closed(&e) => unavailable(&CLOSED_AFTER_HANDSHAKE),
                    e => unavailable(&e),
                })?;
        }
        Ok(ldap)
    }
}

impl managed::Manager for Connector {
    type Type = Ldap;
    type Error = DirectoryError;

    async fn create(&self) -> Result<Ldap, DirectoryError> {
        let mut failures = Vec::new();
        for index in self.servers.order(Instant::now()) {
            let Some(url) = self.servers.urls.get(index) else {
                continue;
            };
            let started = Instant::now();
            // Boxed: connecting (TLS handshake included) is a large state machine, and inline
            // it would make every pool checkout future, and so every request's, that large.
            match Box::pin(self.open(url)).await {
                Ok(ldap) => {
                    if let Some(m) = &self.metrics {
                        m.ldap_operation(Operation::connect, started.elapsed());
                    }
                    self.servers.mark(index, false, Instant::now());
                    return Ok(ldap);
                }
                Err(e) => {
                    tracing::warn!(url = %url, error = %e, "directory server unusable");
                    self.servers.mark(index, true, Instant::now());
                    failures.push(e.to_string());
                }
            }
        }
        Err(DirectoryError::Unavailable(failures.join("; ")))
    }

    async fn recycle(&self, ldap: &mut Ldap, _: &PoolMetrics) -> RecycleResult<DirectoryError> {
        if ldap.is_closed() {
            return Err(RecycleError::message("the server closed the connection"));
        }
        Ok(())
    }
}

/// The URL handed to ldap3 for a TLS connection: `url` with its host replaced by
/// `directory.tls.server_name` when that is set.
fn tls_target(url: &ServerUrl, server_name: Option<&str>) -> Result<String, DirectoryError> {
    let Some(name) = server_name else {
        return Ok(url.to_string());
    };
    url.with_host(name).map_err(|e| {
        DirectoryError::Misconfigured(format!(
            "directory.tls.server_name = {name:?} cannot stand in for the host of {url}: {e}"
        ))
    })
}

/// What a server that closes a connection right after the TLS handshake most likely means.
const CLOSED_AFTER_HANDSHAKE: &str = "the server closed the connection right after the TLS \
     handshake, which is how servers refuse a client certificate they do not trust (or the \
     lack of one): check directory.tls.client_cert_file and client_key_file";

/// The connection is gone: an operation could not be sent or its result never came.
fn closed(e: &LdapError) -> bool {
    matches!(e, LdapError::ResultRecv { .. } | LdapError::OpSend { .. })
}

/// Why a connection could not be set up, in words that say where to look.
fn connect_error(e: &LdapError, encryption: Encryption, tls: &TlsConfig) -> String {
    match e {
        LdapError::LdapResult { result } if encryption == Encryption::StartTls => format!(
            "the server refused StartTLS (result code {}: {}); configure TLS on the server, or use an ldaps:// URL",
            result.rc,
            if result.text.is_empty() { "no message" } else { &result.text }
        ),
        LdapError::Io { source } if encryption != Encryption::Plaintext => {
            match source.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                Some(tls_error) => tls_problem(tls_error, tls),
                None if source.kind() == std::io::ErrorKind::UnexpectedEof => format!(
                    "TLS handshake failed: the server closed the connection ({source}); it may want a client certificate it trusts (directory.tls.client_cert_file), or not speak TLS on this port"
                ),
                None => format!("TLS handshake failed: {source}"),
            }
        }
        LdapError::Rustls { source } => tls_problem(source, tls),
        LdapError::DNSName { .. } => format!(
            "{e}: the URL's host cannot be checked against a certificate; set directory.tls.server_name to a DNS name in the server's certificate"
        ),
        other => other.to_string(),
    }
}

/// A rustls error as a sentence naming the settings to check.
fn tls_problem(e: &rustls::Error, tls: &TlsConfig) -> String {
    use rustls::AlertDescription as Alert;
    match e {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType => format!(
            "TLS certificate problem: {e}; check directory.tls.ca_file and server_name"
        ),
        rustls::Error::AlertReceived(
            Alert::CertificateRequired
            | Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::AccessDenied,
        ) => format!(
            "TLS certificate problem: the server refused the TLS session ({e}); it may want a client certificate it trusts: check directory.tls.client_cert_file and client_key_file"
        ),
        rustls::Error::AlertReceived(Alert::ProtocolVersion | Alert::HandshakeFailure)
        | rustls::Error::PeerIncompatible(_) => format!(
            "TLS handshake failed: {e}; the server and Latchkey share no TLS version or cipher (directory.tls.min_version = \"{}\")",
            tls.min_version.as_str()
        ),
        _ => format!("TLS handshake failed: {e}"),
    }
}

/// Connections that only search.
pub type SearchPool = managed::Pool<Connector>;
/// Connections that only carry user binds.
pub type BindPool = managed::Pool<Connector>;
/// One checked-out connection.
pub type Conn = Object<Connector>;

/// Build a pool of at most `size` connections. No connection is opened until one is needed.
pub fn build(
    cfg: &DirectoryConfig,
    servers: &Arc<ServerSet>,
    account: Option<ServiceAccount>,
    size: usize,
    metrics: Option<&Arc<Metrics>>,
) -> Result<managed::Pool<Connector>, DirectoryError> {
    let connector = Connector::new(cfg, Arc::clone(servers), account, metrics.cloned());
    let attempts = u32::try_from(cfg.urls.len()).unwrap_or(u32::MAX);
    let timeouts = Timeouts {
        wait: Some(cfg.pool.wait_timeout),
        create: Some((cfg.connect_timeout + cfg.operation_timeout).saturating_mul(attempts.max(1))),
        recycle: Some(cfg.operation_timeout),
    };
    managed::Pool::builder(connector)
        .max_size(size.max(1))
        .timeouts(timeouts)
        .runtime(deadpool::Runtime::Tokio1)
        .build()
        .map_err(|e| DirectoryError::Misconfigured(format!("cannot build a connection pool: {e}")))
}

/// Turn a failure to check out a connection into a [`DirectoryError`].
pub fn checkout_error(e: PoolError<DirectoryError>) -> DirectoryError {
    match e {
        PoolError::Backend(e) => e,
        PoolError::Timeout(managed::TimeoutType::Wait) => DirectoryError::Unavailable(
            "no directory connection became free within directory.pool.wait_timeout".into(),
        ),
        PoolError::Timeout(_) => {
            DirectoryError::Unavailable("opening a directory connection timed out".into())
        }
        other => DirectoryError::Unavailable(format!("connection pool: {other}")),
    }
}

/// Take a connection that failed an operation out of its pool, so it is closed rather than
/// handed to the next request.
pub fn discard(conn: Conn) {
    drop(Object::take(conn));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(failover: Failover) -> ServerSet {
        ServerSet {
            urls: ["ldap://a", "ldap://b", "ldap://c"]
                .map(|u| ServerUrl::parse(u).unwrap())
                .to_vec(),
            failover,
            retry_down_after: Duration::from_secs(10),
            next: AtomicUsize::new(0),
            down_until: Mutex::new(vec![None; 3]),
        }
    }

    #[test]
    fn servers_that_failed_go_last_until_they_may_be_retried() {
        let now = Instant::now();
        let set = servers(Failover::InOrder);
        assert_eq!(set.order(now), vec![0, 1, 2]);
        set.mark(0, true, now);
        assert_eq!(set.order(now), vec![1, 2, 0]);
        assert_eq!(set.order(now + Duration::from_secs(9)), vec![1, 2, 0]);
        assert_eq!(set.order(now + Duration::from_secs(11)), vec![0, 1, 2]);
        set.mark(0, false, now);
        assert_eq!(set.order(now), vec![0, 1, 2]);
        // All down: all are still tried, in order.
        for i in 0..3 {
            set.mark(i, true, now);
        }
        assert_eq!(set.order(now), vec![0, 1, 2]);
    }

    #[test]
    fn round_robin_starts_each_connection_at_the_next_server() {
        let now = Instant::now();
        let set = servers(Failover::RoundRobin);
        assert_eq!(set.order(now), vec![0, 1, 2]);
        assert_eq!(set.order(now), vec![1, 2, 0]);
        set.mark(0, true, now);
        assert_eq!(set.order(now), vec![2, 1, 0]);
        assert_eq!(set.order(now), vec![1, 2, 0]);
    }

    #[test]
    fn the_server_name_stands_in_for_the_host_handed_to_ldap3() {
        let url = |text: &str| ServerUrl::parse(text).unwrap();
        assert_eq!(
            tls_target(&url("ldaps://127.0.0.1:6360"), None).unwrap(),
            "ldaps://127.0.0.1:6360"
        );
        assert_eq!(
            tls_target(&url("ldaps://127.0.0.1:6360"), Some("ldap.test")).unwrap(),
            "ldaps://ldap.test:6360"
        );
        assert_eq!(
            tls_target(&url("ldap://ldap1.example.org"), Some("10.0.0.7")).unwrap(),
            "ldap://10.0.0.7"
        );
    }
}
