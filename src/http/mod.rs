//! Everything HTTP: the server's assembly, the routes and their handlers, the sendfile path, the
//! one media answer both serving paths give, headers, CORS, per-connection limits, pages.

pub mod body;
pub mod conn;
pub mod cors;
pub mod fastpath;
pub mod headers;
pub mod html;
pub mod media;
pub(crate) mod metrics_server;
pub mod proxies;
pub mod ranges;
pub mod requests;
pub mod routes;
pub mod startup;
pub mod tls;
