//! Plain media GETs answered with `sendfile(2)`, in front of actix-web, which copies every body
//! byte twice in user space (why it matters: BENCHMARKS.md).
//!
//! Each connection is peeked at first. A plain `GET` or `HEAD` of a public object (HTTP/1.1,
//! only headers that cannot change the answer, a satisfiable range or none) is answered here,
//! status and headers from `http::media` and `http::headers`; anything else is left unread and
//! the connection handed to actix-http. The worker never waits for the disk: the pages to send
//! are probed (`storage::is_cached`) and missing ones read on the blocking pool first.

use actix_server::GracefulShutdownSignal;
use actix_web::http::header::{self, HeaderName, HeaderValue, HttpDate};
use actix_web::rt::net::TcpStream;
use actix_web::web;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::Interest;

use crate::domain::names::{check_path_name, content_type_for};
use crate::http::headers::{EVERY_RESPONSE, NO_FRAMING};
use crate::http::media::{plan, Plan};
use crate::http::ranges::{parse_range, RangeAnswer};
use crate::logging::ACCESS_LOG;
use crate::state::AppState;
use crate::storage::{self, ObjectKey};
use crate::sys;

/// The most of a request head looked at; a longer head goes to actix.
const PEEK: usize = 8 << 10;
/// How long a connection may stay silent before a request: actix-web's default request timeout
/// and keep-alive, which flare keeps for the connections actix serves.
pub(crate) const IDLE: Duration = Duration::from_secs(5);
/// Bytes checked against the page cache (and read into it when missing) before each `sendfile`.
const CHUNK: u64 = 1 << 20;

/// Whether `cachestat` works here, found on the first object served; without it every
/// connection goes to actix.
static CACHESTAT: OnceLock<bool> = OnceLock::new();

/// Headers that cannot change a media answer (besides `Range`, `Connection` and the browsers'
/// `Sec-Fetch-*` and `Sec-CH-*`); a request with any other goes to actix.
pub const HARMLESS: &[&str] = &[
    "host",
    "user-agent",
    "accept",
    "accept-encoding",
    "accept-language",
    "referer",
    "cookie",
    "cache-control",
    "pragma",
    "dnt",
    "priority",
    "upgrade-insecure-requests",
];

/// A request the fast path may answer, as peeked from the socket.
#[derive(Debug, PartialEq, Eq)]
pub struct Plain<'a> {
    pub head_only: bool,
    /// The path without its query, for the access log.
    pub path: &'a str,
    pub video_id: &'a str,
    pub file_name: &'a str,
    pub range: Option<&'a str>,
    /// `Connection: close`.
    pub close: bool,
    /// Bytes of the request head, consumed once it is answered.
    pub head_len: usize,
}

/// The request at the start of `buf` if it is a plain media request; `None` for anything else,
/// including a head not yet complete.
pub fn plain_request(buf: &[u8]) -> Option<Plain<'_>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    let head_only = match req.method? {
        "GET" => false,
        "HEAD" => true,
        _ => return None,
    };
    if req.version? != 1 {
        return None;
    }
    let target = req.path?;
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    // Percent-escapes are decoded by actix's router; a path that has any is left to it.
    if path.contains('%') {
        return None;
    }
    let mut parts = path.strip_prefix("/media/")?.split('/');
    let (video_id, middle, file_name) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || middle != "composite" {
        return None;
    }
    check_path_name("videoId", video_id).ok()?;
    check_path_name("fileName", file_name).ok()?;
    let (mut range, mut close) = (None, false);
    for h in req.headers.iter() {
        let is = |name: &str| h.name.eq_ignore_ascii_case(name);
        if is("range") {
            let value = std::str::from_utf8(h.value).ok()?;
            if range.is_some() || !value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return None;
            }
            range = Some(value);
        } else if is("connection") {
            let value = std::str::from_utf8(h.value).ok()?.trim();
            if value.eq_ignore_ascii_case("close") {
                close = true;
            } else if !value.eq_ignore_ascii_case("keep-alive") {
                return None;
            }
        } else if !(HARMLESS.iter().any(|name| is(name))
            || has_prefix(h.name, "sec-fetch-")
            || has_prefix(h.name, "sec-ch-"))
        {
            return None;
        }
    }
    Some(Plain {
        head_only,
        path,
        video_id,
        file_name,
        range,
        close,
        head_len,
    })
}

fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// What happened to a connection.
pub(crate) enum Next {
    /// It is done (closed, idle too long, or the server is stopping).
    Closed,
    /// Its next request is actix's to serve, and everything after.
    Actix,
}

