//! Certificates for the TLS tests, made fresh by each test with rcgen: a test CA, a server
//! certificate it signs (for 127.0.0.1, `localhost` and `ldap.test`), a client certificate it
//! signs, and an unrelated second CA with a client certificate of its own. Everything is
//! written as PEM (keys in PKCS#8) into a temporary directory that goes away with the value.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

/// The names in the server certificate, besides the address 127.0.0.1.
pub const SERVER_DNS_NAMES: [&str; 2] = ["localhost", "ldap.test"];

/// PEM files made for one test. See the module docs.
pub struct TlsFiles {
    /// The CA that signed `server_cert` and `client_cert`.
    pub ca: PathBuf,
    /// A CA that signed nothing the server or Latchkey trust.
    pub other_ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate signed by `other_ca`, which the server does not trust.
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
    dir: TempDir,
}

impl TlsFiles {
    /// Make a fresh set of keys and certificates.
    pub fn generate() -> TlsFiles {
        let dir = tempfile::Builder::new()
            .prefix("latchkey-tls-")
            .tempdir()
            .expect("creating a temp dir for certificates");
        let path = |name: &str| dir.path().join(name);

        let (ca_pem, ca) = certificate_authority("Latchkey Test CA");
        let (other_ca_pem, other_ca) = certificate_authority("Unrelated Test CA");

        let mut names = vec!["127.0.0.1".to_owned()];
        names.extend(SERVER_DNS_NAMES.iter().map(|n| (*n).to_owned()));
        let server = leaf(names, "ldap.test", ExtendedKeyUsagePurpose::ServerAuth, &ca);
        let client = leaf(
            Vec::new(),
            "latchkey-test-client",
            ExtendedKeyUsagePurpose::ClientAuth,
            &ca,
        );
        let stranger = leaf(
            Vec::new(),
            "stranger",
            ExtendedKeyUsagePurpose::ClientAuth,
            &other_ca,
        );

        let files = TlsFiles {
            ca: path("ca.pem"),
            other_ca: path("other-ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
            stranger_cert: path("stranger.pem"),
            stranger_key: path("stranger.key"),
            dir,
        };
        write(&files.ca, &ca_pem);
        write(&files.other_ca, &other_ca_pem);
        write(&files.server_cert, &server.0);
        write(&files.server_key, &server.1);
        write(&files.client_cert, &client.0);
        write(&files.client_key, &client.1);
        write(&files.stranger_cert, &stranger.0);
        write(&files.stranger_key, &stranger.1);
        files
    }

    /// The directory holding the files; a test may write more files there.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2099, 12, 31);
}

/// A self-signed CA: its certificate (PEM) and the issuer that signs with its key.
fn certificate_authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("generating a CA key");
    let mut params = CertificateParams::default();
    params.distinguished_name.remove(DnType::CommonName);
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    let cert = params.self_signed(&key).expect("self-signing the CA");
    (cert.pem(), Issuer::new(params, key))
}

/// A certificate for `names` (addresses or DNS names) with `purpose`, signed by `issuer`:
/// (certificate PEM, PKCS#8 key PEM).
fn leaf(
    names: Vec<String>,
    common_name: &str,
    purpose: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'static, KeyPair>,
) -> (String, String) {
    let key = KeyPair::generate().expect("generating a key");
    let mut params = CertificateParams::new(names).expect("certificate names");
    params.distinguished_name.remove(DnType::CommonName);
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![purpose];
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let cert = params
        .signed_by(&key, issuer)
        .expect("signing a certificate");
    (cert.pem(), key.serialize_pem())
}
