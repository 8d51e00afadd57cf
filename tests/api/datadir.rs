//! The data folder: one server at a time, who may create it, private modes, a lost signing key
//! or database, and the links the command-line tools print.

use crate::helpers::{data_dir_with_token, files_under, run_flare, sample, Node};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `flare serve` on `data` that must fail at start: its stderr.
fn serve_refused(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    let out = run_flare(data, &args, env);
    assert!(!out.status.success(), "serve started: {}", stderr(&out));
    stderr(&out)
}

#[test]
fn a_second_server_on_the_same_folder_is_refused_and_sweeps_nothing() {
    let (_dir, data, _token) = data_dir_with_token("lock");
    let node = Node::start(&data, &[]);
    // An upload in progress of the first server's, as its temp file.
    std::fs::write(data.join("tmp/inflight.part"), b"half").unwrap();
    let refused = serve_refused(&data, &[], &[]);
    assert!(
        refused.contains("another flare server (pid ")
            && refused.contains("is using the data folder"),
        "{refused}"
    );
    assert!(
        data.join("tmp/inflight.part").exists(),
        "the refused server swept the first one's upload"
    );
    assert_eq!(node.send("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn only_serve_and_token_create_make_a_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("dta");
    for args in [
        &["token", "list"][..],
        &["token", "revoke", "tok_x"],
        &["video", "list"],
        &["fsck"],
    ] {
        let out = run_flare(&typo, args, &[]);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&out).contains(&format!("there is no data folder at {}", typo.display())),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!typo.exists(), "{args:?} made the folder");
    }
    let out = run_flare(&typo, &["token", "create", "--name", "first"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("created the data folder {}", typo.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_data_folder_and_its_files_are_private() {
    let (_dir, data, token) = data_dir_with_token("modes");
    let node = Node::start(&data, &[]);
    let (id, _) = node.upload(&format!("Bearer {token}"), "a.mp4", &sample(1000));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder");
    for file in files_under(&data) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    for sub in ["objects", "tmp", &format!("objects/{id}")] {
        assert_eq!(mode(&data.join(sub)), 0o700, "{sub}");
    }
}

#[test]
fn a_folder_restored_without_its_key_is_refused_while_anything_signed_is_open() {
    let (_dir, data, token) = data_dir_with_token("key");
    let node = Node::start(&data, &[]);
    let auth = format!("Bearer {token}");
    let id = node.create_video(&auth, "a.mp4");
    node.upload_path(&auth, &id, "a.mp4");
    drop(node);
    let key = std::fs::read(data.join("signing.key")).unwrap();
    std::fs::remove_file(data.join("signing.key")).unwrap();

    // fsck and the other tools never make a key.
    let out = run_flare(&data, &["fsck"], &[]);
    assert!(!data.join("signing.key").exists(), "fsck made a key");
    assert!(!out.status.success(), "fsck found nothing wrong");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("missing-signing-key"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = run_flare(&data, &["video", "list"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!data.join("signing.key").exists(), "video list made a key");

    let refused = serve_refused(&data, &[], &[]);
    assert!(
        refused.contains("signing.key is missing") && refused.contains("1 still open"),
        "{refused}"
    );
    assert!(!data.join("signing.key").exists());
    // Restored, all is as before.
    std::fs::write(data.join("signing.key"), key).unwrap();
    std::fs::set_permissions(
        data.join("signing.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let node = Node::start(&data, &[]);
    assert_eq!(node.send("GET", "/healthz", &[], b"").status, 200);
}

#[test]
fn a_lost_database_beside_stored_objects_is_not_silently_started_over() {
    let (_dir, data, _token) = data_dir_with_token("lostdb");
    std::fs::create_dir_all(data.join("objects/vid_x/composite")).unwrap();
    std::fs::write(data.join("objects/vid_x/composite/a.mp4"), b"bytes").unwrap();
    for f in ["flare.db", "flare.db-wal", "flare.db-shm"] {
        let _ = std::fs::remove_file(data.join(f));
    }
    let refused = serve_refused(&data, &[], &[]);
    assert!(
        refused.contains("has no flare.db") && refused.contains("1 video(s)"),
        "{refused}"
    );
    assert!(
        !data.join("flare.db").exists(),
        "an empty database was made"
    );
}

#[test]
fn listening_on_every_interface_needs_a_public_url() {
    let (_dir, data, _token) = data_dir_with_token("lan");
    let refused = run_flare(&data, &["serve", "--listen", "0.0.0.0:0"], &[]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("needs public_url"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn video_show_builds_links_on_what_the_running_server_uses() {
    let (_dir, data, token) = data_dir_with_token("links");
    let node = Node::start(
        &data,
        &[("FLARE_PUBLIC_URL", "http://flare.lab.example:9999")],
    );
    let id = node.create_video(&format!("Bearer {token}"), "a.mp4");
    let out = run_flare(&data, &["video", "show", &id], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&format!("http://flare.lab.example:9999/v/{id}")),
        "{shown}"
    );
    assert!(
        stderr(&out).contains("from the running server (pid"),
        "{}",
        stderr(&out)
    );
    drop(node);
    let out = run_flare(&data, &["video", "show", &id], &[]);
    assert!(
        stderr(&out).contains("no server is running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_database_deleted_under_the_server_refuses_writes_and_is_not_remade_empty() {
    let (_dir, data, token) = data_dir_with_token("deleted-db");
    let node = Node::start(&data, &[]);
    let auth = format!("Bearer {token}");
    let create = || {
        node.send(
            "POST",
            "/api/video/create",
            &[("Authorization", &auth)],
            json!({ "fileName": "a.mp4" }).to_string().as_bytes(),
        )
    };
    assert_eq!(create().status, 201);
    std::fs::create_dir_all(data.join("objects/vid_kept/composite")).unwrap();
    std::fs::write(data.join("objects/vid_kept/composite/a.mp4"), b"x").unwrap();
    for f in ["flare.db", "flare.db-wal", "flare.db-shm"] {
        let _ = std::fs::remove_file(data.join(f));
    }
    let refused = create();
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.error_code(), "unavailable");
    // Reads never see an empty database made behind the server's back.
    for _ in 0..40 {
        let list = node.send("GET", "/api/videos", &[("Authorization", &auth)], b"");
        assert_ne!(list.status, 500, "{}", list.text());
    }
    assert!(
        !data.join("flare.db").exists(),
        "an empty database was made"
    );
    // Said once the writer sees it; a write refused earlier, when opening a connection to
    // read, does not get that far: more refused writes, until it is said.
    let said =
        || node.log_text().contains("the database file") && node.log_text().contains("is gone");
    for _ in 0..40 {
        if said() {
            break;
        }
        assert_eq!(create().status, 503);
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    assert!(said(), "{}", node.log_text());
}
