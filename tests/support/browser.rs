//! A real browser for the tests: headless Chromium driven through `chromedriver`'s WebDriver
//! API (with the `fantoccini` client), and a small upstream a browser can be sent to.
//!
//! [`Browser::start`] runs `chromedriver` on a free loopback port with the test kit's
//! [`Process`] runner and opens one Chromium session with a fresh profile in a temporary
//! directory. [`Browser::without_javascript`] does the same with JavaScript switched off by
//! the browser's own content setting, as a person who turned it off would have it.
//!
//! The helpers speak as a person does: open a URL, fill the field labelled so, click the
//! button that says so, read the page's text, read the cookies as the browser stores them, and
//! save a screenshot to `target/screenshots/<name>.png`.
//!
//! Dropping a [`Browser`] kills Chromium and every process it started, then chromedriver, then
//! removes the profile, also when the test panics (chromedriver's log is printed then).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Map, Value};
use tempfile::TempDir;

use super::process::{child_pids, find_tool, listening, send_signal, Process, Spec};

const DRIVER_READY_TIMEOUT: Duration = Duration::from_secs(20);
/// The window the screenshots show: a laptop screen.
const WINDOW: (u32, u32) = (1280, 900);

/// Chromium's switches. Without the ones that stop its background traffic (component updates,
/// sync, field trials) it waits on a network this machine does not have and never starts.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// A cookie as the browser stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCookie {
    pub name: String,
    pub value: String,
    /// The host it was set by (host-only) or the `Domain` it was set for.
    pub domain: Option<String>,
    pub path: Option<String>,
    pub secure: bool,
    pub http_only: bool,
    /// `Strict`, `Lax` or `None`, as the browser reports it.
    pub same_site: Option<String>,
    /// Unix time; `None` for a cookie that ends with the browser session.
    pub expiry: Option<i64>,
}

/// A running headless Chromium and its chromedriver. See the module docs.
pub struct Browser {
    client: Client,
    driver: Process,
    // Dropped last, after the browser that writes into it is gone.
    profile: TempDir,
}

impl Browser {
    /// A browser with JavaScript on.
    pub async fn start() -> Browser {
        Browser::launch(true).await
    }

    /// A browser with JavaScript off (Chromium's content setting, as a user would set it).
    pub async fn without_javascript() -> Browser {
        Browser::launch(false).await
    }

