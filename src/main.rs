//! The `flare` binary: parse the command line, load settings, dispatch.

use clap::Parser;
use std::path::Path;
use std::process::ExitCode;

use flare::cli::commands as admin;
use flare::cli::{Cli, Command};
use flare::config::{RawSettings, Settings};
use flare::http::startup::Application;
use flare::logging;

fn main() -> ExitCode {
    flare::sys::limit_malloc_arenas();
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `Ok(false)`: the command ran and found something wrong (fsck).
fn run(cli: Cli) -> Result<bool, String> {
    let settings = load_settings(&cli)?;
    logging::init(settings.log_level, settings.log_format);
    for var in flare::config::unknown_env_vars(
        std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()),
    ) {
        log::warn!("{var} is not a flare setting and is ignored (flare serve --help lists them)");
    }
    match cli.command {
        Command::Serve(_) => actix_web::rt::System::new()
            .block_on(async {
                match flare::sys::raise_open_files_limit() {
                    Ok(n) => log::info!("open files limit: {n}"),
                    Err(e) => log::warn!("cannot raise the open files limit: {e}"),
                }
                let app = Application::build(settings).await?;
                app.run_until_stopped().await.map_err(|e| e.to_string())
            })
            .map(|()| true),
        Command::Token(cmd) => admin::token(&settings, cmd).map(|()| true),
        Command::Video(cmd) => admin::video(settings, cmd).map(|()| true),
        Command::Upload(cmd) => flare::cli::upload::run(flare::cli::upload::UploadArgs {
            expires_in: cmd.expires_in,
            files: cmd.files,
            server: cmd.server,
            token: cmd.token,
            title: cmd.title,
            chunk_size: cmd.chunk_size,
            json: cmd.json,
        })
        .map(|()| true),
        Command::Fsck {
            verify,
            repair,
            json,
        } => admin::fsck(settings, verify, repair, json),
        Command::Backup { dest, json } => {
            let s = flare::cli::backup::backup(&settings, &dest)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
                );
            } else {
                println!(
                    "backed up {} videos: {} files, {} bytes ({} hard-linked, {} copied) into {}",
                    s.videos,
                    s.files,
                    s.bytes,
                    s.linked,
                    s.copied,
                    flare::datadir::shown(&dest)
                );
            }
            Ok(true)
        }
        Command::Export {
            videos,
            all,
            since,
            file,
        } => {
            use flare::cli::bundle::Selection;
            let which = match (all, since, videos.is_empty()) {
                (true, _, _) => Selection::All,
                (false, Some(date), _) => Selection::Since(flare::time::parse_date(&date).ok_or(
                    format!("--since {date:?}: expected a date such as 2026-12-01"),
                )?),
                (false, None, false) => Selection::Ids(videos),
                (false, None, true) => {
                    return Err(
                        "say which videos: --video ID (repeatable), --all or --since DATE".into(),
                    )
                }
            };
            let app = flare::state::AppState::open(settings, None)?;
            let s = flare::cli::bundle::export(&app, which, &file)?;
            println!(
                "exported {} videos ({} files, {} bytes) into {}",
                s.videos,
                s.files,
                s.bytes,
                file.display()
            );
            Ok(true)
        }
        Command::MigrateStore { json } => {
            let records = match &settings.database_url {
                Some(url) => flare::cli::migrate::copy_records(
                    &settings.data_dir,
                    &flare::db::Db::open_url(&url.0)?,
                )?,
                None => None,
            };
            let app = flare::state::AppState::open(settings, None)?;
            let s = flare::cli::migrate::migrate_store(&app, records)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
                );
            } else {
                if let Some(rows) = s.records {
                    println!("copied {rows} new rows from flare.db into PostgreSQL");
                }
                if let Some(bucket) = &s.bucket {
                    println!(
                    "copied {} videos' objects ({} bytes, each checked) into bucket {:?}; {} were \
                     there already{}",
                    s.copied,
                    s.bytes,
                    bucket,
                    s.already,
                    if s.failed.is_empty() {
                        String::new()
                    } else {
                        format!("; {} failed: {}", s.failed.len(), s.failed.join("; "))
                    }
                );
                }
                if s.copied + s.already > 0 && s.failed.is_empty() {
                    println!(
                        "the files under objects/ are no longer read: remove them once you have \
                         checked the videos (flare fsck --verify)"
                    );
                }
            }
            Ok(s.failed.is_empty())
        }
        Command::Import { file } => {
            let app = flare::state::AppState::open(settings, None)?;
            let s = flare::cli::bundle::import(&app, &file)?;
            println!(
                "imported {} videos ({} files, {} bytes, each checked); {} already here; {} conflict(s){}",
                s.videos,
                s.files,
                s.bytes,
                s.already_here,
                s.conflicts.len(),
                if s.conflicts.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": {} exist here with other bytes and were left as they are",
                        s.conflicts.join(", ")
                    )
                }
            );
            Ok(s.conflicts.is_empty())
        }
        Command::Doctor { json } => {
            let report = flare::cli::doctor::doctor(&settings);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
                );
            } else {
                for c in &report.checks {
                    let status = match c.status {
                        flare::cli::doctor::Status::Ok => "ok  ",
                        flare::cli::doctor::Status::Warn => "warn",
                        flare::cli::doctor::Status::Fail => "FAIL",
                    };
                    println!("{status}  {:<16} {}", c.name, c.detail);
                    if let Some(fix) = &c.fix {
                        println!("      {:<16} fix: {fix}", "");
                    }
                }
            }
            Ok(report.ok)
        }
        Command::Webhook(flare::cli::WebhookCommand::Test { url, secret }) => {
            let status = flare::cli::webhook::test(&settings, &url, secret.as_deref())?;
            println!("{url} answered {status}");
            Ok((200..300).contains(&status))
        }
        Command::Webhook(flare::cli::WebhookCommand::Deliveries { limit, json }) => {
            let list = flare::cli::webhook::deliveries(&settings, limit)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?
                );
            } else {
                for d in list {
                    println!(
                        "{} {:<13} {:<9} attempts {} last {} {}  {}",
                        flare::time::iso8601(d.created_at),
                        d.event,
                        d.state,
                        d.attempts,
                        d.last_status.map_or("-".to_string(), |s| s.to_string()),
                        d.last_error.unwrap_or_default(),
                        d.url
                    );
                }
            }
            Ok(true)
        }
        Command::Url(flare::cli::UrlCommand::Explain { url, json }) => {
            let e = flare::cli::doctor::explain_url(&settings, &url)?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&e).map_err(|e| e.to_string())?
                );
            } else {
                println!(
                    "{} URL: {}",
                    e.kind,
                    if e.accepted {
                        "would be accepted now"
                    } else {
                        "would be refused"
                    }
                );
                for fact in &e.facts {
                    println!("  - {fact}");
                }
            }
            Ok(e.accepted)
        }
        Command::Restore { src } => {
            let s = flare::cli::backup::restore(&settings, &src)?;
            println!(
                "restored {} videos: {} files, {} bytes, each checked against the manifest, into {}",
                s.videos,
                s.files,
                s.bytes,
                flare::datadir::shown(&settings.data_dir)
            );
            Ok(true)
        }
    }
}

/// The config file (explicit, or ./flare.toml when present), then the environment, then flags.
fn load_settings(cli: &Cli) -> Result<Settings, String> {
    let file = match &cli.config {
        Some(path) => RawSettings::from_file(path)?,
        None if Path::new("flare.toml").is_file() => {
            RawSettings::from_file(Path::new("flare.toml"))?
        }
        None => RawSettings::default(),
    };
    let env = RawSettings::from_env(|var| std::env::var(var).ok())?;
    let mut flags = RawSettings {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone().map(flare::config::Secret),
        ..RawSettings::default()
    };
    if let Command::Serve(args) = &cli.command {
        flags.listen = args.listen.clone();
        flags.public_url = args.public_url.clone();
        flags.tls_cert = args.tls_cert.clone();
        flags.tls_key = args.tls_key.clone();
    }
    Settings::resolve([file, env, flags])
}
