//! Clients that hold the server without using it: readers that never read, bodies that never
//! arrive, a crowd from one address, HTTP/2 attempts; and which address a client is behind a
//! proxy.

use crate::helpers::{data_dir_with_token, run_flare, sample, Node, TestApp};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Asks for the whole object and reads nothing for `pause`; then everything it can: the bytes
/// that came, and whether the connection was closed.
fn stalled_reader(port: u16, path: &str, extra: &str, pause: Duration) -> usize {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").unwrap();
    std::thread::sleep(pause);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got += n,
        }
    }
}

#[test]
fn a_reader_that_stops_reading_is_cut_off_on_both_paths() {
    let app = TestApp::spawn_with(|s| s.send_timeout = Some("1s".into()));
    let size = 64 << 20;
    let (_, public) = app.upload("big.mp4", &sample(size));
    // The sendfile path (a plain GET), then actix's (a header it does not take).
    for extra in ["", "X-Path: actix\r\n"] {
        let started = Instant::now();
        let got = stalled_reader(app.port, &public, extra, Duration::from_secs(3));
        assert!(
            got < size,
            "{extra:?}: the stalled reader still got all {got} bytes: its response was never cut off"
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
}

#[test]
fn bodies_that_stop_arriving_are_cut_off_on_every_route() {
    let app = TestApp::spawn_with(|s| s.upload_idle_timeout = Some("1s".into()));
    let (id, _) = app.upload("demo.mp4", b"x");
    let auth = format!("Bearer {}", app.token);
    for (path, headers) in [
        (
            "/api/video/create".to_string(),
            format!("Authorization: {auth}\r\nContent-Type: application/json\r\n"),
        ),
        (
            format!("/v/{id}"),
            "Content-Type: application/x-www-form-urlencoded\r\n".to_string(),
        ),
    ] {
        let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 100\r\n\r\n{{\"file"
        )
        .unwrap();
        let started = Instant::now();
        let res = crate::helpers::read_response(&mut s);
        assert_eq!(res.status, 408, "{path}: {}", res.text());
        assert_eq!(res.error_code(), "request-timeout", "{path}");
        assert!(started.elapsed() < Duration::from_secs(10), "{path}");
    }
}

#[test]
fn one_address_may_hold_only_so_many_connections() {
    let app = TestApp::spawn_with(|s| s.max_connections_per_client = Some(3));
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(("127.0.0.1", app.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let res = crate::helpers::read_response(&mut s);
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(res.error_code(), "unavailable");
    assert!(res.text().contains("max_connections_per_client"));
    // A closed connection gives its place back.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = crate::helpers::send_to(app.port, "GET", "/healthz", &[], b"").status;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after the others closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn http2_attempts_get_clean_answers() {
    let app = TestApp::spawn();
    // Prior knowledge: SETTINGS, then GOAWAY with HTTP_1_1_REQUIRED.
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.len() >= 26, "{got:?}");
    assert_eq!(got[3], 0x4, "a SETTINGS frame first");
    assert_eq!(got[12], 0x7, "then GOAWAY");
    assert_eq!(&got[22..26], &[0, 0, 0, 0xd], "HTTP_1_1_REQUIRED");
    // An h2c upgrade offer is answered over HTTP/1.1, without a stray `connection: upgrade`.
    let res = app.send(
        "GET",
        "/healthz",
        &[
            ("Connection", "Upgrade, HTTP2-Settings"),
            ("Upgrade", "h2c"),
            ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
        ],
        b"",
    );
    assert_eq!(res.status, 200);
    let connection = res.header("connection").unwrap_or("").to_ascii_lowercase();
    assert!(!connection.contains("upgrade"), "connection: {connection}");
}

fn unlock_as(app: &TestApp, id: &str, forwarded_for: &str, password: &str) -> u16 {
    app.send(
        "POST",
        &format!("/v/{id}"),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Forwarded-For", forwarded_for),
        ],
        format!("password={password}").as_bytes(),
    )
    .status
}

#[test]
fn behind_a_trusted_proxy_each_viewer_has_their_own_throttle() {
    let app = TestApp::spawn_with(|s| s.trusted_proxies = Some(vec!["127.0.0.0/8".into()]));
    let (id, _) = app.upload("demo.mp4", b"x");
    assert_eq!(
        app.api(
            "PATCH",
            &format!("/api/video/update/{id}"),
            Some(json!({ "password": "right" }))
        )
        .status,
        200
    );
    for _ in 0..5 {
        assert_eq!(unlock_as(&app, &id, "198.51.100.1", "wrong"), 401);
    }
    assert_eq!(unlock_as(&app, &id, "198.51.100.1", "wrong"), 429);
    assert_eq!(
        unlock_as(&app, &id, "198.51.100.2", "right"),
        303,
        "another viewer behind the same proxy was locked out"
    );

    // Without trusted proxies the header is anyone's to write, so it is ignored.
    let app = TestApp::spawn();
    let (id, _) = app.upload("demo.mp4", b"x");
    app.api(
        "PATCH",
        &format!("/api/video/update/{id}"),
        Some(json!({ "password": "right" })),
    );
    for i in 0..5 {
        assert_eq!(
            unlock_as(&app, &id, &format!("198.51.100.{i}"), "wrong"),
            401
        );
    }
    assert_eq!(unlock_as(&app, &id, "198.51.100.99", "wrong"), 429);
}

#[test]
fn the_access_log_names_the_client_a_trusted_proxy_reports() {
    let (_dir, data, _token) = data_dir_with_token("proxy-log");
    let node = Node::start(
        &data,
        &[
            ("FLARE_TRUSTED_PROXIES", "127.0.0.1"),
            ("FLARE_PUBLIC_ULR", "typo"),
        ],
    );
    let res = node.send(
        "GET",
        "/healthz",
        &[("X-Forwarded-For", "203.0.113.50")],
        b"",
    );
    assert_eq!(res.status, 200);
    std::thread::sleep(Duration::from_millis(200));
    let log = node.log_text();
    assert!(log.contains("203.0.113.50 \"GET /healthz\" 200"), "{log}");
    assert!(
        log.contains("FLARE_PUBLIC_ULR is not a flare setting"),
        "an unknown FLARE_ variable passed without a word: {log}"
    );
}

#[test]
fn a_public_url_that_is_not_a_url_is_refused() {
    let (_dir, data, _token) = data_dir_with_token("bad-url");
    let out = run_flare(
        &data,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("FLARE_PUBLIC_URL", "http://example.com:notaport")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public_url") && err.contains("notaport"),
        "{err}"
    );
}
