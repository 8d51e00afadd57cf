//! SIGTERM: flare stops accepting, lets an upload in flight finish within shutdown_grace, and
//! past it stops the rest with nothing left behind and the URL still unspent.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::*;

fn term(node: &Node) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &node.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Opens a PUT of `total` bytes on `path` and sends the first `first` of them.
fn start_put(port: u16, path: &str, body: &[u8], first: usize) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body[..first]).unwrap();
    s.flush().unwrap();
    s
}

fn exited_within(node: &mut Node, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = node.child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[test]
fn an_upload_in_flight_finishes_after_sigterm_and_new_connections_are_refused() {
    let (_dir, data_dir, token) = data_dir_with_token("grace");
    let mut node = Node::start(&data_dir, &[("FLARE_SHUTDOWN_GRACE", "20s")]);
    let auth = format!("Bearer {token}");
    let id = node.create_video(&auth, "a.mp4");
    let path = node.upload_path(&auth, &id, "a.mp4");
    let body = sample(4 << 20);
    let mut upload = start_put(node.port, &path, &body, 1 << 20);
    std::thread::sleep(Duration::from_millis(200));
    term(&node);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        TcpStream::connect(("127.0.0.1", node.port)).is_err(),
        "a new connection was accepted after SIGTERM"
    );
    upload.write_all(&body[1 << 20..]).unwrap();
    let mut answer = Vec::new();
    upload.read_to_end(&mut answer).unwrap();
    let answer = parse_response(&answer);
    assert_eq!(answer.status, 200, "{}", answer.text());
    let status = exited_within(&mut node, Duration::from_secs(10)).expect("flare did not exit");
    assert!(status.success(), "{status}");
    // The bytes are stored.
    let node = Node::start(&data_dir, &[]);
    let got = node.send("GET", &format!("/media/{id}/composite/a.mp4"), &[], b"");
    assert_eq!(got.body, body);
}

#[test]
fn past_the_grace_an_unfinished_upload_leaves_nothing_and_its_url_still_works() {
    let (_dir, data_dir, token) = data_dir_with_token("grace");
    let mut node = Node::start(&data_dir, &[("FLARE_SHUTDOWN_GRACE", "1s")]);
    let auth = format!("Bearer {token}");
    let id = node.create_video(&auth, "a.mp4");
    let path = node.upload_path(&auth, &id, "a.mp4");
    let body = sample(2 << 20);
    let _stalled = start_put(node.port, &path, &body, 1 << 20);
    std::thread::sleep(Duration::from_millis(200));
    term(&node);
    let status =
        exited_within(&mut node, Duration::from_secs(8)).expect("flare outlived its grace");
    assert!(status.success(), "{status}");
    let left: Vec<_> = files_under(&data_dir.join("tmp"))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains("resumable"))
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
    // The URL was not spent: the client sends again to the restarted server.
    let node = Node::start(&data_dir, &[]);
    let res = node.send("PUT", &path, &[("Content-Type", "video/mp4")], &body);
    assert_eq!(res.status, 200, "{}", res.text());
}
