//! The TOML config file: reading it, checking every key (all problems at once, each with its
//! dotted key), and the secret, which is resolved only when it is needed.
//!
//! The table is walked by hand rather than with `serde(deny_unknown_fields)` because serde
//! stops at the first problem and an operator fixing a config wants the whole list.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

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
    pub sites: Vec<Site>,
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
}

/// How visitors get into staff rosters (`[roster]`, optional).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterConfig {
    pub mode: RosterMode,
    /// Base URL of ejabberd's HTTP admin API, e.g. `http://127.0.0.1:5280/api`.
    pub ejabberd_api: Option<HttpUrl>,
    /// How long a CLOSED visitor stays in staff rosters.
    pub remove_after_secs: u64,
}

pub const DEFAULT_REMOVE_AFTER_SECS: u64 = 60;

impl Default for RosterConfig {
    fn default() -> RosterConfig {
        RosterConfig {
            mode: RosterMode::Auto,
            ejabberd_api: None,
            remove_after_secs: DEFAULT_REMOVE_AFTER_SECS,
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
    /// When set, visitors join only with a token the web app minted (see `crate::token`).
    pub token_secret: Option<TokenSecret>,
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

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == id)
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn unknown_keys(&mut self, table: &Table, prefix: &str, known: &[&str]) {
        for k in table.keys() {
            if !known.contains(&k.as_str()) {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                self.problem(
                    key,
                    format!("unknown key (known here: {})", known.join(", ")),
                );
            }
        }
    }

    fn table<'t>(&mut self, parent: &'t Table, key: &str) -> Option<&'t Table> {
        match parent.get(key) {
            Some(Value::Table(t)) => Some(t),
            Some(_) => {
                self.problem(key, "must be a table, e.g. [".to_string() + key + "]");
                None
            }
            None => {
                self.problem(key, format!("missing section [{key}]"));
                None
            }
        }
    }

    fn string(&mut self, t: &Table, prefix: &str, key: &str, required: bool) -> Option<String> {
        let full = format!("{prefix}.{key}");
        match t.get(key) {
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problem(full, "must not be empty");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problem(full, "must be a string");
                None
            }
            None if required => {
                self.problem(full, "missing");
                None
            }
            None => None,
        }
    }

    fn config(&mut self, root: &Table, path: &Path, base: &Path) -> Option<Config> {
        self.unknown_keys(
            root,
            "",
            &["component", "store", "roster", "limits", "sites"],
        );
        let component = self.component(root, base);
        let store = self.store(root, base);
        let roster = self.roster(root);
        let limits = self.limits(root);
        let sites = self.sites(root, base, component.as_ref().map(|c| &c.jid));
        Some(Config {
            path: path.to_path_buf(),
            component: component?,
            store: store?,
            roster: roster?,
            limits: limits?,
            sites: sites?,
        })
    }

    fn limits(&mut self, root: &Table) -> Option<Limits> {
        let t = match root.get("limits") {
            None => return Some(Limits::default()),
            Some(Value::Table(t)) => t,
            Some(_) => {
                self.problem("limits", "must be a table, e.g. [limits]");
                return None;
            }
        };
        const KEYS: &[&str] = &[
            "stanza_bytes",
            "depth",
            "children",
            "body_chars",
            "nick_chars",
            "rooms_per_visitor",
            "sessions",
            "sessions_per_site",
            "messages_per_minute",
            "message_burst",
        ];
        self.unknown_keys(t, "limits", KEYS);
        let mut l = Limits::default();
        let mut ok = true;
        for key in KEYS {
            let Some(v) = t.get(*key) else { continue };
            let n = match v {
                Value::Integer(n) if *n >= 1 && *n <= u32::MAX as i64 => *n as usize,
                _ => {
                    self.problem(
                        format!("limits.{key}"),
                        format!("must be a whole number from 1 to {}", u32::MAX),
                    );
                    ok = false;
                    continue;
                }
            };
            match *key {
                "stanza_bytes" => l.stanza_bytes = n,
                "depth" => l.depth = n,
                "children" => l.children = n,
                "body_chars" => l.body_chars = n,
                "nick_chars" => l.nick_chars = n,
                "rooms_per_visitor" => l.rooms_per_visitor = n,
                "sessions" => l.sessions = n,
                "sessions_per_site" => l.sessions_per_site = n,
                "messages_per_minute" => l.messages_per_minute = n as u32,
                _ => l.message_burst = n as u32,
            }
        }
        if l.stanza_bytes < 4096 {
            self.problem(
                "limits.stanza_bytes",
                "must be at least 4096: joins and ordinary messages need that much",
            );
            ok = false;
        }
        ok.then_some(l)
    }

    fn roster(&mut self, root: &Table) -> Option<RosterConfig> {
        let t = match root.get("roster") {
            None => return Some(RosterConfig::default()),
            Some(Value::Table(t)) => t,
            Some(_) => {
                self.problem("roster", "must be a table, e.g. [roster]");
                return None;
            }
        };
        self.unknown_keys(t, "roster", &["mode", "ejabberd_api", "remove_after_secs"]);
        let mut r = RosterConfig::default();
        let mut ok = true;
        if let Some(m) = self.string(t, "roster", "mode", false) {
            match RosterMode::parse(&m) {
                Some(mode) => r.mode = mode,
                None => {
                    self.problem(
                        "roster.mode",
                        format!("{m:?} is not one of {}", RosterMode::WORDS.join(", ")),
                    );
                    ok = false;
                }
            }
        }
        if let Some(u) = self.string(t, "roster", "ejabberd_api", false) {
            match HttpUrl::parse(&u) {
                Ok(url) => r.ejabberd_api = Some(url),
                Err(e) => {
                    self.problem("roster.ejabberd_api", e);
                    ok = false;
                }
            }
        }
        match t.get("remove_after_secs") {
            None => {}
            Some(Value::Integer(n)) if *n >= 0 => r.remove_after_secs = *n as u64,
            Some(_) => {
                self.problem(
                    "roster.remove_after_secs",
                    "must be a whole number of seconds, 0 or more",
                );
                ok = false;
            }
        }
        if r.mode == RosterMode::EjabberdApi && r.ejabberd_api.is_none() {
            self.problem(
                "roster.ejabberd_api",
                "missing: mode = \"ejabberd-api\" needs the API's URL, e.g. \"http://127.0.0.1:5280/api\"",
            );
            ok = false;
        }
        ok.then_some(r)
    }

    fn component(&mut self, root: &Table, base: &Path) -> Option<ComponentConfig> {
        let t = self.table(root, "component")?;
        self.unknown_keys(t, "component", &["jid", "server", "secret", "secret_file"]);
        let jid = self.string(t, "component", "jid", true).and_then(|s| {
            match BareJid::new(&s) {
                Ok(j) if j.node().is_none() => Some(j),
                _ => {
                    self.problem(
                        "component.jid",
                        format!("{s:?} must be a plain domain such as \"chat.example.com\" (no '@' or '/')"),
                    );
                    None
                }
            }
        });
        let server = self.string(t, "component", "server", true).and_then(|s| {
            match s.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>())) {
                Some((h, Ok(p))) if !h.is_empty() && p != 0 => Some(s),
                _ => {
                    self.problem(
                        "component.server",
                        format!("{s:?} must be host:port of the server's component listener, e.g. \"127.0.0.1:5347\""),
                    );
                    None
                }
            }
        });
        let inline = self.string(t, "component", "secret", false);
        let file = self.string(t, "component", "secret_file", false);
        let secret = match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    "component.secret_file",
                    "set either component.secret or component.secret_file, not both",
                );
                None
            }
            (Some(s), None) => Some(SecretSource::Inline(s)),
            (None, Some(f)) => {
                let p = base.join(f);
                if !p.is_file() {
                    self.problem(
                        "component.secret_file",
                        format!("{} does not exist or is not a file", p.display()),
                    );
                }
                Some(SecretSource::File(p))
            }
            // Allowed: FRONTDESK_SECRET may supply it; `run` says so if it does not.
            (None, None) => Some(SecretSource::Unset),
        };
        Some(ComponentConfig {
            jid: jid?,
            server: server?,
            secret: secret?,
        })
    }

    fn store(&mut self, root: &Table, base: &Path) -> Option<StoreConfig> {
        let t = self.table(root, "store")?;
        self.unknown_keys(t, "store", &["path", "synchronous"]);
        let path = self.string(t, "store", "path", true);
        let synchronous = match self.string(t, "store", "synchronous", false).as_deref() {
            None => Some(crate::store::Durability::default()),
            Some("normal") => Some(crate::store::Durability::Normal),
            Some("full") => Some(crate::store::Durability::Full),
            Some(other) => {
                self.problem(
                    "store.synchronous",
                    format!("{other:?} must be \"normal\" (a commit survives frontdesk crashing) or \"full\" (it also survives the machine losing power; each commit waits for the disk)"),
                );
                None
            }
        };
        Some(StoreConfig {
            path: base.join(path?),
            synchronous: synchronous?,
        })
    }

    fn sites(
        &mut self,
        root: &Table,
        base: &Path,
        component: Option<&BareJid>,
    ) -> Option<Vec<Site>> {
        let arr = match root.get("sites") {
            Some(Value::Array(a)) if !a.is_empty() => a,
            Some(Value::Array(_)) | None => {
                self.problem(
                    "sites",
                    "no sites: add at least one [[sites]] with id, name and staff",
                );
                return None;
            }
            Some(_) => {
                self.problem("sites", "must be an array of tables: [[sites]]");
                return None;
            }
        };
        let mut sites = Vec::new();
        let mut seen = BTreeSet::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            let prefix = format!("sites[{i}]");
            let Value::Table(t) = v else {
                self.problem(prefix, "must be a table");
                ok = false;
                continue;
            };
            match self.site(t, &prefix, base, component) {
                Some(site) => {
                    if !seen.insert(site.id.clone()) {
                        self.problem(
                            format!("{prefix}.id"),
                            format!("site {:?} is listed twice", site.id.as_str()),
                        );
                        ok = false;
                    }
                    sites.push(site);
                }
                None => ok = false,
            }
        }
        ok.then_some(sites)
    }

    fn site(
        &mut self,
        t: &Table,
        prefix: &str,
        base: &Path,
        component: Option<&BareJid>,
    ) -> Option<Site> {
        self.unknown_keys(
            t,
            prefix,
            &["id", "name", "staff", "token_secret", "token_secret_file"],
        );
        let token_secret = self.token_secret(t, prefix, base);
        let id = self.string(t, prefix, "id", true).and_then(|s| match SiteId::new(&s) {
            Ok(id) => Some(id),
            Err(_) => {
                self.problem(
                    format!("{prefix}.id"),
                    format!("{s:?} must use only a-z, 0-9 and '-' (rooms are <visitor>_<site>, so never '_')"),
                );
                None
            }
        });
        let name = self.string(t, prefix, "name", false);
        let staff_key = format!("{prefix}.staff");
        let staff = match t.get("staff") {
            None => Some(Vec::new()),
            Some(Value::Array(a)) => {
                let mut out = Vec::new();
                let mut dup = BTreeMap::new();
                for (j, v) in a.iter().enumerate() {
                    let key = format!("{staff_key}[{j}]");
                    let Value::String(s) = v else {
                        self.problem(key, "must be a string (a bare JID)");
                        continue;
                    };
                    match BareJid::new(s) {
                        Ok(jid) if jid.node().is_some() => {
                            if component.is_some_and(|c| c.domain() == jid.domain()) {
                                self.problem(key, format!("{s:?} is on the component's own domain; staff are accounts on the XMPP server"));
                            } else if dup.insert(jid.clone(), j).is_some() {
                                self.problem(key, format!("{s:?} is listed twice"));
                            } else {
                                out.push(jid);
                            }
                        }
                        _ => self.problem(
                            key,
                            format!("{s:?} must be a bare JID such as \"alice_acme@example.com\" (no resource)"),
                        ),
                    }
                }
                Some(out)
            }
            Some(_) => {
                self.problem(staff_key, "must be an array of bare JIDs");
                None
            }
        };
        let id = id?;
        Some(Site {
            name: name.unwrap_or_else(|| id.as_str().to_string()),
            id,
            staff: staff?,
            token_secret: token_secret?,
        })
    }

    /// `token_secret` or `token_secret_file` (read now, so check-config finds a bad one).
    fn token_secret(
        &mut self,
        t: &Table,
        prefix: &str,
        base: &Path,
    ) -> Option<Option<TokenSecret>> {
        let inline = self.string(t, prefix, "token_secret", false);
        let file = self.string(t, prefix, "token_secret_file", false);
        let (key, text) = match (inline, file) {
            (None, None) => return Some(None),
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{prefix}.token_secret_file"),
                    "set either token_secret or token_secret_file, not both",
                );
                return None;
            }
            (Some(s), None) => (format!("{prefix}.token_secret"), s),
            (None, Some(f)) => {
                let key = format!("{prefix}.token_secret_file");
                let path = base.join(f);
                match std::fs::read_to_string(&path) {
                    Ok(text) => (key, text.trim_end_matches(['\n', '\r']).to_string()),
                    Err(e) => {
                        self.problem(key, format!("cannot read {}: {e}", path.display()));
                        return None;
                    }
                }
            }
        };
        if text.len() < MIN_TOKEN_SECRET {
            self.problem(
                key,
                format!("must be at least {MIN_TOKEN_SECRET} bytes (e.g. the output of `openssl rand -hex 32`): a short secret can be guessed"),
            );
            return None;
        }
        Some(Some(TokenSecret::new(text.into_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[component]
jid = "chat.example.com"
server = "127.0.0.1:5347"
secret = "s3cret"

[store]
path = "data/frontdesk.db"

[[sites]]
id = "acme"
name = "ACME Inc."
staff = ["alice_acme@example.com", "bob_acme@example.com"]

[[sites]]
id = "globex"
staff = []
"#;

    fn problems(text: &str) -> Vec<Problem> {
        match Config::parse(text, Path::new("/etc/frontdesk/frontdesk.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn keys(text: &str) -> Vec<String> {
        problems(text).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn good_config() {
        let c = Config::parse(GOOD, Path::new("/etc/frontdesk/frontdesk.toml")).unwrap();
        assert_eq!(c.component.jid.to_string(), "chat.example.com");
        assert_eq!(
            c.store.path,
            PathBuf::from("/etc/frontdesk/data/frontdesk.db")
        );
        assert_eq!(c.sites.len(), 2);
        assert_eq!(c.sites[0].staff.len(), 2);
        assert_eq!(c.sites[1].name, "globex");
        assert_eq!(c.secret(None).unwrap().expose(), "s3cret");
        assert_eq!(c.secret(Some("env".into())).unwrap().expose(), "env");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn limits_section() {
        let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
        assert_eq!(c.limits, Limits::default());
        let c = Config::parse(
            &format!("{GOOD}\n[limits]\nstanza_bytes = 8192\nmessages_per_minute = 600\n"),
            Path::new("/f.toml"),
        )
        .unwrap();
        assert_eq!(
            (
                c.limits.stanza_bytes,
                c.limits.messages_per_minute,
                c.limits.depth
            ),
            (8192, 600, 32)
        );
        let k = keys(&format!(
            "{GOOD}\n[limits]\nstanza_bytes = 100\ndepth = 0\nbody_chars = \"many\"\nspeed = 1\n"
        ));
        for key in [
            "limits.stanza_bytes",
            "limits.depth",
            "limits.body_chars",
            "limits.speed",
        ] {
            assert!(k.contains(&key.to_string()), "{key} not in {k:?}");
        }
    }

    #[test]
    fn roster_section_defaults_and_problems() {
        let c = Config::parse(GOOD, Path::new("/f.toml")).unwrap();
        assert_eq!(c.roster, RosterConfig::default());
        let text = format!("{GOOD}\n[roster]\nmode = \"ejabberd-api\"\nejabberd_api = \"http://127.0.0.1:5280/api/\"\nremove_after_secs = 5\n");
        let c = Config::parse(&text, Path::new("/f.toml")).unwrap();
        assert_eq!(c.roster.mode, RosterMode::EjabberdApi);
        assert_eq!(c.roster.remove_after_secs, 5);
        let url = c.roster.ejabberd_api.unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("127.0.0.1", 5280, "/api")
        );
        let bad = format!("{GOOD}\n[roster]\nmode = \"sometimes\"\nejabberd_api = \"https://x/api\"\nremove_after_secs = -1\ncolour = 1\n");
        let k = keys(&bad);
        for key in [
            "roster.mode",
            "roster.ejabberd_api",
            "roster.remove_after_secs",
            "roster.colour",
        ] {
            assert!(k.contains(&key.to_string()), "{key} not in {k:?}");
        }
        let k = keys(&format!("{GOOD}\n[roster]\nmode = \"ejabberd-api\"\n"));
        assert_eq!(k, vec!["roster.ejabberd_api".to_string()]);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let text = GOOD
            .replace(
                "server = \"127.0.0.1:5347\"",
                "server = \"nowhere\"\ncolour = \"blue\"",
            )
            .replace("id = \"acme\"", "id = \"ac_me\"")
            .replace("\"bob_acme@example.com\"", "\"bob_acme@example.com/phone\"");
        let k = keys(&text);
        assert!(k.contains(&"component.server".to_string()), "{k:?}");
        assert!(k.contains(&"component.colour".to_string()), "{k:?}");
        assert!(k.contains(&"sites[0].id".to_string()), "{k:?}");
        assert!(k.contains(&"sites[0].staff[1]".to_string()), "{k:?}");
    }

    #[test]
    fn unknown_top_level_and_site_keys() {
        let text = format!("{GOOD}\n[logging]\nlevel = 1\n");
        assert_eq!(keys(&text), vec!["logging".to_string()]);
        let text = GOOD.replace("name = \"ACME Inc.\"", "name = \"ACME\"\nowner = \"x\"");
        assert_eq!(keys(&text), vec!["sites[0].owner".to_string()]);
    }

    #[test]
    fn missing_pieces() {
        let k = keys("[component]\njid = \"a@b\"\n");
        assert!(k.contains(&"component.jid".to_string()));
        assert!(k.contains(&"component.server".to_string()));
        assert!(k.contains(&"store".to_string()));
        assert!(k.contains(&"sites".to_string()));
    }

    #[test]
    fn duplicate_site_and_both_secrets() {
        let text = GOOD.replace("id = \"globex\"", "id = \"acme\"").replace(
            "secret = \"s3cret\"",
            "secret = \"x\"\nsecret_file = \"/nonexistent\"",
        );
        let k = keys(&text);
        assert!(k.contains(&"sites[1].id".to_string()), "{k:?}");
        assert!(k.contains(&"component.secret_file".to_string()), "{k:?}");
    }

    #[test]
    fn secret_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "from-file\n").unwrap();
        let text = GOOD.replace("secret = \"s3cret\"", "secret_file = \"secret\"");
        let c = Config::parse(&text, &dir.path().join("frontdesk.toml")).unwrap();
        assert_eq!(c.secret(None).unwrap().expose(), "from-file");
        let none = GOOD.replace("secret = \"s3cret\"\n", "");
        let c = Config::parse(&none, Path::new("x.toml")).unwrap();
        assert!(matches!(c.secret(None), Err(ConfigError::NoSecret)));
        assert_eq!(c.secret(Some("e".into())).unwrap().expose(), "e");
    }

    #[test]
    fn syntax_error_names_the_file() {
        let e = Config::parse("[component\n", Path::new("bad.toml")).unwrap_err();
        assert!(e.to_string().contains("bad.toml"));
    }
}
