//! The staff side: who of the staff is online, the visitor contacts' presence in their rosters,
//! offers of waiting chats, claiming a chat one-to-one, and closing a chat.

use std::collections::BTreeMap;

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Show, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::presence::occupant_jid;
use super::room::{Occupant, Room};
use super::stanzas::{self, Shown};
use super::{Core, Out, REJOIN_GRACE_MS};
use crate::address::{RoomName, SiteId, Target};
use crate::store::{MessageRow, OccupantRow, Role, SessionState, StoreOp};
use crate::time::Timestamp;

/// How much of the visitor's first message the ACTIVE status shows.
const STATUS_PREVIEW_CHARS: usize = 80;
pub const CLOSED_TEXT: &str = "The chat is now closed.";
pub const NOBODY_TEXT: &str =
    "No one is available right now. Your message has been saved and will be answered as soon as someone is.";

/// One staff member's connected resources and what they show.
#[derive(Debug, Default)]
pub struct StaffPresence {
    pub resources: BTreeMap<String, Option<Show>>,
    /// When the last resource went offline.
    pub offline_since: Option<Timestamp>,
}

impl StaffPresence {
    /// Online with no `<show>` or `chat`: away, xa and dnd get no offers.
    pub fn available(&self) -> bool {
        self.resources
            .values()
            .any(|s| matches!(s, None | Some(Show::Chat)))
    }
}

/// The visitor contact's roster presence for a session state.
fn contact_status(room: &Room) -> (Option<Show>, String) {
    match room.session.state {
        SessionState::Inactive => (Some(Show::Away), "INACTIVE — browsing".to_string()),
        SessionState::Active => {
            let preview: String = room
                .first_message
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(STATUS_PREVIEW_CHARS)
                .collect();
            (Some(Show::Chat), format!("ACTIVE — {preview}"))
        }
        SessionState::Chatting => {
            let nick = room
                .staff_present()
                .map(|o| o.nick.as_str())
                .unwrap_or("staff");
            (Some(Show::Dnd), format!("CHATTING with {nick}"))
        }
        SessionState::Closed => (None, "CLOSED".to_string()),
    }
}

/// The nick a staff member gets when they answer one-to-one: the local part of their JID.
fn direct_nick(room: &Room, staff: &BareJid) -> String {
    let base = staff
        .node()
        .map(|n| n.to_string())
        .unwrap_or_else(|| staff.domain().to_string());
    match room.nick_holder(&base) {
        Some(o) if o.jid.to_bare() != *staff => format!("{base} (staff)"),
        _ => base,
    }
}

