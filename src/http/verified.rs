//! Tokens verified recently, with their forward-auth answer already built.
//!
//! A reverse proxy asks `/auth/verify` about the same token on every request of a session
//! (every page, image and API call), so the verification of a token is kept: the HMAC, the
//! base64 and the JSON of a token are worked through once, and the identity headers built
//! once. What is kept is keyed by the whole token as presented, so only a byte-for-byte equal
//! token finds it, and only a token that passed verification is ever kept.
//!
//! A lookup takes the token's bytes as the request carries them, before they are checked to be
//! a token's text at all: only a token that passed verification is kept, so a byte-for-byte match
//! needs no other check, and a miss goes through [`token_text`] and the verifier.
//!
//! Every hit is checked against the clock (`exp` and `nbf`, with the leeway) and the
//! revocations: a token found after it expired or was revoked is refused as such and its entry
//! dropped. Entries nobody asks for again
//! leave when room is needed: the cache is bounded by an estimate of the memory its entries take.
//!
//! Each worker keeps its own (`verify.cache_max_bytes` is divided among them): a worker's
//! lookups take no lock and share no counter or cache line with another core, which a cache
//! shared by the workers did on every request (its lock, the entry's reference count, the
//! header values'). A token is then verified once by each worker that sees it, a few
//! microseconds each. The keys a token verifies with change
//! only with a restart, which starts an empty cache. Lookups hash the token with a randomly
//! keyed hash, so a client cannot aim for collisions; a lookup does no other work (no
//! maintenance on the reader's time, which would show in the tail latency).

use std::cell::RefCell;
use std::rc::Rc;

use actix_web::http::header::{HeaderName, HeaderValue};
use latchkey_verify::{token_text, Claims, Verifier, VerifyError};

/// A token that passed verification, and what `/auth/verify` answers for it.
#[derive(Debug)]
pub struct Verified {
    pub claims: Claims,
    /// The identity headers, or the name of the claim that cannot be written as a header.
    pub headers: Result<Vec<(HeaderName, HeaderValue)>, &'static str>,
    /// About how many bytes the entry for this token holds in the cache.
    weight: u64,
}

impl Verified {
    fn new(claims: Claims, token: &[u8]) -> Verified {
        Verified {
            headers: identity_headers(&claims),
            claims,
            // The token, the claims decoded from its payload and the headers built from those
            // claims each take about the token's length; plus the bookkeeping around them.
            weight: u64::try_from(token.len()).unwrap_or(u64::MAX / 4) * 3 + 256,
        }
    }
}

/// The identity headers for `claims` (names and addresses may be UTF-8), or the name of the
/// claim whose value a header cannot carry (control characters). All four are always there, empty
/// when the claim is absent: a proxy that copies only the headers present in the answer would
/// otherwise let the client's own `Remote-Email` or `Remote-Name` through to the upstream.
fn identity_headers(claims: &Claims) -> Result<Vec<(HeaderName, HeaderValue)>, &'static str> {
    let value =
        |name: &'static str, text: &str| HeaderValue::from_bytes(text.as_bytes()).map_err(|_| name);
    Ok(vec![
        (
            HeaderName::from_static("remote-user"),
            value("sub", &claims.sub)?,
        ),
        (
            HeaderName::from_static("remote-groups"),
            value("groups", &groups_header(&claims.groups))?,
        ),
        (
            HeaderName::from_static("remote-email"),
            value("email", claims.email.as_deref().unwrap_or_default())?,
        ),
        (
            HeaderName::from_static("remote-name"),
            value("name", claims.name.as_deref().unwrap_or_default())?,
        ),
    ])
}

/// The `Remote-Groups` value: names separated by `,`, with a `,` inside a name written `%2C`
/// and a `%` written `%25`, so that every name can be told apart (`Sales, EMEA` →
/// `Sales%2C EMEA`).
fn groups_header(groups: &[String]) -> String {
    let mut out = String::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for c in group.chars() {
            match c {
                ',' => out.push_str("%2C"),
                '%' => out.push_str("%25"),
                c => out.push(c),
            }
        }
    }
    out
}

type Entries = quick_cache::unsync::Cache<Box<[u8]>, Rc<Verified>, ByWeight>;

/// Verification with a memory of the tokens that passed it, for one worker.
pub struct VerifiedTokens {
    entries: Option<RefCell<Entries>>,
}

