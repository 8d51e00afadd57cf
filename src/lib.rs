//! flare: a self-hosted backend for the Flare video upload API.
//!
//! The rooms, and which way the arrows go, are drawn in docs/ARCHITECTURE.md.

// Every `unsafe` block is a Linux system call behind a safe function in `sys`.
#![deny(unsafe_code)]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "flare runs on Linux only: it sends media with sendfile(2) and probes the page cache with \
     cachestat(2) or mincore(2) (src/sys.rs)"
);

pub mod cli;
pub mod config;
pub mod datadir;
pub mod db;
pub mod domain;
pub mod error;
pub mod faults;
pub mod http;
pub mod ids;
pub mod json;
pub mod keys;
pub mod logging;
pub mod metrics;
pub mod state;
pub mod storage;
#[allow(unsafe_code)]
pub mod sys;
pub mod time;
