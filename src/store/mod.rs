//! SQLite storage: the schema and its migrations, one module of SQL per table, the writer
//! thread that commits the core's writes in small batches, and the one-instance lock.
//! The schema is a documented interface for web apps: docs/storage.md. The core's records
//! carry typed addresses; the table modules turn them into text and back (`addresses`).

pub mod addresses;
pub mod backup;
pub mod details;
pub mod lock;
pub mod messages;
pub mod migrations;
pub mod occupants;
pub mod retention;
pub mod roster_items;
pub mod sessions;
pub mod stats;
pub mod tags;
pub mod types;
pub mod writer;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

pub use addresses::Unusable;
pub use backup::{backup, BackupReport};
pub use lock::InstanceLock;
pub use retention::{PurgeFilter, Purged};
pub use types::*;
pub use writer::{Ack, Writer, WriterConfig, WriterStats};

use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no database at {path}: start `frontdesk run` once to create it, or check [store] path in the config")]
    Missing { path: PathBuf },
    #[error("database {path} has schema version {found} but this frontdesk knows up to {known}: upgrade frontdesk")]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database {path} has schema version {found}, older than this frontdesk's {known}: start `frontdesk run` once to upgrade it")]
    TooOld {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("another frontdesk is already running on {path} (its lock file {path}.lock is held): stop it first; two instances on one database would split the chats between them")]
    Locked { path: PathBuf },
    #[error("cannot create or write {path}: {source} (frontdesk needs to write the database, its -wal, -shm and .lock files in the directory of [store] path)")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} already exists: choose another file, or pass --force to replace it")]
    BackupExists { path: PathBuf },
    #[error("backup failed: {0}")]
    Backup(String),
    #[error("cannot write the backup {path}: {source} (does its directory exist, and may this user write there?)")]
    BackupWrite {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start the store thread: {0}")]
    Thread(std::io::Error),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("bad value in the database: {0}")]
    Corrupt(String),
    #[error("the store writer thread has stopped")]
    WriterGone,
}

/// A reader or maintainer works only on a database at this build's version.
fn check_version(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let found = migrations::version(conn)?;
    let known = migrations::LATEST;
    if found > known {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    if found < known {
        return Err(StoreError::TooOld {
            path: path.to_path_buf(),
            found,
            known,
        });
    }
    Ok(())
}

pub(crate) fn parse_time(s: &str) -> Result<Timestamp, StoreError> {
    Timestamp::parse_rfc3339(s)
        .ok_or_else(|| StoreError::Corrupt(format!("{s:?} is not an RFC 3339 time")))
}

pub struct Store {
    conn: Connection,
}

/// What a commit waits for (SQLite's `synchronous` in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// The commit is in the WAL file when it returns: it survives frontdesk crashing or being
    /// killed, not the machine losing power before the next checkpoint.
    #[default]
    Normal,
    /// Each commit also waits for fsync: it survives power loss too, and costs a disk flush.
    Full,
}