pub(crate) struct FastPath {
    app: web::Data<AppState>,
    /// `Vary: Origin` on every response, as the CORS middleware adds when origins are set.
    vary_origin: bool,
    shutdown: GracefulShutdownSignal,
    /// Responses this path sent whole, shared by the server's workers (the tests' proof that
    /// the path is taken).
    answered: Arc<AtomicU64>,
}

/// An answer ready to send.
struct Ready {
    plan: Plan,
    file: Arc<File>,
}

impl FastPath {
    pub fn new(
        app: web::Data<AppState>,
        shutdown: GracefulShutdownSignal,
        answered: Arc<AtomicU64>,
    ) -> FastPath {
        let vary_origin = !app.settings.cors_allowed_origins.is_empty();
        FastPath {
            app,
            vary_origin,
            shutdown,
            answered,
        }
    }

    /// Answers the plain media requests that come first on `io`, until one is not plain.
    pub async fn serve(&self, io: &TcpStream) -> Next {
        let mut buf = vec![0u8; PEEK];
        let mut nodelay = false;
        let mut first = true;
        loop {
            if !first && (!self.app.settings.sendfile || CACHESTAT.get() == Some(&false)) {
                return Next::Actix;
            }
            let peeked = tokio::select! {
                peeked = tokio::time::timeout(IDLE, io.peek(&mut buf)) => peeked,
                () = self.shutdown.notified() => return Next::Closed,
            };
            let n = match peeked {
                Ok(Ok(n)) if n > 0 => n,
                _ => return Next::Closed,
            };
            if first && is_h2_preface(&buf[..n]) {
                refuse_h2(io).await;
                return Next::Closed;
            }
            first = false;
            if !self.app.settings.sendfile || CACHESTAT.get() == Some(&false) {
                return Next::Actix;
            }
            let Some(req) = plain_request(&buf[..n]) else {
                return Next::Actix;
            };
            let started = Instant::now();
            let Some(ready) = self.prepare(&req).await else {
                return Next::Actix;
            };
            if consume(io, req.head_len).await.is_err() {
                return Next::Closed;
            }
            // As nginx does on kept-alive connections: the last segment of a body leaves at
            // once instead of waiting for the client's delayed ACK of the one before.
            if !nodelay {
                nodelay = io.set_nodelay(true).is_ok();
            }
            let mut sent = 0;
            // A request with X-Request-Id is actix's (not a harmless header): this one gets a
            // new id, as there.
            let id = crate::logging::new_request_id();
            let result = self.send(io, &req, &ready, &id, &mut sent).await;
            log_access(io, &req, ready.plan.status.as_u16(), sent, started, &id);
            crate::metrics::METRICS.request(
                "/media/{video_id}/composite/{file_name}",
                if req.head_only { "HEAD" } else { "GET" },
                ready.plan.status.as_u16(),
                started.elapsed().as_secs_f64(),
                0,
                sent,
            );
            if result.is_err() {
                return Next::Closed;
            }
            self.answered.fetch_add(1, Ordering::Relaxed);
            if req.close {
                return Next::Closed;
            }
        }
    }

    /// The answer to `req`, or `None` when it is actix's to give (any error, a password, a
    /// range that cannot be satisfied, no `cachestat`).
    async fn prepare(&self, req: &Plain<'_>) -> Option<Ready> {
        let video = crate::domain::videos::get(&self.app, req.video_id)
            .await
            .ok()?;
        if video.password_hash.is_some()
            || !crate::domain::videos::is_public_object(&video, req.file_name)
        {
            return None;
        }
        let key = ObjectKey {
            video_id: req.video_id.to_string(),
            file_name: req.file_name.to_string(),
        };
        let (file, meta) = self.app.storage.open_object(&key).ok()??;
        let cachestat = CACHESTAT.get_or_init(|| match storage::cache_probe() {
            Some(probe) => {
                log::info!(
                    "plain media GETs are sent with sendfile(2); the page cache is probed with {}",
                    match probe {
                        storage::CacheProbe::Cachestat => "cachestat(2)",
                        storage::CacheProbe::Mincore => "mincore(2) (this kernel has no cachestat)",
                    }
                );
                true
            }
            None => {
                log::info!(
                    "the page cache cannot be probed here: media is served by actix-web's path"
                );
                false
            }
        });
        if !cachestat {
            return None;
        }
        let range = req
            .range
            .map_or(RangeAnswer::Full, |h| parse_range(h, meta.size));
        let content_type = content_type_for(req.file_name).unwrap_or("application/octet-stream");
        let plan = plan(&meta, content_type, false, range).ok()?;
        Some(Ready {
            plan,
            file: Arc::new(file),
        })
    }

