//! Objects in an S3-compatible bucket (`[s3]`), against s3s-fs: `.ci/run` starts it and sets
//! `TEST_S3_ENDPOINT` and `TEST_S3_ROOT` (the folder it serves, whose subfolders are buckets).
//! The rest of the suite runs in this mode too (`.ci/run`'s S3 stage); these tests check what
//! only a bucket has. Built only with `--features s3`.

use crate::helpers::{
    data_dir_with_token, files_under, run_flare, sample, stored_objects, test_bucket, Node, TestApp,
};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The bucket folder of a server on `data`; these tests mean nothing without one.
fn bucket_dir(data: &Path) -> PathBuf {
    let (_, bucket) = test_bucket(data).expect(
        "the bucket tests need s3s-fs: set TEST_S3_ENDPOINT and TEST_S3_ROOT (.ci/run does)",
    );
    PathBuf::from(std::env::var("TEST_S3_ROOT").unwrap()).join(bucket)
}

/// `check` until it holds, for at most 5 s: a replaced object goes a second after the commit.
fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what}: not within 5 s");
}

#[test]
fn objects_live_in_the_bucket_and_a_replacement_or_a_delete_removes_them() {
    let app = TestApp::spawn();
    let bucket = bucket_dir(&app.data_dir());
    let first = sample(3 << 20);
    let (id, public) = app.upload("a.mp4", &first);
    let stored = stored_objects(&app.data_dir());
    assert_eq!(stored.len(), 1, "{stored:?}");
    // Under the video, at a key of its upload's own, and holding exactly the bytes sent.
    let first_key = stored[0].strip_prefix(&bucket).unwrap().to_path_buf();
    assert!(
        first_key.starts_with(format!("{id}/composite")) && first_key.ends_with("a.mp4"),
        "{first_key:?}"
    );
    assert!(std::fs::read(&stored[0]).unwrap() == first);
    assert_eq!(
        files_under(&app.data_dir().join("objects")),
        Vec::<PathBuf>::new()
    );
    assert_eq!(app.temp_files_settled(), Vec::<PathBuf>::new());

    // A new upload to the same video: served at once, and the old object goes.
    let second = sample(1 << 20).repeat(2);
    let p = app.presign(json!({ "videoId": id, "fileName": "a.mp4" }));
    let res = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &second);
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(app.send("GET", &public, &[], b"").body == second);
    eventually("the replaced object is removed", || {
        let now = stored_objects(&app.data_dir());
        now.len() == 1 && now[0] != stored[0] && std::fs::read(&now[0]).unwrap() == second
    });

    let res = app.api("DELETE", &format!("/api/video/{id}"), None);
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(app.send("GET", &public, &[], b"").status, 404);
    eventually("a deleted video's objects are removed", || {
        stored_objects(&app.data_dir()).is_empty()
    });
}

#[test]
fn ranges_and_conditionals_are_answered_from_the_bucket() {
    let app = TestApp::spawn();
    let body = sample(2 << 20);
    let (_, public) = app.upload("talk.mp4", &body);
    let full = app.send("GET", &public, &[], b"");
    assert_eq!(full.status, 200);
    assert!(full.body == body);
    let etag = full.header("etag").unwrap().to_string();
    let modified = full.header("last-modified").unwrap().to_string();
    let part = app.send("GET", &public, &[("Range", "bytes=1000-1999")], b"");
    assert_eq!(part.status, 206);
    assert_eq!(
        part.header("content-range"),
        Some(format!("bytes 1000-1999/{}", body.len()).as_str())
    );
    assert!(part.body == body[1000..2000]);
    let head = app.send("HEAD", &public, &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let same = app.send("GET", &public, &[("If-None-Match", &etag)], b"");
    assert_eq!(same.status, 304);
    let other = app.send("GET", &public, &[("If-Match", "\"other\"")], b"");
    assert_eq!(other.status, 412);
    let past = app.send("GET", &public, &[("Range", "bytes=99999999-")], b"");
    assert_eq!(past.status, 416);
    assert_eq!(past.error_code(), "range-not-satisfiable");
    let resumed = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!(resumed.status, 206);
    // The store sets the date, and two versions may share a second: a date never vouches for
    // a range here, and the whole object is sent.
    std::thread::sleep(Duration::from_millis(1100));
    let by_date = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", &modified)],
        b"",
    );
    assert_eq!(by_date.status, 200);
    assert!(by_date.body == body);
}

