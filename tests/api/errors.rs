//! The error shape on every route, 404 and 405 included; health; CORS.

use crate::helpers::TestApp;
use serde_json::json;

#[test]
fn health_answers_ok() {
    let app = TestApp::spawn();
    let res = app.send("GET", "/healthz", &[], b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.json(), json!({ "status": "ok" }));
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let app = TestApp::spawn();
    for path in [
        "/nope",
        "/api/video",
        "/media/x",
        "/media/a/b/c.mp4",
        "/static/nope.js",
    ] {
        let res = app.send("GET", path, &[], b"");
        assert_eq!(res.status, 404, "{path}");
        assert_eq!(res.error_code(), "not-found", "{path}");
    }
    for (method, path) in [
        ("GET", "/api/video/create"),
        ("DELETE", "/api/video/upload/presign"),
        ("POST", "/healthz"),
        ("PUT", "/media/v/composite/a.mp4"),
    ] {
        let res = app.send(method, path, &[], b"");
        assert_eq!(res.status, 405, "{method} {path}");
        assert_eq!(res.error_code(), "method-not-allowed");
        assert!(
            res.header("allow").is_some_and(|a| !a.is_empty()),
            "{method} {path}: no Allow header"
        );
    }
}

#[test]
fn malformed_and_oversized_json_is_refused() {
    let app = TestApp::spawn();
    let auth = format!("Bearer {}", app.token);
    for body in [&b"{"[..], b"", b"[]", b"\"demo\"", b"{\"fileName\": }"] {
        let res = app.send(
            "POST",
            "/api/video/create",
            &[("Authorization", &auth)],
            body,
        );
        assert_eq!(res.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(res.error_code(), "invalid-json");
    }
    let big = format!("{{\"fileName\": \"{}\"}}", "a".repeat(70_000));
    let res = app.send(
        "POST",
        "/api/video/create",
        &[("Authorization", &auth)],
        big.as_bytes(),
    );
    assert_eq!(res.status, 413);
    assert_eq!(res.error_code(), "too-large");
}

#[test]
fn error_bodies_carry_no_server_path() {
    let app = TestApp::spawn();
    let data = app.data_dir().to_string_lossy().into_owned();
    let responses = [
        app.send("GET", "/media/vid/composite/missing.mp4", &[], b""),
        app.send(
            "PUT",
            "/upload/vid/composite/a.mp4?upload=x",
            &[("Content-Type", "video/mp4")],
            b"x",
        ),
        app.api(
            "POST",
            "/api/video/upload/presign",
            Some(json!({"videoId": "../../etc", "fileName": "a.mp4"})),
        ),
    ];
    for res in responses {
        assert!(res.status >= 400);
        assert!(!res.text().contains(&data), "{}", res.text());
        assert!(!res.text().contains("/tmp"), "{}", res.text());
    }
}

#[test]
fn cors_answers_preflights_for_listed_origins_only() {
    let app =
        TestApp::spawn_with(|s| s.cors_allowed_origins = Some(vec!["https://app.example".into()]));
    let id = app.create_video("demo.mp4");
    let p = app.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    let upload = app.local(p["uploadUrl"].as_str().unwrap());

    let preflight = |origin: &str| {
        app.send(
            "OPTIONS",
            &upload,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "PUT"),
                ("Access-Control-Request-Headers", "content-type"),
            ],
            b"",
        )
    };
    let ok = preflight("https://app.example");
    assert_eq!(ok.status, 204);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(ok
        .header("access-control-allow-methods")
        .unwrap()
        .contains("PUT"));
    assert!(ok
        .header("access-control-allow-headers")
        .unwrap()
        .contains("content-type"));
    assert_eq!(ok.header("vary"), Some("Origin"));
    let other = preflight("https://evil.example");
    assert_eq!(other.header("access-control-allow-origin"), None);

    let body = b"0123456789";
    let put = app.send(
        "PUT",
        &upload,
        &[
            ("Content-Type", "video/mp4"),
            ("Origin", "https://app.example"),
        ],
        body,
    );
    assert_eq!(put.status, 200);
    assert_eq!(
        put.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(put
        .header("access-control-expose-headers")
        .unwrap()
        .contains("ETag"));
    assert!(put.header("vary").unwrap().contains("Origin"));
    let get = app.send(
        "GET",
        &app.local(p["publicUrl"].as_str().unwrap()),
        &[("Origin", "https://evil.example")],
        b"",
    );
    assert_eq!(get.status, 200);
    assert_eq!(get.header("access-control-allow-origin"), None);
}

#[test]
fn without_cors_origins_no_allow_headers_are_sent() {
    let app = TestApp::spawn();
    let res = app.send(
        "OPTIONS",
        "/api/video/create",
        &[
            ("Origin", "https://a.example"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[test]
fn no_client_chosen_id_can_collide_with_a_route_word() {
    let app = TestApp::spawn();
    let words = flare::http::routes::route_words();
    for word in [
        "create",
        "update",
        "embed-settings",
        "presign",
        "upload",
        "composite",
    ] {
        assert!(words.contains(&word), "{word} missing from {words:?}");
    }
    for word in words {
        let res = app.api(
            "POST",
            "/api/video/create",
            Some(serde_json::json!({ "fileName": "a.mp4", "s3Key": word })),
        );
        if word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            assert_eq!(res.status, 400, "s3Key {word}: {}", res.text());
            assert!(res.json()["error"]["message"]
                .as_str()
                .unwrap()
                .contains("reserved"));
        }
    }
    // The id that was reachable for nothing but GET and DELETE before.
    let res = app.api(
        "POST",
        "/api/video/create",
        Some(serde_json::json!({ "fileName": "a.mp4", "s3Key": "update" })),
    );
    assert_eq!(res.error_code(), "invalid-field");
}

#[test]
fn readyz_checks_the_database_and_the_room_left_and_healthz_only_liveness() {
    let app = TestApp::spawn();
    let ready = app.send("GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.text());
    assert_eq!(ready.json()["status"], "ready");
    assert!(ready.json()["freeBytes"].as_u64().unwrap() > 0);

    let full = TestApp::spawn_with(|s| s.disk_reserve_bytes = Some(1 << 62));
    let res = full.send("GET", "/readyz", &[], b"");
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.error_code(), "unavailable");
    assert!(res.text().contains("disk_reserve_bytes"), "{}", res.text());
    assert_eq!(full.send("GET", "/healthz", &[], b"").status, 200);
}
