//! What every request passes before a handler: the size limits (431 for oversized headers,
//! 413 for a declared body over the limit), and the count of answers by route and status for
//! `/metrics`.
//!
//! One middleware does both, without a boxed future per request, and counts with handles kept
//! per worker: the route label is one of [`ROUTES`] (or `unmatched`), found from the path, so
//! a request costs neither an allocation nor a lock here.

use std::cell::RefCell;
use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header;
use actix_web::{Error, ResponseError};
use pin_project_lite::pin_project;
use prometheus_client::metrics::counter::Counter;

use super::ApiError;
use crate::metrics::Metrics;

/// The path of every route the service answers; each module registers its routes with these.
pub mod paths {
    pub const REQUEST_TOKEN: &str = "/auth/request-token";
    pub const VERIFY: &str = "/auth/verify";
    pub const TOKEN_INFO: &str = "/auth/token-info";
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";
    pub const METRICS: &str = "/metrics";
    pub const LOGIN: &str = "/auth/login";
    pub const LOGOUT: &str = "/auth/logout";
    pub const PORTAL_CSS: &str = "/auth/portal.css";
    pub const JWKS: &str = "/.well-known/jwks.json";
    pub const DISCOVERY: &str = "/.well-known/latchkey";
    pub const REFRESH: &str = "/auth/refresh";
    pub const REVOKE: &str = "/auth/revoke";
}

/// Every route, as `latchkey_http_requests_total` labels them. A path that is none of these is
/// counted as `unmatched`.
pub const ROUTES: [&str; 13] = [
    paths::REQUEST_TOKEN,
    paths::VERIFY,
    paths::TOKEN_INFO,
    paths::HEALTHZ,
    paths::READYZ,
    paths::METRICS,
    paths::LOGIN,
    paths::LOGOUT,
    paths::PORTAL_CSS,
    paths::JWKS,
    paths::DISCOVERY,
    paths::REFRESH,
    paths::REVOKE,
];

const UNMATCHED: &str = "unmatched";

/// The index in [`ROUTES`] of the route answering `path`, or `ROUTES.len()` for `unmatched`.
fn route_index(path: &str) -> usize {
    ROUTES
        .iter()
        .position(|route| *route == path)
        .unwrap_or(ROUTES.len())
}

/// The middleware; see the module documentation.
pub struct Gate {
    max_header_bytes: usize,
    max_body_bytes: u64,
    metrics: Arc<Metrics>,
}

impl Gate {
    pub fn new(max_header_bytes: usize, max_body_bytes: u64, metrics: Arc<Metrics>) -> Gate {
        Gate {
            max_header_bytes,
            max_body_bytes,
            metrics,
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Gate
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = GateService<S>;
    type InitError = ();
    type Future = Ready<Result<GateService<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GateService {
            service,
            max_header_bytes: self.max_header_bytes,
            max_body_bytes: self.max_body_bytes,
            counters: Rc::new(Counters::new(Arc::clone(&self.metrics))),
        }))
    }
}

pub struct GateService<S> {
    service: S,
    max_header_bytes: usize,
    max_body_bytes: u64,
    counters: Rc<Counters>,
}

impl<S> GateService<S> {
    /// Why `req` is refused before any handler runs, if it is.
    fn refusal(&self, req: &ServiceRequest) -> Option<ApiError> {
        let header_bytes: usize = req.path().len()
            + req.query_string().len()
            + req
                .headers()
                .iter()
                .map(|(name, value)| name.as_str().len() + value.len() + 4)
                .sum::<usize>();
        if header_bytes > self.max_header_bytes {
            return Some(ApiError::HeadersTooLarge(self.max_header_bytes));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_body_bytes) {
            return Some(ApiError::BodyTooLarge(self.max_body_bytes));
        }
        None
    }
}

impl<S, B> Service<ServiceRequest> for GateService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = GateFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let route = route_index(req.path());
        if let Some(refusal) = self.refusal(&req) {
            let response = req
                .into_response(refusal.error_response())
                .map_into_right_body();
            self.counters.count(route, response.status().as_u16());
            return GateFuture::Refused {
                response: ready(Ok(response)),
            };
        }
        GateFuture::Passed {
            inner: self.service.call(req),
            route,
            counters: Rc::clone(&self.counters),
        }
    }
}

pin_project! {
    /// The answer of [`GateService`]: the handler's, counted when it is ready, or a refusal.
    #[project = GateProjection]
    pub enum GateFuture<F, B> {
        Passed { #[pin] inner: F, route: usize, counters: Rc<Counters> },
        Refused { response: Ready<Result<ServiceResponse<EitherBody<B>>, Error>> },
    }
}

impl<F, B> Future for GateFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GateProjection::Passed {
                inner,
                route,
                counters,
            } => match inner.poll(cx) {
                Poll::Ready(Ok(response)) => {
                    counters.count(*route, response.status().as_u16());
                    Poll::Ready(Ok(response.map_into_left_body()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            },
            GateProjection::Refused { response } => Pin::new(response).poll(cx),
        }
    }
}

/// One worker's handles on the request counters: per route, the statuses seen so far with
/// their counters (a handle shares its count with the registry).
pub struct Counters {
    metrics: Arc<Metrics>,
    seen: RefCell<Vec<Vec<(u16, Counter)>>>,
}

impl Counters {
    fn new(metrics: Arc<Metrics>) -> Counters {
        Counters {
            metrics,
            seen: RefCell::new(vec![Vec::new(); ROUTES.len() + 1]),
        }
    }

    fn count(&self, route: usize, status: u16) {
        let mut seen = self.seen.borrow_mut();
        let Some(statuses) = seen.get_mut(route) else {
            return;
        };
        if let Some((_, counter)) = statuses.iter().find(|(s, _)| *s == status) {
            counter.inc();
            return;
        }
        let label = ROUTES.get(route).copied().unwrap_or(UNMATCHED);
        let counter = self.metrics.http_requests(label, status);
        counter.inc();
        statuses.push((status, counter));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_by_their_exact_path() {
        assert_eq!(route_index("/auth/verify"), 1);
        assert_eq!(route_index("/metrics"), 5);
        for other in [
            "/auth/verify/",
            "/auth",
            "/",
            "/healthz/x",
            "/AUTH/verify",
            "",
        ] {
            assert_eq!(route_index(other), ROUTES.len(), "{other}");
        }
    }

    #[test]
    fn counts_reach_the_registry_through_cached_handles() {
        let metrics = Arc::new(Metrics::new());
        let counters = Counters::new(Arc::clone(&metrics));
        counters.count(route_index("/healthz"), 200);
        counters.count(route_index("/healthz"), 200);
        counters.count(route_index("/healthz"), 503);
        counters.count(route_index("/nope"), 404);
        let text = metrics.render(|_| {});
        for line in [
            "latchkey_http_requests_total{route=\"/healthz\",status=\"200\"} 2",
            "latchkey_http_requests_total{route=\"/healthz\",status=\"503\"} 1",
            "latchkey_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
    }
}
