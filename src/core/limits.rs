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
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::stanzas;
use super::{Core, Effects};
use crate::time::Timestamp;

pub const NS_LIMITS: &str = "urn:xmpp:frontdesk:limits:0";
/// One log line per offender per this long.
pub const LOG_INTERVAL_MS: i64 = 60_000;
/// Offenders remembered for the log interval at most (older ones are forgotten first).
const LOG_MEMORY: usize = 10_000;

/// When each offender was last logged, so a flood makes one line a minute.
#[derive(Debug, Default)]
pub struct Offenders {
    last: HashMap<BareJid, Timestamp>,
}

impl Offenders {
    /// True if this offence should be logged now.
    pub fn should_log(&mut self, who: &BareJid, now: Timestamp) -> bool {
        if let Some(t) = self.last.get(who) {
            if now.millis() - t.millis() < LOG_INTERVAL_MS {
                return false;
            }
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

fn policy(limit: &str) -> xmpp_parsers::stanza_error::StanzaError {
    stanzas::error(
        ErrorType::Modify,
        DefinedCondition::PolicyViolation,
        &format!("This stanza is over this service's {limit} limit and was not processed."),
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
                out.send(stanzas::message_error(to, from, m.id, policy(&limit)));
            }
            Stanza::Presence(p) if p.type_ == PresenceType::Unavailable => {
                let bare = Presence::new(PresenceType::Unavailable)
                    .with_from(from)
                    .with_to(to);
                self.handle_presence(now, bare, out);
            }
            Stanza::Presence(p) if p.type_ != PresenceType::Error => {
                out.send(stanzas::presence_error(to, from, p.id, policy(&limit)));
            }
            Stanza::Iq(Iq::Get { id, .. } | Iq::Set { id, .. }) => {
                out.send(stanzas::iq_error(to, from, id, policy(&limit)));
            }
            _ => {}
        }
    }
}
