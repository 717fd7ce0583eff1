//! `POST {admin}/ipc/<plugin>/<action>`: a call from HTTP.

use http::{Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::{
    CallContext, Xcore,
    web::{Body, BodyLimitInForce, HttpError, json_response, read_body},
};

/// The largest body read when no limit is in force (the body limit layer always sets one).
const FALLBACK_LIMIT: usize = 2 * 1024 * 1024;

/// Calls `plugin.action` as the host, for the request's tenant and trace, with the JSON body
/// as payload (`null` when empty). Success is 200
/// `{"status":"ok","plugin":…,"action":…,"result":…}`; a failed call is the error envelope
/// with the `CallError`'s status; invalid JSON is 422 `invalid_payload`.
pub(crate) async fn call(
    xcore: Xcore,
    request: Request<Body>,
    plugin: String,
    action: String,
) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let limit = parts
        .extensions
        .get::<BodyLimitInForce>()
        .map_or(FALLBACK_LIMIT, |l| l.0);
    let cx = parts
        .extensions
        .get::<CallContext>()
        .cloned()
        .unwrap_or_default();
    let bytes = match read_body(body, limit).await {
        Ok(bytes) => bytes,
        Err(err) => return err.into_response(),
    };
    let payload = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match crate::web::decode_json::<Value>(&bytes) {
            Ok(payload) => payload,
            Err(err) => return err.into_response(),
        }
    };
    match xcore.call_with(cx, &plugin, &action, payload).await {
        Ok(result) => json_response(
            StatusCode::OK,
            &json!({ "status": "ok", "plugin": plugin, "action": action, "result": result }),
        ),
        Err(err) => HttpError::from(err).into_response(),
    }
}
