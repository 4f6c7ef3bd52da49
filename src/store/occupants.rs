//! SQL for the `occupants` table: who is in each open room now, so a restarted frontdesk
//! knows whom to check on. Writes take the core's typed occupants and reads give them back;
//! a row whose JID does not parse is left out, with a warning.

use rusqlite::{params, Connection};
use xmpp_parsers::jid::FullJid;

use super::addresses;
use super::{parse_time, StoreError};
use crate::store::{OccupantRecord, Role};

pub fn upsert(conn: &Connection, o: &OccupantRecord) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO occupants (session_id, jid, nick, role, joined_at, direct) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![o.session_id, o.jid.as_str(), o.nick, o.role.as_str(), o.joined_at.to_rfc3339(), o.direct])?;
    Ok(())
}

pub fn delete(conn: &Connection, session_id: i64, jid: &FullJid) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM occupants WHERE session_id = ?1 AND jid = ?2")?
        .execute(params![session_id, jid.as_str()])?;
    Ok(())
}

pub fn delete_all(conn: &Connection, session_id: i64) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM occupants WHERE session_id = ?1")?
        .execute([session_id])?;
    Ok(())
}

/// Occupants of sessions that are not CLOSED.
pub fn of_open_sessions(conn: &Connection) -> Result<Vec<OccupantRecord>, StoreError> {
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
    let mut occupants = Vec::new();
    for r in rows {
        let ((session_id, jid, nick), (role, joined_at, direct)) = r?;
        let role = role
            .parse::<Role>()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let joined_at = parse_time(&joined_at)?;
        let jid = match addresses::full_jid("jid", &jid) {
            Ok(jid) => jid,
            Err(e) => {
                tracing::warn!(session = session_id, error = %e, "stored occupant does not parse; not resuming them");
                continue;
            }
        };
        occupants.push(OccupantRecord {
            session_id,
            jid,
            nick,
            role,
            joined_at,
            direct,
        });
    }
    Ok(occupants)
}
