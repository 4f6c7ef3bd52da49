//! SQL for the `messages` table: every line of every transcript, in the order it was said.
//! Writes take the core's typed lines; reads give text rows for transcripts and typed lines
//! for resuming.

use rusqlite::{params, Connection, Row};

use super::addresses::{self, Unusable};
use super::{parse_time, StoreError};
use crate::store::{MessageRecord, MessageRow, Role};
use crate::time::Timestamp;

pub fn insert(conn: &Connection, m: &MessageRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO messages (session_id, at, role, from_jid, nick, body, stanza_id, origin_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        m.session_id,
        m.at.to_rfc3339(),
        m.role.as_str(),
        m.from_jid.as_str(),
        m.nick,
        m.body,
        m.stanza_id,
        m.origin_id,
    ])?;
    Ok(())
}

type Raw = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn check(
    (session_id, at, role, from_jid, nick, body, stanza_id, origin_id): Raw,
) -> Result<MessageRow, StoreError> {
    Ok(MessageRow {
        session_id,
        at: parse_time(&at)?,
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        from_jid,
        nick,
        body,
        stanza_id,
        origin_id,
    })
}

/// The line as the core resumes it: unusable if its sender is not a JID.
pub fn record(m: MessageRow) -> Result<MessageRecord, Unusable> {
    Ok(MessageRecord {
        from_jid: addresses::jid("from_jid", &m.from_jid)?,
        session_id: m.session_id,
        at: m.at,
        role: m.role,
        nick: m.nick,
        body: m.body,
        stanza_id: m.stanza_id,
        origin_id: m.origin_id,
    })
}

/// The lines that parse, for resuming; each one that does not is logged and left out.
fn resumable(rows: Vec<MessageRow>) -> Vec<MessageRecord> {
    rows.into_iter()
        .filter_map(|m| {
            let (session, stanza_id) = (m.session_id, m.stanza_id.clone());
            record(m)
                .map_err(|e| tracing::warn!(session, stanza_id, error = %e, "stored line does not parse; not resuming it"))
                .ok()
        })
        .collect()
}

const COLUMNS: &str = "session_id, at, role, from_jid, nick, body, stanza_id, origin_id";

/// One session's transcript, oldest first.
pub fn of_session(conn: &Connection, session_id: i64) -> Result<Vec<MessageRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM messages WHERE session_id = ?1 ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([session_id], raw)?;
    rows.map(|r| r.map_err(StoreError::from).and_then(check))
        .collect()
}

/// The latest `limit` visitor and staff lines of a session, oldest first: its history on join
/// (never system lines nor staff's notes).
/// Lines that do not parse are left out (after the limit, so fewer may come back).
pub fn latest_said(
    conn: &Connection,
    session_id: i64,
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT id, {COLUMNS} FROM messages
           WHERE session_id = ?1 AND role IN ('visitor', 'staff') ORDER BY id DESC LIMIT ?2)
         ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![session_id, limit as i64], raw)?;
    let rows = rows
        .map(|r| r.map_err(StoreError::from).and_then(check))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(resumable(rows))
}

/// The latest `limit` visitor and staff lines (never system lines or staff's notes) of a
/// session stored before the line with
/// stanza-id `before` and said after `after`, oldest first: history older than a room holds in
/// memory (core/replay.rs). Nothing if `before` is not stored.
pub fn said_before(
    conn: &Connection,
    session_id: i64,
    before: &str,
    after: Option<Timestamp>,
    limit: usize,
) -> Result<Vec<MessageRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM (SELECT id, {COLUMNS} FROM messages
           WHERE session_id = ?1 AND role IN ('visitor', 'staff') AND (?3 IS NULL OR at > ?3)
             AND id < (SELECT id FROM messages WHERE session_id = ?1 AND stanza_id = ?2)
           ORDER BY id DESC LIMIT ?4)
         ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let after = after.map(|t| t.to_rfc3339());
    let rows = stmt.query_map(params![session_id, before, after, limit as i64], raw)?;
    let rows = rows
        .map(|r| r.map_err(StoreError::from).and_then(check))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(resumable(rows))
}

/// The visitor's first message in a session, if they wrote (and it parses).
pub fn first_of_visitor(
    conn: &Connection,
    session_id: i64,
) -> Result<Option<MessageRecord>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM messages WHERE session_id = ?1 AND role = 'visitor' ORDER BY id LIMIT 1"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query_map(params![session_id], raw)?;
    let first = rows
        .next()
        .map(|r| r.map_err(StoreError::from).and_then(check))
        .transpose()?;
    Ok(resumable(first.into_iter().collect()).pop())
}

/// The stanza-id of a session's latest line of any kind.
pub fn last_stanza_id(conn: &Connection, session_id: i64) -> Result<Option<String>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT stanza_id FROM messages WHERE session_id = ?1 ORDER BY id DESC LIMIT 1",
    )?;
    let mut rows = stmt.query_map(params![session_id], |r| r.get::<_, String>(0))?;
    rows.next().transpose().map_err(StoreError::from)
}
