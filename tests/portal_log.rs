//! No password, session token or CSRF value reaches the log, at trace level, through a whole
//! sign-in and sign-out on the form. A test binary of its own: the log is captured with a
//! subscriber for this thread, which other tests running beside it would disturb.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use support::config::TestConfig;
use support::portal::FormClient;
use support::slapd::Slapd;
use support::users::ALICE;
/// A log kept in memory.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_web::test]
async fn no_password_token_or_csrf_value_reaches_the_log() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let slapd = Slapd::start();
    let app = TestConfig::new(&slapd)
        .portal("url", "https://auth.example.org")
        .app()
        .await;
    let mut browser = FormClient::new();

    browser
        .sign_in(&app, ALICE.login, "a-wrong-password-1", "")
        .await;
    browser.sign_in(&app, ALICE.login, ALICE.password, "").await;
    let session = browser
        .cookie("latchkey_session")
        .expect("signed in")
        .to_owned();
    let confirm = browser.get(&app, "/auth/logout").await;
    let csrf = confirm.hidden("csrf");
    browser.post(&app, "/auth/logout", &[("csrf", &csrf)]).await;

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("outcome=\"issued\""), "{text}");
    for secret in [ALICE.password, "a-wrong-password-1", &session, &csrf] {
        assert!(!text.contains(secret), "{secret} is in the log:\n{text}");
    }
    let (_, mac) = csrf.split_once('.').unwrap();
    assert!(!text.contains(mac), "{text}");
}
