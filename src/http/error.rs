//! Where the service's own errors become HTTP answers (a refused token is rendered by
//! `latchkey_verify::actix::Rejection`, with the same body).
//!
//! Every error has the body `{"error": "<code>", "message": "<sentence>", "status": <int>}`
//! ([`ErrorBody`], the one renderer, shared with the verifier crate),
//! `Content-Type: application/json` and `Cache-Control: no-store`. A 401 carries
//! `WWW-Authenticate: Basic` so that curl and httpie prompt; a 503 and a 429 carry
//! `Retry-After`.
//!
//! A token that would be too large for its verifiers is a 500 (`token_too_large`), not a 4xx:
//! the configuration puts too many groups into tokens, the client cannot change that by asking
//! differently, and retrying does not help either (so not 503). Its own code tells it apart from
//! `internal_error` and its message sends the user to the operator.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use latchkey_verify::ErrorBody;

use crate::login::{RefreshRefusal, Refusal};
use crate::revocation::RevocationError;
use crate::tokens::TokenError;

/// Seconds a client is asked to wait before retrying when the directory is down.
pub const RETRY_AFTER_SECS: u32 = 5;

/// An answer other than success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Send your directory login and password with HTTP Basic authentication.")]
    MissingCredentials,
    #[error("{0}")]
    MalformedCredentials(String),
    #[error("The login or password is wrong.")]
    InvalidCredentials,
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Too many failed logins; try again in {retry_after} seconds.")]
    TooManyAttempts { retry_after: u64 },
    #[error("The request's headers are larger than the {0} bytes this server accepts.")]
    HeadersTooLarge(usize),
    #[error("The request's body is larger than the {0} bytes this server accepts.")]
    BodyTooLarge(u64),
    #[error("The directory cannot be reached right now; try again in a few seconds.")]
    DirectoryUnavailable,
    #[error("The server failed to answer; its operator will find the cause in the log.")]
    Internal,
    #[error("Your token would be larger than the {0} bytes the services checking it accept, because of how many groups it would carry. Only this server's configuration can change that: contact its operator.")]
    TokenTooLarge(usize),
    #[error("There is nothing at this path.")]
    NotFound,
    /// `/.well-known/jwks.json` with HMAC keys only.
    #[error("This server signs tokens with a shared secret ({0}), which is never published: it has no public keys. Verify its tokens with the secret, or ask its operator to switch to EdDSA or ES256 keys.")]
    NoPublicKeys(latchkey_verify::Algorithm),
    #[error("{message}")]
    MethodNotAllowed {
        allow: &'static str,
        message: String,
    },
    #[error("You signed in with your password more than {} ago (tokens.max_session); sign in again.", humantime::format_duration(std::time::Duration::from_secs(*max_session)))]
    SessionTooOld { max_session: u64 },
    #[error("This session cannot be renewed without your password; sign in again.")]
    SessionEnded,
    #[error("The revocation holds on this server but could not be shared with the others; try again in a few seconds.")]
    RevocationsUnavailable,
}

impl ApiError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingCredentials => "missing_credentials",
            ApiError::MalformedCredentials(_) => "malformed_credentials",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidParameter(_) => "invalid_parameter",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::HeadersTooLarge(_) => "headers_too_large",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::DirectoryUnavailable => "directory_unavailable",
            ApiError::Internal => "internal_error",
            ApiError::TokenTooLarge(_) => "token_too_large",
            ApiError::NotFound => "not_found",
            ApiError::NoPublicKeys(_) => "no_public_keys",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::SessionTooOld { .. } => "session_too_old",
            ApiError::SessionEnded => "session_ended",
            ApiError::RevocationsUnavailable => "revocations_unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingCredentials
            | ApiError::InvalidCredentials
            | ApiError::SessionTooOld { .. }
            | ApiError::SessionEnded => StatusCode::UNAUTHORIZED,
            ApiError::MalformedCredentials(_) | ApiError::InvalidParameter(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::DirectoryUnavailable | ApiError::RevocationsUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Internal | ApiError::TokenTooLarge(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::NotFound | ApiError::NoPublicKeys(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        match self {
            ApiError::MissingCredentials | ApiError::InvalidCredentials => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Basic realm="latchkey", charset="UTF-8""#),
                ));
            }
            ApiError::SessionTooOld { .. } | ApiError::SessionEnded => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(r#"Bearer realm="latchkey", error="invalid_token""#),
                ));
            }
            ApiError::DirectoryUnavailable | ApiError::RevocationsUnavailable => {
                response.insert_header((header::RETRY_AFTER, RETRY_AFTER_SECS));
            }
            ApiError::TooManyAttempts { retry_after } => {
                response.insert_header((header::RETRY_AFTER, *retry_after));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
            }
            _ => {}
        }
        response.json(ErrorBody::new(
            self.code(),
            self.to_string(),
            status.as_u16(),
        ))
    }
}

impl From<Refusal> for ApiError {
    /// The answer to a refused login: every way of getting the credentials wrong is one 401.
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Banned { retry_after, .. } => ApiError::TooManyAttempts { retry_after },
            // The attempts in flight did not settle in time; they may yet end in a ban.
            Refusal::Busy => ApiError::TooManyAttempts { retry_after: 1 },
            Refusal::EmptyPassword
            | Refusal::UnknownUser
            | Refusal::InvalidCredentials
            | Refusal::AccountDisabled(_) => ApiError::InvalidCredentials,
            Refusal::NotRequired { .. } | Refusal::Denied { .. } => ApiError::Forbidden(
                "Your groups do not allow you a token from this service.".into(),
            ),
            Refusal::DirectoryUnavailable(_) => ApiError::DirectoryUnavailable,
            Refusal::DirectoryMisconfigured(_) => ApiError::Internal,
        }
    }
}

impl From<RefreshRefusal> for ApiError {
    /// The answer to a refused refresh: the session's end is one 401 whatever its cause (the
    /// audit line has it), as bad credentials are for a login.
    fn from(refusal: RefreshRefusal) -> Self {
        match refusal {
            RefreshRefusal::SessionTooOld { max_session } => {
                ApiError::SessionTooOld { max_session }
            }
            RefreshRefusal::Ended(_) => ApiError::SessionEnded,
            RefreshRefusal::Refused(refusal) => ApiError::from(refusal),
        }
    }
}

impl From<RevocationError> for ApiError {
    fn from(e: RevocationError) -> Self {
        tracing::error!(error = %e, "cannot record a revocation");
        ApiError::RevocationsUnavailable
    }
}

impl From<TokenError> for ApiError {
    /// What the client is told when no token could be made (the log says more).
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::TooLarge { limit, .. } => ApiError::TokenTooLarge(limit),
            TokenError::Signing(_) | TokenError::Duration(_) => ApiError::Internal,
        }
    }
}

/// A route for GET and HEAD: what a page or a probe that changes nothing answers. actix
/// leaves the body out of a HEAD answer and keeps its headers (`Content-Length` included).
pub fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    actix_web::web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

/// The handler for the methods a resource does not serve: 405 with `Allow: <allow>`.
pub fn method_not_allowed(allow: &'static str, message: &'static str) -> actix_web::Route {
    actix_web::web::to(move || async move {
        ApiError::MethodNotAllowed {
            allow,
            message: message.to_owned(),
        }
        .error_response()
    })
}

/// The answer for paths that do not exist.
pub async fn not_found() -> HttpResponse {
    ApiError::NotFound.error_response()
}
