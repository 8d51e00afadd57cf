//! Names that become paths: which `videoId`, `fileName` and `s3Key` values are safe, and the
//! extension table that gives an upload its Content-Type.

use crate::error::ApiError;

/// The only extensions accepted, with the Content-Type each upload is signed for (spec § Presign).
pub const CONTENT_TYPES: &[(&str, &str)] = &[
    ("mp4", "video/mp4"),
    ("m4v", "video/x-m4v"),
    ("mov", "video/quicktime"),
    ("webm", "video/webm"),
    ("mkv", "video/x-matroska"),
    ("ogv", "video/ogg"),
];

/// The longest name accepted, in bytes: the usual file-system limit for one path component.
pub(crate) const MAX_NAME_BYTES: usize = 255;

pub(crate) fn allowed_extensions() -> String {
    CONTENT_TYPES
        .iter()
        .map(|(ext, _)| format!(".{ext}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unsupported(ext: &str) -> ApiError {
    ApiError::UnsupportedFileType(format!(
        "files ending in `{ext}` are not accepted; use one of: {}",
        allowed_extensions()
    ))
}

/// The Content-Type for a file name, from its extension (case-insensitive).
pub(crate) fn content_type_for(file_name: &str) -> Result<&'static str, ApiError> {
    let ext = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext,
        _ => return Err(unsupported("")),
    };
    CONTENT_TYPES
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(ext))
        .map(|(_, ct)| *ct)
        .ok_or_else(|| unsupported(&format!(".{ext}")))
}

/// Refuses a name that could leave its folder or confuse a path: empty, over 255 bytes, a
/// leading dot (covers `.` and `..`), `/`, `\`, NUL or any control character, and — because
/// file systems and URLs disagree about them — Unicode look-alikes of `/`, `\` and `.` and
/// names with leading or trailing whitespace. `field` is named in the error.
pub fn check_path_name(field: &str, name: &str) -> Result<(), ApiError> {
    let refuse = |why: &str| Err(ApiError::InvalidField(format!("{field} {why}")));
    if name.is_empty() {
        return refuse("must not be empty");
    }
    if name.len() > MAX_NAME_BYTES {
        return refuse(&format!("must be at most {MAX_NAME_BYTES} bytes long"));
    }
    if name.starts_with('.') {
        return refuse("must not start with a dot");
    }
    if name.contains("..") {
        return refuse("must not contain `..`");
    }
    if name.trim() != name {
        return refuse("must not start or end with whitespace");
    }
    for c in name.chars() {
        if c == '/' || c == '\\' {
            return refuse("must not contain `/` or `\\`");
        }
        if c.is_control() {
            return refuse("must not contain NUL or control characters");
        }
        if LOOKALIKES.contains(&c) {
            return refuse(&format!(
                "must not contain U+{:04X}, which looks like a path separator or a dot",
                c as u32
            ));
        }
    }
    Ok(())
}

/// Characters that render as `/`, `\` or `.` and that some tools normalise into them.
const LOOKALIKES: &[char] = &[
    '\u{2215}', // DIVISION SLASH
    '\u{2044}', // FRACTION SLASH
    '\u{29F8}', // BIG SOLIDUS
    '\u{FF0F}', // FULLWIDTH SOLIDUS
    '\u{29F9}', // BIG REVERSE SOLIDUS
    '\u{FF3C}', // FULLWIDTH REVERSE SOLIDUS
    '\u{2024}', // ONE DOT LEADER
    '\u{FF0E}', // FULLWIDTH FULL STOP
    '\u{FE52}', // SMALL FULL STOP
    '\u{2025}', // TWO DOT LEADER
    '\u{FFFD}', // REPLACEMENT CHARACTER: what broken percent-decoding leaves behind
];

/// A video id chosen by the client (`s3Key`): `[A-Za-z0-9_-]{1,64}`.
pub(crate) fn check_video_key(field: &str, key: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidField(format!(
            "{field} must be 1 to 64 characters from A-Z, a-z, 0-9, `_` and `-`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_comes_from_the_extension_table() {
        assert_eq!(content_type_for("demo.mp4").unwrap(), "video/mp4");
        assert_eq!(content_type_for("DEMO.MOV").unwrap(), "video/quicktime");
        assert_eq!(content_type_for("a.b.webm").unwrap(), "video/webm");
        for bad in [
            "demo.exe",
            "demo",
            "mp4",
            ".mp4",
            "demo.mp4.",
            "demo.mp4.sh",
        ] {
            let err = content_type_for(bad).unwrap_err();
            assert_eq!(err.code(), "unsupported-file-type", "{bad}");
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        let long = "a".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "../x.mp4",
            "..\\x.mp4",
            "a/b.mp4",
            "a\\b.mp4",
            ".hidden.mp4",
            "a..b.mp4",
            "a\0b.mp4",
            "a\nb.mp4",
            "a\u{7f}.mp4",
            " ",
            " x.mp4",
            "x.mp4 ",
            "a\u{2215}b.mp4",
            "a\u{FF0F}b.mp4",
            "\u{FF0E}\u{FF0E}",
            long.as_str(),
        ] {
            assert!(
                check_path_name("fileName", bad).is_err(),
                "{bad:?} was accepted"
            );
        }
    }

    #[test]
    fn ordinary_names_are_accepted() {
        let longest = format!("{}.mp4", "a".repeat(251));
        for good in [
            "demo.mp4",
            "My Talk (final).mov",
            "vidéo-été.webm",
            "vid_abc-123",
            &longest,
        ] {
            assert!(
                check_path_name("fileName", good).is_ok(),
                "{good:?} was refused"
            );
        }
    }

    #[test]
    fn video_keys_use_a_narrow_alphabet() {
        assert!(check_video_key("s3Key", "abc_DEF-123").is_ok());
        assert!(check_video_key("s3Key", &"a".repeat(64)).is_ok());
        for bad in ["", "a b", "a/b", "a.b", "ü", &"a".repeat(65)] {
            assert!(check_video_key("s3Key", bad).is_err(), "{bad:?}");
        }
    }
}
