//! Nickname rules for joining a room: what may be shown as a name, and when two names clash.

use std::collections::{BTreeMap, BTreeSet};

use crate::address::SiteId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NickError {
    Empty,
    TooLong,
    /// Control, zero-width, bidi or other invisible characters: they let one name pose as another.
    Invisible,
}

impl NickError {
    pub fn text(self) -> &'static str {
        match self {
            NickError::Empty => "A nickname is required: join as room@domain/YourName.",
            NickError::TooLong => "That nickname is too long.",
            NickError::Invisible => {
                "That nickname contains invisible or control characters; choose a plain name."
            }
        }
    }
}

/// Checks a nick as it arrived in the resource part of the `to` address.
pub fn check(nick: &str, max_chars: usize) -> Result<(), NickError> {
    if nick.chars().all(char::is_whitespace) {
        return Err(NickError::Empty);
    }
    if nick.chars().count() > max_chars {
        return Err(NickError::TooLong);
    }
    if nick.chars().any(is_invisible) {
        return Err(NickError::Invisible);
    }
    Ok(())
}

/// The form two nicks are compared in, after the PRECIS nickname profile (RFC 8266): other
/// spaces become ASCII spaces, runs of spaces one, no spaces at the ends, NFKC, lower case.
/// So a visitor cannot take "Alice" while "alice", "Ａｌｉｃｅ" (full width) or "Alice  " is there.
pub fn fold(nick: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let spaced: String = nick
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    let collapsed = spaced
        .split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    collapsed.nfkc().collect::<String>().to_lowercase()
}

/// Each site's staff local parts, folded: the nicks a visitor may not take there.
pub fn staff_nicks(config: &super::CoreConfig) -> BTreeMap<SiteId, BTreeSet<String>> {
    config
        .sites
        .iter()
        .map(|(id, site)| {
            let nicks = site
                .staff
                .iter()
                .filter_map(|j| j.node())
                .map(|l| fold(l.as_str()));
            (id.clone(), nicks.collect())
        })
        .collect()
}

fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(c as u32,
            0x00AD | 0x034F | 0x061C | 0x115F | 0x1160 | 0x17B4 | 0x17B5
            | 0x180B..=0x180F
            | 0x200B..=0x200F   // zero-width space/joiners, LRM/RLM
            | 0x2028..=0x202E   // separators, bidi embeddings and overrides
            | 0x2060..=0x206F   // word joiner, invisible operators, bidi isolates
            | 0x3164 | 0xFFA0
            | 0xFE00..=0xFE0F   // variation selectors
            | 0xFEFF
            | 0xFFF0..=0xFFFB
            | 0x1D173..=0x1D17A
            | 0xE0000..=0xE0FFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        assert_eq!(check("Ann", 64), Ok(()));
        assert_eq!(check("Zoë Müller", 64), Ok(()));
        assert_eq!(check("李小龍", 64), Ok(()));
    }

    #[test]
    fn invisible_names_fail() {
        assert_eq!(check(" ", 64), Err(NickError::Empty));
        assert_eq!(check("\u{200B}", 64), Err(NickError::Invisible));
        assert_eq!(check("ali\u{200B}ce", 64), Err(NickError::Invisible));
        assert_eq!(check("alice\u{202E}", 64), Err(NickError::Invisible));
        assert_eq!(check("a\u{0007}", 64), Err(NickError::Invisible));
        assert_eq!(check(&"x".repeat(65), 64), Err(NickError::TooLong));
    }

    #[test]
    fn folding() {
        assert_eq!(fold("Alice"), fold("alice "));
        assert_eq!(
            fold("Alice"),
            fold("\u{FF21}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}")
        ); // full width
        assert_eq!(fold("Ann Lee"), fold("Ann\u{00A0}\u{00A0}Lee")); // no-break spaces
        assert_eq!(fold("ﬁona"), fold("FIONA")); // the fi ligature
        assert_eq!(fold("Zoë"), fold("Zoe\u{0308}")); // composed or not
        assert_ne!(fold("Alice"), fold("Alicia"));
    }
}
