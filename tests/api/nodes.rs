//! Two flare nodes sharing one PostgreSQL database and one bucket, and nothing local (each has
//! its own data folder): either one presigns, stores, serves and refuses, whichever the other
//! did. Runs inside tests/pg.sh tests/s3.sh (`--features postgres,s3`).

use crate::helpers::*;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// One signing key for both nodes (32 × 'N').
const KEY: &str = "Tk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk4=";

struct Pair {
    _a_dir: tempfile::TempDir,
    _b_dir: tempfile::TempDir,
    a_data: std::path::PathBuf,
    b_data: std::path::PathBuf,
    /// What both nodes are given: node A's database and bucket, and the key.
    shared: Vec<(String, String)>,
    token: String,
    token_id: String,
}

fn pair() -> Pair {
    assert!(
        std::env::var("TEST_DATABASE_URL").is_ok() && std::env::var("TEST_S3_ENDPOINT").is_ok(),
        "these tests run inside `tests/pg.sh tests/s3.sh` (a PostgreSQL cluster and s3s-fs)"
    );
    let a_dir = tempfile::tempdir().unwrap();
    let b_dir = tempfile::tempdir().unwrap();
    let a_data = a_dir.path().join("data");
    let b_data = b_dir.path().join("data");
    let mut shared = database_env(&a_data);
    shared.extend(bucket_env(&a_data));
    shared.push(("FLARE_SIGNING_KEY".into(), KEY.into()));
    let env: Vec<(&str, &str)> = shared
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let out = flare_cli_env(&a_data, &["token", "create", "--name", "nodes"], &env);
    let token = out.trim().to_string();
    let out = flare_cli_env(&a_data, &["token", "list", "--json"], &env);
    let listed: Value = serde_json::from_str(&out).unwrap();
    let token_id = listed[0]["id"].as_str().unwrap().to_string();
    Pair {
        _a_dir: a_dir,
        _b_dir: b_dir,
        a_data,
        b_data,
        shared,
        token,
        token_id,
    }
}