#[test]
fn public_media_may_be_redirected_to_public_base_url_but_protected_media_never_is() {
    let app = TestApp::spawn_with(|raw| {
        raw.s3.as_mut().unwrap().public_base_url = Some("http://cdn.example/videos/".into());
    });
    let body = sample(1000);
    let (id, public) = app.upload("my talk.mp4", &body);
    let res = app.send("GET", &public, &[], b"");
    assert_eq!(res.status, 302);
    assert_eq!(
        res.header("location"),
        Some(
            format!(
                "http://cdn.example/videos/{}",
                stored_objects(&app.data_dir())[0]
                    .strip_prefix(bucket_dir(&app.data_dir()))
                    .unwrap()
                    .display()
            )
            .replace(' ', "%20")
            .as_str()
        )
    );
    let res = app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": "open sesame" })),
    );
    assert_eq!(res.status, 200);
    let res = app.send("GET", &public, &[], b"");
    assert_ne!(
        res.status, 302,
        "a protected video's object left through a redirect"
    );
    assert_eq!(res.error_code(), "password-required");
}

#[test]
fn fsck_names_what_no_record_names_and_repair_moves_it_under_lost_found() {
    let (_dir, data, token) = data_dir_with_token("bucket-fsck");
    let auth = format!("Bearer {token}");
    let bucket = bucket_dir(&data);
    let node = Node::start(&data, &[]);
    let (kept, _) = node.upload(&auth, "kept.mp4", &sample(5000));
    let (lost, _) = node.upload(&auth, "lost.mp4", &sample(7000));
    drop(node);
    let clean: Value =
        serde_json::from_slice(&run_flare(&data, &["fsck", "--verify", "--json"], &[]).stdout)
            .unwrap();
    assert_eq!(clean["problems"], json!([]), "{clean}");

    // An object a crash left (written, never recorded) an hour ago, and one gone from the store.
    let stray = bucket.join(format!("{kept}/composite/put-left-by-a-crash/old.mp4"));
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left by a crash").unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stray)
        .unwrap()
        .set_modified(hour_ago)
        .unwrap();
    let gone = crate::helpers::object_in_bucket(&data, &lost, "lost.mp4").unwrap();
    std::fs::remove_file(&gone).unwrap();

    let out = run_flare(&data, &["fsck", "--json"], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false, "{report}");
    let kinds = |r: &Value| -> Vec<(String, String)> {
        let mut k: Vec<_> = r["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["kind"].as_str().unwrap().to_string(),
                    p["path"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        k.sort();
        k
    };
    let name = bucket.file_name().unwrap().to_string_lossy().into_owned();
    let lost_key = gone.strip_prefix(&bucket).unwrap().display().to_string();
    let stray_key = stray.strip_prefix(&bucket).unwrap().display().to_string();
    assert_eq!(
        kinds(&report),
        [
            (
                "missing-file".to_string(),
                format!("s3://{name}/{lost_key}")
            ),
            (
                "orphan-file".to_string(),
                format!("s3://{name}/{stray_key}")
            ),
        ],
        "{report}"
    );

    let out = run_flare(&data, &["fsck", "--repair", "--json"], &[]);
    let repaired: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        repaired["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["repaired"] == true),
        "{repaired}"
    );
    // Nothing that held bytes was deleted: the orphan is under lost+found/ in the bucket.
    assert!(!stray.exists());
    let moved = bucket.join("lost+found").join(&stray_key);
    assert_eq!(std::fs::read(&moved).unwrap(), b"left by a crash");
    let after: Value =
        serde_json::from_slice(&run_flare(&data, &["fsck", "--verify", "--json"], &[]).stdout)
            .unwrap();
    assert_eq!(after["problems"], json!([]), "{after}");
    // The video whose object was lost is pending again; the other still serves its bytes.
    let node = Node::start(&data, &[]);
    let v = node
        .send(
            "GET",
            &format!("/api/video/{lost}"),
            &[("Authorization", &auth)],
            b"",
        )
        .json();
    assert_eq!(v["video"]["status"], "pending", "{v}");
    let ok = node.send(
        "GET",
        &format!("/media/{kept}/composite/kept.mp4"),
        &[],
        b"",
    );
    assert_eq!(ok.status, 200);
    assert!(ok.body == sample(5000));
}

#[test]
fn backups_and_bundles_are_refused_naming_the_bucket() {
    let (dir, data, _) = data_dir_with_token("bucket-backup");
    let bucket = bucket_dir(&data);
    let name = bucket.file_name().unwrap().to_string_lossy().into_owned();
    for args in [
        vec!["backup", dir.path().join("b").to_str().unwrap()],
        vec![
            "export",
            "--all",
            dir.path().join("x.tar").to_str().unwrap(),
        ],
    ] {
        let out = run_flare(&data, &args, &[]);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{name:?}")) && err.contains("rclone"),
            "{err}"
        );
        assert!(!dir.path().join("b").exists() && !dir.path().join("x.tar").exists());
    }
}

#[test]
fn a_bucket_that_cannot_be_listed_stops_the_start_with_the_stores_words() {
    let (_dir, data, _) = data_dir_with_token("bucket-bad");
    let _ = bucket_dir(&data);
    let out = run_flare(
        &data,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("FLARE_S3_BUCKET", "no-such-bucket")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot list bucket \"no-such-bucket\""),
        "{err}"
    );
    let out = run_flare(
        &data,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("AWS_SECRET_ACCESS_KEY", "not-the-key")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot list bucket"), "{err}");
    assert!(!err.contains("not-the-key"), "the secret was shown: {err}");
    // doctor says the same, with what to check.
    let bucket_of = |env: &[(&str, &str)]| -> Value {
        let out = run_flare(&data, &["doctor", "--json"], env);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "S3 bucket")
            .cloned()
            .unwrap_or_else(|| panic!("no bucket check: {report}"))
    };
    assert_eq!(bucket_of(&[])["status"], "ok");
    let bad = bucket_of(&[("FLARE_S3_BUCKET", "no-such-bucket")]);
    assert_eq!(bad["status"], "fail", "{bad}");
    assert!(
        bad["fix"].as_str().unwrap().contains("AWS_ACCESS_KEY_ID"),
        "{bad}"
    );
}

