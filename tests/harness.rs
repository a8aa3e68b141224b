//! Tests of the test harness itself: the fixture directory, its ACLs and the
//! `Slapd` lifecycle, and the `Redis` lifecycle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, Scope, SearchEntry};
use support::redis::Redis;
use support::slapd::Slapd;
use support::users::{ALICE, CAROL};
use support::{BASE_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD};

const ALICE_DN: &str = "uid=alice,ou=people,dc=example,dc=org";
const ALICE_PASSWORD: &str = ALICE.password;
const CAROL_DN: &str = "uid=carol,ou=staff,dc=example,dc=org";
const CAROL_PASSWORD: &str = CAROL.password;

async fn connect(url: &str) -> Ldap {
    let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(5));
    let (conn, ldap) = LdapConnAsync::with_settings(settings, url)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    ldap3::drive!(conn);
    ldap
}

/// DNs of the entries `filter` finds under BASE_DN, sorted.
async fn search_dns(ldap: &mut Ldap, filter: &str) -> Vec<String> {
    let (entries, _) = ldap
        .search(BASE_DN, Scope::Subtree, filter, vec!["1.1"])
        .await
        .unwrap_or_else(|e| panic!("search {filter}: {e}"))
        .success()
        .unwrap_or_else(|e| panic!("search {filter} result: {e}"));
    let mut dns: Vec<String> = entries
        .into_iter()
        .map(|e| SearchEntry::construct(e).dn)
        .collect();
    dns.sort();
    dns
}

async fn bind_ok(ldap: &mut Ldap, dn: &str, password: &str) {
    ldap.simple_bind(dn, password)
        .await
        .unwrap_or_else(|e| panic!("bind as {dn}: {e}"))
        .success()
        .unwrap_or_else(|e| panic!("bind as {dn} result: {e}"));
}

/// Polls `slapd.log()` until it has a line containing all of `parts`
/// (RESULT lines are written after the response is sent, so they can lag).
fn wait_for_log_line(slapd: &Slapd, parts: &[&str]) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        if let Some(line) = slapd
            .log()
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            return Some(line.to_string());
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn alice_binds_and_wrong_password_is_rejected() {
    let slapd = Slapd::start();
    let mut ldap = connect(&slapd.url()).await;
    bind_ok(&mut ldap, ALICE_DN, ALICE_PASSWORD).await;

    let mut ldap = connect(&slapd.url()).await;
    let res = ldap
        .simple_bind(ALICE_DN, "not-alice-password")
        .await
        .expect("sending the bind");
    assert_eq!(
        res.rc, 49,
        "wrong password must give invalidCredentials: {res:?}"
    );
    ldap.unbind().await.expect("unbind");
}

#[tokio::test]
async fn staff_subtree_is_hidden_from_anonymous_but_visible_to_service() {
    let slapd = Slapd::start();

    let mut anon = connect(&slapd.url()).await;
    assert_eq!(
        search_dns(&mut anon, "(uid=carol)").await,
        Vec::<String>::new()
    );
    // Sanity check that the anonymous search works at all.
    assert_eq!(
        search_dns(&mut anon, "(uid=alice)").await,
        vec![ALICE_DN.to_string()]
    );

    let mut service = connect(&slapd.url()).await;
    bind_ok(&mut service, SERVICE_DN, SERVICE_PASSWORD).await;
    assert_eq!(
        search_dns(&mut service, "(uid=carol)").await,
        vec![CAROL_DN.to_string()]
    );

    // Passwords are readable by no one, not even the service account.
    let (entries, _) = service
        .search(
            CAROL_DN,
            Scope::Base,
            "(objectClass=*)",
            vec!["userPassword", "mail"],
        )
        .await
        .expect("reading carol")
        .success()
        .expect("reading carol result");
    let carol = SearchEntry::construct(entries.into_iter().next().expect("carol's entry"));
    assert_eq!(
        carol.attrs.get("mail"),
        Some(&vec!["carol@example.org".to_string()])
    );
    assert!(
        !carol.attrs.contains_key("userPassword"),
        "userPassword leaked: {carol:?}"
    );
    assert!(
        !carol.bin_attrs.contains_key("userPassword"),
        "userPassword leaked: {carol:?}"
    );

    // An anonymous connection may still authenticate as carol.
    let mut carol_conn = connect(&slapd.url()).await;
    bind_ok(&mut carol_conn, CAROL_DN, CAROL_PASSWORD).await;
}