    async fn launch(javascript: bool) -> Browser {
        let profile = tempfile::Builder::new()
            .prefix("latchkey-browser-")
            .tempdir()
            .expect("creating a temp dir for the browser profile");
        let driver = start_driver(&profile);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&profile, javascript))
            .connect(&format!("http://127.0.0.1:{}", driver.port()))
            .await;
        // A failed session is reported with chromedriver's log, which says why.
        let client = client.unwrap_or_else(|e| {
            panic!(
                "chromedriver did not open a Chromium session: {e}\nchromedriver log:\n{}",
                driver.log()
            )
        });
        Browser {
            client,
            driver,
            profile,
        }
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Go to `url` and wait until the page has loaded.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The address of the page shown.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("reading the current URL")
            .to_string()
    }

    /// The HTTP status of the page shown (of the last answer, after redirects), as the
    /// browser's Navigation Timing reports it.
    pub async fn status(&self) -> u16 {
        let status = self
            .run("return performance.getEntriesByType('navigation')[0].responseStatus;")
            .await;
        status
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("no HTTP status for the page shown: {status}"))
    }

    /// Run `script` in the page through WebDriver (which a page's Content-Security-Policy and
    /// the JavaScript switch do not stop); what it returns.
    pub async fn run(&self, script: &str) -> Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("running {script:?}: {e}"))
    }

    /// The page's title.
    pub async fn title(&self) -> String {
        self.client.title().await.expect("reading the page title")
    }

    /// The text of the page as it is rendered (hidden elements left out).
    pub async fn text(&self) -> String {
        self.find("//body", "the page's body")
            .await
            .text()
            .await
            .expect("reading the page's text")
    }

    /// The page's HTML as the browser holds it.
    pub async fn source(&self) -> String {
        self.client.source().await.expect("reading the page source")
    }

    /// The form field whose label reads `label`, or whose `name` is `label`.
    pub async fn field(&self, label: &str) -> Element {
        let l = xpath_string(label);
        let xpath = format!(
            "//*[self::input or self::textarea or self::select][@id = //label[normalize-space() = {l}]/@for] \
             | //label[normalize-space() = {l}]//*[self::input or self::textarea or self::select] \
             | //*[self::input or self::textarea or self::select][@name = {l}]"
        );
        self.find(&xpath, &format!("a field labelled or named {label:?}"))
            .await
    }

    /// Clear the field `label` (see [`Browser::field`]) and type `value` into it.
    pub async fn fill(&self, label: &str, value: &str) {
        let field = self.field(label).await;
        field
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clearing field {label:?}: {e}"));
        field
            .send_keys(value)
            .await
            .unwrap_or_else(|e| panic!("typing into field {label:?}: {e}"));
    }

    /// What the field `label` holds now.
    pub async fn value(&self, label: &str) -> String {
        self.field(label)
            .await
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("reading field {label:?}: {e}"))
            .unwrap_or_default()
    }

    /// Click the button (or submit input, or link) whose text is `text`, and wait for the page
    /// it leads to.
    pub async fn click(&self, text: &str) {
        let t = xpath_string(text);
        let xpath = format!(
            "//button[normalize-space() = {t}] \
             | //input[(@type = 'submit' or @type = 'button') and @value = {t}] \
             | //a[normalize-space() = {t}]"
        );
        let before = self.find("/html", "the page").await;
        self.find(&xpath, &format!("a button or link {text:?}"))
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {text:?}: {e}"));
        // chromedriver waits for a navigation the click starts; this also covers one that
        // starts a moment later: the old page's root goes stale once the new page is in.
        self.wait_until_gone(&before).await;
    }

    /// Press the Tab key in the element that has the focus.
    pub async fn tab(&self) {
        self.client
            .active_element()
            .await
            .expect("reading the focused element")
            .send_keys(&fantoccini::key::Key::Tab.to_string())
            .await
            .expect("pressing Tab");
    }

    /// The `name`, else the `id`, else the tag name of the element that has the keyboard focus
    /// (`body` when nothing has it).
    pub async fn focused(&self) -> String {
        let element = self
            .client
            .active_element()
            .await
            .expect("reading the focused element");
        for attribute in ["name", "id"] {
            if let Some(value) = element
                .attr(attribute)
                .await
                .expect("reading an attribute of the focused element")
            {
                return value;
            }
        }
        element
            .tag_name()
            .await
            .expect("reading the focused element's tag")
    }

    /// Every cookie the browser stores for the page shown, as it stores it.
    pub async fn cookies(&self) -> Vec<StoredCookie> {
        let cookies = self
            .client
            .get_all_cookies()
            .await
            .expect("reading the browser's cookies");
        cookies
            .into_iter()
            .map(|c| StoredCookie {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                domain: c.domain().map(str::to_owned),
                path: c.path().map(str::to_owned),
                secure: c.secure().unwrap_or(false),
                http_only: c.http_only().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
                expiry: c.expires_datetime().map(|t| t.unix_timestamp()),
            })
            .collect()
    }

    /// The cookie `name` as the browser stores it, if it has one.
    pub async fn cookie(&self, name: &str) -> Option<StoredCookie> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Save what the window shows to `target/screenshots/<name>.png` and print the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("taking screenshot {name}: {e}"));
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("screenshot {name}: {}", path.display());
        path
    }

    /// The first element `xpath` finds; panics with `what` and the page when there is none.
    async fn find(&self, xpath: &str, what: &str) -> Element {
        match self.client.find(Locator::XPath(xpath)).await {
            Ok(element) => element,
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string());
                let source = self.client.source().await.unwrap_or_default();
                panic!("no {what} on {url:?} ({e}); the page:\n{source}")
            }
        }
    }

    /// Wait until `element` is no longer part of the page shown.
    async fn wait_until_gone(&self, element: &Element) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            // Any command on an element of a page that was replaced fails (stale element).
            if element.tag_name().await.is_err() {
                return;
            }
            if std::time::Instant::now() >= deadline {
                // A click that stays on the page (no navigation) is fine too.
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver leaves Chromium running when it is killed, and Chromium's helpers
        // outlive Chromium: kill the whole tree under chromedriver first (parents before
        // children, so none starts a replacement), then chromedriver itself.
        if let Some(root) = self.driver.running_pid() {
            for pid in descendants(root) {
                send_signal("KILL", pid);
            }
        }
        self.driver.stop();
    }
}

