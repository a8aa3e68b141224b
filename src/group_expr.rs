//! Group expressions: boolean expressions over group names.
//!
//! Operators write them in the config (`[access]` and `[claims.flags]`, checked
//! when a token is issued) and proxies in `/auth/verify?require=` (checked
//! against a token's groups), for example `staff & (admins | ops) & !contractors`.
//! An expression is parsed once into an [`Expr`] and then evaluated against a
//! [`GroupSet`]. This module does no I/O and imports nothing of the crate.
//!
//! Grammar, lowest precedence first:
//!
//! ```text
//! or      = and { "|" and }
//! and     = unary { "&" unary }
//! unary   = { "!" } primary
//! primary = name | "(" or ")"
//! name    = bare | quoted
//! ```
//!
//! A bare name is a run of characters that are neither whitespace nor one of
//! `& | ! ( ) "`. A quoted name is enclosed in double quotes, where `\"`
//! stands for a quote and `\\` for a backslash. Whitespace between tokens is
//! ignored. Group names are compared the way LDAP compares `cn` values; see
//! [`fold`].

use std::collections::HashSet;
use std::fmt::{self, Write as _};

/// Longest accepted expression, in bytes.
const MAX_LEN: usize = 4096;

/// Deepest accepted nesting; every `(` and every `!` counts as one level.
const MAX_DEPTH: usize = 64;

/// Characters that end a bare group name (besides whitespace).
const SPECIAL: [char; 6] = ['&', '|', '!', '(', ')', '"'];

/// The key under which a group name is compared: the verifier crate's, so that tokens are
/// checked by the rule that issued them.
pub use latchkey_verify::fold_group as fold;

/// The set of groups one user belongs to, compared without regard to case
/// and to whitespace runs (see [`fold`]).
#[derive(Debug, Clone, Default)]
pub struct GroupSet {
    keys: HashSet<String>,
}

impl GroupSet {
    /// Builds the set from group names as LDAP returned them. Names whose
    /// folded key is empty (blank names) are skipped, as no expression can
    /// refer to them.
    pub fn new<I, S>(names: I) -> GroupSet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let keys = names
            .into_iter()
            .map(|name| fold(name.as_ref()))
            .filter(|key| !key.is_empty())
            .collect();
        GroupSet { keys }
    }

    /// Whether the user is in the group `name`, compared via [`fold`].
    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains(&fold(name))
    }

    /// Number of distinct groups (after folding).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the user is in no group at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Lookup by an already folded key; used by evaluation, allocation-free.
    fn contains_key(&self, key: &str) -> bool {
        self.keys.contains(key)
    }
}

/// A syntax error in an expression, with the 1-based column (counted in
/// Unicode characters) where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based column, in characters; one past the last character means
    /// "at the end of the expression".
    pub column: usize,
    /// What is wrong, phrased for an operator editing the config.
    pub message: String,
}

impl ParseError {
    fn new(column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            column,
            message: message.into(),
        }
    }

    /// Renders two lines for an operator: the expression, and a caret under
    /// the offending column. Tabs are kept on the caret line so the caret
    /// lines up; other control characters (such as newlines) are shown as
    /// spaces so the source stays on one line. No trailing newline.
    pub fn pointer(&self, src: &str) -> String {
        let mut line = String::with_capacity(src.len());
        let mut marker = String::new();
        let target = self.column.max(1) - 1;
        for (i, c) in src.chars().enumerate() {
            let shown = if c == '\t' {
                '\t'
            } else if c.is_control() || c.is_whitespace() {
                ' '
            } else {
                c
            };
            line.push(shown);
            if i < target {
                marker.push(if shown == '\t' { '\t' } else { ' ' });
            }
        }
        marker.push('^');
        line.push('\n');
        line.push_str(&marker);
        line
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

impl std::error::Error for ParseError {}

/// A group name as it appears in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Name {
    /// The name as written (quotes removed, escapes resolved).
    text: String,
    /// `fold(text)`, computed once at parse time.
    key: String,
}

/// A node of the parsed tree. `And`/`Or` are n-ary and never directly
/// contain a node of their own kind, so each boolean formula has exactly
/// one tree (which makes the Display round-trip exact).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Name(Name),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

impl Node {
    fn eval(&self, groups: &GroupSet) -> bool {
        match self {
            Node::Name(name) => groups.contains_key(&name.key),
            Node::Not(inner) => !inner.eval(groups),
            Node::And(items) => items.iter().all(|item| item.eval(groups)),
            Node::Or(items) => items.iter().any(|item| item.eval(groups)),
        }
    }

