//! Latchkey in a real browser: headless Chromium, driven through chromedriver
//! (`tests/support/browser.rs`), against `latchkey serve` on a real slapd.
//!
//! The sign-in pages (`[portal]`) are served directly on `http://127.0.0.1:<port>` (the
//! loopback demo configuration: `cookie_secure = false`), and a person is sent on to the kit's
//! upstream on `http://localhost:<port>`, another host, allowed by `allowed_redirect_hosts`.
//!
//! Then the same person goes through the real nginx and the real Caddy, each running its
//! example from `deploy/` in front of Latchkey and the upstream on one address
//! `http://127.0.0.1:<proxy port>`: the guarded page sends the browser to the sign-in page the
//! proxy serves, and back, with the identity the proxy hands the upstream.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

use support::browser::{upstream, Browser, StoredCookie};
use support::caddy::{self, Caddy};
use support::config::TestConfig;
use support::nginx::{self, Nginx};
use support::served::Served;
use support::slapd::Slapd;
use support::users::ALICE;

/// The session's length in the portal configuration of these tests.
const SESSION_SECONDS: i64 = 1800;
/// The host the upstream is reached by, allowed as a redirect target.
const APP_HOST: &str = "localhost";

/// A page that says whether scripts ran in it.
const SCRIPT_PROBE: &str = "data:text/html,<title>probe</title>\
    <p id=probe>scripts off</p>\
    <script>document.getElementById('probe').textContent='scripts on'</script>";

