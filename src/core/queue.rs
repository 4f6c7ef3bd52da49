//! A waiting visitor's place in line, told as a system line when it changes (at most every
//! [`POSITION_EVERY_MS`], and only once the chat has waited that long), with the site's usual
//! time to a first answer once there are enough answered chats to say.

use std::collections::{BTreeMap, VecDeque};

use crate::address::{RoomName, SiteId};
use crate::core::session::SessionState;
use crate::core::{Core, Effects};
use crate::time::Timestamp;

/// How often at most a visitor hears their place, and how long a chat waits before the first.
pub const POSITION_EVERY_MS: i64 = 10_000;
/// First-response times kept per site (the newest).
const SAMPLES: usize = 50;
/// Fewer answered chats than this give no estimate.
const MIN_SAMPLES: usize = 5;

/// Recent times from a visitor's first message to a staff member taking the chat, per site.
#[derive(Debug, Default)]
pub struct FirstResponses {
    by_site: BTreeMap<SiteId, VecDeque<i64>>,
}

impl FirstResponses {
    pub fn record(&mut self, site: &SiteId, ms: i64) {
        let q = self.by_site.entry(site.clone()).or_default();
        if q.len() == SAMPLES {
            q.pop_front();
        }
        q.push_back(ms.max(0));
    }

    /// The median, once there are enough.
    pub fn usual(&self, site: &SiteId) -> Option<i64> {
        let q = self.by_site.get(site)?;
        if q.len() < MIN_SAMPLES {
            return None;
        }
        let mut v: Vec<i64> = q.iter().copied().collect();
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    }
}

/// What a visitor at `place` hears.
pub fn position_text(place: usize, usual_ms: Option<i64>) -> String {
    let mut text = if place == 1 {
        "You are next in line.".to_string()
    } else {
        format!("You are number {place} in line.")
    };
    if let Some(ms) = usual_ms {
        let mins = (ms + 59_999) / 60_000;
        text.push_str(&format!(
            " Chats here are usually answered within about {} min.",
            mins.max(1)
        ));
    }
    text
}

impl Core {
    /// Every waiting visitor who has waited long enough hears their place if it changed.
    pub(super) fn tell_positions(&mut self, now: Timestamp, out: &mut Effects) {
        let mut lines: BTreeMap<SiteId, Vec<(Timestamp, i64, RoomName)>> = BTreeMap::new();
        for r in self.rooms.values() {
            if r.state() == SessionState::Active {
                lines.entry(r.name().site().clone()).or_default().push((
                    r.waiting_since(),
                    r.session_id(),
                    r.name().clone(),
                ));
            }
        }
        for (site, mut line) in lines {
            line.sort();
            let usual = self.first_responses.usual(&site);
            for (i, (_, _, name)) in line.iter().enumerate() {
                if let Some(room) = self.rooms.get_mut(name) {
                    room.tell_position(i + 1, usual, now, out);
                }
            }
        }
    }
}