    async fn send(
        &self,
        io: &TcpStream,
        req: &Plain<'_>,
        ready: &Ready,
        id: &str,
        sent: &mut u64,
    ) -> io::Result<()> {
        let head = self.head(&ready.plan, req.close, id);
        let body = !req.head_only && ready.plan.len > 0;
        let timeout = self.app.settings.send_timeout;
        send_all(io, head.as_bytes(), body, timeout).await?;
        if body {
            send_file(
                io,
                &ready.file,
                ready.plan.start,
                ready.plan.len,
                sent,
                timeout,
            )
            .await?;
        }
        Ok(())
    }

    /// The response head actix would write for `plan`: its headers, the middlewares', `Date`.
    fn head(&self, plan: &Plan, close: bool, id: &str) -> String {
        let status = plan.status;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\ncontent-length: {}\r\n",
            status.as_str(),
            status.canonical_reason().unwrap_or(""),
            plan.len
        );
        if close {
            head.push_str("connection: close\r\n");
        }
        let vary = self
            .vary_origin
            .then(|| (header::VARY, HeaderValue::from_static("Origin")));
        let headers = plan.headers.iter().cloned().chain(EVERY_RESPONSE);
        for (name, value) in headers.chain(NO_FRAMING).chain(vary) {
            push_header(&mut head, &name, &value);
        }
        let _ = write!(
            head,
            "x-request-id: {id}\r\ndate: {}\r\n\r\n",
            HttpDate::from(SystemTime::now())
        );
        head
    }
}

fn push_header(head: &mut String, name: &HeaderName, value: &HeaderValue) {
    // Values made by flare are visible ASCII (`http::media::plan`).
    let _ = write!(
        head,
        "{}: {}\r\n",
        name.as_str(),
        value.to_str().unwrap_or_default()
    );
}

/// Takes the answered request's head out of the socket (it was only peeked at).
async fn consume(io: &TcpStream, mut n: usize) -> io::Result<()> {
    let mut sink = [0u8; 1024];
    while n > 0 {
        let want = n.min(sink.len());
        let got = io
            .async_io(Interest::READABLE, || io.try_read(&mut sink[..want]))
            .await?;
        if got == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        n -= got;
    }
    Ok(())
}

