//! CORS for every route: `cors_allowed_origins` decides; preflights are answered before any
//! route or signature check. (actix-cors answers an unlisted origin with 400; flare answers it
//! as if CORS were off, without the allow headers, so a same-origin client never notices.)

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::HttpResponse;
use futures_util::future::{ready, Either};

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
pub(crate) fn cors<S, B>(
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
                    "authorization, content-type, range, if-none-match, if-range, x-requested-with, \
                     x-request-id, x-http-method-override, tus-resumable, upload-length, \
                     upload-offset, upload-metadata, upload-defer-length, upload-concat, \
                     upload-checksum, upload-complete, upload-draft-interop-version",
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
                // The resumable protocols' headers too: a browser client that cannot read
                // Location or Upload-Offset restarts every upload from zero.
                HeaderValue::from_static(
                    "ETag, Content-Range, Content-Length, Accept-Ranges, Location, Upload-Offset, \
                     Upload-Length, Upload-Expires, Upload-Metadata, Upload-Defer-Length, \
                     Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, \
                     Tus-Checksum-Algorithm, Upload-Complete, Upload-Limit, \
                     Upload-Draft-Interop-Version",
                ),
            );
        }
        if cors_on {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        Ok(res)
    })
}
