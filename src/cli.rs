//! The command line: `run`, `check-config`, `sessions`, `transcript`, `stats` and `token`. Parsing is clap's;
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
use crate::store::{stats, tags, MessageRow, Role, SessionRow, SessionState, Store, StoreError};

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to the XMPP server and serve the rooms until SIGINT or SIGTERM.
    Run(ConfigArg),
    /// Check the config file and print every problem with its key.
    CheckConfig(ConfigArg),
    /// List chat sessions (the "ActiveUsers" table): id, room, state, staff, times.
    Sessions {
        #[command(flatten)]
        config: ConfigArg,
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
        config: ConfigArg,
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
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print one session's transcript, oldest message first.
    Transcript {
        /// The session id (the #N staff see).
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
        /// Print a JSON array instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shell(#[from] ShellError),
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
            config,
        } => token(config, &site, &visitor, ttl),
    }
}

fn token(c: ConfigArg, site: &str, visitor: &str, ttl: i64) -> Result<ExitCode, CliError> {
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
    println!("{}", crate::token::mint(secret, visitor, site, expires));
    Ok(ExitCode::SUCCESS)
}

fn run(c: ConfigArg) -> Result<ExitCode, CliError> {
    let config = Config::load(&c.config)?;
    let secret = config.secret(std::env::var(SECRET_ENV).ok())?;
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
    config.secret(std::env::var(SECRET_ENV).ok())?;
    let staff: usize = config.sites.iter().map(|s| s.staff.len()).sum();
    println!(
        "{}: OK: component {} via {}, {} site(s), {} staff, database {}",
        c.config.display(),
        config.component.jid,
        config.component.server,
        config.sites.len(),
        staff,
        config.store.path.display()
    );
    for s in config.sites.iter().filter(|s| s.staff.is_empty()) {
        println!(
            "note: site {:?} has no staff yet: its visitors can chat but nobody can answer",
            s.id.as_str()
        );
    }
    for s in config.sites.iter().filter(|s| s.token_secret.is_none()) {
        println!(
            "warning: site {:?} has no token_secret: anyone who guesses a visitor's id can try to join their room, and a page reload waits for the old connection to go; set sites[].token_secret (docs/security.md)",
            s.id.as_str()
        );
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

pub(crate) fn open_store(c: &ConfigArg) -> Result<Store, CliError> {
    let config = Config::load(&c.config)?;
    Ok(Store::open_read_only(&config.store.path)?)
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

fn sessions(c: ConfigArg, f: Filter, json: bool) -> Result<ExitCode, CliError> {
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

fn transcript(c: ConfigArg, id: i64, json: bool) -> Result<ExitCode, CliError> {
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
