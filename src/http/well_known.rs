//! `GET /.well-known/jwks.json` (the public keys that verify Latchkey's tokens) and
//! `GET /.well-known/latchkey` (what a consuming application needs to know to use this
//! Latchkey: its issuer, endpoints, keys, algorithms and durations).
//!
//! Both bodies are made once, from the configuration, when the state is built: a request
//! reads bytes, never a key. No HMAC secret can reach either: the key set is built from
//! [`VerifyingKey::to_jwk`](latchkey_verify::VerifyingKey::to_jwk), which has no JWK for a
//! secret, and HMAC-only configurations answer 404.
//!
//! ## Caching and key rotation
//!
//! Both answer `Cache-Control: public, max-age=300` ([`MAX_AGE_SECS`]). A verifier that
//! caches the key set may not see a new key for that long, so the rule (README, "Rotating key
//! pairs") is: **a new key is published (added to `[tokens.keys]`) at least `max-age` before
//! it signs** (`tokens.signing_key`), and an old key stays until every token it signed has
//! expired (`tokens.max_duration` after the switch). Five minutes keeps a rotation short
//! while sparing Latchkey a key-set fetch per verifier per request.

use actix_web::http::header::{ContentType, HeaderValue, CACHE_CONTROL};
use actix_web::web::Bytes;
use actix_web::{web, HttpResponse, ResponseError};
use latchkey_verify::{Algorithm, JwkSet};
use serde_json::{json, Map, Value};

use super::error::{get_or_head, method_not_allowed};
use super::gate::paths;
use super::{ApiError, AppState};
use crate::config::Config;

/// How long verifiers and caches may keep the key set and the discovery document, in seconds.
pub const MAX_AGE_SECS: u32 = 300;

/// The endpoints the discovery document names, each with the member that names it and whether
/// this configuration serves it. A new endpoint is one line here.
const ENDPOINTS: &[(&str, &str, Served)] = &[
    ("token_endpoint", paths::REQUEST_TOKEN, |_| true),
    ("verify_endpoint", paths::VERIFY, |_| true),
    ("token_info_endpoint", paths::TOKEN_INFO, |_| true),
    ("sign_in_endpoint", paths::LOGIN, |c| c.portal.is_some()),
    ("refresh_endpoint", paths::REFRESH, |_| true),
    ("logout_endpoint", paths::LOGOUT, |_| true),
    ("revocation_endpoint", paths::REVOKE, |c| {
        c.admin.require.is_some()
    }),
];

/// Whether a configuration serves an endpoint.
type Served = fn(&Config) -> bool;

/// The two documents, serialized once.
#[derive(Debug, Clone)]
pub struct WellKnown {
    /// `{"keys": [...]}`, or None when no key pair verifies (HMAC keys only).
    jwks: Option<Bytes>,
    /// Why there is no key set, for the 404.
    hmac_algorithm: Algorithm,
    discovery: Bytes,
}

impl WellKnown {
    pub fn new(config: &Config) -> WellKnown {
        let tokens = &config.tokens;
        let keys = tokens.public_jwks();
        let jwks = (!keys.is_empty())
            .then(|| Bytes::from(serde_json::to_vec(&JwkSet { keys }).unwrap_or_default()));
        WellKnown {
            discovery: Bytes::from(discovery(config, jwks.is_some()).to_string()),
            jwks,
            hmac_algorithm: tokens.algorithm,
        }
    }
}

/// The discovery document of `config`: absolute URLs under [`Config::public_base_url`], or
/// paths when it has none.
fn discovery(config: &Config, has_jwks: bool) -> Value {
    let base = config
        .public_base_url()
        .map_or("", |url| url.as_str().trim_end_matches('/'));
    let url = |path: &str| Value::String(format!("{base}{path}"));
    let tokens = &config.tokens;
    let mut doc = Map::new();
    doc.insert("issuer".into(), json!(tokens.issuer));
    if let Some(audience) = &tokens.audience {
        doc.insert("audience".into(), json!(audience));
    }
    for (member, path, enabled) in ENDPOINTS {
        if enabled(config) {
            doc.insert((*member).into(), url(path));
        }
    }
    if has_jwks {
        doc.insert("jwks_uri".into(), url(paths::JWKS));
    }
    let mut algorithms: Vec<Algorithm> = tokens.keys.iter().map(|k| k.algorithm()).collect();
    algorithms.sort();
    algorithms.dedup();
    doc.insert(
        "algorithms".into(),
        json!(algorithms.iter().map(|a| a.name()).collect::<Vec<_>>()),
    );
    doc.insert(
        "default_token_duration".into(),
        json!(tokens.default_duration),
    );
    doc.insert("max_token_duration".into(), json!(tokens.max_duration));
    Value::Object(doc)
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(paths::JWKS)
            .route(get_or_head().to(jwks))
            .default_service(method_not_allowed(
                "GET, HEAD",
                "Use GET to read the public keys.",
            )),
    )
    .service(
        web::resource(paths::DISCOVERY)
            .route(get_or_head().to(discovery_document))
            .default_service(method_not_allowed(
                "GET, HEAD",
                "Use GET to read the discovery document.",
            )),
    );
}

fn cacheable(body: Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECS}"))
                .unwrap_or(HeaderValue::from_static("no-store")),
        ))
        .content_type(ContentType::json())
        .body(body)
}

async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let known = &state.process.well_known;
    match &known.jwks {
        Some(body) => cacheable(body.clone()),
        None => ApiError::NoPublicKeys(known.hmac_algorithm).error_response(),
    }
}

async fn discovery_document(state: web::Data<AppState>) -> HttpResponse {
    cacheable(state.process.well_known.discovery.clone())
}
