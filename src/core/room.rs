//! One visitor room in memory: its open session, who is in it, and the recent messages it
//! replays as history. Only rooms with an open session live here; a CLOSED room is dropped
//! and a later join starts a new session.

use std::collections::{BTreeSet, VecDeque};

use xmpp_parsers::jid::{BareJid, FullJid};
use xmpp_parsers::message::{Id, Lang};

use crate::address::RoomName;
use crate::core::nick;
use crate::core::stanzas::Shown;
use crate::store::{Role, SessionRow, SessionState};
use crate::time::Timestamp;

/// Messages kept per room for history on join (the store keeps everything).
pub const HISTORY_MAX: usize = 100;

#[derive(Debug, Clone)]
pub struct Occupant {
    pub jid: FullJid,
    pub nick: String,
    pub role: Role,
    pub shown: Shown,
    /// Staff who took the chat one-to-one from their roster: they are not joined, so they get
    /// the visitor's messages as `type='chat'` from the room's bare JID, at their bare JID.
    pub direct: bool,
    pub bucket: Bucket,
    /// Chat states (typing notifications) have their own, larger bucket: a few per message.
    pub typing: Bucket,
}

/// A token bucket for an occupant's messages: full when they join.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bucket {
    /// Tokens used up (0 = full), so a new bucket needs no configuration.
    used: f64,
    last: Option<Timestamp>,
}

impl Bucket {
    /// Takes one token if there is one.
    pub fn take(&mut self, now: Timestamp, per_minute: u32, burst: u32) -> bool {
        let refill = match self.last {
            Some(t) => (now.millis() - t.millis()).max(0) as f64 * f64::from(per_minute) / 60_000.0,
            None => 0.0,
        };
        self.last = Some(now);
        self.used = (self.used - refill).max(0.0);
        if self.used + 1.0 > f64::from(burst.max(1)) {
            return false;
        }
        self.used += 1.0;
        true
    }
}

#[derive(Debug, Clone)]
pub struct HistoryItem {
    pub at: Timestamp,
    pub nick: String,
    pub role: Role,
    pub from: FullJid,
    pub body: String,
    pub lang: Lang,
    pub id: Option<Id>,
    pub stanza_id: String,
}

/// A join that waits until we know whether the visitor the room is bound to is still there.
#[derive(Debug, Clone)]
pub struct PendingJoin {
    pub jid: FullJid,
    pub nick: String,
    pub presence: xmpp_parsers::presence::Presence,
    pub since: Timestamp,
}

/// How a room became empty, which decides how long its session waits before it closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emptied {
    /// Everyone left on purpose. The session lingers briefly: a visitor reloading the page
    /// comes straight back, and a server shutting down sends everyone's unavailable presence
    /// just before it drops the component link.
    Left(Timestamp),
    /// The link was lost (server restart, dead clients): people get time to reconnect.
    Lost(Timestamp),
}

impl Emptied {
    pub fn closes_at(self) -> Timestamp {
        match self {
            Emptied::Left(t) => t.plus_millis(super::CLOSE_LINGER_MS),
            Emptied::Lost(t) => t.plus_millis(super::REJOIN_GRACE_MS),
        }
    }
}

#[derive(Debug)]
pub struct Room {
    pub name: RoomName,
    pub jid: BareJid,
    pub session: SessionRow,
    pub occupants: Vec<Occupant>,
    pub history: VecDeque<HistoryItem>,
    /// Next sequence number for stanza-ids in this session.
    pub seq: u64,
    pub visitor_wrote: bool,
    /// Set while nobody is in the room; the session closes when it runs out.
    pub emptied: Option<Emptied>,
    pub pending_joins: Vec<PendingJoin>,
    /// Who last had the chat: a CLOSED session names them even if they left before the visitor.
    pub last_staff: Option<String>,
    /// Staff who were offered this chat while it waited (they hear who took it).
    pub offered: BTreeSet<BareJid>,
    /// The visitor was told that nobody is available (once per session).
    pub told_nobody: bool,
    /// The start of the visitor's first message: the ACTIVE status and `!waiting` show it.
    pub first_message: Option<String>,
    /// The visitor contact's presence status last sent to staff, so unchanged states are not
    /// sent again.
    pub announced: Option<String>,
}

impl Room {
    pub fn new(name: RoomName, jid: BareJid, session: SessionRow) -> Room {
        Room {
            name,
            jid,
            session,
            occupants: Vec::new(),
            history: VecDeque::new(),
            seq: 1,
            visitor_wrote: false,
            emptied: None,
            pending_joins: Vec::new(),
            last_staff: None,
            offered: BTreeSet::new(),
            told_nobody: false,
            first_message: None,
            announced: None,
        }
    }

