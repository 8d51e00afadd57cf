//! The operator's subcommands (`flare token …`), run straight against the database file. Safe
//! beside a running server: SQLite's WAL and busy timeout arbitrate.

use ring::rand::SystemRandom;
use serde_json::json;
use std::io::Write;

use crate::cli::{TokenCommand, VideoCommand};
use crate::config::Settings;
use crate::db::{self, tokens::TokenRow, Db};
use crate::domain::tokens::{self, Scope, Secret};
use crate::domain::videos;
use crate::state::AppState;
use crate::time::{iso8601, now_ms, parse_duration};

const MAX_NAME_CHARS: usize = 100;

/// Runs one `flare token …` command. Output for programs goes to stdout, the rest to stderr.
pub fn token(settings: &Settings, cmd: TokenCommand) -> Result<(), String> {
    // Only `token create` may start a data folder (a token made there works once a server
    // starts on it); listing or revoking in a folder that is not there is a mistyped path.
    let creating = matches!(cmd, TokenCommand::Create { .. });
    crate::datadir::ensure(&settings.data_dir, creating)?;
    if let Some(url) = &settings.database_url {
        return token_on(&Db::open_url(&url.0)?, cmd);
    }
    let db_path = settings.data_dir.join("flare.db");
    if !db_path.exists() {
        crate::datadir::refuse_new_database_beside_objects(&settings.data_dir)?;
    }
    if !creating && !db_path.exists() {
        return Err(format!(
            "there is no flare database in {}: check --data-dir",
            crate::datadir::shown(&settings.data_dir)
        ));
    }
    crate::datadir::create_private_file(&db_path)
        .map_err(|e| format!("cannot create {}: {e}", db_path.display()))?;
    token_on(&Db::open(&db_path)?, cmd)
}

fn token_on(db: &Db, cmd: TokenCommand) -> Result<(), String> {
    match cmd {
        TokenCommand::Create {
            name,
            scopes,
            expires_in,
        } => create(db, name, scopes, expires_in),
        TokenCommand::List { json } => list(db, json),
        TokenCommand::Revoke { id } => revoke(db, &id),
    }
}

fn create(
    db: &Db,
    name: String,
    scopes: Vec<String>,
    expires_in: Option<String>,
) -> Result<(), String> {
    let all = scopes.is_empty();
    let granted: Vec<Scope> = if all {
        Scope::ALL.to_vec()
    } else {
        scopes
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()?
    };
    let expires_at = match expires_in {
        Some(text) => Some(
            now_ms()
                + parse_duration(&text).map_err(|e| format!("--expires-in: {e}"))? as i64 * 1000,
        ),
        None => None,
    };
    let (secret, row) = create_token(db, &name, &granted, expires_at)?;
    if all {
        eprintln!("no --scope given: the token gets every scope");
    }
    eprintln!(
        "created token {} ({:?}) with scopes {}; {}",
        row.id,
        row.name,
        tokens::scopes_to_text(&row.scopes).replace(' ', ", "),
        match row.expires_at {
            Some(at) => format!("expires {}", iso8601(at)),
            None => "never expires".into(),
        }
    );
    eprintln!("this is the only time the token is shown; store it now");
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", secret.expose()).map_err(|e| e.to_string())
}

/// Makes and stores a token; returns its secret (to show once) and its row.
pub fn create_token(
    db: &Db,
    name: &str,
    scopes: &[Scope],
    expires_at: Option<i64>,
) -> Result<(Secret, TokenRow), String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "--name must be 1 to {MAX_NAME_CHARS} printable characters"
        ));
    }
    let mut unique: Vec<Scope> = Vec::new();
    for scope in scopes {
        if !unique.contains(scope) {
            unique.push(*scope);
        }
    }
    let rng = SystemRandom::new();
    let (secret, hash) = tokens::generate(&rng);
    let row = TokenRow {
        id: crate::ids::random_id(&rng, "tok_", 6),
        name: name.to_string(),
        scopes: unique,
        created_at: now_ms(),
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    db.blocking(|c| db::tokens::insert(c, &row, &hash))
        .map_err(|e| format!("cannot store the token: {e}"))?;
    Ok((secret, row))
}

