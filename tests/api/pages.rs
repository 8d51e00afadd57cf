//! The watch and embed pages, password protection of the bytes, and framing rules.

use crate::helpers::{sample, Response, TestApp};
use serde_json::json;

fn protect(app: &TestApp, id: &str, password: &str) {
    let res = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": password })),
    );
    assert_eq!(res.status, 200, "{}", res.text());
}

fn unlock(app: &TestApp, page: &str, id: &str, password: &str) -> Response {
    let body = format!(
        "password={}",
        password.replace(' ', "+").replace('!', "%21")
    );
    app.send(
        "POST",
        &format!("/{page}/{id}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

/// `name=value` of the access cookie set by a successful unlock.
fn grant_cookie(res: &Response) -> String {
    res.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn the_watch_page_shows_the_title_and_a_player_on_the_public_url() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", &sample(2000));
    app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "title": "Talk <script>alert(1)</script>" })),
    );
    let res = app.send("GET", &format!("/v/{id}"), &[], b"");
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    let html = res.text();
    assert!(
        html.contains("Talk &lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"));
    assert!(html.contains(&format!("<video class=\"watch-video\" controls preload=\"metadata\" playsinline src=\"{}/media/{id}/composite/demo.mp4\"", app.base)));
    assert!(html.contains("/static/flare.css"));
    let css = app.send("GET", "/static/flare.css", &[], b"");
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
}

#[test]
fn unknown_ids_get_a_friendly_404_page() {
    let app = TestApp::spawn();
    for path in ["/v/vid_nope", "/embed/vid_nope"] {
        let res = app.send("GET", path, &[], b"");
        assert_eq!(res.status, 404, "{path}");
        assert!(res.header("content-type").unwrap().starts_with("text/html"));
        assert!(res.text().contains("Video not found"), "{path}");
    }
}

#[test]
fn a_protected_video_is_unreachable_without_its_password_and_reachable_with_it() {
    let app = TestApp::spawn();
    let body = sample(10_000);
    let (id, public) = app.upload("demo.mp4", &body);
    protect(&app, &id, "secret 123!");

    for (method, range) in [
        ("GET", None),
        ("HEAD", None),
        ("GET", Some("bytes=0-1")),
        ("GET", Some("bytes=-500")),
    ] {
        let headers: Vec<(&str, &str)> = range.map(|r| vec![("Range", r)]).unwrap_or_default();
        let res = app.send(method, &public, &headers, b"");
        assert_eq!(res.status, 401, "{method} {range:?}");
        assert!(res.header("www-authenticate").is_some());
        if method == "GET" {
            assert_eq!(res.error_code(), "password-required");
            assert!(res.body.len() < 300, "bytes leaked");
        }
    }
    let gate = app.send("GET", &format!("/v/{id}"), &[], b"");
    assert_eq!(gate.status, 200);
    assert!(gate.text().contains("type=\"password\""));
    assert!(
        !gate.text().contains("/media/"),
        "the gate reveals the media URL"
    );

    let wrong = unlock(&app, "v", &id, "nope");
    assert_eq!(wrong.status, 401);
    assert!(wrong.text().contains("not right"));
    assert!(wrong.header("set-cookie").is_none());

    let right = unlock(&app, "v", &id, "secret 123!");
    assert_eq!(right.status, 303);
    assert_eq!(right.header("location"), Some(format!("/v/{id}").as_str()));
    let set = right.header("set-cookie").unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let cookie = grant_cookie(&right);
    assert!(cookie.starts_with(&format!("flare_access_{id}=")));

    let with = |method: &str, extra: Option<(&str, &str)>| {
        let mut h = vec![("Cookie", cookie.as_str())];
        h.extend(extra);
        app.send(method, &public, &h, b"")
    };
    let full = with("GET", None);
    assert_eq!(full.status, 200);
    assert!(full.body == body);
    assert_eq!(full.header("cache-control"), Some("private, no-store"));
    let part = with("GET", Some(("Range", "bytes=100-199")));
    assert_eq!(part.status, 206);
    assert!(part.body == body[100..200]);
    assert_eq!(with("HEAD", None).status, 200);
    let page = app.send("GET", &format!("/v/{id}"), &[("Cookie", &cookie)], b"");
    assert!(
        page.text().contains("<video"),
        "the unlocked page shows no player"
    );

    // A tampered grant, or the grant of another video, opens nothing.
    let tampered = cookie.replacen('=', "=9", 1);
    assert_eq!(
        app.send("GET", &public, &[("Cookie", &tampered)], b"")
            .status,
        401
    );
    let (other, other_public) = app.upload("other.mp4", b"other");
    protect(&app, &other, "secret 123!");
    let moved = cookie.replace(&id, &other);
    assert_eq!(
        app.send("GET", &other_public, &[("Cookie", &moved)], b"")
            .status,
        401
    );

    // A new password closes the old grants; removing it opens the video to all.
    protect(&app, &id, "another one");
    assert_eq!(with("GET", None).status, 401);
    app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": null })),
    );
    assert_eq!(app.send("GET", &public, &[], b"").status, 200);
}

