//! Resumable uploads (tus 1.0 and the IETF draft) at presign's `resumable.url`: each promise
//! as a client sees it: statuses, headers, and the bytes served at the end.

use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::*;
use flare::domain::signing::UploadGrant;
use flare::domain::tokens::Scope;

const TUS: (&str, &str) = ("Tus-Resumable", "1.0.0");
const TUS_BODY: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// A video and its presign answer with a resumable URL; returns (video id, answer, local path
/// of the resumable URL).
fn presign_resumable(app: &TestApp, extra: Value) -> (String, Value, String) {
    let id = app.create_video("rec.mp4");
    let mut body = json!({ "videoId": id, "fileName": "rec.mp4", "resumable": true });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let p = app.presign(body);
    let url = app.local(p["resumable"]["url"].as_str().unwrap());
    (id, p, url)
}

fn create(app: &TestApp, url: &str, length: usize) -> Response {
    let len = length.to_string();
    app.send("POST", url, &[TUS, ("Upload-Length", &len)], b"")
}

fn patch(app: &TestApp, url: &str, offset: usize, body: &[u8]) -> Response {
    let off = offset.to_string();
    app.send(
        "PATCH",
        url,
        &[TUS, TUS_BODY, ("Upload-Offset", &off)],
        body,
    )
}

fn head(app: &TestApp, url: &str) -> Response {
    app.send("HEAD", url, &[TUS], b"")
}

fn served(app: &TestApp, id: &str) -> Response {
    app.send("GET", &format!("/media/{id}/composite/rec.mp4"), &[], b"")
}

#[test]
fn presign_without_resumable_answers_exactly_as_documented() {
    let app = TestApp::spawn();
    let id = app.create_video("a.mp4");
    let p = app.presign(json!({ "videoId": id, "fileName": "a.mp4" }));
    assert!(p.get("resumable").is_none(), "{p}");
    let (_, p, _) = presign_resumable(&app, json!({}));
    let r = &p["resumable"];
    assert_eq!(
        r["protocols"],
        json!(["tus/1.0.0", "ietf-draft-interop/6", "ietf-draft-interop/8"])
    );
    assert_eq!(r["chunkSize"], json!(50 << 20));
    assert!(r["url"].as_str().unwrap().contains("&resumable="));
    assert!(r["expiresAt"].as_str().unwrap() > p["expiresAt"].as_str().unwrap());
    let res = app.api(
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": id, "fileName": "a.mp4", "resumable": "yes" })),
    );
    assert_eq!(res.status, 400);
    assert!(res.text().contains("resumable must be true or false"));
}

#[test]
fn a_tus_upload_in_chunks_is_served_whole_with_its_digest() {
    let app = TestApp::spawn();
    let (id, p, url) = presign_resumable(&app, json!({}));
    let data = sample(3_000_001);
    let res = create(&app, &url, data.len());
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(
        res.header("location"),
        p["resumable"]["url"].as_str(),
        "Location is the signed URL itself, on public_url"
    );
    assert_eq!(res.header("tus-resumable"), Some("1.0.0"));
    assert!(res.header("upload-expires").unwrap().ends_with("GMT"));
    let mut offset = 0;
    for chunk in data.chunks(1 << 20) {
        let res = patch(&app, &url, offset, chunk);
        assert_eq!(res.status, 204, "{}", res.text());
        offset += chunk.len();
        assert_eq!(
            res.header("upload-offset"),
            Some(offset.to_string().as_str())
        );
        let h = head(&app, &url);
        assert_eq!(h.header("upload-offset"), Some(offset.to_string().as_str()));
        assert_eq!(h.header("upload-length"), Some("3000001"));
        assert_eq!(h.header("cache-control"), Some("no-store"));
    }
    let got = served(&app, &id);
    assert_eq!(got.status, 200);
    assert_eq!(sha256_hex(&got.body), sha256_hex(&data));
    let video = app.api("GET", &format!("/api/video/{id}"), None).json();
    assert_eq!(video["video"]["sha256"], json!(sha256_hex(&data)));
    assert_eq!(video["video"]["status"], json!("ready"));
    // Spent: HEAD still says complete (a client that lost the last answer can finish), the
    // sibling PUT URL and another PATCH are refused.
    let h = head(&app, &url);
    assert_eq!(h.status, 200);
    assert_eq!(h.header("upload-offset"), Some("3000001"));
    let again = patch(&app, &url, 0, b"x");
    assert_eq!(again.status, 409);
    assert_eq!(again.error_code(), "url-used");
    let put = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", b"other");
    assert_eq!(put.error_code(), "url-used");
    assert!(!app
        .data_dir()
        .join("tmp/resumable")
        .read_dir()
        .unwrap()
        .any(|_| true));
}

