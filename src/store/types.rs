//! The values that cross between the core and the store: the write operations the core asks
//! for and the snapshot it is resumed from (both holding the core's typed records), and the
//! rows as text that the CLI and `!transcript` list. The domain types themselves (states,
//! roles, records) are the core's, re-exported here for the store's users.

use xmpp_parsers::jid::{BareJid, FullJid};

pub use crate::core::session::{
    DetailRecord, MessageRecord, OccupantRecord, Role, SessionRecord, SessionState, UnknownRole,
    UnknownState,
};
use crate::time::Timestamp;

/// A session row as it is in the file, addresses as text (state and times checked): what
/// `frontdesk sessions` shows, even of a row the core could not resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: i64,
    /// The room's bare JID, e.g. `v42_acme@chat.example.com`.
    pub room: String,
    pub site: String,
    pub visitor: String,
    pub state: SessionState,
    /// Bare JID of the staff member who has the room.
    pub staff: Option<String>,
    /// Full JID of the visitor the room is bound to (the last one).
    pub visitor_jid: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// A transcript line as it is in the file, the sender as text: what `frontdesk transcript`
/// and `!transcript` show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRow {
    pub session_id: i64,
    pub at: Timestamp,
    pub role: Role,
    /// Real full JID of the sender (the component's domain for system lines).
    pub from_jid: String,
    pub nick: String,
    pub body: String,
    /// The `<stanza-id>` the room gave it when reflecting.
    pub stanza_id: String,
    /// The sender's own message `id`, if any.
    pub origin_id: Option<String>,
}

/// One write the core asks for. The writer thread applies them in order, in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert a new session row (with its id).
    OpenSession(SessionRecord),
    /// Overwrite state, staff, visitor_jid, updated_at and closed_at of session `id`.
    UpdateSession(SessionRecord),
    AppendMessage(MessageRecord),
    OccupantJoined(OccupantRecord),
    OccupantLeft {
        session_id: i64,
        jid: FullJid,
    },
    /// A roster item we put into a staff member's roster.
    RosterAdded {
        staff: BareJid,
        contact: BareJid,
        at: Timestamp,
    },
    RosterRemoved {
        staff: BareJid,
        contact: BareJid,
    },
    /// Replace what is known of session `session_id`'s visitor.
    SessionDetails {
        session_id: i64,
        details: Vec<DetailRecord>,
    },
    /// A staff member's tags on a session (`!tag`); a tag it already has is kept as it was.
    TagsAdded {
        session_id: i64,
        tags: Vec<String>,
        by: BareJid,
        at: Timestamp,
    },
    /// A staff member's `!untag`: these tags leave the session (the rows are deleted; the log
    /// says who removed them).
    TagsRemoved {
        session_id: i64,
        tags: Vec<String>,
    },
}

/// What the core is resumed from at start-up: the sessions that are not CLOSED, who was in
/// them, and their latest messages (oldest first), plus the next free session id. Rows whose
/// addresses do not parse are not here (the store logs each one it leaves out); whether a room
/// is a visitor room of a configured site is the core's question.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub next_session_id: i64,
    pub sessions: Vec<SessionRecord>,
    pub occupants: Vec<OccupantRecord>,
    /// At most `history_limit` latest messages per open session, oldest first.
    pub messages: Vec<MessageRecord>,
    /// The visitor's first message in each open session where they wrote (the ACTIVE status
    /// and `!waiting` show it, however long ago it was).
    pub first_visitor_lines: Vec<MessageRecord>,
    /// The stanza-id of each open session's latest line of any kind (system lines included),
    /// so that a resumed room never gives an id twice.
    pub last_stanza_ids: Vec<(i64, String)>,
    /// Roster items we put into staff rosters and have not removed: (staff, contact).
    pub roster_items: Vec<(BareJid, BareJid)>,
    /// What is known of each open session's visitor.
    pub details: Vec<DetailRecord>,
}
