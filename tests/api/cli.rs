//! `flare token create|list|revoke` through the built binary, beside a running server.

use crate::helpers::TestApp;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

fn flare(data_dir: &Path, args: &[&str]) -> Output {
    flare_with(data_dir, args, &[])
}

fn flare_with(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    crate::helpers::run_flare(data_dir, args, env)
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn token_create_prints_only_the_token_and_it_works_on_the_running_server() {
    let app = TestApp::spawn();
    let out = flare(
        &app.data_dir(),
        &[
            "token",
            "create",
            "--name",
            "laptop",
            "--scope",
            "uploads:write",
            "--scope",
            "videos:write",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim_end_matches('\n').to_string();
    assert!(!token.contains('\n'), "stdout holds more than the token");
    assert!(
        token.starts_with("flr_pat_") && token.len() == 51,
        "{token}"
    );
    assert!(stderr(&out).contains("uploads:write"));
    assert!(
        !stderr(&out).contains(&token),
        "the token was echoed on stderr"
    );

    let res = app.api_as(
        &token,
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "a.mp4" })),
    );
    assert_eq!(res.status, 201);
    let id = res.json()["video"]["id"].as_str().unwrap().to_string();
    let res = app.api_as(
        &token,
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": id, "fileName": "a.mp4" })),
    );
    assert_eq!(res.status, 200);
}

#[test]
fn without_scopes_a_token_gets_all_and_says_so() {
    let app = TestApp::spawn();
    let out = flare(
        &app.data_dir(),
        &["token", "create", "--name", "all", "--expires-in", "90d"],
    );
    assert!(out.status.success());
    assert!(stderr(&out).contains("every scope"), "{}", stderr(&out));
    let list = flare(&app.data_dir(), &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_str(&stdout(&list)).unwrap();
    let mine = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "all")
        .unwrap();
    assert_eq!(
        mine["scopes"],
        json!([
            "videos:read",
            "videos:write",
            "uploads:write",
            "embeds:write",
            "webhooks:write"
        ])
    );
    let expires = mine["expiresAt"].as_str().unwrap();
    let created = mine["createdAt"].as_str().unwrap();
    assert!(expires > created);
}

#[test]
fn list_shows_tokens_without_secrets_and_revoke_takes_effect_at_once() {
    let app = TestApp::spawn();
    let out = flare(&app.data_dir(), &["token", "create", "--name", "ci runner"]);
    let token = stdout(&out).trim().to_string();
    assert_eq!(
        app.api_as(
            &token,
            "POST",
            "/api/video/create",
            Some(json!({ "fileName": "a.mp4" }))
        )
        .status,
        201
    );

    let list = flare(&app.data_dir(), &["token", "list", "--json"]);
    assert!(list.status.success());
    assert!(!stdout(&list).contains(&token[8..]), "list shows a secret");
    let tokens: Value = serde_json::from_str(&stdout(&list)).unwrap();
    let entry = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ci runner")
        .unwrap()
        .clone();
    for key in [
        "id",
        "name",
        "scopes",
        "createdAt",
        "expiresAt",
        "lastUsedAt",
        "revoked",
    ] {
        assert!(entry.get(key).is_some(), "missing {key}");
    }
    assert_eq!(entry["revoked"], false);
    assert_eq!(entry["expiresAt"], Value::Null);
    assert!(
        entry["lastUsedAt"].is_string(),
        "use was not recorded: {entry}"
    );
    let id = entry["id"].as_str().unwrap();

    let table = flare(&app.data_dir(), &["token", "list"]);
    let text = stdout(&table);
    assert!(text.lines().next().unwrap().starts_with("ID"), "{text}");
    assert!(text.contains(id) && text.contains("ci runner") && text.contains("active"));

    // Used again, so the server holds the token's row in memory when the CLI revokes it.
    let again = app.api_as(&token, "GET", "/api/videos", None);
    assert_eq!(again.status, 200);
    let revoked = flare(&app.data_dir(), &["token", "revoke", id]);
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let res = app.api_as(
        &token,
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "a.mp4" })),
    );
    assert_eq!(res.status, 401);
    assert_eq!(res.error_code(), "token-revoked");
    assert!(stdout(&flare(&app.data_dir(), &["token", "list"])).contains("revoked"));

    let unknown = flare(&app.data_dir(), &["token", "revoke", "tok_nothere"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("tok_nothere"));
}

