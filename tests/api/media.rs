//! The public URL: GET and HEAD with one Range, validators and conditional requests.

use crate::helpers::{sample, TestApp};
use serde_json::json;

fn stored(app: &TestApp, len: usize) -> (Vec<u8>, String) {
    let body = sample(len);
    let (_, public) = app.upload("demo.mp4", &body);
    (body, public)
}

#[test]
fn ranges_serve_exactly_the_bytes_asked_for() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 10_000);
    let cases: [(&str, usize, usize); 6] = [
        ("bytes=0-1", 0, 1),
        ("bytes=-500", 9_500, 9_999),
        ("bytes=9000-", 9_000, 9_999),
        ("bytes=100-199", 100, 199),
        ("bytes=9990-20000", 9_990, 9_999),
        ("bytes=0-", 0, 9_999),
    ];
    for (range, start, end) in cases {
        let res = app.send("GET", &public, &[("Range", range)], b"");
        assert_eq!(res.status, 206, "{range}");
        assert_eq!(
            res.header("content-range"),
            Some(format!("bytes {start}-{end}/10000").as_str()),
            "{range}"
        );
        assert_eq!(
            res.header("content-length"),
            Some((end - start + 1).to_string().as_str())
        );
        assert!(res.body == body[start..=end], "{range}: wrong bytes");
        assert_eq!(res.header("accept-ranges"), Some("bytes"));
    }
}

#[test]
fn a_range_past_the_end_gets_416_with_the_size() {
    let app = TestApp::spawn();
    let (_, public) = stored(&app, 10_000);
    for range in ["bytes=10000-", "bytes=20000-30000", "bytes=-0"] {
        let res = app.send("GET", &public, &[("Range", range)], b"");
        assert_eq!(res.status, 416, "{range}");
        assert_eq!(res.header("content-range"), Some("bytes */10000"));
        assert_eq!(res.error_code(), "range-not-satisfiable");
    }
}

#[test]
fn malformed_or_multiple_ranges_get_the_whole_object() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 5_000);
    for range in [
        "bytes=abc",
        "bytes=5-1",
        "bytes=0-1,3-4",
        "lines=0-1",
        "bytes=",
        "bytes=--5",
    ] {
        let res = app.send("GET", &public, &[("Range", range)], b"");
        assert_eq!(res.status, 200, "{range}");
        assert!(res.body == body, "{range}");
        assert_eq!(res.header("content-range"), None);
    }
}

#[test]
fn head_announces_the_object_without_a_body() {
    let app = TestApp::spawn();
    let (_, public) = stored(&app, 4_321);
    let res = app.send("HEAD", &public, &[], b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-length"), Some("4321"));
    assert_eq!(res.header("content-type"), Some("video/mp4"));
    assert!(res.header("etag").is_some() && res.header("last-modified").is_some());
    assert!(res.body.is_empty());
    let res = app.send("HEAD", &public, &[("Range", "bytes=0-1")], b"");
    assert_eq!(res.status, 206);
    assert_eq!(res.header("content-length"), Some("2"));
}

#[test]
fn conditional_requests_answer_304_and_if_range_guards_ranges() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 3_000);
    let first = app.send("GET", &public, &[], b"");
    let etag = first.header("etag").unwrap().to_string();
    let modified = first.header("last-modified").unwrap().to_string();

    let res = app.send("GET", &public, &[("If-None-Match", &etag)], b"");
    assert_eq!(res.status, 304);
    assert!(res.body.is_empty());
    assert_eq!(res.header("etag"), Some(etag.as_str()));
    assert_eq!(
        app.send("HEAD", &public, &[("If-None-Match", &etag)], b"")
            .status,
        304
    );
    assert_eq!(
        app.send("GET", &public, &[("If-None-Match", "\"other\"")], b"")
            .status,
        200
    );
    assert_eq!(
        app.send("GET", &public, &[("If-Modified-Since", &modified)], b"")
            .status,
        304
    );
    assert_eq!(
        app.send(
            "GET",
            &public,
            &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")],
            b""
        )
        .status,
        200
    );

    let res = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", &etag)],
        b"",
    );
    assert_eq!(res.status, 206);
    assert!(res.body == body[..10]);
    let res = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", "\"stale\"")],
        b"",
    );
    assert_eq!(res.status, 200);
    assert!(res.body == body);
    // A date is a strong validator once it is a second older than the response's Date.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let res = app.send(
        "GET",
        &public,
        &[("Range", "bytes=0-9"), ("If-Range", &modified)],
        b"",
    );
    assert_eq!(res.status, 206);
}