/// Every live descendant of `root`, parents before their children.
fn descendants(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(parent) = next.pop() {
        for pid in child_pids(parent) {
            found.push(pid);
            next.push(pid);
        }
    }
    found
}

/// chromedriver on a free loopback port, logging into the profile's directory.
fn start_driver(profile: &TempDir) -> Process {
    let driver = find_tool("chromedriver", "the browser tests drive Chromium with it");
    let log = profile.path().join("chromedriver.log");
    Process::start(Spec {
        name: "chromedriver",
        ports: 1,
        log,
        other_logs: Vec::new(),
        ready_timeout: DRIVER_READY_TIMEOUT,
        graceful_stop: false,
        command: Box::new(move |ports: &[u16]| {
            let mut command = Command::new(&driver);
            // Only local connections are accepted (chromedriver's default, said out loud).
            command
                .arg(format!("--port={}", ports[0]))
                .arg("--allowed-ips=127.0.0.1")
                .arg("--allowed-origins=");
            command
        }),
        ready: Box::new(|probe| listening(probe.ports[0])),
    })
}

/// The session's capabilities: Chromium from the system, headless, with the profile in
/// `profile` and JavaScript on or off.
fn capabilities(profile: &TempDir, javascript: bool) -> Map<String, Value> {
    let chromium = find_tool("chromium", "the browser tests run it headless");
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!(
        "--user-data-dir={}",
        profile.path().join("chromium").display()
    ));
    args.push(format!("--window-size={},{}", WINDOW.0, WINDOW.1));
    let mut options = json!({
        "binary": chromium,
        "args": args,
    });
    if !javascript {
        options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
    }
    let mut capabilities = Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert("goog:chromeOptions".into(), options);
    capabilities
}

/// `text` as an XPath string literal.
fn xpath_string(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else if !text.contains('"') {
        format!("\"{text}\"")
    } else {
        let parts: Vec<String> = text.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// An upstream a browser can be sent to: a thread on a free loopback port that answers every
/// request with a small HTML page naming the method, the path and query, and the request's
/// header lines (HTML-escaped), so a test reads in the browser where it arrived.
pub fn upstream() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the upstream");
    let port = listener
        .local_addr()
        .expect("the upstream's address")
        .port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut lines = Vec::new();
            for line in BufReader::new(&stream).lines() {
                match line {
                    Ok(line) if !line.is_empty() => lines.push(line),
                    _ => break,
                }
            }
            let mut request_line = lines.first().map(String::as_str).unwrap_or("").split(' ');
            let method = request_line.next().unwrap_or("");
            let target = request_line.next().unwrap_or("");
            let headers: String = lines
                .iter()
                .skip(1)
                .map(|l| format!("<li>{}</li>", escape_html(l)))
                .collect();
            let page = format!(
                "<!doctype html><title>upstream</title>\
                 <p id=\"arrived\">upstream got {} {}</p><ul>{headers}</ul>",
                escape_html(method),
                escape_html(target)
            );
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
