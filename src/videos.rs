//! Video records: creation and the JSON shape the API shows for them.

use serde_json::{json, Value};

use crate::body::JsonObject;
use crate::db::{self, videos::VideoRow};
use crate::error::ApiError;
use crate::names::{check_path_name, check_video_key};
use crate::signing::encode_segment;
use crate::startup::AppState;
use crate::time::{iso8601, now_ms};
use crate::tokens::random_id;

/// The longest title accepted, in characters.
const MAX_TITLE_CHARS: usize = 500;

/// Validates a `POST /api/video/create` body and stores the new video; 409 when the id is taken.
pub async fn create(app: &AppState, body: &JsonObject) -> Result<VideoRow, ApiError> {
    let file_name = body.string("fileName")?;
    check_path_name("fileName", &file_name)?;
    let id = match body.opt_string("s3Key")? {
        Some(key) => {
            check_video_key("s3Key", &key)?;
            key
        }
        None => random_id(&app.rng, "vid_", 15),
    };
    let source = body
        .opt_string("source")?
        .unwrap_or_else(|| "composite".into());
    check_video_key("source", &source)?;
    let title = body.opt_string("title")?;
    if title
        .as_ref()
        .is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS)
    {
        return Err(ApiError::InvalidField(format!(
            "title must be at most {MAX_TITLE_CHARS} characters"
        )));
    }
    let now = now_ms();
    let row = VideoRow {
        title: Some(title.unwrap_or_else(|| file_name.clone())),
        id,
        file_name,
        source,
        width: body.opt_non_negative("width")?,
        height: body.opt_non_negative("height")?,
        duration: body.opt_non_negative("duration")?,
        status: "pending".into(),
        object_name: None,
        size: None,
        content_type: None,
        sha256: None,
        created_at: now,
        updated_at: now,
    };
    let stored = row.clone();
    let inserted = app
        .db
        .run(move |conn| Ok(db::videos::insert(conn, &stored)?))
        .await?;
    if !inserted {
        return Err(ApiError::Conflict(format!(
            "a video with id `{}` already exists",
            row.id
        )));
    }
    Ok(row)
}

/// `media_url/VIDEO_ID/composite/FILE`.
pub fn public_url(app: &AppState, video_id: &str, file_name: &str) -> String {
    format!(
        "{}/{}/composite/{}",
        app.media_url,
        encode_segment(video_id),
        encode_segment(file_name)
    )
}

/// The spec's Video object.
pub fn to_json(app: &AppState, v: &VideoRow) -> Value {
    json!({
        "id": v.id,
        "title": v.title,
        "fileName": v.file_name,
        "source": v.source,
        "width": v.width,
        "height": v.height,
        "duration": v.duration,
        "status": v.status,
        "size": v.size,
        "contentType": v.content_type,
        "sha256": v.sha256,
        "passwordProtected": false,
        "publicUrl": v.object_name.as_ref().map(|name| public_url(app, &v.id, name)),
        "createdAt": iso8601(v.created_at),
        "updatedAt": iso8601(v.updated_at),
    })
}
