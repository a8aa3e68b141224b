//! A stand-in for Latchkey's `/.well-known/jwks.json` on a free loopback port: it publishes the
//! public keys it is given with a chosen `Cache-Control`, can answer another status or any body,
//! can stop, and counts the requests it gets. Runs on the calling tokio runtime.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use latchkey_verify::SigningKey;
use tokio::task::JoinHandle;

/// What the key server answers, and how often it was asked.
struct Published {
    status: Mutex<u16>,
    cache_control: Mutex<String>,
    document: Mutex<String>,
    requests: AtomicUsize,
}

/// Latchkey's `/.well-known/jwks.json`, as far as a verifier can tell.
pub struct KeyServer {
    address: SocketAddr,
    published: Arc<Published>,
    task: Option<JoinHandle<()>>,
}

async fn jwks(State(published): State<Arc<Published>>) -> Response {
    published.requests.fetch_add(1, Ordering::SeqCst);
    let status = StatusCode::from_u16(*published.status.lock().unwrap()).unwrap();
    let cache_control = published.cache_control.lock().unwrap().clone();
    let document = published.document.lock().unwrap().clone();
    (
        status,
        [
            (header::CACHE_CONTROL, cache_control),
            (header::CONTENT_TYPE, "application/json".to_owned()),
        ],
        document,
    )
        .into_response()
}

pub fn document(keys: &[&SigningKey]) -> String {
    let jwks: Vec<_> = keys
        .iter()
        .map(|k| k.verifying_key().to_jwk().unwrap())
        .collect();
    serde_json::json!({ "keys": jwks }).to_string()
}

impl KeyServer {
    pub async fn start(keys: &[&SigningKey], cache_control: &str) -> Self {
        let published = Arc::new(Published {
            status: Mutex::new(200),
            cache_control: Mutex::new(cache_control.to_owned()),
            document: Mutex::new(document(keys)),
            requests: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/.well-known/jwks.json", get(jwks))
            .with_state(published.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        KeyServer {
            address,
            published,
            task: Some(task),
        }
    }

    pub fn uri(&self) -> String {
        format!("http://{}/.well-known/jwks.json", self.address)
    }

    pub fn requests(&self) -> usize {
        self.published.requests.load(Ordering::SeqCst)
    }

    pub fn publish(&self, keys: &[&SigningKey]) {
        *self.published.document.lock().unwrap() = document(keys);
    }

    pub fn publish_raw(&self, body: String) {
        *self.published.document.lock().unwrap() = body;
    }

    pub fn answer_with(&self, status: u16) {
        *self.published.status.lock().unwrap() = status;
    }

    /// Stop listening: from now on a fetch finds no server.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}
