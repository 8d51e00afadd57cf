//! Embed settings: their defaults, and partial updates validated field by field.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmbedSettings {
    pub player_theme: String,
    pub accent_color: String,
    pub embed_border_radius: u8,
    pub thumbnail_time: f64,
    pub control_options: ControlOptions,
    pub autoplay: bool,
    #[serde(rename = "loop")]
    pub loop_: bool,
    pub muted: bool,
    pub show_branding: bool,
    pub allow_download: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ControlOptions {
    pub show_play_button: bool,
    pub show_progress: bool,
    pub show_time: bool,
    pub show_volume: bool,
    pub show_speed: bool,
    pub show_fullscreen: bool,
    pub show_captions: bool,
}

impl Default for EmbedSettings {
    fn default() -> Self {
        EmbedSettings {
            player_theme: "flare".into(),
            accent_color: "#FF6702".into(),
            embed_border_radius: 12,
            thumbnail_time: 0.0,
            control_options: ControlOptions::default(),
            autoplay: false,
            loop_: false,
            muted: false,
            show_branding: true,
            allow_download: false,
        }
    }
}

impl Default for ControlOptions {
    fn default() -> Self {
        ControlOptions {
            show_play_button: true,
            show_progress: true,
            show_time: true,
            show_volume: true,
            show_speed: true,
            show_fullscreen: true,
            show_captions: true,
        }
    }
}

pub(crate) const THEMES: [&str; 3] = ["flare", "minimal", "custom"];
const MAX_RADIUS: u64 = 24;

impl EmbedSettings {
    /// The stored JSON over the defaults; damaged JSON falls back to the defaults.
    pub(crate) fn from_stored(stored: Option<&str>) -> EmbedSettings {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }

