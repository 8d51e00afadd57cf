//! HTTPS served by flare itself: the handshake with the configured certificate, HTTP/2 by
//! ALPN, the whole upload flow and Range over TLS, the certificate swapped on SIGHUP, and
//! settings that cannot work refused at start with the file named.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::*;

/// A self-signed certificate for 127.0.0.1 and localhost, its subject `CN=name`, written as
/// `name.crt` and `name.key` in `dir`.
fn make_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (crt, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .output()
        .expect("openssl is needed to make the test's certificates");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (crt, key)
}

/// curl over HTTPS trusting only `ca`; returns (status line's code, body, curl's stderr).
fn curl(ca: &Path, args: &[&str]) -> (String, Vec<u8>, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "30",
            "-w",
            "\n%{http_code} %{http_version}",
        ])
        .arg("--cacert")
        .arg(ca)
        .args(args)
        .output()
        .expect("curl is needed for the TLS tests");
    let mut body = out.stdout;
    let at = body.iter().rposition(|&b| b == b'\n').unwrap();
    let tail = String::from_utf8_lossy(&body[at + 1..]).to_string();
    body.truncate(at);
    (tail, body, String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn the_upload_flow_and_range_work_over_https_with_http2() {
    let certs = tempfile::tempdir().unwrap();
    let (crt, key) = make_cert(certs.path(), "flare-test");
    let app = TestApp::spawn_with(|s| {
        s.tls_cert = Some(crt.clone());
        s.tls_key = Some(key.clone());
    });
    let base = format!("https://127.0.0.1:{}", app.port);
    assert_eq!(app.base, base);
    let auth = format!("Authorization: Bearer {}", app.token);

    // HTTP/2 is chosen by ALPN when the client offers it; HTTP/1.1 still works.
    let (tail, _, _) = curl(&crt, &["--http2", &format!("{base}/healthz")]);
    assert_eq!(tail, "200 2", "HTTP/2 over TLS");
    let (tail, _, _) = curl(&crt, &["--http1.1", &format!("{base}/healthz")]);
    assert_eq!(tail, "200 1.1");

    // The links flare hands out are https:// on its own address.
    let (tail, body, _) = curl(
        &crt,
        &[
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"fileName":"talk.mp4"}"#,
            &format!("{base}/api/video/create"),
        ],
    );
    assert_eq!(tail, "201 2", "{}", String::from_utf8_lossy(&body));
    let created: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = created["video"]["id"].as_str().unwrap();
    let presign_body = format!(r#"{{"videoId":"{id}","fileName":"talk.mp4"}}"#);
    let (tail, body, _) = curl(
        &crt,
        &[
            "-X",
            "POST",
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data",
            &presign_body,
            &format!("{base}/api/video/upload/presign"),
        ],
    );
    assert_eq!(tail, "200 2", "{}", String::from_utf8_lossy(&body));
    let presign: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let upload_url = presign["uploadUrl"].as_str().unwrap();
    let public_url = presign["publicUrl"].as_str().unwrap();
    assert!(
        upload_url.starts_with(&format!("{base}/upload/")),
        "{upload_url}"
    );
    assert!(
        public_url.starts_with(&format!("{base}/media/")),
        "{public_url}"
    );

    let video = sample(3 << 20);
    let file = certs.path().join("talk.mp4");
    std::fs::write(&file, &video).unwrap();
    let (tail, body, _) = curl(
        &crt,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: video/mp4",
            "--data-binary",
            &format!("@{}", file.display()),
            upload_url,
        ],
    );
    assert_eq!(tail, "200 2", "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        std::fs::read(app.object_path(id, "talk.mp4")).unwrap(),
        video
    );

    // Served back whole over HTTP/2 and HTTP/1.1, and a Range.
    let (tail, body, _) = curl(&crt, &["--http2", public_url]);
    assert_eq!(tail, "200 2");
    assert!(
        body == video,
        "the object over HTTP/2 differs from what was uploaded"
    );
    let (tail, body, _) = curl(&crt, &["--http1.1", "-r", "1000-1999", public_url]);
    assert_eq!(tail, "206 1.1");
    assert_eq!(body, &video[1000..2000]);
    // The sendfile path cannot encrypt: none of it went that way.
    assert_eq!(app.sendfile_answers(), 0);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let got = std::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{}/healthz", app.port))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "000");
}

