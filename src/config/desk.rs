//! A site's desk settings in `[[sites]]`: staff entries (a bare JID, or a table with a display
//! name, an avatar and a chat cap), capacity, routing, offer timeout and canned replies
//! (`prechat` is in prechat.rs, `hours` in hours.rs).

use std::collections::BTreeMap;

use super::hours::{self, OpeningHours};
use super::read::Checker;
use super::{Canned, DeskConfig, Routing, StaffProfile};
use toml::{Table, Value};

/// Longest display name of a staff member, in characters.
pub const NAME_CHARS: usize = 64;
/// Longest avatar URL, in bytes.
pub const AVATAR_BYTES: usize = 512;
/// Longest canned reply key, in characters.
pub const CANNED_KEY_CHARS: usize = 32;
/// Longest canned reply text, in characters.
pub const CANNED_TEXT_CHARS: usize = 2_000;
pub const DEFAULT_MAX_CHATS: u32 = 3;
pub const DEFAULT_OFFER_TIMEOUT_SECS: u64 = 60;

/// Text shown to people: no control, bidi or line-separator characters.
fn plain_text(s: &str) -> bool {
    s.chars().all(|c| {
        !c.is_control()
            && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}')
            && !('\u{202a}'..='\u{202e}').contains(&c)
            && !('\u{2066}'..='\u{2069}').contains(&c)
    })
}

impl Checker {
    /// A staff table's `name`, `avatar` and `max_chats` (its `jid` is read by the caller).
    pub(super) fn staff_profile(&mut self, t: &Table, key: &str) -> StaffProfile {
        self.unknown_keys(t, key, &["jid", "name", "avatar", "max_chats"]);
        let name = self.string(t, key, "name", false).filter(|n| {
            let ok = n.chars().count() <= NAME_CHARS && plain_text(n);
            if !ok {
                self.problem(
                    format!("{key}.name"),
                    format!("must be at most {NAME_CHARS} characters, with no control or direction characters"),
                );
            }
            ok
        });
        let avatar = self.string(t, key, "avatar", false).filter(|a| {
            let ok = (a.starts_with("https://") || a.starts_with("http://"))
                && a.len() <= AVATAR_BYTES
                && a.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\'));
            if !ok {
                self.problem(
                    format!("{key}.avatar"),
                    format!("must be an http(s) URL of at most {AVATAR_BYTES} bytes, with no spaces or quotes"),
                );
            }
            ok
        });
        let max_chats = t
            .get("max_chats")
            .map(|_| {
                self.int_in(
                    t,
                    key,
                    "max_chats",
                    1..=1_000,
                    0,
                    "must be a whole number from 1 to 1000",
                )
            })
            .and_then(|n| n.map(|n| n as u32));
        StaffProfile {
            name,
            avatar,
            max_chats,
        }
    }

    /// `max_chats_per_staff`, `routing`, `offer_timeout_secs` and `[[sites.canned]]`.
    pub(super) fn desk(&mut self, t: &Table, prefix: &str) -> Option<DeskConfig> {
        let max = self.int_in(
            t,
            prefix,
            "max_chats_per_staff",
            1..=1_000,
            i64::from(DEFAULT_MAX_CHATS),
            "must be a whole number from 1 to 1000",
        );
        let timeout = self.int_in(
            t,
            prefix,
            "offer_timeout_secs",
            5..=86_400,
            DEFAULT_OFFER_TIMEOUT_SECS as i64,
            "must be a whole number of seconds from 5 to 86400",
        );
        let routing = match self.string(t, prefix, "routing", false) {
            None => Some(Routing::Broadcast),
            Some(s) => Routing::parse(&s).or_else(|| {
                self.problem(
                    format!("{prefix}.routing"),
                    format!("{s:?} is not one of {}", Routing::WORDS.join(", ")),
                );
                None
            }),
        };
        let canned = self.canned(t, prefix);
        let hours = self.hours(t, prefix);
        let prechat = self.prechat(t, prefix);
        // In range, so the casts keep the values.
        Some(DeskConfig {
            max_chats_per_staff: max? as u32,
            routing: routing?,
            offer_timeout_secs: timeout? as u64,
            canned: canned?,
            hours: hours?,
            prechat: prechat?,
        })
    }

