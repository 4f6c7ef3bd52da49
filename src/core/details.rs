//! What frontdesk knows of a visitor besides their nick: what the web app signed in their
//! token (name, email, its own user id), and what the widget sends with the join, unsigned,
//! in `<visitor xmlns='urn:frontdesk:visitor:0'>`: the page (`<page url referrer title
//! lang/>`) and pre-chat answers (`<field var='email'>…</field>`). Every value is cut to a
//! bounded length here and rendered safely wherever it is shown.

use minidom::Element;
use xmpp_parsers::presence::Presence;

use super::session::DetailRecord;
use crate::token;

pub const NS_VISITOR: &str = "urn:frontdesk:visitor:0";
/// Longest value kept from the widget, in characters.
pub const VALUE_CHARS: usize = 500;
/// Pre-chat answers kept, at most.
pub const PRECHAT_FIELDS: usize = 10;
/// Longest pre-chat field name.
const FIELD_NAME_CHARS: usize = 32;

/// A session's visitor details, in the order they are shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorDetails {
    entries: Vec<(String, String, bool)>,
}

fn cut(s: &str) -> String {
    s.trim().chars().take(VALUE_CHARS).collect()
}

impl VisitorDetails {
    /// From the token's signed details and the join presence's `<visitor/>` element.
    pub fn from_join(signed: &token::Details, p: &Presence) -> VisitorDetails {
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
            d.widget(x);
        }
        d
    }

    fn widget(&mut self, x: &Element) {
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
        let good = |var: &&str| {
            !var.is_empty()
                && var.chars().count() <= FIELD_NAME_CHARS
                && var
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        let fields = x
            .children()
            .filter(|c| c.is("field", NS_VISITOR))
            .filter_map(|f| f.attr("var").filter(good).map(|v| (v, f.text())));
        for (var, text) in fields.take(PRECHAT_FIELDS) {
            self.push(&format!("prechat.{var}"), &text, false);
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

    /// A short summary for an offer: the signed name and email, or the page.
    pub fn summary(&self) -> Option<String> {
        let get = |key: &str| self.entries.iter().find(|(k, _, _)| k == key);
        let mut parts = Vec::new();
        for key in ["name", "email", "page"] {
            if let Some((k, v, signed)) = get(key) {
                let mark = if *signed { " ✓" } else { "" };
                parts.push(format!(
                    "{}: {}{mark}",
                    label(k),
                    crate::render::short(v, 80)
                ));
            }
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }
}

fn label(key: &str) -> String {
    match key {
        "user_id" => "user id".to_string(),
        k => k
            .strip_prefix("prechat.")
            .map_or(k.to_string(), |f| format!("asked: {f}")),
    }
}
