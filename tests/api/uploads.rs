//! The upload loop: create, presign, PUT, and every refusal presign and the signed URL can give.

use crate::helpers::{read_key, sample, sha256_hex, TestApp};
use flare::domain::signing::UploadGrant;
use flare::domain::tokens::Scope;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};

#[test]
fn the_whole_walk_stores_and_serves_identical_bytes() {
    let app = TestApp::spawn();
    let res = app.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "demo.mp4" })),
    );
    assert_eq!(res.status, 201);
    let video = &res.json()["video"];
    let id = video["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("vid_") && id.len() == 24, "{id}");
    assert_eq!(video["status"], "pending");
    assert_eq!(video["publicUrl"], Value::Null);

    let p = app.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    let keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["expiresAt", "headers", "method", "publicUrl", "uploadUrl"]
    );
    assert_eq!(p["method"], "PUT");
    assert_eq!(p["headers"], json!({ "Content-Type": "video/mp4" }));
    assert_eq!(
        p["publicUrl"],
        format!("{}/media/{id}/composite/demo.mp4", app.base)
    );
    assert!(p["uploadUrl"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{}/upload/{id}/composite/demo.mp4?", app.base)));
    let expires = p["expiresAt"].as_str().unwrap();
    assert!(
        expires.len() == 24 && expires.ends_with(".000Z"),
        "{expires}"
    );

    let body = sample(3 * 1024 * 1024 + 17);
    let res = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &body);
    assert_eq!(res.status, 200, "{}", res.text());
    let stored = res.json();
    assert_eq!(stored["success"], true);
    assert_eq!(stored["size"], body.len());
    assert_eq!(stored["sha256"], sha256_hex(&body));
    assert_eq!(stored["publicUrl"], p["publicUrl"]);
    let etag = res.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"'));

    assert_eq!(
        std::fs::read(app.object_path(&id, "demo.mp4")).unwrap(),
        body
    );
    let got = app.send(
        "GET",
        &app.local(p["publicUrl"].as_str().unwrap()),
        &[],
        b"",
    );
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("video/mp4"));
    assert_eq!(got.header("etag"), Some(etag.as_str()));
    assert!(got.body == body, "served bytes differ");
    assert!(app.temp_files_settled().is_empty());

    // The record shows what was stored.
    let video = app.api("GET", &format!("/api/video/{id}"), None).json()["video"].clone();
    assert_eq!(video["status"], "ready");
    assert_eq!(video["size"], body.len());
    assert_eq!(video["contentType"], "video/mp4");
    assert_eq!(video["sha256"], sha256_hex(&body));
}

#[test]
fn create_accepts_s3key_as_the_id_and_refuses_a_taken_one() {
    let app = TestApp::spawn();
    let res = app.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "a.mp4", "s3Key": "lecture-01", "title": "One" })),
    );
    assert_eq!(res.status, 201);
    assert_eq!(res.json()["video"]["id"], "lecture-01");
    assert_eq!(res.json()["video"]["title"], "One");
    let again = app.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "b.mp4", "s3Key": "lecture-01" })),
    );
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "conflict");
}

#[test]
fn create_refuses_bad_fields_naming_them() {
    let app = TestApp::spawn();
    for (body, field) in [
        (json!({}), "fileName"),
        (json!({ "fileName": 5 }), "fileName"),
        (json!({ "fileName": "../x.mp4" }), "fileName"),
        (json!({ "fileName": "a.mp4", "s3Key": "a/b" }), "s3Key"),
        (json!({ "fileName": "a.mp4", "width": -1 }), "width"),
        (
            json!({ "fileName": "a.mp4", "duration": "long" }),
            "duration",
        ),
    ] {
        let res = app.api("POST", "/api/video/create", Some(body.clone()));
        assert_eq!(res.status, 400, "{body}");
        assert_eq!(res.error_code(), "invalid-field");
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{body}: {}",
            res.text()
        );
    }
}

