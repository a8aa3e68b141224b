//! The `latchkey` command: serve the API, check a configuration against the directory, or
//! make a key pair.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::KeepAlive;
use actix_web::HttpServer;
use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey::config::{
    Config, Encryption, Refusal, SearchMode, TlsConfig, TlsVersion, Trust, UserLocator,
};
use latchkey::config::{RedisConfig, StateConfig};
use latchkey::directory::{Directory, SearchAs};
use latchkey::http::AppState;
use latchkey::ldap_syntax::ServerUrl;
use latchkey::login::{Logins, Refusal as LoginRefusal};
use latchkey::metrics::Metrics;
use latchkey::revocation::{self, Target};
use latchkey::state::{BruteForce, SharedStore, StoreHealth};
use latchkey::throttle::Throttle;
use latchkey::tokens::TokenIssuer;
use latchkey::{directory, http, telemetry};
use latchkey_verify::{Algorithm, SigningKey};

/// See Cargo.toml: allocation is a large share of a login's work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Latchkey trades LDAP credentials for short-lived signed tokens.
///
/// Clients send their directory username and password with HTTP Basic to
/// POST /auth/request-token and get back a JWT signed with the configured key.
#[derive(Debug, Parser)]
#[command(name = "latchkey", version, about, long_about = None)]
struct Cli {
    /// The TOML configuration file. Every key can be overridden by an environment
    /// variable LATCHKEY__SECTION__KEY (e.g. LATCHKEY__DIRECTORY__URLS).
    #[arg(
        short,
        long,
        env = "LATCHKEY_CONFIG",
        value_name = "PATH",
        global = true
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve,
    /// Ask the running service whether it is alive, for container health checks.
    ///
    /// Sends GET /healthz to server.listen with a 2 s timeout; exits 0 when it answers 200.
    Healthcheck,
    /// Check the configuration against every directory server, without serving.
    ///
    /// Validate the configuration, then connect to every directory server: bind as the
    /// service account (if any), read the RootDSE and look for the users' base entry.
    /// Exits non-zero with the reason on the first failure.
    Check {
        /// Also look this login up as a token request would, without a password: show the
        /// entry's DN, attributes, groups, the token's claims and the access decision.
        #[arg(long, value_name = "LOGIN")]
        user: Option<String>,
        /// With --user: the attribute to look the login up in (as the request parameter
        /// search_criteria); default: the login attributes.
        #[arg(long, value_name = "ATTRIBUTE", requires = "user")]
        search_criteria: Option<String>,
    },
    /// Make a key pair for tokens.algorithm = "EdDSA" or "ES256".
    ///
    /// Writes the private key to FILE as PKCS#8 PEM, readable by its owner only (mode 0600),
    /// and prints the configuration that uses it and its public JWK. Never overwrites a file.
    Keygen {
        /// EdDSA (an Ed25519 key) or ES256 (a P-256 key).
        #[arg(long, value_name = "ALGORITHM", value_parser = key_pair_algorithm)]
        algorithm: Algorithm,
        /// Where to write the private key; the file must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The key's id (the tokens' kid); default: today's date, such as 2026-12-05.
        #[arg(long, value_name = "ID")]
        kid: Option<String>,
    },
    /// Revoke tokens on every replica, through the shared store.
    ///
    /// Writes the revocation to Redis ([state] backend = "redis"), where every replica's
    /// mirror hears of it within a second. With the memory backend, use the service's
    /// POST /auth/revoke with an administrator's token instead.
    Revoke {
        /// Every token of this user issued up to now ("sign out everywhere").
        #[arg(long, value_name = "USER", required_unless_present = "token_id")]
        user: Option<String>,
        /// The token with this id (its jti claim).
        #[arg(long, value_name = "JTI", conflicts_with = "user")]
        token_id: Option<String>,
    },
}

