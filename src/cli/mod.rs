//! The command line, as clap derive types. Behaviour lives in `main.rs` and the domain modules.

pub mod backup;
pub mod bundle;
pub mod commands;
pub mod doctor;
pub mod fsck;
pub mod migrate;
pub mod upload;
pub mod webhook;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "flare",
    version,
    about = "A self-hosted backend for the Flare video upload API",
    long_about = "A self-hosted backend for the Flare video upload API.\n\n\
        Settings come from built-in defaults, then flare.toml, then FLARE_* environment \
        variables, then flags; each later source wins."
)]
pub struct Cli {
    /// Config file to read. Without it, ./flare.toml is read when it exists.
    #[arg(long, global = true, env = "FLARE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Folder for the database, the signing key and the uploaded objects [default: ./data].
    #[arg(long, global = true, env = "FLARE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// PostgreSQL to keep the records in, instead of DIR/flare.db (needs the `postgres`
    /// feature); also `database_url` in flare.toml, or FLARE_DATABASE_URL.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Create, list and revoke personal access tokens (works while a server runs).
    #[command(subcommand)]
    Token(TokenCommand),
    /// List, show and delete videos (works while a server runs).
    #[command(subcommand)]
    Video(VideoCommand),
    /// Upload video files to a flare server, resumably: an interrupted upload continues when
    /// the same command is run again. Prints each file's public URL.
    Upload(UploadCommand),
    /// Compare the database with the files; exit 1 when something is wrong.
    Fsck {
        /// Re-hash every object and compare it with its recorded sha256.
        #[arg(long)]
        verify: bool,
        /// Fix what can be fixed without losing data: orphans move to DATA_DIR/lost+found.
        #[arg(long)]
        repair: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy this data folder into PostgreSQL and S3: with database_url, every record of
    /// flare.db (stop the server first); with [s3], the objects of its videos, each checked
    /// against its recorded SHA-256 on the way. A site grows to several nodes without
    /// uploading anything again. Resumable: run it again after a stop, and what was copied is
    /// skipped. flare.db and the files in objects/ are left where they are.
    MigrateStore {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Copy the data folder into DEST while the server runs: a consistent database snapshot,
    /// every object (hard-linked on the same file system, else copied and checked), the
    /// signing key, and a manifest with every file's SHA-256.
    Backup {
        /// A new or empty folder.
        #[arg(value_name = "DEST")]
        dest: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write videos into one tar archive for another node (an air-gap transfer): records,
    /// captions, posters, renditions and files, with every file's SHA-256.
    Export {
        /// The videos to export (repeat the flag).
        #[arg(long = "video", value_name = "ID")]
        videos: Vec<String>,
        /// Every video.
        #[arg(long, conflicts_with_all = ["videos", "since"])]
        all: bool,
        /// Videos changed on or after this date (YYYY-MM-DD, UTC).
        #[arg(long, value_name = "DATE", conflicts_with = "videos")]
        since: Option<String>,
        /// A new file.
        #[arg(value_name = "FILE.tar")]
        file: PathBuf,
    },
    /// Add the videos of a bundle made by `flare export`, checking every byte: a video already
    /// here with the same bytes is left alone, one that differs is reported and not touched.
    Import {
        #[arg(value_name = "FILE.tar")]
        file: PathBuf,
    },
    /// Check what an operator gets wrong (data folder, database, signing key, public URL, clock,
    /// ffmpeg) and say how to fix each; exit 1 when a check fails.
    Doctor {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Webhooks: send a test, or see the latest deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Work with URLs flare handed out.
    #[command(subcommand)]
    Url(UrlCommand),
    /// Make a new data folder (--data-dir, which must be new or empty) from a backup, checking
    /// every file against its manifest; nothing is written in place unless all of it checks.
    Restore {
        /// The folder `flare backup` made.
        #[arg(value_name = "SRC")]
        src: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Send a signed webhook.test message to URL now and print the answer's status (exit 1
    /// unless 2xx). Uses the [[webhook]] secret for URL, or --secret.
    Test {
        url: String,
        /// whsec_… (for a URL not in the settings).
        #[arg(long, env = "FLARE_WEBHOOK_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// The latest deliveries, newest first: event, URL, state, attempts, last answer.
    Deliveries {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UrlCommand {
    /// Decode an upload or media URL and say whether this node would accept it now, and if not
    /// why (expired, spent, token revoked, signature bad, video gone). Exit 1 when refused.
    Explain {
        /// The whole URL, quoted.
        url: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct UploadCommand {
    /// The video files to upload, one video each.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The server's URL, e.g. http://192.168.1.20:8080.
    #[arg(long, env = "FLARE_SERVER", value_name = "URL")]
    pub server: String,
    /// A token with the uploads:write and videos:write scopes (better in FLARE_TOKEN than on the
    /// command line, where other users can see it).
    #[arg(
        long,
        env = "FLARE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: String,
    /// The video's title [default: the file name without its extension].
    #[arg(long)]
    pub title: Option<String>,
    /// Bytes per request [default: the server's chunkSize, 50 MiB unless it caps requests].
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub chunk_size: Option<u64>,
    /// How long the upload may take to start, such as 3600, 45m or 12h [default: the server's
    /// upload_url_ttl]. Once started it may go on for the server's resumable_window.
    #[arg(long, value_name = "DURATION")]
    pub expires_in: Option<String>,
    /// Print a JSON object per file (videoId, publicUrl, size, sha256) instead of the URL.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum VideoCommand {
    /// List videos, newest first.
    List {
        /// Print the API's JSON (`{videos, nextCursor}`) instead of a table.
        #[arg(long)]
        json: bool,
        /// How many videos to show (1 to 200).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
        limit: u32,
        /// Start after this page cursor, as printed by an earlier list.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show one video.
    Show {
        id: String,
        /// Print the API's Video object as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a video: its record, its upload URLs and its files.
    Delete { id: String },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "FLARE_LISTEN", value_name = "ADDR:PORT")]
    pub listen: Option<String>,

    /// The URL clients use to reach this server; upload URLs are built on it
    /// [default: http://LISTEN].
    #[arg(long, env = "FLARE_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key. Re-read on SIGHUP.
    #[arg(long, env = "FLARE_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<std::path::PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "FLARE_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it, alone, on stdout. It is shown only this once.
    Create {
        /// A name to recognise the token by, e.g. the machine that uses it.
        #[arg(long)]
        name: String,
        /// A scope to grant; repeat for several. Without any, the token gets every scope:
        /// videos:read, videos:write, uploads:write, embeds:write, webhooks:write.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Lifetime such as 3600, 45m, 12h, 90d or 2w. Without it the token does not expire.
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// List tokens (never their secrets).
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (tok_...). Requests and upload URLs using it stop working at once.
    Revoke {
        /// The token's id, as `flare token list` shows it.
        id: String,
    },
}
