//! [`AdminToken`]: the admin API's bearer token, kept as a SHA-256 digest.

use std::fmt;

use http::{HeaderMap, header};
use sha2::{Digest, Sha256};

use crate::web::HttpError;

/// The admin token's SHA-256 digest, computed once when the web layer is built. A request's
/// token is hashed (one SHA-256, no key derivation) and the digests are compared in constant
/// time, so neither the token's length nor its content leaks through timing.
#[derive(Clone)]
pub(crate) struct AdminToken([u8; 32]);

impl AdminToken {
    pub(crate) fn new(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Whether `presented` is the token.
    pub(crate) fn verify(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        let diff = self
            .0
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }

    /// Checks the `authorization: Bearer <token>` header; `token` is `None` when the host
    /// configured none (token access disabled).
    pub(crate) fn check(token: Option<&AdminToken>, headers: &HeaderMap) -> Result<(), HttpError> {
        let Some(token) = token else {
            return Err(HttpError::unauthorized(
                "the admin API is disabled: no admin token is configured (set `app.admin_token`)",
            ));
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(|v| {
                let (scheme, rest) = v.split_at_checked(7)?;
                scheme
                    .eq_ignore_ascii_case(b"bearer ")
                    .then_some(rest.trim_ascii())
            });
        match presented {
            None => Err(HttpError::unauthorized(
                "missing bearer token (`authorization: Bearer <token>`)",
            )),
            Some(presented) if token.verify(presented) => Ok(()),
            Some(_) => {
                tracing::debug!("admin request with a wrong token");
                Err(HttpError::unauthorized("invalid admin token"))
            }
        }
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn bearer_tokens() {
        let token = AdminToken::new("s3cret-admin-token");
        assert!(AdminToken::check(Some(&token), &headers("Bearer s3cret-admin-token")).is_ok());
        assert!(AdminToken::check(Some(&token), &headers("bearer s3cret-admin-token")).is_ok());
        for bad in [
            "Bearer s3cret",
            "Basic s3cret-admin-token",
            "Bearer",
            "s3cret-admin-token",
            "Bearer s3cret-admin-tokenx",
        ] {
            let err = AdminToken::check(Some(&token), &headers(bad)).unwrap_err();
            assert_eq!(err.status(), 401, "{bad}");
        }
        assert_eq!(
            AdminToken::check(Some(&token), &HeaderMap::new())
                .unwrap_err()
                .status(),
            401
        );
        let disabled = AdminToken::check(None, &headers("Bearer s3cret-admin-token")).unwrap_err();
        assert!(disabled.message().contains("disabled"));
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
    }
}