impl Pair {
    fn env(&self) -> Vec<(&str, &str)> {
        self.shared
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    fn start(&self, data: &std::path::Path) -> Node {
        Node::start(data, &self.env())
    }

    /// Node A on its folder, node B on its own.
    fn both(&self) -> (Node, Node) {
        (self.start(&self.a_data), self.start(&self.b_data))
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }
}

fn put(node: &Node, path: &str, body: &[u8]) -> Response {
    node.send("PUT", path, &[("Content-Type", "video/mp4")], body)
}

#[test]
fn a_video_presigned_on_one_node_is_stored_by_the_other_and_served_by_both() {
    let p = pair();
    let (a, b) = p.both();
    let auth = p.auth();

    let id = a.create_video(&auth, "lecture.mp4");
    let url = a.upload_path(&auth, &id, "lecture.mp4");
    let body = sample(3 << 20);
    let res = put(&b, &url, &body);
    assert_eq!(res.status, 200, "{}", res.text());
    // The URL is spent for both nodes.
    let again = put(&a, &url, &body);
    assert_eq!(again.status, 409, "{}", again.text());

    let media = format!("/media/{id}/composite/lecture.mp4");
    for node in [&a, &b] {
        let got = node.send("GET", &media, &[], b"");
        assert_eq!(got.status, 200);
        assert_eq!(sha256_hex(&got.body), sha256_hex(&body));
        let video = node.send(
            "GET",
            &format!("/api/video/{id}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(video.json()["video"]["status"], "ready", "{}", video.text());
    }
    // An update on B is what A answers; a delete on A is gone from B.
    let res = b.send(
        "PATCH",
        &format!("/api/video/update/{id}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"title":"Week 1"}"#,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let video = a.send(
        "GET",
        &format!("/api/video/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(video.json()["video"]["title"], "Week 1");
    let res = a.send(
        "DELETE",
        &format!("/api/video/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert!(res.status == 200 || res.status == 204, "{}", res.text());
    assert_eq!(b.send("GET", &media, &[], b"").status, 404);
    assert_eq!(
        b.send(
            "GET",
            &format!("/api/video/{id}"),
            &[("Authorization", &auth)],
            b""
        )
        .status,
        404
    );
}

#[test]
fn a_token_revoked_through_one_node_is_refused_by_the_other_at_once() {
    let p = pair();
    let (a, b) = p.both();
    let auth = p.auth();
    // B has used the token (anything it could keep of it, it has), and minted a URL with it.
    let id = b.create_video(&auth, "open.mp4");
    let open_url = b.upload_path(&auth, &id, "open.mp4");
    assert_eq!(
        b.send("GET", "/api/videos", &[("Authorization", &auth)], b"")
            .status,
        200
    );

    // Revoked as an operator does, with `flare token revoke`, on node A's machine.
    flare_cli_env(&p.a_data, &["token", "revoke", &p.token_id], &p.env());

    let res = b.send("GET", "/api/videos", &[("Authorization", &auth)], b"");
    assert_eq!(res.status, 401, "{}", res.text());
    assert_eq!(res.error_code(), "token-revoked");
    let res = put(&b, &open_url, b"late bytes");
    assert_eq!(res.status, 401, "{}", res.text());
    assert_eq!(res.error_code(), "token-revoked");
    assert_eq!(
        a.send("GET", &format!("/media/{id}/composite/open.mp4"), &[], b"")
            .status,
        404
    );
}

#[test]
fn two_nodes_racing_one_url_store_exactly_one_object() {
    let p = pair();
    let (a, b) = p.both();
    let auth = p.auth();
    for round in 0..4 {
        let id = a.create_video(&auth, "race.mp4");
        let url = a.upload_path(&auth, &id, "race.mp4");
        let bodies = [sample(1 << 20), {
            let mut other = sample(1 << 20);
            other[0] ^= 0xff;
            other
        }];
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| put(&a, &url, &bodies[0]).status);
            let hb = s.spawn(|| put(&b, &url, &bodies[1]).status);
            (ha.join().unwrap(), hb.join().unwrap())
        });
        let mut statuses = [ra, rb];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 409],
            "round {round}: {ra} from A, {rb} from B"
        );
        let won = if ra == 200 { &bodies[0] } else { &bodies[1] };
        let got = b.send("GET", &format!("/media/{id}/composite/race.mp4"), &[], b"");
        assert_eq!(sha256_hex(&got.body), sha256_hex(won), "round {round}");
        let objects: Vec<_> = stored_objects(&p.a_data)
            .into_iter()
            .filter(|o| {
                o.to_string_lossy().contains(&id) && !o.to_string_lossy().contains("derived")
            })
            .collect();
        // s3s-fs keeps an object as a file, and may keep a metadata file beside it.
        let data_files: Vec<_> = objects
            .iter()
            .filter(|o| o.file_name().is_some_and(|n| n == "race.mp4"))
            .collect();
        assert_eq!(data_files.len(), 1, "round {round}: {objects:?}");
    }
}

#[test]
fn a_node_killed_mid_upload_publishes_nothing_and_leaves_nothing_fsck_cannot_name() {
    let p = pair();
    let a = p.start(&p.a_data);
    let mut b = p.start(&p.b_data);
    let auth = p.auth();
    let id = a.create_video(&auth, "cut.mp4");
    let url = a.upload_path(&auth, &id, "cut.mp4");
    let before = stored_objects(&p.a_data).len();

    // 40 MiB sent slowly to B, which is killed once 16 MiB (two parts in the bucket) are in.
    let body = sample(40 << 20);
    let port = b.port;
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = format!(
            "PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        for piece in body.chunks(1 << 20) {
            if s.write_all(piece).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(60));
        }
    });
    std::thread::sleep(Duration::from_millis(1500));
    b.kill();
    let _ = sender.join();

