//! `flare backup` while the server runs and `flare restore` into a new folder: the same videos,
//! tokens, captions and signing key, every byte checked; restore refuses a folder in use or
//! holding anything, and a damaged backup restores nothing.

use serde_json::{json, Value};
use std::path::Path;

use crate::helpers::*;

fn flare_ok(data_dir: &Path, args: &[&str]) -> String {
    let out = run_flare(data_dir, args, &[]);
    assert!(
        out.status.success(),
        "flare {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn flare_refused(data_dir: &Path, args: &[&str]) -> String {
    let out = run_flare(data_dir, args, &[]);
    assert!(!out.status.success(), "flare {args:?} should have failed");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn a_backup_taken_while_serving_restores_into_a_node_that_serves_the_same_bytes() {
    let app = TestApp::spawn();
    let (a, a_url) = app.upload("a.mp4", &sample(300_000));
    let (b, _) = app.upload("b.mov", &sample(70_000));
    let caption = app.send(
        "PUT",
        &format!("/api/video/{a}/captions/en"),
        &[("Authorization", &format!("Bearer {}", app.token))],
        b"WEBVTT\n\n00:00.000 --> 00:01.000\nHi\n",
    );
    assert_eq!(caption.status, 200);
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("backup");
    let summary: Value = serde_json::from_str(&flare_ok(
        &app.data_dir(),
        &["backup", dest.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    assert_eq!(summary["videos"], 2);
    // Same file system: the objects are hard links, not copies.
    assert_eq!(summary["linked"], 2, "{summary}");

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).unwrap()).unwrap();
    let listed: Vec<&str> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"flare.db") && listed.contains(&"signing.key"),
        "{listed:?}"
    );
    let video_a = app.api("GET", &format!("/api/video/{a}"), None).json()["video"].clone();
    let entry = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == format!("objects/{a}/composite/a.mp4"))
        .unwrap();
    assert_eq!(entry["sha256"], video_a["sha256"]);
    assert_eq!(
        std::fs::read(dest.join("signing.key")).unwrap(),
        std::fs::read(app.data_dir().join("signing.key")).unwrap()
    );
    // A backup goes into a new or empty folder only.
    let again = flare_refused(&app.data_dir(), &["backup", dest.to_str().unwrap()]);
    assert!(again.contains("is not empty"), "{again}");

    // Restore into a new folder and serve it.
    let restored = tempfile::tempdir().unwrap();
    let target = restored.path().join("data");
    let said = flare_ok(&target, &["restore", dest.to_str().unwrap()]);
    assert!(said.contains("restored 2 videos"), "{said}");
    let token = app.token.clone();
    let original_a = app.send("GET", &a_url, &[], b"").body;
    drop(app);
    let mut node = TestApp::start(restored, |_| {});
    node.token = token; // the old token works on the restored node: same database
    let list = node.api("GET", "/api/videos", None).json();
    let mut ids: Vec<&str> = list["videos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(node.send("GET", &a_url, &[], b"").body, original_a);
    assert_eq!(
        node.send("GET", &format!("/media/{a}/captions/en.vtt"), &[], b"")
            .status,
        200
    );
    let out = run_flare(&node.data_dir(), &["fsck", "--json", "--verify"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], json!([]), "{report}");
}

#[test]
fn restore_refuses_a_folder_in_use_or_holding_files_and_a_damaged_backup_restores_nothing() {
    let app = TestApp::spawn();
    let (a, _) = app.upload("a.mp4", &sample(50_000));
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("backup");
    flare_ok(&app.data_dir(), &["backup", dest.to_str().unwrap()]);

    // The running server's own folder.
    let live = flare_refused(&app.data_dir(), &["restore", dest.to_str().unwrap()]);
    assert!(live.contains("is using"), "{live}");
    // A folder with anything in it.
    let busy = work.path().join("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), b"mine").unwrap();
    let refused = flare_refused(&busy, &["restore", dest.to_str().unwrap()]);
    assert!(refused.contains("refuses to overwrite"), "{refused}");
    assert_eq!(std::fs::read(busy.join("notes.txt")).unwrap(), b"mine");
    // Not a backup.
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let not = flare_refused(
        &work.path().join("new1"),
        &["restore", empty.to_str().unwrap()],
    );
    assert!(not.contains("no manifest.json"), "{not}");

    // One flipped byte in an object: refused, naming it; the target is not made.
    let object = dest.join(format!("objects/{a}/composite/a.mp4"));
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[100] ^= 0xff;
    std::fs::remove_file(&object).unwrap(); // a hard link: do not damage the live object
    std::fs::write(&object, bytes).unwrap();
    let target = work.path().join("new2");
    let damaged = flare_refused(&target, &["restore", dest.to_str().unwrap()]);
    assert!(
        damaged.contains(&format!(
            "objects/{a}/composite/a.mp4 in the backup is damaged"
        )),
        "{damaged}"
    );
    assert!(!target.exists(), "a failed restore left {target:?}");
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("restoring"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_backup_on_another_file_system_copies_and_checks_each_object() {
    // /dev/shm is a tmpfs on Linux: links cannot cross to it, so each object is copied.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("no /dev/shm here: the copy path is left to the same-file-system test");
        return;
    }
    let app = TestApp::spawn();
    let (a, url) = app.upload("a.mp4", &sample(200_000));
    let work = tempfile::tempdir_in(shm).unwrap();
    let dest = work.path().join("backup");
    let summary: Value = serde_json::from_str(&flare_ok(
        &app.data_dir(),
        &["backup", dest.to_str().unwrap(), "--json"],
    ))
    .unwrap();
    assert_eq!(
        (summary["linked"].as_u64(), summary["copied"].as_u64()),
        (Some(0), Some(1)),
        "{summary}"
    );
    let copied = std::fs::read(dest.join(format!("objects/{a}/composite/a.mp4"))).unwrap();
    assert_eq!(copied, app.send("GET", &url, &[], b"").body);
}