/// Writes `data`; `more` tells the kernel a body follows, so a small head and the first body
/// bytes leave in one packet.
async fn send_all(
    io: &TcpStream,
    mut data: &[u8],
    more: bool,
    timeout: Duration,
) -> io::Result<()> {
    while !data.is_empty() {
        let n = progress_within(
            timeout,
            io.async_io(Interest::WRITABLE, || sys::send(io, data, more)),
        )
        .await?;
        data = &data[n..];
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `start` with `sendfile`, counting them in `sent`. Pages not in
/// the page cache are read into it on the blocking pool first, so `sendfile` never waits for the
/// disk on this thread.
async fn send_file(
    io: &TcpStream,
    file: &Arc<File>,
    start: u64,
    len: u64,
    sent: &mut u64,
    timeout: Duration,
) -> io::Result<()> {
    let end = start + len;
    let mut offset = start;
    while offset < end {
        let chunk = (end - offset).min(CHUNK);
        if storage::is_cached(file, offset, chunk) != Some(true) {
            let (file, at) = (file.clone(), offset);
            tokio::task::spawn_blocking(move || storage::load_into_cache(&file, at, chunk))
                .await
                .map_err(io::Error::other)??;
        }
        let chunk_end = offset + chunk;
        while offset < chunk_end {
            let count = usize::try_from(chunk_end - offset).map_err(io::Error::other)?;
            let mut pos = offset;
            let n = progress_within(
                timeout,
                io.async_io(Interest::WRITABLE, || {
                    sys::sendfile(io, file, &mut pos, count)
                }),
            )
            .await?;
            if n == 0 {
                // The file is shorter than it was when opened: objects are replaced by rename,
                // never truncated, so this is damage.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            offset += n as u64;
            *sent += n as u64;
        }
    }
    Ok(())
}

/// One write that must make progress within `send_timeout` (nginx's rule): a client that stops
/// reading is cut off instead of holding its connection and file forever.
async fn progress_within<T>(
    timeout: Duration,
    write: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(timeout, write).await {
        Ok(done) => done,
        Err(_) => {
            log::info!(
                "closed a connection whose client took nothing for {} s",
                timeout.as_secs()
            );
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading (send_timeout)",
            ))
        }
    }
}

/// The start of an HTTP/2 connection preface (RFC 9113 §3.4): a client speaking HTTP/2 with
/// prior knowledge, which flare does not serve.
fn is_h2_preface(buf: &[u8]) -> bool {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    buf.len() >= 16 && PREFACE.starts_with(&buf[..buf.len().min(PREFACE.len())])
}

/// A clean HTTP/2 refusal: the server's (empty) SETTINGS frame, then GOAWAY with
/// HTTP_1_1_REQUIRED (RFC 9113 §6.8, §7), which tells the client to retry over HTTP/1.1.
async fn refuse_h2(io: &TcpStream) {
    log::debug!(
        "refused an HTTP/2 prior-knowledge connection from {}: flare speaks HTTP/1.1",
        io.peer_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    #[rustfmt::skip]
    const FRAMES: [u8; 26] = [
        0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS, empty, stream 0
        0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, 8 bytes, stream 0
        0, 0, 0, 0, // last stream id 0
        0, 0, 0, 0xd, // HTTP_1_1_REQUIRED
    ];
    let _ = send_all(io, &FRAMES, false, Duration::from_secs(1)).await;
}

/// The line actix-web's `Logger` writes, in its format (`startup.rs`), under its target.
fn log_access(io: &TcpStream, req: &Plain<'_>, status: u16, sent: u64, started: Instant, id: &str) {
    if !log::log_enabled!(target: ACCESS_LOG, log::Level::Info) {
        return;
    }
    let peer = io
        .peer_addr()
        .map_or_else(|_| "-".to_string(), |a| a.ip().to_string());
    let method = if req.head_only { "HEAD" } else { "GET" };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    log::info!(target: ACCESS_LOG, "{peer} \"{method} {}\" {status} {sent} {ms:.6}ms request={id}", req.path);
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/media/vid_abc/composite/a.mp4";

    fn req(lines: &str) -> String {
        format!("{lines}\r\n\r\n")
    }

    #[test]
    fn plain_gets_and_heads_are_recognised() {
        let text = req(&format!(
            "GET {PATH}?t=1 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-9\r\nUser-Agent: a\r\n\
             Sec-Fetch-Mode: no-cors\r\nConnection: keep-alive"
        ));
        let plain = plain_request(text.as_bytes()).unwrap();
        assert_eq!(
            plain,
            Plain {
                head_only: false,
                path: PATH,
                video_id: "vid_abc",
                file_name: "a.mp4",
                range: Some("bytes=0-9"),
                close: false,
                head_len: text.len(),
            }
        );
        let text = req(&format!("HEAD {PATH} HTTP/1.1\r\nconnection: Close"));
        let plain = plain_request(text.as_bytes()).unwrap();
        assert!(plain.head_only && plain.close && plain.range.is_none());
        // A second request behind the first (pipelined) is not part of the first's head.
        let two = format!(
            "{}GET / HTTP/1.1\r\n\r\n",
            req(&format!("GET {PATH} HTTP/1.1"))
        );
        assert_eq!(
            plain_request(two.as_bytes()).unwrap().head_len,
            two.len() - 18
        );
    }

    #[test]
    fn anything_else_goes_to_actix() {
        let refused = [
            format!("POST {PATH} HTTP/1.1"),
            format!("GET {PATH} HTTP/1.0"),
            format!("GET {PATH} HTTP/1.1\r\nIf-None-Match: \"x\""),
            format!("GET {PATH} HTTP/1.1\r\nIf-Range: \"x\"\r\nRange: bytes=0-1"),
            format!("GET {PATH} HTTP/1.1\r\nOrigin: http://a"),
            format!("GET {PATH} HTTP/1.1\r\nContent-Length: 0"),
            format!("GET {PATH} HTTP/1.1\r\nTransfer-Encoding: chunked"),
            format!("GET {PATH} HTTP/1.1\r\nExpect: 100-continue"),
            format!("GET {PATH} HTTP/1.1\r\nRange: bytes=0-1\r\nRange: bytes=2-3"),
            format!("GET {PATH} HTTP/1.1\r\nConnection: Upgrade"),
            format!("GET {PATH} HTTP/1.1\r\nX-Anything: 1"),
            "GET /media/vid_abc/composite/a%2Emp4 HTTP/1.1".to_string(),
            "GET /media/vid_abc/composite/a.mp4/x HTTP/1.1".to_string(),
            "GET /media/vid_abc/other/a.mp4 HTTP/1.1".to_string(),
            "GET /media/vid_abc/composite/..  HTTP/1.1".to_string(),
            "GET /media/vid_abc/composite/ HTTP/1.1".to_string(),
            "GET /healthz HTTP/1.1".to_string(),
            format!("GET http://x{PATH} HTTP/1.1"),
        ];
        for lines in refused {
            assert_eq!(plain_request(req(&lines).as_bytes()), None, "{lines}");
        }
        // An incomplete head is not guessed at.
        let partial = format!("GET {PATH} HTTP/1.1\r\nHost: x\r\n");
        assert_eq!(plain_request(partial.as_bytes()), None);
    }
}
