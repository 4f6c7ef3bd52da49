//! What frontdesk knows of a visitor besides their nick: what the web app signed in their
//! token (name, email, its own user id), and what the widget sends with the join, unsigned,
//! in `<visitor xmlns='urn:frontdesk:visitor:0'>`: the page (`<page url referrer title
//! lang/>`) and pre-chat answers (`<field var='email'>…</field>`). Every value is cut to a
//! bounded length here and rendered safely wherever it is shown. Pre-chat answers are kept
//! only for the fields the site asks (its `prechat`), without control, direction or
//! zero-width characters, and an email or phone number only if it looks like one.

use minidom::Element;
use xmpp_parsers::presence::Presence;

use super::session::DetailRecord;
use crate::config::{PrechatField, PrechatKind};
use crate::token;

pub const NS_VISITOR: &str = "urn:frontdesk:visitor:0";
/// Longest value kept from the widget, in characters.
pub const VALUE_CHARS: usize = 500;

/// A session's visitor details, in the order they are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorDetails {
    entries: Vec<(String, String, bool)>,
}

fn cut(s: &str) -> String {
    s.trim().chars().take(VALUE_CHARS).collect()
}

impl VisitorDetails {
    /// From the token's signed details and the join presence's `<visitor/>` element, with
    /// pre-chat answers for the fields in `asked` only.
    pub fn from_join(
        signed: &token::Details,
        p: &Presence,
        asked: &[PrechatField],
    ) -> VisitorDetails {
        let mut d = VisitorDetails::default();
        for (k, v) in [
            ("name", &signed.name),
            ("email", &signed.email),
            ("user_id", &signed.user_id),
        ] {
            if let Some(v) = v {
                d.push(k, v, true);
            }
        }
        if let Some(x) = p.payloads.iter().find(|e| e.is("visitor", NS_VISITOR)) {
            d.widget(x, asked);
        }
        d
    }

    fn widget(&mut self, x: &Element, asked: &[PrechatField]) {
        if let Some(page) = x.get_child("page", NS_VISITOR) {
            for (attr, key) in [
                ("url", "page"),
                ("referrer", "referrer"),
                ("title", "title"),
                ("lang", "language"),
            ] {
                if let Some(v) = page.attr(attr) {
                    self.push(key, v, false);
                }
            }
        }
        for f in asked {
            let var = f.kind.as_str();
            let answer = x
                .children()
                .find(|c| c.is("field", NS_VISITOR) && c.attr("var") == Some(var))
                .and_then(|c| prechat_answer(f.kind, &c.text()));
            if let Some(a) = answer {
                self.push(&format!("prechat.{var}"), &a, false);
            }
        }
    }

    /// Adds `key` unless it is empty or already there (a signed detail wins over the widget's).
    fn push(&mut self, key: &str, value: &str, signed: bool) {
        let value = cut(value);
        if value.is_empty() || self.entries.iter().any(|(k, _, _)| k == key) {
            return;
        }
        self.entries.push((key.to_string(), value, signed));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The visitor's email address is known: signed by the website or given before the chat.
    pub fn has_email(&self) -> bool {
        self.entries
            .iter()
            .any(|(k, _, _)| k == "email" || k == "prechat.email")
    }

    /// These details on a rejoin: pre-chat answers given before and not now are kept (a
    /// widget that joins again without its form must not erase them).
    pub fn rejoined(mut self, before: &VisitorDetails) -> VisitorDetails {
        for (k, v, signed) in &before.entries {
            if k.starts_with("prechat.") && !self.entries.iter().any(|(n, _, _)| n == k) {
                self.entries.push((k.clone(), v.clone(), *signed));
            }
        }
        self
    }

    pub fn records(&self, session_id: i64) -> Vec<DetailRecord> {
        self.entries
            .iter()
            .map(|(key, value, signed)| DetailRecord {
                session_id,
                key: key.clone(),
                value: value.clone(),
                signed: *signed,
            })
            .collect()
    }

    pub fn from_records(records: Vec<DetailRecord>) -> VisitorDetails {
        VisitorDetails {
            entries: records
                .into_iter()
                .map(|r| (r.key, r.value, r.signed))
                .collect(),
        }
    }

    /// One line per detail, for `!info`: `email: ann@example.com (signed by the website)`.
    pub fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(k, v, signed)| {
                let whence = if *signed {
                    "signed by the website"
                } else {
                    "from the widget"
                };
                format!("{}: {} ({whence})", label(k), crate::render::short(v, 200))
            })
            .collect()
    }

    /// A short summary for an offer: name, email (signed ones marked ✓), the other pre-chat
    /// answers, and the page.
    pub fn summary(&self) -> Option<String> {
        let get = |key: &str| self.entries.iter().find(|(k, _, _)| k == key);
        let mut parts = Vec::new();
        for kind in PrechatKind::ALL {
            let key = kind.as_str();
            let found = get(key).or_else(|| get(&format!("prechat.{key}")));
            if let Some((_, v, signed)) = found {
                let mark = if *signed { " ✓" } else { "" };
                parts.push(format!("{key}: {}{mark}", crate::render::short(v, 80)));
            }
        }
        if let Some((_, v, _)) = get("page") {
            parts.push(format!("page: {}", crate::render::short(v, 80)));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

/// A pre-chat answer as kept: hidden characters gone, line breaks and tabs made spaces, cut
/// to the field's length; `None` for an email or phone number that does not look like one.
pub fn prechat_answer(kind: PrechatKind, text: &str) -> Option<String> {
    let clean: String = text
        .chars()
        .filter(|c| !is_format(*c))
        .map(|c| {
            if c.is_control() || is_separator(c) {
                ' '
            } else {
                c
            }
        })
        .collect::<String>()
        .trim()
        .chars()
        .take(kind.max_chars())
        .collect();
    let fits = match kind {
        PrechatKind::Email => looks_like_email(&clean),
        PrechatKind::Phone => looks_like_phone(&clean),
        _ => true,
    };
    (!clean.is_empty() && fits).then_some(clean)
}

/// Direction, zero-width and other invisible formatting characters; also C0/C1 controls
/// other than whitespace, which are dropped rather than made spaces.
fn is_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
        || (c.is_control() && !c.is_whitespace())
}

fn is_separator(c: char) -> bool {
    matches!(c, '\u{2028}' | '\u{2029}')
}

/// Loosely: one `@` with something on each side, a dot-free or dotted domain, no spaces.
fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | ',' | ';'))
}

/// Digits with the usual separators, and enough digits to be a number.
fn looks_like_phone(s: &str) -> bool {
    s.chars().filter(char::is_ascii_digit).count() >= 3
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/'))
}

fn label(key: &str) -> String {
    match key {
        "user_id" => "user id".to_string(),
        k => k
            .strip_prefix("prechat.")
            .map_or(k.to_string(), |f| format!("asked: {f}")),
    }
}
