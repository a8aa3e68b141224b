//! A small service with a public route and guarded ones: Latchkey's version of
//! flask-ldap-auth's `@login_required` hello-world.
//!
//! ```sh
//! # Latchkey's public key, when it signs with EdDSA or ES256 (`openssl pkey -pubout` of its
//! # private key, or a JWK of its /.well-known/jwks.json through VerifyingKey::from_jwk)
//! LATCHKEY_PUBLIC_KEY_FILE=/etc/latchkey/2026-11.pub LATCHKEY_KEY_ID=2026-11 \
//!   cargo run -p latchkey-verify --features actix --example protected_service
//! # or the HMAC secret Latchkey signs with (tokens.keys.<id>.secret_file), HS256
//! LATCHKEY_KEY_FILE=/etc/latchkey/token-key LATCHKEY_KEY_ID=2026-11 \
//!   cargo run -p latchkey-verify --features actix --example protected_service
//! curl http://127.0.0.1:8000/                                   # public
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/hello
//! curl -u "$TOKEN:" http://127.0.0.1:8000/hello                 # token as the Basic username
//! ```

use std::sync::Arc;

use actix_web::{web, App, HttpServer};
use latchkey_verify::actix::RequireToken;
use latchkey_verify::{Algorithm, Claims, Secret, Verifier, VerifyingKey};

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

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key_id = std::env::var("LATCHKEY_KEY_ID").unwrap_or_else(|_| "2026-11".into());
    let issuer = std::env::var("LATCHKEY_ISSUER").unwrap_or_else(|_| "latchkey".into());
    let key = match (
        std::env::var("LATCHKEY_PUBLIC_KEY_FILE"),
        std::env::var("LATCHKEY_KEY_FILE"),
    ) {
        (Ok(public), _) => VerifyingKey::from_public_key_pem_file(key_id, public)?,
        (_, Ok(secret)) => VerifyingKey::hmac(key_id, Algorithm::HS256, Secret::from_file(secret)?)?,
        _ => return Err("set LATCHKEY_PUBLIC_KEY_FILE to Latchkey's public key file (EdDSA, ES256), or LATCHKEY_KEY_FILE to its HMAC secret file".into()),
    };
    let verifier = Arc::new(Verifier::builder().key(&key).issuer(issuer).build());

    println!("listening on http://127.0.0.1:8000");
    HttpServer::new(move || {
        App::new().route("/", web::get().to(public)).service(
            web::scope("")
                .wrap(RequireToken::new(verifier.clone()))
                .route("/hello", web::get().to(hello))
                .service(
                    web::resource("/admin")
                        .wrap(RequireToken::new(verifier.clone()).group("admins"))
                        .route(web::get().to(admin)),
                ),
        )
    })
    .bind(("127.0.0.1", 8000))?
    .run()
    .await?;
    Ok(())
}
