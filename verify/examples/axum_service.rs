//! The axum version of `protected_service`: a public route, a guarded one and an admins-only
//! one, each guarded by `RequireTokenLayer` and reading the verified `Claims` as an argument.
//!
//! ```sh
//! # Latchkey's public key, when it signs with EdDSA or ES256
//! LATCHKEY_PUBLIC_KEY_FILE=/etc/latchkey/2026-11.pub LATCHKEY_KEY_ID=2026-11 \
//!   cargo run -p latchkey-verify --features axum --example axum_service
//! # or the HMAC secret Latchkey signs with (tokens.keys.<id>.secret_file), HS256
//! LATCHKEY_KEY_FILE=/etc/latchkey/token-key LATCHKEY_KEY_ID=2026-11 \
//!   cargo run -p latchkey-verify --features axum --example axum_service
//! # or (feature `jwks`) the keys Latchkey publishes, followed as it rotates them
//! LATCHKEY_JWKS_URI=https://auth.example.org/.well-known/jwks.json \
//!   cargo run -p latchkey-verify --features axum,jwks --example axum_service
//! curl http://127.0.0.1:8000/                                   # public
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/hello
//! curl -u "$TOKEN:" http://127.0.0.1:8000/hello                 # token as the Basic username
//! curl -b "latchkey_session=$TOKEN" http://127.0.0.1:8000/hello # the sign-in page's cookie
//! ```
//!
//! Settings, from the environment: the keys, as `LATCHKEY_JWKS_URI` (with feature `jwks`: a
//! `JwksSource`, which refetches for an unknown kid at most once per
//! `LATCHKEY_JWKS_MIN_REFRESH` seconds, default 30), or `LATCHKEY_PUBLIC_KEY_FILE` (a public
//! key PEM file) or `LATCHKEY_KEY_FILE` (an HMAC secret file) with the key's id
//! `LATCHKEY_KEY_ID` (default `2026-11`); `LATCHKEY_ISSUER` (default `latchkey`), `LATCHKEY_COOKIE` (the cookie a
//! token may come in, default `latchkey_session`, Latchkey's `portal.cookie_name`) and
//! `LISTEN` (default `127.0.0.1:8000`; port 0 takes a free port). The address it listens on
//! is printed as `listening on http://ADDRESS`.

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use latchkey_verify::tower::RequireTokenLayer;
use latchkey_verify::{Algorithm, Claims, Secret, TokenVerifier, Verifier, VerifyingKey};

async fn public() -> &'static str {
    "Anyone may read this.\n"
}

async fn hello(claims: Claims) -> String {
    format!(
        "Hello, {}!\n",
        claims.name.as_deref().unwrap_or(&claims.sub)
    )
}

async fn admin(claims: Claims) -> String {
    format!("{} is an admin.\n", claims.sub)
}

/// The service's routes: `/` for anyone, `/hello` for any valid token, `/admin` for members of
/// `admins`.
fn app(verifier: Arc<dyn TokenVerifier>, cookie: String) -> Router {
    let token = RequireTokenLayer::new(verifier).cookie(cookie);
    let admins = Router::new()
        .route("/admin", get(admin))
        .route_layer(token.clone().group("admins"));
    Router::new()
        .route("/hello", get(hello))
        .route_layer(token)
        .merge(admins)
        .route("/", get(public))
}

/// The verifier the settings describe.
async fn verifier() -> Result<Arc<dyn TokenVerifier>, Box<dyn std::error::Error>> {
    let template = Verifier::builder().issuer(setting("LATCHKEY_ISSUER", "latchkey"));
    #[cfg(feature = "jwks")]
    if let Ok(uri) = std::env::var("LATCHKEY_JWKS_URI") {
        let min_refresh: u64 = setting("LATCHKEY_JWKS_MIN_REFRESH", "30")
            .parse()
            .map_err(|_| "LATCHKEY_JWKS_MIN_REFRESH is a number of seconds")?;
        let source = latchkey_verify::JwksSource::builder(uri)
            .verifier(template)
            .min_refresh(std::time::Duration::from_secs(min_refresh))
            .start()
            .await?;
        return Ok(Arc::new(source));
    }
    let id = setting("LATCHKEY_KEY_ID", "2026-11");
    let key = match (
        std::env::var("LATCHKEY_PUBLIC_KEY_FILE"),
        std::env::var("LATCHKEY_KEY_FILE"),
    ) {
        (Ok(public), _) => VerifyingKey::from_public_key_pem_file(id, public)?,
        (_, Ok(secret)) => VerifyingKey::hmac(id, Algorithm::HS256, Secret::from_file(secret)?)?,
        _ => {
            return Err(
                "set LATCHKEY_PUBLIC_KEY_FILE to Latchkey's public key file (EdDSA, ES256), \
                        or LATCHKEY_KEY_FILE to its HMAC secret file"
                    .into(),
            )
        }
    };
    Ok(Arc::new(template.key(&key).build()))
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let verifier = verifier().await?;
    let app = app(verifier, setting("LATCHKEY_COOKIE", "latchkey_session"));

    let listen = setting("LISTEN", "127.0.0.1:8000");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen} (set LISTEN to another address): {e}"))?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
