//! Reading typed values out of TOML tables. Each reader reports what is wrong at its dotted
//! key and returns `None` for it, so the checkers go on and every problem is listed at once.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::Problem;

/// Collects the problems found while checking a config.
#[derive(Default)]
pub(super) struct Checker {
    pub(super) problems: Vec<Problem>,
    /// Files holding secrets, by their dotted key, for `Config::exposed_secret_files`.
    pub(super) secret_files: Vec<(String, PathBuf)>,
}

/// A value given inline as `<key>`, or in a file named by `<key>_file`.
pub(super) enum InlineOrFile {
    Inline(String),
    /// Resolved against the config file's directory.
    File(PathBuf),
}

impl Checker {
    pub(super) fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    pub(super) fn unknown_keys(&mut self, table: &Table, prefix: &str, known: &[&str]) {
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

    /// A required section `[key]`.
    pub(super) fn table<'t>(&mut self, parent: &'t Table, key: &str) -> Option<&'t Table> {
        match self.optional_table(parent, key) {
            Some(None) => {
                self.problem(key, format!("missing section [{key}]"));
                None
            }
            Some(t) => t,
            None => None,
        }
    }

    /// An optional section `[key]`: `Some(None)` when it is absent.
    pub(super) fn optional_table<'t>(
        &mut self,
        parent: &'t Table,
        key: &str,
    ) -> Option<Option<&'t Table>> {
        match parent.get(key) {
            None => Some(None),
            Some(Value::Table(t)) => Some(Some(t)),
            Some(_) => {
                self.problem(key, "must be a table, e.g. [".to_string() + key + "]");
                None
            }
        }
    }

    /// A non-empty string at `prefix.key`; `None` when it is absent (a problem if `required`).
    pub(super) fn string(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
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

    /// An optional whole number in `range` at `prefix.key`, `default` when it is absent. Anything
    /// else is reported with `message`, which says what the value must be.
    pub(super) fn int_in(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        range: RangeInclusive<i64>,
        default: i64,
        message: &str,
    ) -> Option<i64> {
        match t.get(key) {
            None => Some(default),
            Some(Value::Integer(n)) if range.contains(n) => Some(*n),
            Some(_) => {
                self.problem(format!("{prefix}.{key}"), message);
                None
            }
        }
    }

    /// `prefix.key` inline or `prefix.key_file`, a file relative to `base`; not both (reported
    /// at `key_file`, naming the pair as `shown` and `shown_file`). `Some(None)` when neither is
    /// set. The file is neither checked nor read here: callers differ in when they need it.
    pub(super) fn inline_or_file(
        &mut self,
        t: &Table,
        prefix: &str,
        key: &str,
        shown: &str,
        base: &Path,
    ) -> Option<Option<InlineOrFile>> {
        let file_key = format!("{key}_file");
        let inline = self.string(t, prefix, key, false);
        let file = self.string(t, prefix, &file_key, false);
        match (inline, file) {
            (Some(_), Some(_)) => {
                self.problem(
                    format!("{prefix}.{file_key}"),
                    format!("set either {shown} or {shown}_file, not both"),
                );
                None
            }
            (Some(s), None) => Some(Some(InlineOrFile::Inline(s))),
            (None, Some(f)) => Some(Some(InlineOrFile::File(base.join(f)))),
            (None, None) => Some(None),
        }
    }
}
