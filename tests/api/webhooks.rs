//! Webhooks: a receiver in the test gets video.created, video.ready, video.updated and
//! video.deleted in order, each signed as Standard Webhooks says; a 500 is retried with the same
//! message id; the outbox shows each delivery; `flare webhook test` sends a signed test.

use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::helpers::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

/// A receiver answering 500 to its first request and 200 after; what it got.
fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    receiver_failing_first(true)
}

fn receiver_failing_first(fail_first: bool) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut len, mut r) = (
                0usize,
                Received {
                    id: String::new(),
                    timestamp: String::new(),
                    signature: String::new(),
                    body: String::new(),
                },
            );
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let (k, v) = line.split_once(':').unwrap_or((&line, ""));
                let v = v.trim().to_string();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.parse().unwrap(),
                    "webhook-id" => r.id = v,
                    "webhook-timestamp" => r.timestamp = v,
                    "webhook-signature" => r.signature = v,
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            r.body = String::from_utf8(body).unwrap();
            let first = {
                let mut g = sink.lock().unwrap();
                g.push(r);
                g.len() == 1
            };
            let status = if first && fail_first {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, got)
}

fn verify(r: &Received) -> bool {
    verify_with(r, SECRET)
}

fn verify_with(r: &Received, secret: &str) -> bool {
    use ring::hmac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, &key),
        format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes(),
    );
    r.signature
        == format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
}

#[test]
fn events_arrive_signed_in_order_and_a_failure_is_retried() {
    let (url, got) = receiver();
    let (dir, data_dir, token) = data_dir_with_token("hooks");
    let config = dir.path().join("flare.toml");
    std::fs::write(
        &config,
        format!("[[webhook]]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n"),
    )
    .unwrap();
    let node = Node::start(&data_dir, &[("FLARE_CONFIG", config.to_str().unwrap())]);
    let auth = format!("Bearer {token}");
    let (id, _) = node.upload(&auth, "a.mp4", &sample(1000));
    let renamed = node.send(
        "PATCH",
        &format!("/api/video/update/{id}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        br#"{"title": "Renamed"}"#,
    );
    assert_eq!(renamed.status, 200);
    assert_eq!(
        node.send(
            "DELETE",
            &format!("/api/video/{id}"),
            &[("Authorization", &auth)],
            b""
        )
        .status,
        200
    );

    let start = std::time::Instant::now();
    while got.lock().unwrap().len() < 5 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            got.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let got = got.lock().unwrap().clone();
    let types: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        types,
        [
            "video.created",
            "video.created",
            "video.ready",
            "video.updated",
            "video.deleted"
        ]
    );
    assert_eq!(got[0].id, got[1].id, "a retry keeps its message id");
    assert!(got.iter().all(verify), "a signature does not verify");
    let ready: Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(ready["data"]["id"], id.as_str());
    assert_eq!(ready["data"]["status"], "ready");
    assert_eq!(
        serde_json::from_str::<Value>(&got[3].body).unwrap()["data"]["title"],
        "Renamed"
    );

    let out = run_flare(&data_dir, &["webhook", "deliveries", "--json"], &[]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let created = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["event"] == "video.created")
        .unwrap();
    assert_eq!(
        (created["state"].as_str(), created["attempts"].as_i64()),
        (Some("delivered"), Some(2))
    );
    assert_eq!(created["lastStatus"], 200);

    // A test message, signed with the configured secret.
    let out = run_flare(
        &data_dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "webhook",
            "test",
            &url,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("answered 200"));
}

