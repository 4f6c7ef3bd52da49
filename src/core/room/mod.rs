//! One visitor room in memory: its open session, who is in it, and the recent messages it
//! replays as history. Only rooms with an open session live here; a CLOSED room is dropped
//! and a later join starts a new session.
//!
//! The room's rules are methods on [`Room`], in the manner of Prosody's `room_mt:handle_*`:
//! [`join`] (admitting, rejoins, presence updates, waiting joins), [`leave`] (departures and
//! what they do to the session), [`post`] (messages and chat states), [`desk`] (what staff
//! see of the room: its contact presence, offers, one-to-one claims, closing). The core finds
//! the room once and calls them; everything leaves through [`Effects`].

pub mod desk;
pub mod join;
pub mod leave;
pub mod post;

use std::collections::{BTreeSet, VecDeque};

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::{Id, Lang};

use super::nick;
use super::session::{MessageRecord, OccupantRecord, Role, SessionRecord, SessionState};
use super::stanzas::Shown;
use super::{Effects, SiteInfo};
use crate::address::RoomName;
use crate::config::Limits;
use crate::store::StoreOp;
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
    pub joined_at: Timestamp,
}

impl Occupant {
    /// Someone joining the room (XEP-0045).
    pub fn new(jid: FullJid, nick: String, role: Role, shown: Shown, now: Timestamp) -> Occupant {
        Occupant {
            jid,
            nick,
            role,
            shown,
            direct: false,
            joined_at: now,
        }
    }

    /// A staff member taking the chat one-to-one from their roster.
    pub fn direct(jid: FullJid, nick: String, now: Timestamp) -> Occupant {
        Occupant {
            direct: true,
            ..Occupant::new(jid, nick, Role::Staff, Shown::default(), now)
        }
    }

    fn record(&self, session_id: i64) -> OccupantRecord {
        OccupantRecord {
            session_id,
            jid: self.jid.clone(),
            nick: self.nick.clone(),
            role: self.role,
            joined_at: self.joined_at,
            direct: self.direct,
        }
    }
}

#[derive(Debug, Clone)]
pub struct HistoryItem {
    pub at: Timestamp,
    pub nick: String,
    pub role: Role,
    pub body: String,
    pub lang: Lang,
    pub id: Option<Id>,
    pub stanza_id: String,
}

impl HistoryItem {
    pub(crate) fn of_record(m: MessageRecord) -> Option<HistoryItem> {
        // A line whose sender is not a full JID was not written by us: leave it out.
        if !m.from_jid.is_full() {
            return None;
        }
        Some(HistoryItem {
            at: m.at,
            nick: m.nick,
            role: m.role,
            body: m.body,
            lang: Lang::default(),
            id: m.origin_id.map(Id),
            stanza_id: m.stanza_id,
        })
    }
}

/// Someone joining: their address, the nick they asked for, and their join presence. A join
/// that waits (until we know whether the visitor the room is bound to is still there) is kept
/// as it came.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub jid: FullJid,
    pub nick: String,
    pub presence: xmpp_parsers::presence::Presence,
}

/// What a room's rules need from outside the room.
pub struct Ctx<'a> {
    pub now: Timestamp,
    pub component: &'a BareJid,
    pub site: &'a SiteInfo,
    pub limits: Limits,
}

impl Ctx<'_> {
    /// The room's subject, which names the site.
    pub fn subject(&self) -> String {
        format!("Chat with {}", self.site.name)
    }
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

/// A session as the core keeps it. Who has it is not here: it is derived from who is present
/// (CHATTING) or who last had it (CLOSED), see [`Room::record`].
#[derive(Debug, Clone)]
struct Session {
    id: i64,
    state: SessionState,
    /// The visitor address the room is bound to (the last one that joined).
    visitor_jid: Option<FullJid>,
    created_at: Timestamp,
    updated_at: Timestamp,
    closed_at: Option<Timestamp>,
}

