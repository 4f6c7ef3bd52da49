//! Messages: groupchat to a room (stored, then reflected to everyone in it), bodiless
//! groupchat such as chat states (reflected only), bounces from occupants who are gone, and
//! polite refusals for everything a visitor room does not do.

use minidom::Element;
use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::message::{Message, MessageType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::presence::occupant_jid;
use super::room::{HistoryItem, Occupant};
use super::stanzas::{self, NS_CHATSTATES, NS_SID};
use super::{Core, OrElse, Out};
use crate::address::{sender_full, RoomName, Target};
use crate::store::{MessageRow, Role, StoreOp};
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

/// The payloads a reflected message keeps: chat states and the sender's origin-id. Anything
/// else (a forged `<stanza-id>` or `<delay>`, XHTML, unknown extensions) is dropped.
fn kept_payloads(payloads: &[Element]) -> Vec<Element> {
    payloads
        .iter()
        .filter(|e| e.ns() == NS_CHATSTATES || (e.ns() == NS_SID && e.name() == "origin-id"))
        .cloned()
        .collect()
}

impl Core {
    pub(super) fn handle_message(&mut self, now: Timestamp, m: Message, out: &mut Out) {
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
        let refuse = |cond: DefinedCondition, t: ErrorType, text: &str| {
            stanzas::message_error(
                to.clone(),
                from.clone(),
                m.id.clone(),
                stanzas::error(t, cond, text),
            )
        };
        match Target::of(&to, &self.config.component) {
            Target::Room(name) if m.type_ == MessageType::Groupchat => {
                self.handle_groupchat_to_room(now, name, m, out)
            }
            Target::Room(name) => self.handle_chat_to_room(now, name, m, out),
            Target::Occupant(..) => out.send(refuse(
                DefinedCondition::NotAcceptable,
                ErrorType::Modify,
                "Private messages are not available in this room; write to the room instead.",
            )),
            Target::BadRoom(_) => out.send(refuse(
                DefinedCondition::ItemNotFound,
                ErrorType::Cancel,
                "No such room: visitor rooms are named <visitor>_<site>.",
            )),
            Target::Domain => self.handle_message_to_desk(now, m, out),
            Target::Elsewhere => {}
        }
    }

    fn handle_groupchat_to_room(
        &mut self,
        now: Timestamp,
        name: RoomName,
        m: Message,
        out: &mut Out,
    ) {
        // The room's own address when it exists: formatting it from the name cost ~3,000
        // instructions per message.
        let room_jid = match self.rooms.get(&name) {
            Some(room) => Jid::from(room.jid.clone()),
            None => Jid::from(name.jid(&self.config.component)),
        };
        let Some(sender) = sender_full(m.from.as_ref()) else {
            return;
        };
        let not_here = || {
            stanzas::message_error(
                room_jid.clone(),
                Jid::from(sender.clone()),
                m.id.clone(),
                stanzas::error(
                    ErrorType::Modify,
                    DefinedCondition::NotAcceptable,
                    "You are not in this room; join it before sending messages.",
                ),
            )
        };
        let Some(room) = self.rooms.get_mut(&name) else {
            out.send(not_here());
            return;
        };
        let Some(occ) = room.joined().find(|o| o.jid == sender).cloned() else {
            out.send(not_here());
            return;
        };
        let body = m
            .get_best_body(vec![])
            .filter(|(_, b)| !b.trim().is_empty())
            .map(|(l, b)| (l, b.clone()));
        let Some((lang, body)) = body else {
            if !m.subjects.is_empty() {
                out.send(stanzas::message_error(
                    room_jid,
                    Jid::from(sender),
                    m.id,
                    stanzas::error(
                        ErrorType::Auth,
                        DefinedCondition::Forbidden,
                        "Only the room sets its subject.",
                    ),
                ));
                return;
            }
            // Typing notifications are relayed, not stored; a visitor cannot flood staff with
            // them either: past a generous rate they are dropped without a word (they are
            // best-effort by nature, and an error for each would be a flood of its own).
            if occ.role == Role::Visitor {
                let limits = self.config.limits;
                let Some(o) = self
                    .rooms
                    .get_mut(&name)
                    .and_then(|r| r.occupant_mut(&occ.jid))
                else {
                    return;
                };
                if !o.typing.take(
                    now,
                    limits.messages_per_minute.saturating_mul(3),
                    limits.message_burst.saturating_mul(3),
                ) {
                    if self.offenders.should_log(&occ.jid.to_bare(), now) {
                        tracing::warn!(from = %occ.jid, room = %name, "visitor over the typing-notification rate; dropping them (logged once a minute per sender)");
                    }
                    return;
                }
            }
            self.relay_chat_state(&name, &occ, &m.payloads, out);
            return;
        };
        self.post_message(
            now,
            &name,
            occ,
            body,
            lang,
            m.id.clone(),
            &m.payloads,
            Jid::from(sender),
            out,
        );
    }

    /// Chat states and the like from `author`: reflected to the others, not stored. A
    /// one-to-one staff member gets the visitor's as `type='chat'`.
    pub(super) fn relay_chat_state(
        &mut self,
        name: &RoomName,
        author: &Occupant,
        payloads: &[Element],
        out: &mut Out,
    ) {
        let kept = kept_payloads(payloads);
        let Some(room) = self.rooms.get(name) else {
            return;
        };
        let Some(from_nick) = occupant_jid(&room.jid, &author.nick) else {
            return;
        };
        if kept.is_empty() {
            return;
        }
        for o in room.joined().filter(|o| o.jid != author.jid) {
            out.send(stanzas::groupchat_bare(
                from_nick.clone(),
                o.jid.clone(),
                None,
                kept.clone(),
            ));
        }
        if let Some(d) = room.direct_staff().filter(|d| d.jid != author.jid) {
            let mut m = stanzas::chat(Jid::from(room.jid.clone()), Jid::from(d.jid.to_bare()), "");
            m.payloads = kept;
            out.send(m);
        }
    }

    /// A message from an occupant (joined, or one-to-one staff): committed, then reflected to
    /// the joined occupants and copied one-to-one where staff need it. `reply_to` hears if it
    /// could not be saved.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn post_message(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        occ: Occupant,
        body: String,
        lang: xmpp_parsers::message::Lang,
        id: Option<xmpp_parsers::message::Id>,
        payloads: &[Element],
        reply_to: Jid,
        out: &mut Out,
    ) {
        let room_jid = match self.rooms.get(name) {
            Some(room) => Jid::from(room.jid.clone()),
            None => Jid::from(name.jid(&self.config.component)),
        };
        let max = self.config.limits.body_chars;
        if body.chars().count() > max {
            out.send(stanzas::message_error(
                room_jid,
                reply_to,
                id,
                stanzas::error(
                    ErrorType::Modify,
                    DefinedCondition::NotAcceptable,
                    &format!("Messages are limited to {max} characters."),
                ),
            ));
            return;
        }
        let limits = self.config.limits;
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        // Visitors write at a bounded rate (a token bucket per visitor address and room).
        if occ.role == Role::Visitor {
            let Some(o) = room.occupant_mut(&occ.jid) else {
                return;
            };
            if !o
                .bucket
                .take(now, limits.messages_per_minute, limits.message_burst)
            {
                let who = occ.jid.to_bare();
                if self.offenders.should_log(&who, now) {
                    tracing::warn!(from = %occ.jid, room = %name, "visitor over the message rate; refused (logged once a minute per sender)");
                }
                out.send(stanzas::message_error(
                    room_jid,
                    reply_to,
                    id,
                    stanzas::error(
                        ErrorType::Wait,
                        DefinedCondition::ResourceConstraint,
                        "You are sending messages too fast; wait a moment and send it again.",
                    ),
                ));
                return;
            }
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some(from_nick) = occupant_jid(&room.jid, &occ.nick) else {
            return;
        };
        let stanza_id = room.next_stanza_id();
        if occ.role == Role::Visitor {
            room.visitor_wrote = true;
            if room.first_message.is_none() {
                room.first_message = Some(body.clone());
            }
        }
        let state = room.derived_state();
        if room.set_state(state, now) {
            tracing::info!(session = room.session.id, room = %room.jid, state = %room.session.state, "state changed");
            Self::write_session(room, out);
        }
        let kept = kept_payloads(payloads);
        let mut reflections: Vec<Stanza> = room
            .joined()
            .filter(|o| !(occ.direct && o.jid.to_bare() == occ.jid.to_bare()))
            .map(|o| {
                stanzas::groupchat_text(stanzas::GroupchatText {
                    from: from_nick.clone(),
                    to: o.jid.clone(),
                    id: id.clone(),
                    body: &body,
                    lang: lang.clone(),
                    stanza_id: &stanza_id,
                    room: &room.jid,
                    kept: kept.clone(),
                    delayed: None,
                })
                .into()
            })
            .collect();
        let failed = OrElse::MessageNotSaved {
            room: room_jid,
            to: reply_to,
            id: id.clone(),
        };
        tracing::debug!(session = room.session.id, room = %room.jid, role = occ.role.as_str(), stanza_id = %stanza_id, "message");
        tracing::trace!(body = %body, "message body");
        room.remember(HistoryItem {
            at: now,
            nick: occ.nick.clone(),
            role: occ.role,
            from: occ.jid.clone(),
            body: body.clone(),
            lang,
            id: id.clone(),
            stanza_id: stanza_id.clone(),
        });
        let row = MessageRow {
            session_id: room.session.id,
            at: now,
            role: occ.role,
            from_jid: occ.jid.to_string(),
            nick: occ.nick,
            body: body.clone(),
            stanza_id,
            origin_id: id.map(|i| i.0),
        };
        if occ.role == Role::Visitor {
            reflections.extend(self.copies_of_visitor_message(name, &body, &kept));
        }
        out.persist(StoreOp::AppendMessage(row), reflections, failed);
    }

    /// An error came back from someone we sent a room stanza to. If it says they are gone and
    /// they are an occupant, they leave the room.
    fn handle_bounce(
        &mut self,
        now: Timestamp,
        to: &Jid,
        from: &Jid,
        payloads: &[Element],
        out: &mut Out,
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
