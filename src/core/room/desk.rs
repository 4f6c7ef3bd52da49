//! What staff see of a room without joining it: the visitor contact's presence in their
//! rosters, offers of the waiting chat, copies of the visitor's messages, and taking the chat
//! one-to-one.

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::presence::Show;
use xmpp_parsers::stanza::Stanza;

use super::{Ctx, Occupant, Room};
use crate::core::metrics::Counted;
use crate::core::session::{Role, SessionState};
use crate::core::stanzas;
use crate::core::Effects;
use crate::store::StoreOp;
use crate::time::Timestamp;

/// How much of the visitor's first message the ACTIVE status shows.
const STATUS_PREVIEW_CHARS: usize = 80;
pub const NOBODY_TEXT: &str =
    "No one is available right now. Your message has been saved and will be answered as soon as someone is.";

/// The closed-hours notice asks for an email address unless the visitor gave one.
pub const CLOSED_ASK_EMAIL: &str = "Leave your email address here and we will write back";
pub const CLOSED_HAVE_EMAIL: &str = "We will write back to the email address you gave";

impl Room {
    /// The visitor contact's roster presence for the session's state.
    pub fn contact_status(&self) -> (Option<Show>, String) {
        match self.session.state {
            SessionState::Inactive => (Some(Show::Away), "INACTIVE — browsing".to_string()),
            SessionState::Active => {
                let preview: String = crate::render::one_line(self.first_message().unwrap_or(""))
                    .chars()
                    .take(STATUS_PREVIEW_CHARS)
                    .collect();
                (Some(Show::Chat), format!("ACTIVE — {preview}"))
            }
            SessionState::Chatting => {
                let nick = self
                    .staff_present()
                    .map(|o| crate::render::one_line(&o.nick))
                    .unwrap_or_else(|| "staff".into());
                (Some(Show::Dnd), format!("CHATTING with {nick}"))
            }
            SessionState::Closed => (None, "CLOSED".to_string()),
        }
    }

    /// The contact presence if it changed since it was last announced (then it counts as
    /// announced).
    pub fn contact_status_to_announce(&mut self) -> Option<(Option<Show>, String)> {
        let (show, status) = self.contact_status();
        if self.announced.as_deref() == Some(status.as_str()) {
            return None;
        }
        self.announced = Some(status.clone());
        Some((show, status))
    }

    /// True the first time: the visitor contact is to go into staff rosters now.
    pub fn mark_rostered(&mut self) -> bool {
        !std::mem::replace(&mut self.rostered, true)
    }

    pub fn forget_rostered(&mut self) {
        self.rostered = false;
    }

    /// After a reconnect nobody can be assumed to have seen the contact's presence.
    pub fn forget_announced(&mut self) {
        self.announced = None;
    }

    /// The chat is CHATTING now: the staff who were offered it (all but the one who took it)
    /// are to hear who did. Empty when nobody was offered it. The routing starts over if the
    /// chat ever waits again.
    pub fn take_offered_for_handled(&mut self) -> Vec<BareJid> {
        let handler = self.handler();
        self.offer = None;
        self.passed.clear();
        self.announced_at = None;
        self.told_position = None;
        std::mem::take(&mut self.offered)
            .into_iter()
            .filter(|s| Some(s) != handler.as_ref())
            .collect()
    }

    /// A waiting chat nobody has been offered yet (ACTIVE again, or just now).
    pub fn waits_unoffered(&self) -> bool {
        self.session.state == SessionState::Active && self.offered.is_empty()
    }

    /// The one who holds the offer under one-at-a-time routing.
    pub fn offer_holder(&self) -> Option<&BareJid> {
        self.offer.as_ref().map(|(s, _)| s)
    }

    /// Has the offer been with its holder for `timeout_ms`?
    pub fn offer_ran_out(&self, now: Timestamp, timeout_ms: i64) -> bool {
        self.offer
            .as_ref()
            .is_some_and(|(_, since)| now.millis().saturating_sub(since.millis()) >= timeout_ms)
    }

    /// Was the chat last offered or announced at least `timeout_ms` ago?
    pub fn announced_before(&self, now: Timestamp, timeout_ms: i64) -> bool {
        self.announced_at
            .is_some_and(|t| now.millis().saturating_sub(t.millis()) >= timeout_ms)
    }

    /// `staff` gives up the offer (or it ran out): not offered again this round.
    pub fn pass(&mut self, staff: &BareJid) {
        self.passed.insert(staff.clone());
        if self.offer_holder() == Some(staff) {
            self.offer = None;
        }
    }

    pub fn has_passed(&self, staff: &BareJid) -> bool {
        self.passed.contains(staff)
    }

    /// Everyone had their turn: the next round may offer the chat to anyone again.
    pub fn new_round(&mut self) {
        self.passed.clear();
    }

    /// `staff` now holds the offer (one-at-a-time routing).
    pub fn hold_offer(&mut self, staff: &BareJid, now: Timestamp) {
        self.offer = Some((staff.clone(), now));
        self.announced_at = Some(now);
    }

