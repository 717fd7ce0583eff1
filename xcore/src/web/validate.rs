//! Validation of request bodies: [`Validate`] and the [`FieldErrors`] it reports.

use std::fmt;

use serde_json::{Value, json};

/// A type that checks itself after deserialization: a failure is a 422 `invalid_payload`
/// response naming each field at fault.
///
/// ```
/// use xcore::web::{FieldErrors, Validate};
///
/// struct Signup { name: String, age: u32 }
///
/// impl Validate for Signup {
///     fn validate(&self) -> Result<(), FieldErrors> {
///         FieldErrors::new()
///             .check(!self.name.is_empty(), "name", "must not be empty")
///             .check(self.age >= 18, "age", "must be at least 18")
///             .into_result()
///     }
/// }
///
/// let err = Signup { name: String::new(), age: 12 }.validate().unwrap_err();
/// assert_eq!(err.len(), 2);
/// assert_eq!(err.iter().next().unwrap().path(), "name");
/// ```
pub trait Validate {
    /// `Ok` when valid, else every field error found.
    fn validate(&self) -> Result<(), FieldErrors>;
}

/// One field error: the path of the field (`user.email`, `items[2].qty`, `.` for the whole
/// body) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    path: String,
    message: String,
}

impl FieldError {
    /// The field's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The field errors of a request body, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    /// No error yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an error for the field at `path`.
    #[must_use]
    pub fn add(mut self, path: impl Into<String>, message: impl fmt::Display) -> Self {
        self.push(path, message);
        self
    }

    /// Adds an error for the field at `path` unless `ok`.
    #[must_use]
    pub fn check(self, ok: bool, path: impl Into<String>, message: impl fmt::Display) -> Self {
        if ok { self } else { self.add(path, message) }
    }

    /// Adds an error for the field at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl fmt::Display) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.to_string(),
        });
    }

    /// Whether there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The errors.
    pub fn iter(&self) -> impl Iterator<Item = &FieldError> {
        self.0.iter()
    }

    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    /// A one-line summary for the envelope's message.
    pub(crate) fn summary(&self) -> String {
        match self.0.as_slice() {
            [] => "invalid payload".to_owned(),
            [one] => format!("invalid payload at `{}`: {}", one.path, one.message),
            many => {
                let paths: Vec<&str> = many.iter().map(|e| e.path.as_str()).collect();
                format!(
                    "invalid payload: {} field errors (`{}`)",
                    many.len(),
                    paths.join("`, `")
                )
            }
        }
    }

    /// `[{"path":…,"message":…}, …]`, the shape of `CallError::invalid_payload`'s details.
    pub(crate) fn to_json(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|e| json!({ "path": e.path, "message": e.message }))
                .collect(),
        )
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

impl std::error::Error for FieldErrors {}
