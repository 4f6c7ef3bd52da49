//! The values that cross between the core and the store: session states, roles, the
//! write operations the core asks for, and the snapshot it is resumed from.

use std::fmt;
use std::str::FromStr;

use crate::time::Timestamp;

/// A session's state, stored as the upper-case word (the seed design's ActiveUsers.status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// The visitor joined and has said nothing.
    Inactive,
    /// The visitor wrote and no staff member has the room.
    Active,
    /// One staff member has the room.
    Chatting,
    /// Everyone has left; the row and its transcript stay.
    Closed,
}

impl SessionState {
    pub const ALL: [SessionState; 4] = [
        SessionState::Inactive,
        SessionState::Active,
        SessionState::Chatting,
        SessionState::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionState::Inactive => "INACTIVE",
            SessionState::Active => "ACTIVE",
            SessionState::Chatting => "CHATTING",
            SessionState::Closed => "CLOSED",
        }
    }
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown session state {0:?} (expected INACTIVE, ACTIVE, CHATTING or CLOSED)")]
pub struct UnknownState(pub String);

impl FromStr for SessionState {
    type Err = UnknownState;
    /// Case-insensitive, so `--state chatting` works on the command line.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SessionState::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// Who wrote a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Visitor,
    Staff,
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Visitor => "visitor",
            Role::Staff => "staff",
            Role::System => "system",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "visitor" => Ok(Role::Visitor),
            "staff" => Ok(Role::Staff),
            "system" => Ok(Role::System),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// A session row. `id` is the `#N` staff see; the core allocates it (one instance per database).
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

/// A transcript line.
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

/// Someone present in a room right now; kept so a restarted frontdesk knows whom to re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantRow {
    pub session_id: i64,
    /// Real full JID.
    pub jid: String,
    pub nick: String,
    pub role: Role,
    pub joined_at: Timestamp,
    /// Staff who took the chat one-to-one from their roster rather than joining the room.
    pub direct: bool,
}

/// One write the core asks for. The writer thread applies them in order, in batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// Insert a new session row (with its id).
    OpenSession(SessionRow),
    /// Overwrite state, staff, visitor_jid, updated_at and closed_at of session `id`.
    UpdateSession(SessionRow),
    AppendMessage(MessageRow),
    OccupantJoined(OccupantRow),
    OccupantLeft {
        session_id: i64,
        jid: String,
    },
    /// A roster item we put into a staff member's roster (bare JIDs).
    RosterAdded {
        staff: String,
        contact: String,
        at: Timestamp,
    },
    RosterRemoved {
        staff: String,
        contact: String,
    },
}

/// What the core is resumed from at start-up: the sessions that are not CLOSED, who was in
/// them, and their latest messages (oldest first), plus the next free session id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub next_session_id: i64,
    pub sessions: Vec<SessionRow>,
    pub occupants: Vec<OccupantRow>,
    /// At most `history_limit` latest messages per open session, oldest first.
    pub messages: Vec<MessageRow>,
    /// The visitor's first message in each open session where they wrote (the ACTIVE status
    /// and `!waiting` show it, however long ago it was).
    pub first_visitor_lines: Vec<MessageRow>,
    /// The stanza-id of each open session's latest line of any kind (system lines included),
    /// so that a resumed room never gives an id twice.
    pub last_stanza_ids: Vec<(i64, String)>,
    /// Roster items we put into staff rosters and have not removed: (staff, contact).
    pub roster_items: Vec<(String, String)>,
}