    /// `hours` (a list of "mon-fri 09:00-17:00") and `timezone` (IANA), which it needs.
    fn hours(&mut self, t: &Table, prefix: &str) -> Option<Option<OpeningHours>> {
        let tz = self.string(t, prefix, "timezone", false);
        let arr = match t.get("hours") {
            None => {
                if tz.is_some() {
                    self.problem(
                        format!("{prefix}.timezone"),
                        "is only used with hours; add hours or remove it",
                    );
                    return None;
                }
                return Some(None);
            }
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem(
                    format!("{prefix}.hours"),
                    "must be a list such as [\"mon-fri 09:00-17:00\"]",
                );
                return None;
            }
        };
        let mut openings = Vec::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            let key = format!("{prefix}.hours[{i}]");
            match v.as_str().map(hours::parse_entry) {
                Some(Ok(o)) => openings.extend(o),
                Some(Err(e)) => {
                    self.problem(key, e);
                    ok = false;
                }
                None => {
                    self.problem(key, "must be a string such as \"mon-fri 09:00-17:00\"");
                    ok = false;
                }
            }
        }
        let tz = self.timezone(tz, prefix);
        if arr.is_empty() {
            self.problem(
                format!("{prefix}.hours"),
                "is empty: leave it out to be always open",
            );
            ok = false;
        }
        let tz = tz?;
        ok.then_some(Some(OpeningHours { tz, openings }))
    }

    /// `timezone`, which `hours` need: an IANA name.
    fn timezone(&mut self, tz: Option<String>, prefix: &str) -> Option<chrono_tz::Tz> {
        let key = format!("{prefix}.timezone");
        let Some(z) = tz else {
            self.problem(
                key,
                "missing: hours need the site's time zone, e.g. \"Europe/Oslo\"",
            );
            return None;
        };
        z.parse::<chrono_tz::Tz>().ok().or_else(|| {
            self.problem(
                key,
                format!("{z:?} is not an IANA time zone name such as \"Europe/Oslo\""),
            );
            None
        })
    }

    /// `[[sites.canned]]`: `key` (a-z, 0-9, '-', '_'; unique) and `text`, in order.
    fn canned(&mut self, t: &Table, prefix: &str) -> Option<Vec<Canned>> {
        let arr = match t.get("canned") {
            None => return Some(Vec::new()),
            Some(Value::Array(a)) => a,
            Some(_) => {
                self.problem(
                    format!("{prefix}.canned"),
                    "must be an array of tables: [[sites.canned]] with key and text",
                );
                return None;
            }
        };
        let mut out = Vec::new();
        let mut seen = BTreeMap::new();
        let mut ok = true;
        for (i, v) in arr.iter().enumerate() {
            let key = format!("{prefix}.canned[{i}]");
            let Value::Table(c) = v else {
                self.problem(key, "must be a table with key and text");
                ok = false;
                continue;
            };
            self.unknown_keys(c, &key, &["key", "text"]);
            let k = self.string(c, &key, "key", true);
            let text = self.string(c, &key, "text", true);
            let (Some(k), Some(text)) = (k, text) else {
                ok = false;
                continue;
            };
            let good_key = k.chars().count() <= CANNED_KEY_CHARS
                && k.chars().all(|ch| {
                    ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' || ch == '_'
                });
            if !good_key {
                self.problem(
                    format!("{key}.key"),
                    format!("{k:?} must be at most {CANNED_KEY_CHARS} of a-z, 0-9, '-' and '_'"),
                );
                ok = false;
            } else if seen.insert(k.clone(), i).is_some() {
                self.problem(format!("{key}.key"), format!("{k:?} is listed twice"));
                ok = false;
            }
            if text.chars().count() > CANNED_TEXT_CHARS {
                self.problem(
                    format!("{key}.text"),
                    format!("must be at most {CANNED_TEXT_CHARS} characters"),
                );
                ok = false;
            }
            out.push(Canned { key: k, text });
        }
        ok.then_some(out)
    }
}
