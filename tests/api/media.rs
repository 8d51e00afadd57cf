//! The public URL: GET and HEAD with one Range, validators and conditional requests.

use crate::helpers::{sample, TestApp};

fn stored(app: &TestApp, len: usize) -> (Vec<u8>, String) {
    let body = sample(len);
    let (_, public) = app.upload("demo.mp4", &body);
    (body, public)
}

#[test]
fn ranges_serve_exactly_the_bytes_asked_for() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 10_000);
    let cases: [(&str, usize, usize); 6] = [
        ("bytes=0-1", 0, 1),
        ("bytes=-500", 9_500, 9_999),
        ("bytes=9000-", 9_000, 9_999),
        ("bytes=100-199", 100, 199),
        ("bytes=9990-20000", 9_990, 9_999),
        ("bytes=0-", 0, 9_999),
    ];
    for (range, start, end) in cases {
        let res = app.send("GET", &public, &[("Range", range)], b"");
        assert_eq!(res.status, 206, "{range}");
        assert_eq!(
            res.header("content-range"),
            Some(format!("bytes {start}-{end}/10000").as_str()),
            "{range}"
        );
        assert_eq!(
            res.header("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert!(res.body == body[start..=end], "{range}: wrong bytes");
        assert_eq!(res.header("accept-ranges"), Some("bytes"));
    }
}

#[test]
fn a_range_past_the_end_gets_416_with_the_size() {
    let app = TestApp::spawn();
    let (_, public) = stored(&app, 10_000);
    for range in ["bytes=10000-", "bytes=20000-30000", "bytes=-0"] {
        let res = app.send("GET", &public, &[("Range", range)], b"");
        assert_eq!(res.status, 416, "{range}");
        assert_eq!(res.header("content-range"), Some("bytes */10000"));
        assert_eq!(res.error_code(), "range-not-satisfiable");
    }
}

#[test]
fn malformed_or_multiple_ranges_get_the_whole_object() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 5_000);
    for range in [
        "bytes=abc",
        "bytes=5-1",
        "bytes=0-1,3-4",
        "lines=0-1",
        "bytes=",
        "bytes=--5",
    ] {
        let res = app.send("GET", &public, &[("Range", range)], b"");
        assert_eq!(res.status, 200, "{range}");
        assert!(res.body == body, "{range}");
        assert_eq!(res.header("content-range"), None);
    }
}

#[test]
fn head_announces_the_object_without_a_body() {
    let app = TestApp::spawn();
    let (_, public) = stored(&app, 4_321);
    let res = app.send("HEAD", &public, &[], b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("4321"));
    assert_eq!(res.header("content-type"), Some("video/mp4"));
    assert!(res.header("etag").is_some() && res.header("last-modified").is_some());
    assert!(res.body.is_empty());
    let res = app.send("HEAD", &public, &[("Range", "bytes=0-1")], b"");
    assert_eq!(res.status, 206);
    assert_eq!(res.header("content-length"), Some("2"));
}

#[test]
fn conditional_requests_answer_304_and_if_range_guards_ranges() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 3_000);
    let first = app.send("GET", &public, &[], b"");
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();

    let res = app.send("GET", &public, &[("If-None-Match", &etag)], b"");
    assert_eq!(res.status, 304);
    assert!(res.body.is_empty());
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    assert_eq!(
        app.send("HEAD", &public, &[("If-None-Match", &etag)], b"")
            .status,
        304
    );
    assert_eq!(
        app.send("GET", &public, &[("If-None-Match", "\"other\"")], b"")
            .status,
        200
    );
    assert_eq!(
        app.send("GET", &public, &[("If-Modified-Since", &modified)], b"")
            .status,
        304
    );
    assert_eq!(
        app.send(
            "GET",
            &public,
            &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
            b""
        )
        .status,
        200
    );

    let res = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!(res.status, 206);
    assert!(res.body == body[..10]);
    let res = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
        b"",
    );
    assert_eq!(res.status, 200);
    assert!(res.body == body);
    let res = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", &modified)],
        b"",
    );
    assert_eq!(res.status, 206);
}

#[test]
fn a_replaced_object_gets_a_new_etag() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("demo.mp4", b"one");
    let before = app
        .send("GET", &public, &[], b"")
        .header("etag")
        .unwrap()
        .to_string();
    let p = app.presign(serde_json::json!({ "videoId": id, "fileName": "demo.mp4" }));
    assert_eq!(
        app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", b"two")
            .status,
        200
    );
    let res = app.send("GET", &public, &[("If-None-Match", &before)], b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"two");
}

#[test]
fn a_large_object_streams_whole() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 12 * 1024 * 1024 + 3);
    let res = app.send("GET", &public, &[], b"");
    assert_eq!(res.status, 200);
    assert!(res.body == body);
    let res = app.send("GET", &public, &[("Range", "bytes=5000000-")], b"");
    assert!(res.body == body[5_000_000..]);
}

#[test]
fn a_missing_object_is_a_json_404() {
    let app = TestApp::spawn();
    let res = app.send("GET", "/media/vid_x/composite/none.mp4", &[], b"");
    assert_eq!(res.status, 404);
    assert_eq!(res.error_code(), "not-found");
}
