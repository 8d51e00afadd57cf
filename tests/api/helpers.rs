//! A flare started in-process on port 0 with a temporary data folder, and a small HTTP/1.1
//! client over a plain TCP socket, so tests control every byte (short bodies, chunked uploads,
//! duplicate headers) and see every byte of the answer.

use flare::config::{RawSettings, Settings};
use flare::db::Db;
use flare::domain::tokens::Scope;
use flare::http::startup::Application;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

pub struct TestApp {
    pub port: u16,
    pub base: String,
    pub dir: TempDir,
    /// A token with every scope.
    pub token: String,
    pub db: Db,
    server: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    sendfile_answers: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for TestApp {
    /// The server stops with its test: no test leaves one running.
    fn drop(&mut self) {
        self.stop();
    }
}

impl TestApp {
    pub fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {})
    }

    /// Starts flare with the test's own settings laid over the defaults.
    pub fn spawn_with(tweak: impl FnOnce(&mut RawSettings)) -> TestApp {
        TestApp::start(tempfile::tempdir().unwrap(), tweak)
    }

    /// Another server on this one's data folder, as after a restart: this one stops first
    /// (one server per data folder).
    pub fn restart(self) -> TestApp {
        self.restart_with(|_| {})
    }

    /// As `restart`, with the test's own settings.
    pub fn restart_with(mut self, tweak: impl FnOnce(&mut RawSettings)) -> TestApp {
        self.stop();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        TestApp::start(dir, tweak)
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            actix_web::rt::System::new().block_on(self.server.stop(false));
            let _ = thread.join();
        }
    }

    /// Responses this server's sendfile path has sent whole.
    pub fn sendfile_answers(&self) -> u64 {
        self.sendfile_answers
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// flare on `dir/data`, which the test may have prepared (a small file system, say).
    pub fn start(dir: TempDir, tweak: impl FnOnce(&mut RawSettings)) -> TestApp {
        let mut raw = RawSettings {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.path().join("data")),
            sync_uploads: Some(false),
            log_level: Some("off".into()),
            workers: Some(1),
            // No ffmpeg jobs unless a test asks (tests/api/media_jobs.rs): most tests store
            // random bytes, and their records stay as they were.
            ffmpeg_path: Some("off".into()),
            faststart: Some(false),
            ..RawSettings::default()
        };
        if let Some((endpoint, bucket)) = test_bucket(&dir.path().join("data")) {
            raw.s3 = Some(flare::config::RawS3 {
                endpoint: Some(endpoint),
                bucket: Some(bucket),
                ..Default::default()
            });
        }
        let database = test_database(&dir.path().join("data"));
        raw.database_url = database.clone().map(flare::config::Secret);
        tweak(&mut raw);
        let settings = Settings::resolve([raw]).unwrap();
        let scheme = settings.scheme();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings).await.unwrap();
                tx.send((app.port(), app.handle(), app.sendfile_answers()))
                    .unwrap();
                app.run_until_stopped().await.unwrap();
            })
        });
        let (port, server, sendfile_answers) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("flare did not start");
        let db = match &database {
            Some(url) => Db::open_url(url).unwrap(),
            None => Db::open(&dir.path().join("data/flare.db")).unwrap(),
        };
        let mut app = TestApp {
            port,
            base: format!("{scheme}://127.0.0.1:{port}"),
            dir,
            token: String::new(),
            db,
            server,
            thread: Some(thread),
            sendfile_answers,
        };
        app.token = app.new_token(&Scope::ALL, None).0;
        app
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A new token with these scopes; returns the secret and the public id.
    pub fn new_token(&self, scopes: &[Scope], expires_at: Option<i64>) -> (String, String) {
        let (secret, row) =
            flare::cli::commands::create_token(&self.db, "test", scopes, expires_at).unwrap();
        (secret.expose().to_string(), row.id)
    }

    /// Revokes as `flare token revoke` does.
    pub fn revoke(&self, token_id: &str) {
        let (_, revoked) = flare::cli::commands::revoke_token(&self.db, token_id).unwrap();
        assert!(revoked);
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        send_to(self.port, method, path, headers, body)
    }

    /// Authenticated JSON request with the all-scopes token.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        self.api_as(&self.token, method, path, body)
    }

    pub fn api_as(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Response {
        let auth = format!("Bearer {token}");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    /// Creates a video and returns its id.
    pub fn create_video(&self, file_name: &str) -> String {
        let res = self.api(
            "POST",
            "/api/video/create",
            Some(serde_json::json!({ "fileName": file_name })),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        res.json()["video"]["id"].as_str().unwrap().to_string()
    }

    /// Presigns and returns the response body.
    pub fn presign(&self, body: Value) -> Value {
        let res = self.api("POST", "/api/video/upload/presign", Some(body));
        assert_eq!(res.status, 200, "{}", res.text());
        res.json()
    }

    /// The path and query of an absolute URL on this server.
    pub fn local(&self, url: &str) -> String {
        url.strip_prefix(&self.base)
            .unwrap_or_else(|| panic!("{url} is not on {}", self.base))
            .to_string()
    }

    pub fn put(&self, upload_url: &str, content_type: &str, body: &[u8]) -> Response {
        self.send(
            "PUT",
            &self.local(upload_url),
            &[("Content-Type", content_type)],
            body,
        )
    }

    /// Creates a video, uploads `body` as `file_name` and returns (video id, public URL path).
    pub fn upload(&self, file_name: &str, body: &[u8]) -> (String, String) {
        let id = self.create_video(file_name);
        let p = self.presign(serde_json::json!({ "videoId": id, "fileName": file_name }));
        let res = self.put(
            p["uploadUrl"].as_str().unwrap(),
            p["headers"]["Content-Type"].as_str().unwrap(),
            body,
        );
        assert_eq!(res.status, 200, "{}", res.text());
        (id, self.local(p["publicUrl"].as_str().unwrap()))
    }

    /// Files under the data folder's tmp/, waiting (bounded) for removals done off-thread.
    pub fn temp_files_settled(&self) -> Vec<PathBuf> {
        let tmp = self.data_dir().join("tmp");
        // Files, at any depth: tmp/resumable/ is a folder that is always there.
        let list = || files_under(&tmp);
        for _ in 0..200 {
            if list().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        list()
    }

    /// Where a video's posters and renditions are: `objects/ID/derived`, or in its test bucket.
    pub fn derived_dir(&self, video_id: &str) -> PathBuf {
        match (test_bucket(&self.data_dir()), std::env::var("TEST_S3_ROOT")) {
            (Some((_, bucket)), Ok(root)) => PathBuf::from(root)
                .join(bucket)
                .join(video_id)
                .join("derived"),
            _ => self
                .data_dir()
                .join("objects")
                .join(video_id)
                .join("derived"),
        }
    }

    pub fn object_path(&self, video_id: &str, file_name: &str) -> PathBuf {
        if let Some(path) = object_in_bucket(&self.data_dir(), video_id, file_name) {
            return path;
        }
        self.data_dir()
            .join("objects")
            .join(video_id)
            .join("composite")
            .join(file_name)
    }
}

pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    parse_response(&buf)
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The error code of a spec-shaped error body, checking the shape on the way.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert_eq!(v["success"], false, "{v}");
        let message = v["error"]["message"].as_str().expect("error.message");
        assert!(!message.is_empty());
        v["error"]["code"].as_str().expect("error.code").to_string()
    }
}

/// Parses one response, skipping any `100 Continue` before it and undoing chunked framing.
pub fn parse_response(mut buf: &[u8]) -> Response {
    loop {
        let end = find(buf, b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
        let head = std::str::from_utf8(&buf[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_string(), v.trim().to_string())
            })
            .collect();
        let rest = &buf[end + 4..];
        if status == 100 {
            buf = rest;
            continue;
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        return Response {
            status,
            headers,
            body,
        };
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..eol]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Deterministic test bytes.
pub fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    flare::storage::hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

pub fn read_key(data_dir: &Path) -> ring::hmac::Key {
    flare::domain::signing::key_from_bytes(&std::fs::read(data_dir.join("signing.key")).unwrap())
}

/// One request on its own connection to a server on this port; the response is checked against
/// the OpenAPI document.
pub fn send_to(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"));
    let has_length = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    if !chunked && !has_length && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let res = raw_to(port, &bytes);
    crate::openapi::check(method, path, &res);
    res
}

/// Writes these bytes, then reads the answer to the end.
pub fn raw_to(port: u16, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // The server may answer and close before taking everything (a 413, say): keep going.
    let _ = stream.write_all(bytes);
    read_response(&mut stream)
}

/// The flare binary serving a data folder in a child process, for tests that kill it or read
/// its log. Its stderr is collected line by line.
pub struct Node {
    pub child: std::process::Child,
    pub port: u16,
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Node {
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        Node::start_on(data_dir, 0, env)
    }

    /// On a given port (0: any), so that a restarted server keeps its URLs.
    pub fn start_on(data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Node {
        Node::spawn(data_dir, port, env, true, true)
    }

    /// With its objects on disk even when the suite runs against a bucket (`tests/s3.sh`).
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    pub fn start_on_disk(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        Node::spawn(data_dir, 0, env, false, true)
    }

    /// As one box: SQLite and objects on disk, even when the suite runs on other backends.
    #[cfg_attr(not(all(feature = "postgres", feature = "s3")), allow(dead_code))]
    pub fn start_alone(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        Node::spawn(data_dir, 0, env, false, false)
    }

    fn spawn(
        data_dir: &Path,
        port: u16,
        env: &[(&str, &str)],
        bucket: bool,
        database: bool,
    ) -> Node {
        use std::io::BufRead;
        let listen = format!("127.0.0.1:{port}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_flare"))
            .args(["serve", "--listen", &listen])
            .env("FLARE_DATA_DIR", data_dir)
            .env("FLARE_LOG_LEVEL", "info")
            .env("FLARE_FFMPEG_PATH", "off")
            .env_remove("FLARE_CONFIG")
            .envs(if bucket {
                bucket_env(data_dir)
            } else {
                Vec::new()
            })
            .envs(if database {
                database_env(data_dir)
            } else {
                Vec::new()
            })
            .envs(env.iter().copied())
            .current_dir(data_dir.parent().unwrap())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let url = line.split("flare listening on ").nth(1);
                let port = url.and_then(|u| u.split("://").nth(1)).map(|rest| {
                    let addr = rest.split_whitespace().next().unwrap();
                    addr.rsplit(':').next().unwrap().parse::<u16>().unwrap()
                });
                // Logged before the port is told, so a test sees the line once started.
                sink.lock().unwrap().push(line);
                if let Some(port) = port {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("flare serve did not start");
        Node { child, port, log }
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        send_to(self.port, method, path, headers, body)
    }

    /// A new video record through the API: its id.
    pub fn create_video(&self, auth: &str, file_name: &str) -> String {
        let res = self.send(
            "POST",
            "/api/video/create",
            &[("Authorization", auth)],
            serde_json::json!({ "fileName": file_name })
                .to_string()
                .as_bytes(),
        );
        assert_eq!(res.status, 201, "{}", res.text());
        res.json()["video"]["id"].as_str().unwrap().to_string()
    }

    /// The path and query of a fresh upload URL for `file_name` on video `id`.
    pub fn upload_path(&self, auth: &str, id: &str, file_name: &str) -> String {
        let res = self.send(
            "POST",
            "/api/video/upload/presign",
            &[("Authorization", auth)],
            serde_json::json!({ "videoId": id, "fileName": file_name })
                .to_string()
                .as_bytes(),
        );
        assert_eq!(res.status, 200, "{}", res.text());
        let url = res.json()["uploadUrl"].as_str().unwrap().to_string();
        format!("/{}", url.splitn(4, '/').nth(3).unwrap())
    }

    /// A new video holding `body` as `file_name` (an mp4): its id and public path.
    pub fn upload(&self, auth: &str, file_name: &str, body: &[u8]) -> (String, String) {
        let id = self.create_video(auth, file_name);
        let path = self.upload_path(auth, &id, file_name);
        let res = self.send("PUT", &path, &[("Content-Type", "video/mp4")], body);
        assert_eq!(res.status, 200, "{}", res.text());
        let public = format!("/media/{id}/composite/{file_name}");
        (id, public)
    }

    /// kill -9.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Reaps a child that already ended.
    pub fn kill_quietly(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `flare ARGS…` on a data folder, run from the folder above it (so no flare.toml is read), on
/// the test bucket and database of that folder when the suite runs on them.
pub fn run_flare(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut all = bucket_env(data_dir);
    all.extend(database_env(data_dir));
    all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    run_flare_alone(data_dir, args, &all)
}

/// `flare ARGS…` on a data folder as one box (SQLite, objects on disk), whatever the suite runs
/// on: only `env` is added.
pub fn run_flare_alone(
    data_dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_flare"))
        .args(args)
        .envs(env.iter().copied())
        .env("FLARE_DATA_DIR", data_dir)
        .env_remove("FLARE_CONFIG")
        .current_dir(data_dir.parent().unwrap())
        .output()
        .unwrap()
}

/// `run_flare` that must succeed; its stdout.
pub fn flare_cli(data_dir: &Path, args: &[&str]) -> String {
    flare_cli_env(data_dir, args, &[])
}

/// `flare_cli` with these variables set too.
pub fn flare_cli_env(data_dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    succeeded(args, run_flare(data_dir, args, env))
}

/// The stdout of a `flare ARGS…` that must have succeeded.
pub fn succeeded(args: &[&str], out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "flare {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A fresh temporary folder with a `data/` folder made by `flare token create`, and that token
/// (every scope), for tests that run the binary: (folder, data folder, token).
pub fn data_dir_with_token(name: &str) -> (TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let token = flare_cli(&data, &["token", "create", "--name", name])
        .trim()
        .to_string();
    (dir, data, token)
}

/// Every file under `dir`, at any depth.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Makes `name` in `dir` with ffmpeg (`.ci/run` installs Debian's) and returns its bytes.
pub fn ffmpeg_make(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let out = dir.join(name);
    let status = std::process::Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error"])
        .args(args)
        .arg(&out)
        .status()
        .expect("ffmpeg is needed for these tests (.ci/run installs Debian's)");
    assert!(status.success(), "ffmpeg failed to make {name}");
    std::fs::read(out).unwrap()
}

/// With `TEST_S3_ENDPOINT` and `TEST_S3_ROOT` set (`.ci/run`'s S3 stage, which starts s3s-fs
/// serving `TEST_S3_ROOT`, whose buckets are its folders), every flare a test starts keeps its
/// objects in a bucket of its own: named after its data folder, so a restarted server, a second
/// node or a command on the same folder finds the same bucket. (endpoint, bucket)
pub fn test_bucket(data_dir: &Path) -> Option<(String, String)> {
    if !cfg!(feature = "s3") {
        return None;
    }
    let endpoint = std::env::var("TEST_S3_ENDPOINT").ok()?;
    let root = PathBuf::from(std::env::var("TEST_S3_ROOT").ok()?);
    let bucket = store_name(data_dir);
    std::fs::create_dir_all(root.join(&bucket)).unwrap();
    Some((endpoint, bucket))
}

/// The bucket and database name of a test's data folder: `t` and 20 hex digits of the SHA-256
/// of the folder above it, a name both S3 and PostgreSQL take.
fn store_name(data_dir: &Path) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        data_dir
            .parent()
            .unwrap_or(data_dir)
            .as_os_str()
            .as_encoded_bytes(),
    );
    format!("t{}", &flare::storage::hex(digest.as_ref())[..20])
}

/// Where s3s-fs keeps an object of a server started by `TestApp` or `Node` on `data_dir`.
pub fn object_in_bucket(data_dir: &Path, video_id: &str, file_name: &str) -> Option<PathBuf> {
    let (_, bucket) = test_bucket(data_dir)?;
    let dir = PathBuf::from(std::env::var("TEST_S3_ROOT").ok()?)
        .join(bucket)
        .join(video_id)
        .join("composite");
    let found = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join(file_name))
        .find(|p| p.is_file());
    // No object: a path that does not exist, as on disk.
    Some(found.unwrap_or_else(|| dir.join("none").join(file_name)))
}

/// The settings that point a child `flare` at the test bucket of `data_dir`, if any.
pub fn bucket_env(data_dir: &Path) -> Vec<(String, String)> {
    match test_bucket(data_dir) {
        Some((endpoint, bucket)) => vec![
            ("FLARE_S3_ENDPOINT".into(), endpoint),
            ("FLARE_S3_BUCKET".into(), bucket),
        ],
        None => Vec::new(),
    }
}

/// The setting that points a child `flare` at the test database of `data_dir`, if any.
pub fn database_env(data_dir: &Path) -> Vec<(String, String)> {
    test_database(data_dir)
        .map(|url| vec![("FLARE_DATABASE_URL".into(), url)])
        .unwrap_or_default()
}

/// With `TEST_DATABASE_URL` set (`postgres://USER:PASSWORD@HOST:PORT/`, tests/pg.sh, which
/// starts a throwaway PostgreSQL cluster), every flare a test starts keeps its records in a
/// database of its own, named after its data folder (as `test_bucket`), made with `createdb`
/// the first time.
pub fn test_database(data_dir: &Path) -> Option<String> {
    if !cfg!(feature = "postgres") {
        return None;
    }
    let base = std::env::var("TEST_DATABASE_URL").ok()?;
    let name = store_name(data_dir);
    static MADE: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut made = MADE.lock().unwrap_or_else(|p| p.into_inner());
    if !made.contains(&name) {
        let out = std::process::Command::new("createdb")
            .arg(&name)
            .output()
            .expect("createdb (Debian's postgresql-client) is needed with TEST_DATABASE_URL");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("already exists"),
            "createdb {name}: {err}"
        );
        made.push(name.clone());
    }
    Some(format!("{base}{name}"))
}

/// Every object file a server on `data_dir` keeps: under `objects/`, or in its test bucket.
pub fn stored_objects(data_dir: &Path) -> Vec<PathBuf> {
    match (test_bucket(data_dir), std::env::var("TEST_S3_ROOT")) {
        (Some((_, bucket)), Ok(root)) => files_under(&PathBuf::from(root).join(bucket)),
        _ => files_under(&data_dir.join("objects")),
    }
}

/// What a server on `data_dir` holds of its resumable sessions' bytes, as (things, bytes): part
/// files in `tmp/resumable/`; with a test bucket, also the sessions' tails under
/// `VIDEO/sessions/` and their multipart uploads with the bytes of their parts (s3s-fs keeps
/// those beside its buckets: `.bucket-B64(BUCKET).object-B64(KEY).upload-UUID.metadata.json`
/// names an upload, `.upload_id-UUID.part-N` holds one of its parts).
pub fn session_bytes(data_dir: &Path) -> (usize, u64) {
    let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut files = files_under(&data_dir.join("tmp/resumable"));
    let mut uploads = 0;
    let mut bytes = 0;
    if let (Some((_, bucket)), Ok(root)) = (test_bucket(data_dir), std::env::var("TEST_S3_ROOT")) {
        use base64::Engine;
        let root = PathBuf::from(root);
        // One tail counts per session: the newest (the one before it goes once the row names
        // the new one).
        for video in std::fs::read_dir(root.join(&bucket))
            .into_iter()
            .flatten()
            .flatten()
        {
            for session in std::fs::read_dir(video.path().join("sessions"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let newest = files_under(&session.path())
                    .into_iter()
                    .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
                files.extend(newest);
            }
        }
        let ours = format!(
            ".bucket-{}.object-",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bucket)
        );
        let beside: Vec<String> = std::fs::read_dir(&root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for name in beside.iter().filter(|n| n.starts_with(&ours)) {
            let upload = name
                .split(".upload-")
                .nth(1)
                .and_then(|rest| rest.strip_suffix(".metadata.json"));
            if let Some(upload) = upload {
                uploads += 1;
                let parts = format!(".upload_id-{upload}.part-");
                for part in beside.iter().filter(|n| n.starts_with(&parts)) {
                    bytes += size(&root.join(part));
                }
            }
        }
    }
    (
        files.len() + uploads,
        bytes + files.iter().map(size).sum::<u64>(),
    )
}
