//! Reading request bodies and JSON, framework-neutral: what the extractors and the admin API
//! use, and what hand-written (non-axum) plugin routes can use.

use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use super::{Body, FieldErrors, HttpError, Validate};

/// The body limit in force for a request, put in its extensions by the body limit layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimitInForce(pub usize);

/// Reads a whole body, at most `limit` bytes: over it is 413 `payload_too_large`, a body
/// that did not arrive in time ([`BodyTimedOut`](super::BodyTimedOut)) 408 `timeout`, a broken
/// stream 400 `bad_request`.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, HttpError> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) => Err(body_error(&*err, limit)),
    }
}

/// The error answered for a body that could not be read.
pub(crate) fn body_error(err: &(dyn std::error::Error + 'static), limit: usize) -> HttpError {
    if is_length_limit(err) {
        HttpError::payload_too_large(limit)
    } else if err.is::<super::BodyTimedOut>() {
        HttpError::new(
            http::StatusCode::REQUEST_TIMEOUT,
            "timeout",
            err.to_string(),
        )
    } else {
        HttpError::bad_request(format!("the request body could not be read: {err}"))
    }
}

/// Whether the error (or one of its sources) is a body over the limit.
pub(crate) fn is_length_limit(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(err) = next {
        if err.is::<LengthLimitError>() {
            return true;
        }
        next = err.source();
    }
    false
}

/// Whether the request says its body is JSON (`application/json` or `application/*+json`).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Deserializes JSON into `T`: invalid JSON or a value that does not fit is 422
/// `invalid_payload` naming the field path (`user.email`, `items[2].qty`, `.` for the body).
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// struct Order { qty: u32 }
///
/// let err = xcore::web::decode_json::<Order>(br#"{"qty": "two"}"#).unwrap_err();
/// assert_eq!(err.status(), 422);
/// assert_eq!(err.details().unwrap()["errors"][0]["path"], "qty");
/// ```
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let errors = if inner.is_syntax() || inner.is_eof() {
            FieldErrors::new().add(".", format_args!("invalid JSON: {inner}"))
        } else {
            FieldErrors::new().add(path, inner)
        };
        HttpError::validation(errors)
    })?;
    de.end().map_err(|err| {
        HttpError::validation(FieldErrors::new().add(".", format_args!("invalid JSON: {err}")))
    })?;
    Ok(value)
}

/// [`decode_json`], then [`Validate::validate`]: a failed validation is 422 with its field
/// errors.
pub fn decode_valid<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, HttpError> {
    let value: T = decode_json(bytes)?;
    value.validate().map_err(HttpError::validation)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        name: String,
        tags: Vec<u8>,
    }

    #[test]
    fn decode_errors_name_the_path() {
        let err = decode_json::<Item>(br#"{"name": "a", "tags": [1, "x"]}"#).unwrap_err();
        assert_eq!(err.details().unwrap()["errors"][0]["path"], "tags[1]");
        let err = decode_json::<Item>(b"{").unwrap_err();
        assert_eq!(err.details().unwrap()["errors"][0]["path"], ".");
        assert!(err.message().contains("invalid JSON"), "{}", err.message());
        let err = decode_json::<Item>(br#"{"name": "a", "tags": []} x"#).unwrap_err();
        assert_eq!(err.code(), "invalid_payload");
        assert!(decode_json::<Item>(br#"{"name": "a", "tags": []}"#).is_ok());
    }

    #[tokio::test]
    async fn limits() {
        let err = read_body(Body::from("0123456789"), 4).await.unwrap_err();
        assert_eq!(err.status(), 413);
        assert_eq!(read_body(Body::from("0123"), 4).await.unwrap(), "0123");
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(
            header::CONTENT_TYPE,
            "application/problem+json".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
    }
}
