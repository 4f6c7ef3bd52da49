//! SQL for the `occupants` table: who is in each open room now, so a restarted frontdesk
//! knows whom to check on.

use rusqlite::{params, Connection};

use super::{parse_time, StoreError};
use crate::store::{OccupantRow, Role};

pub fn upsert(conn: &Connection, o: &OccupantRow) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO occupants (session_id, jid, nick, role, joined_at, direct) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![o.session_id, o.jid, o.nick, o.role.as_str(), o.joined_at.to_rfc3339(), o.direct])?;
    Ok(())
}

pub fn delete(conn: &Connection, session_id: i64, jid: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM occupants WHERE session_id = ?1 AND jid = ?2")?
        .execute(params![session_id, jid])?;
    Ok(())
}

pub fn delete_all(conn: &Connection, session_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM occupants WHERE session_id = ?1")?
        .execute([session_id])?;
    Ok(())
}

/// Occupants of sessions that are not CLOSED.
pub fn of_open_sessions(conn: &Connection) -> Result<Vec<OccupantRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.session_id, o.jid, o.nick, o.role, o.joined_at, o.direct FROM occupants o
         JOIN sessions s ON s.id = o.session_id WHERE s.state != 'CLOSED'
         ORDER BY o.session_id, o.rowid",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            (
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ),
            (
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, bool>(5)?,
            ),
        ))
    })?;
    rows.map(|r| {
        let ((session_id, jid, nick), (role, joined_at, direct)) = r?;
        Ok(OccupantRow {
            session_id,
            jid,
            nick,
            role: role.parse::<Role>().map_err(StoreError::Corrupt)?,
            joined_at: parse_time(&joined_at)?,
            direct,
        })
    })
    .collect()
}