impl VerifiedTokens {
    /// A cache of about `max_bytes` (0: none, every token is verified each time).
    pub fn new(max_bytes: u64) -> VerifiedTokens {
        let entries = (max_bytes > 0).then(|| {
            // About a kilobyte a token with a few groups: the number of entries is an estimate
            // the cache sizes its tables by, the weight is the bound.
            let estimated = usize::try_from(max_bytes / 1024)
                .unwrap_or(usize::MAX)
                .max(16);
            RefCell::new(Entries::with_weighter(estimated, max_bytes, ByWeight))
        });
        VerifiedTokens { entries }
    }

    /// Check `token` (the bytes a request carries, as `latchkey_verify::locate_token` finds
    /// them) with `verifier`, or find that it passed before and has not expired since.
    pub fn verify(&self, verifier: &Verifier, token: &[u8]) -> Result<Rc<Verified>, VerifyError> {
        let Some(entries) = &self.entries else {
            return verifier
                .verify(token_text(token)?)
                .map(|c| Rc::new(Verified::new(c, token)));
        };
        let found = entries.borrow().get(token).cloned();
        if let Some(verified) = found {
            // The clock and the revocations, both of which move on after the token was kept.
            if let Err(e) = verifier.recheck(&verified.claims) {
                if matches!(e, VerifyError::Expired | VerifyError::Revoked) {
                    entries.borrow_mut().remove(token);
                }
                return Err(e);
            }
            return Ok(verified);
        }
        let verified = Rc::new(Verified::new(verifier.verify(token_text(token)?)?, token));
        entries
            .borrow_mut()
            .insert(token.into(), Rc::clone(&verified));
        Ok(verified)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |e| e.borrow().len())
    }
}

/// An entry weighs what [`Verified::new`] estimated.
#[derive(Clone)]
struct ByWeight;

