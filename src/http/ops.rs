//! Endpoints for operators: `GET /readyz` and `GET /metrics`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, ContentType, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};

use super::error::{get_or_head, method_not_allowed};
use super::gate::paths;
use super::AppState;
use crate::config::DirectoryConfig;
use crate::directory;
use crate::metrics::{GaugeReadings, CONTENT_TYPE};
use crate::state::SharedStore;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(paths::READYZ)
            .route(get_or_head().to(readyz))
            .default_service(method_not_allowed(
                "GET, HEAD",
                "Use GET to ask whether the directory can be reached.",
            )),
    )
    .service(
        web::resource(paths::METRICS)
            .route(get_or_head().to(metrics))
            .default_service(method_not_allowed(
                "GET, HEAD",
                "Use GET to read the metrics.",
            )),
    );
}

/// How long one readiness answer is reused, so that a flood of probes cannot become a flood
/// of directory connections.
const READY_CACHE: Duration = Duration::from_secs(1);

/// What `/readyz` needs, shared by all workers.
pub struct Readiness {
    directory: DirectoryConfig,
    last: Mutex<Option<(Instant, Answer)>>,
    /// Held while a probe runs: one probe at a time across all workers, and whoever waited
    /// for it takes its answer from `last`.
    probing: tokio::sync::Mutex<()>,
}

impl Readiness {
    pub fn new(directory: &DirectoryConfig) -> Readiness {
        Readiness {
            directory: directory.clone(),
            last: Mutex::new(None),
            probing: tokio::sync::Mutex::new(()),
        }
    }

    /// The last answer, if it is younger than [`READY_CACHE`].
    fn cached(&self) -> Option<Answer> {
        self.last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .filter(|(at, _)| at.elapsed() < READY_CACHE)
            .map(|(_, ready)| ready)
    }

    /// The cached answer, or a new probe's. Requests arriving while a probe runs wait for it
    /// and share its answer, so concurrent requests never start a second probe. With a shared
    /// store, it is PINGed at the same time as the directory is probed.
    async fn check(&self, store: Option<&SharedStore>) -> Answer {
        if let Some(ready) = self.cached() {
            return ready;
        }
        let _probing = self.probing.lock().await;
        // A probe that ran while this request waited has left its answer.
        if let Some(ready) = self.cached() {
            return ready;
        }
        let ping = async {
            match store {
                Some(store) => store.ping().await.map(|_| ()),
                None => Ok(()),
            }
        };
        let (servers, store_answer) =
            futures_util::future::join(directory::server_health(&self.directory), ping).await;
        if let Err(e) = &store_answer {
            // The change of state is logged once by the store's health; this is the probe's.
            tracing::debug!(error = %e, "readiness probe: the shared state store is down");
        }
        for server in servers.iter().filter(|s| s.status != "up") {
            tracing::warn!(
                url = %server.url,
                error = server.error.as_deref().unwrap_or(""),
                "readiness probe: directory server is down"
            );
        }
        let ready = match (servers.iter().any(|s| s.status == "up"), store_answer) {
            (false, _) => Answer::Unavailable,
            (true, Ok(())) => Answer::Ready,
            (true, Err(_)) => Answer::Degraded,
        };
        *self
            .last
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((Instant::now(), ready));
        ready
    }
}

/// The readiness answer. Callers are not authenticated, so it says nothing about the servers
/// (their URLs and errors go to the log, and `latchkey check` prints them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// At least one server gave a connection (and the service bind, when configured), and the
    /// shared store, if any, answered.
    Ready,
    /// The directory answers but the shared store does not: logins work, counted by this
    /// replica alone. Still 200, since every replica shares the one store: answering 503 would
    /// take them all out of the load balancer at once for an outage logins survive.
    Degraded,
    Unavailable,
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (status, body) = match state.process.readiness.check(state.store.as_ref()).await {
        Answer::Ready => (StatusCode::OK, r#"{"status":"ready"}"#),
        Answer::Degraded => (StatusCode::OK, r#"{"status":"degraded"}"#),
        Answer::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"unavailable"}"#,
        ),
    };
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type(ContentType::json())
        .body(body)
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let shared = &state.process;
    let text = shared.metrics.render(|g: &mut GaugeReadings| {
        shared.directory.read_pools(g);
        g.bans_active = shared.throttle.active_bans(Instant::now());
        g.revocations = shared.revocations.len();
        (g.revocations_synced, g.revocations_sync_age) = shared.revocations.sync_status();
    });
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type(CONTENT_TYPE)
        .body(text)
}