#[test]
fn a_replaced_object_gets_a_new_etag() {
    let app = TestApp::spawn();
    let (id, public) = app.upload("demo.mp4", b"one");
    let before = app
        .send("GET", &public, &[], b"")
        .header("etag")
        .unwrap()
        .to_string();
    let p = app.presign(serde_json::json!({ "videoId": id, "fileName": "demo.mp4" }));
    assert_eq!(
        app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", b"two")
            .status,
        200
    );
    let res = app.send("GET", &public, &[("If-None-Match", &before)], b"");
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"two");
}

#[test]
fn a_large_object_streams_whole() {
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 12 * 1024 * 1024 + 3);
    let res = app.send("GET", &public, &[], b"");
    assert_eq!(res.status, 200);
    assert!(res.body == body);
    let res = app.send("GET", &public, &[("Range", "bytes=5000000-")], b"");
    assert!(res.body == body[5_000_000..]);
}

#[test]
fn a_missing_object_is_a_json_404() {
    let app = TestApp::spawn();
    let res = app.send("GET", "/media/vid_x/composite/none.mp4", &[], b"");
    assert_eq!(res.status, 404);
    assert_eq!(res.error_code(), "not-found");
}

/// The headers of a response but `date`, sorted, for comparing two answers.
/// The headers but `Date`, and the request id's value (each request has its own; both paths
/// must send one).
fn headers_but_date(res: &crate::helpers::Response) -> Vec<(String, String)> {
    let mut h: Vec<_> = res
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("date"))
        .map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let v = if k == "x-request-id" {
                "(an id)".into()
            } else {
                v.clone()
            };
            (k, v)
        })
        .collect();
    h.sort();
    h
}

#[test]
fn the_sendfile_path_answers_exactly_as_actix_does() {
    // With and without CORS origins: with them, every response varies on `Origin`.
    for origins in [None, Some(vec!["http://site.example".to_string()])] {
        let app = TestApp::spawn_with(|s| s.cors_allowed_origins = origins.clone());
        let (body, public) = stored(&app, 300_000);
        let before = app.sendfile_answers();
        let cases = [
            ("GET", None, 200, 0..300_000),
            ("GET", Some("bytes=0-9"), 206, 0..10),
            ("GET", Some("bytes=-5"), 206, 299_995..300_000),
            ("GET", Some("bytes=299990-999999"), 206, 299_990..300_000),
            ("GET", Some("bytes=0-1,5-6"), 200, 0..300_000),
            ("HEAD", None, 200, 0..0),
            ("HEAD", Some("bytes=5-"), 206, 0..0),
        ];
        for (method, range, status, bytes) in cases.clone() {
            let mut headers = vec![("User-Agent", "test"), ("Accept", "*/*")];
            headers.extend(range.map(|r| ("Range", r)));
            let fast = app.send(method, &public, &headers, b"");
            // A header the fast path does not know sends the request to actix.
            headers.push(("X-Test", "to actix"));
            let actix = app.send(method, &public, &headers, b"");
            assert_eq!(fast.status, status, "{method} {range:?}");
            assert_eq!(actix.status, status, "{method} {range:?}");
            assert_eq!(headers_but_date(&fast), headers_but_date(&actix));
            assert!(fast.header("date").is_some());
            assert!(fast.body == body[bytes.clone()], "{method} {range:?}");
            assert!(actix.body == fast.body);
        }
        // The sendfile path took every plain request (cachestat or mincore probes the cache on
        // any Linux): were it off, this would compare actix with itself.
        assert_eq!(
            app.sendfile_answers() - before,
            cases.len() as u64,
            "the sendfile path did not answer the plain requests"
        );
    }
}

/// Reads one response off a kept-alive connection: status, headers, body.
fn read_one(
    r: &mut impl std::io::BufRead,
    head_only: bool,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; if head_only { 0 } else { len }];
    r.read_exact(&mut body).unwrap();
    (status, headers, body)
}

