//! The video endpoints: list, read, update, delete, embed settings, with each refusal.

use crate::helpers::{sample, TestApp};
use flare::domain::tokens::Scope;
use serde_json::{json, Value};

fn ids(res: &crate::helpers::Response) -> Vec<String> {
    res.json()["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_hosted_create_example_body_is_accepted_whole() {
    let app = TestApp::spawn();
    let body = json!({ "fileName": "demo.mp4", "s3Key": "vid_demo_123", "source": "composite", "width": 1920, "height": 1080, "duration": 120 });
    let res = app.api("POST", "/api/video/create", Some(body));
    assert_eq!(res.status, 201);
    let v = &res.json()["video"];
    assert_eq!(v["id"], "vid_demo_123");
    assert_eq!(
        (
            v["width"].as_f64(),
            v["height"].as_f64(),
            v["duration"].as_f64()
        ),
        (Some(1920.0), Some(1080.0), Some(120.0))
    );
    assert_eq!(v["passwordProtected"], false);
    let ignored = app.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "b.mp4", "colour": "blue" })),
    );
    assert_eq!(ignored.status, 201, "unknown keys are ignored");
    let reserved = app.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "b.mp4", "s3Key": "create" })),
    );
    assert_eq!(reserved.status, 400);
    assert!(reserved.text().contains("s3Key"));
}

#[test]
fn listing_pages_newest_first_without_skipping_or_repeating() {
    let app = TestApp::spawn();
    let made: Vec<String> = (0..7)
        .map(|i| app.create_video(&format!("v{i}.mp4")))
        .collect();
    let first = app.api("GET", "/api/videos?limit=3", None);
    assert_eq!(first.status, 200);
    assert_eq!(
        ids(&first),
        [made[6].clone(), made[5].clone(), made[4].clone()]
    );
    let cursor = first.json()["nextCursor"].as_str().unwrap().to_string();

    // Meanwhile a video is created and one not yet listed is deleted.
    let newer = app.create_video("late.mp4");
    assert_eq!(
        app.api("DELETE", &format!("/api/video/{}", made[2]), None)
            .status,
        200
    );

    let second = app.api("GET", &format!("/api/videos?limit=3&cursor={cursor}"), None);
    assert_eq!(
        ids(&second),
        [made[3].clone(), made[1].clone(), made[0].clone()]
    );
    assert_eq!(
        second.json()["nextCursor"],
        Value::Null,
        "the last page has no cursor"
    );

    let all = app.api("GET", "/api/videos", None);
    assert_eq!(ids(&all)[0], newer, "newest first");
    assert_eq!(
        all.json()["nextCursor"],
        Value::Null,
        "the last page has no cursor"
    );
    assert_eq!(ids(&all).len(), 7);
}

#[test]
fn listing_refuses_bad_paging_parameters() {
    let app = TestApp::spawn();
    for q in [
        "limit=0",
        "limit=201",
        "limit=ten",
        "limit=-1",
        "cursor=bm9wZQ",
        "cursor=%%%",
    ] {
        let res = app.api("GET", &format!("/api/videos?{q}"), None);
        assert_eq!(res.status, 400, "{q}");
        assert_eq!(res.error_code(), "invalid-field");
        let field = q.split('=').next().unwrap();
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{q}"
        );
    }
    assert_eq!(app.api("GET", "/api/videos?limit=200", None).status, 200);
}

#[test]
fn a_video_reads_back_and_unknown_ids_are_404() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", &sample(1000));
    let res = app.api("GET", &format!("/api/video/{id}"), None);
    assert_eq!(res.status, 200);
    let v = &res.json()["video"];
    assert_eq!(v["status"], "ready");
    assert_eq!(v["size"], 1000);
    assert_eq!(v["contentType"], "video/mp4");
    assert_eq!(
        v["publicUrl"],
        format!("{}/media/{id}/composite/demo.mp4", app.base)
    );
    for path in ["/api/video/vid_nope", "/api/video/vid_nope/embed-settings"] {
        let res = app.api("GET", path, None);
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.error_code(), "not-found");
    }
    for (method, path) in [
        ("DELETE", "/api/video/vid_nope"),
        ("PATCH", "/api/video/update/vid_nope"),
        ("PATCH", "/api/video/vid_nope/embed-settings"),
    ] {
        let res = app.api(
            method,
            path,
            Some(json!({ "title": "x", "embedSettings": {} })),
        );
        assert_eq!(res.status, 404, "{method} {path}");
    }
}

