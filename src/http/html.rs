//! The HTML pages a viewer sees: the watch page, the embed player, the password gate and the
//! 404 page. Plain server-rendered HTML with one stylesheet and one script, both served by
//! flare itself, so pages work offline.

use crate::db::videos::VideoRow;
use crate::domain::embed::EmbedSettings;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body_class: &str, body: &str) -> String {
    layout_with_head(title, body_class, "", body)
}

fn layout_with_head(title: &str, body_class: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} · flare</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/static/flare.css\">\n{head}</head>\n\
         <body class=\"{body_class}\">\n{body}\n</body>\n</html>\n",
        esc(title)
    )
}

/// The absolute addresses a watch page names: itself, its embed, its oEmbed answer.
pub struct WatchLinks {
    pub watch: String,
    pub embed: String,
    pub oembed: String,
}

/// What the players show beside the original: its poster, and renditions (URL, type) that play
/// where the original may not, tried first.
#[derive(Default)]
pub struct Extras {
    pub poster: Option<String>,
    pub renditions: Vec<(String, String)>,
}

impl Extras {
    /// The `<video>` attributes and children that name what to play: `src` alone, or the
    /// renditions' `<source>`s then the original's; and the poster.
    fn video_parts(&self, original: &str, original_type: &str) -> (String, String) {
        let mut attrs = String::new();
        if let Some(p) = &self.poster {
            attrs.push_str(&format!(" poster=\"{}\"", esc(p)));
        }
        if self.renditions.is_empty() {
            attrs.push_str(&format!(" src=\"{}\"", esc(original)));
            return (attrs, String::new());
        }
        let mut sources: String = self
            .renditions
            .iter()
            .map(|(url, ct)| format!("<source src=\"{}\" type=\"{}\">", esc(url), esc(ct)))
            .collect();
        sources.push_str(&format!(
            "<source src=\"{}\" type=\"{}\">",
            esc(original),
            esc(original_type)
        ));
        (attrs, sources)
    }
}

