//! Messages: groupchat to a room (stored, then reflected to everyone in it), bodiless
//! groupchat such as chat states (reflected only), bounces from occupants who are gone, and
//! polite refusals for everything a visitor room does not do.

use minidom::Element;
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza_error::{DefinedCondition, StanzaError};

use super::limits::{Rate, Rates};
use super::refusal::Refusal;
use super::room::post::Said;
use super::room::{Occupant, Room};
use super::stanzas;
use super::{Core, Effects};
use crate::address::{sender_full, RoomName, Target};
use crate::core::session::Role;
use crate::store::StoreOp;
use crate::time::Timestamp;

/// Error conditions that mean "this address is gone", after Prosody's mod_muc: a stanza to an
/// occupant bouncing with one of these removes the occupant.
const GONE_CONDITIONS: &[DefinedCondition] = &[
    DefinedCondition::InternalServerError,
    DefinedCondition::ItemNotFound,
    DefinedCondition::JidMalformed,
    DefinedCondition::RecipientUnavailable,
    DefinedCondition::RemoteServerNotFound,
    DefinedCondition::RemoteServerTimeout,
    DefinedCondition::ServiceUnavailable,
];

pub(super) fn means_gone(err: &StanzaError) -> bool {
    GONE_CONDITIONS.contains(&err.defined_condition)
        || matches!(
            err.defined_condition,
            DefinedCondition::Gone { .. } | DefinedCondition::Redirect { .. }
        )
}

impl Core {
    pub(super) fn handle_message(&mut self, now: Timestamp, m: Message, out: &mut Effects) {
        let (Some(to), Some(from)) = (m.to.clone(), m.from.clone()) else {
            return;
        };
        if m.type_ == MessageType::Error {
            self.handle_bounce(now, &to, &from, &m.payloads, out);
            return;
        }
        // Headlines are never answered, not even with an error (RFC 6121 §5.2.2).
        if m.type_ == MessageType::Headline {
            return;
        }
        let refusal = match Target::of(&to, &self.config.component) {
            Target::Room(name) if m.type_ == MessageType::Groupchat => {
                return self.handle_groupchat_to_room(now, name, m, out)
            }
            Target::Room(name) => return self.handle_chat_to_room(now, name, m, out),
            Target::Domain => return self.handle_message_to_desk(now, m, out),
            Target::Elsewhere => return,
            // A reply to the full JID the contact's presence came from (resource-locking
            // clients): the same as a reply to the contact.
            Target::Occupant(name, res)
                if res == stanzas::CONTACT_RESOURCE && m.type_ != MessageType::Groupchat =>
            {
                return self.handle_chat_to_room(now, name, m, out)
            }
            Target::Occupant(..) => Refusal::modify(
                DefinedCondition::NotAcceptable,
                "Private messages are not available in this room; write to the room instead.",
            ),
            Target::BadRoom(_) => Refusal::cancel(
                DefinedCondition::ItemNotFound,
                "No such room: visitor rooms are named <visitor>_<site>.",
            ),
        };
        out.send(refusal.message(to, from, m.id));
    }

    fn handle_groupchat_to_room(
        &mut self,
        now: Timestamp,
        name: RoomName,
        m: Message,
        out: &mut Effects,
    ) {
        let Some(sender) = sender_full(m.from.as_ref()) else {
            return;
        };
        let author = self
            .rooms
            .get(&name)
            .and_then(|r| r.joined_occupant(&sender))
            .cloned();
        let Some(author) = author else {
            let r = Refusal::modify(
                DefinedCondition::NotAcceptable,
                "You are not in this room; join it before sending messages.",
            );
            let room_jid = name.jid(&self.config.component);
            out.send(r.message(Jid::from(room_jid), Jid::from(sender), m.id));
            return;
        };
        let mut m = m;
        match Said::of(author, &mut m, Jid::from(sender.clone())) {
            Ok(said) => self.post_message(now, &name, said, out),
            Err(_) if !m.subjects.is_empty() => {
                let r = Refusal::auth(
                    DefinedCondition::Forbidden,
                    "Only the room sets its subject.",
                );
                let room_jid = name.jid(&self.config.component);
                out.send(r.message(Jid::from(room_jid), Jid::from(sender), m.id));
            }
            Err(author) => self.chat_state_to_room(now, &name, &author, &m.payloads, out),
        }
    }

