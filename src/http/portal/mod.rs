//! The sign-in pages for people (`[portal]`): a form that runs the same login as
//! `/auth/request-token` and keeps the token in a session cookie `/auth/verify` reads.
//!
//! ```text
//! GET  /auth/login?rd=<url>   the form, or "signed in as" when the session cookie is valid
//! POST /auth/login            username, password, csrf, rd: 303 to rd (or to the form) with the
//!                             session cookie; the form again (401), or a refusal page
//! GET  /auth/logout?rd=<url>  a confirm button
//! POST /auth/logout           csrf, rd: the cookie cleared; 303 to rd, or "signed out"
//! GET  /auth/portal.css       the pages' one stylesheet
//! ```
//!
//! Every POST carries a CSRF token bound to the browser (`csrf.rs`); one without a valid token
//! is a 403 page and changes nothing. `rd` is followed only when [`RedirectRule`] allows it.
//! Every page is `no-store`, with a Content-Security-Policy that allows no script and no
//! inline style, `frame-ancestors 'none'`, `Referrer-Policy: no-referrer` and `nosniff`. The
//! routes exist only when `portal.url` is set.

mod csrf;
mod pages;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};
use askama::Template;
use latchkey_verify::{token_in_headers, Claims};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

pub use csrf::{BrowserId, CsrfKey, TOKEN_LIFETIME};

use super::error::{self, ApiError, RETRY_AFTER_SECS};
use super::gate::paths;
use super::redirect::RedirectRule;
use super::request_token::{client_address, issue_for};
use super::sessions::refresh_session;
use super::AppState;
use crate::config::{PortalConfig, TokenConfig};
use crate::credentials::{Login, Password, PasswordError};
use crate::login::LoginAttempt;
use pages::{LoginPage, LogoutPage, MessagePage, SignedInPage, SignedOutPage};

/// The stylesheet, compiled in.
const STYLESHEET: &str = include_str!("portal.css");

/// The largest form body read, in bytes (the gate's `server.max_body_bytes` applies first).
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The portal of one worker: its configuration and what is derived from it once.
#[derive(Debug)]
pub struct Portal {
    pub config: PortalConfig,
    pub rule: RedirectRule,
    csrf: CsrfKey,
    /// The Content-Security-Policy of every page.
    csp: HeaderValue,
    /// The stylesheet's URL, versioned by its content.
    css_url: String,
    /// The name of the cookie that holds the browser id.
    browser_cookie: &'static str,
    /// Where a person lands after signing in without a `rd`: the form, showing who they are.
    login_url: String,
}