    fn collect_names<'a>(&'a self, seen: &mut HashSet<&'a str>, out: &mut Vec<&'a str>) {
        match self {
            Node::Name(name) => {
                if seen.insert(name.key.as_str()) {
                    out.push(name.text.as_str());
                }
            }
            Node::Not(inner) => inner.collect_names(seen, out),
            Node::And(items) | Node::Or(items) => {
                for item in items {
                    item.collect_names(seen, out);
                }
            }
        }
    }

    fn write(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Name(name) => write_name(&name.text, f),
            Node::Not(inner) => {
                f.write_char('!')?;
                let group = matches!(**inner, Node::And(_) | Node::Or(_));
                inner.write_grouped(group, f)
            }
            Node::And(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" & ")?;
                    }
                    item.write_grouped(matches!(item, Node::Or(_)), f)?;
                }
                Ok(())
            }
            Node::Or(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" | ")?;
                    }
                    item.write_grouped(matches!(item, Node::Or(_)), f)?;
                }
                Ok(())
            }
        }
    }

    fn write_grouped(&self, group: bool, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if group {
            f.write_char('(')?;
            self.write(f)?;
            f.write_char(')')
        } else {
            self.write(f)
        }
    }
}

/// Whether a name must be quoted to be read back as the same name.
fn needs_quotes(text: &str) -> bool {
    text.is_empty()
        || text
            .chars()
            .any(|c| c.is_whitespace() || SPECIAL.contains(&c))
}

fn write_name(text: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !needs_quotes(text) {
        return f.write_str(text);
    }
    f.write_char('"')?;
    for c in text.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// A parsed expression over group names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    root: Node,
}

impl Expr {
    /// Parses an expression such as `staff & (admins | ops) & !contractors`.
    ///
    /// `|` binds loosest, then `&`, then prefix `!`; parentheses group.
    /// Expressions longer than 4096 bytes or nested deeper than 64 levels
    /// (each `(` and each `!` is a level) are rejected.
    pub fn parse(src: &str) -> Result<Expr, ParseError> {
        if src.len() > MAX_LEN {
            let column = src
                .char_indices()
                .position(|(at, c)| at + c.len_utf8() > MAX_LEN)
                .map_or(1, |index| index + 1);
            return Err(ParseError::new(
                column,
                format!(
                    "the expression is too long ({} bytes; the limit is {MAX_LEN})",
                    src.len()
                ),
            ));
        }
        if src.trim().is_empty() {
            return Err(ParseError::new(1, "the expression is empty"));
        }
        let mut parser = Parser {
            lexer: Lexer {
                chars: src.chars().peekable(),
                col: 1,
            },
            ahead: None,
        };
        let root = parser.parse_or(0)?;
        let tok = parser.next()?;
        match tok.kind {
            Kind::End => Ok(Expr { root }),
            Kind::RParen => Err(ParseError::new(
                tok.col,
                "unexpected ')' without a matching '('",
            )),
            other => Err(ParseError::new(
                tok.col,
                format!(
                    "an operator '&' or '|' expected before {}",
                    describe(&other)
                ),
            )),
        }
    }

    /// True when the expression holds for a user in `groups`.
    pub fn eval(&self, groups: &GroupSet) -> bool {
        self.root.eval(groups)
    }

    /// Every group name the expression mentions, in order of first
    /// appearance, each once (compared as [`GroupSet`] compares them), in
    /// the spelling of its first appearance.
    pub fn names(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.root.collect_names(&mut seen, &mut out);
        out
    }
}

impl std::str::FromStr for Expr {
    type Err = ParseError;

    /// Same as [`Expr::parse`].
    fn from_str(src: &str) -> Result<Expr, ParseError> {
        Expr::parse(src)
    }
}

impl fmt::Display for Expr {
    /// Canonical text: minimal parentheses, ` & ` and ` | ` between
    /// operands, `!` directly before its operand, and names quoted only
    /// when needed. The output parses back to an equal [`Expr`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.root.write(f)
    }
}

#[derive(Debug)]
enum Kind {
    And,
    Or,
    Not,
    LParen,
    RParen,
    Name(Name),
    End,
}

#[derive(Debug)]
struct Token {
    kind: Kind,
    /// 1-based character column where the token starts.
    col: usize,
}

