//! Presence to rooms and occupants: the service's join rules (each its own small check; the
//! room's own follow in room/join.rs), leaving, presence updates, and occupants a room lost.

use xmpp_parsers::jid::{FullJid, Jid};
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza_error::DefinedCondition;

use super::limits::Rate;
use super::refusal::Refusal;
use super::room::join::{is_join, JoinDecision};
use super::room::leave::Departure;
use super::room::Arrival;
use super::stanzas::NS_MUC;
use super::{nick, Core, Effects};
use crate::address::{sender_full, RoomName, Target};
use crate::core::session::Role;
use crate::time::Timestamp;
use crate::token;

const NO_SUCH_ROOM: &str = "No such room: visitor rooms are named <visitor>_<site>.";

impl Core {
    pub(super) fn handle_presence(&mut self, now: Timestamp, p: Presence, out: &mut Effects) {
        let Some(to) = p.to.clone() else { return };
        let target = Target::of(&to, &self.config.component);
        if matches!(target, Target::Domain | Target::Room(_))
            && self.handle_presence_to_contact(now, &p, out)
        {
            return;
        }
        let Some(from) = sender_full(p.from.as_ref()) else {
            return;
        };
        let refusal = match target {
            Target::Occupant(room, nick) => {
                return self.handle_presence_to_occupant(
                    now,
                    room,
                    Arrival {
                        jid: from,
                        nick,
                        presence: p,
                    },
                    out,
                )
            }
            Target::Room(_) if p.type_ == PresenceType::None => Refusal::modify(
                DefinedCondition::JidMalformed,
                "Join with a nickname: send your presence to room@domain/YourName.",
            ),
            Target::BadRoom(_) if p.type_ == PresenceType::None => {
                Refusal::cancel(DefinedCondition::ItemNotFound, NO_SUCH_ROOM)
            }
            // Presence to the domain (staff availability) belongs to the staff side; errors and
            // subscription traffic to rooms need no answer.
            _ => return,
        };
        out.send(refusal.presence(to, Jid::from(from), p.id));
    }

    fn handle_presence_to_occupant(
        &mut self,
        now: Timestamp,
        name: RoomName,
        mut a: Arrival,
        out: &mut Effects,
    ) {
        match a.presence.type_ {
            PresenceType::None => {}
            PresenceType::Unavailable => return self.handle_leave(now, &name, &a, out),
            // A presence error from an occupant means our presences bounce: they are gone.
            PresenceType::Error => return self.occupant_lost(now, &name, &a.jid, out),
            _ => return,
        }
        cut_statuses(&mut a.presence, self.config.limits.status_chars);
        let current = self
            .rooms
            .get(&name)
            .and_then(|r| r.joined_occupant(&a.jid))
            .map(|o| (o.nick.clone(), o.role));
        let Some((nick, role)) = current else {
            return self.join_attempt(now, name, a, out);
        };
        // Presence updates, rejoins and nick changes count against one rate per address, which
        // leaving and joining again does not refill.
        if !self.within_rate(Rate::Presence, &a.jid, now) {
            return;
        }
        let Some(ctx) = self.config.ctx(now, &name) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(&name) else {
            return;
        };
        match nick == a.nick {
            true if is_join(&a.presence) => room.rejoin(&ctx, &a.jid, &a.presence, out),
            true => room.update_presence(&a.jid, &a.presence, out),
            false => self.change_nick(&name, role, a, out),
        }
    }

    /// A join by someone not yet in the room: staff come in freely, anyone else within the
    /// join rate.
    fn join_attempt(&mut self, now: Timestamp, name: RoomName, a: Arrival, out: &mut Effects) {
        let staff = self
            .config
            .sites
            .values()
            .any(|s| s.staff.contains(&a.jid.to_bare()));
        if !staff && !self.within_rate(Rate::Join, &a.jid, now) {
            let r = Refusal::wait(
                DefinedCondition::ResourceConstraint,
                "You are joining too often; wait a minute and try again.",
            );
            let room_jid = name.jid(&self.config.component);
            let about = room_jid
                .with_resource_str(&a.nick)
                .map(Jid::from)
                .unwrap_or_else(|_| Jid::from(room_jid));
            return out.send(r.presence(about, Jid::from(a.jid), a.presence.id));
        }
        self.handle_join(now, name, a, out)
    }

