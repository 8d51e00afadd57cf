//! Settings: built-in defaults < flare.toml < FLARE_* environment < flags, merged in one function.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::time::parse_duration;

/// The longest an upload URL may live: seven days, as the spec fixes.
pub(crate) const MAX_URL_TTL_SECS: u64 = 7 * 86_400;

/// One source of settings, as written: every key optional. The file, the environment and the
/// flags each make one of these, and `Settings::resolve` lays them over the defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSettings {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub media_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// A PostgreSQL URL (`postgres://user:password@host/db`): the records there, not in
    /// `DATA_DIR/flare.db`. Secret, as it may hold a password.
    pub database_url: Option<Secret>,
    pub max_upload_bytes: Option<u64>,
    pub upload_url_ttl: Option<String>,
    pub max_upload_url_ttl: Option<String>,
    pub resumable_window: Option<String>,
    pub max_append_bytes: Option<u64>,
    pub cors_allowed_origins: Option<Vec<String>>,
    pub sync_uploads: Option<bool>,
    pub disk_reserve_bytes: Option<u64>,
    pub upload_idle_timeout: Option<String>,
    pub send_timeout: Option<String>,
    pub max_connections_per_client: Option<u64>,
    pub trusted_proxies: Option<Vec<String>>,
    pub sendfile: Option<String>,
    pub workers: Option<u64>,
    pub log_level: Option<String>,
    pub ffmpeg_path: Option<String>,
    pub media_jobs: Option<u64>,
    pub max_stream_bitrate: Option<u64>,
    pub faststart: Option<bool>,
    pub shutdown_grace: Option<String>,
    pub log_format: Option<String>,
    pub metrics_listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A file of base64 signing keys, one per line, the first signing (`keys::configured`).
    pub signing_key_file: Option<PathBuf>,
    /// `FLARE_SIGNING_KEY` (the environment only, never the file): the keys themselves.
    #[serde(skip)]
    pub signing_key: Option<Secret>,
    /// `[[webhook]]` tables (the file only).
    pub webhook: Option<Vec<WebhookSetting>>,
    /// `[s3]`: objects in an S3-compatible bucket instead of `DATA_DIR/objects`.
    pub s3: Option<RawS3>,
}

/// The `[s3]` table as written (or `FLARE_S3_*`): every key optional, checked by `resolve`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub bucket: Option<String>,
    pub path_style: Option<bool>,
    pub public_base_url: Option<String>,
}

impl RawS3 {
    fn overlay(self, over: RawS3) -> RawS3 {
        RawS3 {
            endpoint: over.endpoint.or(self.endpoint),
            region: over.region.or(self.region),
            bucket: over.bucket.or(self.bucket),
            path_style: over.path_style.or(self.path_style),
            public_base_url: over.public_base_url.or(self.public_base_url),
        }
    }
}

/// Where the objects live when they are not on this machine's disk. The credentials are read
/// from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` when the bucket is opened, and are
/// never part of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `None`: AWS itself, chosen by region.
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// `https://endpoint/bucket/key` (true: what Garage, MinIO and s3s-fs expect) rather than
    /// `https://bucket.endpoint/key`.
    pub path_style: bool,
    /// Public media is answered with a redirect to `public_base_url/KEY` (a website endpoint or
    /// a CDN in front of the bucket) instead of through flare.
    pub public_base_url: Option<String>,
}

/// One `[[webhook]]` table as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSetting {
    pub url: String,
    pub events: Option<Vec<String>>,
    pub secret: String,
}

/// A checked webhook: where, which events, and its signing key (the secret's bytes).
#[derive(Clone)]
pub struct Webhook {
    pub url: String,
    pub events: Vec<String>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for Webhook {
    /// The secret is never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// The events a webhook may ask for.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "video.created",
    "video.ready",
    "video.updated",
    "video.deleted",
    "upload.failed",
];

fn webhook(w: WebhookSetting) -> Result<Webhook, String> {
    let at = |e: String| format!("webhook {:?}: {e}", w.url);
    check_webhook_url(&w.url).map_err(at)?;
    let events = check_webhook_events(w.events).map_err(at)?;
    let key = webhook_key(&w.secret).map_err(at)?;
    Ok(Webhook {
        url: w.url,
        events,
        key,
    })
}

/// A webhook URL must be an http or https URL.
pub fn check_webhook_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("url {url:?} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "url {url:?}: expected an http:// or https:// URL with a host"
        ));
    }
    Ok(())
}

