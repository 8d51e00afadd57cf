//! Publication is all-or-nothing with its record: a crash after the commit, a full disk or a
//! read-only database at the commit, and a second file name on one video. After each, every
//! public URL serves exactly the bytes its record describes and `fsck --verify` is clean.

use crate::helpers::{
    data_dir_with_token, files_under, run_flare, sample, sha256_hex, stored_objects, Node,
};
use serde_json::{json, Value};
use std::path::Path;

/// A video with `first` stored as `a.mp4`, through a node without faults.
fn video_with_object(data: &Path, auth: &str, first: &[u8]) -> String {
    Node::start(data, &[]).upload(auth, "a.mp4", first).0
}

/// What a restarted node says of the video, and what each of its names serves.
fn assert_serves_exactly(data: &Path, auth: &str, id: &str, name: &str, bytes: &[u8], gone: &str) {
    let node = Node::start(data, &[]);
    let video = node
        .send(
            "GET",
            &format!("/api/video/{id}"),
            &[("Authorization", auth)],
            b"",
        )
        .json();
    assert_eq!(video["video"]["status"], "ready", "{video}");
    assert_eq!(video["video"]["fileName"], name, "{video}");
    assert_eq!(video["video"]["sha256"], sha256_hex(bytes), "{video}");
    assert_eq!(video["video"]["size"], bytes.len(), "{video}");
    assert!(video["video"]["publicUrl"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/{name}")));
    let got = node.send("GET", &format!("/media/{id}/composite/{name}"), &[], b"");
    assert_eq!(got.status, 200);
    assert!(got.body == bytes, "the public URL serves other bytes");
    let old = node.send("GET", &format!("/media/{id}/composite/{gone}"), &[], b"");
    assert_eq!(old.status, 404, "the replaced object is still public");
    let names: Vec<String> = stored_objects(data)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [name], "one video, one object file");
    assert_eq!(
        files_under(&data.join("tmp")),
        Vec::<std::path::PathBuf>::new()
    );
    drop(node);
    let fsck = run_flare(data, &["fsck", "--verify", "--json"], &[]);
    let report: Value = serde_json::from_slice(&fsck.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["problems"], json!([]), "{report}");
}

#[test]
fn a_crash_between_the_commit_and_the_rename_is_rolled_forward_at_start() {
    let (_dir, data, token) = data_dir_with_token("publish-crash");
    let auth = format!("Bearer {token}");
    let (first, second) = (sample(300 << 10), sample(200 << 10).repeat(2));
    let id = video_with_object(&data, &auth, &first);

    // The record of b.mov is committed, then the process dies before the rename.
    let mut node = Node::start(&data, &[("FLARE_FAULTS", "crash-after-commit")]);
    let url = node.upload_path(&auth, &id, "b.mov");
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        node.send("PUT", &url, &[("Content-Type", "video/quicktime")], &second)
    }));
    assert!(
        res.is_err() || res.as_ref().is_ok_and(|r| r.status == 0),
        "the PUT was answered although the server was to die before answering"
    );
    let status = node.child.wait().unwrap();
    assert!(!status.success(), "the server did not die at the fault");
    node.kill_quietly();

    assert_serves_exactly(&data, &auth, &id, "b.mov", &second, "a.mp4");
}

#[test]
fn a_commit_that_fails_stores_nothing_and_says_why() {
    for (fault, status, code) in [
        ("commit-disk-full", 507, "insufficient-storage"),
        ("commit-read-only", 503, "unavailable"),
    ] {
        let (_dir, data, token) = data_dir_with_token("publish-fail");
        let auth = format!("Bearer {token}");
        let first = sample(300 << 10);
        let id = video_with_object(&data, &auth, &first);

        let node = Node::start(&data, &[("FLARE_FAULTS", fault)]);
        let url = node.upload_path(&auth, &id, "a.mp4");
        let res = node.send(
            "PUT",
            &url,
            &[("Content-Type", "video/mp4")],
            &sample(1 << 20),
        );
        assert_eq!(res.status, status, "{fault}: {}", res.text());
        assert_eq!(res.error_code(), code, "{fault}");
        // Gone before the answer, not some time after it.
        assert_eq!(
            files_under(&data.join("tmp")),
            Vec::<std::path::PathBuf>::new(),
            "{fault}: the staged file outlived the refusal"
        );
        drop(node);
        assert_serves_exactly(&data, &auth, &id, "a.mp4", &first, "b.mov");

        // The URL was not spent: the same one takes the retry once the fault is gone.
        let node = Node::start(&data, &[]);
        let again = sample(64 << 10);
        let res = node.send("PUT", &url, &[("Content-Type", "video/mp4")], &again);
        assert_eq!(res.status, 200, "{fault}: {}", res.text());
        drop(node);
        assert_serves_exactly(&data, &auth, &id, "a.mp4", &again, "b.mov");
    }
}

#[test]
fn a_second_file_name_replaces_the_first_object() {
    let (_dir, data, token) = data_dir_with_token("publish-rename");
    let auth = format!("Bearer {token}");
    let id = video_with_object(&data, &auth, &sample(100 << 10));
    let node = Node::start(&data, &[]);
    let url = node.upload_path(&auth, &id, "b.mov");
    let second = sample(50 << 10);
    let res = node.send("PUT", &url, &[("Content-Type", "video/quicktime")], &second);
    assert_eq!(res.status, 200, "{}", res.text());
    drop(node);
    assert_serves_exactly(&data, &auth, &id, "b.mov", &second, "a.mp4");

    // A second file put in the folder by hand is what fsck reports, and repair moves aside.
    std::fs::write(data.join(format!("objects/{id}/composite/c.mp4")), b"stray").unwrap();
    let out = run_flare(&data, &["fsck", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["problems"][0]["kind"], "orphan-file", "{report}");
    assert_eq!(
        report["problems"][0]["path"],
        format!("objects/{id}/composite/c.mp4")
    );
    let out = run_flare(&data, &["fsck", "--repair", "--json"], &[]);
    assert!(out.status.success());
    assert!(!data.join(format!("objects/{id}/composite/c.mp4")).exists());
    assert!(data.join(format!("objects/{id}/composite/b.mov")).exists());
}
