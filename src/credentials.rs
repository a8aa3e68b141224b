//! What a client logs in with: a [`Login`] and a [`Password`], checked once at the edge.
//!
//! A `Login` is non-empty, at most [`MAX_LOGIN_LEN`] bytes and free of control characters; a
//! `Password` is non-empty, wiped from memory on drop, and never printed.

use std::fmt;

use zeroize::Zeroizing;

/// The longest login accepted, in bytes.
pub const MAX_LOGIN_LEN: usize = 256;

/// The longest password accepted, in bytes (far above any real one; keeps junk off the wire).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A username or email as the client typed it.
#[derive(Clone, PartialEq, Eq)]
pub struct Login(String);

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("The login is empty.")]
    Empty,
    #[error("The login is {0} bytes long; at most {MAX_LOGIN_LEN} are allowed.")]
    TooLong(usize),
    #[error("The login contains a control character.")]
    ControlCharacter,
}

impl Login {
    /// Check `s` and wrap it.
    pub fn parse(s: &str) -> Result<Login, LoginError> {
        if s.is_empty() {
            return Err(LoginError::Empty);
        }
        if s.len() > MAX_LOGIN_LEN {
            return Err(LoginError::TooLong(s.len()));
        }
        if s.chars().any(char::is_control) {
            return Err(LoginError::ControlCharacter);
        }
        Ok(Login(s.to_owned()))
    }

    /// The login as typed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password: never empty (an empty simple bind is an anonymous bind on many servers).
pub struct Password(Zeroizing<String>);

/// Why a password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("The password is empty.")]
    Empty,
    #[error("The password is longer than {MAX_PASSWORD_LEN} bytes.")]
    TooLong,
}

impl Password {
    /// Check `s` and take it.
    pub fn parse(s: Zeroizing<String>) -> Result<Password, PasswordError> {
        if s.is_empty() {
            return Err(PasswordError::Empty);
        }
        if s.len() > MAX_PASSWORD_LEN {
            return Err(PasswordError::TooLong);
        }
        Ok(Password(s))
    }

    /// The password, for the bind only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_bounded_and_printable() {
        assert_eq!(Login::parse(""), Err(LoginError::Empty));
        assert_eq!(
            Login::parse(&"a".repeat(257)),
            Err(LoginError::TooLong(257))
        );
        assert!(Login::parse(&"a".repeat(256)).is_ok());
        assert_eq!(Login::parse("al\0ice"), Err(LoginError::ControlCharacter));
        assert_eq!(Login::parse("alice\n"), Err(LoginError::ControlCharacter));
        assert_eq!(Login::parse("dreßler").unwrap().as_str(), "dreßler");
        assert_eq!(
            Login::parse("user1)(uid=*").unwrap().as_str(),
            "user1)(uid=*"
        );
    }

    #[test]
    fn passwords_are_never_empty_and_never_printed() {
        assert!(matches!(
            Password::parse(Zeroizing::new(String::new())),
            Err(PasswordError::Empty)
        ));
        let p = Password::parse(Zeroizing::new("hunter2".into())).unwrap();
        assert_eq!(format!("{p:?}"), "***");
        assert_eq!(p.expose(), "hunter2");
    }
}
