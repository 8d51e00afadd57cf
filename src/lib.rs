//! flare: a self-hosted backend for the Flare video upload API.

pub mod admin;
pub mod auth;
pub mod body;
pub mod cli;
pub mod config;
pub mod db;
pub mod embed;
pub mod error;
pub mod fastpath;
pub mod faults;
pub mod fsck;
pub mod logging;
pub mod names;
pub mod pages;
pub mod passwords;
pub mod publish;
pub mod ranges;
pub mod routes;
pub mod signing;
pub mod startup;
pub mod storage;
pub mod throttle;
pub mod time;
pub mod tokens;
pub mod uploads;
pub mod videos;