impl Store {
    /// Opens (creating it and its directory if needed) and migrates the database.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, Durability::default())
    }

    pub fn open_with(path: &Path, durability: Durability) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Store::setup(conn, durability)
    }

    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::setup(Connection::open_in_memory()?, Durability::default())
    }

    fn setup(mut conn: Connection, durability: Durability) -> Result<Store, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL lets the CLI and web apps read while we write. A message is shown to people only
        // after its commit; `Durability` says whether that commit also waited for the disk.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))?;
        conn.pragma_update(
            None,
            "synchronous",
            match durability {
                Durability::Normal => "NORMAL",
                Durability::Full => "FULL",
            },
        )?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrate(&mut conn)?;
        Ok(Store { conn })
    }

    /// The database file, unless it is in memory.
    pub fn path(&self) -> Option<std::path::PathBuf> {
        self.conn
            .path()
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
    }

    /// For the writer when a checkpointer thread does the checkpoints.
    pub fn disable_autocheckpoint(&self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // When the WAL starts over, cut it back to this if a burst (or a long reader) grew it.
        self.conn
            .pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
        Ok(())
    }

    /// For the writer's own connection: skip the schema's CHECK constraints. They guard the
    /// database against other writers (web apps); ours writes roles and states from Rust enums,
    /// and SQLite evaluates `role IN (...)` with a temporary table on every insert (measured
    /// in docs/benchmark-notes.md).
    pub fn trust_own_writes(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "ignore_check_constraints", true)?;
        Ok(())
    }

    /// For readers while `frontdesk run` may be writing: never creates or migrates.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        check_version(&conn, path)?;
        Ok(Store { conn })
    }

    /// For maintenance beside a running frontdesk (`purge`): reads and writes, but never
    /// creates or migrates, and only a database at this build's schema version.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(
            |source| StoreError::Open {
                path: path.to_path_buf(),
                source,
            },
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        check_version(&conn, path)?;
        Ok(Store { conn })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// What a purge would delete.
    pub fn purge_count(&self, f: &PurgeFilter) -> Result<Purged, StoreError> {
        retention::count(&self.conn, f)
    }

    /// Deletes what `f` matches, in transactions of `rows` rows.
    pub fn purge(&mut self, f: &PurgeFilter, rows: u64) -> Result<Purged, StoreError> {
        retention::purge_all(&mut self.conn, f, rows)
    }

    /// What the core resumes from: open sessions, their occupants, and their latest
    /// `history_limit` visitor/staff messages (oldest first).
    pub fn snapshot(&self, history_limit: usize) -> Result<Snapshot, StoreError> {
        let sessions = sessions::open(&self.conn)?;
        let mut messages = Vec::new();
        let mut first_visitor_lines = Vec::new();
        let mut last_stanza_ids = Vec::new();
        for s in &sessions {
            messages.extend(messages::latest_said(&self.conn, s.id, history_limit)?);
            first_visitor_lines.extend(messages::first_of_visitor(&self.conn, s.id)?);
            if let Some(id) = messages::last_stanza_id(&self.conn, s.id)? {
                last_stanza_ids.push((s.id, id));
            }
        }
        Ok(Snapshot {
            next_session_id: sessions::next_id(&self.conn)?,
            occupants: occupants::of_open_sessions(&self.conn)?,
            sessions,
            messages,
            first_visitor_lines,
            last_stanza_ids,
            roster_items: roster_items::all(&self.conn)?,
            details: details::of_open_sessions(&self.conn)?,
        })
    }

    /// Applies the writes in one transaction: all of them or none.
    pub fn apply<'a>(
        &mut self,
        ops: impl IntoIterator<Item = &'a StoreOp>,
    ) -> Result<(), StoreError> {
        // Cached statements: `Connection::transaction` parses BEGIN and COMMIT every time, and
        // this runs once per commit on the message path.
        self.conn.prepare_cached("BEGIN")?.execute([])?;
        let result = ops
            .into_iter()
            .try_for_each(|op| apply_one(&self.conn, op))
            .and_then(|()| {
                self.conn.prepare_cached("COMMIT")?.execute([])?;
                Ok(())
            });
        if result.is_err() && !self.conn.is_autocommit() {
            if let Err(e) = self.conn.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "rollback failed");
            }
        }
        result
    }

    pub fn list_sessions(
        &self,
        state: Option<SessionState>,
        site: Option<&str>,
    ) -> Result<Vec<SessionRow>, StoreError> {
        sessions::list(&self.conn, state, site)
    }

    pub fn session(&self, id: i64) -> Result<Option<SessionRow>, StoreError> {
        sessions::get(&self.conn, id)
    }

    pub fn transcript(&self, session_id: i64) -> Result<Vec<MessageRow>, StoreError> {
        messages::of_session(&self.conn, session_id)
    }

    pub fn tags(&self, session_id: i64) -> Result<Vec<String>, StoreError> {
        tags::of_session(&self.conn, session_id)
    }
}

