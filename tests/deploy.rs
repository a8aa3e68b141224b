//! The deployment files in `deploy/` that the tests cannot run are at least checked:
//! the reverse-proxy examples (Caddy's by Caddy itself, Traefik's for its structure; nginx's and
//! Caddy's are run for real in `tests/forward_auth.rs`), the Dockerfile for its structure and the files it
//! copies, the systemd unit by `systemd-analyze` and for its sandbox, and the Kubernetes
//! manifests for their structure, with the configuration they carry loaded by Latchkey itself.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use latchkey::config::{Config, Settings};

const IDENTITY: [&str; 4] = [
    "Remote-User",
    "Remote-Groups",
    "Remote-Email",
    "Remote-Name",
];

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// `caddy adapt --validate` on `file`: Ok, or Caddy's complaint.
fn caddy_validate(file: &Path) -> Result<(), String> {
    let home = tempfile::tempdir().expect("a HOME for caddy");
    let output = Command::new("caddy")
        .args(["adapt", "--adapter", "caddyfile", "--validate", "--config"])
        .arg(file)
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run caddy ({e}); run scripts/install-test-deps"));
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[test]
fn the_caddyfile_is_valid_and_copies_the_identity_headers() {
    let caddyfile = deploy("caddy/Caddyfile");
    caddy_validate(&caddyfile).unwrap_or_else(|e| panic!("deploy/caddy/Caddyfile: {e}"));
    let text = std::fs::read_to_string(&caddyfile).expect("read the Caddyfile");
    assert_eq!(text.matches("uri /auth/verify").count(), 2, "{text}");
    assert_eq!(
        text.matches(&format!("copy_headers {}", IDENTITY.join(" ")))
            .count(),
        2
    );
    // Both routes delete the client's copies before forward_auth copies Latchkey's.
    for name in IDENTITY {
        assert_eq!(
            text.matches(&format!("request_header -{name}\n")).count(),
            1,
            "{name}"
        );
    }
    assert_eq!(
        text.matches("route {\n\t\t\timport latchkey_strip_identity\n\t\t\tforward_auth ")
            .count(),
        2,
        "{text}"
    );

    // The check can fail: the same file with a forward_auth that has lost its uri.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("Caddyfile");
    std::fs::write(&broken, text.replacen("uri /auth/verify", "", 1)).expect("write");
    let err = caddy_validate(&broken).expect_err("a forward_auth without uri is invalid");
    assert!(err.contains("'uri' subdirective is required"), "{err}");
}

#[test]
fn the_traefik_configuration_forwards_to_verify_and_copies_the_identity() {
    let text = std::fs::read_to_string(deploy("traefik/dynamic.yml")).expect("read");
    let config: serde_json::Value = serde_norway::from_str(&text).expect("valid YAML");
    let middlewares = config["http"]["middlewares"]
        .as_object()
        .expect("middlewares");
    assert_eq!(middlewares.len(), 3);
    // The identity's names with '_' are deleted (an empty value deletes a header).
    assert_eq!(
        middlewares["latchkey-strip"]["headers"]["customRequestHeaders"],
        serde_json::json!({"Remote_User": "", "Remote_Groups": "", "Remote_Email": "", "Remote_Name": ""})
    );
    for (name, middleware) in middlewares {
        if name == "latchkey-strip" {
            continue;
        }
        let forward = &middleware["forwardAuth"];
        let address = forward["address"].as_str().expect("an address");
        assert!(
            address.starts_with("http://127.0.0.1:8080/auth/verify"),
            "{name}: {address}"
        );
        assert_eq!(forward["trustForwardHeader"], false, "{name}");
        assert_eq!(
            forward["authResponseHeaders"],
            serde_json::json!(IDENTITY),
            "{name}"
        );
    }
    let routers = config["http"]["routers"].as_object().expect("routers");
    for (name, router) in routers {
        let service = router["service"].as_str().expect("a service");
        assert!(
            config["http"]["services"][service].is_object(),
            "{name} -> {service}"
        );
        for m in router["middlewares"].as_array().into_iter().flatten() {
            let m = m.as_str().expect("a middleware name");
            assert!(
                middlewares.contains_key(m),
                "{name} uses unknown middleware {m}"
            );
        }
    }
    assert_eq!(
        routers["app"]["middlewares"],
        serde_json::json!(["latchkey-strip", "latchkey"])
    );
    assert_eq!(
        routers["app-admin"]["middlewares"],
        serde_json::json!(["latchkey-strip", "latchkey-admins"])
    );
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// deploy/docker
// ---------------------------------------------------------------------------------------------

/// A Dockerfile's instructions as (KEYWORD, arguments): continuation lines joined, comments
/// (and so parser directives) left out.
fn dockerfile_instructions(text: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(start) = line.strip_suffix('\\') {
            current.push_str(start.trim_end());
            current.push(' ');
            continue;
        }
        current.push_str(line);
        let (keyword, args) = current
            .split_once(char::is_whitespace)
            .unwrap_or((current.as_str(), ""));
        instructions.push((keyword.to_ascii_uppercase(), args.trim().to_owned()));
        current.clear();
    }
    assert!(
        current.is_empty(),
        "the Dockerfile ends inside a continuation: {current}"
    );
    instructions
}

/// The instructions of each stage: everything from one FROM to the next (the FROM included);
/// instructions before the first FROM (global ARGs) in `prelude`.
struct Stages {
    prelude: Vec<(String, String)>,
    stages: Vec<Vec<(String, String)>>,
}

fn dockerfile() -> Stages {
    let mut prelude = Vec::new();
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for (keyword, args) in dockerfile_instructions(&read(&deploy("docker/Dockerfile"))) {
        if keyword == "FROM" {
            stages.push(Vec::new());
        }
        match stages.last_mut() {
            Some(stage) => stage.push((keyword, args)),
            None => prelude.push((keyword, args)),
        }
    }
    Stages { prelude, stages }
}

/// The arguments of every `keyword` instruction in `stage`.
fn all<'a>(stage: &'a [(String, String)], keyword: &str) -> Vec<&'a str> {
    stage
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// The arguments of the one `keyword` instruction in `stage`.
fn one<'a>(stage: &'a [(String, String)], keyword: &str) -> &'a str {
    match all(stage, keyword).as_slice() {
        [one] => one,
        other => panic!("expected one {keyword} in the stage, found {other:?}"),
    }
}

