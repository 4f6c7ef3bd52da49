//! The schema's history: an append-only list of migrations keyed by `PRAGMA user_version`.
//! Never edit a migration that has shipped; append a new one.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: sessions, their transcripts, and who is in each open room.
    "CREATE TABLE sessions (
        id          INTEGER PRIMARY KEY,
        room        TEXT NOT NULL,
        site        TEXT NOT NULL,
        visitor     TEXT NOT NULL,
        state       TEXT NOT NULL CHECK (state IN ('INACTIVE','ACTIVE','CHATTING','CLOSED')),
        staff       TEXT,
        visitor_jid TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        closed_at   TEXT
    );
    CREATE INDEX sessions_state ON sessions(state);
    CREATE INDEX sessions_room ON sessions(room);
    CREATE INDEX sessions_site_state ON sessions(site, state);
    CREATE TABLE messages (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions(id),
        at          TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('visitor','staff','system')),
        from_jid    TEXT NOT NULL,
        nick        TEXT NOT NULL,
        body        TEXT NOT NULL,
        stanza_id   TEXT NOT NULL,
        origin_id   TEXT
    );
    CREATE INDEX messages_session ON messages(session_id, id);
    CREATE TABLE occupants (
        session_id  INTEGER NOT NULL REFERENCES sessions(id),
        jid         TEXT NOT NULL,
        nick        TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('visitor','staff')),
        joined_at   TEXT NOT NULL,
        PRIMARY KEY (session_id, jid)
    );",
    // 2: staff who took a chat one-to-one (not joined to the room), and the roster items we
    // put into staff rosters, so a restart still removes them.
    "ALTER TABLE occupants ADD COLUMN direct INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE roster_items (
        staff       TEXT NOT NULL,
        contact     TEXT NOT NULL,
        added_at    TEXT NOT NULL,
        PRIMARY KEY (staff, contact)
    );",
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Runs the migrations this database has not had, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current = version(conn)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i as i64 + 1)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrate_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
        migrate(&mut conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 4);
    }
}
