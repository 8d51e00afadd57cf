//! Many writers and readers at once: 50 uploads to different videos and 10 racing to replace one
//! object while readers fetch ranges of it. Every reader sees one whole version, never a mix;
//! no client sees a 500 or "database is locked".

use crate::helpers::TestApp;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

const SIZE: usize = 1 << 20;

/// Version `v` of the shared object: every byte says which version it belongs to.
fn version(v: u8) -> Vec<u8> {
    vec![v; SIZE]
}

#[test]
fn concurrent_writers_never_leave_a_reader_a_mixed_object() {
    let app = TestApp::spawn();
    let shared = app.create_video("shared.mp4");
    let first = app.presign(json!({ "videoId": shared, "fileName": "shared.mp4" }));
    assert_eq!(
        app.put(
            first["uploadUrl"].as_str().unwrap(),
            "video/mp4",
            &version(1)
        )
        .status,
        200
    );
    let public = app.local(first["publicUrl"].as_str().unwrap());
    // Fresh URLs for the racers, and 50 other videos with theirs, made before the storm.
    let racers: Vec<String> = (0..10)
        .map(|_| {
            app.presign(json!({ "videoId": shared, "fileName": "shared.mp4" }))["uploadUrl"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let others: Vec<(String, String)> = (0..50)
        .map(|i| {
            let id = app.create_video(&format!("v{i}.mp4"));
            let url = app.presign(json!({ "videoId": id, "fileName": "v.mp4" }))["uploadUrl"]
                .as_str()
                .unwrap()
                .to_string();
            (id, url)
        })
        .collect();

    let writing = AtomicBool::new(true);
    let (statuses, reads) = std::thread::scope(|s| {
        let readers: Vec<_> = (0..4)
            .map(|r| {
                let (app, public, writing) = (&app, &public, &writing);
                s.spawn(move || {
                    let mut seen = 0;
                    let mut n = r;
                    while writing.load(Ordering::Relaxed) || seen < 5 {
                        n = (n * 7919 + 13) % SIZE;
                        let range = format!("bytes={}-{}", n, (n + 65_536).min(SIZE - 1));
                        let res = app.send("GET", public, &[("Range", &range)], b"");
                        assert_eq!(res.status, 206, "{range}: {}", res.text());
                        let v = res.body[0];
                        assert!(
                            res.body.iter().all(|&b| b == v),
                            "a reader saw a mix of versions"
                        );
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        let mut writers: Vec<_> = racers
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let app = &app;
                s.spawn(move || app.put(url, "video/mp4", &version(10 + i as u8)).status)
            })
            .collect();
        writers.extend(others.iter().enumerate().map(|(i, (_, url))| {
            let app = &app;
            s.spawn(move || app.put(url, "video/mp4", &vec![i as u8; 200_000]).status)
        }));
        let statuses: Vec<u16> = writers.into_iter().map(|h| h.join().unwrap()).collect();
        writing.store(false, Ordering::Relaxed);
        let reads: usize = readers.into_iter().map(|h| h.join().unwrap()).sum();
        (statuses, reads)
    });
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    let last = app.send("GET", &public, &[], b"");
    assert_eq!(last.body.len(), SIZE);
    assert!((10..20).contains(&last.body[0]) && last.body.iter().all(|&b| b == last.body[0]));
    for (i, (id, _)) in others.iter().enumerate() {
        let v = app.api("GET", &format!("/api/video/{id}"), None).json();
        assert_eq!(v["video"]["status"], "ready");
        assert_eq!(
            std::fs::read(app.object_path(id, "v.mp4")).unwrap(),
            vec![i as u8; 200_000]
        );
    }
    // The record describes the object that won.
    let record = app.api("GET", &format!("/api/video/{shared}"), None).json();
    assert_eq!(
        record["video"]["sha256"],
        crate::helpers::sha256_hex(&last.body)
    );
    eprintln!("concurrency: 60 uploads, {reads} range reads, no mix");
}
