//! `flare fsck` finds each kind of inconsistency, repairs what it can without losing data, and
//! then finds nothing.

use crate::helpers::TestApp;
use serde_json::Value;

fn fsck(app: &TestApp, args: &[&str]) -> (bool, Value) {
    let mut all = vec!["fsck", "--json"];
    all.extend_from_slice(args);
    let out = crate::helpers::run_flare(&app.data_dir(), &all, &[]);
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fsck printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

fn kinds(report: &Value) -> Vec<String> {
    let mut k: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

#[test]
fn a_consistent_node_passes() {
    let app = TestApp::spawn();
    app.upload("a.mp4", b"aaaa");
    app.create_video("pending.mp4");
    let (ok, report) = fsck(&app, &["--verify"]);
    assert!(ok, "{report}");
    assert_eq!(report["problems"], serde_json::json!([]));
    assert_eq!(report["bytesVerified"], 4);
}

#[test]
fn every_kind_of_damage_is_found_and_repaired_without_losing_data() {
    let app = TestApp::spawn();
    let data = app.data_dir();
    let (gone, _) = app.upload("gone.mp4", b"will vanish");
    std::fs::remove_file(app.object_path(&gone, "gone.mp4")).unwrap();
    let (flipped, _) = app.upload("flipped.mp4", b"original");
    std::fs::write(app.object_path(&flipped, "flipped.mp4"), b"ORIGINAL").unwrap();
    let (grown, _) = app.upload("grown.mp4", b"short");
    std::fs::write(app.object_path(&grown, "grown.mp4"), b"short and longer").unwrap();
    let ghost = data.join("objects/vid_ghost/composite/x.mp4");
    std::fs::create_dir_all(ghost.parent().unwrap()).unwrap();
    std::fs::write(&ghost, b"nobody owns me").unwrap();
    let (half_deleted, _) = app.upload("half.mp4", b"half");
    app.db
        .blocking(|c| flare::db::videos::begin_delete(c, &half_deleted, 0))
        .unwrap();
    let stale = app.create_video("stale.mp4");
    // Sized, so that its row is written at presign (one without a size has none until used).
    app.presign(serde_json::json!({ "videoId": stale, "fileName": "stale.mp4", "size": 10 }));
    app.db
        .blocking(|c| {
            c.exec(
                "UPDATE uploads SET expires_at = 1000 WHERE video_id = ?1",
                flare::args![stale],
            )
        })
        .unwrap();
    let temp = data.join("tmp/left-over.part");
    std::fs::write(&temp, b"partial upload").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&temp)
        .unwrap()
        .set_modified(old)
        .unwrap();

    // A resumable session whose part file lost bytes, and a part file with no session.
    let resumed = app.create_video("resumed.mp4");
    let p = app.presign(
        serde_json::json!({ "videoId": resumed, "fileName": "resumed.mp4", "resumable": true }),
    );
    let url = app.local(p["resumable"]["url"].as_str().unwrap());
    let tus = ("Tus-Resumable", "1.0.0");
    let res = app.send("POST", &url, &[tus, ("Upload-Length", "10")], b"");
    assert_eq!(res.status, 201);
    let body = ("Content-Type", "application/offset+octet-stream");
    let res = app.send(
        "PATCH",
        &url,
        &[tus, body, ("Upload-Offset", "0")],
        b"01234",
    );
    assert_eq!(res.status, 204);
    let parts = data.join("tmp/resumable");
    let part = std::fs::read_dir(&parts)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::File::options()
        .write(true)
        .open(&part)
        .unwrap()
        .set_len(2)
        .unwrap();
    std::fs::write(parts.join("up_nobody.part"), b"no session").unwrap();

    let (ok, report) = fsck(&app, &["--verify"]);
    assert!(!ok, "damage went unreported: {report}");
    assert_eq!(
        kinds(&report),
        [
            "missing-file",
            "orphan-file",
            "orphan-part",
            "part-missing",
            "sha256-mismatch",
            "size-mismatch",
            "stale-upload",
            "temp-file",
            "unfinished-delete"
        ],
        "{report}"
    );
    // Without --verify the same-size change goes unseen; the rest is still found.
    let (_, quick) = fsck(&app, &[]);
    assert!(!kinds(&quick).contains(&"sha256-mismatch".to_string()));

    let (ok, repaired) = fsck(&app, &["--verify", "--repair"]);
    assert!(ok, "{repaired}");
    // The broken session is ended (its URL unspent, offset 0 again), both part files gone.
    assert_eq!(
        crate::helpers::files_under(&parts),
        Vec::<std::path::PathBuf>::new()
    );
    let res = app.send("HEAD", &url, &[tus], b"");
    assert_eq!((res.status, res.header("upload-offset")), (200, Some("0")));
    assert!(repaired["problems"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["repaired"] == true));
    // Nothing was deleted that held data: the orphan and the temp file are in lost+found.
    let found: Vec<String> = crate::helpers::files_under(&data.join("lost+found"))
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    assert!(
        found
            .iter()
            .any(|p| p.ends_with("vid_ghost/composite/x.mp4")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.ends_with("left-over.part")),
        "{found:?}"
    );
    assert!(!ghost.exists() && !temp.exists());
    // The records now describe the files.
    let v = app.api("GET", &format!("/api/video/{gone}"), None).json();
    assert_eq!(v["video"]["status"], "pending");
    let v = app
        .api("GET", &format!("/api/video/{flipped}"), None)
        .json();
    assert_eq!(
        v["video"]["sha256"],
        crate::helpers::sha256_hex(b"ORIGINAL")
    );
    let v = app.api("GET", &format!("/api/video/{grown}"), None).json();
    assert_eq!(v["video"]["size"], 16);

    let (ok, after) = fsck(&app, &["--verify"]);
    assert!(ok, "{after}");
    assert_eq!(after["problems"], serde_json::json!([]));
}
