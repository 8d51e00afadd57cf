//! Signing keys given by the operator (`FLARE_SIGNING_KEY`, `signing_key_file`), so that nodes
//! agree: the first key signs, earlier ones still verify, a dropped key's URLs are refused, no
//! key file is written, and the keys never reach the log.

use crate::helpers::*;

const A: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="; // 32 x 'A'
const B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="; // 32 x 'B'

fn put(node: &Node, path: &str, body: &[u8]) -> Response {
    node.send("PUT", path, &[("Content-Type", "video/mp4")], body)
}

#[test]
fn a_configured_key_signs_earlier_ones_verify_and_a_dropped_one_is_refused() {
    let (_dir, data_dir, token) = data_dir_with_token("keys");
    let auth = format!("Bearer {token}");
    let mut node = Node::start(&data_dir, &[("FLARE_SIGNING_KEY", A)]);
    let port = node.port;
    let id1 = node.create_video(&auth, "one.mp4");
    let signed_by_a = node.upload_path(&auth, &id1, "one.mp4");
    let id2 = node.create_video(&auth, "two.mp4");
    let also_by_a = node.upload_path(&auth, &id2, "two.mp4");
    assert!(
        !data_dir.join("signing.key").exists(),
        "a key file was written"
    );
    // And fsck, given the same keys, does not call the missing file a problem.
    let fsck = run_flare(&data_dir, &["fsck", "--json"], &[("FLARE_SIGNING_KEY", A)]);
    let report: serde_json::Value = serde_json::from_slice(&fsck.stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let log = node.log_text();
    assert!(log.contains("signing with key "), "{log}");
    assert!(!log.contains(A), "the key reached the log");
    node.kill();

    // Rotated: B signs, A still verifies.
    let mut node = Node::start_on(
        &data_dir,
        port,
        &[("FLARE_SIGNING_KEY", &format!("{B},{A}"))],
    );
    assert_eq!(put(&node, &signed_by_a, b"first").status, 200);
    let id3 = node.create_video(&auth, "three.mp4");
    let signed_by_b = node.upload_path(&auth, &id3, "three.mp4");
    assert!(
        node.log_text().contains("earlier keys"),
        "{}",
        node.log_text()
    );
    node.kill();

    // A dropped: its URLs are refused as not signed by this server; B's work.
    let node = Node::start_on(&data_dir, port, &[("FLARE_SIGNING_KEY", B)]);
    let res = put(&node, &also_by_a, b"second");
    assert_eq!(
        (res.status, res.error_code()),
        (403, "signature-mismatch".to_string()),
        "{}",
        res.text()
    );
    assert_eq!(put(&node, &signed_by_b, b"third").status, 200);
    let got = node.send(
        "GET",
        &format!("/media/{id3}/composite/three.mp4"),
        &[],
        b"",
    );
    assert_eq!(got.body, b"third");
}

#[test]
fn a_key_file_works_and_a_bad_key_stops_the_start_without_echoing_it() {
    let (dir, data_dir, token) = data_dir_with_token("keys");
    let file = dir.path().join("signing-keys");
    std::fs::write(&file, format!("{A}\n")).unwrap();
    let node = Node::start(
        &data_dir,
        &[("FLARE_SIGNING_KEY_FILE", file.to_str().unwrap())],
    );
    let auth = format!("Bearer {token}");
    let (id, _) = node.upload(&auth, "a.mp4", b"bytes");
    assert!(!id.is_empty());
    assert!(!data_dir.join("signing.key").exists());
    drop(node);

    let short = "c2hvcnQ="; // "short"
    let out = run_flare(
        &data_dir,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("FLARE_SIGNING_KEY", short)],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("FLARE_SIGNING_KEY: key 1 is not 32 or more bytes"),
        "{err}"
    );
    assert!(!err.contains(short), "the key was echoed: {err}");
}