    /// Typing notifications are relayed, not stored; a visitor cannot flood staff with them
    /// either: past a generous rate they are dropped without a word (they are best-effort by
    /// nature, and an error for each would be a flood of its own).
    pub(super) fn chat_state_to_room(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        author: &Occupant,
        payloads: &[Element],
        out: &mut Effects,
    ) {
        if author.role == Role::Visitor {
            let who = author.jid.to_bare();
            if !self
                .rates
                .take(Rate::ChatState, &who, Some(name), now, &self.config.limits)
            {
                if self.offenders.should_log(&who, now) {
                    tracing::warn!(from = %author.jid, room = %name, "visitor over the typing-notification rate; dropping them (logged once a minute per sender)");
                }
                return;
            }
        }
        if let Some(room) = self.rooms.get(name) {
            room.relay_chat_state(author, payloads, out);
        }
    }

    /// A message from an occupant (joined, or one-to-one staff): committed, then reflected to
    /// the joined occupants and copied one-to-one where staff need it. The sender hears if it
    /// could not be saved.
    pub(super) fn post_message(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        said: Said,
        out: &mut Effects,
    ) {
        let targets = if said.author.role == Role::Visitor {
            self.offer_targets(name)
        } else {
            Vec::new()
        };
        let Some(ctx) = self.config.ctx(now, name) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if let Err(r) = check_message(&ctx, name, &mut self.rates, &mut self.offenders, &said) {
            out.send(r.message(Jid::from(room.jid().clone()), said.reply_to, said.id));
            return;
        }
        if let Some(posted) = room.post(&ctx, &targets, said, out) {
            out.persist(
                StoreOp::AppendMessage(posted.record),
                posted.reflections,
                posted.or_else,
            );
        }
        if !targets.is_empty() {
            self.note_turn(name);
        }
    }

    /// An error came back from someone we sent a room stanza to. If it says they are gone and
    /// they are an occupant, they leave the room.
    fn handle_bounce(
        &mut self,
        now: Timestamp,
        to: &Jid,
        from: &Jid,
        payloads: &[Element],
        out: &mut Effects,
    ) {
        let name = match Target::of(to, &self.config.component) {
            Target::Room(n) | Target::Occupant(n, _) => n,
            _ => return,
        };
        let Ok(from) = FullJid::try_from(from.clone()) else {
            return;
        };
        let gone = payloads
            .iter()
            .find(|e| e.is("error", xmpp_parsers::ns::DEFAULT_NS))
            .and_then(|e| StanzaError::try_from(e.clone()).ok())
            .is_none_or(|e| means_gone(&e));
        if gone {
            self.occupant_lost(now, &name, &from, out);
        }
    }
}

/// A message must fit the body limit, and a visitor must be within their rate in this room
/// (which leaving and joining again does not refill).
fn check_message(
    ctx: &super::room::Ctx,
    room: &RoomName,
    rates: &mut Rates,
    offenders: &mut super::limits::Offenders,
    said: &Said,
) -> Result<(), Refusal> {
    let l = ctx.limits;
    if said.body.chars().count() > l.body_chars {
        return Err(Refusal::modify(
            DefinedCondition::NotAcceptable,
            format!("Messages are limited to {} characters.", l.body_chars),
        ));
    }
    let author = &said.author;
    if author.role != Role::Visitor {
        return Ok(());
    }
    let who = author.jid.to_bare();
    if !rates.take(Rate::Message, &who, Some(room), ctx.now, &l) {
        if offenders.should_log(&who, ctx.now) {
            tracing::warn!(from = %author.jid, room = %room, "visitor over the message rate; refused (logged once a minute per sender)");
        }
        return Err(Room::too_fast());
    }
    Ok(())
}
