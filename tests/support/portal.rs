//! The sign-in pages as a browser sees them, in process: a [`FormClient`] keeps the cookies it
//! is given and sends them back, fills forms, and reads HTML answers as [`Page`]s with their
//! `Set-Cookie` headers parsed.

use std::collections::BTreeMap;

use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};

use super::service::{header_value, TestApp};

/// A `Set-Cookie` header, parsed: attribute names in lower case (`max-age`, `httponly`, ...),
/// flags with an empty value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub attributes: BTreeMap<String, String>,
}

impl SetCookie {
    pub fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|pair| pair.split_once('='))
            .unwrap_or_else(|| panic!("not a Set-Cookie value: {header:?}"));
        let attributes = parts
            .map(|attribute| match attribute.split_once('=') {
                Some((k, v)) => (k.to_ascii_lowercase(), v.to_owned()),
                None => (attribute.to_ascii_lowercase(), String::new()),
            })
            .collect();
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes,
        }
    }

    /// The attributes as `name=value` (or `name` for a flag), sorted by name.
    pub fn attribute_list(&self) -> Vec<String> {
        self.attributes
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect()
    }
}

/// A whole HTML (or empty) answer.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// A header's value, or "" when it is missing.
    pub fn header(&self, name: &str) -> &str {
        header_value(&self.headers, name)
    }

    /// Assert the status, showing the body when it is another.
    pub fn assert_status(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
    }

    /// Every `Set-Cookie`, parsed.
    pub fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .map(|v| SetCookie::parse(v.to_str().expect("a visible Set-Cookie")))
            .collect()
    }

    /// The `Set-Cookie` of cookie `name`; panics when there is none.
    pub fn set_cookie(&self, name: &str) -> SetCookie {
        self.set_cookies()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no Set-Cookie for {name}: {:?}", self.headers))
    }

    /// The value of the hidden field `name` of the page's form.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no hidden field {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("the value's end") + start;
        self.body[start..end].to_owned()
    }

    /// Assert that the body holds each of `texts`.
    pub fn assert_shows(&self, texts: &[&str]) {
        for text in texts {
            assert!(
                self.body.contains(text),
                "{text:?} is not in:\n{}",
                self.body
            );
        }
    }
}

/// A browser without JavaScript: a cookie jar and forms.
#[derive(Debug, Default)]
pub struct FormClient {
    cookies: BTreeMap<String, String>,
}

impl FormClient {
    pub fn new() -> FormClient {
        FormClient::default()
    }

    /// The value of cookie `name`, as this browser holds it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Hold cookie `name` = `value`, as if some site had set it.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// Forget every cookie.
    pub fn clear_cookies(&mut self) {
        self.cookies.clear();
    }

    /// `GET uri`.
    pub async fn get(&mut self, app: &impl TestApp, uri: &str) -> Page {
        self.send(app, TestRequest::get().uri(uri)).await
    }

    /// `POST uri` with `fields` as `application/x-www-form-urlencoded`.
    pub async fn post(&mut self, app: &impl TestApp, uri: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).expect("form encoding");
        let req = TestRequest::post()
            .uri(uri)
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body);
        self.send(app, req).await
    }

    /// Open the sign-in page (with `rd` when not empty) and sign in with `login` and
    /// `password`, sending the form's `csrf` and `rd` back as a browser would.
    pub async fn sign_in(
        &mut self,
        app: &impl TestApp,
        login: &str,
        password: &str,
        rd: &str,
    ) -> Page {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("rd", rd)
            .finish();
        let form = self.get(app, &format!("/auth/login?{query}")).await;
        form.assert_status(StatusCode::OK);
        let csrf = form.hidden("csrf");
        // The "signed in as" page (a session already) has no sign-in form, hence no rd.
        let rd = if form.body.contains("name=\"rd\"") {
            form.hidden("rd")
        } else {
            String::new()
        };
        let fields = [
            ("username", login),
            ("password", password),
            ("csrf", &csrf),
            ("rd", &rd),
        ];
        self.post(app, "/auth/login", &fields).await
    }

    /// Send `req` with this browser's cookies and keep the cookies of the answer.
    pub async fn send(&mut self, app: &impl TestApp, mut req: TestRequest) -> Page {
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            req = req.insert_header(("Cookie", header.join("; ")));
        }
        let response = test::call_service(app, req.to_request()).await;
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = test::read_body(response).await;
        let page = Page {
            status,
            headers,
            body: String::from_utf8(bytes.to_vec()).expect("a UTF-8 body"),
        };
        for cookie in page.set_cookies() {
            if cookie.attributes.get("max-age").map(String::as_str) == Some("0") {
                self.cookies.remove(&cookie.name);
            } else {
                self.cookies.insert(cookie.name, cookie.value);
            }
        }
        page
    }
}