#[test]
fn the_refusal_table() {
    let app = TestApp::spawn();
    let (id, p, url) = presign_resumable(&app, json!({ "size": 1000 }));
    // Before any session: HEAD says offset 0 and the signed size.
    let h = head(&app, &url);
    assert_eq!((h.status, h.header("upload-offset")), (200, Some("0")));
    assert_eq!(h.header("upload-length"), Some("1000"));
    // No protocol header: 412 naming both.
    let res = app.send("HEAD", &url, &[], b"");
    assert_eq!(res.status, 412);
    assert_eq!(res.header("tus-version"), Some("1.0.0"));
    let res = app.send("PATCH", &url, &[("Tus-Resumable", "0.2.2")], b"");
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (412, "unsupported-protocol")
    );
    // Over the signed size, said by the length: 413 before any body.
    let res = create(&app, &url, 1001);
    assert_eq!((res.status, res.error_code().as_str()), (413, "too-large"));
    let res = create(&app, &url, 999);
    assert_eq!(res.status, 400);
    assert!(res.text().contains("exactly 1000"), "{}", res.text());
    assert_eq!(create(&app, &url, 1000).status, 201);
    // Wrong offset: 409 with the right one.
    let res = patch(&app, &url, 7, b"abc");
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (409, "offset-mismatch")
    );
    assert_eq!(res.header("upload-offset"), Some("0"));
    // Wrong body type: 415 naming the expected one.
    let res = app.send(
        "PATCH",
        &url,
        &[TUS, ("Content-Type", "video/mp4"), ("Upload-Offset", "0")],
        b"abc",
    );
    assert_eq!(res.status, 415);
    assert!(res.text().contains("application/offset+octet-stream"));
    // Past the length in one request: 413 before reading.
    let res = patch(&app, &url, 0, &sample(1001));
    assert_eq!(res.status, 413);
    // Checksums: a mismatch is 460 and keeps nothing, an unknown algorithm 400.
    let data = sample(1000);
    let wrong = base64_of(&ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        b"no",
    ));
    let sum = format!("sha1 {wrong}");
    let res = app.send(
        "PATCH",
        &url,
        &[
            TUS,
            TUS_BODY,
            ("Upload-Offset", "0"),
            ("Upload-Checksum", &sum),
        ],
        &data[..400],
    );
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (460, "checksum-mismatch")
    );
    assert_eq!(head(&app, &url).header("upload-offset"), Some("0"));
    let res = app.send(
        "PATCH",
        &url,
        &[
            TUS,
            TUS_BODY,
            ("Upload-Offset", "0"),
            ("Upload-Checksum", "md5 AAAA"),
        ],
        &data[..400],
    );
    assert_eq!(res.status, 400);
    let good = base64_of(&ring::digest::digest(&ring::digest::SHA256, &data[..400]));
    let sum = format!("sha256 {good}");
    let res = app.send(
        "PATCH",
        &url,
        &[
            TUS,
            TUS_BODY,
            ("Upload-Offset", "0"),
            ("Upload-Checksum", &sum),
        ],
        &data[..400],
    );
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(res.header("upload-offset"), Some("400"));
    // A tampered URL (another limit) and a foreign one (another video's path): 403.
    let tampered = url.replace("limit=1000", "limit=2000");
    let res = app.send("HEAD", &tampered, &[TUS], b"");
    assert_eq!(res.status, 403);
    let other = app.create_video("rec.mp4");
    let res = app.send("HEAD", &url.replace(&id, &other), &[TUS], b"");
    assert_eq!(res.status, 403);
    // The PUT URL cannot race the session.
    let put = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &data);
    assert_eq!(
        (put.status, put.error_code().as_str()),
        (409, "upload-in-progress")
    );
    // Parallel (concatenated) uploads are not taken.
    let res = app.send("POST", &url, &[TUS, ("Upload-Concat", "partial")], b"");
    assert_eq!(res.status, 400);
    // Nothing is published by any of it.
    assert_eq!(served(&app, &id).status, 404);
    // An unknown upload (its row gone, as after fsck forgets it): 404. (A sized one: a URL
    // presigned without a size has no row until it is first used.)
    let (_, _, gone) = presign_resumable(&app, json!({ "size": 1000 }));
    let upload = gone
        .split("upload=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    app.db
        .blocking(|c| flare::db::uploads::remove(c, upload))
        .unwrap();
    let res = head(&app, &gone);
    assert_eq!(res.status, 404, "{}", res.text());
    // And the upload still completes.
    let res = patch(&app, &url, 400, &data[400..]);
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(sha256_hex(&served(&app, &id).body), sha256_hex(&data));
}

