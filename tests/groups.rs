//! Directory depth against a real slapd: group strategies, nesting, paging, claims, access
//! policy, login by email, account status and the user cache.
//!
//! The groups are those of tests/fixtures/groups.ldif (see the table at its top).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use actix_web::http::StatusCode;
use serde_json::json;
use support::served::{request, serve};
use support::service::{
    app, basic, claims, config_toml, invalid_credentials_body, load_config, send, token_request,
    Extra,
};
use support::slapd::Slapd;

const GROUPS_BASE: &str = "ou=groups,dc=example,dc=org";

fn config_with(
    slapd: &Slapd,
    directory: &str,
    users: &str,
    sections: &str,
) -> latchkey::config::Config {
    load_config(&config_toml(
        &slapd.url(),
        &Extra {
            directory,
            users,
            sections,
            ..Extra::default()
        },
    ))
}

/// The `groups` claim of a token issued to `login`.
async fn groups_of<S, B>(app: &S, login: &str, password: &str) -> Vec<String>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let answer = send(app, token_request(login, password, "")).await;
    assert_eq!(answer.status, StatusCode::OK, "{login}: {}", answer.body);
    claims(answer.token()).groups
}

fn member_groups(extra: &str) -> String {
    format!(
        "[directory.groups]\nstrategy = \"member\"\nbase_dns = [\"{GROUPS_BASE}\"]\nfilter = \"(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))\"\nmember_attributes = [\"member\", \"uniqueMember\"]\n{extra}"
    )
}

