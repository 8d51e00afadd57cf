//! Thin HTTP handlers: extract, call the domain, map to a response. `endpoints()` is the one
//! route table: it mounts the routes, and the OpenAPI test reads it to prove each is documented.

mod assets;
mod health;
pub(crate) mod media;
mod openapi;
mod pages;
mod presign;
mod resumable;
mod upload;
mod videos;
mod webhooks;

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, HttpResponse, Responder, Route};

use crate::error::ApiError;

pub use openapi::OPENAPI_JSON;

/// One path and the methods it answers.
pub struct Endpoint {
    pub path: &'static str,
    routes: Vec<(Method, Route)>,
    /// Every method reaches the handler (which refuses what it must itself).
    any_method: bool,
}

impl Endpoint {
    fn at(path: &'static str) -> Endpoint {
        Endpoint {
            path,
            routes: Vec::new(),
            any_method: false,
        }
    }

    fn on<F, Args>(mut self, method: Method, handler: F) -> Endpoint
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes
            .push((method.clone(), web::method(method).to(handler)));
        self
    }

    /// All methods go to `handler`; `documented` is the one the API describes.
    fn any<F, Args>(mut self, documented: Method, handler: F) -> Endpoint
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((documented, web::route().to(handler)));
        self.any_method = true;
        self
    }

    pub fn methods(&self) -> impl Iterator<Item = &Method> {
        self.routes.iter().map(|(m, _)| m)
    }
}

/// Every route flare serves.
pub fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    vec![
        Endpoint::at("/").on(M::GET, assets::index),
        Endpoint::at("/healthz").on(M::GET, health::healthz),
        Endpoint::at("/readyz").on(M::GET, health::readyz),
        Endpoint::at("/api/openapi.json").on(M::GET, openapi::document),
        Endpoint::at("/api/videos").on(M::GET, videos::list),
        Endpoint::at("/api/video/create").on(M::POST, videos::create),
        Endpoint::at("/api/video/upload/presign").on(M::POST, presign::presign),
        // POST as well as PATCH: the hosted docs' curl examples send `-d` without `-X PATCH`.
        Endpoint::at("/api/video/update/{id}")
            .on(M::PATCH, videos::update)
            .on(M::POST, videos::update),
        Endpoint::at("/api/video/{id}/embed-settings")
            .on(M::GET, videos::embed_settings)
            .on(M::PATCH, videos::update_embed_settings)
            .on(M::POST, videos::update_embed_settings),
        Endpoint::at("/api/video/{id}/captions/{lang}")
            .on(M::PUT, videos::put_captions)
            .on(M::DELETE, videos::delete_captions),
        Endpoint::at("/api/video/{id}/poster")
            .on(M::PUT, videos::put_poster)
            .on(M::DELETE, videos::delete_poster),
        Endpoint::at("/api/video/{id}")
            .on(M::GET, videos::get)
            .on(M::DELETE, videos::delete),
        // Before `{id}`, so that `deliveries` is not taken for one.
        Endpoint::at("/api/webhooks/deliveries").on(M::GET, webhooks::deliveries),
        Endpoint::at("/api/webhooks")
            .on(M::GET, webhooks::list)
            .on(M::POST, webhooks::create),
        Endpoint::at("/api/webhooks/{id}").on(M::DELETE, webhooks::delete),
        // The method is part of what was signed, so a GET or POST on an upload URL is a
        // signature mismatch (403), not a 405.
        Endpoint::at("/upload/{video_id}/composite/{file_name}").any(M::PUT, upload::put),
        Endpoint::at("/media/{video_id}/composite/{file_name}")
            .on(M::GET, media::get)
            .on(M::HEAD, media::get),
        Endpoint::at("/media/{video_id}/captions/{file}")
            .on(M::GET, media::captions)
            .on(M::HEAD, media::captions),
        Endpoint::at("/media/{video_id}/derived/{file}")
            .on(M::GET, media::derived)
            .on(M::HEAD, media::derived),
        Endpoint::at("/oembed").on(M::GET, pages::oembed),
        Endpoint::at("/v/{id}")
            .on(M::GET, pages::watch)
            .on(M::POST, pages::watch_unlock),
        Endpoint::at("/embed/{id}")
            .on(M::GET, pages::embed)
            .on(M::POST, pages::embed_unlock),
        Endpoint::at("/static/{file}").on(M::GET, assets::get),
    ]
}

/// Every fixed word of every route path (`api`, `video`, `create`, `update`, …), sorted: ids
/// chosen by clients may not be one of them, so no id can collide with a route, today's or one
/// added later.
pub fn route_words() -> &'static [&'static str] {
    static WORDS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: Vec<&'static str> = endpoints()
            .iter()
            .flat_map(|e| e.path.split('/'))
            .filter(|w| !w.is_empty() && !w.starts_with('{'))
            .collect();
        words.sort_unstable();
        words.dedup();
        words
    })
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    for endpoint in endpoints() {
        let mut resource = web::resource(endpoint.path);
        if !endpoint.any_method {
            let allow = endpoint
                .methods()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            resource = resource.default_service(web::to(move || {
                let allow = allow.clone();
                async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed(allow)) }
            }));
        }
        for (_, route) in endpoint.routes {
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
}

/// Every path no route matches.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound("there is nothing at this path".into()))
}
