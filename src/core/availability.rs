//! Staff availability: which staff members are online, with which resources, and whether
//! they take new chats. Learned from the presence staff send to the front desk and to
//! visitor contacts.

use std::collections::BTreeMap;

use xmpp_parsers::jid::{BareJid, Jid};
use xmpp_parsers::presence::Show;

use crate::time::Timestamp;

/// One staff member's connected resources and what they show.
#[derive(Debug, Default)]
struct StaffPresence {
    resources: BTreeMap<String, Option<Show>>,
    /// When the last resource went offline.
    offline_since: Option<Timestamp>,
}

impl StaffPresence {
    /// Online with no `<show>` or `chat`: away, xa and dnd get no offers.
    fn available(&self) -> bool {
        self.resources
            .values()
            .any(|s| matches!(s, None | Some(Show::Chat)))
    }
}

#[derive(Debug, Default)]
pub struct Availability {
    by_staff: BTreeMap<BareJid, StaffPresence>,
}

impl Availability {
    /// A resource of a staff member is online with `show`. True if that made them available.
    pub fn online(&mut self, from: &Jid, show: Option<Show>) -> bool {
        let st = self.by_staff.entry(from.to_bare()).or_default();
        let was = st.available();
        let resource = from.resource().map(|r| r.to_string()).unwrap_or_default();
        st.resources.insert(resource, show);
        st.offline_since = None;
        !was && st.available()
    }

    /// A resource (or, from the bare JID, every resource) went offline. True if that was the
    /// staff member's last one.
    pub fn offline(&mut self, from: &Jid, now: Timestamp) -> bool {
        let Some(st) = self.by_staff.get_mut(&from.to_bare()) else {
            return false;
        };
        match from.resource() {
            Some(r) => {
                st.resources.remove(r.as_str());
            }
            None => st.resources.clear(),
        }
        if st.resources.is_empty() && st.offline_since.is_none() {
            st.offline_since = Some(now);
            return true;
        }
        false
    }

    pub fn is_available(&self, staff: &BareJid) -> bool {
        self.by_staff.get(staff).is_some_and(|p| p.available())
    }

    /// Those of `staff` who take new chats now, in order.
    pub fn available_of<'a>(&self, staff: impl IntoIterator<Item = &'a BareJid>) -> Vec<BareJid> {
        staff
            .into_iter()
            .filter(|s| self.is_available(s))
            .cloned()
            .collect()
    }

    /// Since when every resource of `staff` has been offline, if they were seen online.
    pub fn offline_since(&self, staff: &BareJid) -> Option<Timestamp> {
        self.by_staff.get(staff)?.offline_since
    }

    /// After a reconnect nothing is known until staff answer our probes.
    pub fn clear(&mut self) {
        self.by_staff.clear();
    }

    /// Staff members remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_staff.len()
    }

    /// (online, available), for `!diag`.
    pub fn counts(&self) -> (usize, usize) {
        let online = self
            .by_staff
            .values()
            .filter(|p| !p.resources.is_empty())
            .count();
        let available = self.by_staff.values().filter(|p| p.available()).count();
        (online, available)
    }
}
