//! `flare export` and `flare import`: videos move to another node with their records, captions
//! and passwords, byte for byte; importing twice adds nothing; a conflict is reported and left
//! alone; a damaged bundle adds nothing damaged.

use serde_json::json;

use crate::helpers::*;

fn flare_out(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = run_flare(data, args, &[]);
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn videos_move_between_nodes_whole_and_importing_twice_adds_nothing() {
    let a = TestApp::spawn();
    let (one, one_url) = a.upload("one.mp4", &sample(300_000));
    let (two, _) = a.upload("two.mp4", &sample(50_000));
    let auth = format!("Bearer {}", a.token);
    a.send(
        "PUT",
        &format!("/api/video/{one}/captions/en"),
        &[("Authorization", &auth)],
        b"WEBVTT\n\n00:00.000 --> 00:01.000\nHi\n",
    );
    let locked = a.api(
        "PATCH",
        &format!("/api/video/update/{two}"),
        Some(json!({ "password": "pw-123456", "title": "Secret" })),
    );
    assert_eq!(locked.status, 200);
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("lab.tar");
    let (ok, said) = flare_out(
        &a.data_dir(),
        &["export", "--all", bundle.to_str().unwrap()],
    );
    assert!(ok && said.contains("exported 2 videos"), "{said}");
    let (ok, said) = flare_out(
        &a.data_dir(),
        &[
            "export",
            "--video",
            &one,
            work.path().join("one.tar").to_str().unwrap(),
        ],
    );
    assert!(ok && said.contains("exported 1 videos"), "{said}");
    let (ok, said) = flare_out(
        &a.data_dir(),
        &[
            "export",
            "--video",
            "vid_nope",
            work.path().join("x.tar").to_str().unwrap(),
        ],
    );
    assert!(!ok && said.contains("no video with id vid_nope"), "{said}");

    let b = TestApp::spawn();
    let (ok, said) = flare_out(&b.data_dir(), &["import", bundle.to_str().unwrap()]);
    assert!(ok && said.contains("imported 2 videos"), "{said}");
    assert_eq!(
        b.send("GET", &one_url, &[], b"").body,
        a.send("GET", &one_url, &[], b"").body
    );
    let v = b.api("GET", &format!("/api/video/{two}"), None).json()["video"].clone();
    assert_eq!(
        (v["title"].as_str(), v["passwordProtected"].as_bool()),
        (Some("Secret"), Some(true))
    );
    assert_eq!(
        b.send("GET", &format!("/media/{two}/composite/two.mp4"), &[], b"")
            .status,
        401
    );
    assert_eq!(
        b.send("GET", &format!("/media/{one}/captions/en.vtt"), &[], b"")
            .status,
        200
    );
    // Again: nothing new.
    let (ok, said) = flare_out(&b.data_dir(), &["import", bundle.to_str().unwrap()]);
    assert!(
        ok && said.contains("imported 0 videos") && said.contains("2 already here"),
        "{said}"
    );
    assert_eq!(
        b.api("GET", "/api/videos", None).json()["videos"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let out = run_flare(&b.data_dir(), &["fsck", "--json", "--verify"], &[]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], json!([]), "{report}");

    // A node with another video under the same id: reported, not touched.
    let c = TestApp::spawn();
    let other = c.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "one.mp4", "s3Key": one })),
    );
    assert_eq!(other.status, 201);
    let p = c.presign(json!({ "videoId": one, "fileName": "one.mp4" }));
    c.put(
        p["uploadUrl"].as_str().unwrap(),
        "video/mp4",
        b"different bytes",
    );
    let (ok, said) = flare_out(&c.data_dir(), &["import", bundle.to_str().unwrap()]);
    assert!(
        !ok && said.contains("1 conflict(s)") && said.contains(&one),
        "{said}"
    );
    assert_eq!(
        c.send("GET", &format!("/media/{one}/composite/one.mp4"), &[], b"")
            .body,
        b"different bytes"
    );
}

#[test]
fn a_damaged_bundle_adds_no_damaged_video() {
    let a = TestApp::spawn();
    let body = sample(200_000);
    let (id, _) = a.upload("one.mp4", &body);
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("b.tar");
    assert!(
        flare_out(
            &a.data_dir(),
            &["export", "--all", bundle.to_str().unwrap()]
        )
        .0
    );
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = bytes
        .windows(body.len().min(64))
        .position(|w| w == &body[..64])
        .unwrap()
        + 1000;
    bytes[at] ^= 0xff;
    std::fs::write(&bundle, bytes).unwrap();
    let b = TestApp::spawn();
    let (ok, said) = flare_out(&b.data_dir(), &["import", bundle.to_str().unwrap()]);
    assert!(
        !ok && said.contains(&format!(
            "objects/{id}/composite/one.mp4 in the bundle is damaged"
        )),
        "{said}"
    );
    assert_eq!(b.api("GET", &format!("/api/video/{id}"), None).status, 404);
    let left: Vec<_> = files_under(&b.data_dir().join("tmp"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("import"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn dates_parse_to_utc_midnight() {
    assert_eq!(flare::time::parse_date("1970-01-01"), Some(0));
    let t = flare::time::parse_date("2026-12-03").unwrap();
    assert!(flare::time::iso8601(t).starts_with("2026-12-03T00:00:00"));
    assert_eq!(flare::time::parse_date("2026-13-01"), None);
}
