//! Staff's own bookkeeping on chats: internal notes (`!note`, written into the transcript with
//! the role `note`, never sent to the visitor), tags (`!tag`, `!untag`), and chats nobody
//! answered (`!missed`, with their tags). A chat that is open is checked against the room the core holds; any other
//! number is looked up in the store first (an `Output::Query`), so closed chats (a missed one
//! followed up by email) take notes and tags too.

use xmpp_parsers::jid::{BareJid, FullJid, Jid};

use super::commands::{Answer, Query, QueryResult, ReplyTo, Then};
use super::session::{MessageRecord, Role};
use super::{Core, Effects, OrElse};
use crate::render::{one_line, short};
use crate::store::stats::Missed;
use crate::store::{SessionRow, StoreOp};
use crate::time::Timestamp;

/// Longest tag, in characters.
pub const TAG_MAX_CHARS: usize = 32;
/// Most tags one `!tag` adds.
pub const TAGS_PER_COMMAND: usize = 10;
/// Most missed chats `!missed` lists in one message (the oldest are left out).
const MISSED_MAX_LINES: usize = 50;
const DEFAULT_MISSED_DAYS: i64 = 7;

/// The words of `!tag` or `!untag` (`cmd`) as tags: lower-cased, each 1–32 letters, digits,
/// `-` or `_` (so no spaces, controls or bidi overrides), repeats once; or what is wrong.
pub fn tag_words(cmd: &str, words: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    for word in words.split_whitespace() {
        let tag = word.trim_start_matches('#').to_lowercase();
        // `!tag 12 -refund` reads as "remove refund": say how, rather than add "-refund".
        if cmd == "tag" && tag.starts_with('-') {
            return Err(format!(
                "\"{}\" cannot be a tag: to take a tag off a chat, use !untag N {}.",
                short(word, 40),
                short(tag.trim_start_matches('-'), 40)
            ));
        }
        let ok_char = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
        let len = tag.chars().count();
        if len == 0 || len > TAG_MAX_CHARS || !tag.chars().all(ok_char) {
            return Err(format!(
                "\"{}\" cannot be a tag: a tag is 1 to {TAG_MAX_CHARS} letters, digits, - or _.",
                short(word, 40)
            ));
        }
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    match tags.len() {
        0 if cmd == "tag" => {
            Err("!tag needs one or more words, e.g. !tag 12 billing refund".into())
        }
        0 => Err(format!(
            "!{cmd} needs one or more tags, e.g. !{cmd} 12 refund"
        )),
        n if n > TAGS_PER_COMMAND => Err(format!(
            "At most {TAGS_PER_COMMAND} tags at a time; that was {n}."
        )),
        _ => Ok(tags),
    }
}

/// `, tags: a, b` for a header, or nothing when there are none (rendered: a tag in the file
/// may have been written by someone other than frontdesk).
pub fn tags_suffix(tags: &[String]) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let tags: Vec<String> = tags.iter().map(|t| one_line(t)).collect();
    format!(", tags: {}", tags.join(", "))
}

/// Where a note or tag goes, once the chat's site is known to be the sender's.
enum Target {
    /// An open room the core holds (its stanza-ids continue).
    Open,
    /// Not open here: ask the store.
    Ask,
}

impl Core {
    /// Does `sender` work on `site`? Staff on their sites, admins on all.
    pub(super) fn covers(&self, sender: &BareJid, site: &str) -> bool {
        self.config.admins.contains(sender)
            || self.staff_sites(sender).iter().any(|s| s.as_str() == site)
    }

    fn target(&self, sender: &BareJid, n: i64, what: &str) -> Result<Target, String> {
        match self.rooms.by_session(n) {
            Some(r) if self.covers(sender, r.name().site().as_str()) => Ok(Target::Open),
            Some(_) => Err(other_site(n, what)),
            None => Ok(Target::Ask),
        }
    }

