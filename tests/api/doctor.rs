//! `flare doctor` says what is wrong and how to fix it; `flare url explain` says why a URL
//! would be refused.

use serde_json::{json, Value};

use crate::helpers::*;

fn doctor(app: &TestApp) -> (bool, Value) {
    let out = run_flare(&app.data_dir(), &["doctor", "--json"], &[]);
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn status_of<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {report}"))
}

#[test]
fn doctor_passes_a_healthy_node_and_names_a_readable_signing_key_with_its_fix() {
    let app = TestApp::spawn();
    let (ok, report) = doctor(&app);
    assert!(ok, "{report}");
    for name in [
        "data folder",
        "one file system",
        "database",
        "signing key",
        "public URL",
        "server",
        "clock",
    ] {
        assert_eq!(status_of(&report, name)["status"], "ok", "{name}: {report}");
    }
    assert!(status_of(&report, "public URL")["detail"]
        .as_str()
        .unwrap()
        .contains("answers from this machine"));

    let key = app.data_dir().join("signing.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let (ok, report) = doctor(&app);
    assert!(!ok);
    let check = status_of(&report, "signing key");
    assert_eq!(check["status"], "fail");
    assert!(
        check["fix"].as_str().unwrap().starts_with("chmod 600"),
        "{check}"
    );
    let text = run_flare(&app.data_dir(), &["doctor"], &[]);
    assert!(!text.status.success());
    assert!(String::from_utf8_lossy(&text.stdout).contains("FAIL  signing key"));
}

fn explain(app: &TestApp, url: &str) -> (bool, Value) {
    let out = run_flare(&app.data_dir(), &["url", "explain", url, "--json"], &[]);
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

fn says(answer: &Value, text: &str) -> bool {
    answer["facts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f.as_str().unwrap().contains(text))
}

#[test]
fn url_explain_says_why_an_upload_url_would_be_refused() {
    let app = TestApp::spawn();
    let id = app.create_video("a.mp4");
    let p = app.presign(json!({ "videoId": id, "fileName": "a.mp4" }));
    let url = p["uploadUrl"].as_str().unwrap();
    let (ok, answer) = explain(&app, url);
    assert!(ok && answer["accepted"] == true, "{answer}");
    assert!(says(&answer, "not used yet"), "{answer}");

    let (ok, answer) = explain(&app, &url.replace("sig=", "sig=A"));
    assert!(!ok && says(&answer, "signature: refused"), "{answer}");

    assert_eq!(app.put(url, "video/mp4", b"bytes").status, 200);
    let (ok, answer) = explain(&app, url);
    assert!(!ok && says(&answer, "spent at"), "{answer}");

    // A token revoked, then the video deleted.
    let (token, token_id) = app.new_token(&flare::domain::tokens::Scope::ALL, None);
    let other = app.create_video("b.mp4");
    let res = app.api_as(
        &token,
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": other, "fileName": "b.mp4" })),
    );
    let url = res.json()["uploadUrl"].as_str().unwrap().to_string();
    app.revoke(&token_id);
    let (_, answer) = explain(&app, &url);
    assert!(says(&answer, "revoked at"), "{answer}");
    app.api("DELETE", &format!("/api/video/{other}"), None);
    let (_, answer) = explain(&app, &url);
    assert!(
        answer["accepted"] == false && (says(&answer, "deleted") || says(&answer, "no record")),
        "{answer}"
    );

    // Expired.
    let third = app.create_video("c.mp4");
    let p = app.presign(json!({ "videoId": third, "fileName": "c.mp4", "expiresIn": 1 }));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (ok, answer) = explain(&app, p["uploadUrl"].as_str().unwrap());
    assert!(!ok && says(&answer, "expired at"), "{answer}");

    // A media URL: the current file, then one a later upload replaced.
    let (_, answer) = explain(&app, &format!("{}/media/{id}/composite/a.mp4", app.base));
    assert!(
        answer["accepted"] == true && says(&answer, "public"),
        "{answer}"
    );
    let (ok, answer) = explain(&app, &format!("{}/media/{id}/composite/old.mp4", app.base));
    assert!(
        !ok && says(&answer, "not a file its record names"),
        "{answer}"
    );
}
