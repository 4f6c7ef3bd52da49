//! The command line: `run`, `check-config`, `sessions`, `transcript`, `stats`, `token`,
//! `backup` and `purge`. Parsing is clap's;
//! each subcommand is a small function that returns what the process should exit with.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod numbers;
use serde_json::{json, Value};

use crate::config::{Config, ConfigError, SECRET_ENV};
use crate::render::{self, one_line};
use crate::shell::{self, ShellError};
use crate::store::{
    stats, tags, MessageRow, PurgeFilter, Role, SessionRow, SessionState, Store, StoreError,
};

#[derive(Debug, Parser)]
#[command(name = "frontdesk", version, about = "Live chat for websites on XMPP: an external component with one room per visitor", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(long, short = 'c', env = "FRONTDESK_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

/// Where a reading command finds the database.
#[derive(Debug, Args)]
pub struct DbArg {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Read this database file instead of the config's [store] path (e.g. a backup).
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to the XMPP server and serve the rooms until SIGINT or SIGTERM.
    Run(ConfigArg),
    /// Check the config file and print every problem with its key.
    CheckConfig(ConfigArg),
    /// List chat sessions (the "ActiveUsers" table): id, room, state, staff, times.
    Sessions {
        #[command(flatten)]
        config: DbArg,
        /// Only sessions in this state: INACTIVE, ACTIVE, CHATTING or CLOSED.
        #[arg(long)]
        state: Option<SessionState>,
        /// Only sessions of this site.
        #[arg(long)]
        site: Option<String>,
        /// Only missed chats: closed without a staff reply to the visitor.
        #[arg(long)]
        missed: bool,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Numbers: chats, answered, missed, time to first staff reply, chat duration, per staff
    /// member and per day (UTC days). The SQL is in docs/storage.md.
    Stats {
        #[command(flatten)]
        config: DbArg,
        /// Only chats of this site.
        #[arg(long)]
        site: Option<String>,
        /// Only chats opened on or after this UTC day, YYYY-MM-DD.
        #[arg(long, value_parser = utc_day)]
        since: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a signed visitor token for a site with a token_secret (for tests, and for web
    /// apps that would rather shell out than compute the HMAC).
    Token {
        /// The site id, as in [[sites]] id.
        #[arg(long)]
        site: String,
        /// The visitor id: the part of the room name before `_<site>`.
        #[arg(long)]
        visitor: String,
        /// Seconds from now until the token expires.
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
        /// The visitor's name, signed into the token (staff see it with their offer).
        #[arg(long)]
        name: Option<String>,
        /// The visitor's email address, signed into the token.
        #[arg(long)]
        email: Option<String>,
        /// The web app's own id for the visitor, signed into the token.
        #[arg(long)]
        user_id: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print one session's transcript, oldest message first.
    Transcript {
        /// The session id (the #N staff see).
        id: i64,
        #[command(flatten)]
        config: DbArg,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy the database to FILE, consistently, while frontdesk runs (SQLite's online backup).
    Backup {
        /// The file to write; it must not exist unless --force.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Delete CLOSED sessions closed before DATE, with their transcripts. Safe while frontdesk
    /// runs; open sessions are never touched.
    Purge {
        /// YYYY-MM-DD (UTC): sessions closed before the start of this day go.
        #[arg(long, value_name = "DATE")]
        before: String,
        /// Only this site's sessions.
        #[arg(long)]
        site: Option<String>,
        /// Only say what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        config: ConfigArg,
    },
}

impl Command {
    /// The config file the command reads (main.rs takes `[log]` from it first).
    pub fn config_path(&self) -> &std::path::Path {
        match self {
            Command::Run(c) | Command::CheckConfig(c) => &c.config,
            Command::Sessions { config, .. }
            | Command::Transcript { config, .. }
            | Command::Stats { config, .. } => &config.config.config,
            Command::Token { config, .. }
            | Command::Backup { config, .. }
            | Command::Purge { config, .. } => &config.config,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error("--before {0:?} is not a date: write it as YYYY-MM-DD (UTC), e.g. 2026-01-31")]
    BadDate(String),
    #[error("no session #{0}")]
    NoSuchSession(i64),
    #[error("{0}")]
    Token(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
}

pub fn execute(cli: Cli) -> Result<ExitCode, CliError> {
    match dispatch(cli) {
        // `frontdesk transcript 1 | head`: the reader has all it wanted; not an error.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            Ok(ExitCode::SUCCESS)
        }
        other => other,
    }
}

/// `FRONTDESK_SECRET` when it is set and not empty (an empty one is ignored, as in `secret`).
fn env_secret() -> Option<String> {
    std::env::var(SECRET_ENV).ok().filter(|s| !s.is_empty())
}

fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Run(c) => run(c),
        Command::CheckConfig(c) => check_config(c),
        Command::Sessions {
            config,
            state,
            site,
            missed,
            json,
        } => sessions(
            config,
            Filter {
                state,
                site,
                missed,
            },
            json,
        ),
        Command::Stats {
            config,
            site,
            since,
            json,
        } => numbers::stats(&open_store(&config)?, stats::Filter { site, since }, json),
        Command::Transcript { id, config, json } => transcript(config, id, json),
        Command::Token {
            site,
            visitor,
            ttl,
            name,
            email,
            user_id,
            config,
        } => {
            let details = crate::token::Details {
                name,
                email,
                user_id,
            };
            token(config, &site, &visitor, ttl, &details)
        }
        Command::Backup { to, force, config } => backup(config, &to, force),
        Command::Purge {
            before,
            site,
            dry_run,
            config,
        } => purge(config, &before, site, dry_run),
    }
}

fn token(
    c: ConfigArg,
    site: &str,
    visitor: &str,
    ttl: i64,
    details: &crate::token::Details,
) -> Result<ExitCode, CliError> {
    let config = Config::load(&c.config)?;
    let Some(s) = config.sites.iter().find(|s| s.id.as_str() == site) else {
        return Err(CliError::Token(format!(
            "no site {site:?} in {} (sites: {})",
            c.config.display(),
            config
                .sites
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    };
    let Some(secret) = &s.token_secret else {
        return Err(CliError::Token(format!(
            "site {site:?} has no token_secret: its visitors need no token (set sites[].token_secret to require one)"
        )));
    };
    if crate::address::RoomName::parse(&format!("{visitor}_{site}")).is_err() || visitor.is_empty()
    {
        return Err(CliError::Token(format!(
            "{visitor:?} is not a usable visitor id: it becomes the local part of the room address {visitor}_{site}@..."
        )));
    }
    if ttl <= 0 {
        return Err(CliError::Token(
            "--ttl must be a positive number of seconds".into(),
        ));
    }
    let expires = crate::time::Timestamp::now().millis() / 1000 + ttl;
    let token = crate::token::mint_with(secret, visitor, site, expires, details);
    // What frontdesk would refuse, refused here, with the reason.
    if let Err(e) = crate::token::verify(secret, visitor, site, Some(&token), expires - 1) {
        return Err(CliError::Token(format!(
            "{e}: at most {} characters of name, {} of email and {} of user id",
            crate::token::NAME_CHARS,
            crate::token::EMAIL_CHARS,
            crate::token::USER_ID_CHARS
        )));
    }
    writeln!(std::io::stdout().lock(), "{token}")?;
    Ok(ExitCode::SUCCESS)
}

fn run(c: ConfigArg) -> Result<ExitCode, CliError> {
    let config = Config::load(&c.config)?;
    let secret = config.secret(env_secret())?;
    for w in config.exposed_secret_files(env_secret().is_some()) {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %c.config.display(), sites = config.sites.len(), "frontdesk starting");
    rt.block_on(shell::run(config, secret))?;
    tracing::info!("frontdesk stopped");
    Ok(ExitCode::SUCCESS)
}

fn check_config(c: ConfigArg) -> Result<ExitCode, CliError> {
    let config = Config::load(&c.config)?;
    config.secret(env_secret())?;
    let staff: usize = config.sites.iter().map(|s| s.staff.len()).sum();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{}: OK: component {} via {}, {} site(s), {} staff, database {}",
        c.config.display(),
        config.component.jid,
        config.component.server,
        config.sites.len(),
        staff,
        config.store.path.display()
    )?;
    for s in config.sites.iter().filter(|s| s.staff.is_empty()) {
        writeln!(
            out,
            "note: site {:?} has no staff yet: its visitors can chat but nobody can answer",
            s.id.as_str()
        )?;
    }
    for s in config.sites.iter().filter(|s| s.token_secret.is_none()) {
        writeln!(
            out,
            "warning: site {:?} has no token_secret: anyone who guesses a visitor's id can try to join their room, and a page reload waits for the old connection to go; set sites[].token_secret (docs/security.md)",
            s.id.as_str()
        )?;
    }
    for w in config.exposed_secret_files(env_secret().is_some()) {
        writeln!(out, "warning: {w}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--since`: a UTC day, `YYYY-MM-DD`.
fn utc_day(s: &str) -> Result<String, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .filter(|_| s.len() == 10)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .ok_or_else(|| format!("{s:?} is not a UTC day: write YYYY-MM-DD, e.g. 2026-11-01"))
}

fn open_store(c: &DbArg) -> Result<Store, CliError> {
    let path = match &c.db {
        Some(db) => db.clone(),
        None => Config::load(&c.config.config)?.store.path,
    };
    Ok(Store::open_read_only(&path)?)
}

fn backup(c: ConfigArg, to: &std::path::Path, force: bool) -> Result<ExitCode, CliError> {
    let config = Config::load(&c.config)?;
    let r = crate::store::backup(&config.store.path, to, force)?;
    println!(
        "backed up {} to {}: schema version {}, {} session(s), {} message(s), {:.1} MB in {:.2} s",
        config.store.path.display(),
        r.path.display(),
        r.schema_version,
        r.sessions,
        r.messages,
        r.bytes as f64 / 1e6,
        r.elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Rows (messages and sessions) per purge transaction: each is short, so a running
/// frontdesk's writer waits milliseconds at most.
const PURGE_ROWS: u64 = 1000;

fn purge(
    c: ConfigArg,
    before: &str,
    site: Option<String>,
    dry_run: bool,
) -> Result<ExitCode, CliError> {
    let config = Config::load(&c.config)?;
    let at = crate::store::retention::parse_date(before)
        .ok_or_else(|| CliError::BadDate(before.to_string()))?;
    let scope = site
        .as_deref()
        .map(|s| format!(" of site {s:?}"))
        .unwrap_or_default();
    let filter = PurgeFilter { before: at, site };
    let mut store = Store::open_existing(&config.store.path)?;
    let (verb, n) = if dry_run {
        ("would delete", store.purge_count(&filter)?)
    } else {
        ("deleted", store.purge(&filter, PURGE_ROWS)?)
    };
    println!(
        "{verb} {} session(s) and {} message(s){scope} closed before {}",
        n.sessions,
        n.messages,
        at.to_rfc3339()
    );
    Ok(ExitCode::SUCCESS)
}

fn opt_time(t: Option<crate::time::Timestamp>) -> Value {
    t.map(|t| Value::String(t.to_rfc3339()))
        .unwrap_or(Value::Null)
}

/// A session with what the listing adds: whether it was missed, and its tags.
pub fn listed_json(s: &SessionRow, missed: bool, tags: &[String]) -> Value {
    let mut v = session_json(s);
    v["missed"] = Value::Bool(missed);
    v["tags"] = json!(tags);
    v
}

pub fn session_json(s: &SessionRow) -> Value {
    json!({
        "id": s.id,
        "room": s.room,
        "site": s.site,
        "visitor": s.visitor,
        "state": s.state.as_str(),
        "staff": s.staff,
        "created_at": s.created_at.to_rfc3339(),
        "updated_at": s.updated_at.to_rfc3339(),
        "closed_at": opt_time(s.closed_at),
    })
}

pub fn message_json(m: &MessageRow) -> Value {
    json!({
        "at": m.at.to_rfc3339(),
        "role": m.role.as_str(),
        "from": m.from_jid,
        "nick": m.nick,
        "body": m.body,
        "stanza_id": m.stanza_id,
    })
}

/// Which sessions `frontdesk sessions` lists.
struct Filter {
    state: Option<SessionState>,
    site: Option<String>,
    missed: bool,
}

fn sessions(c: DbArg, f: Filter, json: bool) -> Result<ExitCode, CliError> {
    let store = open_store(&c)?;
    let missed = stats::missed_ids(store.conn())?;
    let tags = tags::all(store.conn())?;
    let mut rows = store.list_sessions(f.state, f.site.as_deref())?;
    rows.retain(|s| !f.missed || missed.contains(&s.id));
    let tags_of = |id: i64| tags.get(&id).map(Vec::as_slice).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if json {
        let arr: Vec<Value> = rows
            .iter()
            .map(|s| listed_json(s, missed.contains(&s.id), tags_of(s.id)))
            .collect();
        writeln!(out, "{}", Value::Array(arr))?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        writeln!(out, "no sessions")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{:>5}  {:<8}  {:<6}  {:<12}  {:<16}  {:<28}  {:<24}  {:<28}  ROOM",
        "#", "STATE", "MISSED", "SITE", "VISITOR", "STAFF", "UPDATED", "TAGS"
    )?;
    for s in &rows {
        writeln!(
            out,
            "{:>5}  {:<8}  {:<6}  {:<12}  {:<16}  {:<28}  {:<24}  {:<28}  {}",
            s.id,
            s.state.as_str(),
            if missed.contains(&s.id) {
                "missed"
            } else {
                "-"
            },
            one_line(&s.site),
            one_line(&s.visitor),
            one_line(s.staff.as_deref().unwrap_or("-")),
            s.updated_at.to_rfc3339(),
            tags_text(tags_of(s.id)),
            one_line(&s.room)
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Tags for a table: comma-separated, `-` when none (rendered: another writer may have put
/// anything there).
fn tags_text(tags: &[String]) -> String {
    if tags.is_empty() {
        return "-".into();
    }
    one_line(&tags.join(","))
}

fn transcript(c: DbArg, id: i64, json: bool) -> Result<ExitCode, CliError> {
    let store = open_store(&c)?;
    let session = store.session(id)?.ok_or(CliError::NoSuchSession(id))?;
    let lines = store.transcript(id)?;
    let tags = store.tags(id)?;
    let mut out = std::io::stdout().lock();
    if json {
        let arr: Vec<Value> = lines.iter().map(message_json).collect();
        writeln!(out, "{}", Value::Array(arr))?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "#{} {} (site {}, visitor {}) {}{}{}",
        session.id,
        one_line(&session.room),
        one_line(&session.site),
        one_line(&session.visitor),
        session.state,
        session
            .staff
            .as_deref()
            .map(|s| format!(" with {}", one_line(s)))
            .unwrap_or_default(),
        if tags.is_empty() {
            String::new()
        } else {
            let tags: Vec<String> = tags.iter().map(|t| one_line(t)).collect();
            format!(", tags: {}", tags.join(", "))
        }
    )?;
    // Each line one entry, whatever the text holds (see `render`).
    for m in &lines {
        let head = match m.role {
            Role::System => format!("{}  * ", m.at),
            role => format!("{}  {} ({}): ", m.at, one_line(&m.nick), role.as_str()),
        };
        writeln!(out, "{}", render::entry(&head, &m.body))?;
    }
    Ok(ExitCode::SUCCESS)
}
