//! Request bodies read into the domain's typed inputs. The wire's field names (`fileName`,
//! `s3Key`, `expiresIn`…) live here and nowhere deeper, and every refusal names its field.

use serde_json::Value;

use crate::config::Settings;
use crate::domain::names::{check_path_name, check_video_key};
use crate::domain::passwords::MAX_PASSWORD_CHARS;
use crate::domain::uploads::PresignRequest;
use crate::domain::videos::{check_title, NewVideo, VideoUpdate};
use crate::error::ApiError;
use crate::json::JsonObject;

/// A `limit` query parameter: a whole number from 1 to `max`, `default` when absent.
pub(crate) fn limit_query(query: &str, default: u32, max: u32) -> Result<u32, ApiError> {
    let pairs = actix_web::web::Query::<Vec<(String, String)>>::from_query(query)
        .map_err(|_| ApiError::InvalidField("the query string could not be read".into()))?;
    match pairs.iter().find(|(k, _)| k == "limit") {
        None => Ok(default),
        Some((_, v)) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                ApiError::InvalidField(format!("limit must be a whole number from 1 to {max}"))
            }),
    }
}

/// `POST /api/webhooks`: `url`, optional `events` (strings), optional `secret` (`whsec_…`).
pub(crate) fn new_webhook(body: &JsonObject) -> Result<crate::domain::webhooks::NewHook, ApiError> {
    let events = match body.0.get("events").filter(|v| !v.is_null()) {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|v| {
                    v.as_str().map(String::from).ok_or_else(|| {
                        ApiError::InvalidField("events must be an array of event names".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(ApiError::InvalidField(
                "events must be an array of event names".into(),
            ))
        }
    };
    Ok(crate::domain::webhooks::NewHook {
        url: body.string("url")?,
        events,
        secret: body.opt_string("secret")?,
    })
}

/// `POST /api/video/create`. `reserved`: words a chosen id may not be (the route table's own,
/// so no id can collide with a route).
pub(crate) fn new_video(body: &JsonObject, reserved: &[&str]) -> Result<NewVideo, ApiError> {
    let file_name = body.string("fileName")?;
    check_path_name("fileName", &file_name)?;
    let id = body.opt_string("s3Key")?;
    if let Some(key) = &id {
        check_video_key("s3Key", key)?;
        if reserved.contains(&key.as_str()) {
            return Err(ApiError::InvalidField(format!(
                "s3Key `{key}` is reserved: it is a word of flare's own paths ({}); choose another",
                reserved.join(", ")
            )));
        }
    }
    let source = body
        .opt_string("source")?
        .unwrap_or_else(|| "composite".into());
    check_video_key("source", &source)?;
    Ok(NewVideo {
        title: body.opt_string("title")?.map(check_title).transpose()?,
        file_name,
        id,
        source,
        width: body.opt_non_negative("width")?,
        height: body.opt_non_negative("height")?,
        duration: body.opt_non_negative("duration")?,
    })
}

/// `PATCH /api/video/update/:id`: `title` renames; a `password` string protects, `null` clears.
pub(crate) fn video_update(body: &JsonObject) -> Result<VideoUpdate, ApiError> {
    let title = body.opt_string("title")?.map(check_title).transpose()?;
    let password = match body.0.get("password") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(p)) if !p.is_empty() && p.chars().count() <= MAX_PASSWORD_CHARS => {
            Some(Some(p.clone()))
        }
        Some(Value::String(_)) => {
            return Err(ApiError::InvalidField(format!(
            "password must be 1 to {MAX_PASSWORD_CHARS} characters, or null to remove protection"
        )))
        }
        Some(_) => {
            return Err(ApiError::InvalidField(
                "password must be a string, or null to remove protection".into(),
            ))
        }
    };
    Ok(VideoUpdate { title, password })
}

/// `PATCH /api/video/:id/embed-settings`: the `embedSettings` object to merge.
pub(crate) fn embed_patch(body: &JsonObject) -> Result<serde_json::Map<String, Value>, ApiError> {
    match body.0.get("embedSettings") {
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(ApiError::InvalidField(
            "embedSettings must be an object".into(),
        )),
        None => Err(ApiError::InvalidField(
            "embedSettings is required (an object)".into(),
        )),
    }
}

/// `POST /api/video/upload/presign`.
pub fn presign(body: &JsonObject, settings: &Settings) -> Result<PresignRequest, ApiError> {
    let video_id = body.string("videoId")?;
    check_path_name("videoId", &video_id)?;
    let file_name = body.string("fileName")?;
    check_path_name("fileName", &file_name)?;
    Ok(PresignRequest {
        video_id,
        file_name,
        expires_in: body.opt_u64_in("expiresIn", 1, settings.max_upload_url_ttl_secs)?,
        size: body.opt_u64_in("size", 1, settings.max_upload_bytes)?,
        resumable: body.opt_bool("resumable")?.unwrap_or(false),
    })
}