/// `--algorithm` of `keygen`: a key pair algorithm, by its exact JWS name.
fn key_pair_algorithm(name: &str) -> Result<Algorithm, String> {
    match Algorithm::from_name(name) {
        Some(a) if !a.is_hmac() => Ok(a),
        Some(a) => Err(format!(
            "{a} keys are shared secrets, not key pairs; make one with `openssl rand -base64 48`"
        )),
        None => Err(format!(
            "{name:?} is not EdDSA or ES256 (the names are case-sensitive)"
        )),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve(cli.config),
        Command::Healthcheck => healthcheck(cli.config),
        Command::Check {
            user,
            search_criteria,
        } => check(cli.config, user, search_criteria),
        Command::Keygen {
            algorithm,
            out,
            kid,
        } => keygen(algorithm, &out, kid),
        Command::Revoke { user, token_id } => revoke(cli.config, user, token_id),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn revoke(
    path: Option<PathBuf>,
    user: Option<String>,
    token_id: Option<String>,
) -> anyhow::Result<()> {
    let config = Config::load(path.as_deref())?;
    let target = match (user, token_id) {
        (Some(user), None) => Target::User(user),
        (None, Some(id)) => Target::TokenId(id),
        _ => anyhow::bail!("name either --user or --token-id"),
    }
    .checked()
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime
        .block_on(revocation::revoke_shared(
            &config,
            &target,
            revocation::unix_now(),
        ))
        .map_err(anyhow::Error::msg)?;
    match &target {
        Target::User(user) => {
            println!("revoked every token of {user:?} issued up to now, on every replica")
        }
        Target::TokenId(id) => println!("revoked the token {id}, on every replica"),
    }
    Ok(())
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(path.as_deref())?;
    telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // One state (and so one set of connection pools) per worker; no connection opens yet.
    let states: Vec<Arc<AppState>> = AppState::for_workers(&config, workers)?
        .into_iter()
        .map(Arc::new)
        .collect();
    let next = Arc::new(AtomicUsize::new(0));
    let listen = config.server.listen;
    tracing::info!(
        %listen,
        workers,
        directory = ?config.directory.urls,
        issuer = %config.tokens.issuer,
        signing_key = config.tokens.signing_key.id(),
        state = match &config.state {
            StateConfig::Memory => "memory",
            StateConfig::Redis(redis) => redis.display_url(),
        },
        "latchkey starting"
    );
    let server = config.server.clone();
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            #[allow(clippy::indexing_slicing)] // the modulo keeps the index in range
            let state = Arc::clone(&states[i % states.len()]);
            http::app(state)
        })
        .workers(workers)
        .max_connections(server.max_connections)
        .keep_alive(if server.keep_alive.is_zero() {
            KeepAlive::Disabled
        } else {
            KeepAlive::Timeout(server.keep_alive)
        })
        .client_request_timeout(server.client_request_timeout)
        .client_disconnect_timeout(Duration::from_secs(1))
        .shutdown_timeout(server.shutdown_timeout.as_secs())
        .bind(listen)
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?
        .run()
        .await
        .context("the HTTP server failed")
    })
}

