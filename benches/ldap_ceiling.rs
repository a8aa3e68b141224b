//! The ceiling for `POST /auth/request-token`: the same LDAP work a token request does (a user
//! search as the service account, then a bind as the user, each on its own pooled connection),
//! done straight with ldap3 in a tight loop, with no HTTP and no token. With `--bind-only`, the
//! work of a repeat login with the user cache warm: the bind alone. With `--search-only`, the
//! work of a refresh (`POST /auth/refresh` with no group searches configured): the user search
//! alone.
//!
//! `benches/load.sh` runs it beside the real service and reports the ratio. By hand:
//!
//! ```sh
//! cargo bench --bench ldap_ceiling -- --url ldap://127.0.0.1:3890 --users 1000 --concurrency 8 --seconds 10
//! ```
//!
//! Under `cargo test --all-targets` (no `--bench` argument) it does nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry, StdStream};

struct Args {
    url: String,
    users: u64,
    concurrency: usize,
    seconds: u64,
    service_dn: String,
    service_password: String,
    base: String,
    bind_only: bool,
    search_only: bool,
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        return None;
    }
    let get = |name: &str, default: &str| -> String {
        argv.iter()
            .position(|a| a == name)
            .and_then(|i| argv.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let number = |name: &str, default: &str| -> u64 {
        get(name, default)
            .parse()
            .unwrap_or_else(|_| panic!("{name} takes a whole number"))
    };
    Some(Args {
        url: get("--url", "ldap://127.0.0.1:3890"),
        users: number("--users", "1000"),
        concurrency: number("--concurrency", "8") as usize,
        seconds: number("--seconds", "10"),
        service_dn: get("--service-dn", "cn=latchkey,ou=services,dc=example,dc=org"),
        service_password: get("--service-password", "service-password-1"),
        base: get("--base", "ou=people,dc=example,dc=org"),
        bind_only: argv.iter().any(|a| a == "--bind-only"),
        search_only: argv.iter().any(|a| a == "--search-only"),
    })
}

async fn connect(url: &str) -> Ldap {
    // Nagle off, as Latchkey's own connections have it.
    let authority = url.trim_start_matches("ldap://").trim_end_matches('/');
    let socket = tokio::net::TcpStream::connect(authority)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    socket.set_nodelay(true).expect("TCP_NODELAY");
    let settings = LdapConnSettings::new()
        .set_std_stream(StdStream::Tcp(socket.into_std().expect("a std socket")));
    let (driver, ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = driver.drive().await;
    });
    ldap
}

async fn worker(args: Arc<Args>, next: Arc<AtomicU64>, done: Arc<AtomicU64>, until: Instant) {
    let mut search = connect(&args.url).await;
    search
        .simple_bind(&args.service_dn, &args.service_password)
        .await
        .and_then(|r| r.success())
        .expect("service bind");
    let mut bind = connect(&args.url).await;
    while Instant::now() < until {
        let n = next.fetch_add(1, Ordering::Relaxed) % args.users + 1;
        if args.bind_only {
            bind.simple_bind(
                &format!("uid=bench{n},{}", args.base),
                &format!("password-{n}"),
            )
            .await
            .and_then(|r| r.success())
            .expect("user bind");
            done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let filter = format!("(&(objectClass=inetOrgPerson)(uid=bench{n}))");
        let (entries, _) = search
            .search(
                &args.base,
                Scope::Subtree,
                &filter,
                vec!["uid", "cn", "mail"],
            )
            .await
            .and_then(|r| r.success())
            .expect("user search");
        let entry = SearchEntry::construct(entries.into_iter().next().expect("one entry"));
        if args.search_only {
            done.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        bind.simple_bind(&entry.dn, &format!("password-{n}"))
            .await
            .and_then(|r| r.success())
            .expect("user bind");
        done.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let Some(args) = parse_args() else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let args = Arc::new(args);
    let done = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    runtime.block_on(async {
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|_| tokio::spawn(worker(args.clone(), next.clone(), done.clone(), until)))
            .collect();
        for task in tasks {
            task.await.expect("a worker");
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let logins = done.load(Ordering::Relaxed);
    println!(
        "ceiling: {logins} {} in {elapsed:.1} s = {:.0}/s ({} connections per kind)",
        if args.bind_only {
            "bind"
        } else if args.search_only {
            "search"
        } else {
            "search+bind"
        },
        logins as f64 / elapsed,
        args.concurrency
    );
}
