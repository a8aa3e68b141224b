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
use support::config::{Raw, TestConfig};
use support::served::request;
use support::service::{
    basic, claims, invalid_credentials_body, login_as, send, token_request, TestApp,
};
use support::slapd::Slapd;
use support::users::{User, ALICE, BOB, DRESSLER, LOCKED, PAGED, SMITH, TWINS_PASSWORD, USER1};

const GROUPS_BASE: &str = "ou=groups,dc=example,dc=org";

/// The `groups` claim of a token issued to `user`.
async fn groups_of(app: &impl TestApp, user: &User) -> Vec<String> {
    let answer = send(app, login_as(user, "")).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}: {}",
        user.login,
        answer.body
    );
    claims(answer.token()).groups
}

/// The `openldap` preset, groups under `ou=groups`.
fn openldap_preset(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd)
        .directory("preset", "openldap")
        .groups("base_dns", [GROUPS_BASE])
}

/// Groups under `ou=groups` that list their members in `member` or `uniqueMember`.
fn member_groups(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd).openldap_groups()
}

#[actix_web::test]
async fn the_openldap_preset_finds_group_of_names_and_group_of_unique_names() {
    let slapd = Slapd::start();
    let app = openldap_preset(&slapd).app().await;

    assert_eq!(
        groups_of(&app, &ALICE).await,
        ["admins", "backend", "cycle-a", "staff"]
    );
    // ops lists bob by uniqueMember.
    assert_eq!(groups_of(&app, &BOB).await, ["contractors", "ops", "staff"]);
    // Names with a comma, parentheses, '*' and non-ASCII letters, in a stable order.
    assert_eq!(
        groups_of(&app, &DRESSLER).await,
        ["Größe", "ops", "Sales, EMEA (*)"]
    );
    assert_eq!(
        groups_of(&app, &SMITH).await,
        ["backend", "Sales, EMEA (*)"]
    );
    assert_eq!(groups_of(&app, &USER1).await, Vec::<String>::new());
}

