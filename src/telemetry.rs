//! Logging. Human-readable lines by default, JSON by configuration; `RUST_LOG` overrides the
//! configured level. Nothing here may ever record a password or a token: handlers and
//! directory calls are instrumented with `skip_all` and name the fields they record.
//!
//! Logged values often come from clients (a login, a user agent, a path), so no value may pass
//! for anything else in a line: the text format writes a field's value bare only when it is
//! plain visible ASCII with no `"` or `=`, and any other as a quoted, escaped string
//! ([`QuotedFields`]); the JSON format escapes by nature. The request span is the HTTP
//! layer's (`http::span`): nothing here knows of requests.

use std::fmt;
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;
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
        LogFormat::Text => builder.fmt_fields(QuotedFields).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// The text format's field formatter: `name=value`, separated by spaces, like
/// tracing-subscriber's default, but a value is written bare only when nothing in it could pass
/// for a separator, a quote, another field or a new line; any other value is written quoted and
/// escaped as a Rust string literal (`login="x outcome=issued"`, `"a\nb"`), also one that is
/// quoted already (a `Debug` string comes out as `"\"text\""`). A value recorded as a string is
/// always quoted, as the default does. The event's message is written as it is, with
/// its control characters escaped.
pub struct QuotedFields;

impl<'a> MakeVisitor<Writer<'a>> for QuotedFields {
    type Visitor = QuotedVisitor<'a>;

    fn make_visitor(&self, writer: Writer<'a>) -> QuotedVisitor<'a> {
        QuotedVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

/// Writes one event's or span's fields for [`QuotedFields`].
pub struct QuotedVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

/// Whether `text` may stand in a line unquoted: visible ASCII only, and no `"` or `=`.
fn is_bare(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'=')
}

/// The name `field` is written under; `None` for fields that are not written.
fn field_name(field: &Field) -> Option<&'static str> {
    let name = field.name();
    if name.starts_with("log.") {
        // The `log` crate's metadata, which the line shows already.
        return None;
    }
    Some(name.strip_prefix("r#").unwrap_or(name))
}

impl QuotedVisitor<'_> {
    fn write(&mut self, field: &Field, value: Value<'_>) {
        if self.result.is_err() {
            return;
        }
        let Some(name) = field_name(field) else {
            return;
        };
        self.result = self.write_field(name, value);
        self.first = false;
    }

    fn write_field(&mut self, name: &str, value: Value<'_>) -> fmt::Result {
        if !self.first {
            self.writer.write_char(' ')?;
        }
        if name == "message" {
            let text = match value {
                Value::Str(text) => std::borrow::Cow::Borrowed(text),
                Value::Debug(value) => std::borrow::Cow::Owned(format!("{value:?}")),
            };
            for c in text.chars() {
                if c.is_control() {
                    write!(self.writer, "{}", c.escape_debug())?;
                } else {
                    self.writer.write_char(c)?;
                }
            }
            return Ok(());
        }
        match value {
            Value::Str(text) => write!(self.writer, "{name}={text:?}"),
            Value::Debug(value) => {
                let text = format!("{value:?}");
                if is_bare(&text) {
                    write!(self.writer, "{name}={text}")
                } else {
                    write!(self.writer, "{name}={text:?}")
                }
            }
        }
    }
}

/// A field's value as the visitor is given it.
enum Value<'v> {
    Str(&'v str),
    Debug(&'v dyn fmt::Debug),
}

impl Visit for QuotedVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, Value::Str(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, Value::Debug(value));
    }
}

impl VisitOutput<fmt::Result> for QuotedVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for QuotedVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What `log` writes through a text subscriber with [`QuotedFields`], without the time.
    fn logged(log: impl FnOnce()) -> String {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(QuotedFields)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = buffer.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn logging_imports_nothing_of_the_http_layer() {
        // Built from parts, so that this test's own text does not match.
        let source = include_str!("telemetry.rs");
        for upward in [["crate", "::http"].concat(), ["super", "::http"].concat()] {
            assert_eq!(source.find(&upward), None, "{upward}");
        }
    }

    #[test]
    fn a_value_that_looks_like_fields_is_one_quoted_value() {
        let login = "x outcome=issued sub=admin";
        let line = logged(|| {
            tracing::info!(login = %login, client = %"127.0.0.1", outcome = "refused", "login");
        });
        assert_eq!(
            line,
            " INFO login login=\"x outcome=issued sub=admin\" client=127.0.0.1 outcome=\"refused\"\n"
        );
    }

    #[test]
    fn no_value_can_start_a_line_or_close_a_quote() {
        let line = logged(|| {
            tracing::info!(
                login = %"a\n INFO login login=root outcome=\"issued\"",
                agent = %"\"quoted\"",
                empty = %"",
                tab = %"a\tb",
                text = "plain",
                error = %std::io::Error::other("no\rway"),
                "the account is {}",
                "locked\nINFO forged"
            );
        });
        assert_eq!(
            line,
            " INFO the account is locked\\nINFO forged login=\"a\\n INFO login login=root outcome=\\\"issued\\\"\" \
             agent=\"\\\"quoted\\\"\" empty=\"\" tab=\"a\\tb\" text=\"plain\" error=\"no\\rway\"\n"
        );
        assert_eq!(line.lines().count(), 1);
    }

    #[test]
    fn plain_values_stay_bare() {
        let line = logged(|| {
            tracing::info!(
                client = %"2001:db8::1",
                elapsed_ms = 12u64,
                ok = true,
                target = %"/auth/verify?group=a",
                path = ?std::path::Path::new("/etc/latchkey.toml"),
                "done"
            );
        });
        assert_eq!(
            line,
            " INFO done client=2001:db8::1 elapsed_ms=12 ok=true \
             target=\"/auth/verify?group=a\" path=\"\\\"/etc/latchkey.toml\\\"\"\n"
        );
    }

    #[test]
    fn span_fields_are_quoted_too() {
        let line = logged(|| {
            let span = tracing::info_span!("HTTP request", http.user_agent = %"curl/8 x=1");
            let _entered = span.enter();
            tracing::info!("inside");
        });
        assert_eq!(
            line,
            " INFO HTTP request{http.user_agent=\"curl/8 x=1\"}: inside\n"
        );
    }
}
