//! Key pairs for the tests: made by the verifier crate, written as the files an operator
//! would configure (the private key mode 0600).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use latchkey_verify::{Algorithm, SigningKey};

/// A new key pair `kid` for `algorithm`, its private key written to `dir/<kid>.pem` (0600).
pub fn write_key_pair(dir: &Path, kid: &str, algorithm: Algorithm) -> (SigningKey, PathBuf) {
    let key = SigningKey::generate(kid, algorithm).expect("a key pair");
    let path = dir.join(format!("{kid}.pem"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("a new private key file");
    file.write_all(key.to_pkcs8_pem().expect("PKCS#8").as_bytes())
        .expect("write the private key");
    (key, path)
}

/// The public key of `key`, written to `dir/<kid>.pub` (SPKI PEM).
pub fn write_public_key(dir: &Path, key: &SigningKey) -> PathBuf {
    let path = dir.join(format!("{}.pub", key.id()));
    let pem = key
        .verifying_key()
        .to_public_key_pem()
        .expect("a key pair's public key");
    std::fs::write(&path, pem).expect("write the public key");
    path
}