/// `1:02:03` or `4:05`.
fn clock(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn title_of(video: &VideoRow) -> &str {
    video.title.as_deref().unwrap_or(&video.file_name)
}

/// Human size: 1.5 GB, 12.3 MB, 512 KB.
fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1 << 30 => format!("{:.1} GB", b / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", b / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.0} KB", b / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// The video's caption tracks as `<track>` elements (same origin: flare serves `/media/`).
fn tracks(video: &VideoRow) -> String {
    crate::domain::videos::caption_tracks(video)
        .iter()
        .map(|t| {
            format!(
                "<track kind=\"subtitles\" srclang=\"{lang}\" label=\"{label}\" src=\"/media/{id}/captions/{lang}.vtt\">",
                lang = esc(&t.lang),
                label = esc(&t.label),
                id = esc(&crate::domain::signing::encode_segment(&video.id)),
            )
        })
        .collect()
}

/// The watch page: title, the video with the browser's own controls and its captions, what it
/// is (size, duration, pixels, date), share and download, link-preview tags and an oEmbed link;
/// or a note while it is pending.
pub fn watch(video: &VideoRow, media: Option<&str>, extras: &Extras, links: &WatchLinks) -> String {
    let title = title_of(video);
    let info: Option<crate::domain::probe::MediaInfo> = video
        .media
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok());
    let info = info.unwrap_or_default();
    let player = match media {
        Some(url) => {
            let mut facts = vec![video.size.map(human_size).unwrap_or_default()];
            if let Some(d) = video.duration {
                facts.push(clock(d));
            }
            if let (Some(w), Some(h)) = (info.width, info.height) {
                facts.push(format!("{w}×{h}"));
            }
            facts.push(crate::time::iso8601(video.created_at)[..10].to_string());
            let codec = info.video_codec.as_deref().unwrap_or("an unknown codec");
            let (attrs, sources) =
                extras.video_parts(url, video.content_type.as_deref().unwrap_or("video/mp4"));
            format!(
                "<video class=\"watch-video\" controls preload=\"metadata\" playsinline{attrs}>{sources}{tracks}</video>\n\
                 <p class=\"codec-message notice\" role=\"alert\"{hide}>This browser cannot play this video ({codec}). \
                 <a href=\"{src}\" download>Download the original</a> to watch it in a player that can.</p>\n\
                 <p class=\"meta\">{facts}</p>\n\
                 <div class=\"share\" data-watch=\"{watch}\">\n\
                 <button type=\"button\" class=\"share-link\">Copy link</button>\n\
                 <button type=\"button\" class=\"share-time\">Copy link at current time</button>\n\
                 <button type=\"button\" class=\"share-qr\" aria-expanded=\"false\">QR code</button>\n\
                 <a class=\"download\" href=\"{src}\" download>Download</a>\n\
                 <span class=\"share-status\" role=\"status\"></span>\n</div>\n\
                 <figure class=\"qr\" hidden><div class=\"qr-code\"></div><figcaption>Scan to open this page on a phone.</figcaption></figure>\n\
                 <script src=\"/static/qrcode.js\"></script>\n\
                 <script src=\"/static/watch.js\"></script>",
                src = esc(url),
                tracks = tracks(video),
                // A rendition plays where the original does not: no word of it then.
                hide = if info.playable == Some(false) && extras.renditions.is_empty() {
                    ""
                } else {
                    " hidden"
                },
                codec = esc(codec),
                facts = esc(&facts.join(" · ")),
                watch = esc(&links.watch),
            )
        }
        None => "<p class=\"notice\">This video has not been uploaded yet. Reload the page once it has.</p>".into(),
    };
    // Link previews: a protected video's bytes are not named, only its page and embed.
    let (w, h) = (info.width.unwrap_or(640), info.height.unwrap_or(360));
    let mut head = format!(
        "<meta property=\"og:type\" content=\"video.other\">\n\
         <meta property=\"og:title\" content=\"{t}\">\n\
         <meta property=\"og:url\" content=\"{watch}\">\n\
         <meta property=\"og:site_name\" content=\"flare\">\n\
         <meta name=\"twitter:card\" content=\"player\">\n\
         <meta name=\"twitter:title\" content=\"{t}\">\n\
         <meta name=\"twitter:player\" content=\"{embed}\">\n\
         <meta name=\"twitter:player:width\" content=\"{w}\">\n\
         <meta name=\"twitter:player:height\" content=\"{h}\">\n\
         <link rel=\"alternate\" type=\"application/json+oembed\" href=\"{oembed}\" title=\"{t}\">\n",
        t = esc(title),
        watch = esc(&links.watch),
        embed = esc(&links.embed),
        oembed = esc(&links.oembed),
    );
    if let (Some(url), None) = (media, &video.password_hash) {
        head.push_str(&format!(
            "<meta property=\"og:video\" content=\"{u}\">\n\
             <meta property=\"og:video:type\" content=\"{ct}\">\n\
             <meta property=\"og:video:width\" content=\"{w}\">\n\
             <meta property=\"og:video:height\" content=\"{h}\">\n",
            u = esc(url),
            ct = esc(video.content_type.as_deref().unwrap_or("video/mp4")),
        ));
        if let Some(poster) = &extras.poster {
            head.push_str(&format!(
                "<meta property=\"og:image\" content=\"{p}\">\n\
                 <meta name=\"twitter:image\" content=\"{p}\">\n",
                p = esc(poster)
            ));
        }
    }
    layout_with_head(
        title,
        "page-watch",
        &head,
        &format!(
            "<main class=\"watch\">\n<h1>{}</h1>\n{player}\n</main>",
            esc(title)
        ),
    )
}

/// The password gate, for the watch page (`/v/ID`) or the embed (`/embed/ID`).
pub(crate) fn password_form(video: &VideoRow, action: &str, error: Option<&str>) -> String {
    let title = title_of(video);
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(e)))
        .unwrap_or_default();
    layout(
        title,
        "page-gate",
        &format!(
            "<main class=\"gate\">\n<h1>{}</h1>\n<p>This video is protected by a password.</p>\n{error}\
             <form method=\"post\" action=\"{}\">\n\
             <label for=\"password\">Password</label>\n\
             <input id=\"password\" name=\"password\" type=\"password\" required autofocus autocomplete=\"current-password\">\n\
             <button type=\"submit\">Watch</button>\n</form>\n{embedded}</main>",
            esc(title),
            esc(action),
            embedded = if action.starts_with("/embed/") {
                // Inside another site's page, a browser may not keep the password's cookie.
                format!(
                    "<p class=\"notice\">On another site, your browser may not keep the password in \
                     this player. <a href=\"/v/{}\" target=\"_blank\" rel=\"noopener\">Watch on the \
                     video's own page</a> instead.</p>\n",
                    esc(&crate::domain::signing::encode_segment(&video.id))
                )
            } else {
                String::new()
            },
        ),
    )
}

pub(crate) fn not_found() -> String {
    layout(
        "Video not found",
        "page-missing",
        "<main class=\"missing\">\n<h1>Video not found</h1>\n\
         <p>There is no video at this address. It may have been deleted, or the link may be \
         incomplete: check that it was copied whole.</p>\n</main>",
    )
}

const ICON_PLAY: &str =
    "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><path d=\"M8 5v14l11-7z\"/></svg>";