/// What the store kept of a session's messages, for [`Room::resume`].
#[derive(Debug, Default)]
pub struct Kept {
    /// The latest messages people said, oldest first.
    pub history: Vec<MessageRecord>,
    /// The visitor's first message, however long ago.
    pub first_visitor_line: Option<MessageRecord>,
    /// The stanza-id of the session's latest line of any kind.
    pub last_stanza_id: Option<String>,
    /// What is known of the visitor (token details, page context, pre-chat answers).
    pub details: Vec<super::session::DetailRecord>,
}

#[derive(Debug)]
pub struct Room {
    name: RoomName,
    jid: BareJid,
    session: Session,
    occupants: Vec<Occupant>,
    history: VecDeque<HistoryItem>,
    /// Bytes of the bodies in `history`.
    history_bytes: usize,
    /// Memory has let go of lines the store still has (see replay.rs).
    older_in_store: bool,
    /// Next sequence number for stanza-ids in this session.
    seq: u64,
    /// Set while nobody is in the room; the session closes when it runs out.
    emptied: Option<Emptied>,
    pending_joins: Vec<Arrival>,
    /// The hashes `Rooms`' join index holds for this room, so that closing it can take them
    /// out (`Rooms::note_join`); the room itself never reads them.
    join_hashes: Vec<u64>,
    /// Who last had the chat: the CHATTING row names them, and so does the CLOSED one even if
    /// they left before the visitor.
    last_staff: Option<BareJid>,
    /// Staff who were offered this chat while it waited (they hear who took it).
    offered: BTreeSet<BareJid>,
    /// One-at-a-time routing: who holds the offer now, and since when.
    offer: Option<(BareJid, Timestamp)>,
    /// Staff who passed this chat (or let the offer run out) in this round: not offered it
    /// again until the round starts over.
    passed: BTreeSet<BareJid>,
    /// When the chat was last offered or announced to anyone.
    announced_at: Option<Timestamp>,
    /// The place in line the visitor was last told, and when.
    told_position: Option<(usize, Timestamp)>,
    /// When a staff member first took the chat.
    first_answer: Option<Timestamp>,
    /// The visitor was told the desk is closed.
    told_closed: bool,
    /// What is known of the visitor besides their nick.
    details: crate::core::details::VisitorDetails,
    /// The visitor was told that nobody is available (once per session).
    told_nobody: bool,
    /// The one-to-one staff member was told the visitor left; they hear when they are back.
    told_left: bool,
    /// The visitor's first message: set means the visitor wrote. The ACTIVE status and
    /// `!waiting` show its start.
    first_message: Option<(String, Timestamp)>,
    /// The visitor contact's presence status last sent to staff, so unchanged states are not
    /// sent again.
    announced: Option<String>,
    /// Its contact was put into staff rosters (see `Core::roster_admit_room`).
    rostered: bool,
}

/// Parses the sequence number of a stanza-id `<session>-<seq>`.
fn seq_of(stanza_id: &str) -> Option<u64> {
    stanza_id.rsplit('-').next()?.parse().ok()
}

impl Room {
    fn new(name: RoomName, jid: BareJid, session: Session) -> Room {
        Room {
            name,
            jid,
            session,
            occupants: Vec::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            older_in_store: false,
            seq: 1,
            emptied: None,
            pending_joins: Vec::new(),
            join_hashes: Vec::new(),
            last_staff: None,
            offered: BTreeSet::new(),
            offer: None,
            passed: BTreeSet::new(),
            announced_at: None,
            told_position: None,
            first_answer: None,
            told_closed: false,
            details: Default::default(),
            told_nobody: false,
            told_left: false,
            first_message: None,
            announced: None,
            rostered: false,
        }
    }

