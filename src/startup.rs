//! Building the application: open the data folder, bind the listener, mount the routes.

use actix_http::{HttpService, KeepAlive};
use actix_service::map_config;
use actix_service::ServiceFactoryExt;
use actix_web::body::MessageBody;
use actix_web::dev::{fn_factory, fn_service, AppConfig, Service, ServiceFactory};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Condition, DefaultHeaders, Logger};
use actix_web::rt::net::TcpStream;
use actix_web::{web, App, HttpResponse};
use futures_util::future::{ready, Either};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::db::Db;
use crate::error::ApiError;
use crate::fastpath::{self, FastPath, Next};
use crate::logging::ACCESS_LOG;
use crate::routes;
use crate::signing::key_from_bytes;
use crate::storage::Storage;
use crate::throttle::Throttle;
use crate::uploads::InFlight;

/// Headers on every response (a `DefaultHeaders` middleware).
pub(crate) const EVERY_RESPONSE: [(HeaderName, HeaderValue); 2] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    ),
];

/// Headers on every response that does not set its own `Content-Security-Policy`: only the embed
/// page may be framed by other sites, and it sets its own policy.
pub(crate) const NO_FRAMING: [(HeaderName, HeaderValue); 2] = [
    (
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
];

/// What every handler can reach.
pub struct AppState {
    pub settings: Settings,
    /// `public_url`, or `http://` + the bound address; for the command-line tools, the running
    /// server's.
    pub base_url: String,
    /// Where `base_url` and `media_url` came from, for the command-line tools to say.
    pub links_from: String,
    /// `media_url`, or `base_url` + `/media`.
    pub media_url: String,
    pub db: Db,
    pub storage: Arc<Storage>,
    pub signing_key: hmac::Key,
    pub rng: SystemRandom,
    pub in_flight: InFlight,
    pub throttle: Throttle,
    pub tokens: crate::auth::TokenCache,
}

pub struct Application {
    port: u16,
    server: Server,
    /// Held while serving; see `datadir::DataLock`.
    lock: crate::datadir::DataLock,
}

impl AppState {
    /// Opens the data folder: the database (migrated), the signing key (made on first use) and
    /// storage. `addr` is the bound address when serving, for the default public URL. Blocking.
    pub fn open(
        settings: Settings,
        addr: Option<std::net::SocketAddr>,
    ) -> Result<AppState, String> {
        let serving = addr.is_some();
        let data_dir = settings.data_dir.clone();
        crate::datadir::ensure(&data_dir, serving)?;
        let db_path = data_dir.join("flare.db");
        if !db_path.exists() {
            crate::datadir::refuse_new_database_beside_objects(&data_dir)?;
            if !serving {
                return Err(format!(
                    "there is no flare database in {}: start `flare serve` on it once, or check \
                     --data-dir",
                    crate::datadir::shown(&data_dir)
                ));
            }
        }
        crate::datadir::create_private_file(&db_path)
            .map_err(|e| format!("cannot create {}: {e}", db_path.display()))?;
        let db = Db::open(&db_path)?;
        let signing_key = if serving {
            load_or_create_key(&data_dir, &db)?
        } else {
            // The command-line tools sign nothing: without the key file they use a key of their
            // own for this run, and never write one (fsck reports the missing file).
            load_key(&data_dir)?.unwrap_or_else(|| key_from_bytes(&random_key_bytes()))
        };
        let storage = Storage::open(&data_dir, settings.sync_uploads)
            .map_err(|e| format!("cannot prepare storage in {}: {e}", data_dir.display()))?;
        // The command-line tools build links on what the server running on this folder uses
        // (it may have been given other settings by flag); with none running, on the settings.
        let running = (!serving)
            .then(|| crate::datadir::running_server(&data_dir))
            .flatten();
        let base_url = match (&running, &settings.public_url, addr) {
            (Some(server), _, _) => server.public_url.clone(),
            (None, Some(url), _) => url.clone(),
            (None, None, Some(addr)) => format!("http://{addr}"),
            (None, None, None) => format!("http://{}", settings.listen),
        };
        let media_url = match (&running, &settings.media_url) {
            (Some(server), _) => server.media_url.clone(),
            (None, Some(url)) => url.clone(),
            (None, None) => format!("{base_url}/media"),
        };
        let links_from = match &running {
            Some(server) => format!("the running server (pid {})", server.pid),
            None => "the settings (no server is running on this data folder)".into(),
        };
        Ok(AppState {
            settings,
            links_from,
            base_url,
            media_url,
            db,
            storage: Arc::new(storage),
            signing_key,
            rng: SystemRandom::new(),
            in_flight: InFlight::default(),
            throttle: Throttle::default(),
            tokens: Default::default(),
        })
    }

    /// Work a stopped server may have left: temp files and half-done deletions. Only before
    /// serving, since a running server's uploads live in `tmp/`. Blocking.
    fn recover(&self) -> Result<(), String> {
        // First the publications a crash interrupted: their staged files are in tmp/, which is
        // swept next.
        let finished = crate::publish::roll_forward(&self.db, &self.storage)?;
        if finished > 0 {
            log::info!("finished {finished} publication(s) interrupted by an earlier stop");
        }
        let swept = self
            .storage
            .sweep_temp()
            .map_err(|e| format!("cannot clear unfinished uploads: {e}"))?;
        if swept > 0 {
            log::info!(
                "removed {swept} unfinished upload(s) or deletion(s) left by an earlier run"
            );
        }
        let pending: Vec<String> = self
            .db
            .call(|c| crate::db::videos::unfinished_deletes(c))
            .map_err(|e| format!("cannot read the database: {e}"))?;
        for id in pending {
            self.storage
                .remove_video(&id)
                .map_err(|e| format!("cannot finish deleting video {id}: {e}"))?;
            self.db
                .call(|c| crate::db::videos::finish_delete(c, &id))
                .map_err(|e| format!("cannot finish deleting video {id}: {e}"))?;
            log::info!("finished deleting video {id}, interrupted by an earlier stop");
        }
        Ok(())
    }
}

impl Application {
    /// Opens the data folder, finishes what an earlier run left undone, binds `settings.listen`
    /// (port 0 picks a free port) and prepares the server. Nothing is served until
    /// `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Application, String> {
        let listener = std::net::TcpListener::bind(&settings.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        if addr.ip().is_unspecified() && settings.public_url.is_none() {
            return Err(format!(
                "listening on {addr} (every interface) needs public_url: the upload and media URLs \
                 flare hands out must name an address clients can reach, such as \
                 http://192.168.1.20:{port}. Set public_url in flare.toml, FLARE_PUBLIC_URL or \
                 --public-url",
                port = addr.port()
            ));
        }
        let (state, lock) = tokio::task::spawn_blocking(move || {
            crate::datadir::ensure(&settings.data_dir, true)?;
            // Before anything in the folder is touched: recovery sweeps tmp/, which holds a
            // running server's uploads in progress.
            let lock = crate::datadir::DataLock::acquire(&settings.data_dir)?;
            let state = AppState::open(settings, Some(addr))?;
            state.recover()?;
            lock.advertise(&crate::datadir::ServerInfo {
                pid: std::process::id(),
                public_url: state.base_url.clone(),
                media_url: state.media_url.clone(),
            })?;
            Ok::<_, String>((state, lock))
        })
        .await
        .map_err(|e| format!("start-up failed: {e}"))??;
        let base_url = state.base_url.clone();
        let state = web::Data::new(state);
        let origins = Arc::new(state.settings.cors_allowed_origins.clone());
        let trusted = Arc::new(state.settings.trusted_proxies.clone());
        let app = {
            let state = state.clone();
            move || {
                let origins = origins.clone();
                let trusted = trusted.clone();
                App::new()
                    .app_data(state.clone())
                    .app_data(web::PathConfig::default().error_handler(|_, _| {
                        ApiError::NotFound("there is nothing at this path".into()).into()
                    }))
                    .configure(routes::configure)
                    .default_service(web::to(routes::not_found))
                    .wrap_fn(move |req, srv| cors(&origins, req, srv))
                    .wrap(
                        EVERY_RESPONSE
                            .into_iter()
                            .fold(DefaultHeaders::new(), DefaultHeaders::add),
                    )
                    .wrap_fn(|req, srv| {
                        // An `Upgrade: h2c` attempt (curl --http2) is answered over HTTP/1.1;
                        // actix would otherwise echo `connection: upgrade` on a plain 200.
                        let upgrade = req.head().upgrade();
                        let fut = srv.call(req);
                        async move {
                            let mut res = fut.await?;
                            if upgrade {
                                res.response_mut()
                                    .head_mut()
                                    .set_connection_type(actix_http::ConnectionType::Close);
                            }
                            let headers = res.headers_mut();
                            if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
                                for (name, value) in NO_FRAMING {
                                    headers.insert(name, value);
                                }
                            }
                            Ok(res)
                        }
                    })
                    .wrap(Condition::new(
                        // Below `info` the access log is not built at all: it cost ~6 % of a presign.
                        log::log_enabled!(target: ACCESS_LOG, log::Level::Info),
                        // %U is the path without the query: signed URLs never reach the log. The
                        // client is the peer, or what a trusted proxy says it is.
                        Logger::new("%{client}xi \"%{method}xi %U\" %s %b %Dms")
                            .custom_request_replace("method", |req| req.method().to_string())
                            .custom_request_replace("client", move |req| {
                                client_of(&trusted, req.request()).to_string()
                            }),
                    ))
            }
        };
        // What `HttpServer` does inside, with one step before actix-http sees a connection:
        // plain media GETs are answered with `sendfile` (`fastpath`), everything else is
        // actix's. The settings are `HttpServer`'s defaults.
        let builder = actix_server::Server::build();
        let shutdown = builder.graceful_shutdown_signal();
        let counts = Arc::new(crate::conn::Counts::default());
        let server = builder
            .listen("flare", listener, move || {
                let (app, state, shutdown) = (app.clone(), state.clone(), shutdown.clone());
                let counts = counts.clone();
                fn_factory(move || {
                    let signal = shutdown.clone();
                    let counts = counts.clone();
                    let send_timeout = Duration::from_secs(state.settings.send_timeout_secs);
                    let max_per_client = state.settings.max_connections_per_client;
                    let trusted = state.settings.trusted_proxies.clone();
                    let http = HttpService::build()
                        .keep_alive(KeepAlive::Timeout(fastpath::IDLE))
                        .client_request_timeout(fastpath::IDLE)
                        .client_disconnect_timeout(Duration::from_secs(1))
                        .h1_allow_half_closed(true)
                        .local_addr(addr)
                        .graceful_shutdown_signal(move || {
                            let signal = signal.clone();
                            async move { signal.notified().await }
                        })
                        .finish(map_config(app(), |_| AppConfig::default()));
                    // What `HttpService::tcp` does, on a stream that times out stalled writes.
                    let http = fn_service(|io: crate::conn::Watched| {
                        let peer = io.peer_addr().ok();
                        ready(Ok::<_, actix_http::error::DispatchError>((
                            io,
                            actix_http::Protocol::Http1,
                            peer,
                        )))
                    })
                    .and_then(http);
                    let fast = Rc::new(FastPath::new(state.clone(), shutdown.clone()));
                    async move {
                        let actix = Rc::new(http.new_service(()).await?);
                        Ok::<_, ()>(fn_service(move |mut io: TcpStream| {
                            let (fast, actix) = (fast.clone(), actix.clone());
                            let (counts, trusted) = (counts.clone(), trusted.clone());
                            async move {
                                // A proxy carries many clients: it is not counted as one.
                                let ip = io.peer_addr().ok().map(|a| a.ip());
                                let _slot = match ip {
                                    Some(ip) if !crate::proxies::is_trusted(&trusted, ip) => {
                                        match counts.claim(ip, max_per_client) {
                                            Some(slot) => Some(slot),
                                            None => {
                                                refuse_connection(&mut io, max_per_client).await;
                                                return Ok(());
                                            }
                                        }
                                    }
                                    _ => None,
                                };
                                match fast.serve(&io).await {
                                    Next::Actix => {
                                        actix
                                            .call(crate::conn::Watched::new(io, send_timeout))
                                            .await
                                    }
                                    Next::Closed => Ok(()),
                                }
                            }
                        }))
                    }
                })
            })
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?
            .run();
        log::info!("flare listening on http://{addr} (public URL {base_url})");
        Ok(Application {
            port: addr.port(),
            server,
            lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until Ctrl-C or SIGTERM, then lets requests in flight finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        drop(self.lock);
        served
    }

    /// Stops the server from another thread (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// The client a request comes from: its peer, or what a trusted proxy reports.
pub(crate) fn client_of(
    trusted: &[crate::proxies::Cidr],
    req: &actix_web::HttpRequest,
) -> std::net::IpAddr {
    let peer = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    crate::proxies::client_ip(trusted, peer, req.headers())
}

/// Answers a connection over the per-client limit with a 503 in the JSON error shape, then
/// closes it. Bounded: a client that does not read is not waited for.
async fn refuse_connection(io: &mut TcpStream, max: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    log::info!(
        "refused a connection from {}: it already holds {max} (max_connections_per_client)",
        io.peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    );
    let answer = crate::conn::over_limit_response(max);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        io.write_all(&answer).await?;
        io.shutdown().await?;
        // Reading what the client sent lets the close be a FIN, not a reset that could destroy
        // the answer before the client reads it.
        let mut sink = [0u8; 4096];
        while io.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// The origin of a request when `cors_allowed_origins` lets it in.
fn allowed_origin(origins: &[String], req: &ServiceRequest) -> Option<HeaderValue> {
    let origin = req.headers().get(header::ORIGIN)?;
    let text = origin.to_str().ok()?;
    origins
        .iter()
        .any(|o| o == "*" || o == text)
        .then(|| origin.clone())
}

/// CORS for every route: preflights are answered here, before any route or signature check;
/// other responses get the allow headers when the origin is listed.
fn cors<S, B>(
    origins: &[String],
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse, actix_web::Error>>
where
    S: actix_web::dev::Service<
        ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: MessageBody + 'static,
{
    let allowed = allowed_origin(origins, &req);
    let cors_on = !origins.is_empty();
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let mut res = HttpResponse::build(StatusCode::NO_CONTENT);
        if let Some(origin) = allowed {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    "GET, HEAD, POST, PUT, PATCH, DELETE",
                ))
                .insert_header((
                    header::ACCESS_CONTROL_ALLOW_HEADERS,
                    "authorization, content-type, range, if-none-match, if-range",
                ))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
        }
        if cors_on {
            res.insert_header((header::VARY, "Origin"));
        }
        return Either::Left(ready(Ok(req.into_response(res.finish()))));
    }
    let fut = srv.call(req);
    Either::Right(async move {
        let mut res = fut.await?.map_into_boxed_body();
        let headers = res.headers_mut();
        if let Some(origin) = allowed {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("ETag, Content-Range, Content-Length, Accept-Ranges"),
            );
        }
        if cors_on {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        Ok(res)
    })
}

/// The key in `DATA_DIR/signing.key`, if there is one.
fn load_key(data_dir: &Path) -> Result<Option<hmac::Key>, String> {
    let path = data_dir.join("signing.key");
    match fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            if let Ok(meta) = fs::metadata(&path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    log::warn!(
                        "{} is readable by other users; run chmod 600 on it",
                        path.display()
                    );
                }
            }
            Ok(Some(key_from_bytes(&bytes)))
        }
        Ok(_) => Err(format!("{} is damaged: expected 32 bytes", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn random_key_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    bytes
}

/// The URL-signing key: 32 random bytes in `DATA_DIR/signing.key`, mode 0600. Only `serve`
/// makes one, and only when nothing signed with an earlier key can be in use: a new key voids
/// every open upload URL and every password cookie, so a folder restored without its key is
/// refused with what the key is for rather than silently given a new one.
fn load_or_create_key(data_dir: &Path, db: &Db) -> Result<hmac::Key, String> {
    let path = data_dir.join("signing.key");
    if let Some(key) = load_key(data_dir)? {
        return Ok(key);
    }
    let (open_urls, protected): (i64, i64) = db
        .call(|c| {
            Ok::<_, rusqlite::Error>((
                c.query_row(
                    "SELECT count(*) FROM uploads WHERE completed_at IS NULL AND expires_at > ?1",
                    [crate::time::now_ms()],
                    |r| r.get(0),
                )?,
                c.query_row(
                    "SELECT count(*) FROM videos WHERE password_hash IS NOT NULL",
                    [],
                    |r| r.get(0),
                )?,
            ))
        })
        .map_err(|e| format!("cannot read the database: {e}"))?;
    if open_urls > 0 || protected > 0 {
        return Err(format!(
            "{} is missing. It signs upload URLs ({open_urls} still open) and the password \
             cookies of protected videos ({protected}) in this database, and a new key would void \
             them all. Restore signing.key from the backup this folder came from; to void them \
             and go on, make a new key yourself: head -c 32 /dev/urandom > {0} && chmod 600 {0}",
            path.display()
        ));
    }
    let bytes = random_key_bytes();
    // Written whole under a temporary name, then linked into place: link() fails if another
    // process made the key first, and then both use that one.
    let tmp = data_dir.join(format!("signing.key.{}.tmp", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        match fs::hard_link(&tmp, &path) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        fs::File::open(data_dir)?.sync_all()
    };
    let written = write();
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    log::info!("created a new URL-signing key in {}", path.display());
    load_key(data_dir)?.ok_or_else(|| format!("{} vanished after it was created", path.display()))
}
