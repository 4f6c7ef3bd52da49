//! Leaving a room: on purpose, or lost (bounced stanzas, failed pings); what a departure does
//! to the session; and emptying the room when a chat is closed.

use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::presence::Presence;

use super::{Arrival, Ctx, Emptied, Occupant, Room};
use crate::core::session::{MessageRecord, Role};
use crate::core::stanzas::{self, Shown};
use crate::core::Effects;
use crate::store::StoreOp;

/// The line every occupant gets when a chat is closed.
pub const CLOSED_TEXT: &str = "The chat is now closed.";

/// Someone left. The joins that waited on them (a visitor reloading the page) go in now, and
/// then [`Room::settle_after`] says what the departure means for the session.
pub struct Departure {
    pub gone: Occupant,
    pub voluntary: bool,
    pub waiting: Vec<Arrival>,
}

impl Room {
    /// `from` sent unavailable (`p`, whose status text the others see). A join that was
    /// waiting is simply withdrawn.
    pub fn leave(
        &mut self,
        ctx: &Ctx,
        from: &FullJid,
        p: &Presence,
        out: &mut Effects,
    ) -> Option<Departure> {
        let waiting = self.pending_joins.len();
        self.pending_joins.retain(|j| &j.jid != from);
        if self.pending_joins.len() != waiting {
            return None;
        }
        self.joined_occupant(from)?;
        let mut gone = self.remove_any(from)?;
        gone.shown = Shown::of(p);
        announce_departure(self, &gone, true, out);
        Some(self.departed(ctx, gone, true, out))
    }

    /// An occupant whose client is gone without saying so (bounced stanzas, failed ping,
    /// one-to-one staff offline too long).
    pub fn lose(&mut self, ctx: &Ctx, jid: &FullJid, out: &mut Effects) -> Option<Departure> {
        let gone = self.remove_any(jid)?;
        tracing::info!(session = self.session.id, room = %self.jid, jid = %jid, "occupant is gone (lost link)");
        announce_departure(self, &gone, false, out);
        Some(self.departed(ctx, gone, false, out))
    }

    fn departed(
        &mut self,
        ctx: &Ctx,
        gone: Occupant,
        voluntary: bool,
        out: &mut Effects,
    ) -> Departure {
        out.store(StoreOp::OccupantLeft {
            session_id: self.session.id,
            jid: gone.jid.clone(),
        });
        tracing::info!(session = self.session.id, room = %self.jid, jid = %gone.jid, role = gone.role.as_str(), "left");
        let waiting = if gone.role == Role::Visitor {
            std::mem::take(&mut self.pending_joins)
        } else {
            Vec::new()
        };
        if gone.role == Role::Staff {
            self.system_line(
                ctx.component,
                ctx.now,
                format!("{} left the chat", gone.nick),
                out,
            );
        }
        Departure {
            gone,
            voluntary,
            waiting,
        }
    }

    /// What a departure does to the session, once the joins that waited for it are in. An
    /// emptied room keeps its session as it is until [`Emptied::closes_at`]: briefly when
    /// people left, longer when the link was lost.
    pub fn settle_after(&mut self, ctx: &Ctx, d: &Departure, out: &mut Effects) {
        // A one-to-one staff member cannot see the room: tell them the visitor went (they may
        // come back, e.g. after a reload; the chat stays theirs until they finish it).
        if d.gone.role == Role::Visitor && self.visitor().is_none() {
            if let Some(staff) = self.direct_staff() {
                let id = self.session.id;
                let text = format!(
                    "{} left the chat (#{id}). They may come back; send !finish {id} to close it.",
                    d.gone.nick
                );
                out.send(stanzas::chat(
                    Jid::from(self.jid.clone()),
                    Jid::from(staff.jid.to_bare()),
                    &text,
                ));
                self.told_left = true;
            }
        }
        if self.occupants.is_empty() {
            self.emptied = Some(if d.voluntary {
                Emptied::Left(ctx.now)
            } else {
                Emptied::Lost(ctx.now)
            });
        } else {
            self.settle_state(ctx.now, out);
        }
    }

    /// `!finish` and `!cancel`: everyone is told, and the room empties at once. `before` is
    /// said to the visitor before the closing line. The caller then closes the session.
    pub fn empty_for_close(&mut self, ctx: &Ctx, before: Option<&str>, out: &mut Effects) {
        for line in before.into_iter().chain(std::iter::once(CLOSED_TEXT)) {
            self.say_to_all(ctx, line, out);
        }
        for o in self.joined() {
            for other in self.occupants.iter().filter(|x| x.jid != o.jid) {
                if let Some(oj) = self.occupant_jid(&other.nick) {
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
            if let Some(me) = self.occupant_jid(&o.nick) {
                out.send(stanzas::occupant_destroyed(me, o.jid.clone(), CLOSED_TEXT));
            }
        }
        for o in std::mem::take(&mut self.occupants) {
            out.store(StoreOp::OccupantLeft {
                session_id: self.session.id,
                jid: o.jid,
            });
        }
    }

    /// A line from the room to everyone in it (one-to-one staff as `type='chat'`), kept in the
    /// transcript.
    fn say_to_all(&mut self, ctx: &Ctx, line: &str, out: &mut Effects) {
        let sid = self.next_stanza_id();
        for o in self.joined() {
            out.send(stanzas::room_notice(&self.jid, o.jid.clone(), line, &sid));
        }
        if let Some(d) = self.direct_staff() {
            out.send(stanzas::chat(
                Jid::from(self.jid.clone()),
                Jid::from(d.jid.to_bare()),
                line,
            ));
        }
        out.store(StoreOp::AppendMessage(MessageRecord {
            session_id: self.session.id,
            at: ctx.now,
            role: Role::System,
            from_jid: Jid::from(ctx.component.clone()),
            nick: String::new(),
            body: line.to_string(),
            stanza_id: sid,
            origin_id: None,
        }));
    }

    /// Joins still waiting when the session closes are told to join again.
    pub fn refuse_pending_closed(&mut self, out: &mut Effects) {
        let r = crate::core::refusal::Refusal::wait(
            xmpp_parsers::stanza_error::DefinedCondition::ServiceUnavailable,
            "The chat closed; please join again.",
        );
        for pending in std::mem::take(&mut self.pending_joins) {
            out.send(r.presence(
                Jid::from(self.jid.clone()),
                Jid::from(pending.jid),
                pending.presence.id,
            ));
        }
    }
}

/// Tells everyone still in the room (and the leaver, when they left themselves) that an
/// occupant is gone. A lost occupant is announced with status 333.
pub fn announce_departure(room: &Room, gone: &Occupant, voluntary: bool, out: &mut Effects) {
    let Some(gone_jid) = room.occupant_jid(&gone.nick) else {
        return;
    };
    let codes: &[u16] = if voluntary { &[] } else { &[333] };
    // Someone who leaves says why in their own words; a lost occupant said nothing.
    let with_status = |mut p: xmpp_parsers::presence::Presence| {
        if voluntary {
            p.statuses = gone.shown.statuses.clone();
        }
        p
    };
    for o in room.joined() {
        out.send(with_status(stanzas::occupant_unavailable(
            gone_jid.clone(),
            o.jid.clone(),
            &gone.jid,
            o.role == Role::Staff,
            gone.role,
            codes,
        )));
    }
    if voluntary {
        out.send(with_status(stanzas::occupant_unavailable(
            gone_jid,
            gone.jid.clone(),
            &gone.jid,
            true,
            gone.role,
            &[110],
        )));
    }
}