/// The events asked for (every one when none is named), each a known one.
pub fn check_webhook_events(events: Option<Vec<String>>) -> Result<Vec<String>, String> {
    let events = events.unwrap_or_else(|| WEBHOOK_EVENTS.iter().map(|e| e.to_string()).collect());
    if events.is_empty() {
        return Err(format!(
            "events is empty: name some of {}, or leave it out for all",
            WEBHOOK_EVENTS.join(", ")
        ));
    }
    if let Some(bad) = events
        .iter()
        .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
    {
        return Err(format!(
            "unknown event {bad:?} in events; expected some of {}",
            WEBHOOK_EVENTS.join(", ")
        ));
    }
    Ok(events)
}

/// The signing key a `whsec_…` secret stands for.
pub fn webhook_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    secret
        .strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|k| (24..=64).contains(&k.len()))
        .ok_or_else(|| {
            "secret must be whsec_ followed by 24 to 64 bytes in base64 (make one with: \
             echo whsec_$(head -c 32 /dev/urandom | base64))"
                .to_string()
        })
}

/// Each key with its environment variable, for `from_env` and the error messages.
const ENV_VARS: &[(&str, &str)] = &[
    ("listen", "FLARE_LISTEN"),
    ("public_url", "FLARE_PUBLIC_URL"),
    ("media_url", "FLARE_MEDIA_URL"),
    ("data_dir", "FLARE_DATA_DIR"),
    ("max_upload_bytes", "FLARE_MAX_UPLOAD_BYTES"),
    ("upload_url_ttl", "FLARE_UPLOAD_URL_TTL"),
    ("max_upload_url_ttl", "FLARE_MAX_UPLOAD_URL_TTL"),
    ("resumable_window", "FLARE_RESUMABLE_WINDOW"),
    ("max_append_bytes", "FLARE_MAX_APPEND_BYTES"),
    ("cors_allowed_origins", "FLARE_CORS_ALLOWED_ORIGINS"),
    ("sync_uploads", "FLARE_SYNC_UPLOADS"),
    ("disk_reserve_bytes", "FLARE_DISK_RESERVE_BYTES"),
    ("upload_idle_timeout", "FLARE_UPLOAD_IDLE_TIMEOUT"),
    ("send_timeout", "FLARE_SEND_TIMEOUT"),
    (
        "max_connections_per_client",
        "FLARE_MAX_CONNECTIONS_PER_CLIENT",
    ),
    ("trusted_proxies", "FLARE_TRUSTED_PROXIES"),
    ("sendfile", "FLARE_SENDFILE"),
    ("workers", "FLARE_WORKERS"),
    ("ffmpeg_path", "FLARE_FFMPEG_PATH"),
    ("media_jobs", "FLARE_MEDIA_JOBS"),
    ("max_stream_bitrate", "FLARE_MAX_STREAM_BITRATE"),
    ("faststart", "FLARE_FASTSTART"),
    ("shutdown_grace", "FLARE_SHUTDOWN_GRACE"),
    ("log_format", "FLARE_LOG_FORMAT"),
    ("metrics_listen", "FLARE_METRICS_LISTEN"),
    ("tls_cert", "FLARE_TLS_CERT"),
    ("tls_key", "FLARE_TLS_KEY"),
    ("signing_key_file", "FLARE_SIGNING_KEY_FILE"),
    ("signing_key", "FLARE_SIGNING_KEY"),
    ("database_url", "FLARE_DATABASE_URL"),
    ("log_level", "FLARE_LOG_LEVEL"),
    ("s3.endpoint", "FLARE_S3_ENDPOINT"),
    ("s3.region", "FLARE_S3_REGION"),
    ("s3.bucket", "FLARE_S3_BUCKET"),
    ("s3.path_style", "FLARE_S3_PATH_STYLE"),
    ("s3.public_base_url", "FLARE_S3_PUBLIC_BASE_URL"),
];

/// `FLARE_*` variables that are not settings but are read elsewhere.
const OTHER_VARS: &[&str] = &[
    "FLARE_CONFIG",
    "FLARE_DATA_DIR",
    "FLARE_FAULTS",
    // `flare upload`'s.
    "FLARE_SERVER",
    "FLARE_TOKEN",
    "FLARE_UPLOAD_STATE",
];

/// The `FLARE_*` variables in `names` that flare does not know: most likely typos, said as a
/// warning at start (an unknown key in flare.toml is an error; the environment is shared with
/// other programs, so only a warning).
pub fn unknown_env_vars(names: impl IntoIterator<Item = String>) -> Vec<String> {
    names
        .into_iter()
        .filter(|n| n.starts_with("FLARE_"))
        .filter(|n| !ENV_VARS.iter().any(|(_, v)| v == n) && !OTHER_VARS.contains(&n.as_str()))
        .collect()
}

