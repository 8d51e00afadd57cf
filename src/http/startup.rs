//! Building the application: open the data folder, bind the listener, mount the routes.

use actix_http::{HttpService, KeepAlive};
use actix_service::map_config;
use actix_web::dev::Server;
use actix_web::dev::{fn_factory, fn_service, AppConfig, Service, ServiceFactory};
use actix_web::http::header::{self};
use actix_web::middleware::{Condition, DefaultHeaders, Logger};
use actix_web::rt::net::TcpStream;
use actix_web::{web, App};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::either::Either;

use crate::config::Settings;
use crate::error::ApiError;
use crate::http::cors::cors;
use crate::http::fastpath::{self, FastPath, Next};
use crate::http::headers::{EVERY_RESPONSE, NO_FRAMING};
use crate::http::proxies::client_of;
use crate::http::routes;
use crate::logging::ACCESS_LOG;
use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    /// Held while serving; see `datadir::DataLock`.
    lock: crate::datadir::DataLock,
    sendfile_answers: Arc<std::sync::atomic::AtomicU64>,
}

impl Application {
    /// Opens the data folder, finishes what an earlier run left undone, binds `settings.listen`
    /// (port 0 picks a free port) and prepares the server. Nothing is served until
    /// `run_until_stopped`.
    pub async fn build(settings: Settings) -> Result<Application, String> {
        let listener = std::net::TcpListener::bind(&settings.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let workers = settings.workers;
        if addr.ip().is_unspecified() && settings.public_url.is_none() {
            return Err(format!(
                "listening on {addr} (every interface) needs public_url: the upload and media URLs \
                 flare hands out must name an address clients can reach, such as \
                 http://192.168.1.20:{port}. Set public_url in flare.toml, FLARE_PUBLIC_URL or \
                 --public-url",
                port = addr.port()
            ));
        }
        let settings_grace = settings.shutdown_grace;
        let tls = match &settings.tls {
            Some(files) => Some(Arc::new(crate::http::tls::Tls::load(
                &files.cert,
                &files.key,
            )?)),
            None => None,
        };
        let scheme = settings.scheme();
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
        spawn_sweeper(std::sync::Arc::downgrade(&state.clone().into_inner()));
        crate::domain::media_jobs::spawn_workers(std::sync::Arc::downgrade(
            &state.clone().into_inner(),
        ));
        crate::domain::webhooks::spawn_worker(std::sync::Arc::downgrade(
            &state.clone().into_inner(),
        ));
        if let Some(at) = state.settings.metrics_listen.clone() {
            let bound = crate::http::metrics_server::start(
                &at,
                std::sync::Arc::downgrade(&state.clone().into_inner()),
            )?;
            log::info!("metrics at http://{bound}/metrics");
        }
        {
            let s = &state.settings;
            log::info!(
                "settings: data_dir {}, max_upload_bytes {}, sync_uploads {}, sendfile {}, workers {}, \
                 media_jobs {}, faststart {}, shutdown_grace {}s, log_format {:?}",
                crate::datadir::shown(&s.data_dir),
                s.max_upload_bytes,
                s.sync_uploads,
                if s.sendfile { "auto" } else { "off" },
                s.workers,
                s.media_jobs,
                s.faststart,
                s.shutdown_grace.as_secs(),
                s.log_format,
            );
            let live: i64 = state
                .db
                .read(|c| {
                    Ok::<_, crate::error::ApiError>(c.row(
                        "SELECT count(*) FROM tokens WHERE revoked_at IS NULL",
                        &[],
                        |r| r.get(0),
                    )?)
                })
                .await
                .unwrap_or(1);
            if live == 0 {
                log::info!(
                    "no token exists yet: make one with `flare token create --name NAME` (it is \
                     shown once), then sign in at {base_url}/"
                );
            }
        }
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
                    // Metrics: every answer by route pattern, method and status, its time and
                    // bytes; uploads in flight and their outcomes.
                    .wrap_fn(|req, srv| {
                        let started = std::time::Instant::now();
                        let method = req.method().to_string();
                        let upload = req.path().starts_with("/upload/")
                            && matches!(method.as_str(), "PUT" | "PATCH" | "POST");
                        let received = req
                            .headers()
                            .get(header::CONTENT_LENGTH)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u64>().ok())
                            .unwrap_or(0);
                        let m = &crate::metrics::METRICS;
                        if upload {
                            m.uploads_in_progress.inc();
                        }
                        let fut = srv.call(req);
                        async move {
                            let res = fut.await;
                            if upload {
                                m.uploads_in_progress.dec();
                            }
                            let res = res?;
                            let route = res
                                .request()
                                .match_pattern()
                                .unwrap_or_else(|| "(none)".into());
                            let sent =
                                match actix_web::body::MessageBody::size(res.response().body()) {
                                    actix_web::body::BodySize::Sized(n) => n,
                                    _ => 0,
                                };
                            let status = res.status().as_u16();
                            m.request(
                                &route,
                                &method,
                                status,
                                started.elapsed().as_secs_f64(),
                                received,
                                sent,
                            );
                            if upload {
                                let code = res
                                    .response()
                                    .extensions()
                                    .get::<crate::metrics::ErrorCode>()
                                    .map_or("ok", |c| c.0);
                                m.upload_outcomes
                                    .get_or_create(&crate::metrics::CodeLabel { code: code.into() })
                                    .inc();
                            }
                            Ok(res)
                        }
                    })
                    // The request id: the client's X-Request-Id when harmless, else a new one;
                    // every log line written while the request is handled names it, and the
                    // answer carries it.
                    .wrap_fn(|req, srv| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .filter(|v| crate::logging::acceptable_request_id(v))
                            .map_or_else(crate::logging::new_request_id, str::to_string);
                        let value = header::HeaderValue::from_str(&id).ok();
                        let fut = crate::logging::with_request_id(id, srv.call(req));
                        async move {
                            let mut res = fut.await?;
                            if let Some(value) = value {
                                res.headers_mut()
                                    .insert(header::HeaderName::from_static("x-request-id"), value);
                            }
                            Ok(res)
                        }
                    })
                    .wrap(Condition::new(
                        // Below `info` the access log is not built at all: it cost ~6 % of a presign.
                        log::log_enabled!(target: ACCESS_LOG, log::Level::Info),
                        // %U is the path without the query: signed URLs never reach the log. The
                        // client is the peer, or what a trusted proxy says it is.
                        Logger::new(
                            "%{client}xi \"%{method}xi %U\" %s %b %Dms request=%{x-request-id}o",
                        )
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
        // SIGTERM or Ctrl-C: stop accepting, let requests in flight (uploads) finish for
        // shutdown_grace, then stop the rest: their temp files go and their URLs stay unspent.
        let grace = settings_grace;
        let builder = actix_server::Server::build()
            .workers(workers)
            .shutdown_timeout(grace.as_secs().max(1));
        let shutdown = builder.graceful_shutdown_signal();
        let counts = Arc::new(crate::http::conn::Counts::default());
        let answered = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let sendfile_answers = answered.clone();
        if let Some(tls) = &tls {
            crate::http::tls::reload_on_sighup(Arc::downgrade(tls));
        }
        let server = builder
            .listen("flare", listener, move || {
                let (app, state, shutdown) = (app.clone(), state.clone(), shutdown.clone());
                let (counts, answered) = (counts.clone(), answered.clone());
                let tls = tls.clone();
                fn_factory(move || {
                    let tls = tls.clone();
                    let signal = shutdown.clone();
                    let counts = counts.clone();
                    let send_timeout = state.settings.send_timeout;
                    let max_per_client = state.settings.max_connections_per_client;
                    let trusted = state.settings.trusted_proxies.clone();
                    let http = HttpService::build()
                        .keep_alive(KeepAlive::Timeout(fastpath::IDLE))
                        .client_request_timeout(fastpath::IDLE)
                        .client_disconnect_timeout(Duration::from_secs(1))
                        .h1_allow_half_closed(true)
                        // HTTP/2 (over TLS): with actix's 1 MiB stream window a 256 MiB PUT
                        // ran at 83 MB/s on loopback, with 8 MiB at 290 MB/s (HTTP/1.1: 405).
                        .h2_initial_window_size(8 << 20)
                        .h2_initial_connection_window_size(16 << 20)
                        .local_addr(addr)
                        .graceful_shutdown_signal(move || {
                            let signal = signal.clone();
                            async move { signal.notified().await }
                        })
                        .finish(map_config(app(), |_| AppConfig::default()));
                    let fast = Rc::new(FastPath::new(
                        state.clone(),
                        shutdown.clone(),
                        answered.clone(),
                    ));
                    async move {
                        let actix = Rc::new(http.new_service(()).await?);
                        Ok::<_, ()>(fn_service(move |mut io: TcpStream| {
                            let (fast, actix) = (fast.clone(), actix.clone());
                            let (counts, trusted) = (counts.clone(), trusted.clone());
                            let tls = tls.clone();
                            async move {
                                // A proxy carries many clients: it is not counted as one.
                                let peer = io.peer_addr().ok();
                                let ip = peer.map(|a| a.ip());
                                let _slot = match ip {
                                    Some(ip) if !crate::http::proxies::is_trusted(&trusted, ip) => {
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
                                let io = crate::http::conn::Watched::new(io, send_timeout);
                                // HTTPS: the handshake, then actix with HTTP/2 or HTTP/1.1 as
                                // ALPN chose (sendfile cannot encrypt).
                                if let Some(tls) = tls {
                                    let Ok(Ok(io)) = tokio::time::timeout(
                                        fastpath::IDLE,
                                        tls.acceptor().accept(io),
                                    )
                                    .await
                                    else {
                                        return Ok(());
                                    };
                                    let proto = match io.get_ref().1.alpn_protocol() {
                                        Some(b"h2") => actix_http::Protocol::Http2,
                                        _ => actix_http::Protocol::Http1,
                                    };
                                    return actix.call((Either::Right(io), proto, peer)).await;
                                }
                                // What `HttpService::tcp` does, after the sendfile path had its
                                // look, on a stream that times out stalled writes.
                                match fast.serve(io.get_ref()).await {
                                    Next::Actix => {
                                        actix
                                            .call((
                                                Either::Left(io),
                                                actix_http::Protocol::Http1,
                                                peer,
                                            ))
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
        log::info!("flare listening on {scheme}://{addr} (public URL {base_url})");
        Ok(Application {
            port: addr.port(),
            server,
            lock,
            sendfile_answers,
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

    /// How many responses the sendfile path has sent whole (the tests' proof it is taken).
    pub fn sendfile_answers(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.sendfile_answers.clone()
    }

    /// Stops the server from another thread (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Ends resumable sessions whose window has passed, every five minutes (or every window, when
/// shorter), until the server's state is gone.
fn spawn_sweeper(state: std::sync::Weak<AppState>) {
    actix_web::rt::spawn(async move {
        let every = match state.upgrade() {
            Some(app) => Duration::from_secs(app.settings.resumable_window_secs.clamp(1, 300)),
            None => return,
        };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(app) = state.upgrade() else { return };
            if let Err(e) = crate::domain::resumable::sweep(&app).await {
                log::warn!("could not sweep expired resumable uploads: {e}");
            }
        }
    });
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
    let answer = crate::http::conn::over_limit_response(max);
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
