//! Durations in config files, written as in manifests: `"5s"`, `"250ms"`, `"1m30s"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Deserializes a duration string.
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(de)?;
    xcore_manifest::parse_duration(&text).map_err(D::Error::custom)
}

/// Serializes a duration as milliseconds (`"250ms"`).
pub(crate) fn serialize<S: Serializer>(d: &Duration, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(&format!("{}ms", d.as_millis()))
}

/// The same, for optional durations.
pub(crate) mod option {
    use super::*;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        de: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(de)?
            .map(|text| xcore_manifest::parse_duration(&text).map_err(D::Error::custom))
            .transpose()
    }

    pub(crate) fn serialize<S: Serializer>(
        d: &Option<Duration>,
        ser: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, ser),
            None => ser.serialize_none(),
        }
    }
}
