//! The key and tokens the unit tests of the middleware (actix, tower) and of the
//! framework-free requirement share.

use crate::{Algorithm, Claims, Secret, Signer, SigningKey, VerifyingKey};

/// An HS256 key `k1`.
fn signing_key() -> SigningKey {
    SigningKey::hmac("k1", Algorithm::HS256, Secret::new(vec![3; 32]).unwrap()).unwrap()
}

/// What verifies [`signing_key`]'s tokens.
pub(crate) fn key() -> VerifyingKey {
    signing_key().verifying_key()
}

/// A token for alice from issuer `latchkey`, in `groups`, expiring `exp_in` seconds from now.
pub(crate) fn token(groups: &[&str], exp_in: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = Claims::new("latchkey", "alice", now, now + exp_in);
    claims.groups = groups.iter().map(|g| g.to_string()).collect();
    Signer::new(&signing_key()).sign(&claims).unwrap()
}