    /// The chat was announced again to those who have it already.
    pub fn announced(&mut self, now: Timestamp) {
        self.announced_at = Some(now);
    }

    /// The visitor hears their `place` in line if it changed, they have waited long enough,
    /// and the last time was long enough ago.
    pub fn tell_position(
        &mut self,
        place: usize,
        usual_ms: Option<i64>,
        now: Timestamp,
        out: &mut Effects,
    ) {
        let every = crate::core::queue::POSITION_EVERY_MS;
        let since = |t: Timestamp| now.millis().saturating_sub(t.millis());
        if since(self.waiting_since()) < every {
            return;
        }
        if let Some((told, at)) = self.told_position {
            if told == place || since(at) < every {
                return;
            }
        }
        let Some(to) = self.visitor().map(|v| v.jid.clone()) else {
            return;
        };
        self.told_position = Some((place, now));
        let sid = self.next_stanza_id();
        let text = crate::core::queue::position_text(place, usual_ms);
        out.send(stanzas::room_notice(&self.jid, to, &text, &sid));
    }

    /// The first time a staff member takes the chat: how long the visitor waited for it.
    pub fn first_answered(&mut self, now: Timestamp) -> Option<i64> {
        if self.first_answer.is_some() || self.first_message().is_none() {
            return None;
        }
        self.first_answer = Some(now);
        Some(now.millis().saturating_sub(self.waiting_since().millis()))
    }

    /// The desk's reminder of a chat still waiting.
    pub fn reminder_note(&self, site_name: &str, now: Timestamp) -> String {
        let id = self.session.id;
        let mins = now.millis().saturating_sub(self.waiting_since().millis()) / 60_000;
        format!(
            "Still waiting ({mins} min): visitor {} on {site_name} (#{id}). Reply to them, or send !accept {id} (!pass {id} to leave it to others).",
            self.visitor_nick(),
        )
    }

    /// Offers the chat to `staff`: what the visitor wrote so far, from the contact, then the
    /// desk's `note`.
    pub fn offer_to(&mut self, desk: &Jid, staff: &BareJid, note: &str, out: &mut Effects) {
        if self.offered.insert(staff.clone()) {
            out.count(Counted::Offer(self.name().site().clone()));
        }
        let from = Jid::from(self.jid.clone());
        for h in self.visitor_lines() {
            out.send(stanzas::chat_delayed(
                from.clone(),
                Jid::from(staff.clone()),
                &h.body,
                h.at,
            ));
        }
        out.send(stanzas::chat(desk.clone(), Jid::from(staff.clone()), note));
    }

    /// The desk's note that goes with an offer (with what is known of the visitor, if
    /// anything).
    pub fn offer_note(&self, site_name: &str) -> String {
        let id = self.session.id;
        let note = format!(
            "Visitor {} on {site_name} wants to chat (#{id}). Reply to them, or send !accept {id}.",
            self.visitor_nick(),
        );
        match self.details.summary() {
            Some(s) => format!("{note}\n{s} (!info {id} for more)"),
            None => note,
        }
    }

    /// What the visitor's join said of them (token details, page, pre-chat answers): kept,
    /// and written, when it is new. Answers given before and not now stay.
    pub fn note_details(
        &mut self,
        details: crate::core::details::VisitorDetails,
        out: &mut Effects,
    ) {
        let details = details.rejoined(&self.details);
        if details.is_empty() || details == self.details {
            return;
        }
        out.store(StoreOp::SessionDetails {
            session_id: self.session.id,
            details: details.records(self.session.id),
        });
        self.details = details;
    }

    pub fn details(&self) -> &crate::core::details::VisitorDetails {
        &self.details
    }

    /// Where a visitor's new message goes besides the room: to the one-to-one staff member
    /// while CHATTING, to `targets` while ACTIVE (the staff the routing chose; the first time
    /// each with the desk's note), or, if there is nobody, a notice to the visitor (once).
    pub fn copies_of_visitor_message(
        &mut self,
        ctx: &Ctx,
        targets: &[BareJid],
        body: &str,
        kept: &[minidom::Element],
        stanza_id: &str,
        out: &mut Effects,
    ) -> Vec<Stanza> {
        let from = Jid::from(self.jid.clone());
        match self.session.state {
            SessionState::Chatting => {
                let Some(d) = self.direct_staff() else {
                    return vec![];
                };
                let mut m = stanzas::chat(from, Jid::from(d.jid.to_bare()), body);
                // The room's stanza-id, which the widget knows: a XEP-0333 marker from staff
                // names it (a visitor's own id could repeat and make clients drop a message).
                m.id = Some(xmpp_parsers::message::Id(stanza_id.to_string()));
                m.payloads.extend(kept.iter().cloned());
                return vec![m.into()];
            }
            SessionState::Active => {}
            SessionState::Inactive | SessionState::Closed => return vec![],
        }
        // Only now: the offer's makings cost more than the reflection itself, and CHATTING is
        // the common case.
        let mut copies = Vec::new();
        let note = self.offer_note(&ctx.site.name);
        let desk = Jid::from(ctx.component.clone());
        for s in targets {
            copies.push(stanzas::chat(from.clone(), Jid::from(s.clone()), body).into());
            if self.offered.insert(s.clone()) {
                out.count(Counted::Offer(self.name().site().clone()));
                copies.push(stanzas::chat(desk.clone(), Jid::from(s.clone()), &note).into());
                self.announced_at = Some(ctx.now);
            }
        }
        if ctx.site.desk.routing != crate::config::Routing::Broadcast && self.offer.is_none() {
            if let Some(first) = targets.first() {
                self.hold_offer(first, ctx.now);
            }
        }
        if let Some(text) = self.closed_text(ctx) {
            if let Some(to) = self.visitor().map(|v| v.jid.clone()) {
                let sid = self.next_stanza_id();
                copies.push(stanzas::room_notice(&self.jid, to, &text, &sid).into());
                // The closed notice says it all: no "nobody is available" as well.
                self.told_nobody = true;
            }
        }
        if targets.is_empty() && self.offered.is_empty() && !self.told_nobody {
            self.told_nobody = true;
            if let Some(v) = self.visitor() {
                let to = v.jid.clone();
                let sid = self.next_stanza_id();
                copies.push(stanzas::room_notice(&self.jid, to, NOBODY_TEXT, &sid).into());
            }
        }
        copies
    }

