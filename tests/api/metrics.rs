//! `/metrics` on `metrics_listen`: requests by route and status, upload outcomes by refusal
//! code, bytes, free disk, in Prometheus text; not on the API's address.

use crate::helpers::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of the one sample whose line starts with `prefix`.
fn sample_value(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no sample {prefix}\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn metrics_count_requests_and_upload_refusals_on_their_own_address() {
    let (_dir, data_dir, token) = data_dir_with_token("metrics");
    let port = free_port();
    let node = Node::start(
        &data_dir,
        &[("FLARE_METRICS_LISTEN", &format!("127.0.0.1:{port}"))],
    );
    let auth = format!("Bearer {token}");
    let body = sample(100_000);
    let (id, public) = node.upload(&auth, "a.mp4", &body);
    let path = node.upload_path(&auth, &id, "b.mp4");
    let tampered = path.replace("sig=", "sig=x");
    assert_eq!(
        node.send("PUT", &tampered, &[("Content-Type", "video/mp4")], b"x")
            .status,
        403
    );
    assert_eq!(node.send("GET", &public, &[], b"").body, body);

    let scrape = raw_to(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(scrape.status, 200);
    assert!(scrape
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = scrape.text();
    let presigns = sample_value(
        &text,
        "flare_http_requests_total{route=\"/api/video/upload/presign\",method=\"POST\",status=\"200\"}",
    );
    assert_eq!(presigns, 2.0);
    assert_eq!(
        sample_value(&text, "flare_upload_outcomes_total{code=\"ok\"}"),
        1.0
    );
    assert_eq!(
        sample_value(
            &text,
            "flare_upload_outcomes_total{code=\"signature-mismatch\"}"
        ),
        1.0
    );
    assert!(sample_value(&text, "flare_http_received_bytes_total") >= body.len() as f64);
    assert!(sample_value(&text, "flare_http_sent_bytes_total") >= body.len() as f64);
    assert!(sample_value(&text, "flare_free_disk_bytes") > 0.0);
    assert_eq!(sample_value(&text, "flare_uploads_in_progress"), 0.0);
    assert!(
        text.contains("flare_http_request_duration_seconds_bucket{le="),
        "{text}"
    );
    assert!(
        text.contains("flare_db_commit_duration_seconds_count"),
        "{text}"
    );
    // Ids never become series: routes are patterns.
    assert!(!text.contains(&id), "a video id is in the metrics");
    // Every series docs/grafana-dashboard.json reads is served.
    let dashboard = include_str!("../../docs/grafana-dashboard.json");
    for name in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if name.starts_with("flare_") {
            assert!(
                text.contains(name),
                "the dashboard reads {name}, which /metrics lacks"
            );
        }
    }
    // The API's own address has no /metrics.
    assert_eq!(node.send("GET", "/metrics", &[], b"").status, 404);
}