impl Core {
    pub(super) fn staff_sites(&self, jid: &BareJid) -> Vec<SiteId> {
        self.config
            .sites
            .iter()
            .filter(|(_, s)| s.staff.contains(jid))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub(super) fn is_site_staff(&self, jid: &BareJid, site: &SiteId) -> bool {
        self.config
            .sites
            .get(site)
            .is_some_and(|s| s.staff.contains(jid))
    }

    pub(super) fn staff_available(&self, jid: &BareJid) -> bool {
        self.staff.get(jid).is_some_and(|p| p.available())
    }

    fn desk(&self) -> Jid {
        Jid::from(self.config.component.clone())
    }

    /// A line from the front desk contact to a staff member.
    pub(super) fn desk_says(&self, to: &BareJid, body: &str, out: &mut Out) {
        out.send(stanzas::chat(self.desk(), Jid::from(to.clone()), body));
    }

    // ---- presence from staff (roster subscriptions, probes, availability) ----------------

    /// Presence addressed to the front desk or to a visitor contact (not to an occupant).
    /// Returns false when it is not ours to handle here (a non-staff sender).
    pub(super) fn handle_presence_to_contact(
        &mut self,
        now: Timestamp,
        p: &Presence,
        out: &mut Out,
    ) -> bool {
        let (Some(from), Some(to)) = (p.from.clone(), p.to.clone()) else {
            return true;
        };
        let bare = from.to_bare();
        let target = Target::of(&to, &self.config.component);
        let contact_site = match &target {
            Target::Domain => None,
            Target::Room(name) => Some(name.site().clone()),
            _ => return false,
        };
        let sites = self.staff_sites(&bare);
        if sites.is_empty() {
            // Not staff: the desk answers nobody's subscription; rooms keep their old answers.
            if matches!(target, Target::Domain) && p.type_ == PresenceType::Subscribe {
                out.send(stanzas::presence_of_type(
                    to,
                    Jid::from(bare),
                    PresenceType::Unsubscribed,
                ));
            }
            return matches!(target, Target::Domain) || p.type_ != PresenceType::None;
        }
        let allowed = contact_site.as_ref().is_none_or(|s| sites.contains(s));
        match p.type_ {
            PresenceType::None => self.staff_online(now, &from, p.show.clone(), out),
            PresenceType::Unavailable => self.staff_offline(now, &from),
            PresenceType::Probe if allowed => {
                let to_bare = to.to_bare();
                self.send_contact_presence_to(&to_bare, &bare, out);
            }
            PresenceType::Probe => out.send(stanzas::presence_of_type(
                to,
                Jid::from(bare),
                PresenceType::Unavailable,
            )),
            PresenceType::Subscribe if allowed => {
                out.send(stanzas::presence_of_type(
                    to.clone(),
                    Jid::from(bare.clone()),
                    PresenceType::Subscribed,
                ));
                self.send_contact_presence_to(&to.to_bare(), &bare, out);
            }
            PresenceType::Subscribe => out.send(stanzas::presence_of_type(
                to,
                Jid::from(bare),
                PresenceType::Unsubscribed,
            )),
            _ => {
                tracing::debug!(from = %from, to = %to, kind = ?p.type_, "subscription traffic noted")
            }
        }
        true
    }

    fn staff_online(&mut self, now: Timestamp, from: &Jid, show: Option<Show>, out: &mut Out) {
        let bare = from.to_bare();
        let resource = from.resource().map(|r| r.to_string()).unwrap_or_default();
        let st = self.staff.entry(bare.clone()).or_default();
        let was = st.available();
        st.resources.insert(resource, show);
        st.offline_since = None;
        if !was && st.available() {
            tracing::info!(staff = %bare, "staff available");
            self.offer_waiting_to(now, &bare, out);
        }
    }

    fn staff_offline(&mut self, now: Timestamp, from: &Jid) {
        let bare = from.to_bare();
        let Some(st) = self.staff.get_mut(&bare) else {
            return;
        };
        match from.resource() {
            Some(r) => {
                st.resources.remove(r.as_str());
            }
            None => st.resources.clear(),
        }
        if st.resources.is_empty() && st.offline_since.is_none() {
            st.offline_since = Some(now);
            tracing::info!(staff = %bare, "staff offline");
        }
    }

    /// Our presence as `contact` (the desk or a visitor room) to one staff member.
    pub(super) fn send_contact_presence_to(
        &self,
        contact: &BareJid,
        staff: &BareJid,
        out: &mut Out,
    ) {
        let to = Jid::from(staff.clone());
        if *contact == self.config.component {
            out.send(stanzas::contact_presence(
                self.desk(),
                to,
                None,
                "frontdesk — send !help for the commands",
            ));
            return;
        }
        let room = contact
            .node()
            .and_then(|n| RoomName::parse(n.as_str()).ok())
            .and_then(|n| self.rooms.get(&n));
        match room {
            Some(room) if self.is_site_staff(staff, room.name.site()) => {
                let (show, status) = contact_status(room);
                out.send(stanzas::contact_presence(
                    Jid::from(contact.clone()),
                    to,
                    show,
                    &status,
                ));
            }
            _ => out.send(stanzas::presence_of_type(
                Jid::from(contact.clone()),
                to,
                PresenceType::Unavailable,
            )),
        }
    }

    /// Sends the room's contact presence to its site's staff if it changed since last time.
    pub(super) fn announce_contact(&mut self, name: &RoomName, out: &mut Out) {
        let Some(site) = self.config.sites.get(name.site()) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let (show, status) = contact_status(room);
        if room.announced.as_deref() == Some(status.as_str()) {
            return;
        }
        room.announced = Some(status.clone());
        for s in &site.staff {
            out.send(stanzas::contact_presence(
                Jid::from(room.jid.clone()),
                Jid::from(s.clone()),
                show.clone(),
                &status,
            ));
        }
    }

    /// After (re)connecting: ask staff for their presence and tell them ours.
    pub(super) fn staff_connected(&mut self, out: &mut Out) {
        self.staff.clear();
        for s in self.config.all_staff() {
            out.send(stanzas::presence_of_type(
                self.desk(),
                Jid::from(s.clone()),
                PresenceType::Probe,
            ));
            self.send_contact_presence_to(&self.config.component.clone(), &s, out);
        }
        let mut names: Vec<RoomName> = self.rooms.keys().cloned().collect();
        names.sort();
        for n in names {
            if let Some(r) = self.rooms.get_mut(&n) {
                r.announced = None;
            }
            self.announce_contact(&n, out);
        }
    }

    /// What a state change means for staff: the contact's presence, who hears that the chat
    /// was taken, and offers when a chat waits again.
    pub(super) fn after_state_changes(&mut self, now: Timestamp, out: &mut Out) {
        let mut changed = std::mem::take(&mut out.1);
        changed.sort();
        changed.dedup();
        for name in changed {
            self.announce_contact(&name, out);
            let available: Vec<BareJid> = self
                .config
                .sites
                .get(name.site())
                .map(|s| {
                    s.staff
                        .iter()
                        .filter(|j| self.staff_available(j))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            let Some(room) = self.rooms.get_mut(&name) else {
                continue;
            };
            match room.session.state {
                SessionState::Chatting if !room.offered.is_empty() => {
                    let handler = room.handler();
                    let nick = room
                        .staff_present()
                        .map(|o| o.nick.clone())
                        .unwrap_or_default();
                    let id = room.session.id;
                    let told: Vec<BareJid> = std::mem::take(&mut room.offered)
                        .into_iter()
                        .filter(|s| Some(s) != handler.as_ref())
                        .collect();
                    for s in told {
                        self.desk_says(&s, &format!("#{id} is now handled by {nick}."), out);
                    }
                }
                SessionState::Active if room.offered.is_empty() => {
                    let last = room.last_staff.clone();
                    for s in available
                        .into_iter()
                        .filter(|s| Some(s.to_string()) != last)
                    {
                        self.offer_room_to(now, &name, &s, out);
                    }
                }
                _ => {}
            }
        }
    }

    // ---- offers ---------------------------------------------------------------------------

    /// A staff member just became available: every chat waiting on their sites is offered.
    fn offer_waiting_to(&mut self, now: Timestamp, staff: &BareJid, out: &mut Out) {
        let sites = self.staff_sites(staff);
        let mut waiting: Vec<(i64, RoomName)> = self
            .rooms
            .values()
            .filter(|r| {
                r.session.state == SessionState::Active
                    && sites.contains(r.name.site())
                    && !r.offered.contains(staff)
            })
            .map(|r| (r.session.id, r.name.clone()))
            .collect();
        waiting.sort();
        let waiting: Vec<RoomName> = waiting.into_iter().map(|(_, n)| n).collect();
        for name in waiting {
            self.offer_room_to(now, &name, staff, out);
        }
    }

    /// Replays what the visitor wrote so far, from the contact, then the desk's note.
    fn offer_room_to(&mut self, _now: Timestamp, name: &RoomName, staff: &BareJid, out: &mut Out) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        room.offered.insert(staff.clone());
        let from = Jid::from(room.jid.clone());
        for h in room.history.iter().filter(|h| h.role == Role::Visitor) {
            out.send(stanzas::chat_delayed(
                from.clone(),
                Jid::from(staff.clone()),
                &h.body,
                h.at,
            ));
        }
        let note = self.offer_note(name);
        self.desk_says(staff, &note, out);
    }

    fn offer_note(&self, name: &RoomName) -> String {
        let Some(room) = self.rooms.get(name) else {
            return String::new();
        };
        let site = self
            .config
            .sites
            .get(name.site())
            .map(|s| s.name.as_str())
            .unwrap_or(name.site().as_str());
        format!(
            "Visitor {} on {} wants to chat (#{}). Reply to them, or send !accept {}.",
            room.visitor_nick(),
            site,
            room.session.id,
            room.session.id
        )
    }

    /// Where a visitor's new message goes besides the room: to the one-to-one staff member
    /// while CHATTING, to the available staff while ACTIVE (the first time with the desk's
    /// note), or, if nobody is available, a notice to the visitor (once).
    pub(super) fn copies_of_visitor_message(
        &mut self,
        name: &RoomName,
        body: &str,
        kept: &[minidom::Element],
    ) -> Vec<Stanza> {
        let mut copies = Vec::new();
        let Some(room) = self.rooms.get(name) else {
            return copies;
        };
        match room.session.state {
            // The common case: it needs none of the offer's makings below, which cost more
            // than the reflection itself.
            SessionState::Chatting => {
                if let Some(d) = room.direct_staff() {
                    let from = Jid::from(room.jid.clone());
                    let mut m = stanzas::chat(from, Jid::from(d.jid.to_bare()), body);
                    m.payloads.extend(kept.iter().cloned());
                    copies.push(m.into());
                }
                return copies;
            }
            SessionState::Active => {}
            SessionState::Inactive | SessionState::Closed => return copies,
        }
        let available: Vec<BareJid> = self
            .config
            .sites
            .get(name.site())
            .map(|s| {
                s.staff
                    .iter()
                    .filter(|j| self.staff_available(j))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let note = self.offer_note(name);
        let desk = self.desk();
        let Some(room) = self.rooms.get_mut(name) else {
            return copies;
        };
        let from = Jid::from(room.jid.clone());
        for s in &available {
            copies.push(stanzas::chat(from.clone(), Jid::from(s.clone()), body).into());
            if room.offered.insert(s.clone()) {
                copies.push(stanzas::chat(desk.clone(), Jid::from(s.clone()), &note).into());
            }
        }
        if available.is_empty() && room.offered.is_empty() && !room.told_nobody {
            room.told_nobody = true;
            if let Some(v) = room.visitor() {
                let sid = format!("{}-notice-{}", room.session.id, room.seq);
                copies
                    .push(stanzas::room_notice(&room.jid, v.jid.clone(), NOBODY_TEXT, &sid).into());
            }
        }
        copies
    }

    // ---- one-to-one from staff ------------------------------------------------------------

    /// A `type='chat'` (or normal) message to a visitor contact: a staff member answering from
    /// their roster. The first one claims the chat.
    pub(super) fn handle_chat_to_room(
        &mut self,
        now: Timestamp,
        name: RoomName,
        m: Message,
        out: &mut Out,
    ) {
        let (Some(to), Some(from)) = (m.to.clone(), m.from.clone()) else {
            return;
        };
        let refuse = |t: ErrorType, c: DefinedCondition, text: &str| {
            stanzas::message_error(
                to.clone(),
                from.clone(),
                m.id.clone(),
                stanzas::error(t, c, text),
            )
        };
        let bare = from.to_bare();
        if !self.is_site_staff(&bare, name.site()) {
            let (t, c, text) = if self.staff_sites(&bare).is_empty() {
                (
                    ErrorType::Modify,
                    DefinedCondition::NotAcceptable,
                    "Join the room and send type='groupchat' messages to it.",
                )
            } else {
                (
                    ErrorType::Auth,
                    DefinedCondition::Forbidden,
                    "You are staff of another site and cannot reach this visitor.",
                )
            };
            out.send(refuse(t, c, text));
            return;
        }
        let Ok(sender) = FullJid::try_from(from.clone()) else {
            out.send(refuse(
                ErrorType::Modify,
                DefinedCondition::BadRequest,
                "Send from a full JID.",
            ));
            return;
        };
        let Some(room) = self.rooms.get(&name) else {
            out.send(refuse(
                ErrorType::Cancel,
                DefinedCondition::ItemNotFound,
                "This chat is closed: the visitor is no longer here.",
            ));
            return;
        };
        let body = m
            .get_best_body(vec![])
            .filter(|(_, b)| !b.trim().is_empty())
            .map(|(l, b)| (l, b.clone()));
        let handler = room.staff_present().cloned();
        match (&handler, &body) {
            (Some(h), _) if h.jid.to_bare() != bare => {
                out.send(refuse(
                    ErrorType::Cancel,
                    DefinedCondition::NotAllowed,
                    &format!(
                        "{} is already chatting with this visitor (#{}).",
                        h.nick, room.session.id
                    ),
                ));
                return;
            }
            // Typing before the chat is yours claims nothing.
            (None, None) => return,
            _ => {}
        }
        if handler.is_none() {
            self.claim_direct(now, &name, &sender, out);
        }
        let Some(room) = self.rooms.get(&name) else {
            return;
        };
        // Write as the staff member's joined occupant if they have one, else their direct one.
        let Some(author) = room
            .joined()
            .find(|o| o.jid.to_bare() == bare)
            .or_else(|| room.direct_staff())
            .cloned()
        else {
            return;
        };
        match body {
            Some((lang, body)) => self.post_message(
                now,
                &name,
                author,
                body,
                lang,
                m.id.clone(),
                &m.payloads,
                Jid::from(sender),
                out,
            ),
            None => self.relay_chat_state(&name, &author, &m.payloads, out),
        }
    }

    /// The staff member takes the chat one-to-one: the visitor sees them join.
    pub(super) fn claim_direct(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        staff: &FullJid,
        out: &mut Out,
    ) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let nick = direct_nick(room, &staff.to_bare());
        let occ = Occupant {
            jid: staff.clone(),
            nick: nick.clone(),
            role: Role::Staff,
            shown: Shown::default(),
            direct: true,
            bucket: Default::default(),
            typing: Default::default(),
        };
        room.occupants.push(occ.clone());
        room.emptied = None;
        out.store(StoreOp::OccupantJoined(OccupantRow {
            session_id: room.session.id,
            jid: staff.to_string(),
            nick: nick.clone(),
            role: Role::Staff,
            joined_at: now,
            direct: true,
        }));
        if let Some(me) = occupant_jid(&room.jid, &nick) {
            for o in room.joined() {
                out.send(stanzas::occupant_presence(
                    me.clone(),
                    o.jid.clone(),
                    Role::Staff,
                    staff,
                    o.role == Role::Staff,
                    &occ.shown,
                    &[],
                ));
            }
        }
        tracing::info!(session = room.session.id, room = %room.jid, staff = %staff, "chat taken one-to-one");
        if room.set_state(SessionState::Chatting, now) {
            Self::write_session(room, out);
        }
        let id = room.session.id;
        self.system_line(id, now, format!("{nick} joined the chat"), out);
    }

    // ---- closing ----------------------------------------------------------------------------

    /// `!finish` and `!cancel`: everyone is told, the room empties at once and the session
    /// is CLOSED. `before` is said to the visitor before the closing line.
    pub(super) fn close_chat(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        before: Option<&str>,
        out: &mut Out,
    ) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let session_id = room.session.id;
        let lines: Vec<&str> = before
            .into_iter()
            .chain(std::iter::once(CLOSED_TEXT))
            .collect();
        for line in &lines {
            let sid = room.next_stanza_id();
            for o in room.joined() {
                out.send(stanzas::room_notice(&room.jid, o.jid.clone(), line, &sid));
            }
            if let Some(d) = room.direct_staff() {
                out.send(stanzas::chat(
                    Jid::from(room.jid.clone()),
                    Jid::from(d.jid.to_bare()),
                    line,
                ));
            }
            out.store(StoreOp::AppendMessage(MessageRow {
                session_id,
                at: now,
                role: Role::System,
                from_jid: self.config.component.to_string(),
                nick: String::new(),
                body: line.to_string(),
                stanza_id: sid,
                origin_id: None,
            }));
        }
        let joined: Vec<Occupant> = room.joined().cloned().collect();
        for o in &joined {
            for other in room.occupants.iter().filter(|x| x.jid != o.jid) {
                if let Some(oj) = occupant_jid(&room.jid, &other.nick) {
                    out.send(stanzas::occupant_unavailable(
                        oj,
                        o.jid.clone(),
                        &other.jid,
                        o.role == Role::Staff,
                        other.role,
                        &[],
                    ));
                }
            }
            if let Some(me) = occupant_jid(&room.jid, &o.nick) {
                out.send(stanzas::occupant_destroyed(me, o.jid.clone(), CLOSED_TEXT));
            }
        }
        for o in std::mem::take(&mut room.occupants) {
            out.store(StoreOp::OccupantLeft {
                session_id,
                jid: o.jid.to_string(),
            });
        }
        self.close_room(name, now, out);
    }

    /// One-to-one staff whose every resource has been offline longer than the grace period
    /// give the chat back: it waits (ACTIVE) and is offered again.
    pub(super) fn expire_direct_staff(&mut self, now: Timestamp, out: &mut Out) {
        let gone: Vec<(RoomName, FullJid)> = self
            .rooms
            .values()
            .filter_map(|r| {
                let d = r.direct_staff()?;
                let since = self.staff.get(&d.jid.to_bare())?.offline_since?;
                (now.millis() - since.millis() >= REJOIN_GRACE_MS)
                    .then(|| (r.name.clone(), d.jid.clone()))
            })
            .collect();
        for (name, jid) in gone {
            tracing::info!(room = %name, staff = %jid, "one-to-one staff offline too long; the chat waits again");
            self.occupant_lost(now, &name, &jid, out);
        }
    }
}