/// An s3s-fs of this test's own (the binary `tests/s3.sh` installs), so that what it holds
/// beside its buckets (multipart uploads in progress: `.upload_id-…` files) is this test's
/// alone. Killed with the guard. (guard, folder, endpoint)
fn own_store() -> (KillOnDrop, tempfile::TempDir, String) {
    let root = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("s3s-fs")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", &std::env::var("AWS_ACCESS_KEY_ID").unwrap()])
        .args([
            "--secret-key",
            &std::env::var("AWS_SECRET_ACCESS_KEY").unwrap(),
        ])
        .arg(root.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("s3s-fs on PATH (tests/s3.sh installs it)");
    let guard = KillOnDrop(child);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::create_dir(root.path().join("videos")).unwrap();
    (guard, root, format!("http://127.0.0.1:{port}"))
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_upload_refused_midway_leaves_no_object_and_no_open_upload_in_the_store() {
    let (_store, root, endpoint) = own_store();
    let app = TestApp::spawn_with(|raw| {
        raw.upload_idle_timeout = Some("1s".into());
        raw.s3 = Some(flare::config::RawS3 {
            endpoint: Some(endpoint),
            bucket: Some("videos".into()),
            ..Default::default()
        });
    });
    let in_store = || files_under(root.path());
    let id = app.create_video("big.mp4");
    let p = app.presign(json!({ "videoId": id, "fileName": "big.mp4" }));
    // 12 MiB of a promised 20, then silence: cut off after 1 s, by when a first 8 MiB part is
    // in the store.
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let mut s = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    use std::io::Write;
    write!(
        s,
        "PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
        20 << 20
    )
    .unwrap();
    s.write_all(&sample(12 << 20)).unwrap();
    let parts_seen = (0..40).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        !in_store().is_empty()
    });
    assert!(parts_seen, "no multipart upload began in the store");
    let res = crate::helpers::read_response(&mut s);
    assert_eq!(res.status, 408, "{}", res.text());
    eventually("the cut upload's multipart upload is aborted", || {
        in_store().is_empty()
    });
    assert_eq!(
        app.send("GET", &format!("/media/{id}/composite/big.mp4"), &[], b"")
            .status,
        404
    );
    // The URL was not spent: the same upload, within the ceiling, goes through.
    let body = sample(10 << 20);
    let res = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &body);
    assert_eq!(res.status, 200, "{}", res.text());
    let stored: Vec<_> = in_store()
        .into_iter()
        .filter(|p| p.starts_with(root.path().join("videos")))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(std::fs::read(&stored[0]).unwrap() == body);
}

