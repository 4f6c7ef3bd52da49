//! A chat session as the core writes it down and resumes it: its state, the roles of the people
//! in it, and the records of the session, its transcript lines and its occupants, with typed
//! addresses. The store turns these into text at its SQL edge and back (`crate::store`).

use std::fmt;
use std::str::FromStr;

use xmpp_parsers::jid::{BareJid, FullJid, Jid};

use crate::address::SiteId;
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

/// Who wrote a transcript line, or what an occupant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Visitor,
    Staff,
    System,
    /// A staff member's internal note (`!note`): in the transcript for staff, never shown to
    /// the visitor nor replayed as room history.
    Note,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Visitor => "visitor",
            Role::Staff => "staff",
            Role::System => "system",
            Role::Note => "note",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "visitor" => Ok(Role::Visitor),
            "staff" => Ok(Role::Staff),
            "system" => Ok(Role::System),
            "note" => Ok(Role::Note),
            other => Err(UnknownRole(other.to_string())),
        }
    }
}

/// A session. `id` is the `#N` staff see; the core allocates it (one instance per database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: i64,
    /// The room's bare JID, e.g. `v42_acme@chat.example.com`.
    pub room: BareJid,
    pub site: SiteId,
    /// The visitor id: the room name's part before `_<site>`.
    pub visitor: String,
    pub state: SessionState,
    /// The staff member who has the room (or had it, once CLOSED).
    pub staff: Option<BareJid>,
    /// The visitor address the room is bound to (the last one).
    pub visitor_jid: Option<FullJid>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// A transcript line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub session_id: i64,
    pub at: Timestamp,
    pub role: Role,
    /// The sender's real full JID; for system lines, the component's bare domain.
    pub from_jid: Jid,
    pub nick: String,
    pub body: String,
    /// The `<stanza-id>` the room gave it when reflecting.
    pub stanza_id: String,
    /// The sender's own message `id`, if any.
    pub origin_id: Option<String>,
}

/// Someone present in a room right now; kept so a restarted frontdesk knows whom to re-check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccupantRecord {
    pub session_id: i64,
    /// The occupant's real full JID.
    pub jid: FullJid,
    pub nick: String,
    pub role: Role,
    pub joined_at: Timestamp,
    /// Staff who took the chat one-to-one from their roster rather than joining the room.
    pub direct: bool,
}

/// One thing known of a session's visitor: a detail the web app signed in their token
/// (`signed`), or one the widget sent with the join (page context, pre-chat answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailRecord {
    pub session_id: i64,
    /// `name`, `email`, `user_id` (signed); `page`, `referrer`, `title`, `language`, or
    /// `prechat.<field>` (from the widget).
    pub key: String,
    pub value: String,
    pub signed: bool,
}
