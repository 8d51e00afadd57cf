//! `flare upload`: a file goes up resumably and comes back byte for byte; a killed run resumes
//! when the same command runs again, a killed server is waited out, and a refusal is the
//! server's own message with a non-zero exit.

use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::*;

fn upload_cmd(node: &Node, token: &str, state: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flare"));
    cmd.arg("upload")
        .args(args)
        .env("FLARE_SERVER", format!("http://127.0.0.1:{}", node.port))
        .env("FLARE_TOKEN", token)
        .env("FLARE_UPLOAD_STATE", state)
        .env_remove("FLARE_CONFIG")
        .current_dir(state.parent().unwrap());
    cmd
}

fn served(node: &Node, v: &Value) -> String {
    let url = v["publicUrl"].as_str().unwrap();
    let path = format!("/{}", url.splitn(4, '/').nth(3).unwrap());
    sha256_hex(&node.send("GET", &path, &[], b"").body)
}

#[test]
fn a_file_goes_up_and_is_served_byte_for_byte() {
    let (dir, data_dir, token) = data_dir_with_token("cli-up");
    let node = Node::start(&data_dir, &[]);
    let state = dir.path().join("state");
    let file = dir.path().join("Lab meeting.mp4");
    let bytes = sample(3 << 20);
    std::fs::write(&file, &bytes).unwrap();
    let out = upload_cmd(
        &node,
        &token,
        &state,
        &[file.to_str().unwrap(), "--json", "--chunk-size", "1000000"],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sha256"], Value::from(sha256_hex(&bytes)));
    assert_eq!(served(&node, &v), sha256_hex(&bytes));
    assert_eq!(v["sentBytes"], Value::from(bytes.len()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("(100 %)"), "no progress line: {stderr}");
    // Finished uploads leave no state behind.
    assert_eq!(files_under(&state), Vec::<std::path::PathBuf>::new());
    // Without --json: the public URL alone on stdout.
    let out = upload_cmd(
        &node,
        &token,
        &state,
        &[file.to_str().unwrap(), "--title", "Week 3"],
    )
    .output()
    .unwrap();
    let url = String::from_utf8(out.stdout).unwrap();
    assert!(
        url.trim().ends_with("/composite/Lab%20meeting.mp4") || url.contains("/composite/Lab"),
        "{url}"
    );
}

#[test]
fn a_refusal_is_the_servers_message_and_leaves_no_video() {
    let (dir, data_dir, token) = data_dir_with_token("cli-refused");
    let node = Node::start(&data_dir, &[]);
    let state = dir.path().join("state");
    let notes = dir.path().join("notes.txt");
    std::fs::write(&notes, b"not a video").unwrap();
    let out = upload_cmd(&node, &token, &state, &[notes.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported-file-type"), "{stderr}");
    let list = node.send(
        "GET",
        "/api/videos",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(
        list.json()["videos"],
        Value::Array(vec![]),
        "a refused upload left a video"
    );
    let out = upload_cmd(&node, "flr_pat_wrong", &state, &[notes.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid-token"));
}

/// Waits until the server has part, not all, of the upload on disk (read from the part file:
/// a HEAD would ask the running request to stop).
fn wait_for_part(data_dir: &std::path::Path, size: usize, child: &mut Child) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "the upload never got under way");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the upload ended before it could be cut"
        );
        let written = session_bytes(data_dir).1 as usize;
        if written > (1 << 20) && written < size {
            return written;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_killed_run_resumes_when_the_same_command_runs_again() {
    let (dir, data_dir, token) = data_dir_with_token("cli-resume");
    let node = Node::start(&data_dir, &[]);
    let state = dir.path().join("state");
    let file = dir.path().join("rec.mp4");
    let bytes = sample(64 << 20);
    std::fs::write(&file, &bytes).unwrap();
    let args = [file.to_str().unwrap(), "--json", "--chunk-size", "262144"];
    let mut first = upload_cmd(&node, &token, &state, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let at = wait_for_part(&data_dir, bytes.len(), &mut first);
    first.kill().unwrap();
    first.wait().unwrap();
    let out = upload_cmd(&node, &token, &state, &args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming at"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // What was on disk when the run was killed, less at most the request then running.
    assert!(
        v["resumedFrom"].as_u64().unwrap() + 262_144 >= at as u64,
        "{v} after {at}"
    );
    assert_eq!(served(&node, &v), sha256_hex(&bytes));
    let list = node.send(
        "GET",
        "/api/videos",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(
        list.json()["videos"].as_array().unwrap().len(),
        1,
        "resuming made a second video"
    );
}

#[test]
fn a_server_killed_mid_upload_is_waited_out() {
    let (dir, data_dir, token) = data_dir_with_token("cli-server-kill");
    let mut node = Node::start(&data_dir, &[]);
    let port = node.port;
    let state = dir.path().join("state");
    let file = dir.path().join("rec.mp4");
    let bytes = sample(64 << 20);
    std::fs::write(&file, &bytes).unwrap();
    let mut run = upload_cmd(
        &node,
        &token,
        &state,
        &[file.to_str().unwrap(), "--json", "--chunk-size", "262144"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    wait_for_part(&data_dir, bytes.len(), &mut run);
    node.kill_quietly();
    std::thread::sleep(Duration::from_millis(500));
    let node = Node::start_on(&data_dir, port, &[]);
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("retrying"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(served(&node, &v), sha256_hex(&bytes));
}