impl Portal {
    /// The portal `config` describes, with its CSRF key derived from the token signing key.
    pub fn new(config: &PortalConfig, tokens: &TokenConfig) -> Portal {
        let rule = RedirectRule::new(config);
        let csp = format!(
            "default-src 'none'; style-src 'self'; form-action {}; frame-ancestors 'none'; base-uri 'none'",
            rule.form_action_sources()
        );
        let version: String = Sha256::digest(STYLESHEET.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect();
        let base = config.url.as_str().trim_end_matches('/');
        Portal {
            rule,
            csrf: CsrfKey::derive(&tokens.signing_key.secret_bytes()),
            csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            )),
            css_url: format!("{}?v={version}", paths::PORTAL_CSS),
            // The __Host- prefix makes the browser refuse the cookie from a sibling host or
            // with a Domain: another subdomain cannot plant a browser id of its choosing.
            browser_cookie: if config.cookie_secure {
                "__Host-latchkey_csrf"
            } else {
                "latchkey_csrf"
            },
            login_url: format!("{base}{}", paths::LOGIN),
            config: config.clone(),
        }
    }

    /// The sign-in form's absolute URL (`<portal.url>/auth/login`).
    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    /// `rd` as the URL to follow, when the rule allows it; a refused one is logged.
    fn target(&self, rd: &str) -> Option<Url> {
        if rd.is_empty() {
            return None;
        }
        let allowed = self.rule.allows(rd);
        if allowed.is_none() {
            tracing::warn!(rd = %rd, "ignored a redirect target the portal does not allow");
        }
        allowed
    }

    /// The browser id the request's cookie holds.
    fn browser_of(&self, req: &HttpRequest) -> Option<BrowserId> {
        let cookie = req.headers().get(header::COOKIE).map(HeaderValue::as_bytes);
        token_in_headers(None, cookie, Some(self.browser_cookie))
            .ok()
            .and_then(|id| BrowserId::parse(&id))
    }

    /// The claims of the session cookie the request carries, when it is valid.
    fn session_of(&self, req: &HttpRequest, state: &AppState) -> Option<Claims> {
        let cookie = req.headers().get(header::COOKIE).map(HeaderValue::as_bytes);
        let token = token_in_headers(None, cookie, Some(&self.config.cookie_name)).ok()?;
        state.verifier.verify(&token).ok()
    }

    fn csrf_token(&self, browser: &BrowserId) -> String {
        self.csrf.token(browser, chrono::Utc::now().timestamp())
    }

    /// The request's browser id, when `token` was made for it and is still valid.
    fn csrf_browser(&self, req: &HttpRequest, token: &str) -> Option<BrowserId> {
        let now = chrono::Utc::now().timestamp();
        self.browser_of(req)
            .filter(|browser| self.csrf.check(browser, token, now))
    }

    /// The `Set-Cookie` value that clears the session cookie (same name, domain and path).
    pub fn cleared_session_cookie(&self) -> String {
        self.session_cookie("", 0)
    }

    /// A `Set-Cookie` value for the session cookie: `value` for `max_age` seconds.
    fn session_cookie(&self, value: &str, max_age: u64) -> String {
        let mut cookie = format!("{}={value}; Max-Age={max_age}", self.config.cookie_name);
        if let Some(domain) = &self.config.cookie_domain {
            cookie.push_str(&format!("; Domain={domain}"));
        }
        cookie.push_str("; Path=/");
        if self.config.cookie_secure {
            cookie.push_str("; Secure");
        }
        cookie.push_str("; HttpOnly; SameSite=Lax");
        cookie
    }

    fn browser_cookie(&self, browser: &BrowserId) -> String {
        let secure = if self.config.cookie_secure {
            "; Secure"
        } else {
            ""
        };
        format!(
            "{}={}; Path=/{secure}; HttpOnly; SameSite=Strict",
            self.browser_cookie,
            browser.as_str()
        )
    }

    /// An answer with every page's headers.
    fn answer(&self, status: StatusCode) -> HttpResponseBuilder {
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::CONTENT_SECURITY_POLICY, self.csp.clone()))
            .insert_header((
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ))
            .insert_header((
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")));
        response
    }

    /// A rendered page.
    fn page(&self, status: StatusCode, html: Result<String, askama::Error>) -> HttpResponse {
        match html {
            Ok(html) => self
                .answer(status)
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(e) => {
                tracing::error!(error = %e, "cannot render a sign-in page");
                self.answer(StatusCode::INTERNAL_SERVER_ERROR)
                    .content_type("text/plain; charset=utf-8")
                    .body(
                        "The server failed to answer; its operator will find the cause in the log.",
                    )
            }
        }
    }

    /// The sign-in link of a message page, keeping an allowed `rd`.
    fn back_link(&self, rd: Option<&Url>) -> String {
        match rd {
            Some(rd) => format!(
                "{}?{}",
                paths::LOGIN,
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("rd", rd.as_str())
                    .finish()
            ),
            None => paths::LOGIN.to_owned(),
        }
    }

    /// A page saying why a request was refused.
    fn message(
        &self,
        status: StatusCode,
        title: &str,
        text: &str,
        rd: Option<&Url>,
    ) -> HttpResponse {
        let back = self.back_link(rd);
        self.page(
            status,
            MessagePage {
                css: &self.css_url,
                title,
                text,
                back: &back,
            }
            .render(),
        )
    }

    /// The one place an [`ApiError`] of a login (a [`crate::login::Refusal`], a token that
    /// could not be made, a bad form) becomes a page: bad credentials show the form again,
    /// anything else a page with the status and the sentence the API would answer.
    fn error_page(&self, err: &ApiError, form: &FormContext<'_>) -> HttpResponse {
        use actix_web::ResponseError;
        let status = err.status_code();
        let text = err.to_string();
        match err {
            ApiError::InvalidCredentials | ApiError::MalformedCredentials(_) => {
                self.login_form(status, form.browser, form.login, form.rd, Some(&text))
            }
            _ => {
                let title = match status {
                    StatusCode::FORBIDDEN => "Access denied",
                    StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
                    StatusCode::SERVICE_UNAVAILABLE => "Try again soon",
                    StatusCode::BAD_REQUEST => "Bad request",
                    _ => "Something went wrong",
                };
                let mut response = self.message(status, title, &text, form.rd);
                let retry_after = match err {
                    ApiError::TooManyAttempts { retry_after } => Some(*retry_after),
                    ApiError::DirectoryUnavailable => Some(u64::from(RETRY_AFTER_SECS)),
                    _ => None,
                };
                if let Some(seconds) = retry_after {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }

    /// The sign-in form.
    fn login_form(
        &self,
        status: StatusCode,
        browser: &BrowserId,
        login: &str,
        rd: Option<&Url>,
        error: Option<&str>,
    ) -> HttpResponse {
        let csrf = self.csrf_token(browser);
        self.page(
            status,
            LoginPage {
                css: &self.css_url,
                csrf: &csrf,
                rd: rd.map_or("", Url::as_str),
                login,
                error,
            }
            .render(),
        )
    }

    /// The 400 page for a form body that is not URL encoding or repeats a field.
    fn bad_form(&self) -> HttpResponse {
        self.message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The form is not URL encoding, or repeats a field.",
            None,
        )
    }

    /// The page refusing a POST without a valid CSRF token.
    fn csrf_refused(&self, rd: Option<&Url>) -> HttpResponse {
        tracing::info!("refused a sign-in form without a valid CSRF token");
        self.message(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form has expired or was not sent from this browser. Open the page again and retry.",
            rd,
        )
    }
}

/// What a refusal page needs of the form it answers.
struct FormContext<'a> {
    browser: &'a BrowserId,
    login: &'a str,
    rd: Option<&'a Url>,
}

/// Register the portal's routes, when it is on.
pub fn configure(cfg: &mut web::ServiceConfig, state: &AppState) {
    if state.portal.is_none() {
        return;
    }
    let form_limit = web::PayloadConfig::new(MAX_FORM_BYTES);
    cfg.service(
        web::resource(paths::LOGIN)
            .app_data(form_limit)
            .route(error::get_or_head().to(login_page))
            .route(web::post().to(log_in))
            .default_service(error::method_not_allowed(
                "GET, HEAD, POST",
                "Use GET for the sign-in form and POST to sign in.",
            )),
    )
    // /auth/logout is registered by `http::sessions`, which sends a form POST here.
    .service(
        web::resource(paths::PORTAL_CSS)
            .route(error::get_or_head().to(stylesheet))
            .default_service(error::method_not_allowed(
                "GET, HEAD",
                "Use GET to read the stylesheet.",
            )),
    );
}

/// The `rd` of a query string ("" when there is none or the query is not URL encoding).
fn rd_of_query(query: &str) -> String {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The browser id of the request, or a new one with the cookie that sets it.
fn browser(portal: &Portal, req: &HttpRequest) -> (BrowserId, Option<String>) {
    match portal.browser_of(req) {
        Some(id) => (id, None),
        None => {
            let id = BrowserId::random();
            let cookie = portal.browser_cookie(&id);
            (id, Some(cookie))
        }
    }
}

fn with_cookie(mut response: HttpResponse, cookie: Option<String>) -> HttpResponse {
    if let Some(value) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

#[tracing::instrument(name = "login_page", skip_all)]
async fn login_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(portal) = &state.portal else {
        return error::not_found().await;
    };
    let rd = portal.target(&rd_of_query(req.query_string()));
    let (browser, set_browser) = browser(portal, &req);
    let Some(claims) = portal.session_of(&req, &state) else {
        let response = portal.login_form(StatusCode::OK, &browser, "", rd.as_ref(), None);
        return with_cookie(response, set_browser);
    };
    // A visit renews the session as a refresh would: the entry, groups and [access] read
    // again, auth_time kept.
    let client = client_address(&req, &state);
    let renewed = Box::pin(refresh_session(
        &state,
        &claims,
        client,
        portal.config.session_duration,
    ))
    .await;
    let (shown, session_cookie) = match renewed {
        Ok((issued, identity)) => (
            state.issuer.claims_for(&identity),
            Some(portal.session_cookie(&issued.token, portal.config.session_duration)),
        ),
        // The session has ended (too old, the entry gone or changed, [access] refusing now):
        // the cookie goes, and the person signs in again.
        Err(ApiError::SessionTooOld { .. } | ApiError::SessionEnded | ApiError::Forbidden(_)) => {
            let response = portal.login_form(StatusCode::OK, &browser, "", rd.as_ref(), None);
            let response = with_cookie(response, Some(portal.cleared_session_cookie()));
            return with_cookie(response, set_browser);
        }
        // The directory cannot say now: the session stays as it is, not renewed.
        Err(_) => (claims, None),
    };
    let csrf = portal.csrf_token(&browser);
    let response = portal.page(
        StatusCode::OK,
        SignedInPage {
            css: &portal.css_url,
            csrf: &csrf,
            name: shown.name.as_deref().unwrap_or(&shown.sub),
            login: &shown.sub,
            groups: &shown.groups,
            next: rd.as_ref().map(Url::as_str),
        }
        .render(),
    );
    with_cookie(with_cookie(response, session_cookie), set_browser)
}

/// The sign-in form's fields. No `Debug`: it holds a password.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
    rd: String,
}

/// The sign-out form's fields.
#[derive(Deserialize, Default)]
#[serde(default)]
struct LogoutForm {
    csrf: String,
    rd: String,
}

#[tracing::instrument(name = "login_form", skip_all)]
async fn log_in(req: HttpRequest, body: web::Bytes, state: web::Data<AppState>) -> HttpResponse {
    let Some(portal) = &state.portal else {
        return error::not_found().await;
    };
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return portal.bad_form();
    };
    let LoginForm {
        username,
        password,
        csrf,
        rd,
    } = form;
    let password = Zeroizing::new(password);
    let rd = portal.target(&rd);
    let Some(browser) = portal.csrf_browser(&req, &csrf) else {
        return portal.csrf_refused(rd.as_ref());
    };
    let context = FormContext {
        browser: &browser,
        login: &username,
        rd: rd.as_ref(),
    };
    // Boxed, as in request_token: the login's state machine stays off the handler's future.
    match Box::pin(sign_in(&req, &state, portal, &username, password)).await {
        Ok(token) => {
            let location = rd.as_ref().map_or(portal.login_url.as_str(), Url::as_str);
            let mut response = portal.answer(StatusCode::SEE_OTHER);
            response.insert_header((header::LOCATION, location));
            response.append_header((
                header::SET_COOKIE,
                portal.session_cookie(&token, portal.config.session_duration),
            ));
            response.finish()
        }
        Err(e) => portal.error_page(&e, &context),
    }
}

