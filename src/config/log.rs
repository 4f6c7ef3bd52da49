//! `[log]`: the format of the log lines and the default filter. `RUST_LOG` overrides the level;
//! the logger is set up in main.rs before anything else is read, so `peek` reads this section
//! alone and leaves every problem in the file to the command's own check.

use std::path::Path;

use toml::Table;

use super::read::Checker;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (tracing-subscriber's JSON: timestamp, level, target, fields).
    Json,
}

/// `[log]` (optional).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A filter in `RUST_LOG` syntax for `run`, e.g. `"info"` or `"warn,frontdesk=debug"`.
    pub level: Option<String>,
}

impl LogConfig {
    /// The `[log]` section of the file at `path`, or the defaults if the file cannot be read
    /// or the section has problems (the command that loads the whole file reports them).
    pub fn peek(path: &Path) -> LogConfig {
        let Ok(text) = std::fs::read_to_string(path) else {
            return LogConfig::default();
        };
        let Ok(root) = text.parse::<Table>() else {
            return LogConfig::default();
        };
        Checker::default().log(&root).unwrap_or_default()
    }
}

impl Checker {
    pub(super) fn log(&mut self, root: &Table) -> Option<LogConfig> {
        let Some(t) = self.optional_table(root, "log")? else {
            return Some(LogConfig::default());
        };
        self.unknown_keys(t, "log", &["format", "level"]);
        let format = match self.string(t, "log", "format", false).as_deref() {
            None | Some("text") => Some(LogFormat::Text),
            Some("json") => Some(LogFormat::Json),
            Some(other) => {
                self.problem(
                    "log.format",
                    format!("{other:?} must be \"text\" or \"json\" (one JSON object per line)"),
                );
                None
            }
        };
        let level = match self.string(t, "log", "level", false) {
            None => Some(None),
            Some(l) if is_filter(&l) => Some(Some(l)),
            Some(l) => {
                self.problem(
                    "log.level",
                    format!("{l:?} is not a log level: use one of {} or RUST_LOG syntax such as \"warn,frontdesk=debug\"", LEVELS.join(", ")),
                );
                None
            }
        };
        Some(LogConfig {
            format: format?,
            level: level?,
        })
    }
}

const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// A filter in RUST_LOG syntax whose bare words are levels. RUST_LOG would take a bare
/// `"loud"` as a target name and log nothing else; in a config file that is a typo.
fn is_filter(s: &str) -> bool {
    let bare_words_are_levels = s
        .split(',')
        .all(|d| d.contains('=') || LEVELS.contains(&d.trim().to_ascii_lowercase().as_str()));
    bare_words_are_levels && tracing_subscriber::EnvFilter::builder().parse(s).is_ok()
}
