//! [`Json`] and [`Valid`]: JSON bodies that reject with the 422 envelope.

use ::axum::{
    extract::{FromRequest, Request},
    response::{IntoResponse, Response},
};
use http::{HeaderValue, StatusCode, header};
use serde::{Serialize, de::DeserializeOwned};

use crate::web::{
    Body, BodyLimitInForce, DEFAULT_BODY_LIMIT, HttpError, Validate, decode_json, is_json,
    read_body,
};

/// A JSON request body (extractor) or response (200, `application/json`).
///
/// Unlike axum's own `Json`, its rejections are xcore envelopes: a body that is not JSON,
/// or does not fit `T`, is 422 `invalid_payload` naming the field path (`items[2].qty`); a
/// missing `content-type: application/json` is 415; a body over the limit 413.
///
/// ```
/// use axum::{Router, routing::post};
/// use xcore::web::axum::Json;
///
/// #[derive(serde::Deserialize, serde::Serialize)]
/// struct Order { qty: u32 }
///
/// let router: Router = Router::new().route("/orders", post(|Json(order): Json<Order>| async move { Json(order) }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

/// A JSON request body that also passes [`Validate`]: a failed validation is 422
/// `invalid_payload` with every field error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Valid<T>(pub T);

async fn bytes(request: Request) -> Result<bytes::Bytes, HttpError> {
    if !is_json(request.headers()) {
        return Err(HttpError::unsupported_media_type(
            "expected a JSON body with `content-type: application/json`",
        ));
    }
    let limit = request
        .extensions()
        .get::<BodyLimitInForce>()
        .map_or(DEFAULT_BODY_LIMIT, |l| l.0);
    read_body(Body::new(request.into_body()), limit).await
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, HttpError> {
        decode_json(&bytes(request).await?).map(Json)
    }
}

impl<T: DeserializeOwned + Validate, S: Send + Sync> FromRequest<S> for Valid<T> {
    type Rejection = HttpError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, HttpError> {
        let value: T = decode_json(&bytes(request).await?)?;
        value.validate().map_err(HttpError::validation)?;
        Ok(Valid(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => {
                let mut response = Response::new(::axum::body::Body::from(bytes));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                response
            }
            Err(err) => IntoResponse::into_response(HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the response does not serialize: {err}"),
            )),
        }
    }
}
