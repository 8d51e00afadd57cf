//! `flare upload FILE…`: a client of any flare server (or the hosted API's flare-compatible
//! ones): creates the video, presigns a resumable URL and sends the file over tus in chunks,
//! with a progress line. An interruption (the network, the server, Ctrl-C) is resumed by
//! retrying, or by running the same command again: the upload's URL is kept per file in the
//! state folder until it finishes.
//!
//! The HTTP client is `ureq` (small, blocking, rustls for https servers); tus itself is a few
//! requests (POST, HEAD, PATCH) written here, as no maintained Rust tus client exists.

use serde_json::{json, Value};
use std::fs::File;
use std::io::{IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `flare upload` was asked.
pub struct UploadArgs {
    pub files: Vec<PathBuf>,
    pub server: String,
    pub token: String,
    pub title: Option<String>,
    pub chunk_size: Option<u64>,
    /// A duration as `flare token create --expires-in` takes it.
    pub expires_in: Option<String>,
    pub json: bool,
}

/// Attempts at one request before giving up (then the same command resumes).
const ATTEMPTS: u32 = 10;

/// Uploads each file in turn; stops at the first that fails.
pub fn run(args: UploadArgs) -> Result<(), String> {
    let server = args.server.trim_end_matches('/').to_string();
    let expires_in = args
        .expires_in
        .as_deref()
        .map(|d| crate::time::parse_duration(d).map_err(|e| format!("--expires-in: {e}")))
        .transpose()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .build()
        .into();
    let client = Client {
        agent,
        server,
        token: args.token.clone(),
    };
    let mut results = Vec::new();
    for file in &args.files {
        let done = upload_one(&client, &args, expires_in, file)?;
        if args.json {
            results.push(done);
        } else {
            println!("{}", done["publicUrl"].as_str().unwrap_or_default());
        }
    }
    if args.json {
        let out = if results.len() == 1 {
            results.remove(0)
        } else {
            Value::Array(results)
        };
        println!("{out}");
    }
    Ok(())
}

struct Client {
    agent: ureq::Agent,
    server: String,
    token: String,
}

/// A server's answer: status, the headers tus needs, the JSON body if any.
struct Answer {
    status: u16,
    offset: Option<u64>,
    body: Value,
}

impl Client {
    fn api(&self, method: &str, path: &str, body: Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.server);
        let auth = format!("Bearer {}", self.token);
        let res = match method {
            "DELETE" => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .call(),
            _ => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.to_string().as_bytes()),
        };
        let answer = read(res).map_err(|e| format!("cannot reach {}: {e}", self.server))?;
        if answer.status >= 400 {
            return Err(format!("{method} {path}: {}", refusal(&answer)));
        }
        Ok(answer.body)
    }

    fn get(&self, path: &str) -> Option<Value> {
        let url = format!("{}{path}", self.server);
        let res = self
            .agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .call();
        read(res).ok().filter(|a| a.status == 200).map(|a| a.body)
    }

    fn head(&self, url: &str) -> Result<Answer, ureq::Error> {
        read(self.agent.head(url).header("Tus-Resumable", "1.0.0").call())
    }

    fn create(&self, url: &str, length: u64) -> Result<Answer, ureq::Error> {
        read(
            self.agent
                .post(url)
                .header("Tus-Resumable", "1.0.0")
                .header("Upload-Length", &length.to_string())
                .send_empty(),
        )
    }

    fn patch(
        &self,
        url: &str,
        offset: u64,
        body: &mut dyn Read,
        len: u64,
    ) -> Result<Answer, ureq::Error> {
        read(
            self.agent
                .patch(url)
                .header("Tus-Resumable", "1.0.0")
                .header("Content-Type", "application/offset+octet-stream")
                .header("Upload-Offset", &offset.to_string())
                .header("Content-Length", &len.to_string())
                .send(ureq::SendBody::from_reader(body)),
        )
    }
}

fn read(res: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Answer, ureq::Error> {
    let mut res = res?;
    let header = |name: &str| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let offset = header("upload-offset");
    let status = res.status().as_u16();
    let text = res.body_mut().read_to_string().unwrap_or_default();
    Ok(Answer {
        status,
        offset,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    })
}

/// The server's own words for a refusal.
fn refusal(a: &Answer) -> String {
    match a.body["error"]["message"].as_str() {
        Some(m) => format!(
            "{} ({}, HTTP {})",
            m,
            a.body["error"]["code"].as_str().unwrap_or(""),
            a.status
        ),
        None => format!("the server answered HTTP {}", a.status),
    }
}

/// One file's upload, kept in the state folder until it finishes.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Saved {
    server: String,
    file: String,
    size: u64,
    modified: u64,
    video_id: String,
    url: String,
    public_url: String,
    chunk_size: u64,
}

