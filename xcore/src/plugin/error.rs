use std::{error::Error as StdError, fmt};

/// The error a lifecycle hook returns (`on_load`, `on_start`, `on_stop`, and the service
/// hooks).
///
/// Any error type converts into it with `?`; [`HookError::msg`] makes one from a message.
/// The boot report shows its message, followed by its sources.
pub struct HookError(Box<dyn StdError + Send + Sync + 'static>);

/// The error of a plugin's lifecycle hooks.
pub type PluginError = HookError;

/// The error of a service's lifecycle hooks.
pub type ServiceError = HookError;

impl HookError {
    /// An error from a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self(message.to_string().into())
    }

    /// The underlying error.
    pub fn source_error(&self) -> &(dyn StdError + Send + Sync + 'static) {
        &*self.0
    }
}

impl<E> From<E> for HookError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        Self(Box::new(err))
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Many errors already repeat their source in their message: append a source only if
        // the text so far does not hold it.
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(s) = source {
            let more = s.to_string();
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = s.source();
        }
        f.write_str(&text)
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HookError({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_and_displays_sources() {
        fn open() -> Result<(), HookError> {
            std::fs::read("/definitely/not/here")?;
            Ok(())
        }
        let e = open().unwrap_err();
        assert!(e.to_string().contains("No such file"), "{e}");
        assert_eq!(HookError::msg("boom").to_string(), "boom");
    }
}
