//! SQL for the `roster_items` table: which visitor contacts (and the front desk) we put into
//! which staff rosters, so that they are removed again even across a restart.

use rusqlite::{params, Connection};
use xmpp_parsers::jid::BareJid;

use super::addresses;
use super::StoreError;
use crate::time::Timestamp;

pub fn insert(
    conn: &Connection,
    staff: &BareJid,
    contact: &BareJid,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO roster_items (staff, contact, added_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![staff.as_str(), contact.as_str(), at.to_rfc3339()])?;
    Ok(())
}

pub fn delete(conn: &Connection, staff: &BareJid, contact: &BareJid) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM roster_items WHERE staff = ?1 AND contact = ?2")?
        .execute(params![staff.as_str(), contact.as_str()])?;
    Ok(())
}

/// Every item as (staff, contact); a pair that does not parse is left out, with a warning.
pub fn all(conn: &Connection) -> Result<Vec<(BareJid, BareJid)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT staff, contact FROM roster_items ORDER BY staff, contact")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut items = Vec::new();
    for r in rows {
        let (staff, contact) = r?;
        let item = addresses::bare_jid("staff", &staff)
            .and_then(|s| Ok((s, addresses::bare_jid("contact", &contact)?)));
        match item {
            Ok(item) => items.push(item),
            Err(e) => {
                tracing::warn!(staff, contact, error = %e, "stored roster item does not parse; not resuming it")
            }
        }
    }
    Ok(items)
}
