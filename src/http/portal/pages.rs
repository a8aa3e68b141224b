//! The pages, as askama templates (`templates/`, compiled in; HTML escaped by default). Each
//! page extends `base.html`, which links the one stylesheet at `css`.

use askama::Template;

/// The sign-in form; `error` is the one message after a refused attempt, tied to the fields.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub css: &'a str,
    pub csrf: &'a str,
    pub rd: &'a str,
    pub login: &'a str,
    pub error: Option<&'a str>,
}

/// "Signed in as": who the session cookie names, their groups, and a sign-out button.
#[derive(Template)]
#[template(path = "signed_in.html")]
pub struct SignedInPage<'a> {
    pub css: &'a str,
    pub csrf: &'a str,
    pub name: &'a str,
    pub login: &'a str,
    pub groups: &'a [String],
    /// An allowed `rd`, offered as a link.
    pub next: Option<&'a str>,
}

/// The sign-out confirmation.
#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub css: &'a str,
    pub csrf: &'a str,
    pub rd: &'a str,
}

/// "Signed out".
#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutPage<'a> {
    pub css: &'a str,
}

/// A refusal: its title, the sentence and a link back to the form.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub css: &'a str,
    pub title: &'a str,
    pub text: &'a str,
    pub back: &'a str,
}