#[test]
fn update_sets_the_title_and_password_and_stores_only_a_hash() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    let res = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "title": "Launch walkthrough", "password": "secret123" })),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let v = &res.json()["video"];
    assert_eq!(v["title"], "Launch walkthrough");
    assert_eq!(v["passwordProtected"], true);
    assert!(!res.text().contains("secret123"));
    let row = app
        .db
        .blocking(|c| flare::db::videos::get(c, &id))
        .unwrap()
        .unwrap();
    let hash = row.password_hash.unwrap();
    assert!(hash.starts_with("pbkdf2-sha256$600000$") && !hash.contains("secret123"));
    for name in ["flare.db", "flare.db-wal"] {
        let bytes = std::fs::read(app.data_dir().join(name)).unwrap_or_default();
        assert!(
            !bytes.windows(9).any(|w| w == b"secret123"),
            "the password is in {name}"
        );
    }

    // Absent leaves it; null clears it; POST works like PATCH (the hosted curl example).
    let res = app.api(
        "POST",
        &format!("/api/video/update/{id}"),
        Some(json!({ "title": "Renamed" })),
    );
    assert_eq!(res.json()["video"]["passwordProtected"], true);
    assert_eq!(res.json()["video"]["title"], "Renamed");
    let res = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": null })),
    );
    assert_eq!(res.json()["video"]["passwordProtected"], false);
}

#[test]
fn update_refuses_bad_fields_naming_them() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    for (body, field) in [
        (json!({ "title": 5 }), "title"),
        (json!({ "title": "" }), "title"),
        (json!({ "title": "x".repeat(501) }), "title"),
        (json!({ "password": 123 }), "password"),
        (json!({ "password": "" }), "password"),
        (json!({ "password": "p".repeat(1025) }), "password"),
    ] {
        let res = app.api(
            "PATCH",
            &format!("/api/video/update/{id}"),
            Some(body.clone()),
        );
        assert_eq!(res.status, 400, "{body}");
        assert_eq!(res.error_code(), "invalid-field");
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}"
        );
    }
}

#[test]
fn delete_removes_the_record_its_files_and_its_upload_urls() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("demo.mp4", &sample(5000));
    let p = app.presign(json!({ "videoId": id, "fileName": "second.mp4" }));
    assert!(app.object_path(&id, "demo.mp4").exists());

    let res = app.api("DELETE", &format!("/api/video/{id}"), None);
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "success": true, "deleted": true }));
    assert!(
        !app.data_dir().join("objects").join(&id).exists(),
        "the video's folder is still there"
    );
    assert!(
        app.temp_files_settled().is_empty(),
        "the removal left something in tmp/"
    );
    assert_eq!(
        app.api("GET", &format!("/api/video/{id}"), None).status,
        404
    );
    assert_eq!(app.send("GET", &public, &[], b"").status, 404);
    let put = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", b"late");
    assert_eq!(
        put.status,
        404,
        "an upload URL outlived its video: {}",
        put.text()
    );
    assert!(!app.data_dir().join("objects").join(&id).exists());
    let rows: i64 = app
        .db
        .blocking(|c| {
            c.row(
                "SELECT COUNT(*) FROM uploads WHERE video_id = ?1",
                flare::args![id],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(rows, 0);
    assert_eq!(
        app.api("DELETE", &format!("/api/video/{id}"), None).status,
        404
    );
}

#[test]
fn embed_settings_start_at_the_defaults_and_merge_partial_updates() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    let path = format!("/api/video/{id}/embed-settings");
    let defaults = app.api("GET", &path, None).json()["embedSettings"].clone();
    assert_eq!(defaults["playerTheme"], "flare");
    assert_eq!(defaults["controlOptions"]["showSpeed"], true);
    assert_eq!(defaults["autoplay"], false);

    let res = app.api("PATCH", &path, Some(json!({ "embedSettings": { "accentColor": "#123abc", "controlOptions": { "showSpeed": false } } })));
    assert_eq!(res.status, 200, "{}", res.text());
    let merged = &res.json()["embedSettings"];
    assert_eq!(merged["accentColor"], "#123abc");
    assert_eq!(merged["controlOptions"]["showSpeed"], false);
    assert_eq!(merged["controlOptions"]["showTime"], true);
    // POST does the same (the hosted curl example), and merges over what is stored.
    let res = app.api(
        "POST",
        &path,
        Some(json!({ "embedSettings": { "loop": true } })),
    );
    let merged = &res.json()["embedSettings"];
    assert_eq!(
        (merged["loop"].clone(), merged["accentColor"].clone()),
        (json!(true), json!("#123abc"))
    );
    assert_eq!(app.api("GET", &path, None).json()["embedSettings"], *merged);
}

#[test]
fn embed_settings_refuse_bad_values_naming_the_field_and_keep_what_was_stored() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    let path = format!("/api/video/{id}/embed-settings");
    app.api(
        "PATCH",
        &path,
        Some(json!({ "embedSettings": { "muted": true } })),
    );
    for (body, field) in [
        (json!({}), "embedSettings"),
        (json!({ "embedSettings": [] }), "embedSettings"),
        (
            json!({ "embedSettings": { "playerTheme": "neon" } }),
            "embedSettings.playerTheme",
        ),
        (
            json!({ "embedSettings": { "accentColor": "orange" } }),
            "embedSettings.accentColor",
        ),
        (
            json!({ "embedSettings": { "embedBorderRadius": 30 } }),
            "embedSettings.embedBorderRadius",
        ),
        (
            json!({ "embedSettings": { "thumbnailTime": -1 } }),
            "embedSettings.thumbnailTime",
        ),
        (
            json!({ "embedSettings": { "muted": false, "loop": "yes" } }),
            "embedSettings.loop",
        ),
        (
            json!({ "embedSettings": { "controlOptions": { "showTime": "no" } } }),
            "embedSettings.controlOptions.showTime",
        ),
        (
            json!({ "embedSettings": { "unknownThing": 1 } }),
            "embedSettings.unknownThing",
        ),
    ] {
        let res = app.api("PATCH", &path, Some(body.clone()));
        assert_eq!(res.status, 400, "{body}");
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}: {}",
            res.text()
        );
    }
    let stored = app.api("GET", &path, None).json()["embedSettings"].clone();
    assert_eq!(
        stored["muted"], true,
        "a refused update changed what was stored"
    );
}