fn describe(kind: &Kind) -> String {
    match kind {
        Kind::And => "'&'".to_string(),
        Kind::Or => "'|'".to_string(),
        Kind::Not => "'!'".to_string(),
        Kind::LParen => "'('".to_string(),
        Kind::RParen => "')'".to_string(),
        Kind::Name(name) => format!("{:?}", name.text),
        Kind::End => "the end of the expression".to_string(),
    }
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    /// Column of the next character `chars` yields.
    col: usize,
}

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        self.col += 1;
        Some(c)
    }

    fn next_token(&mut self) -> Result<Token, ParseError> {
        while self.chars.peek().is_some_and(|c| c.is_whitespace()) {
            self.bump();
        }
        let col = self.col;
        let Some(c) = self.bump() else {
            return Ok(Token {
                kind: Kind::End,
                col,
            });
        };
        let kind = match c {
            '&' | '|' => {
                if self.chars.peek() == Some(&c) {
                    let meaning = if c == '&' { "and" } else { "or" };
                    return Err(ParseError::new(
                        col,
                        format!(
                            "'{c}{c}' is not an operator; use a single '{c}' for \"{meaning}\""
                        ),
                    ));
                }
                if c == '&' {
                    Kind::And
                } else {
                    Kind::Or
                }
            }
            '!' => Kind::Not,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '"' => Kind::Name(self.quoted(col)?),
            first => {
                let mut text = String::new();
                text.push(first);
                while let Some(&next) = self.chars.peek() {
                    if next.is_whitespace() || SPECIAL.contains(&next) {
                        break;
                    }
                    text.push(next);
                    self.bump();
                }
                let key = fold(&text);
                Kind::Name(Name { text, key })
            }
        };
        Ok(Token { kind, col })
    }

    /// Reads a quoted name whose opening quote (already consumed) is at
    /// column `open`.
    fn quoted(&mut self, open: usize) -> Result<Name, ParseError> {
        let unterminated = || {
            ParseError::new(
                open,
                "unterminated quoted group name: no closing '\"' for this quote",
            )
        };
        let mut text = String::new();
        loop {
            let escape_col = self.col;
            match self.bump() {
                None => return Err(unterminated()),
                Some('"') => break,
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => text.push(c),
                    Some(other) => {
                        return Err(ParseError::new(
                            escape_col,
                            format!(
                                "invalid escape '\\{other}' in quoted group name; \
                                 only '\\\"' and '\\\\' are allowed"
                            ),
                        ))
                    }
                    None => return Err(unterminated()),
                },
                Some(c) => text.push(c),
            }
        }
        if text.is_empty() {
            return Err(ParseError::new(open, "empty quoted group name"));
        }
        let key = fold(&text);
        if key.is_empty() {
            return Err(ParseError::new(open, "blank quoted group name"));
        }
        Ok(Name { text, key })
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    ahead: Option<Token>,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, ParseError> {
        let tok = match self.ahead.take() {
            Some(tok) => tok,
            None => self.lexer.next_token()?,
        };
        Ok(self.ahead.insert(tok))
    }

    fn next(&mut self) -> Result<Token, ParseError> {
        match self.ahead.take() {
            Some(tok) => Ok(tok),
            None => self.lexer.next_token(),
        }
    }

    fn parse_or(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut items = Vec::new();
        loop {
            match self.parse_and(depth)? {
                Node::Or(inner) => items.extend(inner),
                node => items.push(node),
            }
            if !matches!(self.peek()?.kind, Kind::Or) {
                break;
            }
            self.next()?;
        }
        Ok(collapse(items, Node::Or))
    }

    fn parse_and(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut items = Vec::new();
        loop {
            match self.parse_unary(depth)? {
                Node::And(inner) => items.extend(inner),
                node => items.push(node),
            }
            if !matches!(self.peek()?.kind, Kind::And) {
                break;
            }
            self.next()?;
        }
        Ok(collapse(items, Node::And))
    }

    fn parse_unary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let mut nots = 0;
        while matches!(self.peek()?.kind, Kind::Not) {
            let tok = self.next()?;
            nots += 1;
            if depth + nots > MAX_DEPTH {
                return Err(too_deep(tok.col));
            }
        }
        let mut node = self.parse_primary(depth + nots)?;
        for _ in 0..nots {
            node = Node::Not(Box::new(node));
        }
        Ok(node)
    }

    fn parse_primary(&mut self, depth: usize) -> Result<Node, ParseError> {
        let tok = self.next()?;
        match tok.kind {
            Kind::Name(name) => Ok(Node::Name(name)),
            Kind::LParen => {
                if depth + 1 > MAX_DEPTH {
                    return Err(too_deep(tok.col));
                }
                let inner = self.parse_or(depth + 1)?;
                let close = self.next()?;
                match close.kind {
                    Kind::RParen => Ok(inner),
                    Kind::End => Err(ParseError::new(
                        close.col,
                        format!(
                            "')' expected at end of expression to close the '(' at column {}",
                            tok.col
                        ),
                    )),
                    other => Err(ParseError::new(
                        close.col,
                        format!(
                            "'&', '|' or ')' expected before {} (to continue or close the '(' at column {})",
                            describe(&other),
                            tok.col
                        ),
                    )),
                }
            }
            Kind::End => Err(ParseError::new(
                tok.col,
                "a group name, '!' or '(' expected at end of expression",
            )),
            other => Err(ParseError::new(
                tok.col,
                format!(
                    "a group name, '!' or '(' expected, found {}",
                    describe(&other)
                ),
            )),
        }
    }
}

