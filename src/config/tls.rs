//! `[directory.tls]`: how connections to the directory are encrypted and whom they trust.
//!
//! A server is reached over TLS when its URL is `ldaps://`, or when it is `ldap://` and
//! `starttls = true` (then every connection is upgraded with StartTLS before anything else is
//! sent, and a server that refuses is a failed connection, never a plaintext one). The rustls
//! client configuration is built here, once, when the configuration is validated: every file
//! is read and checked at start, and every connection of every pool shares the result.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;

use crate::ldap_syntax::{Scheme, ServerUrl};

/// `[directory.tls]`, as written. Every key is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// Upgrade every `ldap://` connection with StartTLS before anything else.
    pub starttls: bool,
    /// PEM bundle of the CAs to trust; unset: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM certificate (chain) presented to servers that ask for one.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of the client certificate (PKCS#8, PKCS#1 or SEC1).
    pub client_key_file: Option<PathBuf>,
    /// The name sent in SNI and verified in the server's certificate; unset: the URL's host.
    pub server_name: Option<String>,
    /// Accept any server certificate (the connection is still encrypted).
    pub insecure_skip_verify: bool,
    /// The oldest TLS version accepted: "1.2" (the default) or "1.3".
    pub min_version: Option<String>,
}

/// The oldest TLS version a connection may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// `"1.2"` or `"1.3"`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// How one server's connections are protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// `ldap://` without StartTLS: nothing is encrypted.
    Plaintext,
    /// `ldaps://`: TLS from the first byte.
    Ldaps,
    /// `ldap://` upgraded with the StartTLS extended operation.
    StartTls,
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The PEM bundle of `directory.tls.ca_file`.
    CaFile(PathBuf),
    /// The operating system's store, as `rustls-native-certs` finds it (on Linux the
    /// distribution's bundle such as `/etc/ssl/certs/ca-certificates.crt`, or the files named by
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`).
    System,
    /// Nothing is verified: `insecure_skip_verify = true`.
    Nothing,
}

/// Validated `[directory.tls]`.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub starttls: bool,
    pub server_name: Option<String>,
    pub min_version: TlsVersion,
    pub trust: Trust,
    pub client_cert_file: Option<PathBuf>,
    /// Built once at start and shared by every connection; None when no server uses TLS.
    pub client: Option<Arc<ClientConfig>>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            starttls: false,
            server_name: None,
            min_version: TlsVersion::Tls12,
            trust: Trust::System,
            client_cert_file: None,
            client: None,
        }
    }
}

impl TlsConfig {
    /// How connections to `url` are protected.
    pub fn encryption(&self, url: &ServerUrl) -> Encryption {
        if is_ldaps(url) {
            Encryption::Ldaps
        } else if self.starttls {
            Encryption::StartTls
        } else {
            Encryption::Plaintext
        }
    }
}

fn is_ldaps(url: &ServerUrl) -> bool {
    url.scheme() == Scheme::Ldaps
}

/// What the warning about `insecure_skip_verify` says, at start and in `latchkey check`.
pub const INSECURE_WARNING: &str = "directory.tls.insecure_skip_verify = true: the directory's \
     certificate is not verified, so anyone on the network path can pose as the directory and \
     read the passwords sent to it; trust its CA with directory.tls.ca_file instead";

/// Check `[directory.tls]` against the server URLs and build the rustls configuration.
/// Problems stop the start; warnings are logged by `serve` and printed by `check`.
pub(super) fn validate_tls(
    s: TlsSettings,
    urls: &[ServerUrl],
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> TlsConfig {
    let before = problems.len();
    let min_version = match s.min_version.as_deref().map(str::trim) {
        None | Some("1.2") => TlsVersion::Tls12,
        Some("1.3") => TlsVersion::Tls13,
        Some(other) => {
            problems.push(format!(
                "directory.tls.min_version = {other:?} is not \"1.2\" or \"1.3\"; older TLS versions are not supported"
            ));
            TlsVersion::Tls12
        }
    };
    if let Some(name) = &s.server_name {
        check_server_name(name, problems);
    }
    let ldaps: Vec<&ServerUrl> = urls.iter().filter(|u| is_ldaps(u)).collect();
    if s.starttls {
        for url in &ldaps {
            problems.push(format!(
                "directory.tls.starttls = true, but {url:?} is ldaps://, which already encrypts; use ldap:// URLs with starttls, or leave starttls out"
            ));
        }
    }
    match (&s.client_cert_file, &s.client_key_file) {
        (Some(_), None) => problems.push(
            "directory.tls.client_cert_file is set but client_key_file is not; give both (the certificate and its private key) or neither".into(),
        ),
        (None, Some(_)) => problems.push(
            "directory.tls.client_key_file is set but client_cert_file is not; give both (the certificate and its private key) or neither".into(),
        ),
        _ => {}
    }

    let uses_tls = s.starttls || !ldaps.is_empty();
    if !uses_tls {
        let set: Vec<&str> = [
            ("ca_file", s.ca_file.is_some()),
            ("client_cert_file", s.client_cert_file.is_some()),
            ("client_key_file", s.client_key_file.is_some()),
            ("server_name", s.server_name.is_some()),
            ("insecure_skip_verify", s.insecure_skip_verify),
            ("min_version", min_version != TlsVersion::Tls12),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect();
        if !set.is_empty() {
            problems.push(format!(
                "[directory.tls] sets {}, but no server uses TLS: every URL in directory.urls is ldap:// and starttls is false; use ldaps:// URLs or set starttls = true",
                set.join(", ")
            ));
        }
    } else if !s.starttls {
        for url in urls.iter().filter(|u| !is_ldaps(u)) {
            warnings.push(format!(
                "directory.urls: {url:?} is plaintext (ldap:// without directory.tls.starttls) while other servers use TLS; passwords sent to it cross the network unencrypted"
            ));
        }
    }
    if uses_tls && s.server_name.is_none() {
        for url in urls {
            let plaintext = !s.starttls && !is_ldaps(url);
            if !plaintext && url.is_ipv6() {
                problems.push(format!(
                    "directory.urls: {url:?} names an IPv6 address, for which the LDAP library cannot check a certificate; set directory.tls.server_name to a DNS name in the server's certificate"
                ));
            }
        }
    }

    let trust = if s.insecure_skip_verify {
        warnings.push(INSECURE_WARNING.into());
        if s.ca_file.is_some() {
            warnings
                .push("directory.tls.ca_file is not used while insecure_skip_verify = true".into());
        }
        Trust::Nothing
    } else {
        match &s.ca_file {
            Some(path) => Trust::CaFile(path.clone()),
            None => Trust::System,
        }
    };
    let mut config = TlsConfig {
        starttls: s.starttls,
        server_name: s.server_name.clone(),
        min_version,
        trust,
        client_cert_file: s.client_cert_file.clone(),
        client: None,
    };
    if !uses_tls {
        return config;
    }
    // The files are read even when other problems were found, so that all are reported at once.

    let roots = match &config.trust {
        Trust::Nothing => {
            // Still read, so that a broken file is found now rather than the day verification
            // is turned back on.
            if let Some(path) = &s.ca_file {
                if let Err(e) = read_certificates(path) {
                    problems.push(format!("directory.tls.ca_file: {e}"));
                }
            }
            None
        }
        Trust::CaFile(path) => match ca_file_roots(path) {
            Ok(roots) => Some(roots),
            Err(e) => {
                problems.push(format!("directory.tls.ca_file: {e}"));
                None
            }
        },
        Trust::System => match system_roots() {
            Ok(roots) => Some(roots),
            Err(e) => {
                problems.push(e);
                None
            }
        },
    };
    let client_auth = match (&s.client_cert_file, &s.client_key_file) {
        (Some(cert), Some(key)) => match client_identity(cert, key) {
            Ok(identity) => Some(identity),
            Err(e) => {
                problems.push(e);
                None
            }
        },
        _ => None,
    };
    if problems.len() > before {
        return config;
    }
    match client_config(min_version, roots, client_auth) {
        Ok(client) => config.client = Some(Arc::new(client)),
        Err(e) => problems.push(e),
    }
    config
}

fn check_server_name(name: &str, problems: &mut Vec<String>) {
    match ServerName::try_from(name) {
        Ok(ServerName::IpAddress(rustls::pki_types::IpAddr::V6(_))) => problems.push(format!(
            "directory.tls.server_name = {name:?} is an IPv6 address, for which the LDAP library cannot check a certificate; give a DNS name in the server's certificate"
        )),
        Ok(_) => {}
        Err(_) => problems.push(format!(
            "directory.tls.server_name = {name:?} is not a DNS name or IP address such as \"ldap.example.org\""
        )),
    }
}

/// The certificates of a PEM file, with errors that name the file.
pub(super) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not valid PEM: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); a DER file can be converted with `openssl x509 -inform der`",
            path.display()
        ));
    }
    Ok(certs)
}

fn pem_error(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            let label = String::from_utf8_lossy(end_marker);
            format!("a {label} section has no -----END {label}----- line")
        }
        pem::Error::IllegalSectionStart { line } => format!(
            "malformed section start line {:?}",
            String::from_utf8_lossy(line).trim_end()
        ),
        pem::Error::Base64Decode(why) => format!("bad base64 in a section ({why})"),
        other => other.to_string(),
    }
}

fn ca_file_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for (i, cert) in read_certificates(path)?.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "certificate {} in {} cannot be a trust anchor: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(roots)
}

/// The system's trust store. Certificates that fail to load are skipped; none at all is an
/// error, since nothing could then be verified.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let why = if found.errors.is_empty() {
            "it is empty".to_owned()
        } else {
            found
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        return Err(format!(
            "directory.tls.ca_file is not set and the system trust store has no usable certificate ({why}); set ca_file to the PEM file of the CA that signed the directory's certificate"
        ));
    }
    Ok(roots)
}

type ClientIdentity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(cert: &Path, key: &Path) -> Result<ClientIdentity, String> {
    client_identity_of("directory.tls", cert, key)
}

/// A client certificate and its key, with errors naming `section`'s keys.
pub(super) fn client_identity_of(
    section: &str,
    cert: &Path,
    key: &Path,
) -> Result<ClientIdentity, String> {
    let chain = read_certificates(cert).map_err(|e| format!("{section}.client_cert_file: {e}"))?;
    let bytes = std::fs::read(key).map_err(|e| {
        format!(
            "{section}.client_key_file: cannot read {}: {e}",
            key.display()
        )
    })?;
    let key_der = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem::Error::NoItemsFound => format!(
            "{section}.client_key_file: {} holds no PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"; an encrypted key must be decrypted first)",
            key.display()
        ),
        other => format!(
            "{section}.client_key_file: {} is not valid PEM: {}",
            key.display(),
            pem_error(&other)
        ),
    })?;
    Ok((chain, key_der))
}

/// The one rustls configuration every directory connection uses.
fn client_config(
    min_version: TlsVersion,
    roots: Option<RootCertStore>,
    client_auth: Option<ClientIdentity>,
) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match min_version {
        TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("directory.tls: cannot set up TLS: {e}"))?;
    let builder = match roots {
        Some(roots) => builder.with_root_certificates(roots),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate {
                algorithms: provider.signature_verification_algorithms,
            })),
    };
    let Some((chain, key)) = client_auth else {
        return Ok(builder.with_no_client_auth());
    };
    builder.with_client_auth_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            "directory.tls.client_key_file is not the private key of the certificate in client_cert_file (their public keys differ)".to_owned()
        }
        other => format!("directory.tls.client_key_file cannot be used with client_cert_file: {other}"),
    })
}

/// `insecure_skip_verify`: any certificate is accepted for any name, but the handshake's
/// signatures are still checked against it, so the session is encrypted with the key of the
/// certificate that was presented.
#[derive(Debug)]
struct AnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Config, ConfigError, Settings};
    use super::*;

    const BASE: &str = r#"
        [tokens.keys.k1]
        secret = "0123456789abcdef0123456789abcdef"
        [directory.users]
        base_dn = "ou=people,dc=example,dc=org"
    "#;

    fn url(text: &str) -> ServerUrl {
        ServerUrl::parse(text).unwrap()
    }

    /// A configuration with `urls` and `[directory.tls]` holding `tls`.
    fn toml(urls: &[&str], tls: &str) -> String {
        let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
        format!(
            "{BASE}\n[directory]\nurls = [{}]\n[directory.tls]\n{tls}\n",
            urls.join(", ")
        )
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::one("test", e.to_string()))?
            .try_deserialize()
            .map_err(|e| ConfigError::one("test", e.to_string()))?;
        settings.validate("test")
    }

    fn problems(text: &str) -> Vec<String> {
        parse(text)
            .expect_err("the config should be refused")
            .problems
    }

    /// A CA, and a client certificate it signed with its PKCS#8 key, as PEM files in `dir`.
    struct Pems {
        ca: PathBuf,
        cert: PathBuf,
        key: PathBuf,
        other_key: PathBuf,
    }

    fn pems(dir: &Path) -> Pems {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let other_key = rcgen::KeyPair::generate().unwrap();
        let p = Pems {
            ca: dir.join("ca.pem"),
            cert: dir.join("client.pem"),
            key: dir.join("client.key"),
            other_key: dir.join("other.key"),
        };
        std::fs::write(&p.ca, ca.pem()).unwrap();
        std::fs::write(&p.cert, cert.pem()).unwrap();
        std::fs::write(&p.key, key.serialize_pem()).unwrap();
        std::fs::write(&p.other_key, other_key.serialize_pem()).unwrap();
        p
    }

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tls")
            .join(name)
    }

    #[test]
    fn without_tls_settings_nothing_is_encrypted_or_built() {
        let c = parse(&toml(&["ldap://127.0.0.1:389"], "")).unwrap();
        let tls = &c.directory.tls;
        assert!(tls.client.is_none());
        assert_eq!(
            tls.encryption(&url("ldap://127.0.0.1:389")),
            Encryption::Plaintext
        );
        assert_eq!(tls.min_version, TlsVersion::Tls12);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn ldaps_and_starttls_with_a_ca_file_build_one_shared_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        let ca = format!("ca_file = {:?}", p.ca);
        let c = parse(&toml(
            &["ldaps://a.example.org", "LDAPS://b.example.org:6360"],
            &ca,
        ))
        .unwrap();
        let tls = &c.directory.tls;
        assert!(tls.client.is_some());
        assert_eq!(tls.trust, Trust::CaFile(p.ca.clone()));
        assert_eq!(
            tls.encryption(&url("ldaps://a.example.org")),
            Encryption::Ldaps
        );
        assert_eq!(
            tls.encryption(&url("LDAPS://b.example.org:6360")),
            Encryption::Ldaps
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);

        let c = parse(&toml(
            &["ldap://a.example.org"],
            &format!("{ca}\nstarttls = true\nmin_version = \"1.3\""),
        ))
        .unwrap();
        let tls = &c.directory.tls;
        assert_eq!(
            tls.encryption(&url("ldap://a.example.org")),
            Encryption::StartTls
        );
        assert_eq!(tls.min_version, TlsVersion::Tls13);
        // The environment gives numbers as numbers: LATCHKEY__DIRECTORY__TLS__MIN_VERSION=1.3
        let c = parse(&toml(&["ldaps://a"], &format!("{ca}\nmin_version = 1.3"))).unwrap();
        assert_eq!(c.directory.tls.min_version, TlsVersion::Tls13);
    }

    #[test]
    fn a_client_key_in_pkcs8_pkcs1_or_sec1_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        for (cert, key) in [
            (p.cert.clone(), p.key.clone()),
            (fixture("rsa.pem"), fixture("rsa-pkcs1.key")),
            (fixture("ec.pem"), fixture("ec-sec1.key")),
        ] {
            let tls = format!(
                "ca_file = {:?}\nclient_cert_file = {cert:?}\nclient_key_file = {key:?}",
                p.ca
            );
            let c = parse(&toml(&["ldaps://a"], &tls))
                .unwrap_or_else(|e| panic!("{}: {e}", key.display()));
            assert!(c.directory.tls.client.is_some());
            assert_eq!(c.directory.tls.client_cert_file.as_ref(), Some(&cert));
        }
    }

    #[test]
    fn a_certificate_needs_its_key_and_the_key_must_match() {
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        let ca = format!("ca_file = {:?}", p.ca);
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("{ca}\nclient_cert_file = {:?}", p.cert))),
            vec!["directory.tls.client_cert_file is set but client_key_file is not; give both (the certificate and its private key) or neither"]
        );
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("{ca}\nclient_key_file = {:?}", p.key))),
            vec!["directory.tls.client_key_file is set but client_cert_file is not; give both (the certificate and its private key) or neither"]
        );
        assert_eq!(
            problems(&toml(
                &["ldaps://a"],
                &format!(
                    "{ca}\nclient_cert_file = {:?}\nclient_key_file = {:?}",
                    p.cert, p.other_key
                )
            )),
            vec!["directory.tls.client_key_file is not the private key of the certificate in client_cert_file (their public keys differ)"]
        );
        // A certificate where the key should be.
        assert_eq!(
            problems(&toml(
                &["ldaps://a"],
                &format!(
                    "{ca}\nclient_cert_file = {:?}\nclient_key_file = {:?}",
                    p.cert, p.cert
                )
            )),
            vec![format!("directory.tls.client_key_file: {} holds no PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\"; an encrypted key must be decrypted first)", p.cert.display())]
        );
    }

    #[test]
    fn unreadable_empty_and_broken_ca_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        let missing = dir.path().join("missing.pem");
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("ca_file = {missing:?}"))),
            vec![format!(
                "directory.tls.ca_file: cannot read {}: No such file or directory (os error 2)",
                missing.display()
            )]
        );
        // Reported along with the section's other problems.
        assert_eq!(
            problems(&toml(
                &["ldaps://a"],
                &format!("ca_file = {missing:?}\nmin_version = \"1.0\"")
            )),
            vec![
                "directory.tls.min_version = \"1.0\" is not \"1.2\" or \"1.3\"; older TLS versions are not supported".to_owned(),
                format!(
                    "directory.tls.ca_file: cannot read {}: No such file or directory (os error 2)",
                    missing.display()
                ),
            ]
        );
        // A key is PEM, but no certificate.
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("ca_file = {:?}", p.key))),
            vec![format!(
                "directory.tls.ca_file: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----); a DER file can be converted with `openssl x509 -inform der`",
                p.key.display()
            )]
        );
        // The one problem of a CA file named `name` holding `text`, and the file's path.
        let broken = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let p = problems(&toml(&["ldaps://a"], &format!("ca_file = {path:?}")));
            assert_eq!(p.len(), 1, "{p:?}");
            (p[0].clone(), path)
        };
        let ca_text = std::fs::read_to_string(&p.ca).unwrap();
        let (problem, cut) = broken("cut.pem", &ca_text.replace("-----END CERTIFICATE-----", ""));
        assert_eq!(
            problem,
            format!(
                "directory.tls.ca_file: {} is not valid PEM: a CERTIFICATE section has no -----END CERTIFICATE----- line",
                cut.display()
            )
        );
        let (problem, garbled) = broken(
            "garbled.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
        );
        assert!(
            problem.starts_with(&format!(
                "directory.tls.ca_file: {} is not valid PEM: bad base64 in a section (",
                garbled.display()
            )),
            "{problem}"
        );
        // Base64 that is not a certificate.
        let (problem, junk) = broken(
            "junk.pem",
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        );
        assert!(
            problem.starts_with(&format!(
                "directory.tls.ca_file: certificate 1 in {} cannot be a trust anchor: ",
                junk.display()
            )),
            "{problem}"
        );
    }

    #[test]
    fn starttls_with_ldaps_and_bad_versions_and_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        let ca = format!("ca_file = {:?}", p.ca);
        assert_eq!(
            problems(&toml(
                &["ldap://a", "ldaps://b:6360"],
                &format!("{ca}\nstarttls = true")
            )),
            vec!["directory.tls.starttls = true, but \"ldaps://b:6360\" is ldaps://, which already encrypts; use ldap:// URLs with starttls, or leave starttls out"]
        );
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("{ca}\nmin_version = \"1.1\""))),
            vec!["directory.tls.min_version = \"1.1\" is not \"1.2\" or \"1.3\"; older TLS versions are not supported"]
        );
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("{ca}\nmin_version = \"TLSv1.2\""))),
            vec!["directory.tls.min_version = \"TLSv1.2\" is not \"1.2\" or \"1.3\"; older TLS versions are not supported"]
        );
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("{ca}\nserver_name = \"ldap example\""))),
            vec!["directory.tls.server_name = \"ldap example\" is not a DNS name or IP address such as \"ldap.example.org\""]
        );
        assert_eq!(
            problems(&toml(&["ldaps://a"], &format!("{ca}\nserver_name = \"::1\""))),
            vec!["directory.tls.server_name = \"::1\" is an IPv6 address, for which the LDAP library cannot check a certificate; give a DNS name in the server's certificate"]
        );
        assert_eq!(
            problems(&toml(&["ldaps://[::1]:6360"], &ca)),
            vec!["directory.urls: \"ldaps://[::1]:6360\" names an IPv6 address, for which the LDAP library cannot check a certificate; set directory.tls.server_name to a DNS name in the server's certificate"]
        );
        let c = parse(&toml(
            &["ldaps://[::1]:6360"],
            &format!("{ca}\nserver_name = \"ldap.test\""),
        ))
        .unwrap();
        assert_eq!(c.directory.tls.server_name.as_deref(), Some("ldap.test"));
        let p = problems(&toml(&["ldaps://a"], &format!("{ca}\nverify = false")));
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("unknown field `verify`"), "{p:?}");
    }

    #[test]
    fn tls_settings_without_any_tls_server_are_refused_and_mixtures_warned_about() {
        assert_eq!(
            problems(&toml(
                &["ldap://a", "ldap://b"],
                "ca_file = \"/etc/ca.pem\"\nmin_version = \"1.3\"\ninsecure_skip_verify = true"
            )),
            vec!["[directory.tls] sets ca_file, insecure_skip_verify, min_version, but no server uses TLS: every URL in directory.urls is ldap:// and starttls is false; use ldaps:// URLs or set starttls = true"]
        );
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        let c = parse(&toml(
            &["ldaps://a", "ldap://b"],
            &format!("ca_file = {:?}", p.ca),
        ))
        .unwrap();
        assert_eq!(
            c.warnings,
            vec!["directory.urls: \"ldap://b\" is plaintext (ldap:// without directory.tls.starttls) while other servers use TLS; passwords sent to it cross the network unencrypted"]
        );
        assert_eq!(
            c.directory.tls.encryption(&url("ldap://b")),
            Encryption::Plaintext
        );
    }

    #[test]
    fn insecure_skip_verify_is_warned_about_and_keeps_the_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let p = pems(dir.path());
        let c = parse(&toml(
            &["ldaps://a"],
            &format!(
                "insecure_skip_verify = true\nclient_cert_file = {:?}\nclient_key_file = {:?}",
                p.cert, p.key
            ),
        ))
        .unwrap();
        assert_eq!(c.warnings, vec![INSECURE_WARNING]);
        assert_eq!(c.directory.tls.trust, Trust::Nothing);
        assert!(c.directory.tls.client.is_some());
        let c = parse(&toml(
            &["ldaps://a"],
            &format!("insecure_skip_verify = true\nca_file = {:?}", p.ca),
        ))
        .unwrap();
        assert_eq!(
            c.warnings,
            vec![
                INSECURE_WARNING,
                "directory.tls.ca_file is not used while insecure_skip_verify = true"
            ]
        );
    }
}