/// The login of a form, as `/auth/request-token` runs it: the session token, or why not.
async fn sign_in(
    req: &HttpRequest,
    state: &AppState,
    portal: &Portal,
    username: &str,
    password: Zeroizing<String>,
) -> Result<String, ApiError> {
    let malformed = |text: String| ApiError::MalformedCredentials(text);
    let login = Login::parse(username).map_err(|e| malformed(e.to_string()))?;
    let password = match Password::parse(password) {
        Ok(password) => Some(password),
        Err(PasswordError::Empty) => None,
        Err(other) => return Err(malformed(other.to_string())),
    };
    let options = state.logins.rules().options(None, None).map_err(|e| {
        tracing::error!(error = %e, "the configuration allows no default login options");
        ApiError::Internal
    })?;
    let attempt = LoginAttempt::new(&login, client_address(req, state));
    let identity = state.logins.log_in(&attempt, password, &options).await?;
    let issued = issue_for(state, &attempt, &identity, portal.config.session_duration)?;
    Ok(issued.token)
}

#[tracing::instrument(name = "logout_page", skip_all)]
pub(crate) async fn logout_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(portal) = &state.portal else {
        return error::not_found().await;
    };
    let rd = portal.target(&rd_of_query(req.query_string()));
    let (browser, set_browser) = browser(portal, &req);
    let csrf = portal.csrf_token(&browser);
    let response = portal.page(
        StatusCode::OK,
        LogoutPage {
            css: &portal.css_url,
            csrf: &csrf,
            rd: rd.as_ref().map_or("", Url::as_str),
        }
        .render(),
    );
    with_cookie(response, set_browser)
}