    /// `!note N text`.
    pub(super) fn note(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        n: i64,
        text: String,
        reply: ReplyTo,
        out: &mut Effects,
    ) {
        let staff = sender.to_bare();
        let max = self.config.limits.body_chars;
        let len = text.chars().count();
        let refused = if text.is_empty() {
            Some(format!(
                "!note needs some text, e.g. !note {n} emailed them the invoice"
            ))
        } else if len > max {
            Some(format!(
                "A note is at most {max} characters; that one has {len}."
            ))
        } else {
            None
        };
        if let Some(r) = refused {
            return self.reply(&reply, &r, out);
        }
        match self.target(&staff, n, "note") {
            Err(e) => self.reply(&reply, &e, out),
            Ok(Target::Open) => self.write_note(now, sender, n, text, &reply, out),
            Ok(Target::Ask) => {
                let then = Then::Note {
                    sender: sender.clone(),
                    text,
                };
                self.ask_session(now, staff, n, reply, then, out);
            }
        }
    }

    /// `!tag N word…`.
    pub(super) fn tag(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        n: i64,
        words: &str,
        reply: ReplyTo,
        out: &mut Effects,
    ) {
        let tags = match tag_words("tag", words) {
            Ok(t) => t,
            Err(e) => return self.reply(&reply, &e, out),
        };
        match self.target(staff, n, "tag") {
            Err(e) => self.reply(&reply, &e, out),
            Ok(Target::Open) => self.write_tags(now, staff, n, tags, &reply, out),
            Ok(Target::Ask) => {
                self.ask_session(now, staff.clone(), n, reply, Then::Tag { tags }, out)
            }
        }
    }

    /// `!untag N word…`. Open or closed, the store knows the chat's tags: it is asked first,
    /// so that a tag the chat does not have is answered as such.
    pub(super) fn untag(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        n: i64,
        words: &str,
        reply: ReplyTo,
        out: &mut Effects,
    ) {
        let tags = match tag_words("untag", words) {
            Ok(t) => t,
            Err(e) => return self.reply(&reply, &e, out),
        };
        if let Err(e) = self.target(staff, n, "untag") {
            return self.reply(&reply, &e, out);
        }
        let id = self.ids.next();
        self.queries
            .asked(id, staff.clone(), reply, Then::Untag { tags }, now);
        out.query(Query::SessionTags { id, session_id: n });
    }

    /// `!missed [days]`.
    pub(super) fn missed(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        days: Option<i64>,
        reply: ReplyTo,
        out: &mut Effects,
    ) {
        let days = days.unwrap_or(DEFAULT_MISSED_DAYS);
        let id = self.ids.next();
        self.queries
            .asked(id, staff.clone(), reply, Then::Missed { days }, now);
        let since = now.plus_millis(-days * 86_400_000);
        out.query(Query::Missed { id, since });
    }

    fn ask_session(
        &mut self,
        now: Timestamp,
        staff: BareJid,
        n: i64,
        reply: ReplyTo,
        then: Then,
        out: &mut Effects,
    ) {
        let id = self.ids.next();
        self.queries.asked(id, staff, reply, then, now);
        out.query(Query::Session { id, session_id: n });
    }

    /// A store read came back: finish the command that asked for it.
    pub(super) fn query_done(
        &mut self,
        now: Timestamp,
        id: u64,
        result: QueryResult,
        out: &mut Effects,
    ) {
        let Some((staff, reply, then)) = self.queries.answered(id) else {
            return;
        };
        self.answer_read(now, &staff, reply, then, result, out);
        // What the same staff member sent meanwhile runs now, after this answer.
        self.run_parked(now, &staff, out);
    }