/// The subject CN the server at `port` presents.
fn served_cn(port: u16) -> String {
    let out = Command::new("curl")
        .args(["-sk", "-v", "--max-time", "10", "-o", "/dev/null"])
        .arg(format!("https://127.0.0.1:{port}/healthz"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.contains("subject:"))
        .unwrap_or_else(|| panic!("no certificate subject in curl's output:\n{err}"));
    line.split("CN=").nth(1).unwrap().trim().to_string()
}

#[test]
fn sighup_swaps_the_certificate_and_a_broken_one_is_refused_with_the_old_kept() {
    let (_dir, data_dir, _token) = data_dir_with_token("tls");
    let certs = tempfile::tempdir().unwrap();
    let (crt, key) = make_cert(certs.path(), "first");
    let (crt2, key2) = make_cert(certs.path(), "renewed");
    let live_crt = certs.path().join("live.crt");
    let live_key = certs.path().join("live.key");
    std::fs::copy(&crt, &live_crt).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let node = Node::start(
        &data_dir,
        &[
            ("FLARE_TLS_CERT", live_crt.to_str().unwrap()),
            ("FLARE_TLS_KEY", live_key.to_str().unwrap()),
        ],
    );
    assert!(
        node.log_text().contains("listening on https://"),
        "{}",
        node.log_text()
    );
    assert_eq!(served_cn(node.port), "first");

    let hup = |node: &Node| {
        let ok = Command::new("kill")
            .args(["-HUP", &node.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        std::thread::sleep(std::time::Duration::from_millis(500));
    };
    // Renewed: the next connection gets the new certificate, no restart.
    std::fs::copy(&crt2, &live_crt).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    hup(&node);
    assert_eq!(served_cn(node.port), "renewed");

    // Half-written (a key that does not match): refused, the working one stays, the log says why.
    std::fs::copy(&key, &live_key).unwrap();
    hup(&node);
    assert_eq!(served_cn(node.port), "renewed");
    let log = node.log_text();
    assert!(log.contains("SIGHUP: kept the certificate in use"), "{log}");
    assert!(log.contains("live.crt"), "{log}");
}

#[test]
fn tls_settings_that_cannot_work_stop_the_start_and_name_the_file() {
    let (_dir, data_dir, _token) = data_dir_with_token("tls");
    let certs = tempfile::tempdir().unwrap();
    let (crt, _key) = make_cert(certs.path(), "one");
    // Only half of the pair.
    let out = run_flare(
        &data_dir,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            crt.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_cert is set but tls_key is not"), "{err}");
    // A key file that is not a key.
    let out = run_flare(
        &data_dir,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            crt.to_str().unwrap(),
            "--tls-key",
            crt.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tls_key") && err.contains("one.crt"), "{err}");
}

#[test]
fn doctor_checks_the_pair_and_a_public_url_that_is_not_https() {
    let (_dir, data_dir, _token) = data_dir_with_token("tls");
    let certs = tempfile::tempdir().unwrap();
    let (crt, key) = make_cert(certs.path(), "one");
    let (_, other_key) = make_cert(certs.path(), "two");
    let report = |key: &Path, public: &str| {
        let out = run_flare(
            &data_dir,
            &["doctor", "--json"],
            &[
                ("FLARE_TLS_CERT", crt.to_str().unwrap()),
                ("FLARE_TLS_KEY", key.to_str().unwrap()),
                ("FLARE_PUBLIC_URL", public),
            ],
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let tls: Vec<serde_json::Value> = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["name"] == "TLS")
            .cloned()
            .collect();
        (out.status, tls)
    };
    // (The data folder has no signing key yet, so the whole report fails: only TLS is read.)
    let (_, tls) = report(&key, "https://videos.lab.example");
    assert_eq!(tls.len(), 1);
    assert_eq!(tls[0]["status"], "ok");

    let (_, tls) = report(&key, "http://videos.lab.example");
    assert_eq!(tls[1]["status"], "fail", "{tls:?}");
    assert_eq!(
        tls[1]["fix"],
        "set public_url to https://videos.lab.example"
    );

    let (_, tls) = report(&other_key, "https://videos.lab.example");
    assert_eq!(tls[0]["status"], "fail", "{tls:?}");
    assert!(
        tls[0]["detail"]
            .as_str()
            .unwrap()
            .contains("do not make a usable pair"),
        "{tls:?}"
    );
}
