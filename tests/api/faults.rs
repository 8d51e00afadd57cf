//! Faults from outside: a full disk, a client that stalls mid-body, oversized headers, and a
//! crowd of connections that send nothing.

use crate::helpers::{files_under, sample, sha256_hex, TestApp};
use serde_json::json;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// A size-limited tmpfs mounted on `dir/data` for as long as it lives (lazily unmounted).
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &std::path::Path, size: &str) -> Option<SmallDisk> {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        if is_root() {
            let ok = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(&data)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return Some(SmallDisk(data));
            }
            panic!(
                "mount -t tmpfs failed although running as root: the disk-full test must run here"
            );
        } else {
            eprintln!("SKIPPED the disk-full test: mounting a small file system needs root (CI runs as root)");
        }
        None
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

#[test]
fn a_full_disk_refuses_with_507_and_keeps_what_was_stored() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_disk) = SmallDisk::mount(dir.path(), "8m") else {
        return;
    };
    let app = TestApp::start(dir, |s| {
        s.sync_uploads = Some(true);
        s.disk_reserve_bytes = Some(512 * 1024);
    });
    let kept = sample(2 << 20);
    let (id, public) = app.upload("kept.mp4", &kept);

    // More than the disk holds, with no size declared: refused when the disk fills.
    let big = app.create_video("big.mp4");
    let p = app.presign(json!({ "videoId": big, "fileName": "big.mp4" }));
    let res = app.put(
        p["uploadUrl"].as_str().unwrap(),
        "video/mp4",
        &sample(10 << 20),
    );
    assert_eq!(res.status, 507, "{}", res.text());
    assert_eq!(res.error_code(), "insufficient-storage");
    // Removed before the answer, so a client retrying at once finds the space free.
    let left = files_under(&app.data_dir().join("tmp"));
    assert!(
        left.is_empty(),
        "the refused upload's temp file outlived the 507"
    );
    assert!(!app.object_path(&big, "big.mp4").exists());

    // What was stored before is intact, and the node keeps serving.
    let got = app.send("GET", &public, &[], b"");
    assert_eq!(sha256_hex(&got.body), sha256_hex(&kept));
    assert_eq!(app.send("GET", "/healthz", &[], b"").status, 200);
    assert_eq!(
        app.api("GET", &format!("/api/video/{id}"), None).status,
        200
    );

    // A declared size that cannot fit is refused before a byte is sent.
    let res = app.api(
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": big, "fileName": "big.mp4", "size": 10 << 20 })),
    );
    assert_eq!(res.status, 507, "{}", res.text());
    assert!(res.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("reserve"));
    // One that fits is promised its room: a second such promise is refused while the first is open.
    let fits = app.presign(json!({ "videoId": big, "fileName": "big.mp4", "size": 3 << 20 }));
    let res = app.api(
        "POST",
        "/api/video/upload/presign",
        Some(json!({ "videoId": big, "fileName": "big.mp4", "size": 3 << 20 })),
    );
    assert_eq!(res.status, 507, "{}", res.text());
    assert_eq!(
        app.put(
            fits["uploadUrl"].as_str().unwrap(),
            "video/mp4",
            &sample(3 << 20)
        )
        .status,
        200
    );
}

#[test]
fn a_client_that_stalls_mid_body_is_cut_off_and_leaves_nothing() {
    let app = TestApp::spawn_with(|s| s.upload_idle_timeout = Some("1s".into()));
    let id = app.create_video("demo.mp4");
    let p = app.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 1000000\r\n\r\n").unwrap();
    s.write_all(&[1u8; 300_000]).unwrap();
    let started = Instant::now();
    let res = crate::helpers::read_response(&mut s);
    assert_eq!(res.status, 408, "{}", res.text());
    assert_eq!(res.error_code(), "request-timeout");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        app.temp_files_settled().is_empty(),
        "the stalled upload left its temp file"
    );
    assert!(!app.object_path(&id, "demo.mp4").exists());
    // The URL was not spent.
    assert_eq!(
        app.put(p["uploadUrl"].as_str().unwrap(), "video/mp4", b"complete")
            .status,
        200
    );
}

#[test]
fn oversized_headers_get_431() {
    let app = TestApp::spawn();
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(200_000)
    );
    let _ = s.write_all(head.as_bytes());
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn many_silent_connections_do_not_starve_others() {
    // All from one address here, so above the default per-client cap (tested in hostile.rs).
    let app = TestApp::spawn_with(|s| s.max_connections_per_client = Some(1000));
    let silent: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(("127.0.0.1", app.port)).unwrap())
        .collect();
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(app.send("GET", "/healthz", &[], b"").status, 200);
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "20 requests took {took:?} beside 500 silent connections"
    );
    drop(silent);
}

#[test]
fn expect_continue_over_the_limit_gets_413_without_sending_the_body() {
    let app = TestApp::spawn_with(|s| s.max_upload_bytes = Some(1000));
    let id = app.create_video("demo.mp4");
    let p = app.presign(json!({ "videoId": id, "fileName": "demo.mp4" }));
    let url = app.local(p["uploadUrl"].as_str().unwrap());
    let mut s = TcpStream::connect(("127.0.0.1", app.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PUT {url} HTTP/1.1\r\nHost: x\r\nContent-Type: video/mp4\r\nContent-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n"
    )
    .unwrap();
    // Not one byte of body is sent: the final answer must come anyway.
    let res = crate::helpers::read_response(&mut s);
    assert_eq!(res.status, 413);
    assert_eq!(res.error_code(), "too-large");
    assert!(app.temp_files_settled().is_empty());
}