impl RawSettings {
    /// Reads a TOML file. Unknown keys are an error, so a typo does not pass silently.
    pub fn from_file(path: &Path) -> Result<RawSettings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Reads every `FLARE_*` variable through `get`. Lists are comma-separated.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<RawSettings, String> {
        let mut raw = RawSettings::default();
        for (key, var) in ENV_VARS {
            let Some(value) = get(var) else { continue };
            let bad = |what: &str| format!("{var}={value:?}: expected {what}");
            match *key {
                "listen" => raw.listen = Some(value),
                "public_url" => raw.public_url = Some(value),
                "media_url" => raw.media_url = Some(value),
                "data_dir" => raw.data_dir = Some(PathBuf::from(value)),
                "max_upload_bytes" => {
                    raw.max_upload_bytes =
                        Some(value.trim().parse().map_err(|_| bad("a number of bytes"))?)
                }
                "upload_url_ttl" => raw.upload_url_ttl = Some(value),
                "max_upload_url_ttl" => raw.max_upload_url_ttl = Some(value),
                "resumable_window" => raw.resumable_window = Some(value),
                "max_append_bytes" => {
                    raw.max_append_bytes =
                        Some(value.trim().parse().map_err(|_| bad("a number of bytes"))?)
                }
                "cors_allowed_origins" => raw.cors_allowed_origins = Some(comma_list(&value)),
                "sync_uploads" => {
                    raw.sync_uploads = Some(match value.trim() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(bad("true or false")),
                    })
                }
                "disk_reserve_bytes" => {
                    raw.disk_reserve_bytes =
                        Some(value.trim().parse().map_err(|_| bad("a number of bytes"))?)
                }
                "upload_idle_timeout" => raw.upload_idle_timeout = Some(value),
                "send_timeout" => raw.send_timeout = Some(value),
                "max_connections_per_client" => {
                    raw.max_connections_per_client =
                        Some(value.trim().parse().map_err(|_| bad("a number"))?)
                }
                "trusted_proxies" => raw.trusted_proxies = Some(comma_list(&value)),
                "sendfile" => raw.sendfile = Some(value),
                "ffmpeg_path" => raw.ffmpeg_path = Some(value),
                "shutdown_grace" => raw.shutdown_grace = Some(value),
                "log_format" => raw.log_format = Some(value),
                "metrics_listen" => raw.metrics_listen = Some(value),
                "tls_cert" => raw.tls_cert = Some(PathBuf::from(value)),
                "tls_key" => raw.tls_key = Some(PathBuf::from(value)),
                "signing_key_file" => raw.signing_key_file = Some(PathBuf::from(value)),
                "signing_key" => raw.signing_key = Some(Secret(value)),
                "database_url" => raw.database_url = Some(Secret(value)),
                "faststart" => {
                    raw.faststart = Some(match value.trim() {
                        "1" | "true" | "yes" | "on" => true,
                        "0" | "false" | "no" | "off" => false,
                        _ => return Err(bad("true or false")),
                    })
                }
                "media_jobs" => {
                    raw.media_jobs = Some(value.trim().parse().map_err(|_| bad("a number"))?)
                }
                "max_stream_bitrate" => {
                    raw.max_stream_bitrate = Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| bad("a number of bits per second"))?,
                    )
                }
                "workers" => raw.workers = Some(value.trim().parse().map_err(|_| bad("a number"))?),
                "log_level" => raw.log_level = Some(value),
                "s3.endpoint" => raw.s3.get_or_insert_with(Default::default).endpoint = Some(value),
                "s3.region" => raw.s3.get_or_insert_with(Default::default).region = Some(value),
                "s3.bucket" => raw.s3.get_or_insert_with(Default::default).bucket = Some(value),
                "s3.path_style" => {
                    raw.s3.get_or_insert_with(Default::default).path_style =
                        Some(match value.trim() {
                            "1" | "true" | "yes" | "on" => true,
                            "0" | "false" | "no" | "off" => false,
                            _ => return Err(bad("true or false")),
                        })
                }
                "s3.public_base_url" => {
                    raw.s3.get_or_insert_with(Default::default).public_base_url = Some(value)
                }
                _ => unreachable!("ENV_VARS lists only known keys"),
            }
        }
        Ok(raw)
    }

    /// `self` with every key that `over` sets replaced.
    fn overlay(self, over: RawSettings) -> RawSettings {
        RawSettings {
            listen: over.listen.or(self.listen),
            public_url: over.public_url.or(self.public_url),
            media_url: over.media_url.or(self.media_url),
            data_dir: over.data_dir.or(self.data_dir),
            max_upload_bytes: over.max_upload_bytes.or(self.max_upload_bytes),
            upload_url_ttl: over.upload_url_ttl.or(self.upload_url_ttl),
            max_upload_url_ttl: over.max_upload_url_ttl.or(self.max_upload_url_ttl),
            resumable_window: over.resumable_window.or(self.resumable_window),
            max_append_bytes: over.max_append_bytes.or(self.max_append_bytes),
            cors_allowed_origins: over.cors_allowed_origins.or(self.cors_allowed_origins),
            sync_uploads: over.sync_uploads.or(self.sync_uploads),
            ffmpeg_path: over.ffmpeg_path.or(self.ffmpeg_path),
            media_jobs: over.media_jobs.or(self.media_jobs),
            max_stream_bitrate: over.max_stream_bitrate.or(self.max_stream_bitrate),
            faststart: over.faststart.or(self.faststart),
            shutdown_grace: over.shutdown_grace.or(self.shutdown_grace),
            log_format: over.log_format.or(self.log_format),
            metrics_listen: over.metrics_listen.or(self.metrics_listen),
            tls_cert: over.tls_cert.or(self.tls_cert),
            tls_key: over.tls_key.or(self.tls_key),
            signing_key_file: over.signing_key_file.or(self.signing_key_file),
            signing_key: over.signing_key.or(self.signing_key),
            database_url: over.database_url.or(self.database_url),
            webhook: over.webhook.or(self.webhook),
            s3: match (self.s3, over.s3) {
                (Some(under), Some(over)) => Some(under.overlay(over)),
                (under, over) => over.or(under),
            },
            disk_reserve_bytes: over.disk_reserve_bytes.or(self.disk_reserve_bytes),
            upload_idle_timeout: over.upload_idle_timeout.or(self.upload_idle_timeout),
            send_timeout: over.send_timeout.or(self.send_timeout),
            max_connections_per_client: over
                .max_connections_per_client
                .or(self.max_connections_per_client),
            trusted_proxies: over.trusted_proxies.or(self.trusted_proxies),
            sendfile: over.sendfile.or(self.sendfile),
            workers: over.workers.or(self.workers),
            log_level: over.log_level.or(self.log_level),
        }
    }
}

