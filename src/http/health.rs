//! `GET /healthz`: the process is alive and serving. No I/O.

use actix_web::http::header::{ContentType, HeaderValue, CACHE_CONTROL};
use actix_web::{web, HttpResponse};

use super::error::{get_or_head, method_not_allowed};
use super::gate::paths;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(paths::HEALTHZ)
            .route(get_or_head().to(healthz))
            .default_service(method_not_allowed(
                "GET, HEAD",
                "Use GET to ask whether the service is alive.",
            )),
    );
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .content_type(ContentType::json())
        .body(r#"{"status":"ok"}"#)
}