    assert_eq!(
        a.send("GET", &format!("/media/{id}/composite/cut.mp4"), &[], b"")
            .status,
        404
    );
    let video = a.send(
        "GET",
        &format!("/api/video/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(
        video.json()["video"]["status"],
        "pending",
        "{}",
        video.text()
    );
    assert_eq!(
        stored_objects(&p.a_data).len(),
        before,
        "a cut upload completed an object in the bucket"
    );
    // Nothing is left that a record does not account for: the body went straight into a
    // multipart upload that was never completed (no object), and nothing was staged on B's
    // disk. fsck on B's folder finds nothing, before and after B restarts.
    for restarted in [false, true] {
        if restarted {
            drop(p.start(&p.b_data));
        }
        let out = run_flare(&p.b_data, &["fsck", "--json"], &p.env());
        let report: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    }
    let staged: Vec<_> = std::fs::read_dir(p.b_data.join("tmp"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .collect();
    assert!(staged.is_empty(), "B staged files: {staged:?}");
}

#[test]
fn migrate_store_moves_a_single_box_into_postgresql_and_the_bucket_and_resumes() {
    // One box: SQLite and objects on disk, with a token, two stored videos and a pending one.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = succeeded(
        &["token", "create", "--name", "box"],
        run_flare_alone(&data, &["token", "create", "--name", "box"], &[]),
    );
    let auth = format!("Bearer {}", out.trim());
    let (a, b) = (sample(2 << 20), sample(70_000));
    let one_box = Node::start_alone(&data, &[]);
    let (a_id, _) = one_box.upload(&auth, "a.mp4", &a);
    let (b_id, _) = one_box.upload(&auth, "b.mp4", &b);
    let pending = one_box.create_video(&auth, "later.mp4");
    let listed = one_box.send("GET", "/api/videos", &[("Authorization", &auth)], b"");
    drop(one_box);

    // Pointed at PostgreSQL and a bucket (node A's of a fresh pair), and copied.
    let p = pair();
    let out = flare_cli_env(&data, &["migrate-store", "--json"], &p.env());
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(report["records"].as_u64().unwrap() >= 4, "{report}");
    assert_eq!(
        (report["copied"].as_u64(), report["already"].as_u64()),
        (Some(2), Some(0))
    );

    // A node on the shared setup (another folder: nothing local) knows the box's token and
    // videos, in the same order, and serves the objects from the bucket.
    let node = p.start(&p.b_data);
    let moved = node.send("GET", "/api/videos", &[("Authorization", &auth)], b"");
    assert_eq!(moved.status, 200, "{}", moved.text());
    let ids = |v: &Value| -> Vec<String> {
        v["videos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&moved.json()), ids(&listed.json()));
    for (id, name, bytes) in [(&a_id, "a.mp4", &a), (&b_id, "b.mp4", &b)] {
        let got = node.send("GET", &format!("/media/{id}/composite/{name}"), &[], b"");
        assert_eq!(got.status, 200, "{name}");
        assert!(got.body == *bytes, "{name}");
    }
    // The pending video takes its upload on the new setup; a new video comes first in the list.
    let url = node.upload_path(&auth, &pending, "later.mp4");
    assert_eq!(put(&node, &url, &sample(1000)).status, 200);
    let newest = node.create_video(&auth, "new.mp4");
    let now = node.send("GET", "/api/videos", &[("Authorization", &auth)], b"");
    assert_eq!(ids(&now.json())[0], newest);
    drop(node);

    // Again: nothing to add, nothing to copy.
    let out = flare_cli_env(&data, &["migrate-store", "--json"], &p.env());
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["records"], 0, "{report}");
    assert_eq!(report["copied"], 0, "{report}");
}

/// A new video on `node` and the resumable URL of a fresh presign for it, as a local path.
fn resumable_video(node: &Node, auth: &str, file_name: &str) -> (String, String) {
    let id = node.create_video(auth, file_name);
    let res = node.send(
        "POST",
        "/api/video/upload/presign",
        &[("Authorization", auth)],
        serde_json::json!({ "videoId": id, "fileName": file_name, "resumable": true })
            .to_string()
            .as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let url = res.json()["resumable"]["url"].as_str().unwrap().to_string();
    (id, format!("/{}", url.splitn(4, '/').nth(3).unwrap()))
}

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");

fn patch(node: &Node, url: &str, offset: usize, bytes: &[u8]) -> Response {
    let offset = offset.to_string();
    node.send(
        "PATCH",
        url,
        &[
            TUS,
            ("Content-Type", "application/offset+octet-stream"),
            ("Upload-Offset", &offset),
        ],
        bytes,
    )
}

/// A tus creation of `len` bytes at `url`: its status.
fn create(node: &Node, url: &str, len: usize) -> u16 {
    let len = len.to_string();
    node.send("POST", url, &[TUS, ("Upload-Length", &len)], b"")
        .status
}

fn offset_of(node: &Node, url: &str) -> usize {
    let res = node.send("HEAD", url, &[TUS], b"");
    assert_eq!(res.status, 200, "{}", res.text());
    res.header("Upload-Offset").unwrap().parse().unwrap()
}

/// What the bucket holds under `prefix` (s3s-fs's folder for it).
fn bucket_files(p: &Pair, prefix: &str) -> Vec<std::path::PathBuf> {
    let (_, bucket) = test_bucket(&p.a_data).unwrap();
    let dir = std::path::PathBuf::from(std::env::var("TEST_S3_ROOT").unwrap())
        .join(bucket)
        .join(prefix);
    files_under(&dir)
}

#[test]
fn a_resumable_upload_goes_on_at_whichever_node_the_next_request_reaches() {
    let p = pair();
    let (a, b) = p.both();
    let auth = p.auth();
    let (id, url) = resumable_video(&a, &auth, "lab.mp4");
    let data = sample(21 << 20);
    assert_eq!(create(&a, &url, data.len()), 201);

    // 11 MiB on A: one 8 MiB part and a 3 MiB tail, both in the bucket, none on A's disk.
    let res = patch(&a, &url, 0, &data[..11 << 20]);
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(offset_of(&b, &url), 11 << 20, "B sees what A stored");
    assert_eq!(bucket_files(&p, &format!("{id}/sessions")).len(), 1);
    for data_dir in [&p.a_data, &p.b_data] {
        assert_eq!(
            files_under(&data_dir.join("tmp")),
            Vec::<std::path::PathBuf>::new()
        );
    }
    // A wrong offset is refused on either node, naming the right one.
    let res = patch(&b, &url, 10 << 20, b"x");
    assert_eq!(res.status, 409, "{}", res.text());
    // 6 MiB on B, the rest on A: the object is whole and its SHA-256 is of all of it.
    let res = patch(&b, &url, 11 << 20, &data[11 << 20..17 << 20]);
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(offset_of(&a, &url), 17 << 20);
    let res = patch(&a, &url, 17 << 20, &data[17 << 20..]);
    assert_eq!(res.status, 204, "{}", res.text());
    for node in [&a, &b] {
        let got = node.send("GET", &format!("/media/{id}/composite/lab.mp4"), &[], b"");
        assert_eq!(got.status, 200);
        assert!(got.body == data, "the object holds other bytes");
        let video = node.send(
            "GET",
            &format!("/api/video/{id}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(
            video.json()["video"]["sha256"],
            sha256_hex(&data).as_str(),
            "{}",
            video.text()
        );
    }
    // The session's tails are gone; the URL is spent on both nodes.
    assert_eq!(
        bucket_files(&p, &format!("{id}/sessions")),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(patch(&b, &url, 0, b"x").status, 409);
}

#[test]
fn a_node_killed_mid_request_loses_only_what_came_after_its_last_checkpoint() {
    let p = pair();
    let (a, mut b) = p.both();
    let auth = p.auth();
    let (id, url) = resumable_video(&a, &auth, "cut.mp4");
    let data = sample(48 << 20);
    // One long PATCH to B, sent slowly; B is killed once A sees a checkpoint recorded.
    let (port, head) = (
        b.port,
        format!(
            "PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n\
         Upload-Length: {}\r\nContent-Length: {}\r\n\r\n",
            data.len(),
            data.len()
        ),
    );
    let body = data.clone();
    let sender = std::thread::spawn(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        for piece in body.chunks(1 << 20) {
            if s.write_all(piece).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(40));
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let kept = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was recorded"
        );
        let res = a.send("HEAD", &url, &[TUS], b"");
        let at: usize = res
            .header("Upload-Offset")
            .map_or(0, |o| o.parse().unwrap());
        if at > 0 {
            break at;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    b.kill();
    let _ = sender.join();
    // A carries on from what A reports, and the object is exactly the file.
    let at = offset_of(&a, &url);
    assert!(at >= kept && at < data.len(), "offset {at} after the kill");
    let res = patch(&a, &url, at, &data[at..]);
    assert_eq!(res.status, 204, "{}", res.text());
    let got = a.send("GET", &format!("/media/{id}/composite/cut.mp4"), &[], b"");
    assert!(got.body == data, "the object holds other bytes");
    let video = a.send(
        "GET",
        &format!("/api/video/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(video.json()["video"]["sha256"], sha256_hex(&data).as_str());
}

#[test]
fn a_session_cancelled_or_its_video_deleted_on_one_node_leaves_nothing_in_the_bucket() {
    let p = pair();
    let (a, b) = p.both();
    let auth = p.auth();
    let (id, url) = resumable_video(&a, &auth, "gone.mp4");
    let data = sample(10 << 20);
    assert_eq!(create(&a, &url, data.len()), 201);
    assert_eq!(patch(&a, &url, 0, &data[..3 << 20]).status, 204);
    assert_eq!(
        bucket_files(&p, &format!("{id}/sessions")).len(),
        1,
        "the tail"
    );
    // Cancelled on B: the tail goes, and the URL may start again from 0.
    assert_eq!(b.send("DELETE", &url, &[TUS], b"").status, 204);
    assert_eq!(
        bucket_files(&p, &format!("{id}/sessions")),
        Vec::<std::path::PathBuf>::new()
    );
    assert_eq!(create(&a, &url, data.len()), 201);
    assert_eq!(patch(&b, &url, 0, &data[..9 << 20]).status, 204);
    // Its video deleted on A: nothing of the session is left.
    let res = a.send(
        "DELETE",
        &format!("/api/video/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(bucket_files(&p, &id), Vec::<std::path::PathBuf>::new());
    let out = run_flare(&p.a_data, &["fsck", "--json"], &p.env());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}