    fn answer_read(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        reply: ReplyTo,
        then: Then,
        result: QueryResult,
        out: &mut Effects,
    ) {
        match (then, result) {
            (Then::Transcript, Ok(Answer::Transcript(t))) => {
                self.transcript_ready(staff, &reply, Ok(t), out)
            }
            (Then::Transcript, Err(e)) => self.transcript_ready(staff, &reply, Err(e), out),
            (Then::Missed { days }, Ok(Answer::Missed(rows))) => {
                let text = self.missed_text(now, staff, days, &rows);
                self.reply(&reply, &text, out);
            }
            (Then::Untag { tags }, Ok(Answer::SessionTags(found))) => {
                self.untag_known(staff, reply, tags, found, out)
            }
            (then, Ok(Answer::Session(row))) => {
                self.session_known(now, staff, reply, then, row, out)
            }
            (_, result) => {
                tracing::error!(result = ?result.err(), "store read failed or answered something else");
                self.reply(
                    &reply,
                    "The database could not be read; the log says why.",
                    out,
                );
            }
        }
    }

    /// The store says what session `N` is: note or tag it if it is the sender's.
    fn session_known(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        reply: ReplyTo,
        then: Then,
        row: Option<SessionRow>,
        out: &mut Effects,
    ) {
        let (n, what) = match (&then, &row) {
            (_, None) => return self.reply(&reply, "There is no such chat.", out),
            (Then::Note { .. }, Some(r)) => (r.id, "note"),
            (_, Some(r)) => (r.id, "tag"),
        };
        if row.is_some_and(|r| !self.covers(staff, &r.site)) {
            return self.reply(&reply, &other_site(n, what), out);
        }
        match then {
            Then::Note { sender, text } => self.write_note(now, &sender, n, text, &reply, out),
            Then::Tag { tags } => self.write_tags(now, staff, n, tags, &reply, out),
            Then::Transcript | Then::Missed { .. } | Then::Untag { .. } => {}
        }
    }

    /// Writes the note; the sender hears once it is on disk (or that it is not).
    fn write_note(
        &mut self,
        now: Timestamp,
        sender: &FullJid,
        n: i64,
        text: String,
        reply: &ReplyTo,
        out: &mut Effects,
    ) {
        // An open room gives the next id of its sequence; a closed one has no sequence left
        // to keep, and its notes are told apart by time.
        let stanza_id = match self.rooms.by_session_mut(n) {
            Some(room) => room.note_stanza_id(),
            None => format!("{n}-note-{}", now.millis()),
        };
        let note = MessageRecord {
            session_id: n,
            at: now,
            role: Role::Note,
            from_jid: Jid::from(sender.clone()),
            nick: sender.to_bare().to_string(),
            body: text,
            stanza_id,
            origin_id: None,
        };
        tracing::info!(session = n, staff = %sender.to_bare(), "note");
        let done = self.reply_stanza(reply, &format!("Note added to #{n}."));
        let failed = self.tell(reply, not_saved(n, "note"));
        out.persist(StoreOp::AppendMessage(note), vec![done], failed);
    }

    fn write_tags(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        n: i64,
        tags: Vec<String>,
        reply: &ReplyTo,
        out: &mut Effects,
    ) {
        let done = self.reply_stanza(reply, &format!("#{n} tagged {}.", tags.join(", ")));
        let failed = self.tell(reply, not_saved(n, "tags"));
        let op = StoreOp::TagsAdded {
            session_id: n,
            tags,
            by: staff.clone(),
            at: now,
        };
        out.persist(op, vec![done], failed);
    }