fn healthcheck(path: Option<PathBuf>) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
    let config = Config::load(path.as_deref())?;
    let listen = config.server.listen;
    // A wildcard listen address is reached on loopback.
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let target = SocketAddr::new(ip, listen.port());
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&target, timeout)
        .with_context(|| format!("cannot connect to {target}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.write_all(
        format!("GET /healthz HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut answer = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut answer)
        .with_context(|| format!("reading the answer of {target}"))?;
    let status_line = String::from_utf8_lossy(&answer)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    if status_line.starts_with("HTTP/1.1 200") {
        println!("{target}: healthy");
        Ok(())
    } else {
        anyhow::bail!("{target}/healthz answered {status_line:?}")
    }
}

fn check(
    path: Option<PathBuf>,
    user: Option<String>,
    search_criteria: Option<String>,
) -> anyhow::Result<()> {
    let config = Config::load(path.as_deref())?;
    let d = &config.directory;
    println!("configuration: ok");
    for warning in &config.warnings {
        println!("  warning: {warning}");
    }
    println!(
        "  tokens: issuer {:?}, {}, signing key {:?} ({} key(s) verify), duration {}s (max {}s)",
        config.tokens.issuer,
        config.tokens.algorithm,
        config.tokens.signing_key.id(),
        config.tokens.keys.len(),
        config.tokens.default_duration,
        config.tokens.max_duration
    );
    for key in &config.tokens.keys {
        let role = if key.id() == config.tokens.signing_key.id() {
            "signs and verifies"
        } else {
            "verifies"
        };
        let published = if key.algorithm().is_hmac() {
            "a secret, never published"
        } else {
            "public key published in /.well-known/jwks.json"
        };
        println!(
            "  key {:?}: {}, {role} ({published})",
            key.id(),
            key.algorithm()
        );
    }
    match config.public_base_url() {
        Some(base) => println!(
            "  discovery: {}/.well-known/latchkey",
            base.as_str().trim_end_matches('/')
        ),
        None => println!(
            "  discovery: /.well-known/latchkey, with paths only (set server.public_url for absolute URLs)"
        ),
    }
    let search = match d.search_mode {
        SearchMode::OnRequest => "service account by default, anonymous on request",
        SearchMode::Always => "always as the service account",
        SearchMode::Never => "always anonymous",
    };
    let locate = match &d.users.locator {
        UserLocator::Search => format!(
            "search {} under {:?} for {:?}",
            d.users.filter, d.users.base_dn, d.users.search_attributes
        ),
        UserLocator::Template(t) => format!("bind to {t:?}"),
    };
    println!("  users: {locate}; searches run {search}");
    if let StateConfig::Memory = &config.state {
        println!("  state: memory (brute-force counts are this process's own)");
    }
    actix_web::rt::System::new().block_on(async {
        if let StateConfig::Redis(redis) = &config.state {
            check_state(redis).await?;
        }
        for url in &d.urls {
            let report = directory::probe(d, url.as_str())
                .await
                .with_context(|| format!("{url}: check failed"))?;
            println!("{url}: connected in {} ms", report.connect_ms);
            println!("  encryption: {}", encryption(&d.tls, report.encryption, url));
            match &report.service_bind {
                Some(dn) => println!("  service bind as {dn:?}: ok"),
                None => println!("  no service account: searched anonymously"),
            }
            let server = [report.vendor.as_deref(), report.version.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            println!(
                "  server: {}",
                if server.is_empty() { "(vendor and version not published)" } else { &server }
            );
            println!("  naming contexts: {}", report.naming_contexts.join("; "));
            println!(
                "  StartTLS offered: {}",
                if report.starttls { "yes" } else { "no" }
            );
            if !report.users_base_found {
                anyhow::bail!(
                    "{url}: the users' base {:?} does not exist or cannot be read; check directory.users.base_dn",
                    d.users.base_dn
                );
            }
            println!("  users' base {:?}: found", d.users.base_dn);
        }
        match user {
            Some(login) => check_user(&config, &login, search_criteria.as_deref()).await,
            None => Ok(()),
        }
    })
}

/// `keygen`: a new key pair in `out` (mode 0600, never over an existing file), and the
/// configuration that uses it.
fn keygen(algorithm: Algorithm, out: &std::path::Path, kid: Option<String>) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let kid = kid.unwrap_or_else(|| chrono::Utc::now().format("%Y-%m-%d").to_string());
    if !latchkey::config::valid_key_id(&kid) {
        anyhow::bail!(
            "--kid {kid:?}: a key id may hold only letters, digits, '-', '_' and '.' (at most 64)"
        );
    }
    let key = SigningKey::generate(kid.clone(), algorithm)?;
    let pem = key.to_pkcs8_pem()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                "{} exists; keygen never overwrites a file (it may be a key in use): choose another --out",
                out.display()
            ),
            _ => anyhow::anyhow!("cannot create {}: {e}", out.display()),
        })?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", out.display()))?;
    let path = std::fs::canonicalize(out).unwrap_or_else(|_| out.to_path_buf());
    let jwk =
        serde_json::to_string(&key.verifying_key().to_jwk()).context("rendering the public JWK")?;
    let kind = if algorithm == Algorithm::EdDSA {
        "an Ed25519"
    } else {
        "a P-256"
    };
    println!(
        "wrote {kind} private key ({algorithm}) to {}, readable by its owner only (mode 0600)

# the configuration that signs with it; when another key signs now, add [tokens.keys.\"{kid}\"]
# beside it and switch tokens.signing_key 5 minutes later (README, \"Rotating key pairs\")
[tokens]
algorithm = \"{algorithm}\"
signing_key = \"{kid}\"

[tokens.keys.\"{kid}\"]
private_key_file = {:?}

# its public JWK, as /.well-known/jwks.json lists it
{jwk}",
        path.display(),
        path.display().to_string()
    );
    Ok(())
}

/// `check` with `state.backend = "redis"`: connect and PING.
async fn check_state(redis: &RedisConfig) -> anyhow::Result<()> {
    let shown = redis.display_url();
    let health = Arc::new(StoreHealth::new(shown, Arc::new(Metrics::new())));
    let store = SharedStore::new(redis, health).with_context(|| format!("state.redis {shown}"))?;
    let took = store.ping().await.with_context(|| {
        format!("state.redis {shown}: PING failed; logins would count on each replica alone")
    })?;
    println!(
        "state: redis {shown}: PING answered in {} ms",
        took.as_millis()
    );
    println!(
        "  key prefix {:?}, TLS {}",
        redis.key_prefix,
        if redis.tls.is_some() { "on" } else { "off" }
    );
    Ok(())
}