/// Validated settings: what the rest of flare reads.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: String,
    /// Without a trailing slash. `None`: `http://` + the address actually bound.
    pub public_url: Option<String>,
    /// Without a trailing slash. `None`: public URL + `/media`.
    pub media_url: Option<String>,
    pub data_dir: PathBuf,
    pub max_upload_bytes: u64,
    pub upload_url_ttl_secs: u64,
    pub max_upload_url_ttl_secs: u64,
    /// How long a resumable upload may take, counted from its presign.
    pub resumable_window_secs: u64,
    /// The most one resumable request may carry (`None`: no cap beyond the upload's limit).
    pub max_append_bytes: Option<u64>,
    pub cors_allowed_origins: Vec<String>,
    /// fsync each upload before it is renamed into place.
    pub sync_uploads: bool,
    /// Free space kept back: a presign whose declared size would eat into it is refused (507).
    pub disk_reserve_bytes: u64,
    /// A request body (an upload, a JSON body, the password form) that stalls this long is cut
    /// off.
    pub upload_idle_timeout: Duration,
    /// A response the client stops taking for this long is cut off.
    pub send_timeout: Duration,
    /// Open connections one client address may hold (trusted proxies are not counted).
    pub max_connections_per_client: usize,
    /// Addresses whose `Forwarded` / `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<crate::http::proxies::Cidr>,
    /// Plain media GETs answered with sendfile (`auto`) or all by actix (`off`).
    pub sendfile: bool,
    /// Threads serving connections, each with its own event loop.
    pub workers: usize,
    pub log_level: log::LevelFilter,
    /// ffmpeg for posters and renditions: `None` looks for `ffmpeg` on PATH; `Some("")` or
    /// `Some("off")` turns it off.
    pub ffmpeg_path: Option<String>,
    /// ffmpeg jobs run at once (0: none).
    pub media_jobs: usize,
    /// Bits per second above which an original gets a lighter rendition.
    pub max_stream_bitrate: u64,
    /// Make an index-first copy of MP4/MOV uploads whose index is at the end, for the players.
    pub faststart: bool,
    /// After SIGTERM, how long requests in flight (uploads) may take to finish.
    pub shutdown_grace: Duration,
    /// `text` or `json` lines on stderr.
    pub log_format: crate::logging::Format,
    /// Where Prometheus scrapes `/metrics`; `None`: nowhere.
    pub metrics_listen: Option<String>,
    /// The certificate chain and private key (PEM files) to serve HTTPS with; `None`: plain
    /// HTTP.
    pub tls: Option<TlsFiles>,
    /// Signing keys given by the operator (so that several nodes agree); `None`:
    /// `DATA_DIR/signing.key`.
    pub signing_keys: Option<KeySource>,
    pub webhooks: Vec<Webhook>,
    /// `None`: objects in `DATA_DIR/objects`, as on one box.
    pub s3: Option<S3Settings>,
    /// `None`: the records in `DATA_DIR/flare.db` (SQLite), as on one box.
    pub database_url: Option<Secret>,
}