/// An exec-form (JSON array) argument list.
fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args)
        .unwrap_or_else(|e| panic!("not exec form (a JSON array): {args}: {e}"))
}

/// `ENV A=1 B=2` as a map (values without spaces or quotes, as this Dockerfile writes them).
fn env_pairs(args: &str) -> BTreeMap<String, String> {
    args.split_whitespace()
        .map(|pair| {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {args}: {pair} is not KEY=VALUE"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The image's runtime user (USER's numeric UID; the GID must be numeric too) and ENV.
fn image_runtime() -> (u32, BTreeMap<String, String>) {
    let Stages { stages, .. } = dockerfile();
    let last = stages.last().expect("a final stage");
    let user = one(last, "USER");
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: not a numeric UID"));
    let _gid: u32 = gid
        .parse()
        .unwrap_or_else(|_| panic!("USER {user}: not a numeric GID"));
    let env = all(last, "ENV").into_iter().flat_map(env_pairs).collect();
    (uid, env)
}

#[test]
fn the_dockerfile_builds_locked_and_ships_only_the_binary_running_as_nonroot() {
    let Stages { prelude, stages } = dockerfile();
    let args: BTreeMap<&str, &str> = all(&prelude, "ARG")
        .into_iter()
        .map(|a| a.split_once('=').expect("ARG NAME=default"))
        .collect();
    // The builder's Debian (bookworm) is the runtime's (debian12): the binary needs its glibc.
    assert_eq!(
        args,
        BTreeMap::from([
            ("RUST_IMAGE", "rust:1-bookworm"),
            ("RUNTIME_IMAGE", "gcr.io/distroless/cc-debian12:nonroot"),
        ])
    );
    assert_eq!(stages.len(), 2, "a build stage and a runtime stage");
    let (builder, runtime) = (&stages[0], &stages[1]);
    assert_eq!(one(builder, "FROM"), "${RUST_IMAGE} AS builder");
    assert_eq!(one(runtime, "FROM"), "${RUNTIME_IMAGE}");

    let build = one(builder, "RUN");
    assert!(
        build.contains(" cargo build --locked --release --bin latchkey "),
        "{build}"
    );
    assert!(
        build.ends_with("install -D -m 0755 target/release/latchkey /out/latchkey"),
        "{build}"
    );

    // The runtime stage takes the binary from the builder, and nothing else.
    assert_eq!(
        all(runtime, "COPY"),
        ["--from=builder /out/latchkey /usr/local/bin/latchkey"]
    );
    assert!(
        all(runtime, "RUN").is_empty(),
        "no RUN in the runtime stage"
    );
    assert!(
        all(runtime, "ADD").is_empty(),
        "no ADD in the runtime stage"
    );

    let (uid, env) = image_runtime();
    assert_eq!(uid, 65532, "distroless's nonroot user, numerically");
    assert_eq!(one(runtime, "USER"), "65532:65532");
    assert_eq!(
        env,
        BTreeMap::from([
            (
                "LATCHKEY_CONFIG".to_owned(),
                "/etc/latchkey/latchkey.toml".to_owned()
            ),
            (
                "LATCHKEY__SERVER__LISTEN".to_owned(),
                "0.0.0.0:8080".to_owned()
            ),
        ])
    );
    assert_eq!(one(runtime, "EXPOSE"), "8080");
    assert_eq!(one(runtime, "STOPSIGNAL"), "SIGTERM");
    assert_eq!(
        exec_form(one(runtime, "ENTRYPOINT")),
        ["/usr/local/bin/latchkey"]
    );
    assert_eq!(exec_form(one(runtime, "CMD")), ["serve"]);

    let health = one(runtime, "HEALTHCHECK");
    let (options, command) = health
        .split_once(" CMD ")
        .unwrap_or_else(|| panic!("HEALTHCHECK without CMD: {health}"));
    assert_eq!(
        exec_form(command),
        ["/usr/local/bin/latchkey", "healthcheck"]
    );
    // Docker's timeout must leave `latchkey healthcheck` its own 2 s.
    assert_eq!(
        options,
        "--interval=30s --timeout=5s --start-period=10s --retries=3"
    );
}

/// Whether `.dockerignore` leaves `path` (relative to the repository root) out of the
/// context. Handles the forms the file uses: `**/name`, `*.ext`, and plain paths.
fn docker_ignored(ignore: &str, path: &str) -> bool {
    ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|pattern| {
            assert!(
                !pattern.starts_with('!'),
                "this check does not handle exceptions: {pattern}"
            );
            if let Some(name) = pattern.strip_prefix("**/") {
                match name.strip_prefix('*') {
                    Some(ext) => path.ends_with(ext),
                    None => path.split('/').any(|part| part == name),
                }
            } else if let Some(ext) = pattern.strip_prefix('*') {
                !path.contains('/') && path.ends_with(ext)
            } else {
                path == pattern || path.starts_with(&format!("{pattern}/"))
            }
        })
}

#[test]
fn every_file_the_image_build_copies_is_in_the_repository_and_in_the_context() {
    let Stages { stages, .. } = dockerfile();
    let ignore = read(&repo(".dockerignore"));
    let mut sources = BTreeSet::new();
    for stage in &stages {
        for copy in all(stage, "COPY") {
            if copy.starts_with("--from=") {
                continue;
            }
            let words: Vec<&str> = copy.split_whitespace().collect();
            let (_destination, copied) = words.split_last().expect("COPY SRC… DEST");
            assert!(!copied.is_empty(), "COPY {copy}");
            for source in copied {
                assert!(!source.starts_with("--"), "COPY {copy}: unexpected option");
                assert!(
                    repo(source).exists(),
                    "COPY {copy}: {source} is not in the repository"
                );
                assert!(
                    !docker_ignored(&ignore, source),
                    "COPY {copy}: {source} is left out by .dockerignore"
                );
                sources.insert(*source);
            }
        }
    }
    assert_eq!(
        sources,
        BTreeSet::from(["Cargo.toml", "Cargo.lock", "src", "verify", "benches"])
    );

    // Cargo reads every workspace member and every declared target's file at build time.
    let manifest = config::Config::builder()
        .add_source(config::File::from(repo("Cargo.toml")).format(config::FileFormat::Toml))
        .build()
        .expect("Cargo.toml parses");
    let members: Vec<String> = manifest
        .get("workspace.members")
        .expect("workspace.members");
    assert_eq!(members, [".", "verify"]);
    let benches: Vec<BTreeMap<String, config::Value>> = manifest.get("bench").expect("[[bench]]");
    assert_eq!(benches.len(), 1);
    for bench in benches {
        let name = bench["name"].to_string();
        let file = format!("benches/{name}.rs");
        assert!(repo(&file).is_file(), "{file}");
        assert!(!docker_ignored(&ignore, &file), "{file} is ignored");
    }

    // And what must stay out of the context does.
    for out in [
        "target",
        "target/release/latchkey",
        "verify/target",
        ".git",
        ".latchkey-dev",
        "server.key",
    ] {
        assert!(
            docker_ignored(&ignore, out),
            "{out} is not in .dockerignore"
        );
    }
    assert!(!docker_ignored(&ignore, "src/main.rs"));
}

// ---------------------------------------------------------------------------------------------
// deploy/systemd
// ---------------------------------------------------------------------------------------------

const UNIT_EXEC_START: &str = "/usr/local/bin/latchkey --config /etc/latchkey/latchkey.toml serve";

/// A unit file's settings as (section, key, value), in order.
fn unit_settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        assert!(
            !line.ends_with('\\'),
            "no continuation lines expected: {line}"
        );
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not KEY=VALUE: {line}"));
        settings.push((
            section.clone(),
            key.trim().to_owned(),
            value.trim().to_owned(),
        ));
    }
    settings
}