#[test]
fn bad_arguments_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = flare(
        &data,
        &["token", "create", "--name", "x", "--scope", "videos:admin"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("videos:admin") && stderr(&out).contains("uploads:write"));
    assert!(stdout(&out).is_empty());
    let out = flare(
        &data,
        &["token", "create", "--name", "x", "--expires-in", "soon"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--expires-in"));
    let out = flare(&data, &["token", "create", "--name", " "]);
    assert!(!out.status.success());
}

#[test]
fn serve_help_names_each_option_and_its_environment_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = flare(&dir.path().join("data"), &["serve", "--help"]);
    let help = stdout(&out);
    for needle in [
        "--listen",
        "FLARE_LISTEN",
        "--public-url",
        "FLARE_PUBLIC_URL",
        "--config",
        "FLARE_CONFIG",
        "--data-dir",
        "FLARE_DATA_DIR",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn serve_creates_its_data_folder_and_logs_the_address() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flare"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("FLARE_DATA_DIR")
        .env_remove("FLARE_CONFIG")
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut stream,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let res = crate::helpers::read_response(&mut stream);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(res.status, 200);
    let data = dir.path().join("data");
    assert!(data.join("flare.db").is_file());
    let key = std::fs::metadata(data.join("signing.key")).unwrap();
    assert_eq!(key.len(), 32);
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
}

#[test]
fn video_list_show_and_delete_work_on_the_same_data_as_the_api() {
    let app = TestApp::spawn();
    let (id, _) = app.upload("talk.mp4", b"video bytes");
    let second = app.create_video("later.mp4");

    let list = flare(&app.data_dir(), &["video", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("ID"));
    assert!(
        lines.next().unwrap().starts_with(&second),
        "newest first:\n{text}"
    );
    assert!(text.contains(&id) && text.contains("ready") && text.contains("pending"));

    let json_list: Value = serde_json::from_str(&stdout(&flare(
        &app.data_dir(),
        &["video", "list", "--json", "--limit", "1"],
    )))
    .unwrap();
    assert_eq!(json_list["videos"].as_array().unwrap().len(), 1);
    assert!(json_list["nextCursor"].is_string());
    let cursor = json_list["nextCursor"].as_str().unwrap();
    let rest: Value = serde_json::from_str(&stdout(&flare(
        &app.data_dir(),
        &["video", "list", "--json", "--cursor", cursor],
    )))
    .unwrap();
    assert_eq!(rest["videos"][0]["id"], id.as_str());

    // With the same public URL as the server (as a shared flare.toml gives), the same object.
    let public = [("FLARE_PUBLIC_URL", app.base.as_str())];
    let show: Value = serde_json::from_str(&stdout(&flare_with(
        &app.data_dir(),
        &["video", "show", &id, "--json"],
        &public,
    )))
    .unwrap();
    assert_eq!(
        show,
        app.api("GET", &format!("/api/video/{id}"), None).json()["video"]
    );
    let shown = stdout(&flare(&app.data_dir(), &["video", "show", &id]));
    assert!(
        shown.contains("sha256") && shown.contains("watchPage"),
        "{shown}"
    );

    let deleted = flare(&app.data_dir(), &["video", "delete", &id]);
    assert!(deleted.status.success(), "{}", stderr(&deleted));
    assert_eq!(
        app.api("GET", &format!("/api/video/{id}"), None).status,
        404
    );
    assert!(!app.data_dir().join("objects").join(&id).exists());
    let again = flare(&app.data_dir(), &["video", "delete", &id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains(&id));
}