/// A secret setting: never shown by `Debug`.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Where the operator's signing keys are.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `FLARE_SIGNING_KEY`.
    Env(Secret),
    /// `signing_key_file`.
    File(PathBuf),
}

/// Where the certificate chain and its private key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Settings {
    /// `https` when flare serves TLS itself, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The URLs of the webhooks that asked for `event`.
    pub fn webhooks_for(&self, event: &str) -> Vec<String> {
        self.webhooks
            .iter()
            .filter(|w| w.events.iter().any(|e| e == event))
            .map(|w| w.url.clone())
            .collect()
    }
}

impl Settings {
    /// The one place where sources meet: `layers` in rising precedence (file, env, flags) over
    /// the built-in defaults, then every value checked.
    pub fn resolve(layers: impl IntoIterator<Item = RawSettings>) -> Result<Settings, String> {
        let raw = layers
            .into_iter()
            .fold(RawSettings::default(), RawSettings::overlay);
        let listen = raw.listen.unwrap_or_else(|| "127.0.0.1:8080".into());
        if listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "listen = {listen:?}: expected an address and port such as 127.0.0.1:8080"
            ));
        }
        let max_upload_url_ttl_secs = duration_key(
            "max_upload_url_ttl",
            raw.max_upload_url_ttl.as_deref(),
            "7d",
        )?;
        if max_upload_url_ttl_secs > MAX_URL_TTL_SECS {
            return Err("max_upload_url_ttl: at most 7d".into());
        }
        let upload_url_ttl_secs =
            duration_key("upload_url_ttl", raw.upload_url_ttl.as_deref(), "1h")?;
        if upload_url_ttl_secs > max_upload_url_ttl_secs {
            return Err(format!(
                "upload_url_ttl ({upload_url_ttl_secs}s) is longer than max_upload_url_ttl ({max_upload_url_ttl_secs}s)"
            ));
        }
        let resumable_window_secs =
            duration_key("resumable_window", raw.resumable_window.as_deref(), "24h")?;
        if !(1..=MAX_URL_TTL_SECS).contains(&resumable_window_secs) {
            return Err("resumable_window: between 1s and 7d".into());
        }
        if raw.max_append_bytes == Some(0) {
            return Err("max_append_bytes must be at least 1 (leave it out for no cap)".into());
        }
        let max_upload_bytes = raw.max_upload_bytes.unwrap_or(20 * 1024 * 1024 * 1024);
        if max_upload_bytes == 0 {
            return Err("max_upload_bytes must be at least 1".into());
        }
        let log_level = match raw.log_level.as_deref().unwrap_or("info") {
            "error" => log::LevelFilter::Error,
            "warn" => log::LevelFilter::Warn,
            "info" => log::LevelFilter::Info,
            "debug" => log::LevelFilter::Debug,
            "off" => log::LevelFilter::Off,
            other => {
                return Err(format!(
                    "log_level = {other:?}: expected error, warn, info, debug or off"
                ))
            }
        };
        let origins = raw.cors_allowed_origins.unwrap_or_default();
        for origin in &origins {
            if origin != "*" && !is_origin(origin) {
                return Err(format!(
                    "cors_allowed_origins: {origin:?} is not an origin such as https://app.example.com (no path, no trailing slash)"
                ));
            }
        }
        let s3 = raw.s3.map(s3_settings).transpose()?;
        Ok(Settings {
            s3,
            listen,
            public_url: url_base("public_url", raw.public_url.as_deref())?,
            media_url: url_base("media_url", raw.media_url.as_deref())?,
            data_dir: raw.data_dir.unwrap_or_else(|| PathBuf::from("data")),
            max_upload_bytes,
            upload_url_ttl_secs,
            max_upload_url_ttl_secs,
            resumable_window_secs,
            max_append_bytes: raw.max_append_bytes,
            cors_allowed_origins: origins,
            sync_uploads: raw.sync_uploads.unwrap_or(true),
            disk_reserve_bytes: raw.disk_reserve_bytes.unwrap_or(256 * 1024 * 1024),
            upload_idle_timeout: positive_duration(
                "upload_idle_timeout",
                raw.upload_idle_timeout.as_deref(),
                "60s",
            )?,
            send_timeout: positive_duration("send_timeout", raw.send_timeout.as_deref(), "60s")?,
            max_connections_per_client: match raw.max_connections_per_client.unwrap_or(256) {
                0 => return Err("max_connections_per_client must be at least 1".into()),
                n => usize::try_from(n).unwrap_or(usize::MAX),
            },
            trusted_proxies: raw
                .trusted_proxies
                .unwrap_or_default()
                .iter()
                .map(|p| {
                    crate::http::proxies::Cidr::parse(p).ok_or_else(|| {
                        format!(
                            "trusted_proxies: {p:?} is not an address or a CIDR block such as 10.0.0.0/8 or ::1"
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            sendfile: match raw.sendfile.as_deref().unwrap_or("auto") {
                "auto" => true,
                "off" => false,
                other => return Err(format!("sendfile = {other:?}: expected \"auto\" or \"off\"")),
            },
            workers: match raw.workers {
                None => std::thread::available_parallelism().map_or(1, |n| n.get()),
                Some(0) => return Err("workers must be at least 1".into()),
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            },
            log_level,
            ffmpeg_path: raw.ffmpeg_path,
            media_jobs: usize::try_from(raw.media_jobs.unwrap_or(1)).unwrap_or(usize::MAX),
            faststart: raw.faststart.unwrap_or(false),
            webhooks: raw
                .webhook
                .unwrap_or_default()
                .into_iter()
                .map(webhook)
                .collect::<Result<_, _>>()?,
            database_url: match raw.database_url {
                Some(url) if !cfg!(feature = "postgres") => {
                    let _ = url;
                    return Err("database_url is set, but this flare was built without \
                                PostgreSQL support: build it with\n    \
                                cargo build --release --features postgres"
                        .into());
                }
                Some(url)
                    if !(url.0.starts_with("postgres://")
                        || url.0.starts_with("postgresql://")
                        || url.0.contains("host=")) =>
                {
                    return Err("database_url: expected a PostgreSQL URL \
                                (postgres://USER:PASSWORD@HOST:PORT/DATABASE)"
                        .into())
                }
                url => url,
            },
            signing_keys: match (raw.signing_key, raw.signing_key_file) {
                (Some(_), Some(_)) => {
                    return Err("FLARE_SIGNING_KEY and signing_key_file are both set: give the \
                                keys one way"
                        .into())
                }
                (Some(keys), None) => Some(KeySource::Env(keys)),
                (None, Some(file)) => Some(KeySource::File(file)),
                (None, None) => None,
            },
            tls: match (raw.tls_cert, raw.tls_key) {
                (None, None) => None,
                (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
                (Some(_), None) => {
                    return Err("tls_cert is set but tls_key is not: HTTPS needs both the \
                                certificate chain and its private key (PEM files)"
                        .into())
                }
                (None, Some(_)) => {
                    return Err("tls_key is set but tls_cert is not: HTTPS needs both the \
                                certificate chain and its private key (PEM files)"
                        .into())
                }
            },
            metrics_listen: match raw.metrics_listen.filter(|m| !m.trim().is_empty()) {
                Some(m) if m.parse::<std::net::SocketAddr>().is_err() => {
                    return Err(format!(
                        "metrics_listen = {m:?}: expected an address and port such as 127.0.0.1:9090"
                    ))
                }
                other => other,
            },
            log_format: match raw.log_format.as_deref().unwrap_or("text") {
                "text" => crate::logging::Format::Text,
                "json" => crate::logging::Format::Json,
                other => {
                    return Err(format!(
                        "log_format = {other:?}: expected \"text\" or \"json\""
                    ))
                }
            },
            shutdown_grace: Duration::from_secs(duration_key(
                "shutdown_grace",
                raw.shutdown_grace.as_deref(),
                "30s",
            )?),
            max_stream_bitrate: match raw.max_stream_bitrate.unwrap_or(20_000_000) {
                n if n < 500_000 => {
                    return Err(format!(
                        "max_stream_bitrate = {n}: at least 500000 (bits per second)"
                    ))
                }
                n => n,
            },
        })
    }
}

/// `[s3]` checked: a bucket is named, the URLs are URLs.
fn s3_settings(raw: RawS3) -> Result<S3Settings, String> {
    let bucket = raw.bucket.filter(|b| !b.trim().is_empty()).ok_or(
        "[s3] has no bucket: name the bucket flare keeps its objects in (bucket = \"videos\", \
         or FLARE_S3_BUCKET)",
    )?;
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        || !(3..=63).contains(&bucket.len())
    {
        return Err(format!(
            "[s3] bucket = {bucket:?}: expected an S3 bucket name, 3 to 63 lower-case letters, \
             digits, dots and dashes"
        ));
    }
    if !cfg!(feature = "s3") {
        return Err(
            "[s3] is set, but this flare was built without S3 support: build it with \
                    cargo build --release --features s3"
                .into(),
        );
    }
    Ok(S3Settings {
        endpoint: url_base("[s3] endpoint", raw.endpoint.as_deref())?,
        region: raw
            .region
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| "us-east-1".into()),
        bucket,
        path_style: raw.path_style.unwrap_or(true),
        public_base_url: url_base("[s3] public_base_url", raw.public_base_url.as_deref())?,
    })
}

/// A comma-separated environment value as a list, blanks dropped.
fn comma_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn duration_key(key: &str, value: Option<&str>, default: &str) -> Result<u64, String> {
    parse_duration(value.unwrap_or(default)).map_err(|e| format!("{key}: {e}"))
}

fn positive_duration(key: &str, value: Option<&str>, default: &str) -> Result<Duration, String> {
    match duration_key(key, value, default)? {
        0 => Err(format!("{key}: must be at least 1s")),
        n => Ok(Duration::from_secs(n)),
    }
}

/// `scheme://host[:port]` exactly, as browsers send it in `Origin`.
fn is_origin(s: &str) -> bool {
    s.strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .is_some_and(|host| !host.is_empty() && !host.contains(['/', '?', '#', ' ']))
}

/// An http(s) URL without its trailing slash, parsed as a URL: a host, a port that is a port,
/// no query, fragment or credentials.
fn url_base(key: &str, value: Option<&str>) -> Result<Option<String>, String> {
    let Some(value) = value else { return Ok(None) };
    let trimmed = value.trim_end_matches('/');
    let bad = |why: &str| {
        Err(format!(
            "{key} = {value:?}: {why}; expected an http:// or https:// URL such as https://videos.example.org"
        ))
    };
    let parsed = match url::Url::parse(trimmed) {
        Ok(u) => u,
        Err(e) => return bad(&e.to_string()),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return bad("the scheme must be http or https");
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return bad("it has no host");
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return bad("it may not carry a query or a fragment");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("it may not carry a user name or password");
    }
    if trimmed.contains(' ') {
        return bad("it holds a space");
    }
    Ok(Some(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(f: impl FnOnce(&mut RawSettings)) -> RawSettings {
        let mut r = RawSettings::default();
        f(&mut r);
        r
    }

    #[test]
    fn defaults_match_the_sample_file() {
        let s = Settings::resolve([]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(s.max_upload_bytes, 21_474_836_480);
        assert_eq!(s.upload_url_ttl_secs, 3600);
        assert_eq!(s.max_upload_url_ttl_secs, 604_800);
        assert!(s.sync_uploads);
        assert_eq!(s.disk_reserve_bytes, 268_435_456);
        assert_eq!(s.upload_idle_timeout, Duration::from_secs(60));
        assert_eq!(s.send_timeout, Duration::from_secs(60));
        assert_eq!(s.max_connections_per_client, 256);
        assert!(s.trusted_proxies.is_empty());
        assert!(s.sendfile);
        assert!(s.cors_allowed_origins.is_empty());
        // The shipped flare.toml states the same defaults.
        let sample = RawSettings::from_file(Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/flare.toml"
        )))
        .unwrap();
        let from_sample = Settings::resolve([sample]).unwrap();
        assert_eq!(
            format!("{from_sample:?}"),
            format!(
                "{:?}",
                Settings {
                    public_url: None,
                    ..s
                }
            )
        );
    }

    #[test]
    fn later_layers_win() {
        let file = raw(|r| {
            r.listen = Some("127.0.0.1:1".into());
            r.max_upload_bytes = Some(5);
        });
        let env =
            RawSettings::from_env(|k| (k == "FLARE_LISTEN").then(|| "127.0.0.1:2".to_string()))
                .unwrap();
        let flags = raw(|r| r.data_dir = Some("/srv/flare".into()));
        let s = Settings::resolve([file.clone(), env.clone(), flags]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:2");
        assert_eq!(s.max_upload_bytes, 5);
        assert_eq!(s.data_dir, PathBuf::from("/srv/flare"));
        let flags = raw(|r| r.listen = Some("127.0.0.1:3".into()));
        assert_eq!(
            Settings::resolve([file, env, flags]).unwrap().listen,
            "127.0.0.1:3"
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = |r: RawSettings| Settings::resolve([r]).unwrap_err();
        assert!(err(raw(|r| r.listen = Some("nowhere".into()))).contains("listen"));
        assert!(err(raw(|r| r.upload_url_ttl = Some("8d".into()))).contains("upload_url_ttl"));
        assert!(
            err(raw(|r| r.max_upload_url_ttl = Some("8d".into()))).contains("max_upload_url_ttl")
        );
        assert!(err(raw(|r| r.public_url = Some("ftp://x".into()))).contains("public_url"));
        for bad in [
            "http://example.com:notaport",
            "http://",
            "https://user:pw@example.com",
            "http://example.com/?q=1",
            "example.com",
        ] {
            assert!(
                err(raw(|r| r.public_url = Some(bad.into()))).contains("public_url"),
                "{bad} was taken"
            );
        }
        assert!(err(raw(|r| r.send_timeout = Some("0".into()))).contains("send_timeout"));
        assert!(err(raw(|r| r.sendfile = Some("on".into()))).contains("sendfile"));
        assert!(
            err(raw(|r| r.trusted_proxies = Some(vec!["10.0.0.0/33".into()])))
                .contains("trusted_proxies")
        );
        assert!(err(raw(
            |r| r.cors_allowed_origins = Some(vec!["https://a.b/path".into()])
        ))
        .contains("cors"));
        let env_err =
            RawSettings::from_env(|k| (k == "FLARE_MAX_UPLOAD_BYTES").then(|| "lots".to_string()));
        assert!(env_err.unwrap_err().contains("FLARE_MAX_UPLOAD_BYTES"));
        assert!(toml::from_str::<RawSettings>("listn = \"x\"").is_err());
    }

    #[test]
    fn unknown_flare_variables_are_named() {
        let names = [
            "FLARE_LISTEN",
            "FLARE_PUBLIC_ULR",
            "FLARE_DATA_DIR",
            "PATH",
            "FLARE_FAULTS",
        ];
        assert_eq!(
            unknown_env_vars(names.iter().map(|s| s.to_string())),
            ["FLARE_PUBLIC_ULR"]
        );
    }

    #[test]
    fn urls_lose_their_trailing_slash() {
        let s = Settings::resolve([raw(|r| {
            r.public_url = Some("https://v.example.com/".into())
        })])
        .unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://v.example.com"));
    }

    #[test]
    fn s3_settings_come_from_the_table_and_the_environment_and_name_what_is_wrong() {
        let file: RawSettings =
            toml::from_str("[s3]\nendpoint = \"http://127.0.0.1:3900/\"\nbucket = \"videos\"\n")
                .unwrap();
        let env = RawSettings::from_env(|k| match k {
            "FLARE_S3_REGION" => Some("garage".into()),
            "FLARE_S3_PATH_STYLE" => Some("false".into()),
            _ => None,
        })
        .unwrap();
        let resolved = Settings::resolve([file, env]);
        if cfg!(feature = "s3") {
            assert_eq!(
                resolved.unwrap().s3,
                Some(S3Settings {
                    endpoint: Some("http://127.0.0.1:3900".into()),
                    region: "garage".into(),
                    bucket: "videos".into(),
                    path_style: false,
                    public_base_url: None,
                })
            );
        } else {
            assert!(resolved.unwrap_err().contains("--features s3"));
        }
        let no_bucket = RawSettings::from_env(|k| {
            (k == "FLARE_S3_ENDPOINT").then(|| "http://127.0.0.1:3900".into())
        })
        .unwrap();
        assert!(Settings::resolve([no_bucket])
            .unwrap_err()
            .contains("[s3] has no bucket"));
        let bad = RawSettings::from_env(|k| (k == "FLARE_S3_BUCKET").then(|| "My_Bucket".into()))
            .unwrap();
        assert!(Settings::resolve([bad])
            .unwrap_err()
            .contains("bucket = \"My_Bucket\": expected an S3 bucket name"));
        let flag = RawSettings::from_env(|k| (k == "FLARE_S3_PATH_STYLE").then(|| "maybe".into()));
        assert!(flag.unwrap_err().contains("FLARE_S3_PATH_STYLE"));
        // Without [s3], one box as before.
        assert_eq!(Settings::resolve([]).unwrap().s3, None);
    }
}
