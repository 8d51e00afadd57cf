//! A JSON object body, read field by field so that every refusal names the field. Unknown keys
//! are ignored.

use serde_json::{Map, Value};

use crate::error::ApiError;

pub struct JsonObject(pub Map<String, Value>);

impl JsonObject {
    /// Parses a body already read: an object, or `invalid-json`.
    pub fn parse(bytes: &[u8]) -> Result<JsonObject, ApiError> {
        parse_object(bytes)
    }
}

fn parse_object(buf: &[u8]) -> Result<JsonObject, ApiError> {
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson(
            "the body is empty; send a JSON object".into(),
        ));
    }
    match serde_json::from_slice::<Value>(buf) {
        Ok(Value::Object(map)) => Ok(JsonObject(map)),
        Ok(_) => Err(ApiError::InvalidJson(
            "the body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::InvalidJson(format!(
            "the body is not valid JSON ({e})"
        ))),
    }
}

impl JsonObject {
    /// A present, non-null value.
    fn value(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    pub fn string(&self, field: &str) -> Result<String, ApiError> {
        self.opt_string(field)?
            .ok_or_else(|| ApiError::InvalidField(format!("{field} is required (a string)")))
    }

    pub(crate) fn opt_string(&self, field: &str) -> Result<Option<String>, ApiError> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::InvalidField(format!("{field} must be a string"))),
        }
    }

    /// An optional `true` or `false`.
    pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.value(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(ApiError::InvalidField(format!(
                "{field} must be true or false"
            ))),
        }
    }

    /// An optional whole number within `min..=max`.
    pub fn opt_u64_in(&self, field: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
        let Some(v) = self.value(field) else {
            return Ok(None);
        };
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(ApiError::InvalidField(format!(
                "{field} must be a whole number from {min} to {max}"
            ))),
        }
    }

    /// An optional finite number ≥ 0.
    pub fn opt_non_negative(&self, field: &str) -> Result<Option<f64>, ApiError> {
        let Some(v) = self.value(field) else {
            return Ok(None);
        };
        match v.as_f64() {
            Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
            _ => Err(ApiError::InvalidField(format!(
                "{field} must be a number ≥ 0"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_field() {
        let obj = parse_object(br#"{"a": 5, "b": "x", "c": -1, "d": 1.5, "n": null}"#).unwrap();
        assert!(obj
            .string("a")
            .unwrap_err()
            .message()
            .contains("a must be a string"));
        assert!(obj
            .string("zz")
            .unwrap_err()
            .message()
            .contains("zz is required"));
        assert_eq!(obj.opt_string("n").unwrap(), None);
        assert_eq!(obj.opt_string("b").unwrap().as_deref(), Some("x"));
        assert!(obj
            .opt_u64_in("c", 1, 10)
            .unwrap_err()
            .message()
            .starts_with("c must"));
        assert!(obj.opt_u64_in("d", 1, 10).is_err());
        assert_eq!(obj.opt_u64_in("a", 1, 10).unwrap(), Some(5));
        assert!(obj.opt_u64_in("a", 6, 10).is_err());
        assert!(obj.opt_non_negative("c").is_err());
        assert_eq!(obj.opt_non_negative("d").unwrap(), Some(1.5));
    }

    #[test]
    fn bodies_that_are_not_objects_are_invalid_json() {
        for bad in [&b""[..], b"  ", b"[1]", b"\"x\"", b"{", b"{\"a\":}", b"nul"] {
            assert_eq!(
                parse_object(bad).err().map(|e| e.code()),
                Some("invalid-json")
            );
        }
    }
}