    /// Takes a token of `rate` for the sender; an offender is logged, not each offence.
    fn within_rate(&mut self, rate: Rate, from: &FullJid, now: Timestamp) -> bool {
        let who = from.to_bare();
        if self.rates.take(rate, &who, None, now, &self.config.limits) {
            return true;
        }
        if self.offenders.should_log(&who, now) {
            tracing::warn!(from = %from, rate = ?rate, "over a rate; dropped or refused (logged once a minute per sender)");
        }
        false
    }

    /// XEP-0045 §7.6: the same rules for the new nick as for a join's, then the room's.
    fn change_nick(&mut self, name: &RoomName, role: Role, a: Arrival, out: &mut Effects) {
        let mut result = check_nick(&a.nick, self.config.limits.nick_chars);
        if role == Role::Visitor && result.is_ok() {
            result = self.check_not_a_staff_name(name, &a.nick);
        }
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if let Err(r) = result.and_then(|()| room.change_nick(&a.jid, &a.nick, &a.presence, out)) {
            out.send(r.presence(room.about(&a.nick), Jid::from(a.jid), a.presence.id));
        }
    }

    // ---- joining ---------------------------------------------------------------------------

    pub(super) fn handle_join(
        &mut self,
        now: Timestamp,
        name: RoomName,
        a: Arrival,
        out: &mut Effects,
    ) {
        let decision = self.decide_join(now, &name, &a);
        let joining = (!matches!(decision, JoinDecision::Refuse(_))).then(|| a.jid.clone());
        self.join_as_decided(now, &name, a, decision, out);
        if let Some(jid) = joining.filter(|_| self.rooms.get(&name).is_some()) {
            self.rooms.note_join(&jid, &name);
        }
    }

    fn join_as_decided(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        a: Arrival,
        decision: JoinDecision,
        out: &mut Effects,
    ) {
        match decision {
            JoinDecision::Refuse(r) => {
                tracing::debug!(room = %name, jid = %a.jid, reason = %r.text, "join refused");
                let room_jid = name.jid(&self.config.component);
                let about = room_jid
                    .with_resource_str(&a.nick)
                    .map(Jid::from)
                    .unwrap_or_else(|_| Jid::from(room_jid));
                out.send(r.presence(about, Jid::from(a.jid), a.presence.id));
            }
            JoinDecision::Wait => self.defer_join(now, name, a, out),
            JoinDecision::Replace(old) => {
                self.pings.forget_jid(&old);
                let details = self.visitor_details(now, name, &a.presence);
                let Some(ctx) = self.config.ctx(now, name) else {
                    return;
                };
                if let Some(room) = self.rooms.get_mut(name) {
                    room.replace_visitor(&old, out);
                    room.admit(&ctx, a, Role::Visitor, false, out);
                    room.note_details(details, out);
                }
            }
            JoinDecision::Admit { role, created } => {
                let details =
                    (role == Role::Visitor).then(|| self.visitor_details(now, name, &a.presence));
                let Some(ctx) = self.config.ctx(now, name) else {
                    return;
                };
                let room = if created {
                    self.rooms.open(name, ctx.component, &a.jid, now)
                } else {
                    match self.rooms.get_mut(name) {
                        Some(room) => room,
                        None => return,
                    }
                };
                room.admit(&ctx, a, role, created, out);
                if let Some(d) = details {
                    room.note_details(d, out);
                }
                if created {
                    self.roster_admit_room(now, name, out);
                }
            }
        }
    }

    /// The join rules, in order. Each answers only its own question; the room's own come last.
    fn decide_join(&self, now: Timestamp, name: &RoomName, a: &Arrival) -> JoinDecision {
        match self.check_service_rules(now, name, a) {
            Err(r) => JoinDecision::Refuse(r),
            Ok(role) => match self.rooms.get(name) {
                Some(room) => room.decide_join(role, &a.nick, &a.jid, self.site_uses_tokens(name)),
                None if role == Role::Visitor => match self.check_capacity(name) {
                    Ok(()) => JoinDecision::Admit {
                        role,
                        created: true,
                    },
                    Err(r) => JoinDecision::Refuse(r),
                },
                None => JoinDecision::Refuse(Refusal::cancel(
                    DefinedCondition::ItemNotFound,
                    "There is no open chat in this room: the visitor is not here.",
                )),
            },
        }
    }

