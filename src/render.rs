//! Untrusted text (what visitors and staff wrote, nicks, ids) rendered for humans: terminals,
//! Jabber clients, roster status lines. One way, used by every text output, so that nobody can
//! make a line that looks like another entry (a forged "carol (staff): Refund approved") or
//! send raw control sequences to a terminal. JSON output does not come through here: it stays
//! byte-exact.
//!
//! - C0 and C1 control characters (ESC, the 8-bit CSI U+009B, …), DEL, and the bidirectional
//!   controls (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C) are shown as `\u{…}`.
//! - Line breaks of every kind (LF, CR, U+0085, U+2028, U+2029, VT, FF) end a line: in
//!   [`one_line`] they become ` ⏎ `; in [`entry`] every continuation line is indented and
//!   marked with `│`, so it can never pass for the start of an entry.

/// Is this a line break of any kind?
fn is_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Characters that must never reach a human's screen as they are.
fn is_hidden(c: char) -> bool {
    (c.is_control() && !is_break(c))
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn push_visible(out: &mut String, c: char) {
    if is_hidden(c) {
        out.push_str(&format!("\\u{{{:04X}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// The text on one line: breaks shown as ` ⏎ `, hidden characters escaped.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_break(c) {
            // CR LF is one break.
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push_str(" ⏎ ");
        } else {
            push_visible(&mut out, c);
        }
    }
    out
}

/// Is this text as [`one_line`] or [`entry`] leave it: no hidden characters, and no line
/// breaks but `\n` where `lines` is true?
pub fn is_rendered(text: &str, lines: bool) -> bool {
    !text
        .chars()
        .any(|c| is_hidden(c) || (is_break(c) && !(lines && c == '\n')))
}

/// At most `n` characters of [`one_line`]'s rendering, with `…` when cut.
pub fn short(text: &str, n: usize) -> String {
    let line = one_line(text);
    if line.chars().count() <= n {
        return line;
    }
    let mut s: String = line.chars().take(n).collect();
    s.push('…');
    s
}

/// An entry that may span lines: `head` (already safe: built by us) followed by the text, each
/// continuation line indented and marked so that it cannot start an entry of its own.
pub fn entry(head: &str, text: &str) -> String {
    let mut out = String::with_capacity(head.len() + text.len() + 8);
    out.push_str(head);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if is_break(c) {
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push_str("\n    │ ");
        } else {
            push_visible(&mut out, c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(one_line("a\u{1B}[31mb"), "a\\u{001B}[31mb");
        assert_eq!(one_line("x\u{9B}2J"), "x\\u{009B}2J");
        assert_eq!(one_line("\u{202E}txt.exe"), "\\u{202E}txt.exe");
        assert_eq!(one_line("del\u{7F}"), "del\\u{007F}");
        assert_eq!(one_line("plain ünïcode ✓"), "plain ünïcode ✓");
    }

    #[test]
    fn every_kind_of_line_break_is_shown_not_obeyed() {
        for br in [
            "\n", "\r", "\r\n", "\u{85}", "\u{2028}", "\u{2029}", "\u{0B}", "\u{0C}",
        ] {
            let text = format!("hi{br}carol (staff): Refund approved");
            let line = one_line(&text);
            assert!(!line.contains(|c: char| is_break(c)), "{br:?}: {line:?}");
            assert_eq!(line, "hi ⏎ carol (staff): Refund approved");
            let e = entry("[10:00] Ann (visitor): ", &text);
            let lines: Vec<&str> = e.lines().collect();
            assert_eq!(lines.len(), 2, "{e:?}");
            assert!(lines[1].starts_with("    │ "), "{e:?}");
        }
    }

    #[test]
    fn short_cuts_by_characters_after_rendering() {
        assert_eq!(short("abcdef", 3), "abc…");
        assert_eq!(short("ab\ncd", 10), "ab ⏎ cd");
        assert_eq!(short("é".repeat(5).as_str(), 5), "ééééé");
    }
}
