//! SQL for the `sessions` table: one row per chat session, the `#N` staff see.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{parse_time, StoreError};
use crate::store::{SessionRow, SessionState};

const COLUMNS: &str =
    "id, room, site, visitor, state, staff, visitor_jid, created_at, updated_at, closed_at";

pub fn insert(conn: &Connection, s: &SessionRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO sessions (id, room, site, visitor, state, staff, visitor_jid, created_at, updated_at, closed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        s.id,
        s.room,
        s.site,
        s.visitor,
        s.state.as_str(),
        s.staff,
        s.visitor_jid,
        s.created_at.to_rfc3339(),
        s.updated_at.to_rfc3339(),
        s.closed_at.map(|t| t.to_rfc3339()),
    ])?;
    Ok(())
}

/// Overwrites what changes over a session's life. Closing also empties its occupants.
pub fn update(conn: &Connection, s: &SessionRow) -> Result<(), StoreError> {
    let n = conn
        .prepare_cached(
            "UPDATE sessions SET state = ?2, staff = ?3, visitor_jid = ?4, updated_at = ?5, closed_at = ?6
             WHERE id = ?1",
        )?
        .execute(params![
            s.id,
            s.state.as_str(),
            s.staff,
            s.visitor_jid,
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

pub fn open(conn: &Connection) -> Result<Vec<SessionRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM sessions WHERE state != 'CLOSED' ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], from_row)?;
    rows.map(|r| r.map_err(StoreError::from).and_then(RawSession::check))
        .collect()
}

pub fn next_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(
        conn.query_row("SELECT coalesce(max(id), 0) + 1 FROM sessions", [], |r| {
            r.get(0)
        })?,
    )
}
