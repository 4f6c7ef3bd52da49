//! Stanzas over a limit: the shell's guard replaces a stanza that is too big, too deep or too
//! wide by a stand-in carrying `<limit-exceeded xmlns='urn:xmpp:frontdesk:limits:0'/>`; here it
//! is refused with `policy-violation` (never answering an error), and the offender is logged
//! once per interval, not once per stanza.

use std::collections::HashMap;

use xmpp_parsers::iq::Iq;
use xmpp_parsers::jid::BareJid;
use xmpp_parsers::message::MessageType;
use xmpp_parsers::presence::{Presence, Type as PresenceType};
use xmpp_parsers::stanza::Stanza;
use xmpp_parsers::stanza_error::DefinedCondition;

use super::refusal::Refusal;
use super::{Core, Effects};
use crate::time::Timestamp;

pub const NS_LIMITS: &str = "urn:xmpp:frontdesk:limits:0";
/// One log line per offender per this long.
pub const LOG_INTERVAL_MS: i64 = 60_000;
/// Offenders remembered for the log interval at most (older ones are forgotten first).
const LOG_MEMORY: usize = 10_000;

/// Log lines about offenders in all, per interval: many anonymous logins (each a new sender)
/// must not flood the log either. Past it, offences are counted and summed up once.
const LOG_LINES_PER_INTERVAL: u32 = 20;

/// When each offender was last logged, so a flood makes one line a minute per sender, and at
/// most [`LOG_LINES_PER_INTERVAL`] lines a minute in all.
#[derive(Debug, Default)]
pub struct Offenders {
    last: HashMap<BareJid, Timestamp>,
    window: Option<Timestamp>,
    lines: u32,
    suppressed: u64,
}

impl Offenders {
    /// True if this offence should be logged now.
    pub fn should_log(&mut self, who: &BareJid, now: Timestamp) -> bool {
        if let Some(t) = self.last.get(who) {
            if now.millis() - t.millis() < LOG_INTERVAL_MS {
                return false;
            }
        }
        if !self.within_budget(now) {
            return false;
        }
        if self.last.len() >= LOG_MEMORY {
            self.last
                .retain(|_, t| now.millis() - t.millis() < LOG_INTERVAL_MS);
            if self.last.len() >= LOG_MEMORY {
                // More distinct offenders in a minute than we remember: stay quiet rather
                // than let the memory of them grow without bound.
                return false;
            }
        }
        self.last.insert(who.clone(), now);
        true
    }

    /// One more line in this interval's budget? Opening a new interval sums up the last one's
    /// unlogged offences in one line.
    fn within_budget(&mut self, now: Timestamp) -> bool {
        let fresh = self
            .window
            .is_none_or(|w| now.millis().saturating_sub(w.millis()) >= LOG_INTERVAL_MS);
        if fresh {
            if self.suppressed > 0 {
                tracing::warn!(
                    offences = self.suppressed,
                    "more offences in the last minute than the log takes one by one; not logged each"
                );
            }
            self.window = Some(now);
            self.lines = 0;
            self.suppressed = 0;
        }
        if self.lines >= LOG_LINES_PER_INTERVAL {
            self.suppressed = self.suppressed.saturating_add(1);
            return false;
        }
        self.lines += 1;
        true
    }
}

/// What a rate limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rate {
    /// A visitor's messages in one room.
    Message,
    /// A visitor's chat states (typing notifications) in one room.
    ChatState,
    /// Presence updates from one address, in all rooms.
    Presence,
    /// Joins by one address (not staff), in all rooms.
    Join,
}

impl Rate {
    /// (per minute, burst) for this rate.
    fn of(self, l: &crate::config::Limits) -> (u32, u32) {
        match self {
            Rate::Message => (l.messages_per_minute, l.message_burst),
            Rate::ChatState => (
                l.messages_per_minute.saturating_mul(3),
                l.message_burst.saturating_mul(3),
            ),
            Rate::Presence => (l.presence_per_minute, l.presence_burst),
            Rate::Join => (l.joins_per_minute, l.join_burst),
        }
    }
}

/// A token bucket: full when new.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Bucket {
    /// Tokens used up (0 = full), so a new bucket needs no configuration.
    used: f64,
    last: Option<Timestamp>,
}

impl Bucket {
    fn refilled(&self, now: Timestamp, per_minute: u32) -> f64 {
        let refill = match self.last {
            Some(t) => (now.millis() - t.millis()).max(0) as f64 * f64::from(per_minute) / 60_000.0,
            None => 0.0,
        };
        (self.used - refill).max(0.0)
    }

