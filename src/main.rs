//! The `latchkey` command: serve the API, or check a configuration against the directory.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::{App, HttpServer};
use anyhow::Context;
use clap::{Parser, Subcommand};
use latchkey::config::{Config, SearchMode, UserLocator};
use latchkey::http::AppState;
use latchkey::{directory, http, telemetry};

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
    /// Validate the configuration, then connect to every directory server: bind as the
    /// service account (if any), read the RootDSE and look for the users' base entry.
    /// Exits non-zero with the reason on the first failure.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve(cli.config),
        Command::Check => check(cli.config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("latchkey: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(path.as_deref())?;
    telemetry::init(&config.log).map_err(anyhow::Error::msg)?;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    // One state (and so one set of connection pools) per worker; no connection opens yet.
    let states = (0..workers)
        .map(|_| AppState::new(&config, workers).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let next = Arc::new(AtomicUsize::new(0));
    let listen = config.server.listen;
    tracing::info!(
        %listen,
        workers,
        directory = ?config.directory.urls,
        issuer = %config.tokens.issuer,
        signing_key = config.tokens.signing_key.id(),
        "latchkey starting"
    );
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            let i = next.fetch_add(1, Ordering::Relaxed);
            #[allow(clippy::indexing_slicing)] // the modulo keeps the index in range
            let state = Arc::clone(&states[i % states.len()]);
            App::new()
                .wrap(tracing_actix_web::TracingLogger::default())
                .configure(http::configure(state))
        })
        .workers(workers)
        .bind(listen)
        .with_context(|| format!("cannot listen on {listen} (server.listen)"))?
        .run()
        .await
        .context("the HTTP server failed")
    })
}

fn check(path: Option<PathBuf>) -> anyhow::Result<()> {
    let config = Config::load(path.as_deref())?;
    let d = &config.directory;
    println!("configuration: ok");
    println!(
        "  tokens: issuer {:?}, {}, signing key {:?} ({} key(s) verify), duration {}s (max {}s)",
        config.tokens.issuer,
        config.tokens.algorithm,
        config.tokens.signing_key.id(),
        config.tokens.keys.len(),
        config.tokens.default_duration,
        config.tokens.max_duration
    );
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
    actix_web::rt::System::new().block_on(async {
        for url in &d.urls {
            let report = directory::probe(d, url)
                .await
                .with_context(|| format!("{url}: check failed"))?;
            println!("{url}: connected in {} ms", report.connect_ms);
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
        Ok(())
    })
}
