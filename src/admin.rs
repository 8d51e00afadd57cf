//! The operator's subcommands (`flare token …`), run straight against the database file. Safe
//! beside a running server: SQLite's WAL and busy timeout arbitrate.

use ring::rand::SystemRandom;
use serde_json::json;
use std::io::Write;

use crate::cli::TokenCommand;
use crate::config::Settings;
use crate::db::{self, tokens::TokenRow, Db};
use crate::time::{iso8601, now_ms, parse_duration};
use crate::tokens::{self, Scope, Secret};

const MAX_NAME_CHARS: usize = 100;

/// Runs one `flare token …` command. Output for programs goes to stdout, the rest to stderr.
pub fn token(settings: &Settings, cmd: TokenCommand) -> Result<(), String> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create the data folder {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let db = Db::open(&settings.data_dir.join("flare.db"))?;
    match cmd {
        TokenCommand::Create {
            name,
            scopes,
            expires_in,
        } => create(&db, name, scopes, expires_in),
        TokenCommand::List { json } => list(&db, json),
        TokenCommand::Revoke { id } => revoke(&db, &id),
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
        id: tokens::random_id(&rng, "tok_", 6),
        name: name.to_string(),
        scopes: unique,
        created_at: now_ms(),
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    db.call(|c| db::tokens::insert(c, &row, &hash))
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
        .call(|c| db::tokens::list(c))
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
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&table) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end()).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn revoke(db: &Db, id: &str) -> Result<(), String> {
    let now = now_ms();
    let (existing, revoked) = db
        .call(|c| {
            Ok::<_, rusqlite::Error>((db::tokens::get(c, id)?, db::tokens::revoke(c, id, now)?))
        })
        .map_err(|e| format!("cannot revoke: {e}"))?;
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