#[actix_web::test]
async fn the_openldap_preset_finds_group_of_names_and_group_of_unique_names() {
    let slapd = Slapd::start();
    let sections = format!("[directory.groups]\nbase_dns = [\"{GROUPS_BASE}\"]\n");
    let app = app(&config_with(&slapd, "preset = \"openldap\"", "", &sections)).await;

    assert_eq!(
        groups_of(&app, "alice", "alice-password-1").await,
        ["admins", "backend", "cycle-a", "staff"]
    );
    // ops lists bob by uniqueMember.
    assert_eq!(
        groups_of(&app, "bob", "bob-password-1").await,
        ["contractors", "ops", "staff"]
    );
    // Names with a comma, parentheses, '*' and non-ASCII letters, in a stable order.
    assert_eq!(
        groups_of(&app, "dreßler", "dreßler-passwort-1").await,
        ["Größe", "ops", "Sales, EMEA (*)"]
    );
    assert_eq!(
        groups_of(&app, "smith, john (*)", "smith-password-1").await,
        ["backend", "Sales, EMEA (*)"]
    );
    assert_eq!(
        groups_of(&app, "user1", "user1-password").await,
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn nested_groups_are_followed_to_the_depth_limit_and_a_cycle_counts_once() {
    let slapd = Slapd::start();
    let deep = app(&config_with(
        &slapd,
        "",
        "",
        &member_groups("nested = true"),
    ))
    .await;
    // backend (1) -> engineering (2, whose member value is written CN=Backend,OU=Groups,...)
    // -> platform (3); cycle-a -> cycle-b -> cycle-a again.
    assert_eq!(
        groups_of(&deep, "alice", "alice-password-1").await,
        [
            "admins",
            "backend",
            "cycle-a",
            "cycle-b",
            "engineering",
            "platform",
            "staff"
        ]
    );

    let two = app(&config_with(
        &slapd,
        "",
        "",
        &member_groups("nested = true\nmax_depth = 2"),
    ))
    .await;
    assert_eq!(
        groups_of(&two, "alice", "alice-password-1").await,
        [
            "admins",
            "backend",
            "cycle-a",
            "cycle-b",
            "engineering",
            "staff"
        ]
    );

    let flat = app(&config_with(&slapd, "", "", &member_groups(""))).await;
    assert_eq!(
        groups_of(&flat, "alice", "alice-password-1").await,
        ["admins", "backend", "cycle-a", "staff"]
    );
}

#[actix_web::test]
async fn member_of_reads_the_users_attribute_and_follows_it_when_nested() {
    let slapd = Slapd::start();
    let flat = app(&config_with(
        &slapd,
        "",
        "",
        "[directory.groups]\nstrategy = \"member-of\"\n",
    ))
    .await;
    assert_eq!(
        groups_of(&flat, "alice", "alice-password-1").await,
        ["admins", "backend", "cycle-a", "staff"]
    );
    assert_eq!(
        groups_of(&flat, "smith, john (*)", "smith-password-1").await,
        ["backend", "Sales, EMEA (*)"]
    );

    let nested = app(&config_with(
        &slapd,
        "",
        "",
        &format!("[directory.groups]\nstrategy = \"member-of\"\nnested = true\nbase_dns = [\"{GROUPS_BASE}\"]\n"),
    ))
    .await;
    assert_eq!(
        groups_of(&nested, "alice", "alice-password-1").await,
        [
            "admins",
            "backend",
            "cycle-a",
            "cycle-b",
            "engineering",
            "platform",
            "staff"
        ]
    );

    // Groups outside the configured bases are left out.
    let elsewhere = app(&config_with(
        &slapd,
        "",
        "",
        "[directory.groups]\nstrategy = \"member-of\"\nbase_dns = [\"ou=many,dc=example,dc=org\"]\n",
    ))
    .await;
    assert_eq!(
        groups_of(&elsewhere, "alice", "alice-password-1").await,
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn posix_groups_come_from_member_uid_and_the_primary_gid() {
    let slapd = Slapd::start();
    let sections = "[directory.groups]\nbase_dns = [\"ou=posix,dc=example,dc=org\"]\n";
    let app = app(&config_with(&slapd, "preset = \"rfc2307\"", "", sections)).await;
    // alice: developers by memberUid, users by gidNumber 5000.
    assert_eq!(
        groups_of(&app, "alice", "alice-password-1").await,
        ["developers", "users"]
    );
    assert_eq!(groups_of(&app, "bob", "bob-password-1").await, ["builders"]);
    assert_eq!(
        groups_of(&app, "dreßler", "dreßler-passwort-1").await,
        ["users"]
    );
    // No posixAccount, no gidNumber, no memberUid: no groups, and no error.
    assert_eq!(
        groups_of(&app, "user1", "user1-password").await,
        Vec::<String>::new()
    );
}

#[actix_web::test]
async fn more_groups_than_the_size_limit_are_read_page_by_page() {
    let slapd = Slapd::start();
    let sections = "[directory.groups]\nstrategy = \"member\"\nbase_dns = [\"ou=many,dc=example,dc=org\"]\npage_size = 10\n";
    let app = app(&config_with(&slapd, "", "", sections)).await;

    let groups = groups_of(&app, "paged", "paged-password-1").await;

    // slapd answers plain searches with at most 20 entries; all 30 came, in pages of 10.
    let want: Vec<String> = (1..=30).map(|i| format!("many-{i:02}")).collect();
    assert_eq!(groups, want);
    let pages = slapd
        .log()
        .lines()
        .filter(|l| l.contains("SRCH base=\"ou=many,dc=example,dc=org\""))
        .count();
    assert_eq!(pages, 3, "30 entries in pages of 10");
}

#[actix_web::test]
async fn access_rules_refuse_with_403_only_after_a_correct_password() {
    let slapd = Slapd::start();
    let sections = format!(
        "{}\n[access]\nrequire = \"staff | \\\"Sales, EMEA (*)\\\"\"\ndeny = \"contractors\"\n",
        member_groups("")
    );
    let app = app(&config_with(&slapd, "", "", &sections)).await;
    let forbidden = json!({
        "error": "forbidden",
        "message": "Your groups do not allow you a token from this service.",
        "status": 403
    });

    // staff, not a contractor.
    let alice = send(&app, token_request("alice", "alice-password-1", "")).await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    // In staff, but denied as a contractor.
    let bob = send(&app, token_request("bob", "bob-password-1", "")).await;
    assert_eq!(bob.status, StatusCode::FORBIDDEN);
    assert_eq!(bob.body, forbidden);
    assert_eq!(bob.header("cache-control"), "no-store");
    assert_eq!(bob.header("www-authenticate"), "");
    // Without the password, the policy says nothing.
    let bob_guessing = send(&app, token_request("bob", "wrong", "")).await;
    assert_eq!(bob_guessing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bob_guessing.body, invalid_credentials_body());
    // Not in staff: refused by the requirement; smith gets in by the quoted group.
    let user1 = send(&app, token_request("user1", "user1-password", "")).await;
    assert_eq!(user1.status, StatusCode::FORBIDDEN);
    assert_eq!(user1.body, forbidden);
    let smith = send(
        &app,
        token_request("smith, john (*)", "smith-password-1", ""),
    )
    .await;
    assert_eq!(smith.status, StatusCode::OK, "{}", smith.body);
}

#[actix_web::test]
async fn flags_extra_claims_and_the_group_allow_list_shape_the_token() {
    let slapd = Slapd::start();
    let sections = format!(
        r#"{}
[claims]
groups_allow = ["staff"]
groups_pattern = "^cycle-"
[claims.extra]
surname = "sn"
uid_number = "uidNumber"
names = {{ attribute = "objectClass", multi = true }}
[claims.flags]
admin = "admins | ops"
"#,
        member_groups("")
    );
    let app = app(&config_with(&slapd, "", "", &sections)).await;

    let alice = send(&app, token_request("alice", "alice-password-1", "")).await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    let c = claims(alice.token());
    // admins and backend are left out of the claim, but the flag still sees admins.
    assert_eq!(c.groups, ["cycle-a", "staff"]);
    assert_eq!(
        serde_json::to_value(&c.extra).unwrap(),
        json!({
            "admin": true,
            "names": ["inetOrgPerson", "posixAccount"],
            "surname": "Liddell",
            "uid_number": "10001",
        })
    );

    // No uidNumber: the claim is left out. ops (by uniqueMember) sets the flag.
    let bob = claims(
        send(&app, token_request("bob", "bob-password-1", ""))
            .await
            .token(),
    );
    assert_eq!(bob.extra["admin"], json!(true));
    let user1 = claims(
        send(&app, token_request("user1", "user1-password", ""))
            .await
            .token(),
    );
    assert_eq!(
        serde_json::to_value(&user1.extra).unwrap(),
        json!({ "admin": false, "names": ["inetOrgPerson"], "surname": "One" })
    );
    assert_eq!(user1.groups, Vec::<String>::new());
}

#[actix_web::test]
async fn login_by_username_or_email_always_yields_the_canonical_subject() {
    let slapd = Slapd::start();
    let app = app(&config_with(
        &slapd,
        "",
        "login_attributes = [\"uid\", \"mail\"]",
        "",
    ))
    .await;

    for login in ["alice", "alice@example.org", "ALICE@EXAMPLE.ORG"] {
        let answer = send(&app, token_request(login, "alice-password-1", "")).await;
        assert_eq!(answer.status, StatusCode::OK, "{login}: {}", answer.body);
        assert_eq!(claims(answer.token()).sub, "alice", "{login}");
    }
    // Two users share this address: refused, never the first.
    let twins = send(
        &app,
        token_request("twins@example.org", "twin-password-1", ""),
    )
    .await;
    assert_eq!(twins.status, StatusCode::UNAUTHORIZED);
    assert_eq!(twins.body, invalid_credentials_body());
    // search_criteria narrows the lookup to one attribute.
    let by_uid = send(
        &app,
        token_request(
            "alice@example.org",
            "alice-password-1",
            "search_criteria=uid",
        ),
    )
    .await;
    assert_eq!(by_uid.status, StatusCode::UNAUTHORIZED);
    let by_mail = send(
        &app,
        token_request("alice", "alice-password-1", "search_criteria=mail"),
    )
    .await;
    assert_eq!(by_mail.status, StatusCode::UNAUTHORIZED);
    let filter_logged = slapd
        .log()
        .contains("filter=\"(&(objectClass=inetOrgPerson)(|(uid=alice@example.org)(mail=alice@example.org)))\"");
    assert!(filter_logged, "{}", slapd.log());
}

#[actix_web::test]
async fn a_configured_domain_is_cut_off_the_login() {
    let slapd = Slapd::start();
    let app = app(&config_with(
        &slapd,
        "",
        "strip_domains = [\"example.org\"]",
        "",
    ))
    .await;
    // user1 has no mail attribute: the local part is looked up as uid.
    let answer = send(
        &app,
        token_request("user1@Example.org", "user1-password", ""),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(claims(answer.token()).sub, "user1");
    let other = send(
        &app,
        token_request("user1@example.com", "user1-password", ""),
    )
    .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_account_the_directory_marks_locked_is_refused_like_a_wrong_password() {
    let slapd = Slapd::start();
    let sections = format!("[directory.groups]\nbase_dns = [\"{GROUPS_BASE}\"]\n");
    let openldap = app(&config_with(&slapd, "preset = \"openldap\"", "", &sections)).await;
    let locked = send(&openldap, token_request("locked", "locked-password-1", "")).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(locked.body, invalid_credentials_body());
    // The bind itself succeeded: slapd enforces no policy here, Latchkey refused.
    assert!(
        slapd
            .log()
            .contains("BIND dn=\"uid=locked,ou=people,dc=example,dc=org\" mech=SIMPLE"),
        "{}",
        slapd.log()
    );
    let alice = send(&openldap, token_request("alice", "alice-password-1", "")).await;
    assert_eq!(alice.status, StatusCode::OK);

    // Without account checks (no preset), the same account gets a token.
    let plain = app(&config_with(&slapd, "", "", "")).await;
    let answer = send(&plain, token_request("locked", "locked-password-1", "")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[actix_web::test]
async fn the_cache_saves_every_search_and_a_change_shows_after_its_ttl() {
    let slapd = Slapd::start();
    let sections = format!(
        "{}\n[directory.cache]\nttl = \"2s\"\nmax_entries = 100\n",
        member_groups("")
    );
    let app = app(&config_with(&slapd, "", "", &sections)).await;
    let first = groups_of(&app, "alice", "alice-password-1").await;
    assert_eq!(first, ["admins", "backend", "cycle-a", "staff"]);
    let started = std::time::Instant::now();

    slapd.modify(
        "dn: cn=admins,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,dc=example,dc=org\n-\ndelete: member\nmember: uid=alice,ou=people,dc=example,dc=org\n",
    );
    let log_before = slapd.log().len();

    // Warm: one bind, no search, the old groups.
    let warm = groups_of(&app, "alice", "alice-password-1").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "the machine is too slow for this test's 2 s TTL"
    );
    assert_eq!(warm, first);
    let log = slapd.log();
    let new = log.get(log_before..).unwrap_or_default();
    assert_eq!(new.matches(" SRCH ").count(), 0, "{new}");
    assert_eq!(
        new.matches("BIND dn=\"uid=alice,ou=people,dc=example,dc=org\" method=128")
            .count(),
        1,
        "{new}"
    );
    // The password is still checked on every login.
    let wrong = send(&app, token_request("alice", "wrong-password", "")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, invalid_credentials_body());

    // After the TTL the change is seen.
    std::thread::sleep(std::time::Duration::from_millis(2_200));
    assert_eq!(
        groups_of(&app, "alice", "alice-password-1").await,
        ["backend", "cycle-a", "staff"]
    );
    assert_eq!(
        groups_of(&app, "bob", "bob-password-1").await,
        ["admins", "contractors", "ops", "staff"]
    );
}

#[actix_web::test]
async fn a_dn_template_login_gets_its_groups_too() {
    let slapd = Slapd::start();
    let app = app(&config_with(
        &slapd,
        "",
        "dn_template = \"uid={login},ou=people,dc=example,dc=org\"",
        &member_groups(""),
    ))
    .await;
    assert_eq!(
        groups_of(&app, "smith, john (*)", "smith-password-1").await,
        ["backend", "Sales, EMEA (*)"]
    );
}

#[actix_web::test]
async fn a_missing_group_base_fails_the_login_rather_than_dropping_groups() {
    let slapd = Slapd::start();
    let sections = "[directory.groups]\nstrategy = \"member\"\nbase_dns = [\"ou=nowhere,dc=example,dc=org\"]\n[access]\ndeny = \"contractors\"\n";
    let app = app(&config_with(&slapd, "", "", sections)).await;
    // The directory cannot answer the login whole until an operator acts: unavailable, not
    // the client's fault and not a smaller set of groups.
    let answer = send(&app, token_request("bob", "bob-password-1", "")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.body,
        json!({
            "error": "directory_unavailable",
            "message": "The directory cannot be reached right now; try again in a few seconds.",
            "status": 503
        })
    );
    assert_eq!(answer.header("retry-after"), "5");
}

/// A group only the service account may see (the fixture's ACLs hide `ou=staff` from
/// anonymous searches), with bob in it.
const HIDDEN_GROUP: &str = "dn: cn=auditors,ou=staff,dc=example,dc=org
objectClass: groupOfNames
cn: auditors
member: uid=bob,ou=people,dc=example,dc=org
";

#[actix_web::test]
async fn an_anonymous_search_cannot_hide_a_group_from_the_access_rules() {
    let slapd = Slapd::start_with(HIDDEN_GROUP);
    let forbidden = json!({
        "error": "forbidden",
        "message": "Your groups do not allow you a token from this service.",
        "status": 403
    });
    // One base over the whole tree: anonymous rights would silently see fewer groups. Two
    // bases, one hidden: anonymous rights would not see the second base at all.
    for bases in [
        "\"dc=example,dc=org\"",
        "\"ou=groups,dc=example,dc=org\", \"ou=staff,dc=example,dc=org\"",
    ] {
        let sections = format!(
            "[directory.groups]\nstrategy = \"member\"\nbase_dns = [{bases}]\nfilter = \"(objectClass=groupOfNames)\"\nmember_attributes = [\"member\"]\n[access]\ndeny = \"auditors\"\n"
        );
        let app = app(&config_with(
            &slapd,
            "authenticated_search = \"on-request\"",
            "",
            &sections,
        ))
        .await;
        // The client's choice changes whose rights find bob's entry, never which of his
        // groups the access rules see.
        for query in [
            "",
            "authenticated_search=false",
            "authenticated_search=true",
        ] {
            let bob = send(&app, token_request("bob", "bob-password-1", query)).await;
            assert_eq!(
                bob.status,
                StatusCode::FORBIDDEN,
                "{bases} {query}: {}",
                bob.body
            );
            assert_eq!(bob.body, forbidden);
        }
        // alice, in no hidden group, still gets her token found anonymously.
        let alice = send(
            &app,
            token_request("alice", "alice-password-1", "authenticated_search=false"),
        )
        .await;
        assert_eq!(alice.status, StatusCode::OK, "{bases}: {}", alice.body);
    }
}

/// `ou=crowd` with `count` groups `project-team-0001`.., each listing uid=paged as member: a
/// user in hundreds of groups.
fn crowd_ldif(count: usize) -> String {
    let mut ldif = String::from(
        "dn: ou=crowd,dc=example,dc=org\nobjectClass: organizationalUnit\nou: crowd\n\n",
    );
    for i in 1..=count {
        ldif.push_str(&format!(
            "dn: cn=project-team-{i:04},ou=crowd,dc=example,dc=org\nobjectClass: groupOfNames\ncn: project-team-{i:04}\nmember: uid=paged,ou=people,dc=example,dc=org\n\n"
        ));
    }
    ldif
}

#[test]
fn a_token_too_large_for_verifiers_is_refused_with_500_and_the_fix_in_the_log() {
    // 400 groups of 17 characters: a token of about 10 kB, over the verifiers' 8 kB.
    let slapd = Slapd::start_with(&crowd_ldif(400));
    let crowd = "[directory.groups]\nstrategy = \"member\"\nbase_dns = [\"ou=crowd,dc=example,dc=org\"]\npage_size = 100\n";
    let dir = tempfile::tempdir().expect("a temp dir");
    let toml = config_toml(
        &slapd.url(),
        &Extra {
            sections: crowd,
            ..Extra::default()
        },
    );
    let served = serve(dir.path(), &toml, "info");
    let answer = request(
        served.port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic("paged", "paged-password-1"))],
    );
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("www-authenticate"), None);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&answer.body).expect("JSON"),
        json!({
            "error": "token_too_large",
            "message": "Your token would be larger than the 8192 bytes the services checking it accept, because of how many groups it would carry. Only this server's configuration can change that: contact its operator.",
            "status": 500
        })
    );
    let log = served.log();
    let line = log
        .lines()
        .find(|l| l.contains("cannot issue a token"))
        .unwrap_or_else(|| panic!("no error line in the log:\n{log}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        // The text log quotes the error, escaping its own quotes.
        line.contains(r#"error="the token for \"paged\" would be "#)
            && line.contains(" bytes, more than the 8192 bytes verifiers accept, with 400 groups in it: let fewer groups into tokens with claims.groups_allow or claims.groups_pattern"),
        "{line}"
    );
    let audit = log
        .lines()
        .find(|l| l.contains("latchkey::audit"))
        .unwrap_or_else(|| panic!("no audit line in the log:\n{log}"));
    assert!(
        audit.contains(" login=paged ")
            && audit.contains(r#" sub="paged" outcome="refused" reason="token_too_large" "#),
        "{audit}"
    );
    assert!(!log.contains("paged-password-1"));
}

#[actix_web::test]
async fn fewer_groups_let_into_the_token_make_it_fit_again() {
    let slapd = Slapd::start_with(&crowd_ldif(400));
    let sections = "[directory.groups]\nstrategy = \"member\"\nbase_dns = [\"ou=crowd,dc=example,dc=org\"]\npage_size = 100\n\n[claims]\ngroups_pattern = \"^project-team-00\"\n";
    let app = app(&config_with(&slapd, "", "", sections)).await;
    let groups = groups_of(&app, "paged", "paged-password-1").await;
    let want: Vec<String> = (1..=99).map(|i| format!("project-team-{i:04}")).collect();
    assert_eq!(groups, want);
}

#[actix_web::test]
async fn a_search_cut_off_by_a_size_limit_is_no_unique_match_even_with_one_entry() {
    let slapd = Slapd::start();
    // slapd returns this account one entry per search, with sizeLimitExceeded when more match.
    let directory = "bind_dn = \"cn=latchkey-small,ou=services,dc=example,dc=org\"\nbind_password = \"small-service-password-1\"\n";
    let app = app(&load_config(&config_toml(
        &slapd.url(),
        &Extra {
            directory,
            users: "login_attributes = [\"uid\", \"mail\"]",
            anonymous_only: true,
            ..Extra::default()
        },
    )))
    .await;
    let twins = send(
        &app,
        token_request("twins@example.org", "twin-password-1", ""),
    )
    .await;
    assert_eq!(twins.status, StatusCode::UNAUTHORIZED, "{}", twins.body);
    assert_eq!(twins.body, invalid_credentials_body());
    assert_eq!(
        twins.header("www-authenticate"),
        "Basic realm=\"latchkey\", charset=\"UTF-8\""
    );
    assert_eq!(twins.header("cache-control"), "no-store");
    // The directory did answer that search with one entry and result code 4.
    let log = slapd.log();
    assert!(
        log.lines()
            .any(|l| l.contains("SEARCH RESULT tag=101 err=4 ") && l.contains(" nentries=1 ")),
        "{log}"
    );
    // A login matching one entry is still found by that account.
    let alice = send(
        &app,
        token_request("alice@example.org", "alice-password-1", ""),
    )
    .await;
    assert_eq!(alice.status, StatusCode::OK, "{}", alice.body);
    assert_eq!(claims(alice.token()).sub, "alice");
}