impl quick_cache::Weighter<Box<[u8]>, Rc<Verified>> for ByWeight {
    fn weight(&self, _token: &Box<[u8]>, verified: &Rc<Verified>) -> u64 {
        verified.weight
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use latchkey_verify::{Algorithm, Secret, Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::hmac("k1", Algorithm::HS256, Secret::new(vec![7; 40]).unwrap()).unwrap()
    }

    fn verifier(leeway: u64) -> Verifier {
        Verifier::builder()
            .key(&key().verifying_key())
            .issuer("latchkey")
            .leeway(leeway)
            .build()
    }

    fn unix_now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn token(sub: &str, exp_in: i64) -> String {
        let now = unix_now();
        let mut claims = Claims::new("latchkey", sub, now, now + exp_in);
        claims.groups = vec!["staff".into(), "Sales, EMEA".into()];
        Signer::new(&key()).sign(&claims).unwrap()
    }

    #[test]
    fn a_kept_token_answers_with_its_own_claims_and_headers() {
        let cache = VerifiedTokens::new(1 << 20);
        let (alice, bob) = (token("alice", 600), token("bob", 600));
        let v = verifier(5);
        for _ in 0..2 {
            let a = cache.verify(&v, alice.as_bytes()).unwrap();
            let b = cache.verify(&v, bob.as_bytes()).unwrap();
            assert_eq!(a.claims.sub, "alice");
            assert_eq!(b.claims.sub, "bob");
            let headers = a.headers.as_ref().unwrap();
            let shown: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
                .collect();
            assert_eq!(
                shown,
                [
                    ("remote-user", "alice"),
                    ("remote-groups", "staff,Sales%2C EMEA"),
                    ("remote-email", ""),
                    ("remote-name", ""),
                ]
            );
        }
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn only_verified_tokens_are_kept() {
        let cache = VerifiedTokens::new(1 << 20);
        let good = token("alice", 600);
        let (head, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{head}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        let v = verifier(5);
        for _ in 0..2 {
            assert_eq!(
                cache.verify(&v, forged.as_bytes()).unwrap_err(),
                VerifyError::BadSignature
            );
        }
        assert_eq!(cache.len(), 0);
        // A token that differs from a kept one by a byte is not the kept one.
        cache.verify(&v, good.as_bytes()).unwrap();
        assert_eq!(
            cache.verify(&v, format!("{good}x").as_bytes()).unwrap_err(),
            VerifyError::BadSignature
        );
    }

    #[test]
    fn bytes_that_cannot_be_a_token_are_refused_before_the_verifier() {
        for budget in [1 << 20, 0] {
            let cache = VerifiedTokens::new(budget);
            let v = verifier(5);
            let good = token("alice", 600);
            assert_eq!(cache.verify(&v, b"").unwrap_err(), VerifyError::Missing);
            let spaced = format!("{good} x");
            assert_eq!(
                cache.verify(&v, spaced.as_bytes()).unwrap_err(),
                VerifyError::Malformed
            );
            let mut latin1 = good.clone().into_bytes();
            latin1.push(0xe9);
            assert_eq!(
                cache.verify(&v, &latin1).unwrap_err(),
                VerifyError::Malformed
            );
            assert_eq!(cache.len(), 0);
        }
    }

    #[test]
    fn a_kept_token_expires_like_any_other() {
        let cache = VerifiedTokens::new(1 << 20);
        let v = verifier(0);
        let short = token("alice", 1);
        cache.verify(&v, short.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(
            cache.verify(&v, short.as_bytes()).unwrap_err(),
            VerifyError::Expired
        );
    }

    #[test]
    fn an_expired_entry_is_refused_and_dropped() {
        let cache = VerifiedTokens::new(1 << 20);
        let now = unix_now();
        let claims = Claims::new("latchkey", "alice", now - 100, now - 10);
        let entries = cache.entries.as_ref().unwrap();
        entries.borrow_mut().insert(
            b"t.o.k"[..].into(),
            Rc::new(Verified::new(claims, b"t.o.k")),
        );
        assert_eq!(
            cache.verify(&verifier(0), b"t.o.k").unwrap_err(),
            VerifyError::Expired
        );
        assert_eq!(cache.len(), 0, "the expired entry is dropped");
    }

    #[test]
    fn without_a_budget_nothing_is_kept() {
        let cache = VerifiedTokens::new(0);
        let t = token("alice", 600);
        assert_eq!(
            cache.verify(&verifier(5), t.as_bytes()).unwrap().claims.sub,
            "alice"
        );
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn the_budget_bounds_what_is_kept() {
        // About 600 bytes an entry: a 16 KiB budget keeps a few dozen of 200 tokens.
        let cache = VerifiedTokens::new(16 * 1024);
        let v = verifier(5);
        for i in 0..200 {
            cache
                .verify(&v, token(&format!("user{i}"), 600).as_bytes())
                .unwrap();
        }
        let kept = cache.len();
        assert!(kept > 0 && kept < 60, "{kept} entries kept");
    }

    #[test]
    fn identity_headers_carry_utf8_and_are_empty_for_absent_claims() {
        let mut claims = Claims::new("latchkey", "dreßler", 0, 1);
        claims.groups = vec!["staff".into(), "ops".into()];
        claims.name = Some("Wolfgang Dreßler".into());
        let headers = identity_headers(&claims).unwrap();
        let shown: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("remote-user".to_owned(), "dreßler".as_bytes().to_vec()),
                ("remote-groups".to_owned(), b"staff,ops".to_vec()),
                ("remote-email".to_owned(), b"".to_vec()),
                (
                    "remote-name".to_owned(),
                    "Wolfgang Dreßler".as_bytes().to_vec()
                ),
            ]
        );
        claims.email = Some("w.dressler@example.org".into());
        claims.name = None;
        let headers = identity_headers(&claims).unwrap();
        assert_eq!(headers[2].1.as_bytes(), b"w.dressler@example.org");
        assert_eq!(
            (headers[3].0.as_str(), headers[3].1.as_bytes()),
            ("remote-name", &b""[..])
        );
        claims.email = Some("a@example.org\nRemote-User: root".into());
        assert_eq!(identity_headers(&claims).unwrap_err(), "email");
        claims.email = None;
        claims.groups = vec!["Sales, EMEA (*)".into(), "100%".into(), "Größe".into()];
        let headers = identity_headers(&claims).unwrap();
        assert_eq!(
            headers[1].1.as_bytes(),
            "Sales%2C EMEA (*),100%25,Größe".as_bytes()
        );
        claims.sub = "evil\r\nSet-Cookie: x=1".into();
        assert!(identity_headers(&claims).is_err());
    }
}
