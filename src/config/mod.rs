//! The TOML config file: reading it, checking every key (all problems at once, each with its
//! dotted key), and the secret, which is resolved only when it is needed.
//!
//! The table is walked by hand rather than with `serde(deny_unknown_fields)` because serde
//! stops at the first problem and an operator fixing a config wants the whole list.
//!
//! This file holds the types the rest of frontdesk uses; the checking is in four parts:
//! `read` (typed values out of a TOML table, collecting problems), `check` (the sections
//! `[component]`, `[store]`, `[roster]`, `[limits]`), `log` (`[log]`) and `sites` (`[[sites]]`).

mod check;
mod desk;
pub mod hours;
mod log;
pub mod prechat;
mod read;
mod sites;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use toml::Table;

pub use log::{LogConfig, LogFormat};
pub use prechat::{PrechatField, PrechatKind};
use read::Checker;

use crate::token::TokenSecret;
use xmpp_parsers::jid::BareJid;

use crate::address::SiteId;

pub const DEFAULT_PATH: &str = "frontdesk.toml";
pub const SECRET_ENV: &str = "FRONTDESK_SECRET";

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    pub component: ComponentConfig,
    pub store: StoreConfig,
    pub roster: RosterConfig,
    pub limits: Limits,
    /// `[log]`; main.rs reads it before the rest with `LogConfig::peek`.
    pub log: LogConfig,
    pub sites: Vec<Site>,
    /// Accounts that see every site in the front desk's answers (`!diag`), not only their own.
    pub admins: Vec<BareJid>,
    /// The files secrets are read from, with their dotted keys (`component.secret_file`,
    /// `sites[N].token_secret_file`).
    pub secret_files: Vec<(String, PathBuf)>,
    pub metrics: MetricsConfig,
}

/// `[metrics]`: the Prometheus endpoint (`/metrics`, `/healthz`), off unless `listen` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    pub listen: Option<std::net::SocketAddr>,
}

/// `[limits]`: what one stanza, one visitor and the whole service may use. Everything a
/// visitor sends is hostile until proven otherwise; over a limit it gets an error and nothing
/// else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one stanza as the server passes it on.
    pub stanza_bytes: usize,
    /// Element depth below the stanza.
    pub depth: usize,
    /// Children of any one element.
    pub children: usize,
    /// Characters of a message body.
    pub body_chars: usize,
    /// Characters of a nickname.
    pub nick_chars: usize,
    /// Rooms one visitor address may be in at once.
    pub rooms_per_visitor: usize,
    /// Open sessions in all, and per site.
    pub sessions: usize,
    pub sessions_per_site: usize,
    /// A visitor's messages: a token bucket refilled at this rate, holding at most `message_burst`.
    pub messages_per_minute: u32,
    pub message_burst: u32,
    /// Joins by one address (staff are not limited), across leaving and joining again.
    pub joins_per_minute: u32,
    pub join_burst: u32,
    /// Presence updates (status changes) from one address in rooms.
    pub presence_per_minute: u32,
    pub presence_burst: u32,
    /// Characters of a presence status text shown to others (longer ones are cut).
    pub status_chars: usize,
    /// Bytes of message text one room keeps in memory for history on join (the newest; the
    /// store keeps everything).
    pub history_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            stanza_bytes: 65_536,
            depth: 32,
            children: 256,
            body_chars: 10_000,
            nick_chars: 64,
            rooms_per_visitor: 3,
            sessions: 20_000,
            sessions_per_site: 20_000,
            messages_per_minute: 60,
            message_burst: 10,
            joins_per_minute: 20,
            join_burst: 10,
            presence_per_minute: 30,
            presence_burst: 10,
            status_chars: 500,
            history_bytes: 65_536,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ComponentConfig {
    /// The component's domain, e.g. `chat.example.com`.
    pub jid: BareJid,
    /// `host:port` of the server's XEP-0114 listener.
    pub server: String,
    pub secret: SecretSource,
}

#[derive(Clone)]
pub enum SecretSource {
    Inline(String),
    File(PathBuf),
    /// Neither key was given; only `FRONTDESK_SECRET` can supply it.
    Unset,
}

impl fmt::Debug for SecretSource {
    // The secret never reaches a log, not even through Debug.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(***)"),
            SecretSource::File(p) => write!(f, "File({})", p.display()),
            SecretSource::Unset => f.write_str("Unset"),
        }
    }
}