fn status(t: &TokenRow, now: i64) -> &'static str {
    if t.revoked_at.is_some() {
        "revoked"
    } else if t.expires_at.is_some_and(|at| now >= at) {
        "expired"
    } else {
        "active"
    }
}

fn list(db: &Db, as_json: bool) -> Result<(), String> {
    let rows = db
        .blocking(|c| db::tokens::list(c))
        .map_err(|e| format!("cannot read tokens: {e}"))?;
    let now = now_ms();
    let mut out = std::io::stdout().lock();
    if as_json {
        let items: Vec<_> = rows
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "name": t.name,
                    "scopes": t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "createdAt": iso8601(t.created_at),
                    "expiresAt": t.expires_at.map(iso8601),
                    "lastUsedAt": t.last_used_at.map(iso8601),
                    "revoked": t.revoked_at.is_some(),
                    "revokedAt": t.revoked_at.map(iso8601),
                    "status": status(t, now),
                })
            })
            .collect();
        let text = serde_json::to_string_pretty(&items).map_err(|e| e.to_string())?;
        return writeln!(out, "{text}").map_err(|e| e.to_string());
    }
    if rows.is_empty() {
        eprintln!("no tokens yet; create one with `flare token create --name NAME`");
        return Ok(());
    }
    let day = |ms: Option<i64>| {
        ms.map(|v| iso8601(v)[..16].replace('T', " "))
            .unwrap_or_else(|| "-".into())
    };
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|t| {
            [
                t.id.clone(),
                t.name.clone(),
                tokens::scopes_to_text(&t.scopes).replace(' ', ","),
                day(Some(t.created_at)),
                day(t.expires_at),
                day(t.last_used_at),
                status(t, now).to_string(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "NAME",
        "SCOPES",
        "CREATED (UTC)",
        "EXPIRES",
        "LAST USED",
        "STATUS",
    ];
    let table: Vec<Vec<String>> = table.into_iter().map(Vec::from).collect();
    writeln!(out, "{}", render_table(&header, &table)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Revokes a token and tells running servers (see `auth::TokenCache`): the token as it was,
/// and whether this call revoked it (false when it already was). Blocking.
pub fn revoke_token(db: &Db, id: &str) -> Result<(Option<TokenRow>, bool), String> {
    let now = now_ms();
    let (existing, revoked) = db
        .blocking(|c| {
            Ok::<_, crate::db::sql::Error>((
                db::tokens::get(c, id)?,
                db::tokens::revoke(c, id, now)?,
            ))
        })
        .map_err(|e| format!("cannot revoke: {e}"))?;
    if revoked {
        if let Err(e) = db.note_tokens_revoked() {
            eprintln!(
                "warning: the revocation is stored, but running servers could not be told ({e}); \
                 it applies there within a second"
            );
        }
    }
    Ok((existing, revoked))
}

fn revoke(db: &Db, id: &str) -> Result<(), String> {
    let (existing, revoked) = revoke_token(db, id)?;
    match (existing, revoked) {
        (None, _) => Err(format!(
            "no token has the id `{id}`; `flare token list` shows the ids"
        )),
        (Some(t), false) => {
            eprintln!("token {} ({:?}) was already revoked", t.id, t.name);
            Ok(())
        }
        (Some(t), true) => {
            eprintln!(
                "revoked token {} ({:?}); requests and upload URLs using it are refused from now on",
                t.id, t.name
            );
            Ok(())
        }
    }
}

/// Runs one `flare video …` command through the same code as the API.
pub fn video(settings: Settings, cmd: VideoCommand) -> Result<(), String> {
    let app = AppState::open(settings, None)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut print = |text: String| writeln!(out, "{text}").map_err(|e| e.to_string());
    runtime.block_on(async {
        match cmd {
            VideoCommand::List {
                json,
                limit,
                cursor,
            } => {
                let (rows, next) = videos::list(&app, limit, cursor.as_deref())
                    .await
                    .map_err(|e| e.message())?;
                if json {
                    let list: Vec<_> = rows.iter().map(|v| videos::to_json(&app, v)).collect();
                    return print(pretty(&json!({ "videos": list, "nextCursor": next })));
                }
                if rows.is_empty() {
                    eprintln!("no videos");
                    return Ok(());
                }
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|v| {
                        vec![
                            v.id.clone(),
                            v.title.clone().unwrap_or_default(),
                            v.status.as_str().to_string(),
                            v.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                            iso8601(v.created_at)[..16].replace('T', " "),
                            if v.password_hash.is_some() {
                                "yes"
                            } else {
                                "no"
                            }
                            .into(),
                        ]
                    })
                    .collect();
                print(render_table(
                    &[
                        "ID",
                        "TITLE",
                        "STATUS",
                        "BYTES",
                        "CREATED (UTC)",
                        "PASSWORD",
                    ],
                    &table,
                ))?;
                if let Some(next) = next {
                    eprintln!("more: flare video list --cursor {next}");
                }
                Ok(())
            }
            VideoCommand::Show { id, json } => {
                let v = videos::get(&app, &id).await.map_err(|e| e.message())?;
                let obj =
                    serde_json::to_value(videos::to_json(&app, &v)).map_err(|e| e.to_string())?;
                if json {
                    return print(pretty(&obj));
                }
                // One line per field; an object (`media`) as `media.videoCodec` and so on.
                let mut fields: Vec<(String, &serde_json::Value)> = Vec::new();
                for (k, value) in obj.as_object().expect("a Video is an object") {
                    match value.as_object() {
                        Some(inner) => {
                            fields.extend(inner.iter().map(|(ik, iv)| (format!("{k}.{ik}"), iv)))
                        }
                        None => fields.push((k.clone(), value)),
                    }
                }
                let width = fields
                    .iter()
                    .map(|(k, _)| k.len())
                    .max()
                    .unwrap_or(0)
                    .max("watchPage".len());
                for (k, value) in fields {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => "-".into(),
                        other => other.to_string(),
                    };
                    print(format!("{k:<width$}  {text}"))?;
                }
                print(format!(
                    "{:<width$}  {}/v/{}",
                    "watchPage", app.base_url, v.id
                ))?;
                eprintln!("links built on {} from {}", app.base_url, app.links_from);
                Ok(())
            }
            VideoCommand::Delete { id } => {
                videos::delete(&app, &id).await.map_err(|e| e.message())?;
                eprintln!("deleted video {id}: its record, upload URLs and files are gone");
                Ok(())
            }
        }
    })
}

fn pretty(v: &serde_json::Value) -> String {
    serde_json::to_string_pretty(v).expect("JSON values serialise")
}

/// Columns padded to their widest cell; the header first.
fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    std::iter::once(&header)
        .chain(rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `flare fsck`: the report on stdout; `Ok(false)` when something is still wrong.
pub fn fsck(settings: Settings, verify: bool, repair: bool, as_json: bool) -> Result<bool, String> {
    let app = AppState::open(settings, None)?;
    let report = crate::cli::fsck::check(&app, &crate::cli::fsck::Options { verify, repair })?;
    let mut out = std::io::stdout().lock();
    let text = if as_json {
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
    } else {
        let mut lines: Vec<String> = report
            .problems
            .iter()
            .map(|p| {
                format!(
                    "{}{} {}{}: {}",
                    if p.repaired { "repaired " } else { "" },
                    p.kind,
                    p.video_id.as_deref().unwrap_or("-"),
                    p.path
                        .as_deref()
                        .map(|p| format!(" ({p})"))
                        .unwrap_or_default(),
                    p.detail
                )
            })
            .collect();
        lines.push(format!(
            "{} videos, {} files, {} bytes re-hashed: {}",
            report.videos,
            report.files,
            report.bytes_verified,
            match (report.problems.len(), report.ok) {
                (0, _) => "all consistent".to_string(),
                (n, true) => format!("{n} problem(s), all repaired"),
                (n, false) => format!("{n} problem(s); run with --repair to fix what can be fixed"),
            }
        ));
        lines.join("\n")
    };
    writeln!(out, "{text}").map_err(|e| e.to_string())?;
    Ok(report.ok)
}
