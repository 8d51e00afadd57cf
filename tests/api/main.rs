//! Black-box tests over real HTTP against the application the binary runs.

mod backup;
#[cfg(feature = "s3")]
mod bucket;
mod bundle;
mod captions;
mod cli;
mod concurrency;
mod crash;
mod datadir;
mod doctor;
mod errors;
mod examples;
mod faults;
mod fsck;
mod helpers;
mod hostile;
mod logs;
mod media;
mod media_jobs;
mod metrics;
mod names;
#[cfg(all(feature = "postgres", feature = "s3"))]
mod nodes;
mod openapi;
mod pages;
mod probe;
mod publication;
mod resumable;
mod security;
mod shutdown;
mod signing_keys;
mod tls;
mod tokens;
mod upload_cli;
mod uploads;
mod videos;
mod webhooks;