    /// The service's rules, before the room's: who this is, and whether they may join at all.
    fn check_service_rules(
        &self,
        now: Timestamp,
        name: &RoomName,
        a: &Arrival,
    ) -> Result<Role, Refusal> {
        let role = self.check_site_and_role(name, &a.jid)?;
        check_nick(&a.nick, self.config.limits.nick_chars)?;
        if role == Role::Visitor {
            self.check_token(now, name, &a.presence)?;
            self.check_not_a_staff_name(name, &a.nick)?;
            self.check_rooms_per_visitor(name, &a.jid)?;
        }
        Ok(role)
    }

    /// The site must be configured; staff of this site are staff, staff of another site are
    /// refused, and anyone else is the visitor.
    fn check_site_and_role(&self, name: &RoomName, from: &FullJid) -> Result<Role, Refusal> {
        let Some(site) = self.config.sites.get(name.site()) else {
            return Err(Refusal::cancel(
                DefinedCondition::ItemNotFound,
                format!("There is no site \"{}\" on this service.", name.site()),
            ));
        };
        let bare = from.to_bare();
        if site.staff.contains(&bare) {
            Ok(Role::Staff)
        } else if self.config.staff_elsewhere(&bare, name.site()) {
            Err(Refusal::auth(
                DefinedCondition::Forbidden,
                "You are staff of another site and cannot join this site's rooms.",
            ))
        } else {
            Ok(Role::Visitor)
        }
    }

    /// One visitor address may be in a few rooms at once, not in thousands.
    fn check_rooms_per_visitor(&self, name: &RoomName, from: &FullJid) -> Result<(), Refusal> {
        // Rooms it waits to join count too.
        let inside = self.rooms.joined_elsewhere(from, name);
        if inside >= self.config.limits.rooms_per_visitor {
            return Err(Refusal::wait(
                DefinedCondition::ResourceConstraint,
                format!("You are already in {inside} chats; leave one before opening another."),
            ));
        }
        Ok(())
    }

    /// A new session must fit in the service's and the site's share.
    fn check_capacity(&self, name: &RoomName) -> Result<(), Refusal> {
        let l = self.config.limits;
        if self.rooms.len() >= l.sessions || self.rooms.on_site(name.site()) >= l.sessions_per_site
        {
            return Err(Refusal::wait(
                DefinedCondition::ResourceConstraint,
                "The chat service is busy right now; please try again in a few minutes.",
            ));
        }
        Ok(())
    }

    /// Parks a join by a second would-be visitor and pings the one the room is bound to.
    fn defer_join(&mut self, now: Timestamp, name: &RoomName, a: Arrival, out: &mut Effects) {
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        match room.defer_join(a) {
            Ok(Some(bound)) => self.ping_occupant(now, name, &bound, out),
            Ok(None) => {}
            Err((r, a)) => {
                out.send(r.presence(room.about(&a.nick), Jid::from(a.jid), a.presence.id))
            }
        }
    }

    // ---- leaving ---------------------------------------------------------------------------

    fn handle_leave(&mut self, now: Timestamp, name: &RoomName, a: &Arrival, out: &mut Effects) {
        let Some(ctx) = self.config.ctx(now, name) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let visitor = room
            .joined_occupant(&a.jid)
            .filter(|o| o.role == Role::Visitor);
        if let Some(v) = visitor.filter(|_| super::widget::ends_chat(&a.presence)) {
            let text = format!("{} ended the chat.", v.nick);
            tracing::info!(room = %name, "the visitor ended the chat");
            return self.close_chat(now, name, Some(&text), out);
        }
        let departed = room.leave(&ctx, &a.jid, &a.presence, out);
        self.rooms.note_leave(&a.jid, name);
        if let Some(d) = departed {
            self.after_departure(now, name, d, out);
        }
    }

    /// An occupant whose client is gone without saying so (bounced stanzas, failed ping).
    pub(super) fn occupant_lost(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        jid: &FullJid,
        out: &mut Effects,
    ) {
        let Some(ctx) = self.config.ctx(now, name) else {
            return;
        };
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        if let Some(d) = room.lose(&ctx, jid, out) {
            self.after_departure(now, name, d, out);
        }
    }