/// How connections to `url` are protected, for `check`.
fn encryption(tls: &TlsConfig, encryption: Encryption, url: &ServerUrl) -> String {
    let how = match encryption {
        Encryption::Plaintext => {
            return "none (ldap:// without StartTLS): passwords cross the network unencrypted"
                .into()
        }
        Encryption::Ldaps => "ldaps",
        Encryption::StartTls => "StartTLS",
    };
    let version = match tls.min_version {
        TlsVersion::Tls12 => "TLS 1.2 or 1.3",
        TlsVersion::Tls13 => "TLS 1.3",
    };
    let name = tls.server_name.as_deref().unwrap_or(url.host());
    let verified = match &tls.trust {
        Trust::CaFile(path) => format!(
            "server certificate verified for {name:?} against {}",
            path.display()
        ),
        Trust::System => {
            format!("server certificate verified for {name:?} against the system trust store")
        }
        Trust::Nothing => {
            "server certificate NOT verified (directory.tls.insecure_skip_verify)".to_owned()
        }
    };
    let client = match &tls.client_cert_file {
        Some(path) => format!("; client certificate {}", path.display()),
        None => String::new(),
    };
    format!("{how} ({version}); {verified}{client}")
}

/// `check --user`: what a token request for `login` would find, short of the bind.
async fn check_user(
    config: &Config,
    login: &str,
    search_criteria: Option<&str>,
) -> anyhow::Result<()> {
    let d = &config.directory;
    let metrics = Arc::new(latchkey::metrics::Metrics::new());
    let shared = directory::SharedDirectory::new(d, Arc::clone(&metrics));
    // A preview tries no password, so nothing is counted.
    let throttle = Arc::new(Throttle::off());
    let logins = Logins::new(
        config,
        Directory::new(d, 1, &shared)?,
        BruteForce::local(throttle),
        metrics,
    );
    // The same rules as a token request's parameters.
    let options = logins
        .rules()
        .options(search_criteria, None)
        .map_err(|e| anyhow::anyhow!("--search-criteria: {e}"))?;
    println!(
        "user {login:?} (searched {}):",
        if options.search_as == SearchAs::Service {
            "as the service account"
        } else {
            "anonymously"
        }
    );
    let user = match logins.preview(login, &options).await {
        Ok(user) => user,
        Err(LoginRefusal::UnknownUser | LoginRefusal::InvalidCredentials) => anyhow::bail!(
            "no single entry matches {login:?}: none, or several (the log says which); a token request would get 401"
        ),
        Err(LoginRefusal::AccountDisabled(why)) => anyhow::bail!(
            "the entry is found but the account is {why}; a token request would get 401"
        ),
        Err(LoginRefusal::DirectoryUnavailable(why)) => {
            anyhow::bail!("directory unavailable: {why}")
        }
        Err(LoginRefusal::DirectoryMisconfigured(why)) => {
            anyhow::bail!("directory and configuration disagree: {why}")
        }
        Err(other) => anyhow::bail!("the login is refused: {}", other.reason()),
    };
    println!("  dn: {}", user.dn);
    println!("  sub: {}", user.username);
    println!("  name: {}", user.name.as_deref().unwrap_or("(none)"));
    println!("  email: {}", user.email.as_deref().unwrap_or("(none)"));
    for (attribute, values) in &user.attributes {
        println!("  {attribute}: {}", values.join("; "));
    }
    println!(
        "  groups ({}): {}",
        user.groups.len(),
        user.groups.join("; ")
    );
    let claims = TokenIssuer::new(&config.tokens, &config.claims).claims_for(&user);
    let mut shown = serde_json::to_value(&claims).context("rendering the claims")?;
    if let Some(fields) = shown.as_object_mut() {
        // Set when a token is issued; meaningless here.
        for field in ["iat", "nbf", "exp", "jti"] {
            fields.remove(field);
        }
    }
    println!("  token claims: {shown}");
    match config.access.decide(&user.groups) {
        Ok(()) if config.access.is_empty() => println!("  access: allowed (no [access] rules)"),
        Ok(()) => println!("  access: allowed"),
        Err(Refusal::NotRequired) => {
            println!("  access: refused (403): the groups do not satisfy access.require")
        }
        Err(Refusal::Denied) => println!("  access: refused (403): the groups satisfy access.deny"),
    }
    Ok(())
}