#[actix_web::test]
async fn nested_groups_are_followed_to_the_depth_limit_and_a_cycle_counts_once() {
    let slapd = Slapd::start();
    let deep = member_groups(&slapd).groups("nested", true).app().await;
    // backend (1) -> engineering (2, whose member value is written CN=Backend,OU=Groups,...)
    // -> platform (3); cycle-a -> cycle-b -> cycle-a again.
    assert_eq!(
        groups_of(&deep, &ALICE).await,
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

    let two = member_groups(&slapd)
        .groups("nested", true)
        .groups("max_depth", 2)
        .app()
        .await;
    assert_eq!(
        groups_of(&two, &ALICE).await,
        [
            "admins",
            "backend",
            "cycle-a",
            "cycle-b",
            "engineering",
            "staff"
        ]
    );

    let flat = member_groups(&slapd).app().await;
    assert_eq!(
        groups_of(&flat, &ALICE).await,
        ["admins", "backend", "cycle-a", "staff"]
    );
}

#[actix_web::test]
async fn member_of_reads_the_users_attribute_and_follows_it_when_nested() {
    let slapd = Slapd::start();
    let member_of = TestConfig::new(&slapd).groups("strategy", "member-of");
    let flat = member_of.clone().app().await;
    assert_eq!(
        groups_of(&flat, &ALICE).await,
        ["admins", "backend", "cycle-a", "staff"]
    );
    assert_eq!(
        groups_of(&flat, &SMITH).await,
        ["backend", "Sales, EMEA (*)"]
    );

    let nested = member_of
        .clone()
        .groups("nested", true)
        .groups("base_dns", [GROUPS_BASE])
        .app()
        .await;
    assert_eq!(
        groups_of(&nested, &ALICE).await,
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
    let elsewhere = member_of
        .groups("base_dns", ["ou=many,dc=example,dc=org"])
        .app()
        .await;
    assert_eq!(groups_of(&elsewhere, &ALICE).await, Vec::<String>::new());
}

#[actix_web::test]
async fn posix_groups_come_from_member_uid_and_the_primary_gid() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .directory("preset", "rfc2307")
        .groups("base_dns", ["ou=posix,dc=example,dc=org"])
        .app()
        .await;
    // alice: developers by memberUid, users by gidNumber 5000.
    assert_eq!(groups_of(&app, &ALICE).await, ["developers", "users"]);
    assert_eq!(groups_of(&app, &BOB).await, ["builders"]);
    assert_eq!(groups_of(&app, &DRESSLER).await, ["users"]);
    // No posixAccount, no gidNumber, no memberUid: no groups, and no error.
    assert_eq!(groups_of(&app, &USER1).await, Vec::<String>::new());
}

#[actix_web::test]
async fn more_groups_than_the_size_limit_are_read_page_by_page() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .groups("strategy", "member")
        .groups("base_dns", ["ou=many,dc=example,dc=org"])
        .groups("page_size", 10)
        .app()
        .await;

    let groups = groups_of(&app, &PAGED).await;

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
    let app = member_groups(&slapd)
        .access("require", r#"staff | "Sales, EMEA (*)""#)
        .access("deny", "contractors")
        .app()
        .await;
    let forbidden = json!({
        "error": "forbidden",
        "message": "Your groups do not allow you a token from this service.",
        "status": 403
    });

    // staff, not a contractor.
    let alice = send(&app, login_as(&ALICE, "")).await;
    alice.assert_status(StatusCode::OK);
    // In staff, but denied as a contractor.
    let bob = send(&app, login_as(&BOB, "")).await;
    assert_eq!(bob.status, StatusCode::FORBIDDEN);
    assert_eq!(bob.body, forbidden);
    assert_eq!(bob.header("cache-control"), "no-store");
    assert_eq!(bob.header("www-authenticate"), "");
    // Without the password, the policy says nothing.
    let bob_guessing = send(&app, token_request("bob", "wrong", "")).await;
    assert_eq!(bob_guessing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bob_guessing.body, invalid_credentials_body());
    // Not in staff: refused by the requirement; smith gets in by the quoted group.
    let user1 = send(&app, login_as(&USER1, "")).await;
    assert_eq!(user1.status, StatusCode::FORBIDDEN);
    assert_eq!(user1.body, forbidden);
    let smith = send(&app, login_as(&SMITH, "")).await;
    smith.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn flags_extra_claims_and_the_group_allow_list_shape_the_token() {
    let slapd = Slapd::start();
    let app = member_groups(&slapd)
        .claims("groups_allow", ["staff"])
        .claims("groups_pattern", "^cycle-")
        .claim("surname", "sn")
        .claim("uid_number", "uidNumber")
        .claim(
            "names",
            Raw(r#"{ attribute = "objectClass", multi = true }"#),
        )
        .flag("admin", "admins | ops")
        .app()
        .await;

    let alice = send(&app, login_as(&ALICE, "")).await;
    alice.assert_status(StatusCode::OK);
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
    let bob = claims(send(&app, login_as(&BOB, "")).await.token());
    assert_eq!(bob.extra["admin"], json!(true));
    let user1 = claims(send(&app, login_as(&USER1, "")).await.token());
    assert_eq!(
        serde_json::to_value(&user1.extra).unwrap(),
        json!({ "admin": false, "names": ["inetOrgPerson"], "surname": "One" })
    );
    assert_eq!(user1.groups, Vec::<String>::new());
}

#[actix_web::test]
async fn login_by_username_or_email_always_yields_the_canonical_subject() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .login_attributes(&["uid", "mail"])
        .app()
        .await;

    for login in ["alice", "alice@example.org", "ALICE@EXAMPLE.ORG"] {
        let answer = send(&app, token_request(login, ALICE.password, "")).await;
        assert_eq!(answer.status, StatusCode::OK, "{login}: {}", answer.body);
        assert_eq!(claims(answer.token()).sub, "alice", "{login}");
    }
    // Two users share this address: refused, never the first.
    let twins = send(&app, token_request("twins@example.org", TWINS_PASSWORD, "")).await;
    assert_eq!(twins.status, StatusCode::UNAUTHORIZED);
    assert_eq!(twins.body, invalid_credentials_body());
    // search_criteria narrows the lookup to one attribute.
    let by_uid = send(
        &app,
        token_request("alice@example.org", ALICE.password, "search_criteria=uid"),
    )
    .await;
    assert_eq!(by_uid.status, StatusCode::UNAUTHORIZED);
    let by_mail = send(&app, login_as(&ALICE, "search_criteria=mail")).await;
    assert_eq!(by_mail.status, StatusCode::UNAUTHORIZED);
    let filter_logged = slapd
        .log()
        .contains("filter=\"(&(objectClass=inetOrgPerson)(|(uid=alice@example.org)(mail=alice@example.org)))\"");
    assert!(filter_logged, "{}", slapd.log());
}

#[actix_web::test]
async fn a_configured_domain_is_cut_off_the_login() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .users("strip_domains", ["example.org"])
        .app()
        .await;
    // user1 has no mail attribute: the local part is looked up as uid.
    let answer = send(&app, token_request("user1@Example.org", USER1.password, "")).await;
    assert_eq!(answer.issued().sub, "user1");
    let other = send(&app, token_request("user1@example.com", USER1.password, "")).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn an_account_the_directory_marks_locked_is_refused_like_a_wrong_password() {
    let slapd = Slapd::start();
    let openldap = openldap_preset(&slapd).app().await;
    let locked = send(&openldap, login_as(&LOCKED, "")).await;
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
    let alice = send(&openldap, login_as(&ALICE, "")).await;
    assert_eq!(alice.status, StatusCode::OK);

    // Without account checks (no preset), the same account gets a token.
    let plain = TestConfig::new(&slapd).app().await;
    let answer = send(&plain, login_as(&LOCKED, "")).await;
    answer.assert_status(StatusCode::OK);
}

#[actix_web::test]
async fn the_cache_saves_every_search_and_a_change_shows_after_its_ttl() {
    let slapd = Slapd::start();
    let app = member_groups(&slapd)
        .cache("ttl", "2s")
        .cache("max_entries", 100)
        .app()
        .await;
    let first = groups_of(&app, &ALICE).await;
    assert_eq!(first, ["admins", "backend", "cycle-a", "staff"]);
    let started = std::time::Instant::now();

    slapd.modify(
        "dn: cn=admins,ou=groups,dc=example,dc=org\nchangetype: modify\nadd: member\nmember: uid=bob,ou=people,dc=example,dc=org\n-\ndelete: member\nmember: uid=alice,ou=people,dc=example,dc=org\n",
    );
    let log_before = slapd.log().len();

    // Warm: one bind, no search, the old groups.
    let warm = groups_of(&app, &ALICE).await;
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
        groups_of(&app, &ALICE).await,
        ["backend", "cycle-a", "staff"]
    );
    assert_eq!(
        groups_of(&app, &BOB).await,
        ["admins", "contractors", "ops", "staff"]
    );
}

#[actix_web::test]
async fn a_dn_template_login_gets_its_groups_too() {
    let slapd = Slapd::start();
    let app = member_groups(&slapd).people_dn_template().app().await;
    assert_eq!(
        groups_of(&app, &SMITH).await,
        ["backend", "Sales, EMEA (*)"]
    );
}

#[actix_web::test]
async fn a_missing_group_base_fails_the_login_rather_than_dropping_groups() {
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .groups("strategy", "member")
        .groups("base_dns", ["ou=nowhere,dc=example,dc=org"])
        .access("deny", "contractors")
        .app()
        .await;
    // The directory cannot answer the login whole until an operator acts: unavailable, not
    // the client's fault and not a smaller set of groups.
    let answer = send(&app, login_as(&BOB, "")).await;
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
        &["dc=example,dc=org"][..],
        &["ou=groups,dc=example,dc=org", "ou=staff,dc=example,dc=org"],
    ] {
        let app = TestConfig::new(&slapd)
            .directory("authenticated_search", "on-request")
            .groups("strategy", "member")
            .groups("base_dns", bases)
            .groups("filter", "(objectClass=groupOfNames)")
            .groups("member_attributes", ["member"])
            .access("deny", "auditors")
            .app()
            .await;
        // The client's choice changes whose rights find bob's entry, never which of his
        // groups the access rules see.
        for query in [
            "",
            "authenticated_search=false",
            "authenticated_search=true",
        ] {
            let bob = send(&app, login_as(&BOB, query)).await;
            assert_eq!(
                bob.status,
                StatusCode::FORBIDDEN,
                "{bases:?} {query}: {}",
                bob.body
            );
            assert_eq!(bob.body, forbidden);
        }
        // alice, in no hidden group, still gets her token found anonymously.
        let alice = send(&app, login_as(&ALICE, "authenticated_search=false")).await;
        assert_eq!(alice.status, StatusCode::OK, "{bases:?}: {}", alice.body);
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

/// The groups of [`crowd_ldif`], read 100 a page.
fn crowd_groups(slapd: &Slapd) -> TestConfig {
    TestConfig::new(slapd)
        .groups("strategy", "member")
        .groups("base_dns", ["ou=crowd,dc=example,dc=org"])
        .groups("page_size", 100)
}

#[test]
fn a_token_too_large_for_verifiers_is_refused_with_500_and_the_fix_in_the_log() {
    // 400 groups of 17 characters: a token of about 10 kB, over the verifiers' 8 kB.
    let slapd = Slapd::start_with(&crowd_ldif(400));
    let dir = tempfile::tempdir().expect("a temp dir");
    let served = crowd_groups(&slapd).serve(dir.path(), "info");
    let answer = request(
        served.port,
        "POST",
        "/auth/request-token",
        &[("Authorization", &basic(PAGED.login, PAGED.password))],
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
    assert!(!log.contains(PAGED.password));
}

#[actix_web::test]
async fn fewer_groups_let_into_the_token_make_it_fit_again() {
    let slapd = Slapd::start_with(&crowd_ldif(400));
    let app = crowd_groups(&slapd)
        .claims("groups_pattern", "^project-team-00")
        .app()
        .await;
    let groups = groups_of(&app, &PAGED).await;
    let want: Vec<String> = (1..=99).map(|i| format!("project-team-{i:04}")).collect();
    assert_eq!(groups, want);
}

#[actix_web::test]
async fn a_search_cut_off_by_a_size_limit_is_no_unique_match_even_with_one_entry() {
    let slapd = Slapd::start();
    // slapd returns this account one entry per search, with sizeLimitExceeded when more match.
    let app = TestConfig::new(&slapd)
        .directory("bind_dn", "cn=latchkey-small,ou=services,dc=example,dc=org")
        .directory("bind_password", "small-service-password-1")
        .login_attributes(&["uid", "mail"])
        .app()
        .await;
    let twins = send(&app, token_request("twins@example.org", TWINS_PASSWORD, "")).await;
    twins.assert_status(StatusCode::UNAUTHORIZED);
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
    let alice = send(&app, token_request("alice@example.org", ALICE.password, "")).await;
    assert_eq!(alice.issued().sub, "alice");
}
