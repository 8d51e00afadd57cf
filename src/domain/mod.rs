//! What flare is about, without HTTP: tokens and who may do what, videos, signed upload URLs,
//! publication, embed settings, passwords and their throttle, names that are safe as paths.

pub mod auth;
pub mod captions;
pub mod embed;
pub mod faststart;
pub mod ffmpeg;
pub mod in_flight;
pub mod media_jobs;
pub mod names;
pub mod passwords;
pub mod probe;
pub mod publish;
pub mod resumable;
pub mod sessions;
pub mod signing;
pub mod throttle;
pub mod token_cache;
pub mod tokens;
pub mod uploads;
pub mod videos;
pub mod webhooks;
