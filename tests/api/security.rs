//! Secrets stay secret: no token, password or URL signature in the logs or in clear in the
//! database files, whatever the server did with them.

use crate::helpers::{data_dir_with_token, Node};
use serde_json::json;

#[test]
fn no_secret_reaches_the_log_or_the_database_in_clear() {
    let (_dir, data, token) = data_dir_with_token("secret");
    let mut node = Node::start(&data, &[("FLARE_LOG_LEVEL", "debug")]);
    let auth = format!("Bearer {token}");
    let api = |method: &str, path: &str, body: serde_json::Value| {
        node.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    };
    let id = api("POST", "/api/video/create", json!({ "fileName": "a.mp4" })).json()["video"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = api(
        "POST",
        "/api/video/upload/presign",
        json!({ "videoId": id, "fileName": "a.mp4" }),
    )
    .json();
    let url = p["uploadUrl"].as_str().unwrap().to_string();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    assert_eq!(
        node.send("PUT", &path, &[("Content-Type", "video/mp4")], b"bytes")
            .status,
        200
    );
    let password = "hunter2-correct-horse";
    api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        json!({ "password": password }),
    );
    let form = format!("password={password}");
    node.send(
        "POST",
        &format!("/v/{id}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    node.send(
        "POST",
        &format!("/v/{id}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"password=wrong-guess-123",
    );
    // A refused request carrying a (bad) token must not log it either.
    node.send(
        "GET",
        "/api/videos",
        &[(
            "Authorization",
            "Bearer flr_pat_not-a-real-token-but-secret-looking-xyz",
        )],
        b"",
    );
    node.kill();

    let log = node.log_text();
    assert!(
        log.contains("PUT /upload/"),
        "the log is not being captured:\n{log}"
    );
    let signature = url.rsplit("sig=").next().unwrap();
    let secret = token.strip_prefix("flr_pat_").unwrap();
    for (what, needle) in [
        ("the token", secret),
        ("the password", password),
        ("a wrong password", "wrong-guess-123"),
        ("a bad token", "not-a-real-token"),
        ("the URL signature", signature),
    ] {
        assert!(!log.contains(needle), "{what} is in the log:\n{log}");
        for file in ["flare.db", "flare.db-wal"] {
            let bytes = std::fs::read(data.join(file)).unwrap_or_default();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "{what} is in {file} in clear"
            );
        }
    }
}