#[test]
fn wrong_passwords_are_slowed_per_video_and_say_so() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", b"x");
    let (other, _) = app.upload("other.mp4", b"y");
    protect(&app, &id, "right");
    protect(&app, &other, "right");
    for _ in 0..5 {
        assert_eq!(unlock(&app, "v", &id, "wrong").status, 401);
    }
    let slowed = unlock(&app, "v", &id, "right");
    assert_eq!(slowed.status, 429, "even the right password waits its turn");
    assert!(
        slowed.text().contains("Too many wrong passwords. Wait"),
        "{}",
        slowed.text()
    );
    assert!(slowed.header("set-cookie").is_none());
    assert_eq!(
        unlock(&app, "v", &other, "right").status,
        303,
        "another video is not slowed"
    );
}

#[test]
fn fifty_concurrent_wrong_guesses_get_five_hashes_and_forty_five_refusals() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", b"x");
    protect(&app, &id, "right");
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let guesses: Vec<_> = (0..50)
            .map(|i| {
                let (app, id) = (&app, &id);
                s.spawn(move || unlock(app, "v", id, &format!("guess{i}")).status)
            })
            .collect();
        guesses.into_iter().map(|g| g.join().unwrap()).collect()
    });
    let wrong = statuses.iter().filter(|&&s| s == 401).count();
    let slowed = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!(
        (wrong, slowed),
        (5, 45),
        "only the bucket's five guesses may reach the hash: {statuses:?}"
    );
    eprintln!("50 concurrent guesses answered in {:?}", started.elapsed());
    // The right password now waits its turn too: the guesses were charged as they came.
    assert_eq!(unlock(&app, "v", &id, "right").status, 429);
}

#[test]
fn a_right_password_is_not_charged_to_the_bucket() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", b"x");
    protect(&app, &id, "right");
    for _ in 0..7 {
        assert_eq!(unlock(&app, "v", &id, "right").status, 303);
    }
    for _ in 0..5 {
        assert_eq!(unlock(&app, "v", &id, "wrong").status, 401);
    }
    assert_eq!(unlock(&app, "v", &id, "wrong").status, 429);
}

#[test]
fn the_embed_page_reflects_each_setting() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", &sample(100));
    let path = format!("/embed/{id}");
    // The Captions control only once there are captions.
    let bare = app.send("GET", &path, &[], b"").text();
    assert!(
        !bare.contains("ctl-captions"),
        "a Captions button with no captions"
    );
    let auth = format!("Bearer {}", app.token);
    let res = app.send(
        "PUT",
        &format!("/api/video/{id}/captions/en"),
        &[("Authorization", &auth), ("Content-Type", "text/vtt")],
        b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n",
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let defaults = app.send("GET", &path, &[], b"").text();
    for present in [
        "theme-flare",
        "--accent: #FF6702",
        "--radius: 12px",
        "ctl-play",
        "ctl-progress",
        "ctl-time",
        "ctl-volume",
        "ctl-speed",
        "ctl-fullscreen",
        "ctl-captions",
        "class=\"branding\"",
        "controlslist=\"nodownload\"",
        "/static/player.js",
    ] {
        assert!(
            defaults.contains(present),
            "the default embed lacks {present}"
        );
    }
    for absent in [" autoplay", " loop", " muted", "ctl-download"] {
        assert!(!defaults.contains(absent), "the default embed has {absent}");
    }

    let settings = json!({ "embedSettings": {
        "playerTheme": "minimal", "accentColor": "#00FF88", "embedBorderRadius": 3, "thumbnailTime": 4.5,
        "autoplay": true, "loop": true, "showBranding": false, "allowDownload": true,
        "controlOptions": { "showPlayButton": false, "showProgress": false, "showTime": false, "showVolume": false,
                            "showSpeed": false, "showFullscreen": false, "showCaptions": false }
    }});
    assert_eq!(
        app.api(
            "PATCH",
            &format!("/api/video/{id}/embed-settings"),
            Some(settings)
        )
        .status,
        200
    );
    let html = app.send("GET", &path, &[], b"").text();
    for present in [
        "theme-minimal",
        "--accent: #00FF88",
        "--radius: 3px",
        "data-thumbnail-time=\"4.5\"",
        " autoplay",
        " muted",
        " loop",
        "ctl-download",
    ] {
        assert!(html.contains(present), "the embed lacks {present}");
    }
    for absent in [
        "ctl-play",
        "ctl-progress",
        "ctl-time",
        "ctl-volume",
        "ctl-mute",
        "ctl-speed",
        "ctl-fullscreen",
        "ctl-captions",
        "class=\"branding\"",
        "nodownload",
    ] {
        assert!(!html.contains(absent), "the embed still has {absent}");
    }
    // Muted alone, without autoplay.
    app.api(
        "PATCH",
        &format!("/api/video/{id}/embed-settings"),
        Some(json!({ "embedSettings": { "autoplay": false, "muted": true } })),
    );
    let html = app.send("GET", &path, &[], b"").text();
    assert!(html.contains(" muted") && !html.contains(" autoplay"));
    let js = app.send("GET", "/static/player.js", &[], b"");
    assert_eq!(js.status, 200);
    assert!(js.text().contains("thumbnailTime"));
}

