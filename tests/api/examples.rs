//! The documented presign page's curl, node and python examples, pointed at a local node, get
//! the documented response, and the PUT that follows serves back identical bytes.
//!
//! Each example needs its tool (curl; node ≥ 18; python3 with `requests`). `.ci/run` installs
//! them and sets FLARE_REQUIRE_EXAMPLES=true; elsewhere a missing tool skips that example with
//! a message, except under CI=true or FLARE_REQUIRE_EXAMPLES=true, where it fails.

use crate::helpers::{sample, TestApp};
use serde_json::{json, Value};
use std::process::Command;

fn example(app: &TestApp, program: &str, script: &str) -> Option<Value> {
    run(app, program, script, "").map(|out| {
        serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}): {out}"))
    })
}

/// Runs an example script against `app`; its stdout, or None when its tool is missing here.
fn run(app: &TestApp, program: &str, script: &str, video_id: &str) -> Option<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/examples/");
    let out = Command::new(program)
        .arg(format!("{path}{script}"))
        .env("FLARE_URL", &app.base)
        .env("FLARE_TOKEN", &app.token)
        .env("VIDEO_ID", video_id)
        .output();
    let out = match out {
        Ok(out) if out.status.success() => out,
        other => {
            let why = match other {
                Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                Err(e) => e.to_string(),
            };
            if ["CI", "FLARE_REQUIRE_EXAMPLES"]
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|v| v == "true"))
            {
                panic!("{program} {script} failed under CI: {why}");
            }
            eprintln!("SKIPPED the {script} example: {program} could not run it ({why})");
            return None;
        }
    };
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn the_documented_examples_get_the_documented_response() {
    let app = TestApp::spawn();
    let res = app.api(
        "POST",
        "/api/video/create",
        Some(json!({ "fileName": "demo.mp4", "s3Key": "VIDEO_ID" })),
    );
    assert_eq!(res.status, 201);
    let public = format!("{}/media/VIDEO_ID/composite/demo.mp4", app.base);
    for (i, (program, script)) in [
        ("bash", "presign.sh"),
        ("node", "presign.mjs"),
        ("python3", "presign.py"),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(got) = example(&app, program, script) else {
            continue;
        };
        let keys: Vec<&str> = got
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["expiresAt", "headers", "method", "publicUrl", "uploadUrl"],
            "{script}"
        );
        assert_eq!(got["method"], "PUT", "{script}");
        assert_eq!(
            got["headers"],
            json!({ "Content-Type": "video/mp4" }),
            "{script}"
        );
        assert_eq!(got["publicUrl"], public, "{script}");

        let body = sample(100_000 + i);
        let put = app.put(got["uploadUrl"].as_str().unwrap(), "video/mp4", &body);
        assert_eq!(put.status, 200, "{script}: {}", put.text());
        let served = app.send("GET", &app.local(&public), &[], b"");
        assert!(served.body == body, "{script}: served bytes differ");
    }
}

#[test]
fn the_hosted_docs_examples_work_with_only_the_base_url_changed() {
    let app = TestApp::spawn();
    for (program, script, id) in [
        ("bash", "hosted.sh", "vid_demo_123"),
        ("node", "hosted.mjs", "vid_demo_node"),
        ("python3", "hosted.py", "vid_demo_py"),
    ] {
        let Some(out) = run(&app, program, script, id) else {
            continue;
        };
        let bodies: Vec<Value> = out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{script}: not JSON ({e}): {l}"))
            })
            .collect();
        assert_eq!(bodies.len(), 4, "{script}: {out}");
        for body in &bodies {
            assert_eq!(body["success"], true, "{script}: {body}");
        }
        assert_eq!(bodies[0]["video"]["id"], id, "{script}");
        let listed = bodies[1]["videos"].as_array().unwrap();
        assert!(
            listed.iter().any(|v| v["id"] == id),
            "{script}: the new video is not listed"
        );
        assert_eq!(bodies[2]["video"]["title"], "Launch walkthrough");
        assert_eq!(bodies[2]["video"]["passwordProtected"], true);
        assert_eq!(bodies[3]["embedSettings"]["accentColor"], "#FF6702");
        assert_eq!(bodies[3]["embedSettings"]["embedBorderRadius"], 12);
    }
}