/// The component secret, redacted in Debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Resolved against the config file's directory when relative.
    pub path: PathBuf,
    /// `[store] synchronous`: when a commit returns.
    pub synchronous: crate::store::Durability,
    /// `[store] retain_days`: CLOSED sessions older than this are deleted daily; None keeps all.
    pub retain_days: Option<u32>,
}

/// How visitors get into staff rosters (`[roster]`, optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterConfig {
    pub mode: RosterMode,
    /// Base URL of ejabberd's HTTP admin API, e.g. `http://127.0.0.1:5280/api`.
    pub ejabberd_api: Option<HttpUrl>,
    /// How long a CLOSED visitor stays in staff rosters.
    pub remove_after_secs: u64,
    /// How often staff who seem online are checked (a probe, and a ping to each resource).
    pub check_staff_secs: u64,
    /// Which visitors become contacts in staff rosters.
    pub visitors: RosterVisitors,
}

pub const DEFAULT_REMOVE_AFTER_SECS: u64 = 60;
pub const DEFAULT_CHECK_STAFF_SECS: u64 = 60;

impl Default for RosterConfig {
    fn default() -> RosterConfig {
        RosterConfig {
            mode: RosterMode::Auto,
            ejabberd_api: None,
            remove_after_secs: DEFAULT_REMOVE_AFTER_SECS,
            check_staff_secs: DEFAULT_CHECK_STAFF_SECS,
            visitors: RosterVisitors::Waiting,
        }
    }
}

/// `[roster] visitors`: every visitor from arrival, or only those who wrote (or were taken).
/// A busy site's browsing visitors would fill every staff roster and cost two roster writes
/// per staff member each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterVisitors {
    All,
    Waiting,
}

impl RosterVisitors {
    pub const WORDS: [&'static str; 2] = ["all", "waiting"];

    fn parse(s: &str) -> Option<RosterVisitors> {
        match s {
            "all" => Some(RosterVisitors::All),
            "waiting" => Some(RosterVisitors::Waiting),
            _ => None,
        }
    }
}

/// `[roster] mode`: which way of putting visitors into staff rosters to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterMode {
    /// The first that works: privileged roster set, ejabberd's API, subscription requests.
    Auto,
    Privilege,
    EjabberdApi,
    Subscribe,
    Off,
}

impl RosterMode {
    pub const WORDS: [&'static str; 5] = ["auto", "privilege", "ejabberd-api", "subscribe", "off"];

    fn parse(s: &str) -> Option<RosterMode> {
        Some(match s {
            "auto" => RosterMode::Auto,
            "privilege" => RosterMode::Privilege,
            "ejabberd-api" => RosterMode::EjabberdApi,
            "subscribe" => RosterMode::Subscribe,
            "off" => RosterMode::Off,
            _ => return None,
        })
    }
}

/// A plain `http://host:port/path` URL: the admin API is meant to be on loopback, so there is
/// no TLS client here (put a local proxy in front of a remote one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// Without a trailing slash, e.g. `/api`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let rest = s.strip_prefix("http://").ok_or_else(|| {
            format!("{s:?} must start with http:// (no TLS client here: use a loopback address)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{s:?} has a bad port {p:?}"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() || host.contains(['@', ' ']) || port == 0 {
            return Err(format!("{s:?} must look like http://127.0.0.1:5280/api"));
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    /// Bare JIDs of this site's staff.
    pub staff: Vec<BareJid>,
    /// Names, avatars and caps of the staff listed as tables.
    pub profiles: std::collections::BTreeMap<BareJid, StaffProfile>,
    pub desk: DeskConfig,
    /// When set, visitors join only with a token the web app minted (see `crate::token`).
    pub token_secret: Option<TokenSecret>,
}

/// What a staff table entry adds to the bare JID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StaffProfile {
    /// Shown to visitors as the staff member's nick.
    pub name: Option<String>,
    /// An http(s) URL of their picture, for the widget.
    pub avatar: Option<String>,
    /// Overrides the site's `max_chats_per_staff`.
    pub max_chats: Option<u32>,
}

/// How a site's waiting chats reach its staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskConfig {
    pub max_chats_per_staff: u32,
    pub routing: Routing,
    /// An offer nobody took moves on (or is announced again) after this.
    pub offer_timeout_secs: u64,
    pub canned: Vec<Canned>,
    /// `hours` with `timezone`; `None`: always open.
    pub hours: Option<hours::OpeningHours>,
    /// What the widget asks before the first message, in order.
    pub prechat: Vec<PrechatField>,
}

