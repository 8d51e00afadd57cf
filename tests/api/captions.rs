//! Captions per language: WebVTT kept, SubRip converted, served under the video's password
//! rules, listed on the Video object, shown by the players, deleted with the video.

use serde_json::json;

use crate::helpers::*;
use flare::domain::tokens::Scope;

const VTT: &[u8] = b"WEBVTT\n\n00:00.000 --> 00:01.500\nHello there\n";
const SRT: &[u8] = b"1\r\n00:00:00,500 --> 00:00:02,000\r\nBonjour\r\n";

fn put(app: &TestApp, id: &str, lang: &str, body: &[u8]) -> Response {
    let auth = format!("Bearer {}", app.token);
    app.send(
        "PUT",
        &format!("/api/video/{id}/captions/{lang}"),
        &[("Authorization", &auth), ("Content-Type", "text/vtt")],
        body,
    )
}

#[test]
fn captions_go_up_are_listed_served_and_removed() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("talk.mp4", &sample(1000));
    let res = put(&app, &id, "en", VTT);
    assert_eq!(res.status, 200, "{}", res.text());
    let auth = format!("Bearer {}", app.token);
    let res = app.send(
        "PUT",
        &format!("/api/video/{id}/captions/fr?label=Fran%C3%A7ais"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-subrip"),
        ],
        SRT,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let captions = &res.json()["captions"];
    assert_eq!(captions[0]["lang"], "en");
    assert_eq!(captions[1]["label"], "Français");
    let v = app.api("GET", &format!("/api/video/{id}"), None).json();
    assert_eq!(v["video"]["captions"].as_array().unwrap().len(), 2, "{v}");
    let url = app.local(v["video"]["captions"][1]["url"].as_str().unwrap());
    assert_eq!(url, format!("/media/{id}/captions/fr.vtt"));
    let got = app.send("GET", &url, &[], b"");
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("text/vtt; charset=utf-8"));
    assert_eq!(
        got.text(),
        "WEBVTT\n\n1\n00:00:00.500 --> 00:00:02.000\nBonjour\n",
        "SubRip was not turned into WebVTT"
    );
    // The players carry the tracks.
    let watch = app.send("GET", &format!("/v/{id}"), &[], b"").text();
    assert!(
        watch.contains(r#"<track kind="subtitles" srclang="fr" label="Français""#),
        "{watch}"
    );
    let embed = app.send("GET", &format!("/embed/{id}"), &[], b"").text();
    assert!(embed.contains("ctl-captions") && embed.contains("srclang=\"en\""));
    // Replace, then remove.
    assert_eq!(
        put(&app, &id, "en", b"WEBVTT\n\n00:01.000 --> 00:02.000\nNew\n").status,
        200
    );
    assert!(app
        .send("GET", &format!("/media/{id}/captions/en.vtt"), &[], b"")
        .text()
        .contains("New"));
    let res = app.send(
        "DELETE",
        &format!("/api/video/{id}/captions/en"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(res.status, 200);
    let res = app.send(
        "DELETE",
        &format!("/api/video/{id}/captions/en"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!((res.status, res.error_code().as_str()), (404, "not-found"));
    assert_eq!(
        app.send("GET", &format!("/media/{id}/captions/en.vtt"), &[], b"")
            .status,
        404
    );
    // Deleted with the video.
    assert_eq!(
        app.api("DELETE", &format!("/api/video/{id}"), None).status,
        200
    );
    assert_eq!(app.send("GET", &url, &[], b"").status, 404);
    let left: i64 = app
        .db
        .blocking(|c| c.row("SELECT COUNT(*) FROM captions", &[], |r| r.get(0)))
        .unwrap();
    assert_eq!(left, 0, "captions outlived their video");
}

#[test]
fn caption_refusals_name_what_is_wrong() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("talk.mp4", &sample(1000));
    let res = put(&app, &id, "en_US", VTT);
    assert_eq!(res.status, 400);
    assert!(res.text().contains("language tag"), "{}", res.text());
    let res = put(&app, &id, "en", b"just some words");
    assert_eq!(res.status, 400);
    assert!(res.text().contains("WebVTT"), "{}", res.text());
    let res = put(&app, &id, "en", &vec![b'a'; (2 << 20) + 1]);
    assert_eq!(res.status, 413);
    let res = put(&app, "vid_nope", "en", VTT);
    assert_eq!(res.status, 404);
    let (reader, _) = app.new_token(&[Scope::VideosRead], None);
    let res = app.send(
        "PUT",
        &format!("/api/video/{id}/captions/en"),
        &[("Authorization", &format!("Bearer {reader}"))],
        VTT,
    );
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (403, "missing-scope")
    );
    let v = app.api("GET", &format!("/api/video/{id}"), None).json();
    assert!(v["video"].get("captions").is_none(), "{v}");
}

#[test]
fn a_protected_videos_captions_need_its_password() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("talk.mp4", &sample(1000));
    assert_eq!(put(&app, &id, "en", VTT).status, 200);
    let res = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": "open sesame" })),
    );
    assert_eq!(res.status, 200);
    let res = app.send("GET", &format!("/media/{id}/captions/en.vtt"), &[], b"");
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (401, "password-required")
    );
}
