//! The JSON body of every refusal, from Latchkey and from this crate's middleware alike.

use serde::Serialize;

/// What a refused request gets as its body: `{"error": "<code>", "message": "<sentence>",
/// "status": <int>}`, in that order. `error` is a stable code for programs, `message` a
/// sentence for people, `status` the HTTP status repeated for clients that only keep the body.
///
/// ```
/// let body = latchkey_verify::ErrorBody::new("forbidden", "Not for you.", 403);
/// assert_eq!(
///     serde_json::to_string(&body)?,
///     r#"{"error":"forbidden","message":"Not for you.","status":403}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorBody<'a> {
    /// The machine-readable code (`invalid_token`, `forbidden`, ...).
    pub error: &'a str,
    /// What went wrong, for a person.
    pub message: String,
    /// The HTTP status of the answer.
    pub status: u16,
}

impl<'a> ErrorBody<'a> {
    /// The body for an answer with `status`, code `error` and `message`.
    pub fn new(error: &'a str, message: impl Into<String>, status: u16) -> Self {
        ErrorBody {
            error,
            message: message.into(),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_are_written_in_order_and_escaped() {
        let body = ErrorBody::new("invalid_token", "A \"quoted\"\nline.", 401);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"invalid_token","message":"A \"quoted\"\nline.","status":401}"#
        );
    }
}