#[test]
fn a_kept_alive_connection_moves_from_the_sendfile_path_to_actix() {
    use std::io::{BufReader, Write};
    let app = TestApp::spawn();
    let (body, public) = stored(&app, 100_000);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    // Pipelined in one write: two plain media requests, then one only actix answers.
    let pipelined = format!(
        "GET {public} HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n\
         HEAD {public} HTTP/1.1\r\nHost: x\r\n\r\n\
         GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    conn.write_all(pipelined.as_bytes()).unwrap();
    let (status, fast_headers, got) = read_one(&mut reader, false);
    assert_eq!((status, &got[..]), (206, &body[10..20]));
    let (status, headers, got) = read_one(&mut reader, true);
    assert_eq!(status, 200);
    assert!(got.is_empty());
    assert!(headers.contains(&("content-length".into(), "100000".into())));
    let (status, _, got) = read_one(&mut reader, false);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&got));
    assert!(String::from_utf8_lossy(&got).contains("ok"));
    // actix keeps the connection and answers the media request that follows.
    let next = format!("GET {public} HTTP/1.1\r\nHost: x\r\nRange: bytes=-3\r\n\r\n");
    conn.write_all(next.as_bytes()).unwrap();
    let (status, actix_headers, got) = read_one(&mut reader, false);
    assert_eq!((status, &got[..]), (206, &body[99_997..]));
    // Kept alive, both paths send the same headers (no `connection` header on either).
    let names = |h: &[(String, String)]| {
        let mut n: Vec<_> = h.iter().map(|(k, _)| k.clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&fast_headers), names(&actix_headers));
    assert!(!fast_headers.iter().any(|(k, _)| k == "connection"));
    // And an If-None-Match first sends a fresh connection straight to actix: a 304.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let etag = app
        .send("HEAD", &public, &[], b"")
        .header("etag")
        .unwrap()
        .to_string();
    let conditional = format!("GET {public} HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n");
    conn.write_all(conditional.as_bytes()).unwrap();
    assert_eq!(read_one(&mut reader, false).0, 304);
}

#[test]
fn an_object_not_in_the_page_cache_is_read_in_and_sent() {
    let app = TestApp::spawn();
    let body = sample(3 * 1024 * 1024 + 7);
    let (id, public) = app.upload("demo.mp4", &body);
    let file = std::fs::File::open(app.object_path(&id, "demo.mp4")).unwrap();
    file.sync_all().unwrap();
    flare::sys::drop_from_cache(&file);
    let len = body.len() as u64;
    match flare::storage::is_cached(&file, 0, len) {
        Some(false) => {}
        other => eprintln!("the object could not be dropped from the page cache ({other:?})"),
    }
    let res = app.send("GET", &public, &[("Range", "bytes=1000000-")], b"");
    assert_eq!(res.status, 206);
    assert!(res.body == body[1_000_000..]);
    // Served through the page cache: what was sent is cached now.
    assert!(flare::storage::is_cached(&file, 1_000_000, len - 1_000_000).unwrap_or(true));
    let res = app.send("GET", &public, &[], b"");
    assert!(res.body == body);
}

