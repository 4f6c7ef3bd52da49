//! A site's `prechat`: the fields the widget asks before the first message, such as
//! `["name", "email?"]` (a trailing `?` makes a field optional). A small fixed set, so that
//! frontdesk knows how to check each answer (an email's shape, a phone number's characters)
//! and the widget has a label for each in every language it speaks.

use toml::{Table, Value};

use super::read::Checker;

/// One field a site's widget asks before the first message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrechatField {
    pub kind: PrechatKind,
    /// The widget does not start the chat without it.
    pub required: bool,
}

/// The fields a site may ask, in the order of [`PrechatKind::ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PrechatKind {
    Name,
    Email,
    Phone,
    Company,
    Question,
}

impl PrechatKind {
    pub const ALL: [PrechatKind; 5] = [
        PrechatKind::Name,
        PrechatKind::Email,
        PrechatKind::Phone,
        PrechatKind::Company,
        PrechatKind::Question,
    ];

    /// The `var` of its `<field/>` on the wire, and its word in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            PrechatKind::Name => "name",
            PrechatKind::Email => "email",
            PrechatKind::Phone => "phone",
            PrechatKind::Company => "company",
            PrechatKind::Question => "question",
        }
    }

    pub fn parse(s: &str) -> Option<PrechatKind> {
        PrechatKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Longest answer kept, in characters (the widget's inputs have the same `maxlength`).
    pub fn max_chars(self) -> usize {
        match self {
            PrechatKind::Name | PrechatKind::Company => 100,
            PrechatKind::Email => 254,
            PrechatKind::Phone => 32,
            PrechatKind::Question => 500,
        }
    }
}

impl Checker {
    /// `prechat`: a list of known field names, each at most once, `?` marking optional ones.
    pub(super) fn prechat(&mut self, t: &Table, prefix: &str) -> Option<Vec<PrechatField>> {
        let key = format!("{prefix}.prechat");
        let arr = match t.get("prechat") {
            None => return Some(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem(key, "must be a list such as [\"name\", \"email?\"]");
                return None;
            }
        };
        let mut out: Vec<PrechatField> = Vec::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let Some(s) = v.as_str() else {
                self.problem(key, "must be a string such as \"email?\"");
                ok = false;
                continue;
            };
            let (word, required) = match s.strip_suffix('?') {
                Some(w) => (w, false),
                None => (s, true),
            };
            match PrechatKind::parse(word) {
                Some(kind) if out.iter().any(|f| f.kind == kind) => {
                    self.problem(key, format!("{word:?} is listed twice"));
                    ok = false;
                }
                Some(kind) => out.push(PrechatField { kind, required }),
                None => {
                    self.problem(key, format!("{s:?} is not a pre-chat field: use {}, each with a trailing '?' if it is optional", words()));
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

fn words() -> String {
    PrechatKind::ALL.map(PrechatKind::as_str).join(", ")
}