/// The sign-out form (`http::sessions` sends a form POST to `/auth/logout` here): with a valid
/// CSRF token, the session token is revoked and its cookie cleared.
pub(crate) async fn log_out(
    req: &HttpRequest,
    body: &[u8],
    state: &AppState,
    portal: &Portal,
) -> HttpResponse {
    let Ok(form) = serde_urlencoded::from_bytes::<LogoutForm>(body) else {
        return portal.bad_form();
    };
    let rd = portal.target(&form.rd);
    if portal.csrf_browser(req, &form.csrf).is_none() {
        return portal.csrf_refused(rd.as_ref());
    }
    if let Some(claims) = portal.session_of(req, state) {
        // The cookie is cleared whatever happens; a failure to record the revocation is the
        // operator's to see.
        match state
            .process
            .revocations
            .revoke_token(&claims.jti, claims.exp)
            .await
        {
            Ok(()) => tracing::info!(
                target: "latchkey::audit",
                sub = %claims.sub,
                jti = %claims.jti,
                client = %client_address(req, state),
                outcome = "revoked",
                "logout"
            ),
            Err(e) => tracing::error!(error = %e, "cannot revoke a session token at sign-out"),
        }
    }
    let clear = portal.cleared_session_cookie();
    let mut response = match &rd {
        Some(rd) => {
            let mut response = portal.answer(StatusCode::SEE_OTHER);
            response.insert_header((header::LOCATION, rd.as_str()));
            response.finish()
        }
        None => portal.page(
            StatusCode::OK,
            SignedOutPage {
                css: &portal.css_url,
            }
            .render(),
        ),
    };
    if let Ok(value) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The stylesheet: its URL changes with its content, so it may be kept for a year.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .content_type("text/css; charset=utf-8")
        .body(STYLESHEET)
}