#[test]
fn each_endpoint_needs_its_scope() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    let cases: [(&str, String, Option<Value>, Scope); 8] = [
        ("GET", "/api/videos".into(), None, Scope::VideosRead),
        ("GET", format!("/api/video/{id}"), None, Scope::VideosRead),
        (
            "GET",
            format!("/api/video/{id}/embed-settings"),
            None,
            Scope::VideosRead,
        ),
        (
            "POST",
            "/api/video/create".into(),
            Some(json!({ "fileName": "a.mp4" })),
            Scope::VideosWrite,
        ),
        (
            "PATCH",
            format!("/api/video/update/{id}"),
            Some(json!({ "title": "t" })),
            Scope::VideosWrite,
        ),
        (
            "PATCH",
            format!("/api/video/{id}/embed-settings"),
            Some(json!({ "embedSettings": {} })),
            Scope::EmbedsWrite,
        ),
        (
            "POST",
            "/api/video/upload/presign".into(),
            Some(json!({ "videoId": id, "fileName": "a.mp4" })),
            Scope::UploadsWrite,
        ),
        (
            "DELETE",
            format!("/api/video/{id}"),
            None,
            Scope::VideosWrite,
        ),
    ];
    for (method, path, body, scope) in cases {
        let others: Vec<Scope> = Scope::ALL.into_iter().filter(|s| *s != scope).collect();
        let (without, _) = app.new_token(&others, None);
        let res = app.api_as(&without, method, &path, body.clone());
        assert_eq!(res.status, 403, "{method} {path}");
        assert_eq!(res.error_code(), "missing-scope");
        assert!(res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains(scope.as_str()));
        let res = app.send(
            method,
            &path,
            &[("Content-Type", "application/json")],
            b"{}",
        );
        assert_eq!(res.status, 401, "{method} {path}");
        let (with, _) = app.new_token(&[scope], None);
        let res = app.api_as(&with, method, &path, body);
        assert!(
            res.status < 300,
            "{method} {path} with {}: {}",
            scope.as_str(),
            res.text()
        );
    }
}

#[test]
fn a_deletion_cut_short_is_finished_at_the_next_start() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", b"bytes");
    let (kept, kept_public) = app.upload("kept.mp4", b"kept");
    // A crash after the first step: the row is marked, the files are still there.
    let marked = app
        .db
        .blocking(|c| flare::db::videos::begin_delete(c, &id, 0))
        .unwrap();
    assert!(marked);
    assert_eq!(
        app.api("GET", &format!("/api/video/{id}"), None).status,
        404,
        "a video being deleted is hidden"
    );
    assert!(app.object_path(&id, "demo.mp4").exists());

    let app = app.restart();
    assert!(
        !app.data_dir().join("objects").join(&id).exists(),
        "the files outlived the restart"
    );
    let left: i64 = app
        .db
        .blocking(|c| {
            c.row(
                "SELECT COUNT(*) FROM videos WHERE id = ?1",
                flare::args![id],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(left, 0, "the row outlived the restart");
    let report: Value = serde_json::from_str(&crate::helpers::flare_cli(
        &app.data_dir(),
        &["fsck", "--json"],
    ))
    .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(
        app.api("GET", &format!("/api/video/{kept}"), None).status,
        200
    );
    assert_eq!(app.send("GET", &kept_public, &[], b"").body, b"kept");
}