#[test]
fn presign_refuses_bad_requests_with_the_documented_codes() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    let long = "a".repeat(252) + ".mp4";
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({ "fileName": "demo.mp4" }),
            400,
            "invalid-field",
            "videoId",
        ),
        (json!({ "videoId": id }), 400, "invalid-field", "fileName"),
        (
            json!({ "videoId": 7, "fileName": "demo.mp4" }),
            400,
            "invalid-field",
            "videoId",
        ),
        (
            json!({ "videoId": "vid_missing", "fileName": "demo.mp4" }),
            404,
            "not-found",
            "vid_missing",
        ),
        (
            json!({ "videoId": id, "fileName": "demo.exe" }),
            400,
            "unsupported-file-type",
            ".mp4",
        ),
        (
            json!({ "videoId": id, "fileName": "demo" }),
            400,
            "unsupported-file-type",
            ".webm",
        ),
        (
            json!({ "videoId": id, "fileName": "demo.mp4", "expiresIn": 0 }),
            400,
            "invalid-field",
            "expiresIn",
        ),
        (
            json!({ "videoId": id, "fileName": "demo.mp4", "expiresIn": 604_801 }),
            400,
            "invalid-field",
            "expiresIn",
        ),
        (
            json!({ "videoId": id, "fileName": "demo.mp4", "expiresIn": "1h" }),
            400,
            "invalid-field",
            "expiresIn",
        ),
        (
            json!({ "videoId": id, "fileName": "demo.mp4", "size": 0 }),
            400,
            "invalid-field",
            "size",
        ),
        (
            json!({ "videoId": id, "fileName": "demo.mp4", "size": 21_474_836_481u64 }),
            400,
            "invalid-field",
            "size",
        ),
        (
            json!({ "videoId": id, "fileName": long }),
            400,
            "invalid-field",
            "255",
        ),
    ];
    for (body, status, code, mention) in cases {
        let res = app.api("POST", "/api/video/upload/presign", Some(body.clone()));
        assert_eq!(res.status, status, "{body}: {}", res.text());
        assert_eq!(res.error_code(), code, "{body}");
        assert!(
            res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(mention),
            "{body}: {}",
            res.text()
        );
    }
}

/// Names that could leave their folder or confuse a path (spec § Presign), for both fields.
const HOSTILE: &[&str] = &[
    "",
    ".",
    "..",
    "../demo.mp4",
    "..\\demo.mp4",
    "a/b.mp4",
    "a\\b.mp4",
    "/etc/passwd.mp4",
    ".demo.mp4",
    "a\u{0}b.mp4",
    "a\nb.mp4",
    "a\u{1b}b.mp4",
    " ",
    "a\u{2215}b.mp4",
    "\u{FF0E}\u{FF0E}\u{FF0F}a.mp4",
];

#[test]
fn presign_refuses_hostile_names_and_writes_nothing() {
    let app = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    let huge = "a".repeat(4096) + ".mp4";
    let mut names: Vec<&str> = HOSTILE.to_vec();
    names.push(&huge);
    for name in names {
        for (field, body) in [
            ("fileName", json!({ "videoId": id, "fileName": name })),
            (
                "videoId",
                json!({ "videoId": name, "fileName": "demo.mp4" }),
            ),
        ] {
            let res = app.api("POST", "/api/video/upload/presign", Some(body));
            assert_eq!(res.status, 400, "{field}={name:?}: {}", res.text());
            assert_eq!(res.error_code(), "invalid-field");
            assert!(res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field));
        }
    }
    let uploads: i64 = app
        .db
        .blocking(|c| c.row("SELECT COUNT(*) FROM uploads", &[], |r| r.get(0)))
        .unwrap();
    assert_eq!(uploads, 0);
}

#[test]
fn percent_encoded_traversal_in_the_url_path_reaches_nothing() {
    let app = TestApp::spawn();
    let (_, public) = app.upload("demo.mp4", b"x");
    for path in [
        "/media/..%2F..%2Fflare.db/composite/x.mp4",
        "/media/x/composite/..%2F..%2F..%2Fflare.db",
        "/media/%2E%2E/composite/signing.key",
        "/media/x/composite/%2E%2E%2Fsigning.key",
        "/upload/..%2Fx/composite/demo.mp4?upload=a",
    ] {
        let res = app.send(
            if path.starts_with("/upload") {
                "PUT"
            } else {
                "GET"
            },
            path,
            &[("Content-Type", "video/mp4")],
            b"",
        );
        assert!(
            res.status == 404 || res.status == 403,
            "{path}: {}",
            res.status
        );
        assert!(res.body.len() < 300, "{path} served something");
    }
    assert_eq!(app.send("GET", &public, &[], b"").body, b"x");
}

fn presigned(app: &TestApp, extra: Value) -> (String, Value) {
    let id = app.create_video("demo.mp4");
    let mut body = json!({ "videoId": id, "fileName": "demo.mp4" });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let p = app.presign(body);
    (id, p)
}