    /// A new session, INACTIVE, bound to `visitor`.
    pub fn open(id: i64, name: RoomName, jid: BareJid, visitor: &FullJid, now: Timestamp) -> Room {
        let session = Session {
            id,
            state: SessionState::Inactive,
            visitor_jid: Some(visitor.clone()),
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        Room::new(name, jid, session)
    }

    /// Rebuilds a room after a restart from what the store kept. A room that comes back with
    /// nobody in it gets the rejoin grace period from `now`.
    pub fn resume(
        name: RoomName,
        jid: BareJid,
        record: SessionRecord,
        kept: Kept,
        occupants: Vec<OccupantRecord>,
        now: Timestamp,
    ) -> Room {
        let session = Session {
            id: record.id,
            state: record.state,
            visitor_jid: record.visitor_jid,
            created_at: record.created_at,
            updated_at: record.updated_at,
            closed_at: record.closed_at,
        };
        let mut room = Room::new(name, jid, session);
        // Answered before the restart: not a first answer to measure again.
        room.first_answer = record.staff.is_some().then_some(record.updated_at);
        room.last_staff = record.staff;
        let last_seq = kept
            .history
            .iter()
            .map(|m| m.stanza_id.as_str())
            .chain(kept.last_stanza_id.as_deref())
            .filter_map(seq_of)
            .max();
        room.seq = last_seq.map_or(1, |s| s.saturating_add(1));
        room.first_message = kept.first_visitor_line.map(|m| (m.body, m.at));
        room.details = crate::core::details::VisitorDetails::from_records(kept.details);
        if room.first_message.is_none() && record.state == SessionState::Active {
            // ACTIVE means the visitor wrote, even if the line itself is not to be found.
            room.first_message = Some((String::new(), record.updated_at));
        }
        // The store gave as many as asked for: it may hold older ones.
        room.older_in_store = kept.history.len() >= HISTORY_MAX;
        for item in kept.history.into_iter().filter_map(HistoryItem::of_record) {
            room.remember(item, usize::MAX);
        }
        for o in occupants {
            let occupant = if o.direct {
                Occupant::direct(o.jid, o.nick, o.joined_at)
            } else {
                Occupant::new(o.jid, o.nick, o.role, Shown::default(), o.joined_at)
            };
            room.occupants.push(occupant);
        }
        if room.occupants.is_empty() {
            room.emptied = Some(Emptied::Lost(now));
        }
        room
    }

    // ---- what the room is -----------------------------------------------------------------

    pub fn name(&self) -> &RoomName {
        &self.name
    }

    pub fn jid(&self) -> &BareJid {
        &self.jid
    }

    pub fn session_id(&self) -> i64 {
        self.session.id
    }

    pub fn state(&self) -> SessionState {
        self.session.state
    }

    pub fn updated_at(&self) -> Timestamp {
        self.session.updated_at
    }

    /// The visitor's first message, if they wrote.
    pub fn first_message(&self) -> Option<&str> {
        self.first_message.as_ref().map(|(text, _)| text.as_str())
    }

    /// Since when the visitor has been waiting: their first message, else their arrival.
    pub fn waiting_since(&self) -> Timestamp {
        self.first_message
            .as_ref()
            .map_or(self.session.created_at, |(_, at)| *at)
    }

    pub fn was_offered_to(&self, staff: &BareJid) -> bool {
        self.offered.contains(staff)
    }

    /// The session as the store keeps it.
    pub fn record(&self) -> SessionRecord {
        let staff = match self.session.state {
            SessionState::Chatting | SessionState::Closed => self.last_staff.as_ref(),
            SessionState::Active | SessionState::Inactive => None,
        };
        SessionRecord {
            id: self.session.id,
            room: self.jid.clone(),
            site: self.name.site().clone(),
            visitor: self.name.visitor().to_string(),
            state: self.session.state,
            staff: staff.cloned(),
            visitor_jid: self.session.visitor_jid.clone(),
            created_at: self.session.created_at,
            updated_at: self.session.updated_at,
            closed_at: self.session.closed_at,
        }
    }

    /// True while nobody is in the room and its time to close has come.
    pub fn due_to_close(&self, now: Timestamp) -> bool {
        self.occupants.is_empty() && self.emptied.is_some_and(|e| e.closes_at() <= now)
    }

    /// The link dropped: a room that emptied just before was probably emptied by the server
    /// shutting down, so its people get the full grace period to come back.
    pub fn link_lost(&mut self, now: Timestamp) {
        if let Some(Emptied::Left(_)) = self.emptied {
            self.emptied = Some(Emptied::Lost(now));
        }
    }

    // ---- who is here ----------------------------------------------------------------------

    /// Everyone present, joined or one-to-one.
    pub fn occupants(&self) -> impl Iterator<Item = &Occupant> {
        self.occupants.iter()
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

    /// Who last had the chat (the one who has it now while CHATTING).
    pub fn last_staff(&self) -> Option<&BareJid> {
        self.last_staff.as_ref()
    }

    /// The visitor's nick for humans to read (offers, `!waiting`, roster labels): the present
    /// visitor's, else the last one seen in the history.
    pub fn visitor_nick(&self) -> String {
        let nick = self
            .visitor()
            .map(|v| v.nick.clone())
            .or_else(|| {
                self.history
                    .iter()
                    .rev()
                    .find(|h| h.role == Role::Visitor)
                    .map(|h| h.nick.clone())
            })
            .unwrap_or_else(|| self.name.visitor().to_string());
        crate::render::one_line(&nick)
    }

    /// The joined occupant with this real JID (one-to-one staff are not joined).
    pub fn joined_occupant(&self, jid: &FullJid) -> Option<&Occupant> {
        self.occupants.iter().find(|o| &o.jid == jid && !o.direct)
    }

    fn joined_occupant_mut(&mut self, jid: &FullJid) -> Option<&mut Occupant> {
        self.occupants
            .iter_mut()
            .find(|o| &o.jid == jid && !o.direct)
    }

    /// Whoever holds this nick, compared case-folded.
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

    /// Notes a join-index hash for this room; false if it was there already.
    pub fn add_join_hash(&mut self, h: u64) -> bool {
        let new = !self.join_hashes.contains(&h);
        if new {
            self.join_hashes.push(h);
        }
        new
    }

    pub fn remove_join_hash(&mut self, h: u64) {
        self.join_hashes.retain(|x| *x != h);
    }

    pub fn join_hashes(&self) -> &[u64] {
        &self.join_hashes
    }

    /// Does `jid` wait to join this room?
    pub fn is_waiting(&self, jid: &FullJid) -> bool {
        self.pending_joins.iter().any(|j| &j.jid == jid)
    }

    /// Is a join waiting on the bound visitor `jid` (so an unanswered ping lets it in)?
    pub fn join_waits_on(&self, jid: &FullJid) -> bool {
        !self.pending_joins.is_empty() && self.visitor().map(|v| &v.jid) == Some(jid)
    }

    /// Removes the joined occupant with this real JID, or else the one-to-one one.
    fn remove_any(&mut self, jid: &FullJid) -> Option<Occupant> {
        let i = self
            .occupants
            .iter()
            .position(|o| &o.jid == jid && !o.direct)
            .or_else(|| self.occupants.iter().position(|o| &o.jid == jid))?;
        Some(self.occupants.remove(i))
    }

    /// The occupant's address in the room, `room/nick`. Nicks arrive as the resource of a
    /// parsed JID, so this only fails on input we built ourselves wrongly; callers skip.
    pub fn occupant_jid(&self, nick: &str) -> Option<FullJid> {
        self.jid.with_resource_str(nick).ok()
    }

    /// `room/nick` if it is a valid address, else the room itself (for errors about a join).
    pub fn about(&self, nick: &str) -> Jid {
        self.occupant_jid(nick)
            .map(Jid::from)
            .unwrap_or_else(|| Jid::from(self.jid.clone()))
    }

    // ---- what was said --------------------------------------------------------------------

    /// What the visitor wrote that is still in the history, oldest first.
    pub fn visitor_lines(&self) -> impl Iterator<Item = &HistoryItem> {
        self.history.iter().filter(|h| h.role == Role::Visitor)
    }

    /// The id for a staff note written into this session's transcript: the session's next
    /// stanza-id, so that a resumed room still never gives an id twice.
    pub fn note_stanza_id(&mut self) -> String {
        self.next_stanza_id()
    }

    fn next_stanza_id(&mut self) -> String {
        let id = format!("{}-{}", self.session.id, self.seq);
        self.seq = self.seq.saturating_add(1);
        id
    }

    /// Keeps a line for history on join: at most [`HISTORY_MAX`] lines and `max_bytes` of
    /// text, the newest always (the store keeps everything; memory must stay bounded whatever
    /// visitors send).
    fn remember(&mut self, item: HistoryItem, max_bytes: usize) {
        self.history_bytes = self.history_bytes.saturating_add(item.body.len());
        self.history.push_back(item);
        while self.history.len() > 1
            && (self.history.len() > HISTORY_MAX || self.history_bytes > max_bytes)
        {
            if let Some(old) = self.history.pop_front() {
                self.history_bytes = self.history_bytes.saturating_sub(old.body.len());
                self.older_in_store = true;
            }
        }
    }

    /// Holds the history to `max_bytes` (after a resume, which kept what the store gave).
    pub fn trim_history(&mut self, max_bytes: usize) {
        if let Some(last) = self.history.pop_back() {
            self.history_bytes = self.history_bytes.saturating_sub(last.body.len());
            self.remember(last, max_bytes);
        }
    }

    /// Bytes of message text kept in memory for history.
    #[cfg(test)]
    pub fn history_bytes(&self) -> usize {
        self.history_bytes
    }

    /// A message whose write failed must not come back later in someone's history.
    pub fn forget(&mut self, stanza_id: &str) {
        self.history.retain(|h| h.stanza_id != stanza_id);
        self.history_bytes = self.history.iter().map(|h| h.body.len()).sum();
    }

    /// A transcript-only line (not sent to the room) for events such as staff joining.
    fn system_line(
        &mut self,
        component: &BareJid,
        now: Timestamp,
        body: String,
        out: &mut Effects,
    ) {
        let stanza_id = self.next_stanza_id();
        out.store(StoreOp::AppendMessage(MessageRecord {
            session_id: self.session.id,
            at: now,
            role: Role::System,
            from_jid: Jid::from(component.clone()),
            nick: String::new(),
            body,
            stanza_id,
            origin_id: None,
        }));
    }

    // ---- the session's state --------------------------------------------------------------

    /// The state the session should be in given who is present and what was said.
    /// CLOSED is decided by the caller (it depends on *why* the room is empty).
    fn derived_state(&self) -> SessionState {
        if self.staff_present().is_some() {
            SessionState::Chatting
        } else if self.first_message.is_some() {
            SessionState::Active
        } else {
            SessionState::Inactive
        }
    }

    /// Moves the session to the state its occupants and messages say, and writes the row if
    /// that changed anything.
    fn settle_state(&mut self, now: Timestamp, out: &mut Effects) {
        let state = self.derived_state();
        if self.set_state(state, now) {
            self.write_session(out);
        }
    }

    fn write_session(&self, out: &mut Effects) {
        out.store(StoreOp::UpdateSession(self.record()));
        out.changed(&self.name);
    }

    /// Moves the session to `state` at `now`. Returns true if the row changed.
    fn set_state(&mut self, state: SessionState, now: Timestamp) -> bool {
        let mut changed = self.session.state != state;
        if state == SessionState::Chatting {
            // Every message asks, and nearly always nothing changed: compare borrowed text and
            // allocate only for a change.
            let handler = self
                .staff_present()
                .and_then(|o| o.jid.as_str().split('/').next());
            if self.last_staff.as_ref().map(|s| s.as_str()) != handler {
                self.last_staff = self.staff_present().map(|o| o.jid.to_bare());
                changed = true;
            }
        }
        if !changed {
            return false;
        }
        self.session.state = state;
        self.session.updated_at = now;
        if state == SessionState::Closed {
            self.session.closed_at = Some(now);
        }
        true
    }

    /// The session is over: CLOSED, written if it was not already. Returns the staff who were
    /// offered the chat and must hear that it closed (not the one who had it).
    pub fn close(&mut self, now: Timestamp, out: &mut Effects) -> Vec<BareJid> {
        if self.set_state(SessionState::Closed, now) {
            tracing::info!(session = self.session.id, room = %self.jid, "session closed");
            out.store(StoreOp::UpdateSession(self.record()));
        }
        let last = self.last_staff.clone();
        std::mem::take(&mut self.offered)
            .into_iter()
            .filter(|s| Some(s) != last.as_ref())
            .collect()
    }
}
