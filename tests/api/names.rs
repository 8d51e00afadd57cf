//! A corpus of hostile names through every door that takes one (`s3Key`, `fileName`,
//! `videoId`): each is refused, or stored strictly inside `DATA_DIR/objects`. The tree is listed
//! afterwards to prove it.

use crate::helpers::TestApp;
use serde_json::json;

fn corpus() -> Vec<String> {
    let mut names: Vec<String> = [
        // Traversal, raw.
        "..",
        ".",
        "../x.mp4",
        "../../etc/passwd",
        "..\\x.mp4",
        "a/../../b.mp4",
        "/abs.mp4",
        "a/b.mp4",
        "x.mp4/..",
        // Percent-encoded, double-encoded and overlong UTF-8 forms, sent literally.
        "%2e%2e%2fx.mp4",
        "%2E%2E/x.mp4",
        "..%2fx.mp4",
        "%252e%252e%252fx.mp4",
        "%c0%ae%c0%ae%c0%afx.mp4",
        "%e0%80%aex.mp4",
        // Unicode look-alikes of / \\ and .
        "a\u{2215}b.mp4",
        "a\u{2044}b.mp4",
        "a\u{FF0F}b.mp4",
        "a\u{29F8}b.mp4",
        "a\u{FF3C}b.mp4",
        "\u{FF0E}\u{FF0E}\u{FF0F}x.mp4",
        "\u{2024}\u{2024}\u{2215}x.mp4",
        "x\u{FE52}mp4",
        // Windows reserved names.
        "CON",
        "NUL.mp4",
        "aux.mp4",
        "COM1.mp4",
        "LPT9.mp4",
        "con.mp4.",
        "x.mp4:stream",
        // Control characters, NUL, hidden files, whitespace.
        "a\u{0}b.mp4",
        "a\nb.mp4",
        "a\rb.mp4",
        "\u{1b}[31mx.mp4",
        ".hidden.mp4",
        "",
        " ",
        "\t",
        "   x.mp4",
        "x.mp4 ",
        // Ordinary but unusual.
        "normal.mp4",
        "with space.mp4",
        "ünïcødé.webm",
        "emoji-🎬.mov",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("a".repeat(4096) + ".mp4");
    names.push("a".repeat(256));
    names
}

#[test]
fn hostile_names_are_refused_or_kept_inside_objects() {
    let app = TestApp::spawn();
    let data = app.data_dir();
    let host = app.create_video("host.mp4");
    let (mut refused, mut stored) = (0, 0);
    for name in corpus() {
        let created = app.api(
            "POST",
            "/api/video/create",
            Some(json!({ "fileName": "a.mp4", "s3Key": name })),
        );
        assert!(
            created.status == 400 || created.status == 201,
            "s3Key {name:?}: {}",
            created.status
        );
        let id_exists = created.status == 201;
        if id_exists {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                "s3Key {name:?} accepted"
            );
        }
        let created = app.api(
            "POST",
            "/api/video/create",
            Some(json!({ "fileName": name })),
        );
        assert!(
            created.status == 400 || created.status == 201,
            "fileName {name:?}: {}",
            created.status
        );
        let by_id = app.api(
            "POST",
            "/api/video/upload/presign",
            Some(json!({ "videoId": name, "fileName": "a.mp4" })),
        );
        let expected = if id_exists {
            200
        } else if by_id.status == 404 {
            404
        } else {
            400
        };
        assert_eq!(by_id.status, expected, "videoId {name:?}");
        let res = app.api(
            "POST",
            "/api/video/upload/presign",
            Some(json!({ "videoId": host, "fileName": name })),
        );
        match res.status {
            400 => refused += 1,
            200 => {
                let p = res.json();
                let put = app.put(
                    p["uploadUrl"].as_str().unwrap(),
                    p["headers"]["Content-Type"].as_str().unwrap(),
                    b"x",
                );
                assert_eq!(put.status, 200, "fileName {name:?}: {}", put.text());
                let got = app.send(
                    "GET",
                    &app.local(p["publicUrl"].as_str().unwrap()),
                    &[],
                    b"",
                );
                assert_eq!(got.body, b"x", "fileName {name:?} is not served back");
                stored += 1;
            }
            other => panic!("fileName {name:?}: {other}"),
        }
    }
    // The proof: every file under the data folder, where it is.
    let objects = data.join("objects").canonicalize().unwrap();
    let tree = crate::helpers::files_under(&data);
    for path in &tree {
        let real = path.canonicalize().unwrap();
        let top = real
            .strip_prefix(data.canonicalize().unwrap())
            .unwrap()
            .iter()
            .next()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            real.starts_with(&objects)
                || [
                    "flare.db",
                    "flare.db-wal",
                    "flare.db-shm",
                    "flare.db-revocations",
                    "signing.key",
                    "flare.lock",
                ]
                .contains(&top.as_str()),
            "{} is outside objects/",
            real.display()
        );
    }
    let in_objects = tree
        .iter()
        .filter(|p| p.starts_with(data.join("objects")))
        .count();
    // Every accepted name went to the same video, and one video has one object: each upload
    // replaced the one before.
    assert_eq!(
        in_objects,
        stored.min(1),
        "objects/ holds something no accepted name explains: {tree:#?}"
    );
    assert!(
        refused > 30 && stored >= 5,
        "refused {refused}, stored {stored}"
    );
    eprintln!("names: {} names tried at 4 doors each; fileName refused {refused}, stored {stored}, all inside objects/", corpus().len());
}