    /// Occupants joined as in XEP-0045 (everyone but one-to-one staff).
    pub fn joined(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants.iter().filter(|o| !o.direct)
    }

    /// The one-to-one staff member, if the chat was taken that way.
    pub fn direct_staff(&self) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.direct)
    }

    /// The staff member who has the chat, by bare JID.
    pub fn handler(&self) -> Option<BareJid> {
        self.staff_present().map(|o| o.jid.to_bare())
    }

    /// The visitor's nick: the present visitor's, else the last one seen in the history.
    pub fn visitor_nick(&self) -> String {
        self.visitor()
            .map(|v| v.nick.clone())
            .or_else(|| {
                self.history
                    .iter()
                    .rev()
                    .find(|h| h.role == Role::Visitor)
                    .map(|h| h.nick.clone())
            })
            .unwrap_or_else(|| self.name.visitor().to_string())
    }

    /// The joined occupant with this real JID (one-to-one staff are not joined).
    pub fn occupant(&self, jid: &FullJid) -> Option<&Occupant> {
        self.occupants.iter().find(|o| &o.jid == jid && !o.direct)
    }

    pub fn occupant_mut(&mut self, jid: &FullJid) -> Option<&mut Occupant> {
        self.occupants
            .iter_mut()
            .find(|o| &o.jid == jid && !o.direct)
    }

    /// Whoever else holds this nick, compared case-folded.
    pub fn nick_holder(&self, nick: &str) -> Option<&Occupant> {
        let folded = nick::fold(nick);
        self.occupants
            .iter()
            .find(|o| nick::fold(&o.nick) == folded)
    }

    /// The visitor present now, if any (one at a time).
    pub fn visitor(&self) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.role == Role::Visitor)
    }

    /// The staff member holding the room now: any present staff occupant.
    pub fn staff_present(&self) -> Option<&Occupant> {
        self.occupants.iter().find(|o| o.role == Role::Staff)
    }

    /// Removes the occupant with this real JID, the joined one first.
    pub fn remove(&mut self, jid: &FullJid) -> Option<Occupant> {
        let i = self
            .occupants
            .iter()
            .position(|o| &o.jid == jid && !o.direct)
            .or_else(|| self.occupants.iter().position(|o| &o.jid == jid))?;
        Some(self.occupants.remove(i))
    }

    pub fn next_stanza_id(&mut self) -> String {
        let id = format!("{}-{}", self.session.id, self.seq);
        self.seq += 1;
        id
    }

    pub fn remember(&mut self, item: HistoryItem) {
        if self.history.len() == HISTORY_MAX {
            self.history.pop_front();
        }
        self.history.push_back(item);
    }

    pub fn forget(&mut self, stanza_id: &str) {
        self.history.retain(|h| h.stanza_id != stanza_id);
    }

    /// The state the session should be in given who is present and what was said.
    /// CLOSED is decided by the caller (it depends on *why* the room is empty).
    pub fn derived_state(&self) -> SessionState {
        if self.staff_present().is_some() {
            SessionState::Chatting
        } else if self.visitor_wrote {
            SessionState::Active
        } else {
            SessionState::Inactive
        }
    }

    /// Moves the session to `state` at `now`. Returns true if anything changed (then the row
    /// must be written).
    pub fn set_state(&mut self, state: SessionState, now: Timestamp) -> bool {
        // Every message asks, and nearly always nothing changed: compare borrowed text and
        // allocate only for a change.
        let staff: Option<&str> = match state {
            // A full JID's bare part is what comes before the first '/'.
            SessionState::Chatting => self
                .staff_present()
                .and_then(|o| o.jid.as_str().split('/').next()),
            // Name who handled it when a chat closes; nobody has it while it waits again.
            SessionState::Closed => self.last_staff.as_deref().or(self.session.staff.as_deref()),
            SessionState::Active | SessionState::Inactive => None,
        };
        let unchanged = self.session.state == state && self.session.staff.as_deref() == staff;
        let remembered = state != SessionState::Chatting || self.last_staff.as_deref() == staff;
        if unchanged && remembered {
            return false;
        }
        let staff = staff.map(str::to_owned);
        if state == SessionState::Chatting {
            self.last_staff.clone_from(&staff);
        }
        if unchanged {
            return false;
        }
        self.session.state = state;
        self.session.staff = staff;
        self.session.updated_at = now;
        if state == SessionState::Closed {
            self.session.closed_at = Some(now);
        }
        true
    }
}
