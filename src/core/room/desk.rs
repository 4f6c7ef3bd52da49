//! What staff see of a room without joining it: the visitor contact's presence in their
//! rosters, offers of the waiting chat, copies of the visitor's messages, and taking the chat
//! one-to-one.

use xmpp_parsers::jid::{BareJid, FullJid, Jid};
use xmpp_parsers::presence::Show;
use xmpp_parsers::stanza::Stanza;

use super::{Ctx, Occupant, Room};
use crate::core::availability::Availability;
use crate::core::metrics::Counted;
use crate::core::session::{Role, SessionState};
use crate::core::stanzas;
use crate::core::Effects;
use crate::store::StoreOp;

/// How much of the visitor's first message the ACTIVE status shows.
const STATUS_PREVIEW_CHARS: usize = 80;
pub const NOBODY_TEXT: &str =
    "No one is available right now. Your message has been saved and will be answered as soon as someone is.";

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

    /// After a reconnect nobody can be assumed to have seen the contact's presence.
    pub fn forget_announced(&mut self) {
        self.announced = None;
    }

    /// The chat is CHATTING now: the staff who were offered it (all but the one who took it)
    /// are to hear who did. Empty when nobody was offered it.
    pub fn take_offered_for_handled(&mut self) -> Vec<BareJid> {
        let handler = self.handler();
        std::mem::take(&mut self.offered)
            .into_iter()
            .filter(|s| Some(s) != handler.as_ref())
            .collect()
    }

    /// A waiting chat nobody has been offered yet (ACTIVE again, or just now).
    pub fn waits_unoffered(&self) -> bool {
        self.session.state == SessionState::Active && self.offered.is_empty()
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

    /// The desk's note that goes with an offer.
    pub fn offer_note(&self, site_name: &str) -> String {
        let id = self.session.id;
        format!(
            "Visitor {} on {site_name} wants to chat (#{id}). Reply to them, or send !accept {id}.",
            self.visitor_nick(),
        )
    }

    /// Where a visitor's new message goes besides the room: to the one-to-one staff member
    /// while CHATTING, to the available staff while ACTIVE (the first time with the desk's
    /// note), or, if nobody is available, a notice to the visitor (once).
    pub fn copies_of_visitor_message(
        &mut self,
        ctx: &Ctx,
        staff: &Availability,
        body: &str,
        kept: &[minidom::Element],
        out: &mut Effects,
    ) -> Vec<Stanza> {
        let from = Jid::from(self.jid.clone());
        match self.session.state {
            SessionState::Chatting => {
                let Some(d) = self.direct_staff() else {
                    return vec![];
                };
                let mut m = stanzas::chat(from, Jid::from(d.jid.to_bare()), body);
                m.payloads.extend(kept.iter().cloned());
                return vec![m.into()];
            }
            SessionState::Active => {}
            SessionState::Inactive | SessionState::Closed => return vec![],
        }
        // Only now: the offer's makings cost more than the reflection itself, and CHATTING is
        // the common case.
        let available = staff.available_of(&ctx.site.staff);
        let mut copies = Vec::new();
        let note = self.offer_note(&ctx.site.name);
        let desk = Jid::from(ctx.component.clone());
        for s in &available {
            copies.push(stanzas::chat(from.clone(), Jid::from(s.clone()), body).into());
            if self.offered.insert(s.clone()) {
                out.count(Counted::Offer(self.name().site().clone()));
                copies.push(stanzas::chat(desk.clone(), Jid::from(s.clone()), &note).into());
            }
        }
        if available.is_empty() && self.offered.is_empty() && !self.told_nobody {
            self.told_nobody = true;
            if let Some(v) = self.visitor() {
                let to = v.jid.clone();
                let sid = self.next_stanza_id();
                copies.push(stanzas::room_notice(&self.jid, to, NOBODY_TEXT, &sid).into());
            }
        }
        copies
    }

    /// The nick a staff member gets when they answer one-to-one: the local part of their JID.
    fn direct_nick(&self, staff: &BareJid) -> String {
        let base = staff
            .node()
            .map(|n| n.to_string())
            .unwrap_or_else(|| staff.domain().to_string());
        match self.nick_holder(&base) {
            Some(o) if o.jid.to_bare() != *staff => format!("{base} (staff)"),
            _ => base,
        }
    }

    /// The staff member takes the chat one-to-one: the visitor sees them join.
    pub fn claim_direct(&mut self, ctx: &Ctx, staff: &FullJid, out: &mut Effects) {
        let nick = self.direct_nick(&staff.to_bare());
        let occ = Occupant::direct(staff.clone(), nick.clone(), ctx.now);
        out.store(StoreOp::OccupantJoined(occ.record(self.session.id)));
        if let Some(me) = self.occupant_jid(&nick) {
            for o in self.joined() {
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

    /// The author of a staff member's one-to-one message: their joined occupant if they
    /// have one, else their one-to-one one.
    pub fn staff_author(&self, staff: &BareJid) -> Option<Occupant> {
        self.joined()
            .find(|o| o.jid.to_bare() == *staff)
            .or_else(|| self.direct_staff())
            .cloned()
    }
}