    /// A visitor who reloaded the page was waiting for exactly this departure: their join goes
    /// in first, then the room settles.
    fn after_departure(
        &mut self,
        now: Timestamp,
        name: &RoomName,
        mut d: Departure,
        out: &mut Effects,
    ) {
        for a in std::mem::take(&mut d.waiting) {
            self.handle_join(now, name.clone(), a, out);
        }
        let Some(ctx) = self.config.ctx(now, name) else {
            return;
        };
        if let Some(room) = self.rooms.get_mut(name) {
            room.settle_after(&ctx, &d, out);
        }
    }
}

/// A status text others see is cut to `max` characters.
fn cut_statuses(p: &mut Presence, max: usize) {
    for text in p.statuses.values_mut() {
        if text.chars().count() > max {
            *text = text.chars().take(max).collect();
        }
    }
}

fn check_nick(nick: &str, max_chars: usize) -> Result<(), Refusal> {
    // `room/frontdesk` is where the visitor contact's presence comes from (see stanzas).
    if nick::fold(nick) == nick::fold(super::stanzas::CONTACT_RESOURCE) {
        return Err(Refusal::cancel(
            DefinedCondition::Conflict,
            "That nickname is reserved; please choose another.",
        ));
    }
    nick::check(nick, max_chars).map_err(|e| {
        let cond = match e {
            nick::NickError::Empty => DefinedCondition::JidMalformed,
            _ => DefinedCondition::NotAcceptable,
        };
        Refusal::modify(cond, e.text())
    })
}

impl Core {
    fn site_uses_tokens(&self, name: &RoomName) -> bool {
        self.config
            .sites
            .get(name.site())
            .is_some_and(|s| s.token_secret.is_some())
    }
    /// On a site with a `token_secret`, a visitor's join carries a token for exactly this
    /// visitor id and site in the MUC `<password>`.
    fn check_token(
        &self,
        now: Timestamp,
        name: &RoomName,
        p: &Presence,
    ) -> Result<token::Details, Refusal> {
        let Some(secret) = self
            .config
            .sites
            .get(name.site())
            .and_then(|s| s.token_secret.as_ref())
        else {
            return Ok(token::Details::default());
        };
        let password = p
            .payloads
            .iter()
            .find(|e| e.is("x", NS_MUC))
            .and_then(|x| x.get_child("password", NS_MUC))
            .map(|e| e.text());
        token::verify(
            secret,
            name.visitor(),
            name.site().as_str(),
            password.as_deref(),
            now.millis().div_euclid(1000),
        )
        .map_err(|e| {
            let text = match e {
                token::TokenError::Missing => {
                    "This chat needs a sign-in token from the website; reload the page."
                }
                token::TokenError::Expired => {
                    "Your sign-in token has expired; reload the page to get a new one."
                }
                token::TokenError::Malformed | token::TokenError::BadSignature => {
                    "Your sign-in token is not valid for this chat; reload the page."
                }
                token::TokenError::Details => {
                    "Your sign-in token's visitor details are not valid (the website's fault); reload the page."
                }
            };
            Refusal::auth(DefinedCondition::NotAuthorized, text)
        })
    }

    /// What an admitted visitor's join says of them: the token's signed details (the token
    /// was checked already) and the widget's `<visitor/>` element.
    fn visitor_details(
        &self,
        now: Timestamp,
        name: &RoomName,
        p: &Presence,
    ) -> super::details::VisitorDetails {
        let signed = self.check_token(now, name, p).unwrap_or_default();
        let asked = self
            .config
            .sites
            .get(name.site())
            .map_or(&[][..], |s| &s.desk.prechat[..]);
        super::details::VisitorDetails::from_join(&signed, p, asked)
    }

    /// A visitor may not take a staff member's account name (the nick staff get when they
    /// answer one-to-one), in any case or width.
    fn check_not_a_staff_name(&self, name: &RoomName, nick: &str) -> Result<(), Refusal> {
        let taken = self
            .staff_nicks
            .get(name.site())
            .is_some_and(|nicks| nicks.contains(&nick::fold(nick)));
        if taken {
            return Err(Refusal::cancel(
                DefinedCondition::Conflict,
                "That nickname belongs to a member of staff; please choose another.",
            ));
        }
        Ok(())
    }
}
