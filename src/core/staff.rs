//! The staff side: who of the staff is online, the visitor contacts' presence in their rosters,
//! offers of waiting chats, claiming a chat one-to-one, and closing a chat. What a room shows
//! staff is the room's own (room/desk.rs); this is the part that spans rooms and staff.

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::message::Message;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

use super::availability::Change;
use super::refusal::Refusal;
use super::room::join::is_join;
use super::room::post::Said;
use super::stanzas;
use super::{Core, Effects, REJOIN_GRACE_MS};
use crate::address::{RoomName, SiteId, Target};
use crate::core::session::SessionState;
use crate::time::Timestamp;

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
        self.staff.is_available(jid)
    }

    fn desk(&self) -> Jid {
        Jid::from(self.config.component.clone())
    }

    /// A line from the front desk contact to a staff member.
    pub(super) fn desk_says(&self, to: &BareJid, body: &str, out: &mut Effects) {
        out.send(stanzas::chat(self.desk(), Jid::from(to.clone()), body));
    }

    // ---- presence from staff (roster subscriptions, probes, availability) ----------------

    /// Presence addressed to the front desk or to a visitor contact (not to an occupant).
    /// Returns false when it is not ours to handle here (a non-staff sender).
    pub(super) fn handle_presence_to_contact(
        &mut self,
        now: Timestamp,
        p: &Presence,
        out: &mut Effects,
    ) -> bool {
        let (Some(from), Some(to)) = (p.from.clone(), p.to.clone()) else {
            return true;
        };
        let bare = from.to_bare();
        let target = Target::of(&to, &self.config.component);
        let contact_site = match &target {
            Target::Domain => None,
            // A MUC join without a nick is a join gone wrong, not roster presence.
            Target::Room(_) if is_join(p) => return false,
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
            PresenceType::None => self.staff_online(now, &from, p, out),
            PresenceType::Unavailable if contact_site.is_none() => self.staff_offline(now, &from),
            // Servers send this to a visitor contact when its roster item comes or goes while
            // the staff member stays online, as well as on logout: not proof, so ask.
            PresenceType::Unavailable => self.verify_staff(now, &bare, out),
            PresenceType::Probe | PresenceType::Subscribe => {
                self.answer_staff_subscription(p.type_.clone(), to, bare, allowed, out)
            }
            _ => {
                tracing::debug!(from = %from, to = %to, kind = ?p.type_, "subscription traffic noted")
            }
        }
        true
    }

    /// A probe or a subscription request from staff to the desk or a contact: answered with
    /// the contact's presence where they are `allowed` (their site's), refused elsewhere.
    fn answer_staff_subscription(
        &mut self,
        kind: PresenceType,
        to: Jid,
        staff: BareJid,
        allowed: bool,
        out: &mut Effects,
    ) {
        let reply = |t| stanzas::presence_of_type(to.clone(), Jid::from(staff.clone()), t);
        match (kind, allowed) {
            (PresenceType::Subscribe, true) => {
                out.send(reply(PresenceType::Subscribed));
                self.send_contact_presence_to(&to.to_bare(), &staff, out);
            }
            (PresenceType::Subscribe, false) => out.send(reply(PresenceType::Unsubscribed)),
            (_, true) => self.send_contact_presence_to(&to.to_bare(), &staff, out),
            (_, false) => out.send(stanzas::presence_of_type(
                stanzas::contact_full(&to),
                Jid::from(staff.clone()),
                PresenceType::Unavailable,
            )),
        }
    }

    fn staff_online(&mut self, now: Timestamp, from: &Jid, p: &Presence, out: &mut Effects) {
        let bare = from.to_bare();
        if self.staff.online(from, p.show.clone(), p.priority.0) == Change::BecameAvailable {
            tracing::info!(staff = %bare, resource = ?from.resource(), "staff available");
            self.route_waiting(now, out);
        }
        // Presence from a silent resource: is the client back, or the server answering for it?
        self.ping_staff(now, &bare, true, out);
    }

    /// Pings `staff`'s resources (or only the silent ones) that have no ping in flight.
    fn ping_staff(
        &mut self,
        now: Timestamp,
        staff: &BareJid,
        only_silent: bool,
        out: &mut Effects,
    ) {
        for jid in self.staff.to_ping(staff, only_silent) {
            let id = self.ids.iq("sping");
            out.send(stanzas::ping(
                self.desk(),
                Jid::from(jid.clone()),
                id.clone(),
            ));
            self.staff.pinged(&jid, id, now);
        }
    }

    /// An answer to a ping sent to a staff resource. False if it is not one.
    pub(super) fn staff_ping_answered(
        &mut self,
        now: Timestamp,
        id: &str,
        from: Option<&Jid>,
        gone: bool,
        out: &mut Effects,
    ) -> bool {
        let Some((staff, change)) = self.staff.ping_answered(id, from, gone, now) else {
            return false;
        };
        match change {
            Change::BecameAvailable => {
                tracing::info!(staff = %staff, resource = ?from.and_then(|f| f.resource()), "staff available (answered a ping again)");
                self.route_waiting(now, out);
            }
            Change::WentOffline => {
                tracing::info!(staff = %staff, "staff offline (the server answered our ping for a session that no longer exists)")
            }
            Change::Nothing => {}
        }
        if gone {
            self.probe_staff(now, &staff, out);
        }
        true
    }

    fn staff_offline(&mut self, now: Timestamp, from: &Jid) {
        if self.staff.offline(from, now) == Change::WentOffline {
            tracing::info!(staff = %from.to_bare(), "staff offline");
        }
    }

    /// Asks the server for the staff member's presence (one probe at a time each): every
    /// online resource answers, and those that do not are gone (see `availability`).
    pub(super) fn probe_staff(&mut self, now: Timestamp, staff: &BareJid, out: &mut Effects) {
        if self.staff.probe(staff, now) {
            tracing::debug!(staff = %staff, "probing staff presence");
            out.send(stanzas::presence_of_type(
                self.desk(),
                Jid::from(staff.clone()),
                PresenceType::Probe,
            ));
        }
    }

    /// Makes sure a staff member the model has online still is (a probe); nothing to check
    /// for one it has offline.
    pub(super) fn verify_staff(&mut self, now: Timestamp, staff: &BareJid, out: &mut Effects) {
        if self.staff.seems_online(staff) {
            self.probe_staff(now, staff, out);
        }
    }

    /// A new probe round for `staff` even if one is in flight (it may have been sent before
    /// the server would answer it).
    pub(super) fn reprobe_staff(&mut self, now: Timestamp, staff: &BareJid, out: &mut Effects) {
        self.staff.forget_probe(staff);
        self.probe_staff(now, staff, out);
    }

    /// Probes that went unanswered, and the periodic check of whoever seems online.
    pub(super) fn check_staff(&mut self, now: Timestamp, out: &mut Effects) {
        for staff in self.staff.expire_probes(now) {
            tracing::info!(staff = %staff, "staff offline (the server answered a probe for no resource)");
        }
        for staff in self.staff.expire_pings(now) {
            tracing::info!(staff = %staff, "staff member's client did not answer a ping: no offers until it does (the server still lists the session)");
        }
        let sweep_ms = i64::try_from(self.config.roster.check_staff_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX);
        for staff in self.staff.due_for_sweep(now, sweep_ms) {
            self.probe_staff(now, &staff, out);
            self.ping_staff(now, &staff, false, out);
        }
    }

    /// Our presence as `contact` (the desk or a visitor room) to one staff member.
    pub(super) fn send_contact_presence_to(
        &self,
        contact: &BareJid,
        staff: &BareJid,
        out: &mut Effects,
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
            Some(room)
                if self.is_site_staff(staff, room.name().site())
                    && self.contact_shown_to(room, staff) =>
            {
                let (show, status) = room.contact_status();
                out.send(stanzas::contact_presence(
                    Jid::from(contact.clone()),
                    to,
                    show,
                    &status,
                ));
            }
            _ => out.send(stanzas::presence_of_type(
                stanzas::contact_full(&Jid::from(contact.clone())),
                to,
                PresenceType::Unavailable,
            )),
        }
    }

    /// Sends the room's contact presence to its site's staff if it changed since last time.
    pub(super) fn announce_contact(&mut self, name: &RoomName, out: &mut Effects) {
        let Some(site) = self.config.sites.get(name.site()) else {
            return;
        };
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let shown: Vec<&BareJid> = site
            .staff
            .iter()
            .filter(|s| self.contact_shown_to(room, s))
            .collect();
        if shown.is_empty() {
            return;
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some((show, status)) = room.contact_status_to_announce() else {
            return;
        };
        for s in shown {
            out.send(stanzas::contact_presence(
                Jid::from(room.jid().clone()),
                Jid::from(s.clone()),
                show.clone(),
                &status,
            ));
        }
    }

    /// After (re)connecting: ask staff for their presence and tell them ours.
    pub(super) fn staff_connected(&mut self, now: Timestamp, out: &mut Effects) {
        self.staff.clear();
        for s in self.config.all_staff() {
            self.probe_staff(now, &s, out);
            self.send_contact_presence_to(&self.config.component.clone(), &s, out);
        }
        for n in self.rooms.names_where(|_| true) {
            if let Some(r) = self.rooms.get_mut(&n) {
                r.forget_announced();
            }
            self.announce_contact(&n, out);
        }
    }

    /// What a state change means for staff: the contact's presence, who hears that the chat
    /// was taken, and offers when a chat waits again.
    pub(super) fn after_state_changes(&mut self, now: Timestamp, out: &mut Effects) {
        let mut waits_again = false;
        for name in out.take_changed() {
            self.rooms.note_handler(&name);
            self.roster_admit_room(now, &name, out);
            self.announce_contact(&name, out);
            let Some(room) = self.rooms.get_mut(&name) else {
                // Closed and gone: a place under someone's cap is free.
                waits_again = true;
                continue;
            };
            match room.state() {
                SessionState::Chatting => {
                    if let Some(ms) = room.first_answered(now) {
                        self.first_responses.record(name.site(), ms);
                    }
                    let Some(room) = self.rooms.get_mut(&name) else {
                        continue;
                    };
                    let told = room.take_offered_for_handled();
                    let nick = room
                        .staff_present()
                        .map(|o| o.nick.clone())
                        .unwrap_or_default();
                    let id = room.session_id();
                    for s in told {
                        self.desk_says(&s, &format!("#{id} is now handled by {nick}."), out);
                    }
                }
                SessionState::Active if room.waits_unoffered() => {
                    // Given back: offered to everyone but the one who gave it back.
                    if let Some(last) = room.last_staff().cloned() {
                        room.pass(&last);
                    }
                    let loads = self.rooms.loads();
                    self.route(now, &name, &loads, out);
                }
                SessionState::Closed => waits_again = true,
                _ => {}
            }
        }
        if waits_again {
            self.route_waiting(now, out);
        }
    }

    // ---- one-to-one from staff ------------------------------------------------------------

    /// A `type='chat'` (or normal) message to a visitor contact: a staff member answering from
    /// their roster. The first one claims the chat.
    pub(super) fn handle_chat_to_room(
        &mut self,
        now: Timestamp,
        name: RoomName,
        m: Message,
        out: &mut Effects,
    ) {
        let (Some(to), Some(from)) = (m.to.clone(), m.from.clone()) else {
            return;
        };
        let sender = match self.check_one_to_one(&name, &from, &m) {
            Ok(sender) => sender,
            Err(None) => return,
            Err(Some(r)) => return out.send(r.message(to, from, m.id)),
        };
        let bare = sender.to_bare();
        let Some(ctx) = self.config.ctx(now, &name) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&name) else {
            return;
        };
        if room.staff_present().is_none() {
            room.claim_direct(&ctx, &sender, out);
        }
        let Some(author) = room.staff_author(&bare) else {
            return;
        };
        let mut m = m;
        match Said::of(author, &mut m, Jid::from(sender)) {
            Ok(said) => self.post_message(now, &name, said, out),
            Err(author) => self.chat_state_to_room(now, &name, &author, &m.payloads, out),
        }
    }

    /// Who may write one-to-one to a visitor contact: staff of its site, from a full JID, to
    /// an open chat that nobody else has. `Err(None)`: nothing to do and nothing to say
    /// (typing before the chat is yours claims nothing).
    fn check_one_to_one(
        &self,
        name: &RoomName,
        from: &Jid,
        m: &Message,
    ) -> Result<FullJid, Option<Refusal>> {
        let bare = from.to_bare();
        let has_body = m
            .get_best_body(vec![])
            .is_some_and(|(_, b)| !b.trim().is_empty());
        if !has_body {
            return self.chat_state_sender(name, from).ok_or(None);
        }
        if !self.is_site_staff(&bare, name.site()) {
            return Err(Some(if self.staff_sites(&bare).is_empty() {
                Refusal::modify(
                    DefinedCondition::NotAcceptable,
                    "Join the room and send type='groupchat' messages to it.",
                )
            } else {
                Refusal::auth(
                    DefinedCondition::Forbidden,
                    "You are staff of another site and cannot reach this visitor.",
                )
            }));
        }
        let Ok(sender) = FullJid::try_from(from.clone()) else {
            return Err(Some(Refusal::modify(
                DefinedCondition::BadRequest,
                "Send from a full JID.",
            )));
        };
        let Some(room) = self.rooms.get(name) else {
            return Err(Some(Refusal::cancel(
                DefinedCondition::ItemNotFound,
                "This chat is closed: the visitor is no longer here.",
            )));
        };
        room.check_not_taken(&sender).map_err(Some)?;
        if room.handler().is_none() {
            if let Some(why) = self.at_cap(&bare, name.site()) {
                return Err(Some(Refusal::wait(
                    DefinedCondition::ResourceConstraint,
                    why,
                )));
            }
        }
        Ok(sender)
    }

    /// Chat states (typing notifications, `active`, `gone`) that clients send by themselves:
    /// relayed from the staff member who has the chat, and otherwise dropped without a word
    /// (an error for each would be noise in the client, after the chat closed or while someone
    /// else has it). They claim nothing.
    fn chat_state_sender(&self, name: &RoomName, from: &Jid) -> Option<FullJid> {
        let sender = FullJid::try_from(from.clone()).ok()?;
        let handler = self.rooms.get(name)?.handler()?;
        (handler == sender.to_bare()).then_some(sender)
    }

    /// The staff member takes the chat one-to-one (`!accept`): the visitor sees them join.
    pub(super) fn claim_direct(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        staff: &FullJid,
        out: &mut Effects,
    ) {
        let Some(ctx) = self.config.ctx(now, name) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(name) {
            room.claim_direct(&ctx, staff, out);
        }
    }

    // ---- closing ----------------------------------------------------------------------------

    /// `!finish` and `!cancel`: everyone is told, the room empties at once and the session
    /// is CLOSED. `before` is said to the visitor before the closing line.
    pub(super) fn close_chat(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        before: Option<&str>,
        out: &mut Effects,
    ) {
        let Some(ctx) = self.config.ctx(now, name) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        room.empty_for_close(&ctx, before, out);
        self.close_room(name, now, out);
    }

    /// One-to-one staff whose every resource has been offline longer than the grace period
    /// give the chat back: it waits (ACTIVE) and is offered again.
    pub(super) fn expire_direct_staff(&mut self, now: Timestamp, out: &mut Effects) {
        let gone: Vec<(RoomName, FullJid)> = self
            .rooms
            .values()
            .filter_map(|r| {
                let d = r.direct_staff()?;
                let since = self.staff.offline_since(&d.jid.to_bare())?;
                (now.millis().saturating_sub(since.millis()) >= REJOIN_GRACE_MS)
                    .then(|| (r.name().clone(), d.jid.clone()))
            })
            .collect();
        for (name, jid) in gone {
            tracing::info!(room = %name, staff = %jid, "one-to-one staff offline too long; the chat waits again");
            self.occupant_lost(now, &name, &jid, out);
        }
    }
}