#[test]
fn a_spent_url_is_refused_with_409_and_a_fresh_url_replaces_the_object() {
    let app = TestApp::spawn();
    let (id, p) = presigned(&app, json!({}));
    let url = p["uploadUrl"].as_str().unwrap();
    assert_eq!(app.put(url, "video/mp4", b"first").status, 200);
    let again = app.put(url, "video/mp4", b"second");
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "url-used");
    assert_eq!(
        std::fs::read(app.object_path(&id, "demo.mp4")).unwrap(),
        b"first"
    );

    let fresh = app.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    assert_eq!(
        app.put(fresh["uploadUrl"].as_str().unwrap(), "video/mp4", b"second")
            .status,
        200
    );
    let public = app.local(p["publicUrl"].as_str().unwrap());
    assert_eq!(app.send("GET", &public, &[], b"").body, b"second");
}

#[test]
fn the_wrong_content_type_gets_415_and_does_not_spend_the_url() {
    let app = TestApp::spawn();
    let (_, p) = presigned(&app, json!({}));
    let url = p["uploadUrl"].as_str().unwrap();
    for ct in ["video/webm", "application/octet-stream", "text/plain"] {
        let res = app.put(url, ct, b"data");
        assert_eq!(res.status, 415, "{ct}");
        assert_eq!(res.error_code(), "content-type-mismatch");
        assert!(res.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("video/mp4"));
    }
    let none = app.send("PUT", &app.local(url), &[], b"data");
    assert_eq!(none.status, 415);
    assert_eq!(
        app.put(url, "video/mp4; charset=binary", b"data").status,
        200
    );
}

#[test]
fn an_expired_url_is_refused_with_403() {
    let app = TestApp::spawn();
    let (id, p) = presigned(&app, json!({ "expiresIn": 60 }));
    // Re-sign the very same grant with an expiry in the past, using the node's own key: the
    // signature is valid, so only the expiry can refuse it.
    let url = p["uploadUrl"].as_str().unwrap();
    let query = url.split_once('?').unwrap().1;
    let pairs = flare::domain::signing::parse_query(query).unwrap();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let grant = UploadGrant {
        video_id: id.clone(),
        file_name: "demo.mp4".into(),
        expires: flare::time::now_ms() / 1000 - 1,
        content_type: get("type"),
        limit: get("limit").parse().unwrap(),
        exact: get("exact") == "1",
        upload_id: get("upload"),
        token_id: get("token"),
        resumable_until: None,
    };
    let expired = grant.sign(&read_key(&app.data_dir()));
    let res = app.send("PUT", &expired, &[("Content-Type", "video/mp4")], b"data");
    assert_eq!(res.status, 403, "{}", res.text());
    assert_eq!(res.error_code(), "url-expired");
    // The original, unexpired URL still works.
    assert_eq!(app.put(url, "video/mp4", b"data").status, 200);
}

#[test]
fn every_signed_part_of_the_url_is_tamper_proof() {
    let app = TestApp::spawn();
    let (_, p) = presigned(&app, json!({ "size": 4 }));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let (path, query) = url.split_once('?').unwrap();
    let pairs: Vec<(String, String)> = query
        .split('&')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let join = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut tampered: Vec<(String, String)> = Vec::new();
    for i in 0..pairs.len() {
        let mut changed = pairs.clone();
        changed[i].1.push('0');
        tampered.push((
            format!("{} changed", pairs[i].0),
            format!("{path}?{}", join(&changed)),
        ));
        let mut dropped = pairs.clone();
        dropped.remove(i);
        tampered.push((
            format!("{} dropped", pairs[i].0),
            format!("{path}?{}", join(&dropped)),
        ));
        let mut doubled = pairs.clone();
        doubled.push(pairs[i].clone());
        tampered.push((
            format!("{} duplicated", pairs[i].0),
            format!("{path}?{}", join(&doubled)),
        ));
    }
    tampered.push(("extra parameter".into(), format!("{url}&x=1")));
    tampered.push(("no query".into(), path.to_string()));
    tampered.push((
        "other file".into(),
        url.replace("/demo.mp4?", "/demo2.mp4?"),
    ));
    tampered.push((
        "other video".into(),
        url.replacen("/upload/vid_", "/upload/vie_", 1),
    ));
    for (what, u) in tampered {
        let res = app.send("PUT", &u, &[("Content-Type", "video/mp4")], b"data");
        assert_eq!(res.status, 403, "{what}: {}", res.text());
        assert_eq!(res.error_code(), "signature-mismatch", "{what}");
    }
    for method in ["POST", "GET", "DELETE", "PATCH"] {
        let res = app.send(method, &url, &[("Content-Type", "video/mp4")], b"data");
        assert_eq!(res.status, 403, "{method}");
        assert_eq!(res.error_code(), "signature-mismatch", "{method}");
    }
    // Untouched, it works.
    assert_eq!(
        app.send("PUT", &url, &[("Content-Type", "video/mp4")], b"data")
            .status,
        200
    );
}

