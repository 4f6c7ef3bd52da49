//! SQL for the `sessions` table: one row per chat session, the `#N` staff see. Writes take the
//! core's typed records; reads give text rows for listings and typed records for resuming.

use rusqlite::{params, Connection, OptionalExtension, Row};
use xmpp_parsers::jid::{BareJid, FullJid};

use super::addresses::{self, Unusable};
use super::{parse_time, StoreError};
use crate::store::{SessionRecord, SessionRow, SessionState};

const COLUMNS: &str =
    "id, room, site, visitor, state, staff, visitor_jid, created_at, updated_at, closed_at";

pub fn insert(conn: &Connection, s: &SessionRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, room, site, visitor, state, staff, visitor_jid, created_at, updated_at, closed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        s.id,
        s.room.as_str(),
        s.site.as_str(),
        s.visitor,
        s.state.as_str(),
        s.staff.as_ref().map(|j| j.as_str()),
        s.visitor_jid.as_ref().map(|j| j.as_str()),
        s.created_at.to_rfc3339(),
        s.updated_at.to_rfc3339(),
        s.closed_at.map(|t| t.to_rfc3339()),
    ])?;
    Ok(())
}

/// Overwrites what changes over a session's life. Closing also empties its occupants.
pub fn update(conn: &Connection, s: &SessionRecord) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE sessions SET state = ?2, staff = ?3, visitor_jid = ?4, updated_at = ?5, closed_at = ?6
             WHERE id = ?1",
        )?
        .execute(params![
            s.id,
            s.state.as_str(),
            s.staff.as_ref().map(|j| j.as_str()),
            s.visitor_jid.as_ref().map(|j| j.as_str()),
            s.updated_at.to_rfc3339(),
            s.closed_at.map(|t| t.to_rfc3339()),
        ])?;
    if n == 0 {
        return Err(StoreError::Corrupt(format!(
            "no session #{} to update",
            s.id
        )));
    }
    if s.state == SessionState::Closed {
        super::occupants::delete_all(conn, s.id)?;
    }
    Ok(())
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawSession> {
    Ok(RawSession {
        id: r.get(0)?,
        room: r.get(1)?,
        site: r.get(2)?,
        visitor: r.get(3)?,
        state: r.get(4)?,
        staff: r.get(5)?,
        visitor_jid: r.get(6)?,
        created_at: r.get(7)?,
        updated_at: r.get(8)?,
        closed_at: r.get(9)?,
    })
}

/// A row as text, before its words and times are checked.
struct RawSession {
    id: i64,
    room: String,
    site: String,
    visitor: String,
    state: String,
    staff: Option<String>,
    visitor_jid: Option<String>,
    created_at: String,
    updated_at: String,
    closed_at: Option<String>,
}

impl RawSession {
    fn check(self) -> Result<SessionRow, StoreError> {
        Ok(SessionRow {
            id: self.id,
            state: self
                .state
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("session #{}: {e}", self.id)))?,
            created_at: parse_time(&self.created_at)?,
            updated_at: parse_time(&self.updated_at)?,
            closed_at: self.closed_at.as_deref().map(parse_time).transpose()?,
            room: self.room,
            site: self.site,
            visitor: self.visitor,
            staff: self.staff,
            visitor_jid: self.visitor_jid,
        })
    }
}

/// The row as the core resumes it. A room or site that does not parse makes it unusable. A
/// staff or visitor address that does not parse is left out with a warning: the session can
/// go on without it (the core did the same before the store converted).
pub fn record(row: SessionRow) -> Result<SessionRecord, Unusable> {
    let id = row.id;
    Ok(SessionRecord {
        room: addresses::bare_jid("room", &row.room)?,
        site: addresses::site_id("site", &row.site)?,
        staff: optional(id, "staff", row.staff, addresses::bare_jid),
        visitor_jid: optional(id, "visitor_jid", row.visitor_jid, addresses::full_jid),
        id,
        visitor: row.visitor,
        state: row.state,
        created_at: row.created_at,
        updated_at: row.updated_at,
        closed_at: row.closed_at,
    })
}

fn optional<T>(
    id: i64,
    column: &'static str,
    value: Option<String>,
    parse: fn(&'static str, &str) -> Result<T, Unusable>,
) -> Option<T> {
    parse(column, &value?)
        .map_err(|e| tracing::warn!(session = id, error = %e, "stored session: leaving out an address that does not parse"))
        .ok()
}

/// A record as the text it is written as.
impl From<&SessionRecord> for SessionRow {
    fn from(s: &SessionRecord) -> SessionRow {
        SessionRow {
            id: s.id,
            room: s.room.to_string(),
            site: s.site.to_string(),
            visitor: s.visitor.clone(),
            state: s.state,
            staff: s.staff.as_ref().map(BareJid::to_string),
            visitor_jid: s.visitor_jid.as_ref().map(FullJid::to_string),
            created_at: s.created_at,
            updated_at: s.updated_at,
            closed_at: s.closed_at,
        }
    }
}

pub fn get(conn: &Connection, id: i64) -> Result<Option<SessionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE id = ?1");
    conn.prepare_cached(&sql)?
        .query_row([id], from_row)
        .optional()?
        .map(RawSession::check)
        .transpose()
}

pub fn list(
    conn: &Connection,
    state: Option<SessionState>,
    site: Option<&str>,
) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM sessions
         WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR site = ?2) ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![state.map(|s| s.as_str()), site], from_row)?;
    rows.map(|r| r.map_err(StoreError::from).and_then(RawSession::check))
        .collect()
}

/// The sessions that are not CLOSED, as the core resumes them; a row that does not parse is
/// left out, with a warning naming it.
pub fn open(conn: &Connection) -> Result<Vec<SessionRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE state != 'CLOSED' ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    let mut open = Vec::new();
    for row in rows {
        let row = RawSession::check(row?)?;
        let id = row.id;
        match record(row) {
            Ok(s) => open.push(s),
            Err(e) => {
                tracing::warn!(session = id, error = %e, "stored session does not parse; not resuming it")
            }
        }
    }
    Ok(open)
}

pub fn next_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM sessions", [], |r| {
            r.get(0)
        })?,
    )
}