fn apply_one(conn: &Connection, op: &StoreOp) -> Result<(), StoreError> {
    match op {
        StoreOp::OpenSession(s) => sessions::insert(conn, s),
        StoreOp::UpdateSession(s) => sessions::update(conn, s),
        StoreOp::AppendMessage(m) => messages::insert(conn, m),
        StoreOp::OccupantJoined(o) => occupants::upsert(conn, o),
        StoreOp::OccupantLeft { session_id, jid } => occupants::delete(conn, *session_id, jid),
        StoreOp::RosterAdded { staff, contact, at } => {
            roster_items::insert(conn, staff, contact, *at)
        }
        StoreOp::RosterRemoved { staff, contact } => roster_items::delete(conn, staff, contact),
        StoreOp::SessionDetails {
            session_id,
            details: d,
        } => details::replace(conn, *session_id, d),
        StoreOp::TagsAdded {
            session_id,
            tags,
            by,
            at,
        } => tags
            .iter()
            .try_for_each(|tag| tags::insert(conn, *session_id, tag, by, *at)),
        StoreOp::TagsRemoved { session_id, tags } => tags
            .iter()
            .try_for_each(|tag| tags::delete(conn, *session_id, tag)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use xmpp_parsers::jid::{BareJid, FullJid, Jid};

    use super::*;
    use crate::address::SiteId;

    pub(crate) fn t(s: i64) -> Timestamp {
        Timestamp(1_795_000_000_000 + s * 1000)
    }

    pub(crate) fn session(id: i64, state: SessionState) -> SessionRecord {
        SessionRecord {
            id,
            room: BareJid::new(&format!("v{id}_acme@chat.example.com")).unwrap(),
            site: SiteId::new(if id % 2 == 0 { "globex" } else { "acme" }).unwrap(),
            visitor: format!("v{id}"),
            state,
            staff: None,
            visitor_jid: Some(FullJid::new("a@anon/r").unwrap()),
            created_at: t(0),
            updated_at: t(0),
            closed_at: None,
        }
    }

    pub(crate) fn message(session_id: i64, n: i64, role: Role) -> MessageRecord {
        MessageRecord {
            session_id,
            at: t(n),
            role,
            from_jid: Jid::new("a@anon/r").unwrap(),
            nick: "Ann".into(),
            body: format!("line {n}"),
            stanza_id: format!("{session_id}-{n}"),
            origin_id: None,
        }
    }

    fn occupant(session_id: i64, jid: &str) -> OccupantRecord {
        OccupantRecord {
            session_id,
            jid: FullJid::new(jid).unwrap(),
            nick: jid.into(),
            role: Role::Visitor,
            joined_at: t(1),
            direct: false,
        }
    }

    #[test]
    fn snapshot_holds_open_sessions_their_occupants_and_recent_history() {
        let mut store = Store::open_in_memory().unwrap();
        let mut ops = vec![
            StoreOp::OpenSession(session(1, SessionState::Active)),
            StoreOp::OpenSession(session(2, SessionState::Closed)),
            StoreOp::OccupantJoined(occupant(1, "a@anon/r")),
            StoreOp::OccupantJoined(occupant(2, "b@anon/r")),
        ];
        for n in 1..=5 {
            ops.push(StoreOp::AppendMessage(message(1, n, Role::Visitor)));
        }
        ops.push(StoreOp::AppendMessage(message(1, 6, Role::System)));
        ops.push(StoreOp::AppendMessage(message(2, 1, Role::Visitor)));
        store.apply(&ops).unwrap();
        let snap = store.snapshot(3).unwrap();
        assert_eq!(snap.next_session_id, 3);
        assert_eq!(
            snap.sessions.iter().map(|s| s.id).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(snap.occupants.len(), 1);
        assert_eq!(snap.occupants[0].jid.as_str(), "a@anon/r");
        let bodies: Vec<_> = snap.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, vec!["line 3", "line 4", "line 5"]);
        // The system line is in the transcript, not in the history.
        assert_eq!(store.transcript(1).unwrap().len(), 6);
        assert_eq!(store.transcript(1).unwrap()[5].role, Role::System);
    }

    #[test]
    fn closing_a_session_empties_its_occupants() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .apply(&[
                StoreOp::OpenSession(session(1, SessionState::Active)),
                StoreOp::OccupantJoined(occupant(1, "a@anon/r")),
            ])
            .unwrap();
        let mut closed = session(1, SessionState::Closed);
        closed.closed_at = Some(t(9));
        closed.staff = Some(BareJid::new("alice@x").unwrap());
        store
            .apply(&[StoreOp::UpdateSession(closed.clone())])
            .unwrap();
        assert_eq!(store.session(1).unwrap(), Some(SessionRow::from(&closed)));
        let n: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM occupants", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        // And OccupantLeft removes one row.
        store
            .apply(&[
                StoreOp::OpenSession(session(3, SessionState::Inactive)),
                StoreOp::OccupantJoined(occupant(3, "x@y/z")),
                StoreOp::OccupantLeft {
                    session_id: 3,
                    jid: FullJid::new("x@y/z").unwrap(),
                },
            ])
            .unwrap();
        assert!(store.snapshot(10).unwrap().occupants.is_empty());
    }

    #[test]
    fn list_filters_by_state_and_site() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .apply(&[
                StoreOp::OpenSession(session(1, SessionState::Active)),
                StoreOp::OpenSession(session(2, SessionState::Active)),
                StoreOp::OpenSession(session(3, SessionState::Closed)),
            ])
            .unwrap();
        assert_eq!(store.list_sessions(None, None).unwrap().len(), 3);
        assert_eq!(
            store
                .list_sessions(Some(SessionState::Active), None)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            store
                .list_sessions(Some(SessionState::Active), Some("acme"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.list_sessions(None, Some("nope")).unwrap().len(), 0);
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        let mut store = Store::open_in_memory().unwrap();
        let r = store.apply(&[
            StoreOp::OpenSession(session(1, SessionState::Active)),
            StoreOp::AppendMessage(message(99, 1, Role::Visitor)), // no session 99
        ]);
        assert!(r.is_err());
        assert!(store.list_sessions(None, None).unwrap().is_empty());
    }

    #[test]
    fn reopening_a_file_keeps_the_data_and_readers_check_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/fd.db");
        assert!(matches!(
            Store::open_read_only(&path),
            Err(StoreError::Missing { .. })
        ));
        Store::open(&path)
            .unwrap()
            .apply(&[StoreOp::OpenSession(session(1, SessionState::Active))])
            .unwrap();
        assert_eq!(
            Store::open(&path)
                .unwrap()
                .list_sessions(None, None)
                .unwrap()
                .len(),
            1
        );
        let ro = Store::open_read_only(&path).unwrap();
        assert_eq!(
            ro.session(1).unwrap().map(|s| s.state),
            Some(SessionState::Active)
        );
        drop(ro);
        Store::open(&path)
            .unwrap()
            .conn()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        assert!(matches!(
            Store::open_read_only(&path),
            Err(StoreError::TooNew { found: 99, .. })
        ));
    }

    #[test]
    fn a_corrupt_value_is_an_error_not_a_panic() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .apply(&[StoreOp::OpenSession(session(1, SessionState::Active))])
            .unwrap();
        store
            .conn()
            .execute("UPDATE sessions SET updated_at = 'yesterday'", [])
            .unwrap();
        assert!(matches!(store.session(1), Err(StoreError::Corrupt(_))));
        assert!(matches!(store.snapshot(10), Err(StoreError::Corrupt(_))));
    }

    /// Open sessions 1, 3 and 5 with lines, occupants and roster items, then values no
    /// frontdesk writes put in by hand: session 3's room and 5's staff, one of 1's lines and
    /// occupants, one roster item.
    fn store_with_rows_that_do_not_parse() -> Store {
        let mut store = Store::open_in_memory().unwrap();
        let mut ops = vec![
            StoreOp::OpenSession(session(1, SessionState::Active)),
            StoreOp::OpenSession(session(3, SessionState::Active)),
            StoreOp::OpenSession(session(5, SessionState::Chatting)),
            StoreOp::OccupantJoined(occupant(1, "a@anon/r")),
            StoreOp::OccupantJoined(occupant(1, "b@anon/r")),
        ];
        for n in 1..=3 {
            ops.push(StoreOp::AppendMessage(message(1, n, Role::Visitor)));
            ops.push(StoreOp::AppendMessage(message(3, n, Role::Visitor)));
        }
        let alice = BareJid::new("alice@x").unwrap();
        for contact in ["v1_acme@chat.example.com", "v3_acme@chat.example.com"] {
            ops.push(StoreOp::RosterAdded {
                staff: alice.clone(),
                contact: BareJid::new(contact).unwrap(),
                at: t(1),
            });
        }
        store.apply(&ops).unwrap();
        store
            .conn()
            .execute_batch(
                "UPDATE sessions SET room = '@chat.example.com' WHERE id = 3;
                 UPDATE sessions SET staff = '@x' WHERE id = 5;
                 UPDATE messages SET from_jid = '@anon/r' WHERE stanza_id = '1-2';
                 UPDATE occupants SET jid = '@anon/r' WHERE jid = 'b@anon/r';
                 UPDATE roster_items SET contact = '@chat.example.com'
                   WHERE contact = 'v3_acme@chat.example.com';",
            )
            .unwrap();
        store
    }

    #[test]
    fn a_row_that_does_not_parse_is_left_out_of_the_snapshot_and_the_rest_resumed() {
        let store = store_with_rows_that_do_not_parse();
        let snap = store.snapshot(10).unwrap();
        let ids: Vec<i64> = snap.sessions.iter().map(|s| s.id).collect();
        assert_eq!(ids, vec![1, 5], "session 3's room is not a JID");
        // A staff address that does not parse is dropped; the session goes on without it.
        assert_eq!(snap.sessions[1].staff, None);
        assert_eq!(
            snap.sessions[1].visitor_jid.as_ref().map(|j| j.as_str()),
            Some("a@anon/r")
        );
        let bodies: Vec<_> = snap.messages.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(
            bodies,
            vec!["line 1", "line 3"],
            "session 3's lines are not asked for"
        );
        let occupants: Vec<_> = snap.occupants.iter().map(|o| o.jid.as_str()).collect();
        assert_eq!(occupants, vec!["a@anon/r"]);
        let roster: Vec<_> = snap
            .roster_items
            .iter()
            .map(|(s, c)| (s.as_str(), c.as_str()))
            .collect();
        assert_eq!(roster, vec![("alice@x", "v1_acme@chat.example.com")]);
        assert_eq!(snap.next_session_id, 6);
    }

    #[test]
    fn listings_show_rows_that_do_not_parse_as_they_are() {
        let store = store_with_rows_that_do_not_parse();
        let rooms: Vec<_> = store
            .list_sessions(None, None)
            .unwrap()
            .into_iter()
            .map(|s| s.room)
            .collect();
        assert_eq!(
            rooms,
            vec![
                "v1_acme@chat.example.com",
                "@chat.example.com",
                "v5_acme@chat.example.com"
            ]
        );
        assert_eq!(
            store.session(5).unwrap().unwrap().staff.as_deref(),
            Some("@x")
        );
        assert_eq!(store.transcript(3).unwrap().len(), 3);
        let from: Vec<_> = store
            .transcript(1)
            .unwrap()
            .into_iter()
            .map(|m| m.from_jid)
            .collect();
        assert_eq!(from, vec!["a@anon/r", "@anon/r", "a@anon/r"]);
    }

    #[test]
    fn visitor_details_are_kept_replaced_and_resumed_for_open_sessions() {
        let mut store = Store::open_in_memory().unwrap();
        let detail = |id: i64, key: &str, value: &str, signed: bool| DetailRecord {
            session_id: id,
            key: key.into(),
            value: value.into(),
            signed,
        };
        store
            .apply(&[
                StoreOp::OpenSession(session(1, SessionState::Active)),
                StoreOp::OpenSession(session(2, SessionState::Closed)),
                StoreOp::SessionDetails {
                    session_id: 1,
                    details: vec![detail(1, "name", "Old", true)],
                },
                StoreOp::SessionDetails {
                    session_id: 1,
                    details: vec![
                        detail(1, "name", "Ann", true),
                        detail(1, "page", "https://x/", false),
                    ],
                },
                StoreOp::SessionDetails {
                    session_id: 2,
                    details: vec![detail(2, "email", "b@example.com", true)],
                },
            ])
            .unwrap();
        let snap = store.snapshot(10).unwrap();
        assert_eq!(
            snap.details,
            vec![
                detail(1, "name", "Ann", true),
                detail(1, "page", "https://x/", false)
            ],
            "replaced, and only open sessions resume"
        );
        assert_eq!(
            details::of_session(store.conn(), 2).unwrap(),
            vec![detail(2, "email", "b@example.com", true)]
        );
    }

    /// History replayed to a joining visitor from the store never includes staff's notes or
    /// system lines.
    #[test]
    fn older_history_for_a_join_has_no_notes_or_system_lines() {
        let mut store = Store::open_in_memory().unwrap();
        let mut ops = vec![StoreOp::OpenSession(session(1, SessionState::Chatting))];
        for (n, role) in [
            (1, Role::Visitor),
            (2, Role::Note),
            (3, Role::System),
            (4, Role::Staff),
            (5, Role::Visitor),
        ] {
            ops.push(StoreOp::AppendMessage(message(1, n, role)));
        }
        store.apply(&ops).unwrap();
        let got = messages::said_before(store.conn(), 1, "1-5", None, 100).unwrap();
        let bodies: Vec<&str> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["line 1", "line 4"]);
    }
}
