//! Latchkey in a real browser: headless Chromium, driven through chromedriver
//! (`tests/support/browser.rs`), against `latchkey serve` on a real slapd.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use support::browser::{upstream, Browser};
use support::config::TestConfig;
use support::slapd::Slapd;

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