    /// The store says what session `N` is and which tags it has: remove those it has.
    fn untag_known(
        &mut self,
        staff: &BareJid,
        reply: ReplyTo,
        tags: Vec<String>,
        found: Option<(SessionRow, Vec<String>)>,
        out: &mut Effects,
    ) {
        let Some((row, had)) = found else {
            return self.reply(&reply, "There is no such chat.", out);
        };
        let n = row.id;
        if !self.covers(staff, &row.site) {
            return self.reply(&reply, &other_site(n, "untag"), out);
        }
        let (gone, absent): (Vec<String>, Vec<String>) =
            tags.into_iter().partition(|t| had.contains(t));
        let left: Vec<String> = had.into_iter().filter(|t| !gone.contains(t)).collect();
        if gone.is_empty() {
            let text = format!(
                "#{n} has no tag {}{}.",
                absent.join(", "),
                now_tags(&left, true)
            );
            return self.reply(&reply, &text, out);
        }
        let mut text = format!("#{n}: removed {}.", gone.join(", "));
        if !absent.is_empty() {
            text.push_str(&format!(" It had no {}.", absent.join(", ")));
        }
        text.push_str(&now_tags(&left, false));
        tracing::info!(session = n, staff = %staff, tags = ?gone, "tags removed");
        let done = self.reply_stanza(&reply, &text);
        let failed = self.tell(&reply, not_saved(n, "tag removal"));
        let op = StoreOp::TagsRemoved {
            session_id: n,
            tags: gone,
        };
        out.persist(op, vec![done], failed);
    }

    fn tell(&self, to: &ReplyTo, text: String) -> OrElse {
        OrElse::Tell {
            desk: Jid::from(self.config.component.clone()),
            to: to.clone(),
            text,
        }
    }

    /// The missed chats of the sender's sites (an admin's: all), newest last.
    fn missed_text(&self, now: Timestamp, staff: &BareJid, days: i64, rows: &[Missed]) -> String {
        let mine: Vec<&Missed> = rows
            .iter()
            .filter(|m| self.covers(staff, &m.site))
            .collect();
        let span = if days == 1 {
            "day".to_string()
        } else {
            format!("{days} days")
        };
        if mine.is_empty() {
            return format!("No missed chats on your sites in the last {span}.");
        }
        let skipped = mine.len().saturating_sub(MISSED_MAX_LINES);
        let mut lines = vec![format!(
            "{} missed chat(s) on your sites in the last {span} (closed with no staff reply){}:",
            mine.len(),
            if skipped > 0 {
                format!("; the newest {MISSED_MAX_LINES}")
            } else {
                String::new()
            }
        )];
        lines.extend(mine[skipped..].iter().map(|m| self.missed_line(now, m)));
        lines.join("\n")
    }

    fn missed_line(&self, now: Timestamp, m: &Missed) -> String {
        let site = crate::address::SiteId::new(&m.site)
            .ok()
            .and_then(|id| self.config.sites.get(&id))
            .map(|s| s.name.as_str())
            .unwrap_or(&m.site);
        let at = m.created_at.to_rfc3339();
        let at = at.get(..16).unwrap_or(&at).replace('T', " ");
        let tags: Vec<String> = m.tags.iter().map(|t| one_line(t)).collect();
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" — tags: {}", tags.join(", "))
        };
        format!(
            "#{} visitor {} on {} — {at} UTC, closed {} ago — \"{}\"{tags}",
            m.id,
            one_line(&m.visitor),
            one_line(site),
            super::commands::ago(now, m.closed_at),
            short(&m.first_message, 80),
        )
    }
}

fn other_site(n: i64, what: &str) -> String {
    format!("#{n} is a chat of another site: you can only {what} chats of your own sites.")
}

/// What tags a chat has left: ` (its tags: a, b)` in a refusal, ` Tags now: a, b.` after a
/// removal (rendered: a tag in the file may have been written by someone other than frontdesk).
fn now_tags(left: &[String], refusal: bool) -> String {
    let list: Vec<String> = left.iter().map(|t| one_line(t)).collect();
    match (list.is_empty(), refusal) {
        (true, true) => " (it has no tags)".into(),
        (false, true) => format!(" (its tags: {})", list.join(", ")),
        (true, false) => " It has no tags now.".into(),
        (false, false) => format!(" Tags now: {}.", list.join(", ")),
    }
}

fn not_saved(n: i64, what: &str) -> String {
    format!("The {what} for #{n} could not be saved (the database failed; the log says why). Please send it again.")
}