#[tokio::test]
async fn fixture_has_ambiguous_mail_and_user_without_mail() {
    let slapd = Slapd::start();
    let mut ldap = connect(&slapd.url()).await;
    assert_eq!(
        search_dns(&mut ldap, "(mail=twins@example.org)").await,
        vec![
            format!("uid=twin1,{PEOPLE_DN}"),
            format!("uid=twin2,{PEOPLE_DN}")
        ]
    );
    assert_eq!(
        search_dns(&mut ldap, "(&(uid=user1)(mail=*))").await,
        Vec::<String>::new()
    );
    assert_eq!(
        search_dns(&mut ldap, "(uid=user1)").await,
        vec![format!("uid=user1,{PEOPLE_DN}")]
    );
}

#[tokio::test]
async fn stop_refuses_connections_and_restart_keeps_data() {
    let mut slapd = Slapd::start();
    let url = slapd.url();
    let port = slapd.port();
    assert_eq!(url, format!("ldap://127.0.0.1:{port}"));

    // A connection that is open across the stop must not block the restart.
    let mut before = connect(&url).await;
    bind_ok(&mut before, ALICE_DN, ALICE_PASSWORD).await;

    slapd.stop();
    slapd.stop(); // idempotent
    let settings = LdapConnSettings::new().set_conn_timeout(Duration::from_secs(2));
    assert!(
        LdapConnAsync::with_settings(settings, &url).await.is_err(),
        "connecting to a stopped slapd must fail"
    );
    let old = tokio::time::timeout(
        Duration::from_secs(5),
        before.simple_bind(ALICE_DN, ALICE_PASSWORD),
    )
    .await
    .expect("a bind on the old connection must not hang");
    assert!(old.is_err(), "old connection must be dead: {old:?}");

    slapd.restart();
    assert_eq!(slapd.port(), port);
    assert_eq!(slapd.url(), url);
    let mut after = connect(&url).await;
    bind_ok(&mut after, ALICE_DN, ALICE_PASSWORD).await;

    // Restarting a running server works too.
    slapd.restart();
    let mut again = connect(&url).await;
    bind_ok(&mut again, ALICE_DN, ALICE_PASSWORD).await;
}

