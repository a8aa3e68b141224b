//! Endpoints for operators: `GET /readyz` and `GET /metrics`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::gate::paths;
use super::AppState;
use crate::config::DirectoryConfig;
use crate::directory::{self, ServerHealth};
use crate::metrics::{GaugeReadings, CONTENT_TYPE};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(paths::READYZ, web::get().to(readyz))
        .route(paths::METRICS, web::get().to(metrics));
}

/// How long one readiness answer is reused, so that a flood of probes cannot become a flood
/// of directory connections.
const READY_CACHE: Duration = Duration::from_secs(1);

/// What `/readyz` needs, shared by all workers.
pub struct Readiness {
    directory: DirectoryConfig,
    last: Mutex<Option<(Instant, ReadyBody)>>,
}

impl Readiness {
    pub fn new(directory: &DirectoryConfig) -> Readiness {
        Readiness {
            directory: directory.clone(),
            last: Mutex::new(None),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct ReadyBody {
    /// `ready` when at least one server gave a connection.
    status: &'static str,
    servers: Vec<ServerHealth>,
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let readiness = &state.shared.readiness;
    let cached = readiness
        .last
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .as_ref()
        .filter(|(at, _)| at.elapsed() < READY_CACHE)
        .map(|(_, body)| body.clone());
    let body = match cached {
        Some(body) => body,
        None => {
            let servers = directory::server_health(&readiness.directory).await;
            let ready = servers.iter().any(|s| s.status == "up");
            let body = ReadyBody {
                status: if ready { "ready" } else { "unavailable" },
                servers,
            };
            *readiness
                .last
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                Some((Instant::now(), body.clone()));
            body
        }
    };
    let status = if body.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .json(body)
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let shared = &state.shared;
    let text = shared.metrics.render(|g: &mut GaugeReadings| {
        shared.directory.read_pools(g);
        g.bans_active = shared.throttle.active_bans(Instant::now());
    });
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type(CONTENT_TYPE)
        .body(text)
}
