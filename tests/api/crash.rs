//! kill -9 in the middle of 20 concurrent uploads: after a restart, what was acknowledged is
//! whole, nothing partial is public, temp files are gone, the database is sound, and the
//! interrupted URLs still work for a retry.

use crate::helpers::{data_dir_with_token, files_under, flare_cli, sample, sha256_hex, Node};
use serde_json::{json, Value};
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

const UPLOADS: usize = 20;

/// PUTs `body` through `path` in 64 KiB pieces with `pause` between them; the status, or None
/// when the connection broke first.
fn slow_put(port: u16, path: &str, body: &[u8], pause: Duration) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let head = format!("PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    s.write_all(head.as_bytes()).ok()?;
    for piece in body.chunks(64 * 1024) {
        s.write_all(piece).ok()?;
        std::thread::sleep(pause);
    }
    let mut buf = Vec::new();
    std::io::Read::read_to_end(&mut s, &mut buf).ok()?;
    (!buf.is_empty()).then(|| crate::helpers::parse_response(&buf).status)
}

#[test]
fn a_killed_server_loses_nothing_it_acknowledged_and_shows_nothing_partial() {
    let (_dir, data, token) = data_dir_with_token("crash");
    let auth = format!("Bearer {token}");
    let mut node = Node::start(&data, &[("FLARE_SYNC_UPLOADS", "true")]);

    // 20 videos and their upload URLs; half small and quick, half large and slow.
    let jobs: Vec<(String, String, Vec<u8>, bool)> = (0..UPLOADS)
        .map(|i| {
            let res = node.send(
                "POST",
                "/api/video/create",
                &[("Authorization", &auth)],
                json!({ "fileName": "v.mp4" }).to_string().as_bytes(),
            );
            let id = res.json()["video"]["id"].as_str().unwrap().to_string();
            let p = node
                .send(
                    "POST",
                    "/api/video/upload/presign",
                    &[("Authorization", &auth)],
                    json!({ "videoId": id, "fileName": "v.mp4" })
                        .to_string()
                        .as_bytes(),
                )
                .json();
            let url = p["uploadUrl"]
                .as_str()
                .unwrap()
                .splitn(4, '/')
                .nth(3)
                .map(|s| format!("/{s}"))
                .unwrap();
            let slow = i % 2 == 1;
            let mut body = sample(if slow { 8 << 20 } else { 256 << 10 });
            body[0] = i as u8; // each body its own
            (id, url, body, slow)
        })
        .collect();

    let port = node.port;
    let results: Vec<Option<u16>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(_, url, body, slow)| {
                let pause = if *slow {
                    Duration::from_millis(25)
                } else {
                    Duration::ZERO
                };
                s.spawn(move || slow_put(port, url, body, pause))
            })
            .collect();
        // Let the quick ones finish and the slow ones get going, then pull the plug.
        std::thread::sleep(Duration::from_millis(1500));
        node.kill();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let acknowledged: Vec<usize> = (0..UPLOADS).filter(|&i| results[i] == Some(200)).collect();
    let interrupted: Vec<usize> = (0..UPLOADS).filter(|&i| results[i] != Some(200)).collect();
    assert!(
        acknowledged.len() >= UPLOADS / 2,
        "too few uploads finished before the kill: {results:?}"
    );
    assert!(
        !interrupted.is_empty(),
        "the kill came too late to interrupt anything: {results:?}"
    );
    let leftovers = files_under(&data.join("tmp")).len();

    let node = Node::start(&data, &[]);
    assert_eq!(
        files_under(&data.join("tmp")).len(),
        0,
        "temp files survived the restart"
    );
    for &i in &acknowledged {
        let (id, _, body, _) = &jobs[i];
        let got = node.send("GET", &format!("/media/{id}/composite/v.mp4"), &[], b"");
        assert_eq!(got.status, 200, "acknowledged upload {i} is gone");
        assert_eq!(
            sha256_hex(&got.body),
            sha256_hex(body),
            "acknowledged upload {i} changed"
        );
    }
    for &i in &interrupted {
        let (id, _, _, _) = &jobs[i];
        let got = node.send("GET", &format!("/media/{id}/composite/v.mp4"), &[], b"");
        assert_eq!(got.status, 404, "interrupted upload {i} is public");
    }
    let report: Value =
        serde_json::from_str(&flare_cli(&data, &["fsck", "--verify", "--json"])).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["bytesVerified"].as_u64().unwrap() > 0);

    // The same URLs take the retry.
    for &i in &interrupted {
        let (id, url, body, _) = &jobs[i];
        let res = node.send("PUT", url, &[("Content-Type", "video/mp4")], body);
        assert_eq!(res.status, 200, "retry of {i}: {}", res.text());
        let got = node.send("GET", &format!("/media/{id}/composite/v.mp4"), &[], b"");
        assert!(got.body == *body);
    }
    eprintln!(
        "crash: {} uploads acknowledged and verified, {} interrupted ({} temp files swept) and retried",
        acknowledged.len(),
        interrupted.len(),
        leftovers
    );
}
