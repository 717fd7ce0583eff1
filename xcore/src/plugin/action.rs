//! Helpers of typed actions: what `#[actions]` expands to, usable by hand as well.

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::CallError;

/// Deserializes an action's payload into its input type.
///
/// A payload that does not fit is an `invalid_payload` error naming the path of the field at
/// fault (`user.email`, `items[2].qty`, or `.` for the payload itself).
///
/// Unknown fields are ignored (serde's default) unless `T` (or the nested type) says
/// `#[serde(deny_unknown_fields)]`: then they are an `invalid_payload` error naming the field.
///
/// ```
/// #[derive(Debug, serde::Deserialize)]
/// struct Input { count: u32 }
///
/// let err = xcore::plugin::decode_input::<Input>(serde_json::json!({"count": "three"})).unwrap_err();
/// assert_eq!(err.code(), xcore::ErrorCode::InvalidPayload);
/// assert!(err.message().contains("`count`"));
/// ```
pub fn decode_input<T: DeserializeOwned>(payload: Value) -> Result<T, CallError> {
    serde_path_to_error::deserialize(payload).map_err(|err| {
        let path = err.path().to_string();
        CallError::invalid_payload(&path, err.into_inner())
    })
}

/// Serializes an action's output.
pub fn encode_output<T: Serialize>(output: &T) -> Result<Value, CallError> {
    serde_json::to_value(output)
        .map_err(|e| CallError::internal(format!("the action's output does not serialize: {e}")))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct User {
        name: String,
        address: Address,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Address {
        zip: u32,
    }

    #[test]
    fn names_the_field_path() {
        let err = decode_input::<User>(json!({"name": "a", "address": {"zip": "x"}})).unwrap_err();
        assert!(err.message().contains("`address.zip`"), "{}", err.message());
        assert_eq!(err.details().unwrap()["errors"][0]["path"], "address.zip");
        let err = decode_input::<User>(json!(3)).unwrap_err();
        assert!(err.message().contains("`.`"), "{}", err.message());
        let err = decode_input::<User>(json!({"name": "a"})).unwrap_err();
        assert!(err.message().contains("address"), "{}", err.message());
    }
}