    pub(crate) fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("settings serialise")
    }

    /// Applies a partial update. Every key must be known and every value in range; the error
    /// names the field (`embedSettings.controlOptions.showTime`).
    pub fn merge(&self, patch: &Map<String, Value>) -> Result<EmbedSettings, ApiError> {
        let mut out = self.clone();
        for (key, value) in patch {
            let field = format!("embedSettings.{key}");
            let bad = |what: &str| Err(ApiError::InvalidField(format!("{field} must be {what}")));
            match key.as_str() {
                "playerTheme" => match value.as_str() {
                    Some(t) if THEMES.contains(&t) => out.player_theme = t.to_string(),
                    _ => return bad("one of \"flare\", \"minimal\", \"custom\""),
                },
                "accentColor" => match value.as_str() {
                    Some(c) if is_hex_color(c) => out.accent_color = c.to_string(),
                    _ => return bad("a colour written #RRGGBB"),
                },
                "embedBorderRadius" => match value.as_u64().or_else(|| whole(value)) {
                    Some(r) if r <= MAX_RADIUS => out.embed_border_radius = r as u8,
                    _ => return bad("a whole number of pixels from 0 to 24"),
                },
                "thumbnailTime" => match value.as_f64() {
                    Some(t) if t.is_finite() && t >= 0.0 => out.thumbnail_time = t,
                    _ => return bad("a number of seconds ≥ 0"),
                },
                "controlOptions" => {
                    let Some(options) = value.as_object() else {
                        return bad("an object of booleans");
                    };
                    for (name, v) in options {
                        let field = format!("{field}.{name}");
                        let slot = match name.as_str() {
                            "showPlayButton" => &mut out.control_options.show_play_button,
                            "showProgress" => &mut out.control_options.show_progress,
                            "showTime" => &mut out.control_options.show_time,
                            "showVolume" => &mut out.control_options.show_volume,
                            "showSpeed" => &mut out.control_options.show_speed,
                            "showFullscreen" => &mut out.control_options.show_fullscreen,
                            "showCaptions" => &mut out.control_options.show_captions,
                            _ => {
                                return Err(ApiError::InvalidField(format!(
                                    "{field} is not a known control option"
                                )))
                            }
                        };
                        *slot = v.as_bool().ok_or_else(|| {
                            ApiError::InvalidField(format!("{field} must be true or false"))
                        })?;
                    }
                }
                "autoplay" | "loop" | "muted" | "showBranding" | "allowDownload" => {
                    let Some(b) = value.as_bool() else {
                        return bad("true or false");
                    };
                    match key.as_str() {
                        "autoplay" => out.autoplay = b,
                        "loop" => out.loop_ = b,
                        "muted" => out.muted = b,
                        "showBranding" => out.show_branding = b,
                        _ => out.allow_download = b,
                    }
                }
                _ => {
                    return Err(ApiError::InvalidField(format!(
                        "{field} is not a known embed setting"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// 12.0 is as good as 12 for a radius.
fn whole(v: &Value) -> Option<u64> {
    v.as_f64()
        .filter(|f| f.fract() == 0.0 && *f >= 0.0)
        .map(|f| f as u64)
}

fn is_hex_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn a_partial_update_keeps_what_it_does_not_name() {
        let base = EmbedSettings::default();
        let merged = base
            .merge(&patch(
                json!({ "accentColor": "#00aa11", "controlOptions": { "showSpeed": false } }),
            ))
            .unwrap();
        assert_eq!(merged.accent_color, "#00aa11");
        assert!(!merged.control_options.show_speed);
        assert!(merged.control_options.show_time);
        assert_eq!(merged.player_theme, "flare");
        let again = merged.merge(&patch(json!({ "loop": true }))).unwrap();
        assert!(again.loop_ && !again.control_options.show_speed);
        assert_eq!(again.to_json()["loop"], true);
    }

    #[test]
    fn bad_values_name_their_field() {
        let base = EmbedSettings::default();
        for (p, field) in [
            (
                json!({ "playerTheme": "dark" }),
                "embedSettings.playerTheme",
            ),
            (json!({ "accentColor": "red" }), "embedSettings.accentColor"),
            (
                json!({ "accentColor": "#12345" }),
                "embedSettings.accentColor",
            ),
            (
                json!({ "embedBorderRadius": 25 }),
                "embedSettings.embedBorderRadius",
            ),
            (
                json!({ "embedBorderRadius": -1 }),
                "embedSettings.embedBorderRadius",
            ),
            (
                json!({ "embedBorderRadius": 1.5 }),
                "embedSettings.embedBorderRadius",
            ),
            (
                json!({ "thumbnailTime": -2 }),
                "embedSettings.thumbnailTime",
            ),
            (json!({ "autoplay": "yes" }), "embedSettings.autoplay"),
            (
                json!({ "controlOptions": true }),
                "embedSettings.controlOptions",
            ),
            (
                json!({ "controlOptions": { "showTime": 1 } }),
                "embedSettings.controlOptions.showTime",
            ),
            (
                json!({ "controlOptions": { "showLasers": true } }),
                "embedSettings.controlOptions.showLasers",
            ),
            (json!({ "sparkles": true }), "embedSettings.sparkles"),
        ] {
            let err = base.merge(&patch(p.clone())).unwrap_err();
            assert_eq!(err.code(), "invalid-field");
            assert!(err.message().starts_with(field), "{p}: {}", err.message());
        }
        assert_eq!(
            base.merge(&patch(json!({ "embedBorderRadius": 24.0 })))
                .unwrap()
                .embed_border_radius,
            24
        );
    }

    #[test]
    fn stored_settings_fill_in_defaults() {
        let s = EmbedSettings::from_stored(Some(
            r#"{"muted": true, "controlOptions": {"showTime": false}}"#,
        ));
        assert!(s.muted && !s.control_options.show_time && s.control_options.show_volume);
        assert_eq!(EmbedSettings::from_stored(None), EmbedSettings::default());
        assert_eq!(
            EmbedSettings::from_stored(Some("{broken")),
            EmbedSettings::default()
        );
    }
}