impl DeskConfig {
    /// Does the site's pre-chat form ask for an email address?
    pub fn asks_email(&self) -> bool {
        self.prechat.iter().any(|f| f.kind == PrechatKind::Email)
    }
}

impl Default for DeskConfig {
    fn default() -> DeskConfig {
        DeskConfig {
            max_chats_per_staff: desk::DEFAULT_MAX_CHATS,
            routing: Routing::Broadcast,
            offer_timeout_secs: desk::DEFAULT_OFFER_TIMEOUT_SECS,
            canned: Vec::new(),
            hours: None,
            prechat: Vec::new(),
        }
    }
}

/// `routing`: who is offered a waiting chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Routing {
    /// Every available staff member under their cap, at once; the first to answer has it.
    Broadcast,
    /// One at a time, taking turns.
    RoundRobin,
    /// One at a time, whoever has the fewest chats first.
    LeastBusy,
}

impl Routing {
    pub const WORDS: [&'static str; 3] = ["broadcast", "round-robin", "least-busy"];

    fn parse(s: &str) -> Option<Routing> {
        Some(match s {
            "broadcast" => Routing::Broadcast,
            "round-robin" => Routing::RoundRobin,
            "least-busy" => Routing::LeastBusy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Routing::Broadcast => "broadcast",
            Routing::RoundRobin => "round-robin",
            Routing::LeastBusy => "least-busy",
        }
    }
}

/// `[[sites.canned]]`: a reply staff send with `!say KEY`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canned {
    pub key: String,
    pub text: String,
}

/// Shortest accepted `token_secret`, in bytes.
pub const MIN_TOKEN_SECRET: usize = 16;

/// One thing wrong with the config, at a dotted key such as `sites[1].id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {path}: {source} (pass --config PATH or set FRONTDESK_CONFIG)"
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
    #[error("cannot read component.secret_file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("component.secret_file {path} is empty")]
    EmptySecretFile { path: PathBuf },
    #[error("no component secret: set component.secret or component.secret_file in the config, or {SECRET_ENV} in the environment")]
    NoSecret,
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses config text; `path` names the file in messages and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut c = Checker::default();
        let config = c.config(&table, path, base);
        match config {
            Some(config) if c.problems.is_empty() => Ok(config),
            _ => Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: c.problems,
            }),
        }
    }

    /// The secret: `FRONTDESK_SECRET` (given here as `env`) overrides the file's keys.
    pub fn secret(&self, env: Option<String>) -> Result<Secret, ConfigError> {
        if let Some(s) = env.filter(|s| !s.is_empty()) {
            return Ok(Secret(s));
        }
        match &self.component.secret {
            SecretSource::Inline(s) => Ok(Secret(s.clone())),
            SecretSource::File(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|source| ConfigError::SecretFile {
                        path: p.clone(),
                        source,
                    })?;
                let s = text.trim_end_matches(['\r', '\n']).to_string();
                if s.is_empty() {
                    return Err(ConfigError::EmptySecretFile { path: p.clone() });
                }
                Ok(Secret(s))
            }
            SecretSource::Unset => Err(ConfigError::NoSecret),
        }
    }

    /// One warning for each secret file that every user of the machine can read, naming the
    /// chmod that fixes it. The component's file is left out when `FRONTDESK_SECRET` is used
    /// instead (`env_secret`); a file that cannot be read is reported where it is read.
    pub fn exposed_secret_files(&self, env_secret: bool) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        self.secret_files
            .iter()
            .filter(|(key, _)| !(env_secret && key == "component.secret_file"))
            .filter_map(|(key, path)| {
                let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
                (mode & 0o004 != 0).then(|| {
                    format!(
                        "{key} {} is readable by every user on this machine (mode {mode:o}): run chmod o-rwx {}",
                        path.display(),
                        path.display()
                    )
                })
            })
            .collect()
    }

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == id)
    }
}