    /// Outside the site's hours, once per chat: when the desk opens, and to leave an email
    /// unless the visitor gave one (in the pre-chat form or the website's token).
    fn closed_text(&mut self, ctx: &Ctx) -> Option<String> {
        let hours = ctx.site.desk.hours.as_ref()?;
        if self.told_closed || hours.open_at(ctx.now) {
            return None;
        }
        self.told_closed = true;
        let when = hours
            .next_opening(ctx.now)
            .map(|w| format!(" and open again {w} ({} time)", hours.tz.name()))
            .unwrap_or_default();
        let email = if self.details.has_email() {
            CLOSED_HAVE_EMAIL
        } else {
            CLOSED_ASK_EMAIL
        };
        Some(format!(
            "We are closed right now{when}. {email}; if someone is around, they may answer sooner."
        ))
    }

    /// The nick a staff member gets when they answer one-to-one: their display name from the
    /// config, else the local part of their JID.
    fn direct_nick(&self, ctx: &Ctx, staff: &BareJid) -> String {
        let base = ctx
            .site
            .display_name(staff)
            .map(str::to_string)
            .or_else(|| staff.node().map(|n| n.to_string()))
            .unwrap_or_else(|| staff.domain().to_string());
        match self.nick_holder(&base) {
            Some(o) if o.jid.to_bare() != *staff => format!("{base} (staff)"),
            _ => base,
        }
    }

    /// The staff member takes the chat one-to-one: the visitor sees them join.
    pub fn claim_direct(&mut self, ctx: &Ctx, staff: &FullJid, out: &mut Effects) {
        let nick = self.direct_nick(ctx, &staff.to_bare());
        let occ = Occupant::direct(staff.clone(), nick.clone(), ctx.now);
        out.store(StoreOp::OccupantJoined(occ.record(self.session.id)));
        if let Some(me) = self.occupant_jid(&nick) {
            for o in self.joined() {
                let p = stanzas::occupant_presence(
                    me.clone(),
                    o.jid.clone(),
                    Role::Staff,
                    staff,
                    o.role == Role::Staff,
                    &occ.shown,
                    &[],
                );
                out.send(crate::core::widget::with_profile(p, ctx.site, &occ));
            }
        }
        self.occupants.push(occ);
        self.emptied = None;
        out.count(Counted::Claim(self.name().site().clone()));
        tracing::info!(session = self.session.id, room = %self.jid, staff = %staff, "chat taken one-to-one");
        if self.set_state(SessionState::Chatting, ctx.now) {
            self.write_session(out);
        }
        self.system_line(
            ctx.component,
            ctx.now,
            format!("{nick} joined the chat"),
            out,
        );
    }

    /// `!transfer`: the one-to-one staff member `from` hands the chat to `to` (a resource of
    /// another staff member), or with `to` empty gives it back to the queue. The visitor sees
    /// one leave and the other join.
    pub fn hand_over(
        &mut self,
        ctx: &Ctx,
        from: &FullJid,
        to: Option<&FullJid>,
        out: &mut Effects,
    ) {
        if let Some(gone) = self.remove_any(from) {
            super::leave::announce_departure(self, &gone, true, out);
            out.store(StoreOp::OccupantLeft {
                session_id: self.session.id,
                jid: gone.jid.clone(),
            });
            self.system_line(
                ctx.component,
                ctx.now,
                format!("{} left the chat", gone.nick),
                out,
            );
        }
        match to {
            Some(to) => self.claim_direct(ctx, to, out),
            None => self.settle_state(ctx.now, out),
        }
    }

    /// The author of a staff member's one-to-one message: their joined occupant if they
    /// have one, else their one-to-one one.
    pub fn staff_author(&self, staff: &BareJid) -> Option<Occupant> {
        self.joined()
            .find(|o| o.jid.to_bare() == *staff)
            .or_else(|| self.direct_staff())
            .cloned()
    }
}