#[test]
fn a_url_signed_by_another_node_is_refused() {
    let app = TestApp::spawn();
    let other = TestApp::spawn();
    let id = app.create_video("demo.mp4");
    other
        .api(
            "POST",
            "/api/video/create",
            Some(json!({ "fileName": "demo.mp4", "s3Key": id })),
        )
        .json();
    let p = other.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    let res = app.send(
        "PUT",
        &other.local(p["uploadUrl"].as_str().unwrap()),
        &[("Content-Type", "video/mp4")],
        b"x",
    );
    assert_eq!(res.status, 403);
    assert_eq!(res.error_code(), "signature-mismatch");
}

#[test]
fn over_the_limit_by_content_length_is_refused_before_the_body() {
    let app = TestApp::spawn_with(|s| s.max_upload_bytes = Some(1000));
    let (id, p) = presigned(&app, json!({}));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    // Announce 1 GB and send nothing: the answer must come without waiting for the body.
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(stream, "PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 1000000000\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    let res = crate::helpers::parse_response(&buf[..n]);
    assert_eq!(res.status, 413);
    assert_eq!(res.error_code(), "too-large");
    assert!(res.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1000"));
    assert!(!app.object_path(&id, "demo.mp4").exists());

    // A declared size is the exact limit.
    let (_, p) = presigned(&app, json!({ "size": 10 }));
    let res = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &[1u8; 11]);
    assert_eq!(res.status, 413);
    let res = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &[1u8; 9]);
    assert_eq!(res.status, 400);
    assert!(res.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("exactly 10"));
    assert_eq!(
        app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &[1u8; 10])
            .status,
        200
    );
}

/// Sends a chunked PUT of `total` bytes from a second thread while this one reads the answer.
fn chunked_put(app: &TestApp, url: &str, total: usize) -> crate::helpers::Response {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let head = format!("PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nTransfer-Encoding: chunked\r\n\r\n");
    let sender = std::thread::spawn(move || {
        writer.write_all(head.as_bytes())?;
        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            write!(writer, "{n:x}\r\n")?;
            writer.write_all(&chunk[..n])?;
            writer.write_all(b"\r\n")?;
            sent += n;
        }
        writer.write_all(b"0\r\n\r\n")
    });
    let res = crate::helpers::read_response(&mut stream);
    let _ = sender.join();
    res
}

#[test]
fn over_the_limit_while_streaming_is_cut_off_and_leaves_nothing() {
    let app = TestApp::spawn_with(|s| s.max_upload_bytes = Some(1_000_000));
    let (id, p) = presigned(&app, json!({}));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let res = chunked_put(&app, &url, 5_000_000);
    assert_eq!(res.status, 413, "{}", res.text());
    assert_eq!(res.error_code(), "too-large");
    assert!(!app.object_path(&id, "demo.mp4").exists());
    assert!(
        app.temp_files_settled().is_empty(),
        "a temp file was left behind"
    );
    // Refused, so not spent: the same URL still takes a body within the limit.
    let ok = chunked_put(&app, &url, 999_999);
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(
        std::fs::metadata(app.object_path(&id, "demo.mp4"))
            .unwrap()
            .len(),
        999_999
    );
}

#[test]
fn a_short_body_stores_nothing_and_keeps_the_previous_object() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("demo.mp4", b"the old bytes");
    let p = app.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    write!(stream, "PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 100000\r\n\r\n").unwrap();
    stream.write_all(&[9u8; 50_000]).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let _ = crate::helpers::read_response(&mut stream);
    assert!(
        app.temp_files_settled().is_empty(),
        "a temp file was left behind"
    );
    assert_eq!(app.send("GET", &public, &[], b"").body, b"the old bytes");
    // An aborted PUT does not spend the URL.
    assert_eq!(
        app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", b"new")
            .status,
        200
    );
    assert_eq!(app.send("GET", &public, &[], b"").body, b"new");
}