fn unit() -> Vec<(String, String, String)> {
    unit_settings(&read(&deploy("systemd/latchkey.service")))
}

/// The values of `key` in [Service], in order.
fn service_values(unit: &[(String, String, String)], key: &str) -> Vec<String> {
    unit.iter()
        .filter(|(s, k, _)| s == "Service" && k == key)
        .map(|(_, _, v)| v.clone())
        .collect()
}

/// The variable that lets a machine without `systemd-analyze` skip the checks that need it.
const SKIP_SYSTEMD: &str = "LATCHKEY_SKIP_SYSTEMD";

/// Whether the systemd checks were explicitly turned off (`LATCHKEY_SKIP_SYSTEMD=1`).
fn systemd_skipped() -> bool {
    std::env::var(SKIP_SYSTEMD).is_ok_and(|v| v == "1")
}

/// `systemd-analyze ARGS…`. When it is not installed the test fails, unless
/// `LATCHKEY_SKIP_SYSTEMD=1` is set: then None, and the skip is printed.
fn systemd_analyze(args: &[&str], unit: &Path) -> Option<std::process::Output> {
    match Command::new("systemd-analyze")
        .args(args)
        .arg(unit)
        .output()
    {
        Ok(output) => Some(output),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && systemd_skipped() => {
            eprintln!("SKIPPED ({SKIP_SYSTEMD}=1): systemd-analyze is not installed");
            None
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed, so the systemd unit cannot be checked; \
             scripts/install-test-deps installs Debian's systemd package, which has it \
             (or set {SKIP_SYSTEMD}=1 to skip these checks)"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// The unit as `latchkey.service` in a temporary directory, with ExecStart pointing at the
/// latchkey binary this test run built (systemd-analyze verify insists that it exists), and
/// `edit` applied.
fn unit_copy(edit: impl Fn(String) -> String) -> (tempfile::TempDir, PathBuf) {
    let text = read(&deploy("systemd/latchkey.service"));
    let exec_start = format!("ExecStart={UNIT_EXEC_START}\n");
    assert_eq!(text.matches(&exec_start).count(), 1, "{text}");
    let text = text.replace(
        &exec_start,
        &format!(
            "ExecStart={} --config /etc/latchkey/latchkey.toml serve\n",
            env!("CARGO_BIN_EXE_latchkey")
        ),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("latchkey.service");
    std::fs::write(&path, edit(text)).expect("write the unit");
    (dir, path)
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let (_dir, path) = unit_copy(|text| text);
    let Some(output) = systemd_analyze(&["verify"], &path) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stderr, "", "systemd-analyze verify complained");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "");

    // The check can fail: a misspelt sandbox setting is reported (systemd ignores it).
    let (_dir, broken) = unit_copy(|text| text.replace("ProtectClock=yes", "ProtectClok=yes"));
    let output = systemd_analyze(&["verify"], &broken).expect("it ran a moment ago");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("'ProtectClok'"), "{stderr}");
}

#[test]
fn the_systemd_unit_is_sandboxed_with_an_exposure_of_at_most_1_2() {
    let unit = unit();
    let expected = [
        ("Type", "exec"),
        ("ExecStart", UNIT_EXEC_START),
        ("Restart", "on-failure"),
        ("KillSignal", "SIGTERM"),
        ("DynamicUser", "yes"),
        ("UMask", "0077"),
        ("NoNewPrivileges", "yes"),
        ("CapabilityBoundingSet", ""),
        ("AmbientCapabilities", ""),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("PrivateUsers", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("ProtectClock", "yes"),
        ("ProtectHostname", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("RestrictRealtime", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
    ];
    for (key, value) in expected {
        // Exactly once: a second line would override (or, for some keys, add to) the first.
        assert_eq!(service_values(&unit, key), [value], "[Service] {key}");
    }
    assert_eq!(
        service_values(&unit, "SystemCallFilter"),
        ["@system-service", "~@privileged @resources"]
    );
    // A failing directory must not keep the service from starting: no `check` before it.
    assert_eq!(service_values(&unit, "ExecStartPre"), Vec::<String>::new());
    // Longer than server.shutdown_timeout's default (30 s), so a graceful stop can finish.
    let stop = service_values(&unit, "TimeoutStopSec");
    assert_eq!(stop, ["40s"]);
    assert!(
        humantime::parse_duration(&stop[0])
            .expect("a duration")
            .as_secs()
            > 30
    );
    assert!(unit
        .iter()
        .any(|(s, k, v)| s == "Install" && k == "WantedBy" && v == "multi-user.target"));

    let (_dir, path) = unit_copy(|text| text);
    let Some(output) = systemd_analyze(&["security", "--offline=yes", "--no-pager"], &path) else {
        return;
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("--offline") {
        assert!(
            systemd_skipped(),
            "this systemd-analyze cannot judge a unit file offline (systemd 250 or later can; \
             or set {SKIP_SYSTEMD}=1 to skip these checks): {stderr}"
        );
        eprintln!("SKIPPED ({SKIP_SYSTEMD}=1): this systemd-analyze cannot judge a unit file offline: {stderr}");
        return;
    }
    let marker = "Overall exposure level for latchkey.service: ";
    let score: f64 = stdout
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}\n{stderr}"))
        .parse()
        .expect("a number");
    eprintln!("systemd-analyze security: exposure {score}");
    assert!(score <= 1.2, "exposure {score}:\n{stdout}");
}

#[test]
fn the_units_credentials_reach_the_configuration_through_the_environment() {
    let unit = unit();
    let credentials: BTreeMap<String, String> = service_values(&unit, "LoadCredential")
        .iter()
        .map(|c| {
            let (id, path) = c.split_once(':').expect("LoadCredential=ID:PATH");
            (id.to_owned(), path.to_owned())
        })
        .collect();
    assert_eq!(
        credentials,
        BTreeMap::from([
            ("token-key".to_owned(), "/etc/latchkey/token-key".to_owned()),
            (
                "bind-password".to_owned(),
                "/etc/latchkey/bind-password".to_owned()
            ),
        ])
    );
    let environment: BTreeMap<String, String> = service_values(&unit, "Environment")
        .iter()
        .map(|e| {
            let (k, v) = e.split_once('=').expect("Environment=NAME=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(
        environment,
        BTreeMap::from([
            (
                "LATCHKEY__TOKENS__KEYS__MAIN__SECRET_FILE".to_owned(),
                "%d/token-key".to_owned()
            ),
            (
                "LATCHKEY__DIRECTORY__BIND_PASSWORD_FILE".to_owned(),
                "%d/bind-password".to_owned()
            ),
        ])
    );

    // What systemd would give the service: the credentials in a directory, %d expanded to it.
    let credentials_dir = tempfile::tempdir().expect("temp dir");
    let d = credentials_dir.path();
    std::fs::write(
        d.join("token-key"),
        "a-systemd-test-secret-that-is-long-enough-to-sign\n",
    )
    .expect("write");
    std::fs::write(d.join("bind-password"), "service-password").expect("write");
    let env: Vec<(String, String)> = environment
        .iter()
        .map(|(k, v)| (k.clone(), v.replace("%d", &d.display().to_string())))
        .collect();

    // A configuration whose own secret paths lead nowhere: only the overrides can fix it.
    let dir = tempfile::tempdir().expect("temp dir");
    let nowhere = dir.path().join("absent");
    let config = dir.path().join("latchkey.toml");
    std::fs::write(
        &config,
        format!(
            "[tokens.keys.main]\nsecret_file = \"{nowhere}/token-key\"\n\
             [directory]\nurls = [\"ldap://127.0.0.1:1\"]\nconnect_timeout = \"1s\"\n\
             bind_dn = \"cn=latchkey,dc=example,dc=org\"\n\
             bind_password_file = \"{nowhere}/bind-password\"\n\
             [directory.users]\nbase_dn = \"ou=people,dc=example,dc=org\"\n",
            nowhere = nowhere.display()
        ),
    )
    .expect("write config");
    let check = |env: &[(String, String)]| {
        Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .arg("--config")
            .arg(&config)
            .arg("check")
            .output()
            .expect("run latchkey check")
    };

    let without = check(&[]);
    let stderr = String::from_utf8_lossy(&without.stderr);
    assert!(!without.status.success());
    assert!(
        stderr.contains("tokens.keys.main.secret_file: cannot read"),
        "{stderr}"
    );
    assert!(
        stderr.contains("directory.bind_password_file: "),
        "{stderr}"
    );

    // With the unit's environment the configuration is complete; `check` then fails only at
    // the directory (nothing listens on port 1).
    let with = check(&env);
    let stdout = String::from_utf8_lossy(&with.stdout);
    let stderr = String::from_utf8_lossy(&with.stderr);
    assert!(
        stdout.starts_with("configuration: ok\n"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("signing key \"main\" (1 key(s) verify)"),
        "{stdout}"
    );
    assert!(!with.status.success());
    assert!(
        stderr.contains("ldap://127.0.0.1:1: check failed"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// deploy/kubernetes
// ---------------------------------------------------------------------------------------------

const K8S_NAME: (&str, &str) = ("app.kubernetes.io/name", "latchkey");

/// Every YAML document of `deploy/kubernetes/FILE`.
fn k8s_file(file: &str) -> Vec<serde_json::Value> {
    let text = read(&deploy(&format!("kubernetes/{file}")));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("deploy/kubernetes/{file}: {e}"))
        })
        .collect()
}

/// The manifests the kustomization applies: Latchkey's by kind (one of each), Redis's
/// (`app.kubernetes.io/name: latchkey-redis`) as `redis/KIND`.
fn k8s_manifests() -> BTreeMap<String, serde_json::Value> {
    let kustomization = k8s_file("kustomization.yaml");
    let resources = kustomization[0]["resources"].as_array().expect("resources");
    let mut by_kind = BTreeMap::new();
    for file in resources {
        let file = file.as_str().expect("a file name");
        for doc in k8s_file(file) {
            let mut kind = doc["kind"].as_str().expect("a kind").to_owned();
            if doc["metadata"]["labels"][K8S_NAME.0] == "latchkey-redis" {
                kind = format!("redis/{kind}");
            }
            assert!(
                by_kind.insert(kind.clone(), doc).is_none(),
                "two {kind} manifests"
            );
        }
    }
    by_kind
}

fn k8s_container(deployment: &serde_json::Value) -> &serde_json::Value {
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1);
    &containers[0]
}

#[test]
fn the_kustomization_applies_every_manifest_once_and_each_parses() {
    let kustomization = k8s_file("kustomization.yaml");
    assert_eq!(kustomization.len(), 1);
    let kustomization = &kustomization[0];
    assert_eq!(kustomization["namespace"], "latchkey");
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("a file name"))
        .collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(deploy("kubernetes"))
        .expect("read deploy/kubernetes")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed,
        on_disk.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "every file in deploy/kubernetes is listed"
    );

    let manifests = k8s_manifests();
    let versions: BTreeMap<&str, &str> = manifests
        .iter()
        .map(|(kind, doc)| {
            (
                kind.as_str(),
                doc["apiVersion"].as_str().expect("apiVersion"),
            )
        })
        .collect();
    assert_eq!(
        versions,
        BTreeMap::from([
            ("ConfigMap", "v1"),
            ("Deployment", "apps/v1"),
            ("HorizontalPodAutoscaler", "autoscaling/v2"),
            ("Namespace", "v1"),
            ("PodDisruptionBudget", "policy/v1"),
            ("Secret", "v1"),
            ("Service", "v1"),
            ("redis/Deployment", "apps/v1"),
            ("redis/NetworkPolicy", "networking.k8s.io/v1"),
            ("redis/Secret", "v1"),
            ("redis/Service", "v1"),
        ])
    );
    for (kind, doc) in &manifests {
        let labels = &doc["metadata"]["labels"];
        if kind.starts_with("redis/") {
            // Named apart, so that none of Latchkey's selectors takes Redis's pods for its own.
            assert_eq!(labels["app.kubernetes.io/part-of"], "latchkey", "{kind}");
        } else {
            assert_eq!(labels[K8S_NAME.0], K8S_NAME.1, "{kind}'s labels");
        }
        // The kustomization sets the namespace; a manifest naming another would fight it.
        assert!(doc["metadata"]["namespace"].is_null(), "{kind}");
    }
    assert_eq!(manifests["Namespace"]["metadata"]["name"], "latchkey");
    assert_eq!(
        manifests["Namespace"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );

    // The image the kustomization rewrites is the one the Deployment runs.
    let images = kustomization["images"].as_array().expect("images");
    assert_eq!(images.len(), 1);
    assert_eq!(
        images[0]["name"],
        k8s_container(&manifests["Deployment"])["image"]
    );
}

#[test]
fn the_service_pdb_and_autoscaler_find_the_deployments_pods() {
    let m = k8s_manifests();
    let deployment = &m["Deployment"];
    let labels = serde_json::json!({ K8S_NAME.0: K8S_NAME.1 });
    assert_eq!(deployment["metadata"]["name"], "latchkey");
    assert_eq!(deployment["spec"]["selector"]["matchLabels"], labels);
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    for (k, v) in labels.as_object().expect("labels") {
        assert_eq!(&pod_labels[k], v, "the pods carry the selector's {k}");
    }
    let replicas = deployment["spec"]["replicas"].as_u64().expect("replicas");
    assert_eq!(replicas, 3);

    let container = k8s_container(deployment);
    assert_eq!(
        container["ports"],
        serde_json::json!([{ "name": "http", "containerPort": 8080, "protocol": "TCP" }])
    );

    let service = &m["Service"];
    assert_eq!(service["spec"]["type"], "ClusterIP");
    assert_eq!(service["spec"]["selector"], labels);
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{ "name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP" }])
    );

    let pdb = &m["PodDisruptionBudget"];
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    assert!(pdb["spec"]["maxUnavailable"].is_null());

    let hpa = &m["HorizontalPodAutoscaler"];
    assert_eq!(
        hpa["spec"]["scaleTargetRef"],
        serde_json::json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": "latchkey" })
    );
    // Never fewer than the Deployment starts with, nor fewer than the PDB needs plus one.
    assert_eq!(hpa["spec"]["minReplicas"], replicas);
    assert_eq!(hpa["spec"]["maxReplicas"], 6);
    assert_eq!(
        hpa["spec"]["metrics"],
        serde_json::json!([{
            "type": "Resource",
            "resource": { "name": "cpu", "target": { "type": "Utilization", "averageUtilization": 70 } }
        }])
    );
    // Utilisation is measured against the request, which must therefore be set.
    assert_eq!(container["resources"]["requests"]["cpu"], "100m");
}

#[test]
fn the_pods_run_unprivileged_probed_on_the_http_port_and_stop_gracefully() {
    let m = k8s_manifests();
    let pod = &m["Deployment"]["spec"]["template"]["spec"];
    let container = k8s_container(&m["Deployment"]);
    let (image_uid, image_env) = image_runtime();

    assert_eq!(
        pod["securityContext"],
        serde_json::json!({
            "runAsNonRoot": true,
            "runAsUser": image_uid,
            "runAsGroup": image_uid,
            "fsGroup": image_uid,
            "seccompProfile": { "type": "RuntimeDefault" }
        })
    );
    assert_eq!(
        container["securityContext"],
        serde_json::json!({
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] }
        })
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["enableServiceLinks"], false);

    let probe = |name: &str| {
        let p = &container[name]["httpGet"];
        (
            p["path"].as_str().expect("a path"),
            p["port"].as_str().expect("a named port"),
        )
    };
    assert_eq!(probe("readinessProbe"), ("/readyz", "http"));
    assert_eq!(probe("livenessProbe"), ("/healthz", "http"));
    assert_eq!(probe("startupProbe"), ("/healthz", "http"));
    // Longer than directory.connect_timeout's default (5 s), which /readyz may wait for.
    assert_eq!(container["readinessProbe"]["timeoutSeconds"], 6);

    // preStop pause + server.shutdown_timeout's default (30 s) fit in the grace period.
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .expect("a preStop sleep");
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("a grace period");
    assert_eq!((pause, grace), (5, 45));
    assert!(pause + 30 < grace);

    assert_eq!(
        container["resources"],
        serde_json::json!({
            "requests": { "cpu": "100m", "memory": "32Mi" },
            "limits": { "cpu": "1", "memory": "128Mi" }
        })
    );

    // The configuration is mounted where the image looks for it; the secrets beside it.
    let config_path = &image_env["LATCHKEY_CONFIG"];
    assert_eq!(
        container["env"],
        serde_json::json!([{ "name": "LATCHKEY_CONFIG", "value": config_path }])
    );
    assert_eq!(container["args"], serde_json::json!(["serve"]));
    assert_eq!(
        container["volumeMounts"],
        serde_json::json!([
            { "name": "config", "mountPath": config_path, "subPath": "latchkey.toml", "readOnly": true },
            { "name": "secrets", "mountPath": "/etc/latchkey/secrets", "readOnly": true }
        ])
    );
    assert_eq!(
        pod["volumes"],
        serde_json::json!([
            { "name": "config", "configMap": { "name": m["ConfigMap"]["metadata"]["name"] } },
            { "name": "secrets", "secret": {
                "secretName": m["Secret"]["metadata"]["name"],
                "defaultMode": 0o440
            } }
        ])
    );
}