const ICON_VOLUME: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><path d=\"M4 9v6h4l5 5V4L8 9H4zm12.5 3a4.5 4.5 0 0 0-2.5-4v8a4.5 4.5 0 0 0 2.5-4z\"/></svg>";
const ICON_FULLSCREEN: &str = "<svg viewBox=\"0 0 24 24\" aria-hidden=\"true\"><path d=\"M7 14H5v5h5v-2H7v-3zm-2-4h2V7h3V5H5v5zm12 7h-3v2h5v-5h-2v3zM14 5v2h3v3h2V5h-5z\"/></svg>";

/// The embed player, honouring every setting. `watch` is the watch page's URL for the branding.
pub fn embed(
    video: &VideoRow,
    media: Option<&str>,
    extras: &Extras,
    s: &EmbedSettings,
    watch: &str,
) -> String {
    let title = title_of(video);
    let Some(url) = media else {
        return layout(
            title,
            "page-embed",
            "<div class=\"player pending\"><p>This video has not been uploaded yet.</p></div>",
        );
    };
    let c = &s.control_options;
    let mut attrs = String::new();
    // Browsers only autoplay muted video, so autoplay implies muted.
    if s.autoplay {
        attrs.push_str(" autoplay");
    }
    if s.muted || s.autoplay {
        attrs.push_str(" muted");
    }
    if s.loop_ {
        attrs.push_str(" loop");
    }
    if !s.allow_download {
        attrs.push_str(" controlslist=\"nodownload\"");
    }
    let mut controls = String::new();
    let mut add = |on: bool, html: String| {
        if on {
            controls.push_str(&html);
            controls.push('\n');
        }
    };
    add(
        c.show_play_button,
        format!(
            "<button class=\"ctl-play\" type=\"button\" aria-label=\"Play\">{ICON_PLAY}</button>"
        ),
    );
    add(c.show_progress, "<input class=\"ctl-progress\" type=\"range\" min=\"0\" max=\"1000\" step=\"1\" value=\"0\" aria-label=\"Seek\">".into());
    add(
        c.show_time,
        "<span class=\"ctl-time\" aria-live=\"off\">0:00 / 0:00</span>".into(),
    );
    add(
        c.show_volume,
        format!(
            "<button class=\"ctl-mute\" type=\"button\" aria-label=\"Mute\">{ICON_VOLUME}</button>\n\
             <input class=\"ctl-volume\" type=\"range\" min=\"0\" max=\"1\" step=\"0.05\" value=\"1\" aria-label=\"Volume\">"
        ),
    );
    add(
        c.show_speed,
        "<select class=\"ctl-speed\" aria-label=\"Playback speed\"><option value=\"0.5\">0.5×</option>\
         <option value=\"1\" selected>1×</option><option value=\"1.25\">1.25×</option>\
         <option value=\"1.5\">1.5×</option><option value=\"2\">2×</option></select>"
            .into(),
    );
    // The Captions control only when there is something to show.
    let tracks = tracks(video);
    add(c.show_captions && !tracks.is_empty(), "<button class=\"ctl-captions\" type=\"button\" aria-label=\"Captions\" aria-pressed=\"false\">CC</button>".into());
    add(c.show_fullscreen, format!("<button class=\"ctl-fullscreen\" type=\"button\" aria-label=\"Fullscreen\">{ICON_FULLSCREEN}</button>"));
    add(
        s.allow_download,
        format!(
            "<a class=\"ctl-download\" href=\"{}\" download>Download</a>",
            esc(url)
        ),
    );
    let branding = if s.show_branding {
        format!(
            "<a class=\"branding\" href=\"{}\" target=\"_blank\" rel=\"noopener\">flare</a>\n",
            esc(watch)
        )
    } else {
        String::new()
    };
    let (play, sources) =
        extras.video_parts(url, video.content_type.as_deref().unwrap_or("video/mp4"));
    let body = format!(
        "<div class=\"player theme-{theme}\" style=\"--accent: {accent}; --radius: {radius}px\" \
         data-thumbnail-time=\"{thumb}\" data-autoplay=\"{autoplay}\">\n\
         <video preload=\"metadata\" playsinline{play} aria-label=\"{label}\"{attrs}>{sources}{tracks}</video>\n\
         <div class=\"controls\">\n{controls}</div>\n{branding}</div>\n\
         <script src=\"/static/player.js\"></script>",
        theme = esc(&s.player_theme),
        accent = esc(&s.accent_color),
        radius = s.embed_border_radius,
        thumb = s.thumbnail_time,
        autoplay = s.autoplay,
        label = esc(title),
    );
    layout(title, "page-embed", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn sizes_read_like_a_person_would_say_them() {
        assert_eq!(human_size(512), "512 bytes");
        assert_eq!(human_size(3 << 20), "3.0 MB");
        assert_eq!(human_size(5 << 30), "5.0 GB");
    }
}
