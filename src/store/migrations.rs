//! The schema's history: an append-only list of migrations keyed by `PRAGMA user_version`.
//! Never edit a migration that has shipped; append a new one.

use rusqlite::{Connection, TransactionBehavior};

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
    // 3: staff's internal notes in transcripts (role 'note': SQLite cannot change a CHECK, so
    // the table is copied), and tags on sessions.
    "CREATE TABLE messages_v3 (
        id          INTEGER PRIMARY KEY,
        session_id  INTEGER NOT NULL REFERENCES sessions(id),
        at          TEXT NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('visitor','staff','system','note')),
        from_jid    TEXT NOT NULL,
        nick        TEXT NOT NULL,
        body        TEXT NOT NULL,
        stanza_id   TEXT NOT NULL,
        origin_id   TEXT
    );
    INSERT INTO messages_v3 (id, session_id, at, role, from_jid, nick, body, stanza_id, origin_id)
        SELECT id, session_id, at, role, from_jid, nick, body, stanza_id, origin_id FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;
    CREATE INDEX messages_session ON messages(session_id, id);
    CREATE TABLE tags (
        session_id  INTEGER NOT NULL REFERENCES sessions(id),
        tag         TEXT NOT NULL,
        added_by    TEXT NOT NULL,
        added_at    TEXT NOT NULL,
        PRIMARY KEY (session_id, tag)
    );",
    // 4: what is known of each session's visitor: details the web app signed in the token
    // (signed = 1), the page and pre-chat answers the widget sent (signed = 0).
    "CREATE TABLE session_details (
        session_id  INTEGER NOT NULL REFERENCES sessions(id),
        key         TEXT NOT NULL,
        value       TEXT NOT NULL,
        signed      INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (session_id, key)
    );",
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