fn state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLARE_UPLOAD_STATE") {
        return PathBuf::from(dir);
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("flare/uploads")
}

/// The state file of one file on one server: named by a digest of both.
fn state_path(server: &str, file: &Path, size: u64, modified: u64) -> PathBuf {
    let key = format!("{server}\n{}\n{size}\n{modified}", file.display());
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    state_dir().join(format!(
        "{}.json",
        &crate::storage::hex(digest.as_ref())[..24]
    ))
}

fn upload_one(
    client: &Client,
    args: &UploadArgs,
    expires_in: Option<u64>,
    path: &Path,
) -> Result<Value, String> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown}: not a file"));
    }
    let size = meta.len();
    if size == 0 {
        return Err(format!("{shown}: the file is empty"));
    }
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let state = state_path(&client.server, &full, size, modified);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{shown}: no file name"))?;

    let mut saved: Option<Saved> = std::fs::read(&state)
        .ok()
        .and_then(|b| serde_json::from_slice::<Saved>(&b).ok())
        .filter(|s| {
            s.server == client.server
                && s.file == full.display().to_string()
                && s.size == size
                && s.modified == modified
        });
    // Where the server stands on a saved upload; one it no longer knows starts again.
    let mut offset = 0;
    if let Some(s) = &saved {
        match client.head(&s.url) {
            Ok(a) if a.status == 200 => {
                offset = a.offset.unwrap_or(0);
                eprintln!("{shown}: resuming at {} of {}", bytes(offset), bytes(size));
            }
            Ok(a) => {
                eprintln!(
                    "{shown}: the earlier upload cannot be resumed ({}); starting again",
                    refusal(&a)
                );
                let _ = std::fs::remove_file(&state);
                saved = None;
            }
            Err(e) => return Err(format!("cannot reach {}: {e}", client.server)),
        }
    }
    let saved = match saved {
        Some(s) => s,
        None => {
            let title = args.title.clone().unwrap_or_else(|| {
                Path::new(&file_name)
                    .file_stem()
                    .map_or(file_name.clone(), |s| s.to_string_lossy().into_owned())
            });
            let created = client.api(
                "POST",
                "/api/video/create",
                json!({ "fileName": file_name, "title": title }),
            )?;
            let video_id = created["video"]["id"]
                .as_str()
                .ok_or("the server's answer to create has no video id")?
                .to_string();
            let mut request = json!({
                "videoId": video_id, "fileName": file_name, "size": size, "resumable": true,
            });
            if let Some(secs) = expires_in {
                request["expiresIn"] = json!(secs);
            }
            let p = match client.api("POST", "/api/video/upload/presign", request) {
                Ok(p) => p,
                Err(e) => {
                    // No video is left pending by a refused upload.
                    let _ = client.api("DELETE", &format!("/api/video/{video_id}"), Value::Null);
                    return Err(format!("{shown}: {e}"));
                }
            };
            let url = p["resumable"]["url"]
                .as_str()
                .ok_or("this server does not offer resumable uploads (no `resumable` in presign's answer)")?
                .to_string();
            let s = Saved {
                server: client.server.clone(),
                file: full.display().to_string(),
                size,
                modified,
                video_id,
                url,
                public_url: p["publicUrl"].as_str().unwrap_or_default().to_string(),
                chunk_size: p["resumable"]["chunkSize"].as_u64().unwrap_or(50 << 20),
            };
            std::fs::create_dir_all(state_dir())
                .and_then(|()| std::fs::write(&state, serde_json::to_vec(&s).unwrap_or_default()))
                .map_err(|e| {
                    format!(
                        "cannot keep the upload's state in {}: {e}",
                        state_dir().display()
                    )
                })?;
            let a = client
                .create(&s.url, size)
                .map_err(|e| format!("cannot reach {}: {e}", client.server))?;
            if a.status != 201 {
                return Err(format!("{shown}: {}", refusal(&a)));
            }
            s
        }
    };

    let chunk = args.chunk_size.unwrap_or(saved.chunk_size).max(1);
    let resumed_from = offset;
    let mut file = File::open(path).map_err(|e| format!("{shown}: {e}"))?;
    let mut progress = Progress::new(&shown, size, offset);
    let mut failures = 0;
    // Bytes put on the wire, re-sent ones included.
    let mut sent = 0u64;
    while offset < size {
        let len = chunk.min(size - offset);
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| format!("{shown}: {e}"))?;
        let mut body = Counting {
            inner: (&mut file).take(len),
            progress: &mut progress,
            base: offset,
            read: &mut sent,
        };
        match client.patch(&saved.url, offset, &mut body, len) {
            Ok(a) if a.status == 204 || a.status == 200 => {
                offset = a.offset.unwrap_or(offset + len);
                failures = 0;
            }
            // The server holds another offset (a cut request kept part of itself): ask.
            Ok(a) if a.status == 409 && a.body["error"]["code"] == "offset-mismatch" => {
                offset = a.offset.unwrap_or(offset);
            }
            // Another request held the upload (423), or took it over from this one (409): a
            // retry asks the server where it stands.
            Ok(a) if a.status == 409 || a.status == 423 || a.status >= 500 => {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(format!(
                        "{shown}: {} (run the same command again to resume)",
                        refusal(&a)
                    ));
                }
                wait(failures, &refusal(&a));
                offset = where_now(client, &saved.url, offset);
            }
            Ok(a) => {
                progress.end(offset);
                let _ = std::fs::remove_file(&state);
                return Err(format!("{shown}: {}", refusal(&a)));
            }
            Err(e) => {
                failures += 1;
                if failures >= ATTEMPTS {
                    progress.end(offset);
                    return Err(format!(
                        "{shown}: {e}; {} of {} are on the server, run the same command again to resume",
                        bytes(offset),
                        bytes(size)
                    ));
                }
                wait(failures, &e.to_string());
                offset = where_now(client, &saved.url, offset);
            }
        }
        progress.at(offset);
    }
    progress.end(offset);
    let _ = std::fs::remove_file(&state);
    let mut done = json!({
        "file": shown,
        "videoId": saved.video_id,
        "publicUrl": saved.public_url,
        "size": size,
        // This run's bytes on the wire: more than `size - resumedFrom` when a cut request's
        // unacknowledged bytes were sent again.
        "sentBytes": sent,
        "resumedFrom": resumed_from,
    });
    // The server's digest, when the token may read videos.
    if let Some(v) = client.get(&format!("/api/video/{}", saved.video_id)) {
        done["sha256"] = v["video"]["sha256"].clone();
    }
    Ok(done)
}

