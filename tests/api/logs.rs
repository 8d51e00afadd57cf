//! `log_format = "json"` and request ids: every line is one JSON object; the answer carries the
//! request id (the client's when harmless); lines written while handling a request name it; no
//! token or signature reaches the log.

use serde_json::Value;

use crate::helpers::*;

#[test]
fn json_lines_name_the_request_id_the_answer_carries_and_hold_no_secret() {
    let (_dir, data_dir, token) = data_dir_with_token("logs");
    let node = Node::start(&data_dir, &[("FLARE_LOG_FORMAT", "json")]);
    let auth = format!("Bearer {token}");
    let (id, _) = node.upload(&auth, "a.mp4", &sample(1000));
    let path = node.upload_path(&auth, &id, "b.mp4");

    let res = node.send(
        "DELETE",
        &format!("/api/video/{id}"),
        &[
            ("Authorization", &auth),
            ("X-Request-Id", "support-case-42"),
        ],
        b"",
    );
    assert_eq!(res.status, 200);
    assert_eq!(res.header("x-request-id"), Some("support-case-42"));
    // An id that could forge a line is replaced by one of flare's.
    let res = node.send("GET", "/healthz", &[("X-Request-Id", "a\"b")], b"");
    let made = res.header("x-request-id").unwrap().to_string();
    assert!(made != "a\"b" && flare::logging::acceptable_request_id(&made));

    let lines: Vec<Value> = (0..100)
        .find_map(|_| {
            let text = node.log_text();
            if text.contains(&made) {
                return Some(
                    text.lines()
                        .map(|l| {
                            serde_json::from_str(l)
                                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
                        })
                        .collect(),
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            None
        })
        .expect("the access line of /healthz");
    let deleted = lines
        .iter()
        .find(|l| l["message"].as_str().unwrap().starts_with("deleted video"))
        .expect("the deletion's line");
    assert_eq!(deleted["requestId"], "support-case-42", "{deleted}");
    assert_eq!(deleted["level"], "INFO");
    let access = lines
        .iter()
        .find(|l| l["source"] == "http" && l["message"].as_str().unwrap().contains("DELETE"))
        .unwrap();
    assert!(
        access["message"]
            .as_str()
            .unwrap()
            .ends_with("request=support-case-42"),
        "{access}"
    );
    let text = node.log_text();
    assert!(!text.contains(&token), "a token reached the log");
    assert!(!text.contains("sig="), "a signature reached the log");
    assert!(
        !text.contains(path.split('?').nth(1).unwrap()),
        "an upload URL's query reached the log"
    );
}