#[test]
fn the_configmaps_configuration_validates_with_the_secrets_files() {
    let m = k8s_manifests();
    let toml = m["ConfigMap"]["data"]["latchkey.toml"]
        .as_str()
        .expect("data.latchkey.toml");
    let secret = m["Secret"]["stringData"].as_object().expect("stringData");
    let mount = "/etc/latchkey/secrets/";
    assert_eq!(
        secret["redis-url"], "redis://:REPLACE-ME@latchkey-redis:6379/0",
        "the Redis URL names the Service of redis.yaml"
    );

    // The Secret's volume, as the pod sees it, in a temporary directory.
    let dir = tempfile::tempdir().expect("temp dir");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("mkdir");
    for (name, value) in secret {
        assert!(
            value.as_str().is_some_and(|v| v.contains("REPLACE-ME")),
            "{name}: a placeholder, clearly marked"
        );
        std::fs::write(secrets.join(name), value.as_str().expect("a string")).expect("write");
    }
    let local = toml.replace(mount, &format!("{}/", secrets.display()));
    assert_eq!(toml.matches(mount).count(), 3, "{toml}");
    let path = dir.path().join("latchkey.toml");
    std::fs::write(&path, &local).expect("write config");

    // The files the configuration reads are exactly the Secret's keys.
    let settings = Settings::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    let read: BTreeSet<String> = settings
        .tokens
        .keys
        .values()
        .filter_map(|k| k.secret_file.clone())
        .chain(settings.directory.bind_password_file.clone())
        .chain(
            settings
                .state
                .redis
                .as_ref()
                .and_then(|r| r.url_file.clone()),
        )
        .map(|p| {
            p.strip_prefix(&secrets)
                .unwrap_or_else(|_| panic!("{} is not in the secrets mount", p.display()))
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        read,
        secret.keys().cloned().collect::<BTreeSet<_>>(),
        "the ConfigMap reads the Secret's files"
    );

    // Applied as it stands, the placeholder key is refused: Latchkey does not start.
    let err = settings
        .validate("configmap")
        .expect_err("the placeholder is too short to be a key");
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(
        err.problems()[0].starts_with("tokens.keys.main.secret_file: the secret is 10 bytes long"),
        "{err}"
    );

    // With a real key it is a complete configuration.
    std::fs::write(
        secrets.join("token-key"),
        "a-kubernetes-test-secret-that-is-long-enough\n",
    )
    .expect("write key");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
    assert_eq!(config.server.workers, 0);
    assert_eq!(config.tokens.signing_key.id(), "main");
    assert_eq!(config.tokens.keys.len(), 1);
    assert_eq!(
        config.directory.urls,
        ["ldaps://ldap1.example.org", "ldaps://ldap2.example.org"]
    );
    let latchkey::config::StateConfig::Redis(redis) = &config.state else {
        panic!("the replicas do not share their counts: {:?}", config.state);
    };
    assert_eq!(
        redis.display_url(),
        "redis://latchkey-redis:6379/0 (credentials hidden)"
    );
}

#[test]
fn the_shared_redis_is_reached_by_latchkey_only_with_the_password_of_its_url() {
    let m = k8s_manifests();
    let redis = &m["redis/Deployment"];
    let pod_labels = &redis["spec"]["template"]["metadata"]["labels"];
    assert_eq!(redis["spec"]["replicas"], 1);
    // Its Service and policy find its pods, and no selector of Latchkey's does.
    for selector in [
        &redis["spec"]["selector"]["matchLabels"],
        &m["redis/Service"]["spec"]["selector"],
        &m["redis/NetworkPolicy"]["spec"]["podSelector"]["matchLabels"],
    ] {
        for (k, v) in selector.as_object().expect("labels") {
            assert_eq!(&pod_labels[k], v, "{selector}");
        }
    }
    assert_ne!(pod_labels[K8S_NAME.0], K8S_NAME.1);
    assert_eq!(
        m["redis/Service"]["metadata"]["name"], "latchkey-redis",
        "the name in the URL"
    );
    assert_eq!(
        m["redis/Service"]["spec"]["ports"],
        serde_json::json!([{ "name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP" }])
    );
    // Only Latchkey's pods may connect.
    assert_eq!(
        m["redis/NetworkPolicy"]["spec"]["ingress"],
        serde_json::json!([{
            "from": [{ "podSelector": { "matchLabels": { K8S_NAME.0: K8S_NAME.1 } } }],
            "ports": [{ "port": "redis", "protocol": "TCP" }]
        }])
    );
    // The restricted profile of the namespace holds for Redis too.
    let pod = &redis["spec"]["template"]["spec"];
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        container["securityContext"],
        serde_json::json!({
            "runAsNonRoot": true,
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": { "drop": ["ALL"] }
        })
    );
    // It reads the password from its Secret's file, the one the URL's password must match.
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("a string"))
        .collect();
    assert_eq!(args[0], "/etc/redis/redis.conf");
    assert_eq!(
        container["volumeMounts"][0],
        serde_json::json!({ "name": "config", "mountPath": "/etc/redis", "readOnly": true })
    );
    assert_eq!(
        pod["volumes"][0]["secret"]["secretName"],
        m["redis/Secret"]["metadata"]["name"]
    );
    let conf = m["redis/Secret"]["stringData"]["redis.conf"]
        .as_str()
        .expect("redis.conf");
    let password = conf
        .lines()
        .find_map(|l| l.strip_prefix("requirepass "))
        .expect("a requirepass line");
    let url = m["Secret"]["stringData"]["redis-url"]
        .as_str()
        .expect("redis-url");
    assert_eq!(
        url.split_once("://:")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map(|(p, _)| p),
        Some(password),
        "the URL's password is Redis's"
    );
    // Every key Latchkey writes expires, so dropping the nearest to expiry is the right
    // policy under the memory cap.
    let policy = args
        .windows(2)
        .find(|w| w[0] == "--maxmemory-policy")
        .map(|w| w[1]);
    assert_eq!(policy, Some("volatile-ttl"));
}