#[test]
fn only_the_embed_page_may_be_framed() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", b"x");
    let embed = app.send("GET", &format!("/embed/{id}"), &[], b"");
    let csp = embed.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors *"), "{csp}");
    assert_eq!(embed.header("x-frame-options"), None);
    for path in [
        format!("/v/{id}"),
        "/healthz".into(),
        "/api/videos".into(),
        "/v/nope".into(),
    ] {
        let res = app.send("GET", &path, &[], b"");
        assert!(
            res.header("content-security-policy")
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(res.header("x-frame-options"), Some("DENY"), "{path}");
    }
}

#[test]
fn a_protected_embed_asks_for_the_password_in_the_frame() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("demo.mp4", b"x");
    protect(&app, &id, "pw");
    let gate = app.send("GET", &format!("/embed/{id}"), &[], b"");
    assert!(gate.text().contains(&format!("action=\"/embed/{id}\"")));
    assert!(gate
        .header("content-security-policy")
        .unwrap()
        .contains("frame-ancestors *"));
    let res = unlock(&app, "embed", &id, "pw");
    assert_eq!(res.status, 303);
    assert_eq!(
        res.header("location"),
        Some(format!("/embed/{id}").as_str())
    );
    assert_eq!(
        app.send("GET", &public, &[("Cookie", &grant_cookie(&res))], b"")
            .status,
        200
    );
}

#[test]
fn the_web_app_is_served_from_the_binary_with_no_outside_source() {
    let app = TestApp::spawn();
    let res = app.send("GET", "/", &[], b"");
    assert_eq!(res.status, 200);
    assert!(res.header("content-type").unwrap().starts_with("text/html"));
    let html = res.text();
    assert!(html.contains("/static/app.js") && html.contains("/static/flare.css"));
    let csp = res.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    for asset in ["/static/app.js", "/static/flare.css", "/static/player.js"] {
        let body = app.send("GET", asset, &[], b"").text();
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset} loads something from elsewhere"
        );
    }
    assert!(!html.contains("http://") && !html.contains("https://"));
}

#[test]
fn the_watch_page_shares_downloads_and_previews_and_oembed_answers() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("talk.mp4", &sample(2000));
    let page = app.send("GET", &format!("/v/{id}"), &[], b"").text();
    let watch = format!("{}/v/{id}", app.base);
    for present in [
        format!(r#"<meta property="og:url" content="{watch}">"#),
        r#"<meta property="og:type" content="video.other">"#.to_string(),
        format!(
            r#"<meta name="twitter:player" content="{}/embed/{id}">"#,
            app.base
        ),
        r#"type="application/json+oembed""#.to_string(),
        format!(
            r#"<meta property="og:video" content="{}{public}">"#,
            app.base
        ),
        r#"class="share-time""#.to_string(),
        format!(
            r#"<a class="download" href="{}{public}" download>"#,
            app.base
        ),
        "/static/watch.js".to_string(),
    ] {
        assert!(page.contains(&present), "the watch page lacks {present}");
    }
    // A protected video's bytes are not named in the previews.
    let res = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": "hunter22" })),
    );
    assert_eq!(res.status, 200);
    let gate = app.send("GET", &format!("/v/{id}"), &[], b"").text();
    assert!(
        !gate.contains("og:video\""),
        "a protected video's URL leaked into the gate"
    );
    // The embed's gate says why it may not stay unlocked on another site, and links out.
    let embed_gate = app.send("GET", &format!("/embed/{id}"), &[], b"").text();
    assert!(
        embed_gate.contains(&format!(r#"<a href="/v/{id}" target="_blank""#)),
        "{embed_gate}"
    );

    let url = watch.replace(':', "%3A").replace('/', "%2F");
    let res = app.send("GET", &format!("/oembed?url={url}&maxwidth=320"), &[], b"");
    assert_eq!(res.status, 200, "{}", res.text());
    let o = res.json();
    assert_eq!(
        (o["version"].as_str(), o["type"].as_str()),
        (Some("1.0"), Some("video"))
    );
    assert_eq!(o["width"], 320);
    assert!(o["html"]
        .as_str()
        .unwrap()
        .contains(&format!("{}/embed/{id}", app.base)));
    let res = app.send(
        "GET",
        "/oembed?url=https%3A%2F%2Felsewhere.example%2Fv%2Fx",
        &[],
        b"",
    );
    assert_eq!(res.status, 404);
    let res = app.send("GET", "/oembed", &[], b"");
    assert_eq!(res.status, 400);
    assert!(res.text().contains("url is required"));
    let res = app.send("GET", &format!("/oembed?url={url}&format=xml"), &[], b"");
    assert_eq!(res.status, 400);
}