    /// Takes one token if there is one.
    fn take(&mut self, now: Timestamp, per_minute: u32, burst: u32) -> bool {
        self.used = self.refilled(now, per_minute);
        self.last = Some(now);
        if self.used + 1.0 > f64::from(burst.max(1)) {
            return false;
        }
        self.used += 1.0;
        true
    }
}

/// Rate limits per sender (and per room where it says), kept apart from occupants so that
/// leaving and joining again does not refill them. Buckets that have refilled are forgotten.
#[derive(Debug, Default)]
pub struct Rates {
    buckets: std::collections::BTreeMap<(Rate, BareJid, Option<crate::address::RoomName>), Bucket>,
    pruned: Option<Timestamp>,
}

impl Rates {
    /// Takes a token from `who`'s bucket for `rate` (in `room`, for per-room rates).
    pub fn take(
        &mut self,
        rate: Rate,
        who: &BareJid,
        room: Option<&crate::address::RoomName>,
        now: Timestamp,
        limits: &crate::config::Limits,
    ) -> bool {
        let (per_minute, burst) = rate.of(limits);
        self.buckets
            .entry((rate, who.clone(), room.cloned()))
            .or_default()
            .take(now, per_minute, burst)
    }

    /// Forgets the buckets that are full again (about once a minute).
    pub fn prune(&mut self, now: Timestamp, limits: &crate::config::Limits) {
        if self
            .pruned
            .is_some_and(|t| now.millis().saturating_sub(t.millis()) < LOG_INTERVAL_MS)
        {
            return;
        }
        self.pruned = Some(now);
        self.buckets
            .retain(|(rate, _, _), b| b.refilled(now, rate.of(limits).0) > 0.0);
    }
}

/// The limit a stand-in says was exceeded, if this is one.
pub fn exceeded(s: &Stanza) -> Option<String> {
    let payloads = match s {
        Stanza::Message(m) => &m.payloads,
        Stanza::Presence(p) => &p.payloads,
        Stanza::Iq(Iq::Get { payload, .. } | Iq::Set { payload, .. }) => {
            return payload
                .is("limit-exceeded", NS_LIMITS)
                .then(|| payload.attr("limit").unwrap_or("").to_string())
        }
        Stanza::Iq(Iq::Result {
            payload: Some(p), ..
        }) => {
            return p
                .is("limit-exceeded", NS_LIMITS)
                .then(|| p.attr("limit").unwrap_or("").to_string())
        }
        Stanza::Iq(_) => return None,
    };
    payloads
        .iter()
        .find(|e| e.is("limit-exceeded", NS_LIMITS))
        .map(|e| e.attr("limit").unwrap_or("").to_string())
}

fn policy(limit: &str) -> Refusal {
    Refusal::modify(
        DefinedCondition::PolicyViolation,
        format!("This stanza is over this service's {limit} limit and was not processed."),
    )
}

impl Core {
    /// Refuses a stand-in. An unavailable presence still counts as leaving (leaving is always
    /// allowed, and a visitor must not be stuck in a room by a bloated goodbye).
    pub(super) fn handle_over_limit(
        &mut self,
        now: Timestamp,
        s: Stanza,
        limit: String,
        out: &mut Effects,
    ) {
        let (from, to) = match &s {
            Stanza::Message(m) => (m.from.clone(), m.to.clone()),
            Stanza::Presence(p) => (p.from.clone(), p.to.clone()),
            Stanza::Iq(iq) => match iq {
                Iq::Get { from, to, .. }
                | Iq::Set { from, to, .. }
                | Iq::Result { from, to, .. }
                | Iq::Error { from, to, .. } => (from.clone(), to.clone()),
            },
        };
        let (Some(from), Some(to)) = (from, to) else {
            return;
        };
        let who = from.to_bare();
        if self.offenders.should_log(&who, now) {
            tracing::warn!(from = %from, limit = %limit, "stanza over a limit refused (logged once a minute per sender)");
        }
        match s {
            Stanza::Message(m)
                if !matches!(m.type_, MessageType::Error | MessageType::Headline) =>
            {
                out.send(policy(&limit).message(to, from, m.id));
            }
            Stanza::Presence(p) if p.type_ == PresenceType::Unavailable => {
                let bare = Presence::new(PresenceType::Unavailable)
                    .with_from(from)
                    .with_to(to);
                self.handle_presence(now, bare, out);
            }
            Stanza::Presence(p) if p.type_ != PresenceType::Error => {
                out.send(policy(&limit).presence(to, from, p.id));
            }
            Stanza::Iq(Iq::Get { id, .. } | Iq::Set { id, .. }) => {
                out.send(policy(&limit).iq(to, from, id));
            }
            _ => {}
        }
    }
}