// ---------------------------------------------------------------------------------------------
// deploy/compose
// ---------------------------------------------------------------------------------------------

fn compose() -> serde_json::Value {
    serde_norway::from_str(&read(&deploy("compose/compose.yaml")))
        .unwrap_or_else(|e| panic!("deploy/compose/compose.yaml: {e}"))
}

#[test]
fn the_compose_example_runs_three_identical_replicas_with_redis_behind_nginx() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from(["latchkey-1", "latchkey-2", "latchkey-3", "nginx", "redis"])
    );
    let replica = &services["latchkey-1"];
    for name in ["latchkey-2", "latchkey-3"] {
        assert_eq!(&services[name], replica, "{name} is latchkey-1's twin");
    }
    assert_eq!(
        replica["image"], "latchkey",
        "the image deploy/README.md builds"
    );
    assert_eq!(replica["read_only"], true);
    assert_eq!(replica["cap_drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        replica["configs"][0]["target"],
        "/etc/latchkey/latchkey.toml"
    );

    // Every config and secret a service names is defined, and every config file is here.
    for (name, service) in services {
        for (kind, key) in [("configs", "source"), ("secrets", "")] {
            for item in service[kind].as_array().into_iter().flatten() {
                let source = if key.is_empty() { item } else { &item[key] };
                let source = source.as_str().expect("a name");
                assert!(
                    c[kind][source]["file"].is_string(),
                    "{name} names {kind} {source}, which is not defined"
                );
            }
        }
    }
    for config in c["configs"].as_object().expect("configs").values() {
        let file = config["file"].as_str().expect("a file");
        assert!(deploy("compose").join(file).is_file(), "{file} is missing");
    }
    // The secrets are the operator's: under ./secrets/, which git ignores.
    for secret in c["secrets"].as_object().expect("secrets").values() {
        let file = secret["file"].as_str().expect("a file");
        assert!(file.starts_with("./secrets/"), "{file}");
    }
    assert_eq!(read(&deploy("compose/.gitignore")).trim(), "secrets/");

    // Redis only on the internal network; only nginx publishes a port, on loopback.
    assert_eq!(c["networks"]["state"]["internal"], true);
    assert_eq!(services["redis"]["networks"], serde_json::json!(["state"]));
    assert_eq!(
        services["redis"]["secrets"],
        serde_json::json!(["redis.conf"])
    );
    assert_eq!(services["redis"]["command"][0], "/run/secrets/redis.conf");
    assert_eq!(services["nginx"]["networks"], serde_json::json!(["front"]));
    assert_eq!(replica["networks"], serde_json::json!(["front", "state"]));
    for (name, service) in services {
        if name != "nginx" {
            assert!(service["ports"].is_null(), "{name} publishes a port");
        }
    }
    assert_eq!(
        services["nginx"]["ports"],
        serde_json::json!(["127.0.0.1:8080:80"])
    );

    // nginx balances over exactly the three replicas, on the port they listen on.
    let nginx = read(&deploy("compose/nginx.conf"));
    let upstream: Vec<&str> = nginx
        .lines()
        .filter_map(|l| l.trim().strip_prefix("server "))
        .filter(|entry| entry.ends_with(';'))
        .collect();
    assert_eq!(
        upstream,
        ["latchkey-1:8080;", "latchkey-2:8080;", "latchkey-3:8080;"]
    );
}

