//! The span of every request (tracing-actix-web's root span), built here in the HTTP layer
//! because it names the client by the address `server.trusted_proxies` vouches for
//! (`request_token::client_address`), and the host and scheme by what the request itself
//! says unless such a proxy relayed it: never by a header anyone can send. Logging itself (`telemetry`) knows
//! nothing of requests.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::{web, HttpMessage};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use super::request_token::client_address;
use super::AppState;

/// tracing-actix-web's request span, built only when something can record it. The default
/// builder reads the connection info, user agent and route for the span's fields before the
/// subscriber is asked; with the log at `warn` (the benchmarks', and many deployments') that
/// is work for nothing on every request.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    /// The fields of tracing-actix-web's span, but `http.client_ip` is the client as
    /// `server.trusted_proxies` has it (the address the audit line and the brute-force
    /// protection use): tracing-actix-web's own believes `Forwarded` and `X-Forwarded-For` from
    /// anyone.
    fn on_request_start(request: &ServiceRequest) -> Span {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return Span::none();
        }
        let client = match request.app_data::<web::Data<AppState>>() {
            Some(state) => client_address(request.request(), state).to_string(),
            None => request
                .peer_addr()
                .map(|peer| peer.ip().to_string())
                .unwrap_or_default(),
        };
        let route = request.match_pattern();
        let route = route.as_deref().unwrap_or("default");
        let method = request.method().as_str();
        let user_agent = request
            .headers()
            .get(header::USER_AGENT)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        let request_id = request.extensions().get::<RequestId>().copied();
        let (scheme, host) = scheme_and_host(request);
        tracing::info_span!(
            "HTTP request",
            http.method = %method,
            http.route = %route,
            http.flavor = %flavor(request.version()),
            http.scheme = %scheme,
            http.host = %host,
            http.client_ip = %client,
            http.user_agent = %user_agent.as_deref().unwrap_or(""),
            http.target = %request.uri().path_and_query().map_or("", |p| p.as_str()),
            http.status_code = tracing::field::Empty,
            otel.name = %format!("{method} {route}"),
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            request_id = request_id.map(tracing::field::display),
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        if !span.is_disabled() {
            DefaultRootSpanBuilder::on_request_end(span, outcome);
        }
    }
}

/// The request's scheme and host: what `X-Forwarded-Proto`/`-Host` (or `Forwarded`) say only
/// when one of `server.trusted_proxies` relayed the request (actix's connection info believes
/// them from anyone); otherwise this connection's own scheme and the `Host` header.
fn scheme_and_host(request: &ServiceRequest) -> (String, String) {
    let relayed = request
        .app_data::<web::Data<AppState>>()
        .zip(request.peer_addr())
        .is_some_and(|(state, peer)| state.process.proxies.contains(peer.ip()));
    if relayed {
        let connection = request.connection_info();
        return (connection.scheme().to_owned(), connection.host().to_owned());
    }
    let config = request.app_config();
    let scheme = if config.secure() { "https" } else { "http" };
    let host = request.headers().get(header::HOST).map_or_else(
        || config.host().to_owned(),
        |h| String::from_utf8_lossy(h.as_bytes()).into_owned(),
    );
    (scheme.to_owned(), host)
}

/// HTTP versions as tracing-actix-web's span writes them.
fn flavor(version: actix_web::http::Version) -> &'static str {
    use actix_web::http::Version;
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2.0",
        Version::HTTP_3 => "3.0",
        _ => "other",
    }
}
