//! `GET /healthz`: the process is alive and serving. No I/O.

use actix_web::http::header::{ContentType, HeaderValue, CACHE_CONTROL};
use actix_web::{web, HttpResponse};

use super::gate::paths;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(paths::HEALTHZ, web::get().to(healthz));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}