#[tokio::test]
async fn log_records_binds_and_searches() {
    let slapd = Slapd::start();
    let bind_line = format!(r#"BIND dn="{ALICE_DN}" mech=SIMPLE"#);
    assert!(
        !slapd.log().contains(&bind_line),
        "bind logged before it happened"
    );

    let mut ldap = connect(&slapd.url()).await;
    bind_ok(&mut ldap, ALICE_DN, ALICE_PASSWORD).await;
    // slapd 2.5 logs two BIND lines (request, then success) plus a RESULT:
    //   conn=1001 op=0 BIND dn="uid=alice,..." method=128
    //   conn=1001 op=0 BIND dn="uid=alice,..." mech=SIMPLE bind_ssf=0 ssf=0
    //   conn=1001 op=0 RESULT tag=97 err=0 qtime=... etime=... text=
    let line = wait_for_log_line(&slapd, &[&bind_line])
        .unwrap_or_else(|| panic!("no `{bind_line}` line in the log:\n{}", slapd.log()));
    // "<hex time> <thread id> conn=1001 op=0 BIND dn=..."
    let conn = line
        .split_whitespace()
        .find(|w| w.starts_with("conn="))
        .unwrap_or_else(|| panic!("no conn= in the BIND line: {line}"))
        .to_string();
    assert!(
        line.contains(&format!("{conn} op=0 {bind_line} bind_ssf=0 ssf=0")),
        "unexpected BIND line format: {line}"
    );
    let request = format!(r#"{conn} op=0 BIND dn="{ALICE_DN}" method=128"#);
    assert!(
        slapd.log().contains(&request),
        "no `{request}` line:\n{}",
        slapd.log()
    );
    let result = format!("{conn} op=0 RESULT tag=97 err=0 ");
    assert!(
        wait_for_log_line(&slapd, &[&result]).is_some(),
        "no `{result}` line:\n{}",
        slapd.log()
    );

    search_dns(&mut ldap, "(uid=bob)").await;
    let srch = format!(r#"SRCH base="{BASE_DN}" scope=2 deref=0 filter="(uid=bob)""#);
    assert!(
        wait_for_log_line(&slapd, &[&format!("{conn} op=1 {srch}")]).is_some(),
        "no `{srch}` line:\n{}",
        slapd.log()
    );
    assert!(
        wait_for_log_line(
            &slapd,
            &[
                &format!("{conn} op=1 SEARCH RESULT tag=101 err=0 "),
                "nentries=1 "
            ]
        )
        .is_some(),
        "no SEARCH RESULT line:\n{}",
        slapd.log()
    );
}

#[tokio::test]
async fn start_with_loads_extra_entries() {
    let extra = format!(
        "dn: uid=dave,{PEOPLE_DN}\n\
         objectClass: inetOrgPerson\n\
         uid: dave\n\
         cn: Dave Extra\n\
         sn: Extra\n\
         mail: dave@example.org\n\
         userPassword: dave-password-1\n"
    );
    let slapd = Slapd::start_with(&extra);
    let mut ldap = connect(&slapd.url()).await;
    assert_eq!(
        search_dns(&mut ldap, "(mail=dave@example.org)").await,
        vec![format!("uid=dave,{PEOPLE_DN}")]
    );
    bind_ok(
        &mut ldap,
        &format!("uid=dave,{PEOPLE_DN}"),
        "dave-password-1",
    )
    .await;
    // The fixture is still there.
    assert_eq!(
        search_dns(&mut ldap, "(uid=alice)").await,
        vec![ALICE_DN.to_string()]
    );

    // And a plain start() does not have the extra entry.
    let plain = Slapd::start();
    let mut ldap = connect(&plain.url()).await;
    assert_eq!(
        search_dns(&mut ldap, "(uid=dave)").await,
        Vec::<String>::new()
    );
}

/// Our own slapd child serving `port`: its PID and the directory of its
/// `slapd.conf`, found through /proc (the harness exposes neither).
fn find_our_slapd(port: u16) -> Option<(u32, PathBuf)> {
    let me = std::process::id();
    let listen = format!("ldap://127.0.0.1:{port}/");
    for entry in std::fs::read_dir("/proc").expect("listing /proc") {
        let entry = entry.expect("reading a /proc entry");
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !args.windows(2).any(|w| w[0] == "-h" && w[1] == listen) || parent_pid(pid) != Some(me) {
            continue;
        }
        let conf = args
            .windows(2)
            .find(|w| w[0] == "-f")
            .map(|w| PathBuf::from(&w[1]))?;
        return Some((
            pid,
            conf.parent()
                .expect("slapd.conf has a parent dir")
                .to_path_buf(),
        ));
    }
    None
}

fn parent_pid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may contain spaces, so split after ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn drop_kills_slapd_and_removes_its_dir() {
    let slapd = Slapd::start();
    let (pid, dir) = find_our_slapd(slapd.port()).expect("our slapd child in /proc");
    assert!(
        dir.join("slapd.conf").is_file(),
        "no slapd.conf in {}",
        dir.display()
    );
    assert!(
        dir.join("slapd.log").is_file(),
        "no slapd.log in {}",
        dir.display()
    );
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());

    drop(slapd);

    assert!(
        !dir.exists(),
        "temp dir {} still exists after drop",
        dir.display()
    );
    // Killed and reaped (a zombie would keep its /proc entry).
    assert!(
        !proc_dir.exists(),
        "slapd pid {pid} still exists after drop"
    );
}

#[test]
fn drop_during_panic_still_cleans_up() {
    let found = std::panic::catch_unwind(|| {
        let slapd = Slapd::start();
        let found = find_our_slapd(slapd.port()).expect("our slapd child in /proc");
        std::panic::panic_any(found);
    })
    .expect_err("the closure panics");
    let (pid, dir) = found
        .downcast::<(u32, PathBuf)>()
        .map(|b| *b)
        .expect("panic payload");
    assert!(
        !dir.exists(),
        "temp dir {} survived the panic",
        dir.display()
    );
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "slapd pid {pid} survived the panic"
    );
}

/// The test kit's redis-server answers on its port, keeps nothing over a restart on the same
/// port, and its directory is gone once it is dropped.
#[test]
fn redis_starts_restarts_empty_and_cleans_up() {
    let mut redis = Redis::start();
    assert_eq!(redis.cli(&["PING"]), "PONG");
    assert_eq!(redis.cli(&["SET", "latchkey:probe", "1"]), "OK");
    assert_eq!(redis.cli(&["GET", "latchkey:probe"]), "1");
    let port = redis.port();
    let pid = redis.pid();
    redis.restart();
    assert_eq!(redis.port(), port);
    assert_ne!(redis.pid(), pid, "restart() started a new process");
    assert_eq!(redis.cli(&["EXISTS", "latchkey:probe"]), "0");
    let dir = redis.dir().to_path_buf();
    redis.stop();
    assert!(
        !support::process::listening(port),
        "port {port} still open after stop()"
    );
    drop(redis);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