fn base64_of(d: &ring::digest::Digest) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(d.as_ref())
}

#[test]
fn a_revoked_token_stops_the_session_at_its_next_request_and_nothing_is_published() {
    let app = TestApp::spawn();
    let (token, token_id) = app.new_token(&Scope::ALL, None);
    let id = app.create_video("rec.mp4");
    let res = app.api_as(
        &token,
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": id, "fileName": "rec.mp4", "resumable": true })),
    );
    let url = app.local(res.json()["resumable"]["url"].as_str().unwrap());
    let data = sample(2000);
    assert_eq!(create(&app, &url, 2000).status, 201);
    assert_eq!(patch(&app, &url, 0, &data[..1000]).status, 204);
    app.revoke(&token_id);
    let res = patch(&app, &url, 1000, &data[1000..]);
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (401, "token-revoked")
    );
    assert_eq!(served(&app, &id).status, 404);
    let video = app.api("GET", &format!("/api/video/{id}"), None).json();
    assert_eq!(video["video"]["status"], json!("pending"));
}

#[test]
fn an_expired_window_is_410_and_the_sweeper_removes_the_bytes() {
    let app = TestApp::spawn_with(|s| s.resumable_window = Some("2s".into()));
    // The window is never shorter than the time to start: a two-second URL (whole seconds: a
    // one-second URL may have only milliseconds left when it is handed out).
    let (_, _, url) = presign_resumable(&app, json!({ "expiresIn": 2 }));
    assert_eq!(create(&app, &url, 10).status, 201);
    assert_eq!(patch(&app, &url, 0, b"01234").status, 204);
    // A part file, or with a bucket a multipart upload and a tail.
    let part = |app: &TestApp| session_bytes(&app.data_dir()).0;
    assert!(part(&app) >= 1);
    std::thread::sleep(Duration::from_millis(2200));
    let res = patch(&app, &url, 5, b"56789");
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (410, "upload-expired")
    );
    assert!(res.header("upload-offset").is_none());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while part(&app) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(part(&app), 0, "the sweeper left the part file");
}

#[test]
fn a_window_cannot_be_stretched_by_forging_the_url() {
    let app = TestApp::spawn();
    let (_, p, _) = presign_resumable(&app, json!({}));
    let url = p["resumable"]["url"].as_str().unwrap();
    let query = url.split_once('?').unwrap().1;
    let pairs = flare::domain::signing::parse_query(query).unwrap();
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
    // Signed with the node's own key but a window already over: 410.
    let path = app.local(url);
    let segs: Vec<&str> = path.split('?').next().unwrap().split('/').collect();
    let grant = UploadGrant {
        video_id: segs[2].into(),
        file_name: segs[4].into(),
        expires: get("expires").parse().unwrap(),
        content_type: get("type"),
        limit: get("limit").parse().unwrap(),
        exact: false,
        upload_id: get("upload"),
        token_id: get("token"),
        resumable_until: Some(flare::time::now_ms() / 1000 - 1),
    };
    let res = app.send("HEAD", &grant.sign(&read_key(&app.data_dir())), &[TUS], b"");
    assert_eq!(res.status, 410);
}