#[tokio::test]
async fn the_browser_kit_reads_a_page_latchkey_serves_with_and_without_javascript() {
    let slapd = Slapd::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let latchkey = TestConfig::new(&slapd).serve(dir.path(), "info");
    let healthz = format!("http://127.0.0.1:{}/healthz", latchkey.port);

    let missing = format!("http://127.0.0.1:{}/no-such-page", latchkey.port);
    for (browser, scripts) in [
        (Browser::start().await, "scripts on"),
        (Browser::without_javascript().await, "scripts off"),
    ] {
        browser.open(&healthz).await;
        assert_eq!(browser.url().await, healthz);
        assert_eq!(browser.status().await, 200);
        let text = browser.text().await;
        assert!(text.contains(r#"{"status":"ok"}"#), "{scripts}: {text}");
        browser.open(&missing).await;
        assert_eq!(browser.status().await, 404, "{scripts}");
        browser.open(SCRIPT_PROBE).await;
        assert_eq!(browser.text().await, scripts);
    }
}

#[tokio::test]
async fn the_kit_upstream_shows_the_path_and_query_it_was_asked_for() {
    let port = upstream();
    let browser = Browser::start().await;
    browser
        .open(&format!("http://127.0.0.1:{port}/app/page?x=1&y=%C3%A9"))
        .await;
    let text = browser.text().await;
    assert!(
        text.starts_with("upstream got GET /app/page?x=1&y=%C3%A9\n"),
        "{text}"
    );
    assert_eq!(browser.title().await, "upstream");
}

/// A directory, Latchkey serving the sign-in pages on `http://127.0.0.1:<its port>` with the
/// groups of `member`, and the upstream; keep them all.
struct Portal {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    latchkey: Served,
    app_port: u16,
}

impl Portal {
    fn start() -> Portal {
        let slapd = Slapd::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let config = TestConfig::new(&slapd).member_groups();
        let latchkey = serve_portal(config, dir.path(), |port| port, APP_HOST);
        Portal {
            _slapd: slapd,
            _dir: dir,
            latchkey,
            app_port: upstream(),
        }
    }

    /// `http://127.0.0.1:<port><path>` on Latchkey.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.latchkey.port)
    }

    /// The upstream's `path` (with its query) on the allowed host.
    fn app(&self, path: &str) -> String {
        format!("http://{APP_HOST}:{}{path}", self.app_port)
    }

    /// The sign-in page with `rd` (percent-encoded here).
    fn login_with_rd(&self, rd: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("rd", rd)
            .finish();
        self.url(&format!("/auth/login?{query}"))
    }
}

/// `latchkey serve` for `config` with the sign-in pages on `http://127.0.0.1:<port>`, where
/// `port` is what `portal_port` answers for Latchkey's own port, and `rd` allowed to name
/// `redirect_host`.
fn serve_portal(
    config: TestConfig,
    dir: &Path,
    portal_port: impl Fn(u16) -> u16 + 'static,
    redirect_host: &'static str,
) -> Served {
    config.serve_with(dir, "info", move |config, port| {
        config
            .portal("url", format!("http://127.0.0.1:{}", portal_port(port)))
            .portal("cookie_secure", false)
            .portal("session_duration", format!("{SESSION_SECONDS}s"))
            .portal("allowed_redirect_hosts", [redirect_host])
    })
}

/// The text of the page shown below the brand line every page starts with (its letter case
/// is the stylesheet's).
async fn content(browser: &Browser) -> String {
    let text = browser.text().await;
    let (brand, rest) = text.split_once('\n').unwrap_or((&text, ""));
    assert!(brand.eq_ignore_ascii_case("Latchkey"), "{text}");
    rest.to_owned()
}

/// Sign in as alice on the form shown.
async fn sign_in_as_alice(browser: &Browser) {
    browser.fill("Login", ALICE.login).await;
    browser.fill("Password", ALICE.password).await;
    browser.click("Sign in").await;
}

/// The sign-in form, empty, with nobody signed in.
async fn assert_sign_in_form(browser: &Browser) {
    assert_eq!(browser.status().await, 200);
    assert_eq!(browser.title().await, "Sign in · Latchkey");
    assert_eq!(
        content(browser).await,
        "Sign in\nUse your directory login and password.\nLogin\nPassword\nSign in"
    );
    assert_eq!(browser.value("Login").await, "");
    assert_eq!(browser.value("Password").await, "");
}

/// Sign in as alice with a wrong password on the form shown: the form again at `form_url`, with a
/// 401, the one generic message, the login kept and the password not.
async fn a_wrong_password_shows_the_error(browser: &Browser, form_url: &str) {
    browser.fill("Login", ALICE.login).await;
    browser.fill("Password", "not-her-password").await;
    browser.click("Sign in").await;
    assert_eq!(browser.status().await, 401);
    assert_eq!(browser.url().await, form_url);
    assert_eq!(
        content(browser).await,
        "Sign in\nUse your directory login and password.\n\
         The login or password is wrong.\nLogin\nPassword\nSign in"
    );
    assert_eq!(browser.value("Login").await, "alice");
    assert_eq!(browser.value("Password").await, "");
}

/// The page after signing out at `logout_url`, with the session cookie gone.
async fn assert_signed_out(browser: &Browser, logout_url: &str) {
    assert_eq!(browser.status().await, 200);
    assert_eq!(browser.url().await, logout_url);
    assert_eq!(
        content(browser).await,
        "Signed out\nYou are signed out.\nSign in again"
    );
    assert_eq!(browser.cookie("latchkey_session").await, None);
}

/// The page alice sees once signed in, without a `rd`.
const ALICE_SIGNED_IN: &str = "Signed in\nSigned in as Alice Liddell (alice).\n\
    Groups\nadmins\nbackend\ncycle-a\nstaff\nSign out";

#[tokio::test]
async fn a_person_signs_in_lands_on_the_page_asked_for_and_signs_out() {
    let portal = Portal::start();
    let target = portal.app("/app/reports?year=2026&q=a%20b");
    let browser = Browser::start().await;

    browser.open(&portal.login_with_rd(&target)).await;
    assert_sign_in_form(&browser).await;
    // The login field has the focus, and Tab goes on in reading order.
    assert_eq!(browser.focused().await, "username");
    browser.tab().await;
    assert_eq!(browser.focused().await, "password");
    browser.tab().await;
    assert_eq!(browser.focused().await, "button");
    // The page's one stylesheet loaded under its Content-Security-Policy.
    assert_eq!(
        browser
            .run("return [...document.styleSheets].map(s => s.cssRules.length > 0);")
            .await,
        serde_json::json!([true])
    );
    browser.open(&portal.login_with_rd(&target)).await;
    browser.screenshot("sign-in").await;

    // A wrong password: the form again, one generic message tied to the fields, the login
    // kept, the password not, the focus on the password.
    a_wrong_password_shows_the_error(&browser, &portal.url("/auth/login")).await;
    assert_eq!(browser.focused().await, "password");
    for field in ["Login", "Password"] {
        let field = browser.field(field).await;
        assert_eq!(
            field.attr("aria-describedby").await.unwrap().as_deref(),
            Some("login-error")
        );
        assert_eq!(
            field.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true")
        );
    }
    assert_eq!(browser.cookie("latchkey_session").await, None);
    browser.screenshot("sign-in-error").await;

    // The right password: on to the page asked for, path and query intact.
    browser.fill("Password", ALICE.password).await;
    browser.click("Sign in").await;
    assert_eq!(browser.url().await, target);
    assert_eq!(browser.status().await, 200);
    assert!(
        browser
            .text()
            .await
            .starts_with("upstream got GET /app/reports?year=2026&q=a%20b\n"),
        "{}",
        browser.text().await
    );

    // Back on the portal: who is signed in, with the groups.
    browser.open(&portal.url("/auth/login")).await;
    assert_eq!(browser.status().await, 200);
    assert_eq!(browser.title().await, "Signed in · Latchkey");
    assert_eq!(content(&browser).await, ALICE_SIGNED_IN);
    browser.screenshot("signed-in").await;

    // Sign out, confirmed.
    browser.open(&portal.url("/auth/logout")).await;
    assert_eq!(browser.status().await, 200);
    assert_eq!(
        content(&browser).await,
        "Sign out?\nYou will have to sign in again to open the sites this sign-in \
         covers.\nSign out"
    );
    browser.screenshot("sign-out").await;
    browser.click("Sign out").await;
    assert_signed_out(&browser, &portal.url("/auth/logout")).await;
    browser.screenshot("signed-out").await;
    browser.click("Sign in again").await;
    assert_eq!(browser.url().await, portal.url("/auth/login"));
    assert_sign_in_form(&browser).await;
}

#[tokio::test]
async fn the_session_cookie_is_stored_http_only_lax_for_the_whole_host_without_secure_on_loopback_http(
) {
    let portal = Portal::start();
    let browser = Browser::start().await;
    browser.open(&portal.url("/auth/login")).await;
    let before = chrono::Utc::now().timestamp();
    sign_in_as_alice(&browser).await;
    let after = chrono::Utc::now().timestamp();
    assert_eq!(browser.url().await, portal.url("/auth/login"));
    assert_eq!(content(&browser).await, ALICE_SIGNED_IN);

    let session = browser
        .cookie("latchkey_session")
        .await
        .expect("a session cookie");
    let expiry = session.expiry.expect("a session cookie with an expiry");
    assert!(
        (before + SESSION_SECONDS..=after + SESSION_SECONDS + 1).contains(&expiry),
        "expiry {expiry}, signed in between {before} and {after}"
    );
    assert_eq!(
        session,
        StoredCookie {
            name: "latchkey_session".into(),
            value: session.value.clone(),
            domain: Some("127.0.0.1".into()),
            path: Some("/".into()),
            secure: false,
            http_only: true,
            same_site: Some("Lax".into()),
            expiry: Some(expiry),
        }
    );
    // The value is the session token itself, made for alice.
    assert_eq!(support::service::claims(&session.value).sub, "alice");

    // The other host the person was sent to never sees it.
    browser.open(&portal.app("/")).await;
    assert_eq!(browser.cookies().await, Vec::new());
}

#[tokio::test]
async fn a_hostile_rd_is_not_followed() {
    let portal = Portal::start();
    let browser = Browser::start().await;
    for hostile in [
        "//evil.example/steal",
        "https://evil.example/",
        "http://localhost.evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
    ] {
        browser.open(&portal.url("/auth/logout")).await;
        browser.click("Sign out").await;
        browser.open(&portal.login_with_rd(hostile)).await;
        assert!(
            !browser.source().await.contains("evil"),
            "the form carries {hostile:?} on"
        );
        sign_in_as_alice(&browser).await;
        assert_eq!(browser.url().await, portal.url("/auth/login"), "{hostile}");
        assert_eq!(browser.status().await, 200, "{hostile}");
        assert_eq!(content(&browser).await, ALICE_SIGNED_IN, "{hostile}");
    }
    assert!(
        portal
            .latchkey
            .log()
            .contains("ignored a redirect target the portal does not allow"),
        "{}",
        portal.latchkey.log()
    );
}

#[tokio::test]
async fn a_form_with_a_tampered_csrf_token_is_refused_and_signs_nobody_in() {
    let portal = Portal::start();
    let browser = Browser::start().await;
    browser
        .open(&portal.login_with_rd(&portal.app("/app")))
        .await;
    let token = browser
        .run("return document.querySelector('input[name=csrf]').value;")
        .await;
    let token = token.as_str().expect("a csrf field").to_owned();
    // The same token with its last character changed.
    let tampered = format!(
        "{}{}",
        &token[..token.len() - 1],
        if token.ends_with('A') { 'B' } else { 'A' }
    );
    browser
        .run(&format!(
            "document.querySelector('input[name=csrf]').value = '{tampered}';"
        ))
        .await;
    sign_in_as_alice(&browser).await;
    assert_eq!(browser.status().await, 403);
    assert_eq!(browser.url().await, portal.url("/auth/login"));
    assert_eq!(browser.title().await, "Form expired · Latchkey");
    assert_eq!(
        content(&browser).await,
        "Form expired\nThis form has expired or was not sent from this browser. \
         Open the page again and retry.\nBack to sign-in"
    );
    assert_eq!(browser.cookie("latchkey_session").await, None);
    // The way back keeps the allowed target, and the form then works.
    browser.click("Back to sign-in").await;
    sign_in_as_alice(&browser).await;
    assert_eq!(browser.url().await, portal.app("/app"));
}

#[tokio::test]
async fn the_whole_flow_works_with_javascript_off() {
    let portal = Portal::start();
    let target = portal.app("/app/page?x=1");
    let browser = Browser::without_javascript().await;

    browser.open(&portal.login_with_rd(&target)).await;
    assert_sign_in_form(&browser).await;
    browser.fill("Login", ALICE.login).await;
    browser.fill("Password", "wrong").await;
    browser.click("Sign in").await;
    assert_eq!(browser.status().await, 401);
    assert!(browser
        .text()
        .await
        .contains("\nThe login or password is wrong.\n"));
    assert_eq!(browser.value("Login").await, "alice");
    browser.fill("Password", ALICE.password).await;
    browser.click("Sign in").await;
    assert_eq!(browser.url().await, target);
    assert!(browser
        .text()
        .await
        .starts_with("upstream got GET /app/page?x=1\n"));

    browser.open(&portal.url("/auth/login")).await;
    assert_eq!(content(&browser).await, ALICE_SIGNED_IN);
    browser.click("Sign out").await;
    assert_eq!(
        content(&browser).await,
        "Signed out\nYou are signed out.\nSign in again"
    );
    assert_eq!(browser.cookie("latchkey_session").await, None);
}

/// A directory, the upstream, and a real proxy in front of both the upstream and Latchkey, which
/// serves its sign-in pages on the proxy's address `http://127.0.0.1:<port>` and trusts the
/// proxy's account of the original URL; keep them all.
struct Proxied<P> {
    _slapd: Slapd,
    _dir: tempfile::TempDir,
    _latchkey: Served,
    _proxy: P,
    port: u16,
}

impl<P: 'static> Proxied<P> {
    /// `start(latchkey_port, app_port)` starts the proxy, `port_of` tells its port.
    fn start(start: impl Fn(u16, u16) -> P + 'static, port_of: fn(&P) -> u16) -> Proxied<P> {
        let slapd = Slapd::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let app_port = upstream();
        let config = TestConfig::new(&slapd)
            .member_groups()
            .server("trusted_proxies", ["127.0.0.1/32"]);
        // The proxy's configuration names Latchkey's port and Latchkey's names the proxy's, so
        // the proxy is started for each port Latchkey is about to try (it starts without its
        // upstreams); one started for an earlier try is stopped when replaced.
        let slot: Rc<RefCell<Option<P>>> = Rc::default();
        let started = Rc::clone(&slot);
        let portal_port = move |latchkey_port| {
            let proxy = start(latchkey_port, app_port);
            let port = port_of(&proxy);
            *started.borrow_mut() = Some(proxy);
            port
        };
        let latchkey = serve_portal(config, dir.path(), portal_port, "127.0.0.1");
        let proxy = slot
            .borrow_mut()
            .take()
            .expect("the proxy started with Latchkey");
        let port = port_of(&proxy);
        Proxied {
            _slapd: slapd,
            _dir: dir,
            _latchkey: latchkey,
            _proxy: proxy,
            port,
        }
    }

    /// `http://127.0.0.1:<the proxy's port><path>`.
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The identity headers the upstream receives for alice with the groups of `member` (the
/// `Remote-*` lines of its page, in name order: Caddy sends headers sorted, nginx does not).
const ALICE_IDENTITY: [&str; 4] = [
    "Remote-Email: alice@example.org",
    "Remote-Groups: admins,backend,cycle-a,staff",
    "Remote-Name: Alice Liddell",
    "Remote-User: alice",
];

/// The issue's flow through `proxied`: a guarded URL with a path and query sends the browser to
/// sign in; a wrong password shows the error; the right one leads back to that URL, where the
/// upstream shows the identity the proxy gave it (saved as the screenshot `screenshot`); after
/// signing out, the guarded URL sends the browser to sign in again.
async fn a_person_signs_in_through<P: 'static>(proxied: &Proxied<P>, screenshot: &str) {
    let guarded = proxied.url("/app/reports?year=2026&q=a%20b");
    let sign_in = proxied.url(&format!(
        "/auth/login?rd=http%3A%2F%2F127.0.0.1%3A{}%2Fapp%2Freports%3Fyear%3D2026%26q%3Da%2520b",
        proxied.port
    ));
    let browser = Browser::start().await;

    browser.open(&guarded).await;
    assert_eq!(browser.url().await, sign_in);
    assert_sign_in_form(&browser).await;

    a_wrong_password_shows_the_error(&browser, &proxied.url("/auth/login")).await;
    assert_eq!(browser.cookie("latchkey_session").await, None);

    browser.fill("Password", ALICE.password).await;
    browser.click("Sign in").await;
    assert_eq!(browser.url().await, guarded);
    assert_eq!(browser.status().await, 200);
    assert_eq!(browser.title().await, "upstream");
    let text = browser.text().await;
    let (arrived, headers) = text.split_once('\n').unwrap_or((&text, ""));
    assert_eq!(arrived, "upstream got GET /app/reports?year=2026&q=a%20b");
    let mut identity: Vec<&str> = headers
        .lines()
        .filter(|line| line.starts_with("Remote-"))
        .collect();
    identity.sort_unstable();
    assert_eq!(identity, ALICE_IDENTITY, "{text}");
    browser.screenshot(screenshot).await;
    let session = browser
        .cookie("latchkey_session")
        .await
        .expect("a session cookie");
    // The session is Latchkey's: the application never receives it (it could replay it at
    // every site Latchkey guards), while the browser's other cookies still reach it.
    assert!(!text.contains(&session.value), "{text}");
    assert!(!text.contains("latchkey_session"), "{text}");
    assert!(text.contains("latchkey_csrf="), "{text}");
    assert_eq!(session.domain.as_deref(), Some("127.0.0.1"));
    assert_eq!(support::service::claims(&session.value).sub, "alice");

    browser.open(&proxied.url("/auth/logout")).await;
    browser.click("Sign out").await;
    assert_signed_out(&browser, &proxied.url("/auth/logout")).await;

    browser.open(&guarded).await;
    assert_eq!(browser.url().await, sign_in);
    assert_sign_in_form(&browser).await;
}

#[tokio::test]
async fn through_nginx_a_person_signs_in_lands_on_the_page_asked_for_and_signs_out() {
    let proxied = Proxied::start(
        |latchkey, app| Nginx::start(&nginx::deploy_example(latchkey, app)),
        Nginx::port,
    );
    a_person_signs_in_through(&proxied, "through-nginx").await;
}

#[tokio::test]
async fn through_caddy_a_person_signs_in_lands_on_the_page_asked_for_and_signs_out() {
    let proxied = Proxied::start(
        |latchkey, app| Caddy::start(&caddy::deploy_example(latchkey, app)),
        Caddy::port,
    );
    a_person_signs_in_through(&proxied, "through-caddy").await;
}
