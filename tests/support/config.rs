//! [`TestConfig`]: the standard test configuration for a test slapd, changed field by field,
//! rendered as TOML and loaded through `Config::load` like the service's own file.
//!
//! ```ignore
//! let app = TestConfig::new(&slapd)
//!     .login_attributes(&["uid", "mail"])
//!     .brute_force("max_failures_per_login", 1)
//!     .app()
//!     .await;
//! ```
//!
//! Values are typed ([`Toml`]): strings are quoted and escaped, lists are lists. [`Raw`] passes
//! an inline table through as written.

use std::path::Path;

use latchkey::config::Config;

use super::served::{serve, Served};
use super::service::{app, TestApp, TEST_ISSUER, TEST_KID, TEST_SECRET};
use super::slapd::Slapd;
use super::{BASE_DN, PEOPLE_DN, SERVICE_DN, SERVICE_PASSWORD};

/// A value as TOML writes it.
pub trait Toml {
    fn toml(&self) -> String;
}

impl Toml for str {
    fn toml(&self) -> String {
        format!("\"{}\"", self.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

impl Toml for String {
    fn toml(&self) -> String {
        self.as_str().toml()
    }
}

impl Toml for Path {
    fn toml(&self) -> String {
        self.display().to_string().toml()
    }
}

impl<T: Toml + ?Sized> Toml for &T {
    fn toml(&self) -> String {
        (**self).toml()
    }
}

macro_rules! plain_toml {
    ($($t:ty),*) => {$(
        impl Toml for $t {
            fn toml(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
plain_toml!(bool, i32, i64, u64, u32, usize);

impl<T: Toml> Toml for [T] {
    fn toml(&self) -> String {
        let items: Vec<String> = self.iter().map(Toml::toml).collect();
        format!("[{}]", items.join(", "))
    }
}

impl<T: Toml, const N: usize> Toml for [T; N] {
    fn toml(&self) -> String {
        self[..].toml()
    }
}

impl<T: Toml> Toml for Vec<T> {
    fn toml(&self) -> String {
        self[..].toml()
    }
}

/// TOML text used as written, for inline tables (`{ attribute = "x", multi = true }`).
pub struct Raw<'a>(pub &'a str);

impl Toml for Raw<'_> {
    fn toml(&self) -> String {
        self.0.to_owned()
    }
}

/// The standard test configuration with the caller's changes. See the module docs.
#[derive(Debug, Clone)]
pub struct TestConfig {
    /// Tables in the order they are written, each with its `key = value` lines.
    tables: Vec<(String, Vec<(String, String)>)>,
}

impl TestConfig {
    /// The standard configuration for `slapd`: the test key and issuer, the service account,
    /// small pools and short timeouts, users searched under the base DN by `uid`.
    pub fn new(slapd: &Slapd) -> TestConfig {
        TestConfig::for_url(&slapd.url())
    }

    /// [`TestConfig::new`] for a directory at `url` (which may be down or not LDAP at all).
    pub fn for_url(url: &str) -> TestConfig {
        TestConfig { tables: Vec::new() }
            .tokens("issuer", TEST_ISSUER)
            .key(TEST_KID, TEST_SECRET)
            .urls(&[url])
            .directory("connect_timeout", "2s")
            .directory("operation_timeout", "3s")
            .directory("bind_dn", SERVICE_DN)
            .directory("bind_password", SERVICE_PASSWORD)
            .set("directory.pool", "search_size", 2)
            .set("directory.pool", "bind_size", 2)
            .set("directory.pool", "wait_timeout", "2s")
            .users("base_dn", BASE_DN)
            .users("filter", "(objectClass=inetOrgPerson)")
            .users("search_attributes", ["uid", "mail"])
    }

    /// Set `key` in `table` (`directory.users`, `claims.extra`, ...), replacing an earlier value.
    /// A new table goes after the others.
    pub fn set(mut self, table: &str, key: &str, value: impl Toml) -> TestConfig {
        let value = value.toml();
        let lines = match self.tables.iter().position(|(name, _)| name == table) {
            Some(i) => &mut self.tables[i].1,
            None => {
                self.tables.push((table.to_owned(), Vec::new()));
                &mut self.tables.last_mut().expect("the table just added").1
            }
        };
        match lines.iter_mut().find(|(k, _)| k == key) {
            Some(line) => line.1 = value,
            None => lines.push((key.to_owned(), value)),
        }
        self
    }

    /// Remove `key` from `table`; a table left empty is not written.
    pub fn unset(mut self, table: &str, key: &str) -> TestConfig {
        for (name, lines) in &mut self.tables {
            if name == table {
                lines.retain(|(k, _)| k != key);
            }
        }
        self
    }

    /// `[server]`: `listen`, `trusted_proxies`, `max_header_bytes`, ...
    pub fn server(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("server", key, value)
    }

    /// `[tokens]`: `default_duration`, `signing_key`, ...
    pub fn tokens(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("tokens", key, value)
    }

    /// `[tokens.keys.KID] secret = SECRET`, next to the test key.
    pub fn key(self, kid: &str, secret: &str) -> TestConfig {
        self.set(&format!("tokens.keys.{kid}"), "secret", secret)
    }

    /// Leave the test key out (a test that configures its own keys).
    pub fn without_test_key(self) -> TestConfig {
        self.unset(&format!("tokens.keys.{TEST_KID}"), "secret")
    }

    /// `[verify]`: `cookie_name`, `cache`, ...
    pub fn verify(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("verify", key, value)
    }

    /// `[verify] cookie_name`.
    pub fn cookie_name(self, name: &str) -> TestConfig {
        self.verify("cookie_name", name)
    }

    /// `[directory]`: `failover`, `authenticated_search`, `operation_timeout`, ...
    pub fn directory(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("directory", key, value)
    }

    /// `[directory] urls`.
    pub fn urls(self, urls: &[&str]) -> TestConfig {
        self.directory("urls", urls)
    }

    /// No service account: every search runs anonymously or as the user.
    pub fn anonymous(self) -> TestConfig {
        self.unset("directory", "bind_dn")
            .unset("directory", "bind_password")
    }

    /// `[directory.tls]`: `ca_file`, `starttls`, `server_name`, `min_version`, ...
    pub fn tls(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("directory.tls", key, value)
    }

    /// `[directory.users]`: `username_attribute`, `account_status`, `strip_domains`, ...
    pub fn users(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("directory.users", key, value)
    }

    /// `[directory.users] filter`.
    pub fn filter(self, filter: &str) -> TestConfig {
        self.users("filter", filter)
    }

    /// `[directory.users] login_attributes`.
    pub fn login_attributes(self, attributes: &[&str]) -> TestConfig {
        self.users("login_attributes", attributes)
    }

    /// `[directory.users] dn_template`: bind the user's DN directly, no search.
    pub fn dn_template(self, template: &str) -> TestConfig {
        self.users("dn_template", template)
    }

    /// [`TestConfig::dn_template`] for the users under `ou=people`.
    pub fn people_dn_template(self) -> TestConfig {
        self.dn_template(&format!("uid={{login}},{PEOPLE_DN}"))
    }

    /// `[directory.groups]`: `strategy`, `base_dns`, ...
    pub fn groups(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("directory.groups", key, value)
    }

    /// Groups found by their `member` attribute under `ou=groups`.
    pub fn member_groups(self) -> TestConfig {
        self.groups("strategy", "member")
            .groups("base_dns", ["ou=groups,dc=example,dc=org"])
    }

    /// `[directory.cache]`: `ttl`, `max_entries`.
    pub fn cache(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("directory.cache", key, value)
    }

    /// `[claims]`: `groups_allow`, `groups_pattern`, ...
    pub fn claims(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("claims", key, value)
    }

    /// [`TestConfig::member_groups`] of both kinds, `groupOfNames` (`member`) and
    /// `groupOfUniqueNames` (`uniqueMember`), as the `openldap` preset finds them.
    pub fn openldap_groups(self) -> TestConfig {
        self.member_groups()
            .groups(
                "filter",
                "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
            )
            .groups("member_attributes", ["member", "uniqueMember"])
    }

    /// `[claims.extra] NAME = value`.
    pub fn claim(self, name: &str, value: impl Toml) -> TestConfig {
        self.set("claims.extra", name, value)
    }

    /// `[claims.flags] NAME = group`.
    pub fn flag(self, name: &str, group: &str) -> TestConfig {
        self.set("claims.flags", name, group)
    }

    /// `[access]`: `allow`, `deny`.
    pub fn access(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("access", key, value)
    }

    /// `[brute_force]`: `max_failures_per_login`, `window`, `ban`, ...
    pub fn brute_force(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("brute_force", key, value)
    }

    /// No brute-force protection, failures answered at once.
    pub fn no_brute_force(self) -> TestConfig {
        self.brute_force("max_failures_per_login", 0)
            .brute_force("max_failures_per_address", 0)
            .brute_force("min_failure_time", "0s")
    }

    /// `[state]` on the Redis at `url`: brute-force counts shared with every replica that
    /// names it, with short timeouts so that an outage shows at once.
    pub fn shared_state(self, url: &str) -> TestConfig {
        self.set("state", "backend", "redis")
            .set("state.redis", "url", url)
            .set("state.redis", "connect_timeout", "1s")
            .set("state.redis", "operation_timeout", "1s")
    }

    /// `[portal]`: `url`, `cookie_domain`, `allowed_redirect_hosts`, ...
    pub fn portal(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("portal", key, value)
    }

    /// `[log]`: `format`, ...
    pub fn log(self, key: &str, value: impl Toml) -> TestConfig {
        self.set("log", key, value)
    }

    /// The configuration file's text.
    pub fn toml(&self) -> String {
        let mut text = String::new();
        for (name, lines) in &self.tables {
            if lines.is_empty() {
                continue;
            }
            text.push_str(&format!("[{name}]\n"));
            for (key, value) in lines {
                text.push_str(&format!("{key} = {value}\n"));
            }
            text.push('\n');
        }
        text
    }

    /// Write the file into `dir` as `latchkey.toml`; its path.
    pub fn write(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join("latchkey.toml");
        std::fs::write(&path, self.toml()).expect("write the test config");
        path
    }

    /// Load it the way the service does: from a file, through validation.
    pub fn load(&self) -> Config {
        load_config(&self.toml())
    }

    /// The real app for it, in-process.
    pub async fn app(&self) -> impl TestApp {
        app(&self.load()).await
    }

    /// `latchkey serve` for it on a free port (two workers), logging at `rust_log`.
    pub fn serve(&self, dir: &Path, rust_log: &str) -> Served {
        self.serve_with(dir, rust_log, |config, _| config)
    }

    /// `n` replicas of [`TestConfig::serve`], each in a directory of its own under `dir`
    /// (`replica-0`, `replica-1`, ...), as behind a load balancer.
    pub fn serve_replicas(&self, dir: &Path, n: usize, rust_log: &str) -> Vec<Served> {
        (0..n)
            .map(|i| {
                let own = dir.join(format!("replica-{i}"));
                std::fs::create_dir_all(&own).expect("a directory per replica");
                self.serve(&own, rust_log)
            })
            .collect()
    }

    /// [`TestConfig::serve`] with the changes `on_port` makes once the port is known (for
    /// settings that name the service's own address, such as `portal.url`).
    pub fn serve_with(
        &self,
        dir: &Path,
        rust_log: &str,
        on_port: impl Fn(TestConfig, u16) -> TestConfig + 'static,
    ) -> Served {
        let config = self.clone();
        serve(
            dir,
            move |port| {
                let config = config
                    .clone()
                    .server("listen", format!("127.0.0.1:{port}"))
                    .server("workers", 2);
                on_port(config, port).toml()
            },
            rust_log,
        )
    }
}

/// Load the configuration file text `toml` the way the service does, for tests whose point is
/// an unusual file; others use [`TestConfig::load`].
pub fn load_config(toml: &str) -> Config {
    let dir = tempfile::tempdir().expect("a temp dir for the config");
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, toml).expect("write the test config");
    Config::load(Some(&path)).unwrap_or_else(|e| panic!("the test config is refused: {e}"))
}