pub fn version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Runs the migrations this database has not had, in one transaction that also reads the
/// version. BEGIN IMMEDIATE takes the write lock before that read, so a second process starting
/// at the same time waits, then sees the version the first one left rather than the one it
/// read before they committed (and applies nothing twice); a crash midway leaves the old
/// version and none of the new schema.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current = version(&tx)?;
    if current > LATEST {
        // Written by a newer frontdesk: running on it would write rows it does not expect.
        return Err(StoreError::TooNew {
            path: tx.path().unwrap_or_default().into(),
            found: current,
            known: LATEST,
        });
    }
    let missing = MIGRATIONS.iter().enumerate().skip(current.max(0) as usize);
    let mut applied = None;
    for (i, sql) in missing {
        tx.execute_batch(sql)?;
        applied = Some(i as i64 + 1);
    }
    let Some(latest) = applied else {
        return Ok(()); // nothing to do; the transaction rolls back, having written nothing
    };
    tx.pragma_update(None, "user_version", latest)?;
    tx.commit()?;
    tracing::info!(from = current, to = latest, "database migrated");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmpp_parsers::jid::{BareJid, FullJid};

    use crate::store::{
        messages, occupants, roster_items, sessions, tags, MessageRow, OccupantRecord,
    };
    use crate::store::{Role, SessionRow, SessionState};
    use crate::time::Timestamp;

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
        assert_eq!(tables, 6);
    }

    fn at(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    fn bare(s: &str) -> BareJid {
        BareJid::new(s).unwrap()
    }

    /// A database as a frontdesk of schema `version` left it: that version's migrations, run
    /// from their SQL, and rows in every table it had, written with raw SQL as that frontdesk
    /// (or a web app) wrote them.
    fn database_at(version: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        // Each version's rows are written right after its own migration, with its columns.
        for step in 1..=version {
            conn.execute_batch(MIGRATIONS[step - 1]).unwrap();
            conn.execute_batch(rows_of_version(step)).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn
    }

    /// The rows a frontdesk of that version wrote.
    fn rows_of_version(version: usize) -> &'static str {
        match version {
            1 => {
                "INSERT INTO sessions VALUES
                   (1, 'v1_acme@chat.example.com', 'acme', 'v1', 'CHATTING', 'alice@example.com',
                    'a1@anon.example.com/r1', '2026-01-01T10:00:00.000Z',
                    '2026-01-01T10:01:00.500Z', NULL),
                   (2, 'v2_globex@chat.example.com', 'globex', 'v2', 'CLOSED', 'bob@example.com',
                    NULL, '2026-01-02T09:00:00.000Z', '2026-01-02T09:30:00.000Z',
                    '2026-01-02T09:30:00.000Z'),
                   (3, 'v3_acme@chat.example.com', 'acme', 'v3', 'INACTIVE', NULL,
                    'a3@anon.example.com/r3', '2026-01-03T08:00:00.000Z',
                    '2026-01-03T08:00:00.000Z', NULL);
                 INSERT INTO messages VALUES
                   (1, 1, '2026-01-01T10:00:05.000Z', 'visitor', 'a1@anon.example.com/r1', 'Ann',
                    'Hello <b>&amp;</b> ünïcödé', '1-1', 'o-1'),
                   (2, 1, '2026-01-01T10:01:00.500Z', 'system', 'chat.example.com', '',
                    'Alice joined the chat.', '1-2', NULL),
                   (3, 1, '2026-01-01T10:01:10.000Z', 'staff', 'alice@example.com/pc', 'Alice',
                    'Hi Ann', '1-3', NULL),
                   (4, 2, '2026-01-02T09:10:00.000Z', 'visitor', 'b@anon.example.com/x', 'Bo',
                    'bye', '2-1', 'o-9');
                 INSERT INTO occupants VALUES
                   (1, 'a1@anon.example.com/r1', 'Ann', 'visitor', '2026-01-01T10:00:00.000Z'),
                   (1, 'alice@example.com/pc', 'Alice', 'staff', '2026-01-01T10:01:00.500Z'),
                   (3, 'a3@anon.example.com/r3', 'Cy', 'visitor', '2026-01-03T08:00:00.000Z');"
            }
            2 => {
                "UPDATE occupants SET direct = 1 WHERE jid = 'alice@example.com/pc';
                 INSERT INTO roster_items VALUES
                   ('alice@example.com', 'v3_acme@chat.example.com', '2026-01-03T08:00:00.000Z');"
            }
            3 => {
                "INSERT INTO messages VALUES
                   (5, 2, '2026-01-02T09:40:00.000Z', 'note', 'bob@example.com/pc',
                    'bob@example.com', 'emailed them', '2-note-1767346800000', NULL);
                 INSERT INTO tags VALUES
                   (2, 'billing', 'bob@example.com', '2026-01-02T09:41:00.000Z');"
            }
            4 => {
                "INSERT INTO session_details VALUES
                   (1, 'name', 'Ann Smith', 1),
                   (1, 'page', 'https://shop.example.com/', 0);"
            }
            _ => "",
        }
    }

    fn session(
        id: i64,
        (room, site, visitor): (&str, &str, &str),
        state: SessionState,
        (staff, visitor_jid): (Option<&str>, Option<&str>),
        (created, updated, closed): (&str, &str, Option<&str>),
    ) -> SessionRow {
        SessionRow {
            id,
            room: room.into(),
            site: site.into(),
            visitor: visitor.into(),
            state,
            staff: staff.map(Into::into),
            visitor_jid: visitor_jid.map(Into::into),
            created_at: at(created),
            updated_at: at(updated),
            closed_at: closed.map(at),
        }
    }

    fn line(
        session_id: i64,
        when: &str,
        role: Role,
        (from_jid, nick, body): (&str, &str, &str),
        (stanza_id, origin_id): (&str, Option<&str>),
    ) -> MessageRow {
        MessageRow {
            session_id,
            at: at(when),
            role,
            from_jid: from_jid.into(),
            nick: nick.into(),
            body: body.into(),
            stanza_id: stanza_id.into(),
            origin_id: origin_id.map(Into::into),
        }
    }

    fn occupant(session_id: i64, jid: &str, nick: &str, role: Role, when: &str) -> OccupantRecord {
        OccupantRecord {
            session_id,
            jid: FullJid::new(jid).unwrap(),
            nick: nick.into(),
            role,
            joined_at: at(when),
            direct: false,
        }
    }

    /// Every old version with data in it upgrades to the latest: the rows keep their values,
    /// the later columns have their defaults, and the later tables take writes.
    #[test]
    fn every_old_version_upgrades_with_its_rows() {
        let ann = (
            "a1@anon.example.com/r1",
            "Ann",
            "Hello <b>&amp;</b> ünïcödé",
        );
        let sessions_v1 = [
            session(
                1,
                ("v1_acme@chat.example.com", "acme", "v1"),
                SessionState::Chatting,
                (Some("alice@example.com"), Some("a1@anon.example.com/r1")),
                ("2026-01-01T10:00:00.000Z", "2026-01-01T10:01:00.500Z", None),
            ),
            session(
                2,
                ("v2_globex@chat.example.com", "globex", "v2"),
                SessionState::Closed,
                (Some("bob@example.com"), None),
                (
                    "2026-01-02T09:00:00.000Z",
                    "2026-01-02T09:30:00.000Z",
                    Some("2026-01-02T09:30:00.000Z"),
                ),
            ),
            session(
                3,
                ("v3_acme@chat.example.com", "acme", "v3"),
                SessionState::Inactive,
                (None, Some("a3@anon.example.com/r3")),
                ("2026-01-03T08:00:00.000Z", "2026-01-03T08:00:00.000Z", None),
            ),
        ];
        let transcript_1 = vec![
            line(
                1,
                "2026-01-01T10:00:05.000Z",
                Role::Visitor,
                ann,
                ("1-1", Some("o-1")),
            ),
            line(
                1,
                "2026-01-01T10:01:00.500Z",
                Role::System,
                ("chat.example.com", "", "Alice joined the chat."),
                ("1-2", None),
            ),
            line(
                1,
                "2026-01-01T10:01:10.000Z",
                Role::Staff,
                ("alice@example.com/pc", "Alice", "Hi Ann"),
                ("1-3", None),
            ),
        ];
        let transcript_2 = vec![line(
            2,
            "2026-01-02T09:10:00.000Z",
            Role::Visitor,
            ("b@anon.example.com/x", "Bo", "bye"),
            ("2-1", Some("o-9")),
        )];
        let alice_since = "2026-01-01T10:01:00.500Z";
        for from in 1..LATEST as usize {
            let mut conn = database_at(from);
            migrate(&mut conn).unwrap_or_else(|e| panic!("from {from}: {e}"));
            assert_eq!(version(&conn).unwrap(), LATEST, "from {from}");

            assert_eq!(
                sessions::list(&conn, None, None).unwrap(),
                sessions_v1.to_vec(),
                "from {from}"
            );
            assert_eq!(sessions::next_id(&conn).unwrap(), 4, "from {from}");
            assert_eq!(
                messages::of_session(&conn, 1).unwrap(),
                transcript_1,
                "from {from}"
            );
            let mut transcript_2 = transcript_2.clone();
            if from >= 3 {
                transcript_2.push(line(
                    2,
                    "2026-01-02T09:40:00.000Z",
                    Role::Note,
                    ("bob@example.com/pc", "bob@example.com", "emailed them"),
                    ("2-note-1767346800000", None),
                ));
            }
            assert_eq!(
                messages::of_session(&conn, 2).unwrap(),
                transcript_2,
                "from {from}"
            );
            upgraded_to_3(&conn, from);

            // Version 2's `direct` is 0 (in the room, not one-to-one) for the occupants a
            // version-1 database had.
            let alice = OccupantRecord {
                direct: from >= 2,
                ..occupant(1, "alice@example.com/pc", "Alice", Role::Staff, alice_since)
            };
            let ann_there = "2026-01-01T10:00:00.000Z";
            let cy_there = "2026-01-03T08:00:00.000Z";
            assert_eq!(
                occupants::of_open_sessions(&conn).unwrap(),
                vec![
                    occupant(1, ann.0, "Ann", Role::Visitor, ann_there),
                    alice.clone(),
                    occupant(3, "a3@anon.example.com/r3", "Cy", Role::Visitor, cy_there),
                ],
                "from {from}"
            );
            // Version 2's roster_items starts empty on a version-1 database.
            let mut roster = Vec::new();
            if from >= 2 {
                roster.push((bare("alice@example.com"), bare(&sessions_v1[2].room)));
            }
            assert_eq!(roster_items::all(&conn).unwrap(), roster, "from {from}");

            // The upgraded tables take the new values, and writes go on as before.
            occupants::upsert(
                &conn,
                &OccupantRecord {
                    direct: true,
                    ..alice.clone()
                },
            )
            .unwrap();
            let now = occupants::of_open_sessions(&conn).unwrap();
            assert!(
                now.iter().any(|o| o.jid == alice.jid && o.direct),
                "{now:?}"
            );
            roster_items::insert(
                &conn,
                &bare("alice@example.com"),
                &bare(&sessions_v1[0].room),
                at(alice_since),
            )
            .unwrap();
            roster.insert(0, (bare("alice@example.com"), bare(&sessions_v1[0].room)));
            assert_eq!(roster_items::all(&conn).unwrap(), roster, "from {from}");
            let more = line(
                1,
                "2026-01-04T00:00:00.000Z",
                Role::Visitor,
                ann,
                ("1-4", None),
            );
            messages::insert(&conn, &messages::record(more.clone()).unwrap()).unwrap();
            assert_eq!(messages::of_session(&conn, 1).unwrap().last(), Some(&more));
        }
    }

    /// Version 3 copied `messages` to allow notes: the ids and the index survive, the CHECK
    /// takes `note` and still refuses other roles, and `tags` takes tags.
    fn upgraded_to_3(conn: &Connection, from: usize) {
        let ids: String = conn
            .query_row(
                "SELECT group_concat(id) FROM (SELECT id FROM messages ORDER BY id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ids, if from >= 3 { "1,2,3,4,5" } else { "1,2,3,4" });
        let plan: String = conn
            .query_row(
                "SELECT group_concat(detail) FROM (EXPLAIN QUERY PLAN
                   SELECT * FROM messages WHERE session_id = 1 ORDER BY id)",
                [],
                |r| r.get(0),
            )
            .unwrap_or_default();
        let index: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'messages_session' AND tbl_name = 'messages'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(index, 1, "from {from}: {plan}");
        let bogus = conn.execute(
            "INSERT INTO messages (session_id, at, role, from_jid, nick, body, stanza_id)
             VALUES (1, '2026-01-05T00:00:00.000Z', 'bogus', 'x@y/z', '', '', '1-9')",
            [],
        );
        assert!(bogus.is_err(), "from {from}: the role CHECK is gone");
        let note = line(
            1,
            "2026-01-05T00:00:00.000Z",
            Role::Note,
            (
                "alice@example.com/pc",
                "alice@example.com",
                "call back \u{202e}",
            ),
            ("1-4", None),
        );
        messages::insert(conn, &messages::record(note.clone()).unwrap()).unwrap();
        assert_eq!(messages::of_session(conn, 1).unwrap().last(), Some(&note));
        let alice = bare("alice@example.com");
        for tag in ["vip", "billing", "vip"] {
            tags::insert(conn, 1, tag, &alice, at("2026-01-05T00:00:00.000Z")).unwrap();
        }
        assert_eq!(tags::of_session(conn, 1).unwrap(), ["billing", "vip"]);
        // Delete what this added, so the caller's later checks see the upgraded rows only.
        conn.execute_batch("DELETE FROM messages WHERE session_id = 1 AND role = 'note'; DELETE FROM tags WHERE session_id = 1;")
            .unwrap();
    }

    /// Two processes starting on a new database at once: the one that comes second must see
    /// the first one's migrations, not the version it read before they committed.
    #[test]
    fn a_migration_that_commits_meanwhile_is_not_applied_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fd.db");
        let open = || {
            let c = Connection::open(&path).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            c.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
                .unwrap();
            c
        };
        // The other process: in the middle of migrating, not committed yet.
        let other = open();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        for sql in MIGRATIONS {
            other.execute_batch(sql).unwrap();
        }
        other.pragma_update(None, "user_version", LATEST).unwrap();
        let mut ours = open();
        let started = std::sync::Arc::new(std::sync::Barrier::new(2));
        let ours = std::thread::spawn({
            let started = started.clone();
            move || {
                started.wait();
                migrate(&mut ours).map(|()| version(&ours))
            }
        });
        started.wait();
        // Long enough for `migrate` to have read the version, if it reads it unlocked.
        std::thread::sleep(std::time::Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
        let result = ours.join().unwrap();
        assert!(matches!(result, Ok(Ok(LATEST))), "{result:?}");
    }
}