#[test]
fn migrate_store_copies_a_single_boxs_objects_checked_and_resumes() {
    let (_dir, data, token) = data_dir_with_token("migrate");
    let auth = format!("Bearer {token}");
    let (a, b, c) = (sample(3 << 20), sample(1000).repeat(3), sample(5000));
    let node = Node::start_on_disk(&data, &[]);
    let (a_id, _) = node.upload(&auth, "a.mp4", &a);
    let (b_id, _) = node.upload(&auth, "b b.mp4", &b);
    let (c_id, _) = node.upload(&auth, "c.mp4", &c);
    drop(node);
    // One file no longer holds what was recorded: it must not reach the bucket.
    let c_path = data.join(format!("objects/{c_id}/composite/c.mp4"));
    std::fs::write(
        &c_path,
        sample(4999)
            .iter()
            .chain(b"!")
            .copied()
            .collect::<Vec<u8>>(),
    )
    .unwrap();

    let out = run_flare(&data, &["migrate-store", "--json"], &[]);
    assert!(
        !out.status.success(),
        "a failed copy must show in the exit code"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["copied"], 2, "{report}");
    assert_eq!(report["already"], 0, "{report}");
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report}");
    assert!(failed[0].as_str().unwrap().contains(&c_id), "{report}");
    assert!(failed[0].as_str().unwrap().contains("sha256"), "{report}");
    let stored = stored_objects(&data);
    assert_eq!(stored.len(), 2, "{stored:?}");
    // The files on disk are left as they were.
    assert!(data
        .join(format!("objects/{a_id}/composite/a.mp4"))
        .is_file());

    // Served from the bucket; the one not copied says so at start and answers 404.
    let node = Node::start(&data, &[]);
    for (id, name, bytes) in [(&a_id, "a.mp4", &a), (&b_id, "b%20b.mp4", &b)] {
        let got = node.send("GET", &format!("/media/{id}/composite/{name}"), &[], b"");
        assert_eq!(got.status, 200, "{name}");
        assert!(got.body == *bytes, "{name}");
    }
    let got = node.send("GET", &format!("/media/{c_id}/composite/c.mp4"), &[], b"");
    assert_eq!(got.status, 404);
    assert!(
        node.log_text()
            .contains("1 ready video(s) have their objects in"),
        "{}",
        node.log_text()
    );
    drop(node);

    // Again, with the file mended: what is done is skipped, the rest is copied.
    std::fs::write(&c_path, &c).unwrap();
    let out = run_flare(&data, &["migrate-store", "--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["copied"].as_u64(), report["already"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    assert_eq!(stored_objects(&data).len(), 3);
    let fsck: Value =
        serde_json::from_slice(&run_flare(&data, &["fsck", "--verify", "--json"], &[]).stdout)
            .unwrap();
    assert_eq!(fsck["problems"], json!([]), "{fsck}");
}
