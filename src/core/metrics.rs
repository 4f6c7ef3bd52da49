//! What the core counts for monitoring: events noted through [`Effects`](super::Effects) as
//! handlers run, and gauges read from its state on demand. Labels are bounded: site ids from
//! the config, session states, roster rungs and the stanza error conditions of refusals, never
//! an address.

use std::collections::BTreeMap;

use minidom::Element;
use xmpp_parsers::iq::Iq;
use xmpp_parsers::stanza::Stanza;

use crate::address::SiteId;

/// One countable event, noted by a handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Counted {
    /// Someone was admitted to a room of the site.
    Join(SiteId),
    /// A waiting chat was offered to a staff member.
    Offer(SiteId),
    /// A staff member took a chat one-to-one.
    Claim(SiteId),
    /// A roster change finished on a rung, done or failed.
    Roster { rung: &'static str, ok: bool },
}

/// Totals since the process started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub joins: BTreeMap<SiteId, u64>,
    pub offers: BTreeMap<SiteId, u64>,
    pub claims: BTreeMap<SiteId, u64>,
    /// (rung, "done" or "failed")
    pub roster: BTreeMap<(&'static str, &'static str), u64>,
    /// By the refusal's stanza error condition, e.g. `not-authorized`.
    pub refusals: BTreeMap<String, u64>,
}

impl Counters {
    pub fn add(&mut self, c: Counted) {
        let slot = match c {
            Counted::Join(s) => self.joins.entry(s).or_default(),
            Counted::Offer(s) => self.offers.entry(s).or_default(),
            Counted::Claim(s) => self.claims.entry(s).or_default(),
            Counted::Roster { rung, ok } => {
                let outcome = if ok { "done" } else { "failed" };
                self.roster.entry((rung, outcome)).or_default()
            }
        };
        *slot += 1;
    }

    /// Counts the stanza if it is an error the core sends (every one is a `Refusal`).
    pub fn note_sent(&mut self, s: &Stanza) {
        let condition = match s {
            Stanza::Message(m) if m.type_ == xmpp_parsers::message::MessageType::Error => {
                condition_in(&m.payloads)
            }
            Stanza::Presence(p) if p.type_ == xmpp_parsers::presence::Type::Error => {
                condition_in(&p.payloads)
            }
            Stanza::Iq(Iq::Error { error, .. }) => {
                condition_of(&Element::from(error.clone())).map(str::to_string)
            }
            _ => return,
        };
        let reason = condition.unwrap_or_else(|| "undefined-condition".to_string());
        *self.refusals.entry(reason).or_default() += 1;
    }
}

fn condition_in(payloads: &[Element]) -> Option<String> {
    payloads
        .iter()
        .find(|e| e.name() == "error")
        .and_then(condition_of)
        .map(str::to_string)
}

/// The defined condition's element name inside an `<error/>`.
fn condition_of(error: &Element) -> Option<&str> {
    error
        .children()
        .find(|c| c.ns() == xmpp_parsers::ns::XMPP_STANZAS && c.name() != "text")
        .map(|c| c.name())
}

/// What the core holds now, for gauges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Open sessions by (site, state).
    pub sessions: BTreeMap<(SiteId, &'static str), u64>,
    /// Staff available to take new chats, by site (every configured site, 0 included).
    pub staff_available: BTreeMap<SiteId, u64>,
}
