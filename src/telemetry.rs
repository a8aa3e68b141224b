//! Logging. Human-readable lines by default, JSON by configuration; `RUST_LOG` overrides the
//! configured level. Nothing here may ever record a password or a token: handlers and
//! directory calls are instrumented with `skip_all` and name the fields they record.

use std::io::IsTerminal;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Install the global subscriber. Logs go to standard error.
pub fn init(log: &LogSettings) -> Result<(), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(&env)
            .map_err(|e| format!("RUST_LOG = {env:?} is not a valid filter: {e}"))?,
        _ => EnvFilter::try_new(&log.level)
            .map_err(|e| format!("log.level = {:?} is not a valid filter: {e}", log.level))?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// tracing-actix-web's request span, built only when something can record it. The default
/// builder reads the connection info, user agent and route for the span's fields before the
/// subscriber is asked; with the log at `warn` (the benchmarks', and many deployments') that
/// is work for nothing on every request.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        if tracing::level_enabled!(tracing::Level::INFO) {
            DefaultRootSpanBuilder::on_request_start(request)
        } else {
            Span::none()
        }
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
