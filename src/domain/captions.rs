//! Captions: one WebVTT text per video and language, uploaded as WebVTT or SubRip (SRT, turned
//! into WebVTT here), shown by the watch and embed players.

use crate::db::{self, captions::CaptionTrack};
use crate::domain::videos;
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::now_ms;

/// The largest caption file accepted (a feature film's subtitles are about 100 KB).
pub const MAX_CAPTION_BYTES: usize = 2 << 20;

/// A language tag as BCP 47 writes them (`en`, `pt-BR`, `zh-Hant`): letters, digits, hyphens.
pub fn check_lang(lang: &str) -> Result<(), ApiError> {
    let ok = (2..=35).contains(&lang.len())
        && lang
            .split('-')
            .all(|p| !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric()))
        && lang
            .split('-')
            .next()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphabetic()));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidField(format!(
            "lang `{lang}` is not a language tag such as en, fr or pt-BR"
        )))
    }
}

/// The body as WebVTT: WebVTT is checked, SubRip converted; anything else refused.
pub fn to_webvtt(body: &[u8]) -> Result<String, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::InvalidField("captions must be UTF-8 text".into()))?;
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let cue = |l: &str| l.contains("-->");
    if text.starts_with("WEBVTT") {
        if !text.lines().any(cue) {
            return Err(ApiError::InvalidField(
                "the WebVTT file has no cue (a line such as `00:00:01.000 --> 00:00:04.000`)"
                    .into(),
            ));
        }
        return Ok(text);
    }
    // SubRip: numbered cues with `00:00:01,000 --> 00:00:04,000`; WebVTT wants a dot.
    if !text.lines().any(cue) {
        return Err(ApiError::InvalidField(
            "captions must be WebVTT (starting with WEBVTT) or SubRip (SRT) text".into(),
        ));
    }
    let mut out = String::from("WEBVTT\n\n");
    for line in text.lines() {
        if cue(line) {
            out.push_str(&line.replace(',', "."));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

/// Stores one language's captions (replacing any); `label` defaults to the language tag.
pub async fn put(
    app: &AppState,
    video_id: &str,
    lang: &str,
    label: Option<String>,
    body: &[u8],
) -> Result<Vec<CaptionTrack>, ApiError> {
    check_lang(lang)?;
    let vtt = to_webvtt(body)?;
    let label = label.unwrap_or_else(|| lang.to_string());
    if label.is_empty() || label.chars().count() > 100 {
        return Err(ApiError::InvalidField(
            "label must be 1 to 100 characters".into(),
        ));
    }
    videos::get(app, video_id).await?;
    let track = CaptionTrack {
        lang: lang.to_string(),
        label,
    };
    let id = video_id.to_string();
    app.db
        .write(move |conn| Ok::<_, ApiError>(db::captions::put(conn, &id, &track, &vtt, now_ms())?))
        .await?;
    Ok(videos::caption_tracks(&videos::get(app, video_id).await?))
}

/// Removes one language's captions; 404 when there are none.
pub async fn delete(app: &AppState, video_id: &str, lang: &str) -> Result<(), ApiError> {
    videos::get(app, video_id).await?;
    let (id, l) = (video_id.to_string(), lang.to_string());
    let removed = app
        .db
        .write(move |conn| Ok::<_, ApiError>(db::captions::remove(conn, &id, &l, now_ms())?))
        .await?;
    if removed {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "video `{video_id}` has no captions in `{lang}`"
        )))
    }
}

/// The WebVTT text of one language and when it was stored.
pub async fn text(
    app: &AppState,
    video_id: &str,
    lang: &str,
) -> Result<Option<(String, i64)>, ApiError> {
    let (id, l) = (video_id.to_string(), lang.to_string());
    app.db
        .read(move |conn| Ok::<_, ApiError>(db::captions::get(conn, &id, &l)?))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subrip_becomes_webvtt_and_webvtt_is_kept() {
        let srt = b"1\r\n00:00:01,000 --> 00:00:02,500\r\nHello, world\r\n\r\n2\r\n00:00:03,000 --> 00:00:04,000\r\nBye\r\n";
        let vtt = to_webvtt(srt).unwrap();
        assert_eq!(
            vtt,
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\nHello, world\n\n2\n00:00:03.000 --> 00:00:04.000\nBye\n"
        );
        let kept = "WEBVTT\n\n00:01.000 --> 00:02.000\nHi\n";
        assert_eq!(to_webvtt(kept.as_bytes()).unwrap(), kept);
        assert!(to_webvtt(b"WEBVTT\n\nno cues").is_err());
        assert!(to_webvtt(b"just text").is_err());
        assert!(to_webvtt(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn language_tags() {
        for ok in ["en", "fr", "pt-BR", "zh-Hant", "es-419"] {
            assert!(check_lang(ok).is_ok(), "{ok}");
        }
        for bad in ["", "e", "en_US", "../x", "en-", "12", "en US"] {
            assert!(check_lang(bad).is_err(), "{bad}");
        }
    }
}