#[test]
fn the_compose_examples_configuration_shares_its_counts_on_the_redis_it_runs() {
    let c = compose();
    let dir = tempfile::tempdir().expect("temp dir");
    // The secrets as compose mounts them, in a temporary directory.
    let mount = "/run/secrets/";
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("mkdir");
    std::fs::write(
        secrets.join("token-key"),
        "a-compose-test-secret-that-is-long-enough\n",
    )
    .expect("write");
    std::fs::write(secrets.join("bind-password"), "pw").expect("write");
    std::fs::write(secrets.join("redis-url"), "redis://:pw@redis:6379/0\n").expect("write");
    let toml = read(&deploy("compose/latchkey.toml"));
    let path = dir.path().join("latchkey.toml");
    std::fs::write(
        &path,
        toml.replace(mount, &format!("{}/", secrets.display())),
    )
    .expect("write config");
    let config = Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:8080");
    let latchkey::config::StateConfig::Redis(redis) = &config.state else {
        panic!("the replicas do not share their counts");
    };
    // The host is compose's Redis service.
    assert_eq!(
        redis.display_url(),
        "redis://redis:6379/0 (credentials hidden)"
    );
    assert!(c["services"]["redis"].is_object());
    // The secrets the replicas get are exactly the files the configuration reads.
    let read_files: BTreeSet<String> = toml
        .lines()
        .filter_map(|l| {
            l.split_once(mount)
                .map(|(_, f)| f.trim_end_matches('"').to_owned())
        })
        .collect();
    let mounted: BTreeSet<String> = c["services"]["latchkey-1"]["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| s.as_str().expect("a name").to_owned())
        .collect();
    assert_eq!(read_files, mounted);
    // nginx's network is the one the replicas trust to say who the client is.
    let subnet = c["networks"]["front"]["ipam"]["config"][0]["subnet"]
        .as_str()
        .expect("a subnet");
    assert!(
        toml.contains(&format!("trusted_proxies = [\"{subnet}\"]")),
        "{toml}"
    );
}