fn collapse(mut items: Vec<Node>, wrap: fn(Vec<Node>) -> Node) -> Node {
    match items.pop() {
        Some(only) if items.is_empty() => only,
        Some(last) => {
            items.push(last);
            wrap(items)
        }
        // Unreachable: callers push at least one item; an empty n-ary node
        // would still evaluate sensibly, so no panic is needed here.
        None => wrap(items),
    }
}

fn too_deep(col: usize) -> ParseError {
    ParseError::new(
        col,
        format!("nesting is too deep (at most {MAX_DEPTH} levels of '(' and '!' are allowed)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Expr {
        match Expr::parse(src) {
            Ok(expr) => expr,
            Err(err) => panic!("{src:?} failed: {err}\n{}", err.pointer(src)),
        }
    }

    fn err(src: &str) -> ParseError {
        match Expr::parse(src) {
            Ok(expr) => panic!("{src:?} parsed unexpectedly as {expr}"),
            Err(err) => err,
        }
    }

    fn groups(names: &[&str]) -> GroupSet {
        GroupSet::new(names.iter().copied())
    }

    fn eval(src: &str, names: &[&str]) -> bool {
        parse(src).eval(&groups(names))
    }

    fn assert_round_trip(expr: &Expr) {
        let text = expr.to_string();
        let again = match Expr::parse(&text) {
            Ok(again) => again,
            Err(e) => panic!("display {text:?} does not re-parse: {e}"),
        };
        assert_eq!(&again, expr, "display {text:?} re-parsed differently");
        assert_eq!(again.to_string(), text, "display is not stable");
    }

    // ---- precedence -----------------------------------------------------

    #[test]
    fn or_binds_looser_than_and() {
        assert_eq!(parse("a | b & c"), parse("a | (b & c)"));
        assert_eq!(parse("a & b | c"), parse("(a & b) | c"));
        assert_ne!(parse("a | b & c"), parse("(a | b) & c"));
        // a | (b & c): a alone suffices, b alone does not.
        assert!(eval("a | b & c", &["a"]));
        assert!(!eval("a | b & c", &["b"]));
        assert!(eval("a | b & c", &["b", "c"]));
        assert!(!eval("a | b & c", &["c"]));
        // (a & b) | c
        assert!(eval("a & b | c", &["c"]));
        assert!(!eval("a & b | c", &["a"]));
        assert!(eval("a & b | c", &["a", "b"]));
        assert!(!eval("a & b | c", &[]));
    }

    #[test]
    fn not_binds_tightest() {
        assert_eq!(parse("!a & b"), parse("(!a) & b"));
        assert_ne!(parse("!a & b"), parse("!(a & b)"));
        assert!(eval("!a & b", &["b"]));
        assert!(!eval("!a & b", &["a", "b"]));
        assert!(!eval("!a & b", &[]));
        assert!(eval("!(a & b)", &["b"]));
        assert!(eval("!(a & b)", &[]));
        assert!(!eval("!(a & b)", &["a", "b"]));
    }

    #[test]
    fn chains_are_flattened() {
        assert_eq!(parse("(a & b) & c"), parse("a & b & c"));
        assert_eq!(parse("a & (b & c)"), parse("a & b & c"));
        assert_eq!(parse("(a | b) | (c | d)"), parse("a | b | c | d"));
        assert_eq!(parse("((a))"), parse("a"));
        assert_eq!(parse("(a | b) & c").to_string(), "(a | b) & c");
        assert_eq!(parse("((a & b)) | c").to_string(), "a & b | c");
    }

    // ---- the examples ---------------------------------------------------

    #[test]
    fn example_single_name() {
        assert!(eval("staff", &["staff"]));
        assert!(eval("staff", &["ops", "STAFF"]));
        assert!(!eval("staff", &["ops"]));
        assert!(!eval("staff", &[]));
    }

    #[test]
    fn example_not() {
        assert!(eval("!contractors", &[]));
        assert!(eval("!contractors", &["staff"]));
        assert!(!eval("!contractors", &["contractors"]));
    }

    #[test]
    fn example_double_not() {
        assert!(eval("!!a", &["a"]));
        assert!(!eval("!!a", &["b"]));
        assert!(!eval("!!a", &[]));
        assert_eq!(parse("!!a").to_string(), "!!a");
        assert_eq!(parse("! ! a").to_string(), "!!a");
    }

    #[test]
    fn example_staff_policy() {
        let src = "staff & (admins | ops) & !contractors";
        assert!(eval(src, &["staff", "admins"]));
        assert!(eval(src, &["staff", "ops"]));
        assert!(eval(src, &["Staff", "Admins", "Ops"]));
        assert!(!eval(src, &["staff"]));
        assert!(!eval(src, &["admins", "ops"]));
        assert!(!eval(src, &["staff", "admins", "contractors"]));
        assert!(!eval(src, &[]));
        assert_eq!(parse(src).to_string(), src);
    }

    #[test]
    fn example_quoted_and_unicode() {
        let src = "\"Sales, EMEA (*)\" | Größe";
        assert!(eval(src, &["sales, emea (*)"]));
        assert!(eval(src, &["SALES,   EMEA (*)"]));
        assert!(eval(src, &["größe"]));
        assert!(!eval(src, &["Sales", "EMEA"]));
        assert!(!eval(src, &[]));
        assert_eq!(parse(src).names(), vec!["Sales, EMEA (*)", "Größe"]);
        assert_eq!(parse(src).to_string(), src);
    }

    #[test]
    fn example_surrounding_whitespace() {
        assert_eq!(parse("  a  "), parse("a"));
        assert_eq!(parse("\ta\t&\tb "), parse("a & b"));
        assert!(eval("  a  ", &["a"]));
        assert!(!eval("  a  ", &["b"]));
    }

    #[test]
    fn bare_names_allow_punctuation() {
        let src = "app-admins & team.ops & cn_x@y:z/1 & cn=x,ou=y* & a\\b";
        let expr = parse(src);
        assert_eq!(
            expr.names(),
            vec!["app-admins", "team.ops", "cn_x@y:z/1", "cn=x,ou=y*", "a\\b"]
        );
        assert!(expr.eval(&groups(&[
            "APP-ADMINS",
            "team.ops",
            "cn_x@y:z/1",
            "CN=x,OU=y*",
            "a\\b"
        ])));
        assert_eq!(expr.to_string(), src);
    }

    #[test]
    fn names_end_at_specials_without_spaces() {
        assert_eq!(parse("a&b|!c"), parse("a & b | !c"));
        assert_eq!(parse("(a|b)&c"), parse("(a | b) & c"));
        assert_eq!(parse("a&\"b c\""), parse("a & \"b c\""));
    }

    #[test]
    fn quoted_escapes() {
        let expr = parse(r#""say \"hi\"" | "back\\slash""#);
        assert_eq!(expr.names(), vec!["say \"hi\"", "back\\slash"]);
        // A backslash alone needs no quoting, so Display writes it bare.
        assert_eq!(expr.to_string(), r#""say \"hi\"" | back\slash"#);
        assert_round_trip(&expr);
        assert_eq!(parse("\"plain\""), parse("plain"));
        assert_eq!(parse("\"plain\"").to_string(), "plain");
    }

    // ---- membership -----------------------------------------------------

    // fold itself is latchkey_verify::fold_group, tested in that crate.

    #[test]
    fn membership_ignores_case_and_whitespace() {
        let set = groups(&["admins", "Domain   Users", " Ops "]);
        assert!(set.contains("Admins"));
        assert!(set.contains("ADMINS"));
        assert!(set.contains("domain users"));
        assert!(set.contains("  DOMAIN\tUSERS "));
        assert!(set.contains("ops"));
        assert!(!set.contains("domainusers"));
        assert!(!set.contains("admin"));
        assert!(eval("Admins", &["admins"]));
        assert!(eval("\"Domain Users\"", &["domain   users"]));
        assert!(eval("\"  domain users \"", &["Domain Users"]));
    }

    #[test]
    fn membership_uses_str_to_lowercase() {
        // str::to_lowercase keeps "SS" as "ss"; it does not turn it into
        // "ß" (that would be case folding, which std does not offer). So
        // GRÖSSE folds to "grösse", which is not "größe".
        assert_eq!("GRÖSSE".to_lowercase(), "grösse");
        assert!(!eval("Größe", &["GRÖSSE"]));
        assert!(!groups(&["GRÖSSE"]).contains("Größe"));
        // The capital sharp s (U+1E9E) does lowercase to "ß".
        assert_eq!("GRÖẞE".to_lowercase(), "größe");
        assert!(eval("Größe", &["GRÖẞE"]));
        assert!(eval("GRÖẞE", &["größe"]));
    }

    #[test]
    fn group_set_len_and_blank_names() {
        let set = groups(&["Admins", "admins", " ADMINS ", "", "   ", "ops"]);
        assert_eq!(set.len(), 2);
        assert!(!set.is_empty());
        assert!(!set.contains(""));
        let empty = GroupSet::default();
        assert!(empty.is_empty());
        assert_eq!(empty.len(), 0);
        assert!(GroupSet::new(Vec::<String>::new()).is_empty());
        assert!(GroupSet::new(vec![String::from("x")]).contains("X"));
    }

    // ---- names() --------------------------------------------------------

    #[test]
    fn names_in_order_deduplicated() {
        let expr = parse("b & (A | c) & !a | B | \"d  e\" | \"D E\" | c");
        assert_eq!(expr.names(), vec!["b", "A", "c", "d  e"]);
        assert_eq!(parse("x").names(), vec!["x"]);
        assert_eq!(parse("!x & !x").names(), vec!["x"]);
    }

    // ---- Display --------------------------------------------------------

    #[test]
    fn display_canonical_form() {
        let cases = [
            ("a|b&c", "a | b & c"),
            ("(a|b)&c", "(a | b) & c"),
            ("!(a|b)", "!(a | b)"),
            ("!(a&b)", "!(a & b)"),
            ("!(!a)", "!!a"),
            ("(!a)", "!a"),
            ("a & (b | (c & d))", "a & (b | c & d)"),
            ("\"x y\"", "\"x y\""),
            ("\"a&b\"", "\"a&b\""),
            ("\"a!\"", "\"a!\""),
            ("\"(x)\"", "\"(x)\""),
            ("\"q\\\"\"", "\"q\\\"\""),
            ("\"tab\there\"", "\"tab\there\""),
            ("Größe", "Größe"),
        ];
        for (src, want) in cases {
            assert_eq!(parse(src).to_string(), want, "for {src:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        let cases = [
            "staff",
            "!contractors",
            "!!a",
            "a & b | c",
            "a | b & c",
            "!a & b",
            "staff & (admins | ops) & !contractors",
            "\"Sales, EMEA (*)\" | Größe",
            "  a  ",
            "((a | b) & (c | d)) | !(e & !f)",
            "!(!(!(a | b)))",
            "\"a\\\\\" & \"\\\"\"",
            "\"line\nbreak\" | x",
            "a | (b | (c | (d & (e | f))))",
            "cn=x,ou=y* | a\\b",
            "\"  padded  \"",
        ];
        for src in cases {
            assert_round_trip(&parse(src));
        }
    }

    // ---- errors ---------------------------------------------------------

    fn assert_err(src: &str, column: usize, message: &str) {
        let e = err(src);
        assert_eq!(
            (e.column, e.message.as_str()),
            (column, message),
            "for {src:?}"
        );
    }

    #[test]
    fn error_empty() {
        assert_err("", 1, "the expression is empty");
        assert_err("   ", 1, "the expression is empty");
        assert_err("\t \n", 1, "the expression is empty");
    }

    #[test]
    fn error_missing_operand() {
        let msg = "a group name, '!' or '(' expected at end of expression";
        assert_err("a &", 4, msg);
        assert_err("a | ", 5, msg);
        assert_err("!", 2, msg);
        assert_err("a & !", 6, msg);
        assert_err("(", 2, msg);
        assert_err("&a", 1, "a group name, '!' or '(' expected, found '&'");
        assert_err("|a", 1, "a group name, '!' or '(' expected, found '|'");
        assert_err("a & | b", 5, "a group name, '!' or '(' expected, found '|'");
        assert_err("()", 2, "a group name, '!' or '(' expected, found ')'");
        assert_err("a & )", 5, "a group name, '!' or '(' expected, found ')'");
    }

    #[test]
    fn error_missing_operator() {
        assert_err("a b", 3, "an operator '&' or '|' expected before \"b\"");
        assert_err("a !b", 3, "an operator '&' or '|' expected before '!'");
        assert_err("a (b)", 3, "an operator '&' or '|' expected before '('");
        assert_err(
            "Größe \"x y\"",
            7,
            "an operator '&' or '|' expected before \"x y\"",
        );
        assert_err(
            "(a b)",
            4,
            "'&', '|' or ')' expected before \"b\" (to continue or close the '(' at column 1)",
        );
    }

    #[test]
    fn error_doubled_operators() {
        assert_err(
            "a && b",
            3,
            "'&&' is not an operator; use a single '&' for \"and\"",
        );
        assert_err(
            "a || b",
            3,
            "'||' is not an operator; use a single '|' for \"or\"",
        );
        // Separated by a space it is just a missing operand.
        assert_err("a & & b", 5, "a group name, '!' or '(' expected, found '&'");
    }

    #[test]
    fn error_parentheses() {
        assert_err(
            "(a | b",
            7,
            "')' expected at end of expression to close the '(' at column 1",
        );
        assert_err(
            "staff & (admins | ops",
            22,
            "')' expected at end of expression to close the '(' at column 9",
        );
        assert_err("a)", 2, "unexpected ')' without a matching '('");
        assert_err("(a))", 4, "unexpected ')' without a matching '('");
    }

    #[test]
    fn error_quotes() {
        assert_err(
            "\"abc",
            1,
            "unterminated quoted group name: no closing '\"' for this quote",
        );
        assert_err(
            "a | \"abc\\\"",
            5,
            "unterminated quoted group name: no closing '\"' for this quote",
        );
        assert_err(
            "\"abc\\",
            1,
            "unterminated quoted group name: no closing '\"' for this quote",
        );
        assert_err(
            "\"a\\q\"",
            3,
            "invalid escape '\\q' in quoted group name; only '\\\"' and '\\\\' are allowed",
        );
        assert_err(
            "ß | \"ä\\n\"",
            7,
            "invalid escape '\\n' in quoted group name; only '\\\"' and '\\\\' are allowed",
        );
        assert_err("\"\"", 1, "empty quoted group name");
        assert_err("a | \"\"", 5, "empty quoted group name");
        assert_err("\" \t \"", 1, "blank quoted group name");
    }

    #[test]
    fn error_columns_count_characters() {
        // "Größe" is 5 characters but 7 bytes.
        assert_err(
            "Größe größe",
            7,
            "an operator '&' or '|' expected before \"größe\"",
        );
        assert_err(
            "ÄÖÜ & \"abc",
            7,
            "unterminated quoted group name: no closing '\"' for this quote",
        );
        assert_err(
            "(ÄÖÜ",
            5,
            "')' expected at end of expression to close the '(' at column 1",
        );
    }

    #[test]
    fn leftmost_error_wins() {
        // The operator error comes before the bad quote, so it is reported.
        assert_err(
            "a b \"unterminated",
            3,
            "an operator '&' or '|' expected before \"b\"",
        );
    }

    #[test]
    fn depth_limit() {
        let ok = format!("{}a{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(parse(&ok), parse("a"));
        let deep = format!("{}a{}", "(".repeat(65), ")".repeat(65));
        let e = err(&deep);
        assert_eq!(e.column, 65);
        assert_eq!(
            e.message,
            "nesting is too deep (at most 64 levels of '(' and '!' are allowed)"
        );

        let nots = format!("{}a", "!".repeat(64));
        assert!(parse(&nots).eval(&groups(&["a"])));
        assert_round_trip(&parse(&nots));
        assert_eq!(err(&format!("{}a", "!".repeat(65))).column, 65);

        // Mixed: 32 pairs of "!(" are exactly 64 levels.
        let mixed = format!("{}a{}", "!(".repeat(32), ")".repeat(32));
        // An even number of negations: same as plain "a".
        assert!(!parse(&mixed).eval(&GroupSet::default()));
        assert!(parse(&mixed).eval(&groups(&["a"])));
        let mixed = format!("{}a{}", "!(".repeat(33), ")".repeat(33));
        assert_eq!(err(&mixed).column, 65);

        // Hostile input far beyond the limit fails cleanly, no stack overflow.
        assert_eq!(err(&"(".repeat(4000)).column, 65);
        assert_eq!(err(&"!".repeat(4000)).column, 65);

        // Long flat chains are not nesting.
        let flat = vec!["a"; 1000].join(" & ");
        assert_eq!(parse(&flat).names(), vec!["a"]);
    }

    #[test]
    fn length_limit() {
        let ok = "a".repeat(4096);
        assert_eq!(parse(&ok).names().len(), 1);
        let e = err(&"a".repeat(4097));
        assert_eq!(e.column, 4097);
        assert_eq!(
            e.message,
            "the expression is too long (4097 bytes; the limit is 4096)"
        );
        // 2049 'ß' are 4098 bytes; the 2049th character crosses the limit.
        let e = err(&"ß".repeat(2049));
        assert_eq!(e.column, 2049);
        assert_eq!(
            e.message,
            "the expression is too long (4098 bytes; the limit is 4096)"
        );
        assert!(Expr::parse(&"ß".repeat(2048)).is_ok());
        // Blank but too long is reported as too long.
        assert_eq!(err(&" ".repeat(5000)).column, 4097);
    }

    #[test]
    fn error_display_and_trait() {
        let e = err("a b");
        assert_eq!(
            e.to_string(),
            "column 3: an operator '&' or '|' expected before \"b\""
        );
        let boxed: Box<dyn std::error::Error> = Box::new(e.clone());
        assert_eq!(boxed.to_string(), e.to_string());
        let via_from_str: Result<Expr, _> = "a b".parse();
        assert_eq!(via_from_str, Err(e));
        let ok: Result<Expr, _> = "a & b".parse();
        assert_eq!(ok, Ok(parse("a & b")));
    }

    #[test]
    fn pointer_rendering() {
        let src = "staff & (admins | ops";
        let e = err(src);
        assert_eq!(
            e.pointer(src),
            "staff & (admins | ops\n                     ^"
        );
        let src = "a b";
        assert_eq!(err(src).pointer(src), "a b\n  ^");
        let src = "\"abc";
        assert_eq!(err(src).pointer(src), "\"abc\n^");
        // Non-ASCII characters take one column each.
        let src = "Größe größe";
        assert_eq!(err(src).pointer(src), "Größe größe\n      ^");
        // Tabs are copied so the caret lines up; newlines become spaces.
        let src = "\ta\n b";
        assert_eq!(err(src).pointer(src), "\ta  b\n\t   ^");
        // An out-of-range column does not panic.
        let odd = ParseError::new(0, "x");
        assert_eq!(odd.pointer("ab"), "ab\n^");
        let odd = ParseError::new(10, "x");
        assert_eq!(odd.pointer("ab"), "ab\n  ^");
    }

    // ---- fuzz-like ------------------------------------------------------

    /// Small deterministic xorshift generator, so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn check_any(src: &str, sets: &[GroupSet]) -> bool {
        match Expr::parse(src) {
            Ok(expr) => {
                assert_round_trip(&expr);
                let names = expr.names();
                assert!(!names.is_empty());
                for set in sets {
                    let _ = expr.eval(set);
                }
                true
            }
            Err(e) => {
                let chars = src.chars().count();
                assert!(
                    e.column >= 1 && e.column <= chars + 1,
                    "column {} out of range for {src:?}",
                    e.column
                );
                assert!(!e.message.is_empty());
                let _ = e.pointer(src);
                false
            }
        }
    }

    #[test]
    fn fuzz_characters() {
        let alphabet = ['a', 'b', '(', ')', '&', '|', '!', '"', '\\', ' ', 'ß'];
        let sets = [
            GroupSet::default(),
            groups(&["a"]),
            groups(&["b", "SS"]),
            groups(&["a", "b", "ß"]),
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut ok = 0;
        for _ in 0..30_000 {
            let len = rng.below(24);
            let src: String = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            if check_any(&src, &sets) {
                ok += 1;
            }
        }
        assert!(ok > 100, "only {ok} inputs parsed");
    }

    #[test]
    fn fuzz_tokens() {
        let pieces = [
            "a",
            "b",
            "ß",
            "Ab",
            "(",
            ")",
            " & ",
            " | ",
            "!",
            "\"x y\"",
            "\"q\\\"\"",
            "\"\\\\\"",
            " ",
            "&",
            "|",
        ];
        let sets = [
            GroupSet::default(),
            groups(&["a"]),
            groups(&["AB", "x  y"]),
            groups(&["a", "b", "ß", "q\"", "\\"]),
        ];
        let mut rng = Rng(0xDEAD_BEEF_CAFE_F00D);
        let mut ok = 0;
        for _ in 0..30_000 {
            let len = 1 + rng.below(20);
            let src: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            if check_any(&src, &sets) {
                ok += 1;
            }
        }
        assert!(ok > 1000, "only {ok} inputs parsed");
    }

    /// Random well-formed trees, rendered with full parentheses, must parse
    /// to something that evaluates like a direct evaluation of the tree.
    #[test]
    fn fuzz_semantics_against_reference() {
        enum T {
            V(usize),
            Not(Box<T>),
            And(Box<T>, Box<T>),
            Or(Box<T>, Box<T>),
        }
        fn random_tree(rng: &mut Rng, depth: usize) -> T {
            if depth == 0 {
                return T::V(rng.below(4));
            }
            match rng.below(4) {
                0 => T::V(rng.below(4)),
                1 => T::Not(Box::new(random_tree(rng, depth - 1))),
                2 => T::And(
                    Box::new(random_tree(rng, depth - 1)),
                    Box::new(random_tree(rng, depth - 1)),
                ),
                _ => T::Or(
                    Box::new(random_tree(rng, depth - 1)),
                    Box::new(random_tree(rng, depth - 1)),
                ),
            }
        }
        const NAMES: [&str; 4] = ["a", "B", "\"c d\"", "Größe"];
        const MEMBER: [&str; 4] = ["A", "b", "C  D", "GRÖẞE"];
        fn render(t: &T, out: &mut String) {
            match t {
                T::V(i) => out.push_str(NAMES[*i]),
                T::Not(x) => {
                    out.push_str("!(");
                    render(x, out);
                    out.push(')');
                }
                T::And(x, y) | T::Or(x, y) => {
                    out.push('(');
                    render(x, out);
                    out.push_str(if matches!(t, T::And(..)) {
                        ")&("
                    } else {
                        ")|("
                    });
                    render(y, out);
                    out.push(')');
                }
            }
        }
        fn reference(t: &T, bits: usize) -> bool {
            match t {
                T::V(i) => bits & (1 << i) != 0,
                T::Not(x) => !reference(x, bits),
                T::And(x, y) => reference(x, bits) && reference(y, bits),
                T::Or(x, y) => reference(x, bits) || reference(y, bits),
            }
        }
        let mut rng = Rng(0x0123_4567_89AB_CDEF);
        for _ in 0..2_000 {
            let tree = random_tree(&mut rng, 5);
            let mut src = String::new();
            render(&tree, &mut src);
            let expr = parse(&src);
            assert_round_trip(&expr);
            let canonical = parse(&expr.to_string());
            for bits in 0..16 {
                let members: Vec<&str> = (0..4)
                    .filter(|i| bits & (1 << i) != 0)
                    .map(|i| MEMBER[i])
                    .collect();
                let set = GroupSet::new(&members);
                let want = reference(&tree, bits);
                assert_eq!(expr.eval(&set), want, "{src} with {members:?}");
                assert_eq!(canonical.eval(&set), want, "{expr} with {members:?}");
            }
        }
    }
}