#[test]
fn delete_ends_the_session_and_the_url_starts_again_unspent() {
    let app = TestApp::spawn();
    let (id, p, url) = presign_resumable(&app, json!({}));
    assert_eq!(create(&app, &url, 100).status, 201);
    assert_eq!(patch(&app, &url, 0, &sample(50)).status, 204);
    // Another length while the session runs: 409, the client must DELETE first.
    let res = create(&app, &url, 200);
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (409, "upload-in-progress")
    );
    // The same creation again finds the session as it was.
    let res = create(&app, &url, 100);
    assert_eq!((res.status, res.header("upload-offset")), (201, Some("50")));
    let res = app.send("DELETE", &url, &[TUS], b"");
    assert_eq!(res.status, 204);
    assert_eq!(head(&app, &url).header("upload-offset"), Some("0"));
    // Unspent: the PUT URL now works.
    let data = sample(77);
    let put = app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &data);
    assert_eq!(put.status, 200, "{}", put.text());
    assert_eq!(served(&app, &id).body, data);
    // A published object is never deleted through an upload URL.
    let res = app.send("DELETE", &url, &[TUS], b"");
    assert_eq!(res.status, 409);
    assert_eq!(served(&app, &id).body, data);
}

#[test]
fn deferred_length_creation_with_upload_and_method_override() {
    let app = TestApp::spawn();
    let (id, _, url) = presign_resumable(&app, json!({}));
    let data = sample(3000);
    // Creation with upload, length deferred.
    let res = app.send(
        "POST",
        &url,
        &[TUS, TUS_BODY, ("Upload-Defer-Length", "1")],
        &data[..1000],
    );
    assert_eq!(res.status, 201, "{}", res.text());
    assert_eq!(res.header("upload-offset"), Some("1000"));
    assert_eq!(res.header("upload-defer-length"), Some("1"));
    // tus-java-client's habits: POST with X-HTTP-Method-Override, chunked, Expect.
    let mut chunked = Vec::new();
    for part in data[1000..2000].chunks(300) {
        chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        chunked.extend_from_slice(part);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let res = app.send(
        "POST",
        &url,
        &[
            TUS,
            TUS_BODY,
            ("X-HTTP-Method-Override", "PATCH"),
            ("Upload-Offset", "1000"),
            ("Transfer-Encoding", "chunked"),
        ],
        &chunked,
    );
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(res.header("upload-offset"), Some("2000"));
    // The last chunk declares the length, and completes.
    let res = app.send(
        "PATCH",
        &url,
        &[
            TUS,
            TUS_BODY,
            ("Upload-Offset", "2000"),
            ("Upload-Length", "3000"),
        ],
        &data[2000..],
    );
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(sha256_hex(&served(&app, &id).body), sha256_hex(&data));
}

#[test]
fn ietf_draft_interop_6_and_8_create_append_and_complete() {
    for version in ["6", "8"] {
        let app = TestApp::spawn();
        let (id, p, url) = presign_resumable(&app, json!({}));
        let v = ("Upload-Draft-Interop-Version", version);
        let opts = app.send("OPTIONS", &url, &[], b"");
        assert_eq!(opts.status, 204);
        assert!(opts.header("upload-limit").unwrap().contains("min-size=0"));
        let res = app.send("POST", &url, &[v, ("Upload-Complete", "?0")], b"");
        assert_eq!(res.status, 201, "{}", res.text());
        assert_eq!(res.header("location"), p["resumable"]["url"].as_str());
        assert_eq!(res.header("upload-complete"), Some("?0"));
        assert!(res.header("upload-limit").unwrap().contains("max-age="));
        let data = sample(5000);
        let partial = ("Content-Type", "application/partial-upload");
        let res = app.send(
            "PATCH",
            &url,
            &[
                v,
                partial,
                ("Upload-Offset", "0"),
                ("Upload-Complete", "?0"),
            ],
            &data[..2000],
        );
        assert_eq!(
            (res.status, res.header("upload-offset")),
            (204, Some("2000"))
        );
        let res = app.send("HEAD", &url, &[v], b"");
        assert_eq!(res.status, 204);
        assert_eq!(res.header("upload-offset"), Some("2000"));
        assert_eq!(res.header("upload-complete"), Some("?0"));
        let res = app.send(
            "PATCH",
            &url,
            &[
                v,
                partial,
                ("Upload-Offset", "1"),
                ("Upload-Complete", "?1"),
            ],
            &data[1..],
        );
        assert_eq!(res.status, 409);
        assert_eq!(res.header("upload-offset"), Some("2000"));
        assert_eq!(res.header("upload-complete"), Some("?0"));
        let res = app.send(
            "PATCH",
            &url,
            &[
                v,
                partial,
                ("Upload-Offset", "2000"),
                ("Upload-Complete", "?1"),
            ],
            &data[2000..],
        );
        assert_eq!(res.status, 200, "{}", res.text());
        assert_eq!(res.header("upload-complete"), Some("?1"));
        assert_eq!(res.header("upload-offset"), Some("5000"));
        assert_eq!(res.json()["sha256"], json!(sha256_hex(&data)));
        assert_eq!(served(&app, &id).body, data);
    }
}

#[test]
fn ietf_optimistic_creation_with_the_whole_body() {
    let app = TestApp::spawn();
    let (id, _, url) = presign_resumable(&app, json!({}));
    let data = sample(4096);
    let res = app.send(
        "PUT",
        &url,
        &[
            ("Upload-Draft-Interop-Version", "8"),
            ("Upload-Complete", "?1"),
            ("Content-Type", "video/mp4"),
        ],
        &data,
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(served(&app, &id).body, data);
    // The representation's type must be the signed one.
    let (_, _, url) = presign_resumable(&app, json!({}));
    let res = app.send(
        "POST",
        &url,
        &[
            ("Upload-Draft-Interop-Version", "8"),
            ("Upload-Complete", "?1"),
            ("Content-Type", "video/webm"),
        ],
        &data,
    );
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (415, "content-type-mismatch")
    );
}

/// A tus PATCH's request head, for tests that send its body by hand.
fn patch_head(url: &str, offset: usize, length: usize) -> String {
    format!(
        "PATCH {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n\
         Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n\
         Content-Length: {length}\r\n\r\n"
    )
}

/// Sends a PATCH head and part of its body, then drops the connection.
fn cut_patch(port: u16, url: &str, offset: usize, declared: usize, sent: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(patch_head(url, offset, declared).as_bytes())
        .unwrap();
    s.write_all(sent).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
}

#[test]
fn a_dropped_connection_keeps_its_durable_prefix_and_the_upload_resumes() {
    let app = TestApp::spawn();
    let (id, _, url) = presign_resumable(&app, json!({}));
    let data = sample(8 << 20);
    assert_eq!(create(&app, &url, data.len()).status, 201);
    let sent = 5 << 20;
    cut_patch(app.port, &url, 0, data.len(), &data[..sent]);
    // HEAD asks any request still holding the upload to let go, so it reports what is durable.
    let mut offset = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while offset == 0 && std::time::Instant::now() < deadline {
        offset = head(&app, &url)
            .header("upload-offset")
            .unwrap()
            .parse()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        offset > 0 && offset <= sent,
        "kept {offset} of the {sent} bytes sent"
    );
    let res = patch(&app, &url, offset, &data[offset..]);
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(sha256_hex(&served(&app, &id).body), sha256_hex(&data));
}

#[test]
fn a_new_request_takes_over_from_a_stalled_one() {
    let app = TestApp::spawn();
    let (id, _, url) = presign_resumable(&app, json!({}));
    let data = sample(1 << 20);
    assert_eq!(create(&app, &url, data.len()).status, 201);
    // A PATCH that sends half and then stalls, its connection open.
    let mut stalled = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    stalled
        .write_all(patch_head(&url, 0, data.len()).as_bytes())
        .unwrap();
    stalled.write_all(&data[..1 << 19]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let h = head(&app, &url);
    assert_eq!(h.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "HEAD waited on the stalled PATCH"
    );
    let offset: usize = h.header("upload-offset").unwrap().parse().unwrap();
    assert_eq!(offset, 1 << 19, "what the stalled request sent is kept");
    let res = patch(&app, &url, offset, &data[offset..]);
    assert_eq!(res.status, 204, "{}", res.text());
    assert_eq!(served(&app, &id).body, data);
}

#[test]
fn a_killed_server_resumes_from_what_was_durable() {
    let (_dir, data_dir, token) = data_dir_with_token("kill");
    let auth = format!("Bearer {token}");
    let mut node = Node::start(&data_dir, &[]);
    let id = node.create_video(&auth, "rec.mp4");
    let res = node.send(
        "POST",
        "/api/video/upload/presign",
        &[("Authorization", &auth)],
        json!({ "videoId": id, "fileName": "rec.mp4", "resumable": true })
            .to_string()
            .as_bytes(),
    );
    let url = res.json()["resumable"]["url"].as_str().unwrap().to_string();
    let url = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    let data = sample(6 << 20);
    let len = data.len().to_string();
    let res = node.send("POST", &url, &[TUS, ("Upload-Length", &len)], b"");
    assert_eq!(res.status, 201);
    let res = node.send(
        "PATCH",
        &url,
        &[TUS, TUS_BODY, ("Upload-Offset", "0")],
        &data[..2 << 20],
    );
    assert_eq!(res.status, 204);
    // Mid-request: kill -9.
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    s.write_all(patch_head(&url, 2 << 20, data.len() - (2 << 20)).as_bytes())
        .unwrap();
    s.write_all(&data[2 << 20..3 << 20]).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    node.kill_quietly();
    drop(s);
    let node = Node::start(&data_dir, &[]);
    let h = node.send("HEAD", &url, &[TUS], b"");
    assert_eq!(h.status, 200, "{}", h.text());
    let offset: usize = h.header("upload-offset").unwrap().parse().unwrap();
    assert!(
        offset >= 2 << 20,
        "the acknowledged offset was lost: {offset}"
    );
    let res = node.send(
        "PATCH",
        &url,
        &[TUS, TUS_BODY, ("Upload-Offset", &offset.to_string())],
        &data[offset..],
    );
    assert_eq!(res.status, 204, "{}", res.text());
    let got = node.send("GET", &format!("/media/{id}/composite/rec.mp4"), &[], b"");
    assert_eq!(sha256_hex(&got.body), sha256_hex(&data));
    let video = node.send(
        "GET",
        &format!("/api/video/{id}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(video.json()["video"]["sha256"], json!(sha256_hex(&data)));
}

#[test]
fn one_long_request_cut_by_kill_9_keeps_its_checkpoints() {
    // tus-js-client and Uppy send a whole file in one PATCH by default: a crash must not cost
    // all of it.
    let (_dir, data_dir, token) = data_dir_with_token("checkpoints");
    let auth = format!("Bearer {token}");
    let mut node = Node::start(&data_dir, &[]);
    let id = node.create_video(&auth, "rec.mp4");
    let res = node.send(
        "POST",
        "/api/video/upload/presign",
        &[("Authorization", &auth)],
        json!({ "videoId": id, "fileName": "rec.mp4", "resumable": true })
            .to_string()
            .as_bytes(),
    );
    let url = res.json()["resumable"]["url"].as_str().unwrap().to_string();
    let url = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    let data = sample(100 << 20);
    let len = data.len().to_string();
    assert_eq!(
        node.send("POST", &url, &[TUS, ("Upload-Length", &len)], b"")
            .status,
        201
    );
    let mut s = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    s.write_all(patch_head(&url, 0, data.len()).as_bytes())
        .unwrap();
    s.write_all(&data[..80 << 20]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while session_bytes(&data_dir).1 < 70 << 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the bytes never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    node.kill_quietly();
    drop(s);
    let node = Node::start(&data_dir, &[]);
    let h = node.send("HEAD", &url, &[TUS], b"");
    let offset: usize = h.header("upload-offset").unwrap().parse().unwrap();
    assert!(
        offset >= 32 << 20,
        "a SIGKILL cost the whole request: {offset} bytes kept of 70 MiB written"
    );
    let res = node.send(
        "PATCH",
        &url,
        &[TUS, TUS_BODY, ("Upload-Offset", &offset.to_string())],
        &data[offset..],
    );
    assert_eq!(res.status, 204, "{}", res.text());
    let got = node.send("GET", &format!("/media/{id}/composite/rec.mp4"), &[], b"");
    assert_eq!(sha256_hex(&got.body), sha256_hex(&data));
}