#[test]
fn revoking_the_minting_token_kills_its_urls() {
    let app = TestApp::spawn();
    let (token, token_id) = app.new_token(&[Scope::UploadsWrite, Scope::VideosWrite], None);
    let id = app.create_video("demo.mp4");
    let res = app.api_as(
        &token,
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": id, "fileName": "demo.mp4" })),
    );
    assert_eq!(res.status, 200);
    let url = res.json()["uploadUrl"].as_str().unwrap().to_string();
    app.revoke(&token_id);
    let res = app.put(&url, "video/mp4", b"data");
    assert_eq!(res.status, 401);
    assert_eq!(res.error_code(), "token-revoked");
    assert!(!app.object_path(&id, "demo.mp4").exists());
}

#[test]
fn a_url_does_not_outlive_its_token() {
    let app = TestApp::spawn();
    let soon = flare::time::now_ms() + 120_000;
    let (token, _) = app.new_token(&Scope::ALL, Some(soon));
    let id = app.create_video("demo.mp4");
    let res = app.api_as(
        &token,
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": id, "fileName": "demo.mp4", "expiresIn": 3600 })),
    );
    assert_eq!(
        res.json()["expiresAt"],
        flare::time::iso8601(soon / 1000 * 1000)
    );
}

#[test]
fn file_names_with_spaces_and_accents_round_trip() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("Été talk (final).webm", b"webm bytes");
    assert!(
        public.contains("%C3%89t%C3%A9%20talk%20%28final%29.webm"),
        "{public}"
    );
    let res = app.send("GET", &public, &[], b"");
    assert_eq!(res.body, b"webm bytes");
    assert_eq!(res.header("content-type"), Some("video/webm"));
    assert!(app.object_path(&id, "Été talk (final).webm").exists());
}

#[test]
fn concurrent_puts_through_one_url_store_one_object() {
    let app = TestApp::spawn();
    let (id, p) = presigned(&app, json!({}));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u8)
            .map(|i| {
                let (app, url) = (&app, &url);
                s.spawn(move || {
                    app.send(
                        "PUT",
                        url,
                        &[("Content-Type", "video/mp4")],
                        &vec![i; 2_000_000],
                    )
                    .status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 409),
        "{statuses:?}"
    );
    let stored = std::fs::read(app.object_path(&id, "demo.mp4")).unwrap();
    assert_eq!(stored.len(), 2_000_000);
    assert!(
        stored.iter().all(|&b| b == stored[0]),
        "a mix of two bodies was stored"
    );
}

#[test]
fn a_url_made_for_a_deleted_video_stays_dead_when_the_id_is_used_again() {
    // A presign without a size writes no row: the URL must still die with its video, even
    // when a new video takes the same id afterwards.
    let app = TestApp::spawn();
    let made = app.api(
        "POST",
        "/api/video/create",
        Some(serde_json::json!({ "fileName": "a.mp4", "s3Key": "lecture-7" })),
    );
    assert_eq!(made.status, 201, "{}", made.text());
    let old = app.presign(serde_json::json!({ "videoId": "lecture-7", "fileName": "a.mp4" }));
    assert_eq!(app.api("DELETE", "/api/video/lecture-7", None).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let again = app.api(
        "POST",
        "/api/video/create",
        Some(serde_json::json!({ "fileName": "a.mp4", "s3Key": "lecture-7" })),
    );
    assert_eq!(again.status, 201, "{}", again.text());
    let res = app.put(
        old["uploadUrl"].as_str().unwrap(),
        "video/mp4",
        b"old bytes",
    );
    assert_eq!(res.status, 404, "{}", res.text());
    assert!(res.text().contains("no longer exists"), "{}", res.text());
    assert!(!app.object_path("lecture-7", "a.mp4").exists());

    // A URL made for the new video works, once.
    let new = app.presign(serde_json::json!({ "videoId": "lecture-7", "fileName": "a.mp4" }));
    let url = new["uploadUrl"].as_str().unwrap();
    assert_eq!(app.put(url, "video/mp4", b"new bytes").status, 200);
    assert_eq!(app.put(url, "video/mp4", b"new bytes").status, 409);
    assert_eq!(
        std::fs::read(app.object_path("lecture-7", "a.mp4")).unwrap(),
        b"new bytes"
    );
}