/// The server's offset, after a failure (the old one when it cannot be asked).
fn where_now(client: &Client, url: &str, fallback: u64) -> u64 {
    match client.head(url) {
        Ok(a) if a.status == 200 => a.offset.unwrap_or(fallback),
        _ => fallback,
    }
}

fn wait(failures: u32, why: &str) {
    let secs = (1u64 << failures.min(5)).min(30);
    eprintln!(
        "\n{why}; retrying in {secs} s (attempt {} of {ATTEMPTS})",
        failures + 1
    );
    std::thread::sleep(Duration::from_secs(secs));
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let (mut v, mut i) = (n as f64, 0);
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A reader that reports each read to the progress line.
struct Counting<'a, R> {
    inner: R,
    progress: &'a mut Progress,
    base: u64,
    read: &'a mut u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.base += n as u64;
        *self.read += n as u64;
        self.progress.at(self.base);
        Ok(n)
    }
}

/// Bytes, rate and time left on stderr: one rewritten line on a terminal, else a plain line
/// every few seconds.
struct Progress {
    name: String,
    size: u64,
    terminal: bool,
    started: Instant,
    from: u64,
    shown: Instant,
}

impl Progress {
    fn new(name: &str, size: u64, from: u64) -> Progress {
        Progress {
            name: name.to_string(),
            size,
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            from,
            shown: Instant::now() - Duration::from_secs(60),
        }
    }

    fn line(&self, at: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = at.saturating_sub(self.from) as f64 / secs;
        let left = if rate > 0.0 {
            format!(
                "{:.0} s left",
                (self.size - at.min(self.size)) as f64 / rate
            )
        } else {
            "… left".into()
        };
        format!(
            "{}: {} of {} ({:.0} %), {}/s, {left}",
            self.name,
            bytes(at),
            bytes(self.size),
            at as f64 * 100.0 / self.size as f64,
            bytes(rate as u64),
        )
    }

    fn at(&mut self, at: u64) {
        let every = if self.terminal { 200 } else { 5000 };
        if self.shown.elapsed() < Duration::from_millis(every) {
            return;
        }
        self.shown = Instant::now();
        let line = self.line(at);
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
    }

    fn end(&mut self, at: u64) {
        let line = self.line(at);
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            writeln!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
    }
}