fn wait_for(got: &Arc<Mutex<Vec<Received>>>, n: usize) -> Vec<Received> {
    let start = std::time::Instant::now();
    while got.lock().unwrap().len() < n {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            got.lock().unwrap()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    got.lock().unwrap().clone()
}

#[test]
fn webhooks_made_through_the_api_get_their_events_and_upload_failed() {
    use flare::domain::tokens::Scope;
    use serde_json::json;
    let (url, got) = receiver_failing_first(false);
    let app = TestApp::spawn();

    // Without the scope: 403 naming it.
    let (reader, _) = app.new_token(&[Scope::VideosRead, Scope::VideosWrite], None);
    let res = app.api_as(&reader, "GET", "/api/webhooks", None);
    assert_eq!(res.status, 403);
    assert!(res.text().contains("webhooks:write"), "{}", res.text());

    // Refusals name the field.
    let res = app.api(
        "POST",
        "/api/webhooks",
        Some(json!({ "url": "ftp://x.example/" })),
    );
    assert_eq!(
        (res.status, res.error_code()),
        (400, "invalid-field".to_string())
    );
    assert!(res.text().contains("url"), "{}", res.text());
    let res = app.api(
        "POST",
        "/api/webhooks",
        Some(json!({ "url": url, "events": ["video.exploded"] })),
    );
    assert_eq!(res.status, 400);
    assert!(res.text().contains("video.exploded"), "{}", res.text());
    let res = app.api(
        "POST",
        "/api/webhooks",
        Some(json!({ "url": url, "secret": "hunter2" })),
    );
    assert_eq!(res.status, 400);
    assert!(
        res.text().contains("secret must be whsec_"),
        "{}",
        res.text()
    );

    // Made: the secret is shown this once.
    let res = app.api(
        "POST",
        "/api/webhooks",
        Some(json!({ "url": url, "events": ["video.ready", "upload.failed"] })),
    );
    assert_eq!(res.status, 201, "{}", res.text());
    let hook = res.json()["webhook"].clone();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["source"], "api");
    let again = app.api("POST", "/api/webhooks", Some(json!({ "url": url })));
    assert_eq!(again.status, 409, "{}", again.text());
    let listed = app.api("GET", "/api/webhooks", None);
    assert_eq!(listed.status, 200);
    let listed = listed.json()["webhooks"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["id"], hook["id"]);
    assert!(listed[0].get("secret").is_none(), "{listed}");
    assert!(!listed.to_string().contains(&secret));

    // A good upload: video.ready (video.created was not asked for).
    let (id, _) = app.upload("a.mp4", &sample(1000));
    // An upload cut off while its body came: upload.failed, with the refusal.
    let id2 = app.create_video("b.mp4");
    let p = app.presign(json!({ "videoId": id2, "fileName": "b.mp4", "size": 1000 }));
    let path = app.local(p["uploadUrl"].as_str().unwrap());
    let mut raw = format!(
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: video/mp4\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        3000
    )
    .into_bytes();
    raw.extend(sample(3000));
    raw.extend(b"\r\n0\r\n\r\n");
    let refused = raw_to(app.port, &raw);
    assert_eq!(refused.status, 413, "{}", refused.text());

    let got = wait_for(&got, 2);
    assert!(
        got.iter().all(|r| verify_with(r, &secret)),
        "a signature does not verify"
    );
    let bodies: Vec<Value> = got
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["type"], "video.ready");
    assert_eq!(bodies[0]["data"]["id"], id.as_str());
    assert_eq!(bodies[1]["type"], "upload.failed");
    assert_eq!(bodies[1]["data"]["id"], id2.as_str());
    assert_eq!(bodies[1]["data"]["fileName"], "b.mp4");
    assert_eq!(bodies[1]["data"]["error"]["code"], refused.error_code());

    // The attempts, through the API.
    let start = std::time::Instant::now();
    let deliveries = loop {
        let res = app.api("GET", "/api/webhooks/deliveries?limit=10", None);
        assert_eq!(res.status, 200);
        let list = res.json()["deliveries"].clone();
        if list
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["state"] == "delivered")
        {
            break list;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{list}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(deliveries.as_array().unwrap().len(), 2);
    assert_eq!(deliveries[0]["event"], "upload.failed");
    assert_eq!(deliveries[0]["attempts"], 1);
    assert_eq!(deliveries[0]["lastStatus"], 200);
    let res = app.api("GET", "/api/webhooks/deliveries?limit=0", None);
    assert_eq!(res.status, 400);
    assert!(res.text().contains("limit"), "{}", res.text());

    // Deleted: gone from the list, and a second delete is 404.
    let hook_id = hook["id"].as_str().unwrap();
    let res = app.api("DELETE", &format!("/api/webhooks/{hook_id}"), None);
    assert_eq!(res.status, 200, "{}", res.text());
    let res = app.api("GET", "/api/webhooks", None);
    assert_eq!(res.json()["webhooks"], json!([]));
    let res = app.api("DELETE", &format!("/api/webhooks/{hook_id}"), None);
    assert_eq!(res.status, 404);
}