#[test]
fn the_sendfile_path_writes_the_same_access_log_line_as_actix() {
    use crate::helpers::{data_dir_with_token, Node};
    let (_dir, data, token) = data_dir_with_token("log");
    let node = Node::start(&data, &[]);
    let auth = format!("Bearer {token}");
    let api = |path: &str, body: serde_json::Value| {
        node.send(
            "POST",
            path,
            &[("Authorization", &auth)],
            body.to_string().as_bytes(),
        )
        .json()
    };
    let id = api(
        "/api/video/create",
        serde_json::json!({ "fileName": "a.mp4" }),
    )["video"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let p = api(
        "/api/video/upload/presign",
        serde_json::json!({ "videoId": id, "fileName": "a.mp4" }),
    );
    let put = format!(
        "/{}",
        p["uploadUrl"]
            .as_str()
            .unwrap()
            .splitn(4, '/')
            .nth(3)
            .unwrap()
    );
    let body = sample(5_000);
    assert_eq!(
        node.send("PUT", &put, &[("Content-Type", "video/mp4")], &body)
            .status,
        200
    );
    let media = format!("/media/{id}/composite/a.mp4");
    // The query is not logged on either path.
    let with_query = format!("{media}?secret-looking-query");
    node.send("GET", &with_query, &[("Range", "bytes=0-9")], b"");
    node.send(
        "GET",
        &with_query,
        &[("Range", "bytes=0-9"), ("X-Test", "to actix")],
        b"",
    );
    node.send("HEAD", &media, &[], b"");
    node.send("HEAD", &media, &[("X-Test", "to actix")], b"");
    // Lines are written once the response is done; give the log a moment to arrive.
    let lines = || -> Vec<String> {
        let text = node.log_text();
        text.lines()
            .filter(|l| l.contains(&media))
            // Everything after the level, but the time taken: `http: 127.0.0.1 "GET …" 206 10`.
            .map(|l| {
                let rest = &l[l.find("http: ").expect("the access log's source")..];
                // Each line ends with its request's id, which differs from line to line.
                let (rest, id) = rest.rsplit_once(" request=").expect("a request id");
                assert!(flare::logging::acceptable_request_id(id), "{l}");
                let (line, took) = rest.rsplit_once(' ').unwrap();
                assert!(took.ends_with("ms") && took.contains('.'), "{l}");
                line.to_string()
            })
            .collect()
    };
    for _ in 0..100 {
        if lines().len() >= 4 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let lines = lines();
    let get = format!("http: 127.0.0.1 \"GET {media}\" 206 10");
    let head = format!("http: 127.0.0.1 \"HEAD {media}\" 200 0");
    assert_eq!(lines, [get.clone(), get, head.clone(), head]);
    assert!(!node.log_text().contains("secret-looking"));
}

#[test]
fn a_replaced_object_never_shares_a_date_and_if_match_is_enforced() {
    let app = TestApp::spawn();
    let first = sample(10_000);
    let (id, public) = app.upload("a.mp4", &first);
    let old = app.send("GET", &public, &[], b"");
    let (old_date, old_tag) = (
        old.header("last-modified").unwrap().to_string(),
        old.header("etag").unwrap().to_string(),
    );
    // Replaced at once: most often within the same second.
    let second: Vec<u8> = sample(10_000).iter().map(|b| b ^ 0x5a).collect();
    let p = app.presign(json!({ "videoId": id, "fileName": "a.mp4" }));
    assert_eq!(
        app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", &second)
            .status,
        200
    );
    let new = app.send("GET", &public, &[], b"");
    let new_date = new.header("last-modified").unwrap().to_string();
    assert_ne!(old_date, new_date, "two versions share one Last-Modified");

    // A client resuming the old version by its date gets the new one whole, never a splice.
    let resumed = app.send(
        "GET",
        &public,
        &[("Range", "bytes=100-199"), ("If-Range", &old_date)],
        b"",
    );
    assert_eq!(resumed.status, 200);
    assert!(resumed.body == second);

    // If-Match and If-Unmodified-Since: 412 when the object changed.
    let stale = app.send("GET", &public, &[("If-Match", &old_tag)], b"");
    assert_eq!(stale.status, 412, "{}", stale.text());
    assert_eq!(stale.error_code(), "precondition-failed");
    let fresh_tag = new.header("etag").unwrap().to_string();
    assert_eq!(
        app.send("GET", &public, &[("If-Match", &fresh_tag)], b"")
            .status,
        200
    );
    let since = app.send("HEAD", &public, &[("If-Unmodified-Since", &old_date)], b"");
    assert_eq!(since.status, 412);
}

#[test]
fn without_cachestat_the_sendfile_path_probes_the_cache_with_mincore() {
    use crate::helpers::{data_dir_with_token, Node};
    let (_dir, data, token) = data_dir_with_token("mincore");
    // An older kernel's way, forced: the probe that Linux before 6.5 has.
    let node = Node::start(&data, &[("FLARE_FAULTS", "no-cachestat")]);
    let body = sample(3 << 20);
    let (_, public) = node.upload(&format!("Bearer {token}"), "a.mp4", &body);
    let whole = node.send("GET", &public, &[], b"");
    assert!(whole.status == 200 && whole.body == body);
    let part = node.send("GET", &public, &[("Range", "bytes=1000-1999999")], b"");
    assert_eq!(part.status, 206);
    assert!(part.body == body[1000..2_000_000]);
    let log = node.log_text();
    assert!(
        log.contains("sent with sendfile(2); the page cache is probed with mincore(2)"),
        "{log}"
    );
}
